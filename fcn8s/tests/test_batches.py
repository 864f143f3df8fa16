"""Tests of fcn8s/batches.py: one label form, the in-graph one-hot, augmentation, the pipeline."""
import os

import numpy as np
import pytest
from PIL import Image

import helper
import main
from fcn8s.augmentation import Augmentation
from fcn8s.batches import TrainingBatches, augment_batch, decode_pairs, random_key, training_inputs
from fcn8s.cityscapes.synthetic import make_synthetic_cityscapes
from fcn8s.datasets import DATASETS
from fcn8s.errors import DataError
from fcn8s.kitti.synthetic import make_synthetic_kitti
from fcn8s.tf1 import tf

TINY_SHAPE = (64, 192)


def test_both_datasets_decode_to_uint8_class_ids_with_255_where_not_evaluated(tmp_path):
    make_synthetic_kitti(str(tmp_path / 'kitti'), train_per_category=1, test_per_category=0)
    make_synthetic_cityscapes(str(tmp_path / 'cityscapes'), {'train': 2})
    decoded = {}
    for name, folder in (('kitti_road', tmp_path / 'kitti' / 'training'), ('cityscapes', tmp_path / 'cityscapes')):
        dataset = DATASETS[name]
        images, labels = decode_pairs(dataset.training_pairs(str(folder)), TINY_SHAPE, dataset.load_label)
        assert images.shape == (len(labels), *TINY_SHAPE, 3) and labels.shape == (len(labels), *TINY_SHAPE)
        assert images.dtype == labels.dtype == np.uint8
        decoded[name] = set(np.unique(labels).tolist())
    assert decoded['kitti_road'] == {0, 1, 255}  # background, road, outside the evaluated area
    assert 255 in decoded['cityscapes'] and decoded['cityscapes'] - {255} <= set(range(19))
    assert len(decoded['cityscapes'] - {255}) >= 4


def test_decode_pairs_names_a_damaged_file(tmp_path):
    make_synthetic_kitti(str(tmp_path), train_per_category=1, test_per_category=0)
    dataset = DATASETS['kitti_road']
    pairs = dataset.training_pairs(str(tmp_path / 'training'))
    damaged = tmp_path / 'training' / 'gt_image_2' / 'umm_road_000000.png'
    damaged.write_bytes(damaged.read_bytes()[:300])
    with pytest.raises(DataError, match='umm_road_000000.png'):
        decode_pairs(pairs, TINY_SHAPE, dataset.load_label)


def test_the_graphs_one_hot_leaves_ignored_pixels_out_of_the_loss():
    # KITTI ids of one row: road, background, and two pixels outside the evaluated area (255). The loss is the
    # mean over the two valid pixels whatever the ignored pixels' logits are.
    class_ids = tf.constant([[[1, 0, 255, 255]]], tf.uint8)
    image_input, correct_label = training_inputs((tf.fill([1, 1, 4, 3], tf.constant(200, tf.uint8)), class_ids), 2)
    ignored_logits = tf.placeholder(tf.float32, [2, 2])
    logits = tf.concat([tf.constant([[0.0, np.log(3)], [np.log(4), 0.0]]), ignored_logits], axis=0)
    _, _, loss = main.optimize(tf.Variable(tf.zeros([1, 1, 4, 2])) + tf.reshape(logits, [1, 1, 4, 2]),
                               correct_label, 0.0, 2)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        images, one_hot = sess.run([image_input, correct_label])
        losses = [sess.run(loss, {ignored_logits: values}) for values in ([[50, -50], [-50, 50]], [[0, 0], [9, -9]])]
        fed = sess.run(correct_label, {correct_label: np.ones((1, 1, 4, 2))})
    assert images.dtype == np.float32 and (images == 200).all()
    assert one_hot.tolist() == [[[[0, 1], [1, 0], [0, 0], [0, 0]]]]
    assert losses[0] == pytest.approx(losses[1]) == pytest.approx((-np.log(3 / 4) - np.log(4 / 5)) / 2, abs=1e-6)
    assert (fed == 1).all(), 'a fed correct_label replaces the pipeline batch'


def marked_batch(batch_size=8, height=64, width=96):
    """Images with a bright green 8x12 block at rows 20..27, columns 10..21 and labels with road (1) there.

    Background elsewhere (0), and the top 4 rows outside the evaluated area (255).
    """
    images = np.zeros((batch_size, height, width, 3), np.uint8)
    labels = np.zeros((batch_size, height, width), np.uint8)
    images[:, 20:28, 10:22, 1] = 255
    labels[:, 20:28, 10:22] = 1
    labels[:, :4] = 255
    return images, labels


def augmented(images, labels, augmentation, seed=0, number=0):
    """augment_batch of numpy arrays, run in a session of its own."""
    with tf.Graph().as_default(), tf.Session() as sess:
        return sess.run(augment_batch(tf.constant(images), tf.constant(labels), augmentation,
                                      random_key(seed, number)))


def test_flip_keeps_image_label_and_ignored_area_aligned():
    images, labels = marked_batch()
    flipped_images, flipped_labels = augmented(images, labels, Augmentation(flip=True, color=False, scale=False))
    mirrored = [np.array_equal(image, images[0][:, ::-1]) for image in flipped_images]
    assert 0 < sum(mirrored) < len(mirrored), 'about half the images should be mirrored'
    for image, label, is_mirrored in zip(flipped_images, flipped_labels, mirrored):
        assert np.array_equal(label, labels[0][:, ::-1] if is_mirrored else labels[0])
        assert np.array_equal(label == 1, image[..., 1] == 255)
        assert (label[:4] == 255).all() and (label[4:] != 255).all()


