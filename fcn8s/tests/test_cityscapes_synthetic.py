"""Tests of fcn8s/cityscapes/synthetic.py: the synthetic street scenes in Cityscapes' layout."""
import os

import numpy as np
from PIL import Image

from fcn8s import cityscapes
from fcn8s.cityscapes.synthetic import (CLASS_LOOKS, ensure_synthetic_cityscapes, make_synthetic_cityscapes,
                                        synthetic_street)

SMALL_COUNTS = {'train': 2, 'val': 1, 'test': 1}
SCENE_CLASSES = {'road', 'sidewalk', 'building', 'vegetation', 'sky', 'person', 'car'}


def test_synthetic_cityscapes_layout_and_determinism(tmp_path):
    make_synthetic_cityscapes(str(tmp_path / 'a'), SMALL_COUNTS, seed=5)
    make_synthetic_cityscapes(str(tmp_path / 'b'), SMALL_COUNTS, seed=5)
    written = sorted(os.path.relpath(os.path.join(folder, name), tmp_path / 'a')
                     for folder, _, names in os.walk(tmp_path / 'a') for name in names)
    assert written == [
        'gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png',
        'gtFine/train/bremen/bremen_000001_000019_gtFine_labelIds.png',
        'gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelIds.png',
        'leftImg8bit/test/berlin/berlin_000000_000019_leftImg8bit.png',
        'leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png',
        'leftImg8bit/train/bremen/bremen_000001_000019_leftImg8bit.png',
        'leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png']
    for relative_path in written:
        with Image.open(tmp_path / 'a' / relative_path) as made, Image.open(tmp_path / 'b' / relative_path) as twin:
            assert made.size == (2048, 1024) and made.mode == ('L' if relative_path.startswith('gtFine') else 'RGB')
            np.testing.assert_array_equal(np.asarray(made), np.asarray(twin))
    pairs = cityscapes.list_cityscapes_pairs(str(tmp_path / 'a'), 'train') + \
        cityscapes.list_cityscapes_pairs(str(tmp_path / 'a'), 'val')
    label_ids = np.stack([cityscapes.load_label_ids(label_path) for _, label_path in pairs])
    train_ids = np.unique(cityscapes.train_ids_of(label_ids))
    assert {cityscapes.CLASS_NAMES[train_id] for train_id in train_ids if train_id != 255} == SCENE_CLASSES
    assert 255 in train_ids and set(np.unique(label_ids)) <= set(CLASS_LOOKS)


def test_another_seed_makes_other_scenes():
    first_image, first_label = synthetic_street(np.random.default_rng([0, 0, 0]), (64, 128))
    other_image, other_label = synthetic_street(np.random.default_rng([1, 0, 0]), (64, 128))
    assert (first_label != other_label).mean() > 0.05 and (first_image != other_image).mean() > 0.5


def test_classes_are_told_apart_by_colour():
    """A nearest-mean-colour classifier fit on one scene paints more than 90% of another's scored pixels right."""
    image, label_ids = synthetic_street(np.random.default_rng(1), (256, 512))
    scored = cityscapes.train_ids_of(label_ids) != 255
    class_ids = np.unique(label_ids[scored])
    means = np.stack([image[label_ids == label_id].mean(axis=0) for label_id in class_ids])
    other_image, other_label_ids = synthetic_street(np.random.default_rng(2), (256, 512))
    other_scored = cityscapes.train_ids_of(other_label_ids) != 255
    distances = np.linalg.norm(other_image[other_scored][:, None, :].astype(float) - means[None], axis=-1)
    assert (class_ids[distances.argmin(axis=1)] == other_label_ids[other_scored]).mean() > 0.9


def test_ensure_reuses_a_complete_set_of_any_counts_and_rebuilds_an_incomplete_one(tmp_path):
    cityscapes_path = tmp_path / 'cityscapes'
    counts = {'train': 1, 'val': 1, 'test': 0}
    ensure_synthetic_cityscapes(str(cityscapes_path), counts)
    marker = cityscapes_path / 'marker'
    marker.touch()
    ensure_synthetic_cityscapes(str(cityscapes_path), counts)
    assert marker.exists()
    ensure_synthetic_cityscapes(str(cityscapes_path), {**counts, 'val': 3})  # another --val-count: reused, not remade
    assert marker.exists() and len(cityscapes.list_cityscapes_pairs(str(cityscapes_path), 'val')) == 1
    os.remove(cityscapes_path / 'gtFine' / 'val' / 'frankfurt' / 'frankfurt_000000_000019_gtFine_labelIds.png')
    ensure_synthetic_cityscapes(str(cityscapes_path), counts)
    assert not marker.exists()
    assert len(cityscapes.list_cityscapes_pairs(str(cityscapes_path), 'val')) == 1
