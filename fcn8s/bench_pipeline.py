"""bench's input-pipeline figure: images/s of the tf.data pipeline alone at each dataset's training size, no model."""
import tempfile
import time

from fcn8s.augmentation import Augmentation
from fcn8s.batches import TrainingBatches, decode_pairs
from fcn8s.datasets import DATASETS
from fcn8s.tf1 import tf

# The input pipeline alone, for each dataset at its training size: (image shape, synthetic images decoded).
PIPELINE_SETTINGS = {'kitti_road': ((160, 576), 24), 'cityscapes': ((512, 1024), 8)}
PIPELINE_BATCH_SIZE = 4


def pipeline_speed(dataset, pairs, image_shape, timed_batches, warmup_batches=5):
    """The input pipeline alone (batches.TrainingBatches, augmentation on, batch PIPELINE_BATCH_SIZE), no model.

    Returns {'images_per_s': its batches' images per second, 'mb_per_image': MB (10**6 bytes) of the batch
    tensors it hands the graph per image, 'decode_ms_per_image' and 'decoded_mb_per_image': the one-off
    decoding of the pairs at image_shape (height, width), per image, and the memory they then take}.
    Each timed batch fetches one pixel of the batch, so the pipeline does all its work and nothing is copied out.
    """
    started = time.perf_counter()
    images, labels = decode_pairs(pairs, image_shape, dataset.load_label)
    decode_seconds = time.perf_counter() - started
    training_batches = TrainingBatches(images, labels, dataset.num_classes, Augmentation())
    with tf.Graph().as_default(), tf.Session() as sess:
        batch = training_batches.connect(PIPELINE_BATCH_SIZE)
        one_pixel = [tensor[:1, :1, :1] for tensor in batch]
        training_batches.start(sess)
        batch_images, batch_labels = sess.run(batch)
        for _ in range(warmup_batches):
            sess.run(one_pixel)
        seconds = seconds_of(lambda: [sess.run(one_pixel) for _ in range(timed_batches)])
    return {'images_per_s': timed_batches * PIPELINE_BATCH_SIZE / seconds,
            'mb_per_image': (batch_images.nbytes + batch_labels.nbytes) / len(batch_images) / 1e6,
            'decode_ms_per_image': 1000 * decode_seconds / len(pairs),
            'decoded_mb_per_image': (images.nbytes + labels.nbytes) / len(pairs) / 1e6}


def pipeline_speeds(timed_batches):
    """{dataset name: pipeline_speed} at each dataset's training size (PIPELINE_SETTINGS), on synthetic images."""
    speeds = {}
    for dataset_name, (image_shape, count) in PIPELINE_SETTINGS.items():
        dataset = DATASETS[dataset_name]
        with tempfile.TemporaryDirectory(prefix='fcn8s-bench-pipeline-') as folder:
            pairs = dataset.make_synthetic_pairs(folder, count)
            speeds[dataset_name] = {**pipeline_speed(dataset, pairs, image_shape, timed_batches),
                                    'image_height': image_shape[0], 'image_width': image_shape[1]}
    return speeds


def seconds_of(function, *args):
    """Wall-clock seconds that function(*args) takes."""
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def format_pipeline(pipeline, batch_size):
    """A text line of each dataset's figures in bench's 'pipeline' entry."""
    return '\n'.join(
        f"Input pipeline alone, {dataset_name} {speed['image_height']}x{speed['image_width']}, batch {batch_size}, "
        f"augmented: {speed['images_per_s']:.0f} images/s, {speed['mb_per_image']:.2f} MB per image to the graph; "
        f"decoding once {speed['decode_ms_per_image']:.0f} ms and {speed['decoded_mb_per_image']:.2f} MB per image"
        for dataset_name, speed in pipeline.items())
