"""Tests of fcn8s/batches.py: the seeded split, augmentation and the prefetching thread."""
import os
import threading
import time

import numpy as np
import pytest

from fcn8s.batches import Augmentation, augment_pair, prefetched, split_training_pairs
from fcn8s.kitti import BACKGROUND_COLOUR, INVALID_COLOUR, KITTI_CATEGORIES, ROAD_COLOUR, decode_label


def test_split_is_stratified_seeded_and_disjoint():
    pairs = [(f'image_2/{category}_{index:06d}.png', f'gt_image_2/{category}_road_{index:06d}.png')
             for category, count in (('um', 95), ('umm', 96), ('uu', 98)) for index in range(count)]
    train_pairs, val_pairs = split_training_pairs(pairs, 48, seed=7)
    categories = [os.path.basename(image).split('_')[0] for image, _ in val_pairs]
    assert len(val_pairs) == 48 and len(train_pairs) == 289 - 48
    assert {category: categories.count(category) for category in KITTI_CATEGORIES} == {'um': 16, 'umm': 16, 'uu': 16}
    assert sorted(train_pairs + val_pairs) == sorted(pairs)
    assert split_training_pairs(pairs, 48, seed=7) == (train_pairs, val_pairs)
    assert split_training_pairs(pairs, 48, seed=8)[1] != val_pairs
    assert split_training_pairs(pairs, 0, seed=7) == (pairs, [])
    with pytest.raises(ValueError, match='--val-count 289'):
        split_training_pairs(pairs, 289)


def marked_pair(height=64, width=96):
    """An image with a bright green 8x12 block at rows 20..27, columns 10..21, and a label with road there."""
    image = np.zeros((height, width, 3), np.uint8)
    label = np.zeros((height, width, 3), np.uint8)
    label[:] = BACKGROUND_COLOUR
    image[20:28, 10:22, 1] = 255
    label[20:28, 10:22] = ROAD_COLOUR
    label[:4] = INVALID_COLOUR
    return image, label


def test_flip_keeps_image_label_and_valid_area_aligned():
    image, label = marked_pair()
    flipped = [augment_pair(image, label, Augmentation(flip=True, color=False, scale=False),
                                   np.random.default_rng(seed)) for seed in range(6)]
    assert any(np.array_equal(flipped_image, image[:, ::-1]) for flipped_image, _ in flipped)
    for flipped_image, flipped_label in flipped:
        road, valid = decode_label(flipped_label)
        assert np.array_equal(road & valid, flipped_image[..., 1] == 255)
        assert not valid[:4].any() and valid[4:].all()


def test_scale_and_crop_keeps_image_and_label_aligned():
    image, label = marked_pair()
    road_pixel_counts = set()
    for seed in range(5):
        zoomed_image, zoomed_label = augment_pair(image, label, Augmentation(flip=False, color=False),
                                                         np.random.default_rng(seed))
        road, valid = decode_label(zoomed_label)
        assert zoomed_image.shape == image.shape and zoomed_label.shape == label.shape
        assert {tuple(colour) for colour in zoomed_label.reshape(-1, 3).tolist()} <= {
            ROAD_COLOUR, BACKGROUND_COLOUR, INVALID_COLOUR}
        assert np.mean((zoomed_image[..., 1] > 127) == (road & valid)) > 0.98
        road_pixel_counts.add(int(road.sum()))
    assert len(road_pixel_counts) > 1, 'every zoom gave the same label: scale-and-crop did nothing'


def test_colour_jitter_changes_the_image_only():
    image, label = marked_pair()
    image[..., 0] = 100
    jittered_image, jittered_label = augment_pair(image, label, Augmentation(flip=False, scale=False),
                                                         np.random.default_rng(0))
    assert np.array_equal(jittered_label, label)
    assert not np.array_equal(jittered_image, image)


def test_prefetched_keeps_order_works_ahead_raises_the_producers_error_and_stops_with_the_consumer():
    assert list(prefetched(iter(range(5)))) == [0, 1, 2, 3, 4]

    made = []

    def counted():
        for index in range(100):
            made.append(index)
            yield index

    threads_before = threading.active_count()
    items = prefetched(counted(), depth=2)
    assert next(items) == 0
    deadline = time.monotonic() + 10
    while len(made) < 4 and time.monotonic() < deadline:  # 1, 2 wait in the queue; 3 waits for room
        time.sleep(0.01)
    assert made == [0, 1, 2, 3]
    items.close()
    assert threading.active_count() == threads_before

    def failing():
        yield 'first'
        raise OSError('disk gone')

    with pytest.raises(OSError, match='disk gone'):
        list(prefetched(failing()))
    assert threading.active_count() == threads_before
