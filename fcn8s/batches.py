"""Training batches: the tf.data pipeline that shuffles, augments and batches (the validation split: fcn8s.split).

Every dataset's labels take one form here: [h, w] uint8 class ids, 255 where a pixel is not evaluated
(kitti.label_ids, cityscapes.train_ids_of). Images and labels are decoded once, at the training size
(decode_pairs), and kept in the session as uint8; the pipeline gathers each batch from them, augments it
with TensorFlow ops and hands the graph uint8 tensors, which training_inputs casts to float and one-hot
encodes there. Every random draw is
stateless, keyed by (seed, epoch, batch): the same seed gives the same batches, in any number of threads,
and a resumed run gets the batches that the uninterrupted run would have had.
"""
import collections
import concurrent.futures
import os

import numpy as np
from tqdm import tqdm

from fcn8s.images import load_image
from fcn8s.tf1 import tf

AUTOTUNE = tf.data.experimental.AUTOTUNE
LAST_EPOCH = np.iinfo(np.int64).max  # the pipeline runs epoch after epoch until the training loop stops asking
ORDER_STREAM, AUGMENT_STREAM = 0, 1  # the two kinds of random draws, each from its own key


def decode_pairs(pairs, image_shape, load_label, threads=os.cpu_count()):
    """(images [n, h, w, 3] uint8 RGB, labels [n, h, w] uint8 class ids) of [(image path, label path)] pairs.

    Each file is decoded once, resized to image_shape (height, width), in `threads` threads (PIL
    decodes and resizes outside the GIL); load_label(label path, image_shape) is the dataset's label
    reader. The first file that cannot be read raises its DataError, and the files not yet begun are left.
    """
    images = np.empty((len(pairs), *image_shape, 3), np.uint8)
    labels = np.empty((len(pairs), *image_shape), np.uint8)

    def decode(index):
        image_path, label_path = pairs[index]
        images[index] = load_image(image_path, image_shape)
        labels[index] = load_label(label_path, image_shape)

    pool = concurrent.futures.ThreadPoolExecutor(threads)
    try:
        for _ in tqdm(pool.map(decode, range(len(pairs))), total=len(pairs), desc='Decoding training images',
                      unit='image'):
            pass
    finally:
        pool.shutdown(cancel_futures=True)
    return images, labels


def random_key(seed, *numbers):
    """[2] int64 key of the stateless random ops: seed with each of numbers (ints or int64 scalars) folded in."""
    key = tf.constant([seed, 0], tf.int64)
    for number in numbers:
        key = tf.random.experimental.stateless_fold_in(key, tf.cast(number, tf.int64))
    return key


def sample_positions(start, end, size):
    """[b, size] float32 positions that crop_and_resize samples from [b] box ends in 0..1 of a side of size pixels."""
    steps = tf.range(size, dtype=tf.float32) / (size - 1)
    return (start[:, None] + (end - start)[:, None] * steps[None]) * (size - 1)