def test_zoom_keeps_image_and_label_aligned_and_labels_ids():
    images, labels = marked_batch()
    zoomed_images, zoomed_labels = augmented(images, labels, Augmentation(flip=False, color=False))
    assert zoomed_images.shape == images.shape and zoomed_labels.shape == labels.shape
    assert set(np.unique(zoomed_labels).tolist()) <= {0, 1, 255}, 'nearest neighbour keeps ids ids'
    for image, label in zip(zoomed_images, zoomed_labels):
        assert np.mean((image[..., 1] > 127) == (label == 1)) > 0.99
    road_pixel_counts = {int((label == 1).sum()) for label in zoomed_labels}
    assert len(road_pixel_counts) > 1, 'every zoom gave the same label: scale-and-crop did nothing'


def test_colour_jitter_changes_the_images_only():
    images, labels = marked_batch()
    images[..., 0] = 100
    jittered_images, jittered_labels = augmented(images, labels, Augmentation(flip=False, scale=False))
    assert np.array_equal(jittered_labels, labels)
    assert not np.array_equal(jittered_images, images)
    assert len({int(image[..., 0].mean()) for image in jittered_images}) > 1, 'each image jittered on its own'
    assert np.array_equal(augmented(images, labels, Augmentation(flip=False, color=False, scale=False))[0], images)


def epochs_of(get_batches_fn, batch_size, epochs):
    """[[(images, labels) numpy batches] of each of the next `epochs` calls of get_batches_fn]."""
    return [list(get_batches_fn(batch_size)) for _ in range(epochs)]


def test_the_same_seed_gives_the_same_batches_and_each_epoch_its_own_order():
    images = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.full((5, 8, 8, 3), 40, np.uint8)
    labels = np.zeros((5, 8, 8), np.uint8)
    first, again, other_seed = (epochs_of(TrainingBatches(images, labels, 2, Augmentation(), seed), 2, 2)
                                for seed in (3, 3, 4))
    assert [len(epoch) for epoch in first] == [3, 3]  # 5 images in batches of 2, 2 and 1
    order = [[int(image[0, 0, 0]) // 40 for images, _ in epoch for image in images]  # image i is all 40 i
             for epoch in epochs_of(TrainingBatches(images, labels, 2, None, 3), 2, 2)]
    assert sorted(order[0]) == sorted(order[1]) == [0, 1, 2, 3, 4] and order[0] != order[1]
    for epoch, epoch_again in zip(first, again):
        for (batch_images, batch_labels), (images_again, labels_again) in zip(epoch, epoch_again):
            assert np.array_equal(batch_images, images_again) and np.array_equal(batch_labels, labels_again)
    assert not all(np.array_equal(batch[0], other[0]) for batch, other in zip(first[0], other_seed[0]))


def test_a_pipeline_started_at_a_later_epoch_gives_that_epochs_batches():
    # A resumed run starts the pipeline at its next epoch: it must get what the uninterrupted run got there.
    images, labels = marked_batch(batch_size=5)
    images += np.arange(5, dtype=np.uint8)[:, None, None, None]
    epoch_two = epochs_of(TrainingBatches(images, labels, 2, Augmentation(), seed=1), 2, 2)[1]
    training_batches = TrainingBatches(images, labels, 2, Augmentation(), seed=1)
    with tf.Session() as sess:
        batch = training_batches.connect(2)
        training_batches.start(sess, first_epoch=2)
        assert list(training_batches(2)) == [None, None, None], 'train_nn runs 3 steps without feeding them'
        resumed = [sess.run(batch) for _ in range(3)]
        with pytest.raises(ValueError, match='batches of 2, not 4'):
            next(training_batches(4))
    for (images_then, labels_then), (images_now, labels_now) in zip(epoch_two, resumed):
        assert np.array_equal(images_then, images_now)
        assert np.array_equal(np.argmax(labels_then, axis=-1) + 255 * (labels_then.sum(axis=-1) == 0), labels_now)


def test_gen_batch_function_takes_the_pairs_it_is_given_and_the_dataset_from_the_folder(tmp_path):
    make_synthetic_cityscapes(str(tmp_path / 'cityscapes'), {'train': 3})
    get_batches_fn = helper.gen_batch_function(str(tmp_path / 'cityscapes'), TINY_SHAPE)
    images, labels = next(get_batches_fn(2))
    assert get_batches_fn.num_images == 3 and labels.shape == (2, *TINY_SHAPE, 19)
    pairs = DATASETS['cityscapes'].training_pairs(str(tmp_path / 'cityscapes'))[1:]
    assert helper.gen_batch_function(str(tmp_path / 'elsewhere'), TINY_SHAPE, dataset=DATASETS['cityscapes'],
                                     pairs=pairs).num_images == 2
    os.makedirs(tmp_path / 'neither')
    Image.new('RGB', (4, 4)).save(tmp_path / 'neither' / 'a.png')
    with pytest.raises(ValueError, match='holds no dataset'):
        helper.gen_batch_function(str(tmp_path / 'neither'), TINY_SHAPE)
