"""Training batches: the seeded validation split, augmentation, and one-hot batches prefetched by a thread."""
import dataclasses
import queue
import threading

import numpy as np
from PIL import Image
from tqdm import tqdm

from fcn8s import kitti
from fcn8s.images import load_image

# Training batches a background thread prepares ahead of the model (make_get_batches_fn): two keep it busy
# while a step runs, and hold about 2 x 4 x 160 x 576 x 5 float32 values (15 MB) at the classic size.
PREFETCH_BATCHES = 2


def split_training_pairs(pairs, val_count, seed=0):
    """Split [(image path, label path)] into (train_pairs, val_pairs), stratified over um, umm and uu.

    Each category gives a share of the val_count validation pairs proportional to its size (largest
    remainders first); the choice within a category is seeded. Both lists keep the input order.
    """
    if not 0 <= val_count < len(pairs):
        raise ValueError(f'--val-count {val_count} must lie in 0..{len(pairs) - 1}: there are {len(pairs)} training images')
    categories = [kitti.parse_image_name(image_path)[0] for image_path, _ in pairs]
    sizes = np.array([categories.count(category) for category in kitti.KITTI_CATEGORIES])
    quotas = sizes * val_count / len(pairs)
    shares = np.floor(quotas).astype(int)
    shares[np.argsort(shares - quotas, kind='stable')[:val_count - shares.sum()]] += 1
    rng = np.random.default_rng(seed)
    val_indices = set()
    for category, share in zip(kitti.KITTI_CATEGORIES, shares):
        members = [index for index, name in enumerate(categories) if name == category]
        val_indices.update(rng.choice(members, size=share, replace=False).tolist())
    train_pairs = [pair for index, pair in enumerate(pairs) if index not in val_indices]
    val_pairs = [pair for index, pair in enumerate(pairs) if index in val_indices]
    return train_pairs, val_pairs


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Which training-time augmentations are on; each keeps image, label and valid area aligned."""
    flip: bool = True       # mirror left-right with probability 1/2
    color: bool = True      # contrast x U(0.8, 1.2) about the image mean, brightness + U(-20, 20) levels
    scale: bool = True      # zoom by U(1, 1.25) about a random point, cropped back to the same size


def augment_pair(image, label, augmentation, rng):
    """Randomly augmented copies of image [h, w, 3] uint8 and its KITTI label [h, w, 3] uint8."""
    height, width = image.shape[:2]
    if augmentation.scale:
        zoom = rng.uniform(1.0, 1.25)
        crop_height, crop_width = int(round(height / zoom)), int(round(width / zoom))
        top, left = rng.integers(0, height - crop_height + 1), rng.integers(0, width - crop_width + 1)
        box = (left, top, left + crop_width, top + crop_height)
        image = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR, box=box))
        label = np.asarray(Image.fromarray(label).resize((width, height), Image.NEAREST, box=box))
    if augmentation.flip and rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    if augmentation.color:
        mean_level = image.mean()
        jittered = (image - mean_level) * rng.uniform(0.8, 1.2) + mean_level + rng.uniform(-20, 20)
        image = np.clip(jittered, 0, 255).round().astype(np.uint8)
    return image, label


def prefetched(items, depth=PREFETCH_BATCHES):
    """Yield what the iterable `items` yields, while a background thread prepares up to `depth` items ahead.

    The thread's exception, if any, is raised here, where the item would have come. When the consumer
    stops early (break, an exception, close()), the thread stops too, after the item it is making.
    """
    ready = queue.Queue(maxsize=depth)  # ('item', value), ('error', exception) or ('end', None)
    consumer_gone = threading.Event()

    def offer(message):
        """Put message in the queue, waiting for room; False when the consumer has gone instead."""
        while not consumer_gone.is_set():
            try:
                ready.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not offer(('item', item)):
                    return
        except Exception as error:  # handed to the consumer, which raises it
            offer(('error', error))
            return
        offer(('end', None))

    producer = threading.Thread(target=produce, name='prefetch', daemon=True)
    producer.start()
    try:
        while True:
            kind, value = ready.get()
            if kind == 'end':
                return
            if kind == 'error':
                raise value
            yield value
    finally:
        consumer_gone.set()
        producer.join()


def make_get_batches_fn(pairs, image_shape, augmentation=None, load_label=None,
                        label_to_one_hot=kitti.label_to_one_hot):
    """get_batches_fn(batch_size) over the (image path, label path) pairs: the classic gen_batch_function's core.

    augmentation (an Augmentation) transforms each image and label afresh every epoch.
    Every image and label is decoded and resized to image_shape (height, width) once, here, and
    kept in memory as uint8: load_label(label path, image_shape) reads a label (default: KITTI's RGB
    label image, resized nearest), label_to_one_hot turns a batch of them into one-hot targets (default
    KITTI's two classes). Each call of get_batches_fn yields one shuffled epoch of (images [b, h, w, 3]
    float32 RGB 0..255, labels [b, h, w, num_classes] float32 one-hot, ignored pixels all 0).
    A background thread makes the batches (augmentation, one-hot labels) PREFETCH_BATCHES ahead of
    the consumer (prefetched), so that a training step does not wait for its batch; the shuffle and
    the augmentation's seed are drawn from np.random in the consumer's thread, so a run seeded with
    np.random.seed gets the same batches. get_batches_fn.num_images is the number of training images.
    """
    images, labels = [], []
    for image_path, label_path in tqdm(pairs, desc='Decoding training images', unit='image'):
        images.append(load_image(image_path, image_shape))
        labels.append(load_label(label_path, image_shape) if load_label else load_image(label_path, image_shape,
                                                                                        Image.NEAREST))
    images, labels = np.stack(images), np.stack(labels)

    def epoch_batches(order, batch_size, rng):
        """The (images, labels) batches of one epoch: images in `order`, augmented with the Generator rng."""
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            batch_images, batch_labels = images[batch], labels[batch]
            if augmentation is not None:
                batch_images, batch_labels = (np.stack(arrays) for arrays in zip(*(
                    augment_pair(image, label, augmentation, rng) for image, label in zip(batch_images, batch_labels))))
            yield batch_images.astype(np.float32), label_to_one_hot(batch_labels)

    def get_batches_fn(batch_size):
        order = np.random.permutation(len(pairs))
        rng = np.random.default_rng(np.random.randint(2 ** 31))
        yield from prefetched(epoch_batches(order, batch_size, rng))

    get_batches_fn.num_images = len(pairs)
    return get_batches_fn