def augment_batch(images, labels, augmentation, key):
    """Randomly augmented images [b, h, w, 3] uint8 and labels [b, h, w] uint8, drawn from the [2] int64 key.

    Zoom and flip sample one random box of each image (of 1 / U(1, 1.25) of each side, mirrored by
    swapping its x ends) back to the full size: bilinear for the image (crop_and_resize), nearest for the
    label, whose ids are gathered from the rounded positions of the same samples. The colour jitter
    scales each image's levels about its mean and shifts them, rounded back to uint8.
    """
    batch_size = tf.shape(images)[0]
    height, width = images.shape.as_list()[1:3]
    draws = tf.random.stateless_uniform([batch_size, 6], seed=key)
    pixels = tf.cast(images, tf.float32)
    if augmentation.scale or augmentation.flip:
        side = 1 / (1 + 0.25 * draws[:, 0]) if augmentation.scale else tf.ones([batch_size])
        top, left = draws[:, 1] * (1 - side), draws[:, 2] * (1 - side)
        flipped = draws[:, 3] < 0.5 if augmentation.flip else tf.zeros([batch_size], tf.bool)
        x_start, x_end = tf.where(flipped, left + side, left), tf.where(flipped, left, left + side)
        boxes = tf.stack([top, x_start, top + side, x_end], axis=1)
        pixels = tf.image.crop_and_resize(pixels, boxes, tf.range(batch_size), [height, width], 'bilinear')
        rows = tf.cast(tf.round(sample_positions(top, top + side, height)), tf.int32)
        columns = tf.cast(tf.round(sample_positions(x_start, x_end, width)), tf.int32)
        labels = tf.gather(tf.gather(labels, rows, axis=1, batch_dims=1), columns, axis=2, batch_dims=1)
    if augmentation.color:
        contrast = (0.8 + 0.4 * draws[:, 4])[:, None, None, None]
        brightness = (40 * draws[:, 5] - 20)[:, None, None, None]
        mean_level = tf.reduce_mean(pixels, axis=[1, 2, 3], keepdims=True)
        pixels = pixels * contrast + (mean_level * (1 - contrast) + brightness)
    images = tf.cast(tf.clip_by_value(pixels + 0.5, 0, 255), tf.uint8)  # rounded
    return images, labels


def epoch_batch_indices(num_images, batch_size, first_epoch, seed):
    """tf.data.Dataset of (epoch, batch number, image indices [<= batch_size] int32), epoch after epoch.

    Each epoch from first_epoch on lists every image once, in an order drawn from (seed, epoch), in
    ceil(num_images / batch_size) batches; the last may be smaller.
    """
    def batches_of(epoch):
        order = tf.argsort(tf.random.stateless_uniform([num_images], seed=random_key(seed, ORDER_STREAM, epoch)))
        numbered = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).enumerate()
        return numbered.map(lambda number, indices: (epoch, number, indices))

    return tf.data.Dataset.range(first_epoch, LAST_EPOCH).flat_map(batches_of)


PipelineOps = collections.namedtuple('PipelineOps', 'images labels fill_store images_source labels_source restart '
                                                    'first_epoch batch_size')


class TrainingBatches:
    """The classic get_batches_fn over decoded images [n, h, w, 3] uint8 and labels [n, h, w] uint8 class ids.

    Called as get_batches_fn(batch_size), it yields the next epoch of numpy batches (the k-th call
    epoch k, even after a call left unfinished), as the classic one did: (images [b, h, w, 3] float32
    RGB 0..255, labels [b, h, w, num_classes] float32 one-hot, ignored pixels all 0), made by the
    pipeline in a graph and session of its own. Training wires the pipeline into its own graph instead:
    connect(batch_size) gives the batch tensors for training_inputs, and after start(sess, first_epoch)
    each call yields None for each step of the next epoch, so that train_nn runs the step without a
    feed and the graph takes its batch. augmentation (an augmentation.Augmentation or None) and seed fix every
    batch. num_images is the number of training images.
    """

    def __init__(self, images, labels, num_classes, augmentation=None, seed=0):
        self.images, self.labels, self.num_classes = images, labels, num_classes
        self.augmentation, self.seed = augmentation, seed
        self.num_images = len(images)
        self.connection = None  # the PipelineOps of the training graph, once connected
        self.started_batch_size = None  # once started in the training session
        self.own_session = None  # (session, PipelineOps, one-hot labels) of the numpy batches
        self.epochs_given = 0  # epochs of numpy batches begun: each call starts the next, whole

    def steps_per_epoch(self, batch_size):
        """ceil(num_images / batch_size)."""
        return -(-self.num_images // batch_size)

    def build(self, batch_size):
        """PipelineOps of the pipeline in the default graph.

        The decoded arrays live in the session, once, in two CPU variables outside every collection (no
        checkpoint or initializer touches them), filled by fill_store from placeholders; a GraphDef holds
        no copy of them. restart starts the batches at the epoch fed to first_epoch.
        """
        images_source = tf.placeholder(tf.uint8, self.images.shape, name='decoded_images')
        labels_source = tf.placeholder(tf.uint8, self.labels.shape, name='decoded_labels')
        with tf.device('/cpu:0'):
            images_store, labels_store = (tf.Variable(source, trainable=False, collections=[], use_resource=True)
                                          for source in (images_source, labels_source))
        first_epoch = tf.placeholder(tf.int64, [], name='first_epoch')

        def make_batch(epoch, number, indices):
            images, labels = tf.gather(images_store, indices), tf.gather(labels_store, indices)
            if self.augmentation is None:
                return images, labels
            key = random_key(self.seed, AUGMENT_STREAM, epoch, number)
            return augment_batch(images, labels, self.augmentation, key)

        batches = epoch_batch_indices(self.num_images, batch_size, first_epoch, self.seed)
        batches = batches.map(make_batch, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
        iterator = tf.data.make_initializable_iterator(batches)
        images, labels = iterator.get_next()
        fill_store = tf.group(images_store.initializer, labels_store.initializer)
        return PipelineOps(images, labels, fill_store, images_source, labels_source, iterator.initializer,
                           first_epoch, batch_size)

    def fill_store(self, sess, pipeline):
        """Copy the decoded arrays into the pipeline's variables in sess."""
        sess.run(pipeline.fill_store, {pipeline.images_source: self.images, pipeline.labels_source: self.labels})

    def connect(self, batch_size):
        """(images [b, h, w, 3] uint8, labels [b, h, w] uint8): the pipeline's next batch in the default graph."""
        self.connection = self.build(batch_size)
        return self.connection.images, self.connection.labels

    def start(self, sess, first_epoch=1):
        """Start the connected pipeline in the training session sess at first_epoch (a resumed run's next one).

        The decoded arrays move into the session: this object lets go of its own copy.
        """
        self.fill_store(sess, self.connection)
        sess.run(self.connection.restart, {self.connection.first_epoch: first_epoch})
        self.started_batch_size = self.connection.batch_size
        self.images = self.labels = None

    def __call__(self, batch_size):
        if self.started_batch_size is not None:
            if batch_size != self.started_batch_size:
                raise ValueError(f'the pipeline makes batches of {self.started_batch_size}, not {batch_size}')
            yield from [None] * self.steps_per_epoch(batch_size)
            return
        if self.own_session is None or self.own_session[1].batch_size != batch_size:
            graph = tf.Graph()
            with graph.as_default():
                pipeline = self.build(batch_size)
                one_hot = tf.one_hot(tf.cast(pipeline.labels, tf.int32), self.num_classes)
            self.own_session = tf.Session(graph=graph), pipeline, one_hot
            self.fill_store(self.own_session[0], pipeline)
        sess, pipeline, one_hot = self.own_session
        self.epochs_given += 1
        sess.run(pipeline.restart, {pipeline.first_epoch: self.epochs_given})
        for _ in range(self.steps_per_epoch(batch_size)):
            images, labels = sess.run([pipeline.images, one_hot])
            yield images.astype(np.float32), labels


def training_inputs(batches, num_classes):
    """(image input [b, h, w, 3] float32 RGB 0..255 or None, correct_label [b, h, w, num_classes] float32 one-hot).

    Without batches, the classic inputs: None (the VGG16's own image placeholder) and a correct_label
    placeholder. With batches, the (images [b, h, w, 3] uint8, class ids [b, h, w] uint8) tensors of an input
    pipeline (TrainingBatches.connect), each input takes the pipeline's batch unless a value is fed for it: the
    images cast to float, the ids one-hot encoded (ids of no class, such as 255, all zeros).
    """
    if batches is None:
        return None, tf.placeholder(tf.float32, [None, None, None, num_classes], name='correct_label')
    batch_images, batch_labels = batches
    image_input = tf.placeholder_with_default(tf.cast(batch_images, tf.float32), [None, None, None, 3],
                                              name='batch_image_input')
    one_hot = tf.one_hot(tf.cast(batch_labels, tf.int32), num_classes)
    correct_label = tf.placeholder_with_default(one_hot, [None, None, None, num_classes], name='correct_label')
    return image_input, correct_label
