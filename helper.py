"""Everything around the FCN-8s graph: data on disk, labels, batches and painted outputs.

Read top to bottom, this file follows one image: where the files come from (downloads of the VGG16
SavedModel and KITTI Road, or the offline stand-ins: a synthetic KITTI and a builder-made VGG16),
how a KITTI label is decoded, how training batches are made, how a prediction becomes a
painted overlay, and how a trained model is exported and used on image files and videos.
"""
import collections
import dataclasses
import glob
import hashlib
import itertools
import os
import queue
import re
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile

import h5py
import matplotlib
import numpy as np
import tensorflow.compat.v1 as tf
from moviepy import VideoFileClip
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

matplotlib.use('Agg')
from matplotlib import pyplot  # noqa: E402  (the Agg backend must be chosen first)

tf.logging.set_verbosity(tf.logging.ERROR)
tf.disable_v2_behavior()

VGG_URL = 'https://s3-us-west-1.amazonaws.com/udacity-selfdrivingcar/vgg.zip'
VGG_FILES = ('saved_model.pb', 'variables/variables.index', 'variables/variables.data-00000-of-00001')
KITTI_URLS = (
    'https://s3-us-west-1.amazonaws.com/udacity-selfdrivingcar/advanced_deep_learning/data_road.zip',
    'https://s3.eu-central-1.amazonaws.com/avg-kitti/data_road.zip',
)
KITTI_ZIP_BYTES = 470_992_343
KITTI_FOLDERS = ('training/image_2', 'training/gt_image_2', 'testing/image_2')
KITTI_CATEGORIES = ('um', 'umm', 'uu')
# The real training set's image sizes as (width, height), with how many of the 289 images have each.
KITTI_SIZES = (((1242, 375), 202), ((1226, 370), 49), ((1241, 376), 35), ((1238, 374), 3))

# Ground-truth colours (RGB). The devkit reads road = B > 0 and valid = R > 0.
ROAD_COLOUR = (255, 0, 255)
BACKGROUND_COLOUR = (255, 0, 0)
INVALID_COLOUR = (0, 0, 0)

# The classic VGG16 SavedModel subtracts these ImageNet means (B, G, R) inside its graph.
VGG_BGR_MEANS = (103.939, 116.779, 123.68)
# (output channels, convolutions) of the five VGG16 blocks; each block ends with a 2x2 max pool.
VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
VGG16_FC_CHANNELS = 4096
# Random VGG16 weights are He-normal, with conv1_1 also divided by the spread of mean-subtracted pixels
# (about 64 levels), so that activations are of order 1 as in the pre-trained VGG16. Without it, fc7
# activations near 30 make every Adam step move the scores by tens, and training diverges.
RANDOM_VGG_INPUT_STD = 64.0

OVERLAY_COLOUR = (0, 255, 0)
OVERLAY_ALPHA = 127 / 255
ROAD_THRESHOLD = 0.5  # a pixel is painted, and masked, as road when its road probability is above this
# Training batches a background thread prepares ahead of the model (gen_batch_function): two keep it busy
# while a step runs, and hold about 2 x 4 x 160 x 576 x 5 float32 values (15 MB) at the classic size.
PREFETCH_BATCHES = 2

# The exported model (runs/<timestamp>/model): a SavedModel whose signature maps SERVING_INPUT, float32 RGB 0..255
# [batch, height, width, 3], to SERVING_OUTPUT, the road probability [batch, height, width].
SERVING_TAG = 'serve'
SERVING_SIGNATURE = 'serving_default'
SERVING_INPUT = 'images'
SERVING_OUTPUT = 'road_prob'
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')  # what `main.py infer` takes from a folder

IMAGE_NAME = re.compile(r'^(um|umm|uu)_(\d{6})\.png$')


class DataUnavailableError(RuntimeError):
    """A dataset or model is missing and could not be fetched; the message says what to do."""


class DataError(ValueError):
    """Data that cannot be used as it is: the message names each bad file, what is wrong and what to do."""


# ---------------------------------------------------------------- downloads

def download_file(url, dest_path, expected_bytes=None, timeout_s=30):
    """Download url to dest_path with a tqdm bar; the file appears only once complete.

    Bytes go to `dest_path + '.part'`, which is renamed when the transfer ends with the expected
    size (Content-Length, or expected_bytes when given) and deleted on any failure or Ctrl-C.
    """
    part_path = dest_path + '.part'
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(part_path, 'wb') as part:
            total_bytes = expected_bytes or int(response.headers.get('Content-Length') or 0) or None
            with tqdm(total=total_bytes, unit='B', unit_scale=True, desc=os.path.basename(dest_path)) as bar:
                while chunk := response.read(1 << 20):
                    part.write(chunk)
                    bar.update(len(chunk))
        received_bytes = os.path.getsize(part_path)
        if total_bytes is not None and received_bytes != total_bytes:
            raise OSError(f'download of {url} stopped at {received_bytes} of {total_bytes} bytes')
        os.replace(part_path, dest_path)
    finally:
        if os.path.exists(part_path):
            os.remove(part_path)


def extract_zip(zip_path, data_dir, folder_name):
    """Unpack the folder `folder_name` of a downloaded zip into data_dir/folder_name.

    The archive is checked (CRC of every member) and unpacked into a staging folder first, so a
    corrupt zip is deleted and reported and nothing half-extracted ever lands in data_dir.
    """
    try:
        with zipfile.ZipFile(zip_path) as archive:
            broken_member = archive.testzip()
            if broken_member is not None:
                raise zipfile.BadZipFile(f'member {broken_member} fails its CRC check')
            staging_dir = tempfile.mkdtemp(prefix=f'.{folder_name}-', dir=data_dir)
            try:
                archive.extractall(staging_dir)
                os.replace(os.path.join(staging_dir, folder_name), os.path.join(data_dir, folder_name))
            finally:
                shutil.rmtree(staging_dir, ignore_errors=True)
    except (zipfile.BadZipFile, FileNotFoundError) as error:
        os.remove(zip_path)
        raise DataUnavailableError(
            f'{zip_path} is not a usable zip holding {folder_name}/ ({error}); it was deleted. '
            'Run again to download it afresh.') from error


def fetch_zip_folder(urls, data_dir, folder_name, expected_bytes=None, manual_hint=''):
    """Make data_dir/folder_name exist by downloading and unpacking the first reachable zip of urls.

    Raises DataUnavailableError naming every URL tried, its error, where to put the files by
    hand, and that `python main.py --demo` runs offline.
    """
    os.makedirs(data_dir, exist_ok=True)
    zip_path = os.path.join(data_dir, folder_name + '.zip')
    failures = []
    for url in urls:
        try:
            download_file(url, zip_path, expected_bytes)
        except (urllib.error.URLError, OSError) as error:
            failures.append(f'  {url}: {error}')
            continue
        extract_zip(zip_path, data_dir, folder_name)
        os.remove(zip_path)
        return
    target = os.path.join(data_dir, folder_name)
    raise DataUnavailableError(
        f'{target} is missing and could not be downloaded. Tried:\n' + '\n'.join(failures) +
        f'\nDownload it on a machine with network and unpack it so that {manual_hint} exist. '
        'To try the whole job offline, run `python main.py --demo` (synthetic data, random VGG16).')


def maybe_download_pretrained_vgg(data_dir):
    """Make sure data_dir/vgg holds the classic VGG16 SavedModel; download it when missing.

    The classic zip comes first. When it cannot be had, the same model is built from Keras's ImageNet
    VGG16 weights instead (downloaded into Keras's cache, 553 MB), and the console says so.
    Returns the path of the SavedModel folder.
    """
    vgg_path = os.path.join(data_dir, 'vgg')
    if not all(os.path.exists(os.path.join(vgg_path, name)) for name in VGG_FILES):
        shutil.rmtree(vgg_path, ignore_errors=True)
        try:
            fetch_zip_folder(
                [VGG_URL], data_dir, 'vgg',
                manual_hint=', '.join(os.path.join(vgg_path, name) for name in VGG_FILES))
        except DataUnavailableError as classic_error:
            print(f"The classic VGG16 zip could not be had from {VGG_URL}; building {vgg_path} from Keras's "
                  'ImageNet VGG16 weights instead.')
            try:
                build_vgg16_from_keras_weights(fetch_keras_vgg16_weights(), vgg_path)
            except DataUnavailableError as keras_error:
                raise DataUnavailableError(
                    f"{classic_error}\nThe other route, building it from Keras's ImageNet VGG16 weights, failed too. "
                    f'{keras_error}') from keras_error
            print(f"Built {vgg_path} from Keras's ImageNet VGG16 weights.")
    return vgg_path


def maybe_download_kitti(data_dir):
    """Make sure data_dir/data_road holds KITTI Road (training and testing); download it when missing.

    Returns the path of the data_road folder.
    """
    road_path = os.path.join(data_dir, 'data_road')
    if not all(os.path.isdir(os.path.join(road_path, folder)) for folder in KITTI_FOLDERS):
        fetch_zip_folder(
            KITTI_URLS, data_dir, 'data_road', KITTI_ZIP_BYTES,
            manual_hint=', '.join(os.path.join(road_path, folder) + '/' for folder in KITTI_FOLDERS))
    return road_path


# ---------------------------------------------------------------- synthetic KITTI (offline stand-in)

def make_synthetic_kitti(road_path, train_per_category=16, test_per_category=4, seed=0):
    """Write a small synthetic dataset in KITTI Road's exact layout under road_path.

    Files: training/image_2/<cat>_0000NN.png, training/gt_image_2/<cat>_road_0000NN.png and
    testing/image_2/<cat>_0000NN.png for cat in um, umm, uu; images of KITTI's real sizes
    (about 1242x375), labels in KITTI's three colours. Deterministic for a given seed.
    """
    folders = {name: os.path.join(road_path, name) for name in KITTI_FOLDERS}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    jobs = [('training', category, index) for category in KITTI_CATEGORIES for index in range(train_per_category)]
    jobs += [('testing', category, index) for category in KITTI_CATEGORIES for index in range(test_per_category)]
    for split, category, index in tqdm(jobs, desc='Synthetic KITTI', unit='image'):
        rng = np.random.default_rng([seed, split == 'testing', KITTI_CATEGORIES.index(category), index])
        image, label = synthetic_scene(rng, category)
        name = f'{category}_{index:06d}.png'
        Image.fromarray(image).save(os.path.join(folders[f'{split}/image_2'], name))
        if split == 'training':
            Image.fromarray(label).save(os.path.join(folders['training/gt_image_2'], f'{category}_road_{index:06d}.png'))


def synthetic_scene(rng, category):
    """One synthetic road scene and its KITTI label, both [height, width, 3] uint8.

    A road in perspective bends towards a vanishing point; grass, sky, buildings, cars and tree
    shadows make the task more than a colour threshold. um roads have a dashed centre line, umm
    roads are wider with two lanes, uu roads are unmarked. Half of the scenes have a side road
    that is labelled black (outside the evaluated area), as KITTI does.
    """
    sizes, counts = zip(*KITTI_SIZES)
    width, height = sizes[rng.choice(len(sizes), p=np.array(counts) / sum(counts))]
    horizon = int(height * rng.uniform(0.38, 0.5))
    image = Image.new('RGB', (width, height))
    label = Image.new('RGB', (width, height), BACKGROUND_COLOUR)
    paint, mark = ImageDraw.Draw(image), ImageDraw.Draw(label)

    sky_top, sky_bottom = rng.uniform([90, 120, 170], [140, 170, 230]), rng.uniform([170, 180, 190], [220, 225, 235])
    for y in range(horizon):
        paint.line([(0, y), (width, y)], fill=tuple(int(c) for c in sky_top + (sky_bottom - sky_top) * y / horizon))
    paint.rectangle([0, horizon, width, height], fill=tuple(int(c) for c in rng.uniform([60, 90, 30], [110, 140, 70])))
    for _ in range(rng.integers(4, 9)):
        left = rng.uniform(-50, width)
        top = horizon - rng.uniform(20, horizon * 0.9)
        grey = int(rng.uniform(70, 180))
        paint.rectangle([left, top, left + rng.uniform(60, 220), horizon + 5], fill=(grey, grey, int(grey * 0.95)))

    half_width_scale = {'um': (0.28, 0.4), 'umm': (0.45, 0.6), 'uu': (0.2, 0.3)}[category]
    bottom_half_width = width * rng.uniform(*half_width_scale)
    bottom_centre = width * rng.uniform(0.35, 0.65)
    vanishing_x = width * rng.uniform(0.3, 0.7)
    bend = width * rng.uniform(-0.35, 0.35)

    def road_edges(fraction):
        """Left and right road x at `fraction` of the way from the horizon (0) to the bottom (1)."""
        centre = vanishing_x + (bottom_centre - vanishing_x) * fraction + bend * fraction * (1 - fraction) ** 2
        return centre - bottom_half_width * fraction, centre + bottom_half_width * fraction

    fractions = np.linspace(0.03, 1.0, 40)
    rows = horizon + fractions * (height - horizon)
    edges = [road_edges(fraction) for fraction in fractions]
    road_polygon = [(left, y) for (left, _), y in zip(edges, rows)] + [(right, y) for (_, right), y in reversed(list(zip(edges, rows)))]

    if rng.random() < 0.5:
        side_fraction = rng.uniform(0.3, 0.6)
        side_left, side_right = road_edges(side_fraction)
        side_y = horizon + side_fraction * (height - horizon)
        side_depth = (height - horizon) * 0.12 * side_fraction
        to_left = rng.random() < 0.5
        join_x = side_left if to_left else side_right
        far_x = 0 if to_left else width
        side_polygon = [(join_x, side_y - side_depth), (far_x, side_y - side_depth * 1.6),
                        (far_x, side_y + side_depth * 1.6), (join_x, side_y + side_depth)]
        tarmac = int(rng.uniform(70, 120))
        paint.polygon(side_polygon, fill=(tarmac, tarmac, tarmac))
        mark.polygon(side_polygon, fill=INVALID_COLOUR)

    tarmac = rng.uniform(65, 125)
    paint.polygon(road_polygon, fill=(int(tarmac), int(tarmac), int(tarmac * rng.uniform(0.95, 1.05))))
    mark.polygon(road_polygon, fill=ROAD_COLOUR)

    lane_fractions = {'um': (0.5,), 'umm': (1 / 3, 2 / 3), 'uu': ()}[category]
    for lane in lane_fractions:
        for start in np.arange(0.05, 1.0, 0.08):
            stop = min(start + 0.04, 1.0)
            points = []
            for fraction in (start, stop):
                left, right = road_edges(fraction)
                points.append((left + (right - left) * lane, horizon + fraction * (height - horizon)))
            paint.line(points, fill=(235, 235, 235), width=max(1, int(6 * stop)))

    for _ in range(rng.integers(1, 4)):
        fraction = rng.uniform(0.15, 0.7)
        left, right = road_edges(fraction)
        car_width = (right - left) * rng.uniform(0.15, 0.25)
        car_x = rng.uniform(left, right - car_width)
        car_y = horizon + fraction * (height - horizon)
        car_box = [car_x, car_y - car_width * 0.7, car_x + car_width, car_y]
        paint.rectangle(car_box, fill=tuple(int(c) for c in rng.uniform(0, 255, 3)))
        mark.rectangle(car_box, fill=BACKGROUND_COLOUR)

    pixels = np.asarray(image, dtype=np.float32)
    shadow = Image.new('L', (width, height), 0)
    shade = ImageDraw.Draw(shadow)
    for _ in range(rng.integers(2, 6)):
        x, y = rng.uniform(0, width), rng.uniform(horizon, height)
        radius = rng.uniform(30, 120)
        shade.ellipse([x - radius, y - radius * 0.4, x + radius, y + radius * 0.4], fill=int(rng.uniform(80, 150)))
    shadow_depth = np.asarray(shadow.filter(ImageFilter.GaussianBlur(6)), dtype=np.float32)[..., None] / 255
    pixels *= 1 - shadow_depth
    pixels += rng.normal(0, 6, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8), np.asarray(label)


# ---------------------------------------------------------------- VGG16 SavedModel builder (offline stand-in)

def vgg16_layer_shapes(width=1.0):
    """[(layer name, kernel shape HWIO)] of the classic VGG16, channels scaled by `width`."""
    def scaled(channels):
        return max(1, int(round(channels * width)))

    shapes, in_channels = [], 3
    for block, (channels, convolutions) in enumerate(VGG16_BLOCKS, start=1):
        for conv in range(1, convolutions + 1):
            shapes.append((f'conv{block}_{conv}', (3, 3, in_channels, scaled(channels))))
            in_channels = scaled(channels)
    shapes.append(('fc6', (7, 7, in_channels, scaled(VGG16_FC_CHANNELS))))
    shapes.append(('fc7', (1, 1, scaled(VGG16_FC_CHANNELS), scaled(VGG16_FC_CHANNELS))))
    return shapes


def build_vgg16_savedmodel(export_dir, width=1.0, weights=None, seed=0):
    """Write a VGG16 SavedModel with the classic interface of the course's vgg.zip.

    Tag 'vgg16'; tensors image_input:0 (float32 [None, None, None, 3], RGB 0..255), keep_prob:0,
    layer3_out:0 (pool3, stride 8), layer4_out:0 (pool4, stride 16) and layer7_out:0 (fc7 after
    dropout, stride 32). The BGR mean subtraction happens inside the graph ('Processing' scope).
    `width` scales every layer's channels (1.0 is the real VGG16: 256, 512 and 4096 channels).
    `weights` maps each layer name of vgg16_layer_shapes() to (kernel HWIO, bias) numpy arrays;
    without it the weights are random (He normal, seeded). The folder is written whole or not at all.
    """
    if os.path.exists(export_dir):
        raise FileExistsError(f'{export_dir} already exists; delete it or choose another output folder')
    layer_shapes = dict(vgg16_layer_shapes(width))
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(seed)
        image_input = tf.placeholder(tf.float32, [None, None, None, 3], name='image_input')
        keep_prob = tf.placeholder(tf.float32, name='keep_prob')
        with tf.name_scope('Processing'):
            red, green, blue = tf.split(image_input, 3, axis=3)
            blue_mean, green_mean, red_mean = VGG_BGR_MEANS
            features = tf.concat([blue - blue_mean, green - green_mean, red - red_mean], axis=3)

        variables = {}

        def conv_relu(features, name):
            """ReLU of the layer's SAME convolution; records its (kernel, bias) variables."""
            kernel_shape = layer_shapes[name]
            with tf.variable_scope(name):
                kernel_stddev = np.sqrt(2 / np.prod(kernel_shape[:3])) / (RANDOM_VGG_INPUT_STD if name == 'conv1_1' else 1)
                kernel = tf.get_variable('weights', kernel_shape, initializer=tf.random_normal_initializer(stddev=kernel_stddev))
                bias = tf.get_variable('biases', kernel_shape[3:], initializer=tf.zeros_initializer())
            variables[name] = (kernel, bias)
            return tf.nn.relu(tf.nn.conv2d(features, kernel, 1, 'SAME') + bias, name=f'{name}_relu')

        for block, (_, convolutions) in enumerate(VGG16_BLOCKS, start=1):
            for conv in range(1, convolutions + 1):
                features = conv_relu(features, f'conv{block}_{conv}')
            features = tf.nn.max_pool2d(features, 2, 2, 'SAME', name=f'pool{block}')
            if block in (3, 4):
                tf.identity(features, name=f'layer{block}_out')
        features = tf.nn.dropout(conv_relu(features, 'fc6'), keep_prob=keep_prob, name='fc6_dropout')
        features = tf.nn.dropout(conv_relu(features, 'fc7'), keep_prob=keep_prob, name='fc7_dropout')
        tf.identity(features, name='layer7_out')

        staging_dir = export_dir + '.partial'
        shutil.rmtree(staging_dir, ignore_errors=True)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for name, (kernel_value, bias_value) in (weights or {}).items():
                kernel, bias = variables[name]
                kernel.load(kernel_value, sess)
                bias.load(bias_value, sess)
            builder = tf.saved_model.Builder(staging_dir)
            builder.add_meta_graph_and_variables(sess, ['vgg16'])
            builder.save()
    os.replace(staging_dir, export_dir)
    return export_dir


# ---------------------------------------------------------------- VGG16 from Keras's ImageNet weights

# Keras publishes the ImageNet VGG16 (the authors' Caffe model, converted) as one HDF5 file, which
# keras.applications.VGG16 downloads into $KERAS_HOME/models (default ~/.keras/models) and checks by this md5.
KERAS_VGG16_WEIGHTS_FILE = 'vgg16_weights_tf_dim_ordering_tf_kernels.h5'
KERAS_VGG16_WEIGHTS_URL = ('https://storage.googleapis.com/tensorflow/keras-applications/vgg16/'
                           + KERAS_VGG16_WEIGHTS_FILE)
KERAS_VGG16_WEIGHTS_BYTES = 553_467_096
KERAS_VGG16_WEIGHTS_MD5 = '64373286793e3c8b2b4e3219cbf3544b'
# Keras's VGG16 layer names -> the classic SavedModel's. Keras's last layer, predictions (fc8), has no counterpart.
CLASSIC_NAMES_OF_KERAS_VGG16_LAYERS = {
    **{f'block{block}_conv{conv}': f'conv{block}_{conv}'
       for block, (_, convolutions) in enumerate(VGG16_BLOCKS, start=1) for conv in range(1, convolutions + 1)},
    'fc1': 'fc6',
    'fc2': 'fc7',
}


def keras_cache_path(file_name):
    """Where Keras keeps a downloaded model file: $KERAS_HOME/models/file_name, by default under ~/.keras."""
    keras_home = os.environ.get('KERAS_HOME') or os.path.join(os.path.expanduser('~'), '.keras')
    return os.path.join(keras_home, 'models', file_name)


def fetch_keras_vgg16_weights():
    """Path of Keras's ImageNet VGG16 weights file in Keras's cache, downloaded there (553 MB) when missing.

    Keras and this project share the cached file: whichever downloads it first, the other reuses it.
    The file is checked against Keras's md5. Raises DataUnavailableError naming the URL, its error
    and how to build the SavedModel from a copy fetched elsewhere.
    """
    weights_path = keras_cache_path(KERAS_VGG16_WEIGHTS_FILE)
    if not os.path.exists(weights_path):
        try:
            os.makedirs(os.path.dirname(weights_path), exist_ok=True)
            download_file(KERAS_VGG16_WEIGHTS_URL, weights_path, KERAS_VGG16_WEIGHTS_BYTES)
        except (urllib.error.URLError, OSError) as error:
            raise DataUnavailableError(
                f"Keras's ImageNet VGG16 weights could not be downloaded. Tried:\n"
                f'  {KERAS_VGG16_WEIGHTS_URL}: {error}\n'
                f'Download that file ({KERAS_VGG16_WEIGHTS_BYTES:,} bytes) on a machine with network and put it at '
                f'{weights_path}, or build from it with `python main.py build-vgg --keras-weights PATH`.') from error
    with open(weights_path, 'rb') as weights_file:
        md5 = hashlib.file_digest(weights_file, 'md5').hexdigest()
    if md5 != KERAS_VGG16_WEIGHTS_MD5:
        os.remove(weights_path)
        raise DataUnavailableError(
            f"{weights_path} has md5 {md5}, not {KERAS_VGG16_WEIGHTS_MD5} of Keras's VGG16 weights; it was deleted. "
            'Run again to download it afresh.')
    return weights_path


def read_keras_vgg16_weights(h5_path):
    """{Keras layer name: (kernel, bias)} float32 of VGG16's 13 convolutions and fc1, fc2, read from an HDF5 file.

    The layout is that of Keras's published vgg16_weights_tf_dim_ordering_tf_kernels.h5 (written by
    Keras 1 and 2 `save_weights`): one group per layer, whose `weight_names` attribute names its kernel
    and bias datasets in that order. Kernels are [3, 3, in, out] for the convolutions and [in, out]
    for fc1 and fc2. Other groups (pools, predictions) are not read.
    """
    try:
        weights_file = h5py.File(h5_path, 'r')
    except OSError as error:
        raise ValueError(f"cannot open {h5_path} as an HDF5 file ({error}); expected Keras's "
                         f'{KERAS_VGG16_WEIGHTS_FILE} from {KERAS_VGG16_WEIGHTS_URL}.') from error
    with weights_file:
        layer_weights = {}
        for layer_name in CLASSIC_NAMES_OF_KERAS_VGG16_LAYERS:
            group = weights_file.get(layer_name)
            weight_names = [] if group is None else list(group.attrs.get('weight_names', []))
            if len(weight_names) != 2:
                raise ValueError(
                    f"{h5_path} is not laid out like Keras's {KERAS_VGG16_WEIGHTS_FILE}: expected a group {layer_name} "
                    f'whose weight_names attribute names a kernel and a bias, found weight_names {weight_names} '
                    f'among the groups {sorted(weights_file)}. Use that file, with its top layers, from '
                    f'{KERAS_VGG16_WEIGHTS_URL} (a Keras 3 .weights.h5 file has another layout).')
            kernel_name, bias_name = (name.decode() if isinstance(name, bytes) else name for name in weight_names)
            layer_weights[layer_name] = (np.asarray(group[kernel_name], np.float32),
                                         np.asarray(group[bias_name], np.float32))
    return layer_weights


def classic_vgg16_weights(keras_weights):
    """Keras VGG16 {layer name: (kernel, bias)} -> {classic layer name: (kernel HWIO, bias)} for build_vgg16_savedmodel.

    Convolutions keep their [3, 3, in, out] kernels. The dense fc1 [25088, 4096] becomes fc6's 7x7
    convolution [7, 7, 512, 4096]: Keras flattens pool5 [7, 7, 512] in row-major (h, w, c) order, so
    row (h * 7 + w) * 512 + c of the dense kernel is the convolution kernel's [h, w, c]. The dense
    fc2 [4096, 4096] becomes fc7's [1, 1, 4096, 4096]. Raises ValueError for a shape that is not VGG16's.
    """
    classic_shapes = dict(vgg16_layer_shapes())
    classic_weights = {}
    for keras_name, classic_name in CLASSIC_NAMES_OF_KERAS_VGG16_LAYERS.items():
        kernel, bias = keras_weights[keras_name]
        kernel_shape = classic_shapes[classic_name]
        is_dense = keras_name.startswith('fc')
        keras_kernel_shape = (int(np.prod(kernel_shape[:3])), kernel_shape[3]) if is_dense else kernel_shape
        if kernel.shape != keras_kernel_shape or bias.shape != kernel_shape[3:]:
            raise ValueError(f'{keras_name} has a kernel {kernel.shape} and a bias {bias.shape}; the ImageNet '
                             f'VGG16 has {keras_kernel_shape} and {kernel_shape[3:]}. '
                             f"Use Keras's {KERAS_VGG16_WEIGHTS_FILE}.")
        classic_weights[classic_name] = (kernel.reshape(kernel_shape), bias)
    return classic_weights


def build_vgg16_from_keras_weights(weights_path, export_dir):
    """Write the classic VGG16 SavedModel (see build_vgg16_savedmodel) with the weights of a Keras VGG16 .h5 file."""
    return build_vgg16_savedmodel(export_dir, weights=classic_vgg16_weights(read_keras_vgg16_weights(weights_path)))


# ---------------------------------------------------------------- images and labels

def load_image(path, image_shape=None, resample=Image.BILINEAR):
    """Read an image file as [height, width, 3] uint8 RGB, resized to image_shape (height, width) if given.

    Raises DataError naming the file when it cannot be decoded.
    """
    try:
        with Image.open(path) as opened:
            image = opened.convert('RGB')
            if image_shape is not None:
                image = image.resize((image_shape[1], image_shape[0]), resample)
            return np.asarray(image)
    except (OSError, SyntaxError) as error:
        raise DataError(f'cannot read image {path}: {error}. Replace or delete the file.') from error


def decode_label(label_rgb):
    """KITTI ground truth [h, w, 3] uint8 -> (road, valid) [h, w] bool, by the devkit's rule.

    road = blue channel > 0 and valid = red channel > 0: magenta is road, red is background,
    black lies outside the evaluated area, and the stray pure-blue pixels of real labels are road
    but not valid, so they are ignored like black.
    """
    return label_rgb[..., 2] > 0, label_rgb[..., 0] > 0


def label_to_one_hot(label_rgb):
    """KITTI ground truth [h, w, 3] uint8 -> [h, w, 2] float32 one-hot (background, road).

    Pixels outside the valid area get all zeros, so they add nothing to the masked loss.
    """
    road, valid = decode_label(label_rgb)
    return np.stack([valid & ~road, valid & road], axis=-1).astype(np.float32)


def list_training_pairs(data_folder):
    """[(image path, label path)] of data_folder/image_2 and data_folder/gt_image_2, sorted by image name."""
    return list_labelled_images(os.path.join(data_folder, 'image_2'), os.path.join(data_folder, 'gt_image_2'))


def list_labelled_images(image_dir, label_dir):
    """[(image path, label path)]: each <cat>_NNNNNN.png of image_dir with its <cat>_road_NNNNNN.png of label_dir."""
    for folder in (image_dir, label_dir):
        if not os.path.isdir(folder):
            raise FileNotFoundError(f'{folder} does not exist: expected KITTI Road training images in '
                                    f'{image_dir} and labels in {label_dir}.')
    pairs = []
    for image_path in sorted(glob.glob(os.path.join(image_dir, '*.png'))):
        match = IMAGE_NAME.match(os.path.basename(image_path))
        if match is None:
            continue
        label_path = os.path.join(label_dir, f'{match[1]}_road_{match[2]}.png')
        if not os.path.exists(label_path):
            raise FileNotFoundError(f'{image_path} has no label: expected {label_path}. '
                                    'Add the label or remove the image.')
        pairs.append((image_path, label_path))
    if not pairs:
        raise FileNotFoundError(f'no training images named <um|umm|uu>_NNNNNN.png in {image_dir}')
    return pairs


# ---------------------------------------------------------------- checking a KITTI folder

LABEL_NAME = re.compile(r'^(um|umm|uu)_road_(\d{6})\.png$')
LANE_LABEL_NAME = re.compile(r'^(um|umm|uu)_lane_(\d{6})\.png$')  # KITTI's lane labels, not used here
LABEL_COLOUR_NAMES = {ROAD_COLOUR: 'road', BACKGROUND_COLOUR: 'background', INVALID_COLOUR: 'not evaluated'}
FILES_NAMED = 3  # how many file names a message about many files quotes


@dataclasses.dataclass
class DataCheck:
    """What check_kitti_folder found in road_path.

    errors stop training, warnings do not; each is one message naming its files and what to do.
    summary holds collections.Counters: 'training images', 'road labels' and 'testing images' per
    category ('testing images' is None when the folder is missing), 'image sizes'
    {(width, height): images} and 'label colours' {(r, g, b): pixels}.
    """
    road_path: str
    errors: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)
    summary: dict = dataclasses.field(default_factory=dict)

    def report(self):
        """The summary, every warning and every error, as lines of text for a person."""
        lines = [f'KITTI folder {self.road_path}']
        for name in ('training images', 'road labels', 'testing images'):
            counts = self.summary.get(name)
            by_category = ', '.join(f'{category} {counts[category]}' for category in KITTI_CATEGORIES) if counts else ''
            lines.append(f'  {name:16}' + ('missing' if counts is None else f'{sum(counts.values())} ({by_category})'))
        sizes = self.summary.get('image sizes') or collections.Counter()
        lines.append(f"  {'image sizes':16}" + ', '.join(
            f'{width}x{height} {count}' for (width, height), count in sizes.most_common()))
        colours = self.summary.get('label colours') or collections.Counter()
        colour_counts = ', '.join(f"{LABEL_COLOUR_NAMES.get(colour, 'other')} {colour} {pixels:,} px"
                                  for colour, pixels in colours.most_common())
        lines.append(f"  {'label colours':16}{colour_counts}")
        lines += [f'warning: {warning}' for warning in self.warnings]
        lines += [f'error: {error}' for error in self.errors]
        lines.append(f'errors: {len(self.errors)}, warnings: {len(self.warnings)}')
        return '\n'.join(lines)

    def raise_errors(self):
        """Raise a DataError that lists every error, if there is one."""
        if self.errors:
            raise DataError(f'the KITTI folder {self.road_path} cannot be trained on as it is '
                            f'(errors: {len(self.errors)}):\n' + '\n'.join(f'  - {error}' for error in self.errors))


def quote_files(paths):
    """'a.png, b.png, c.png and 4 more': the first FILES_NAMED file names of a list of paths."""
    names = ', '.join(os.path.basename(path) for path in paths[:FILES_NAMED])
    return names + (f' and {len(paths) - FILES_NAMED} more' if len(paths) > FILES_NAMED else '')


def kitti_files(folder, name_pattern, name_form, check):
    """{(category, number): path} of folder's files named by name_pattern; warns in check about the others.

    KITTI's lane labels (<cat>_lane_NNNNNN.png) are skipped without a warning.
    """
    found, ignored = {}, []
    for name in sorted(os.listdir(folder)):
        match = name_pattern.match(name)
        if match:
            found[match[1], match[2]] = os.path.join(folder, name)
        elif not LANE_LABEL_NAME.match(name):
            ignored.append(name)
    if ignored:
        check.warnings.append(f'ignored in {folder}, not named {name_form}: {quote_files(ignored)}.')
    return found


def verify_image(path):
    """((width, height), mode) of an image file, read from its header after checking every PNG chunk's checksum.

    Nothing is decoded, so it costs about 2 ms for a KITTI image. Raises DataError naming a file that
    cannot be opened, or is truncated or damaged.
    """
    try:
        with Image.open(path) as opened:
            size, mode = opened.size, opened.mode
            opened.verify()
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(f'{path} cannot be read as an image ({error}): it is truncated, damaged or not a PNG. '
                        'Replace it with a good copy from data_road.zip, or remove it (and its label).') from error
    return size, mode


def label_colours(label_rgb):
    """collections.Counter {(r, g, b): pixels} of a [h, w, 3] uint8 label image."""
    red, green, blue = (label_rgb[..., channel].astype(np.uint32) for channel in range(3))
    values, pixels = np.unique(red << 16 | green << 8 | blue, return_counts=True)
    return collections.Counter({(int(value) >> 16, int(value) >> 8 & 255, int(value) & 255): int(count)
                                for value, count in zip(values, pixels)})


def check_kitti_folder(road_path, image_shape=None, require_testing=True):
    """Check a KITTI Road folder before training on it; returns a DataCheck with every problem found.

    road_path holds training/image_2 (<cat>_NNNNNN.png), training/gt_image_2 (<cat>_road_NNNNNN.png) and
    testing/image_2. Errors: a missing folder, or no training pair at all; an image without its label or
    a label without its image; a file that cannot be read; a label whose size differs from its image's
    or that has no valid pixel (red > 0); an image smaller than image_shape (height, width), the network
    input. A missing testing/image_2 is an error when require_testing (training paints its images), else
    a warning. Warnings: images that are not RGB (converted when read), label colours other than KITTI's three
    (decoded by the devkit rule, as the 21 real labels with pure-blue pixels are), ignored file names.
    Labels are decoded (8 ms each); images are only verified (verify_image), so training decodes them once.
    """
    check = DataCheck(road_path)
    image_dir, label_dir, test_dir = (os.path.join(road_path, folder) for folder in KITTI_FOLDERS)
    images, labels, tests = {}, {}, {}
    for folder, what in ((image_dir, 'training images <um|umm|uu>_NNNNNN.png'),
                         (label_dir, 'training labels <um|umm|uu>_road_NNNNNN.png')):
        if not os.path.isdir(folder):
            check.errors.append(f"{folder} is missing: expected KITTI Road's {what} there. Unpack data_road.zip so "
                                f'that {road_path} holds training/ and testing/, or point to the folder that does.')
    if not check.errors:
        images = kitti_files(image_dir, IMAGE_NAME, '<um|umm|uu>_NNNNNN.png', check)
        labels = kitti_files(label_dir, LABEL_NAME, '<um|umm|uu>_road_NNNNNN.png', check)
        if not images and not labels:
            check.errors.append(f'{image_dir} and {label_dir} hold no training pair: expected images '
                                '<um|umm|uu>_NNNNNN.png and their labels <um|umm|uu>_road_NNNNNN.png.')
    if os.path.isdir(test_dir):
        tests = kitti_files(test_dir, IMAGE_NAME, '<um|umm|uu>_NNNNNN.png', check)
    else:
        (check.errors if require_testing else check.warnings).append(
            f"{test_dir} is missing: training paints its images into the run's overlays/ and stops without it. "
            "Unpack data_road.zip's testing/ folder there.")
    for category, number in sorted(images.keys() - labels.keys()):
        expected_label = os.path.join(label_dir, f'{category}_road_{number}.png')
        check.errors.append(f'{images[category, number]} has no label: expected {expected_label}. '
                            'Add the label or remove the image.')
    for category, number in sorted(labels.keys() - images.keys()):
        expected_image = os.path.join(image_dir, f'{category}_{number}.png')
        check.errors.append(f'{labels[category, number]} has no image: expected {expected_image}. '
                            'Add the image or remove the label.')
    check.summary['training images'] = collections.Counter(category for category, _ in images)
    check.summary['road labels'] = collections.Counter(category for category, _ in labels)
    check.summary['testing images'] = (collections.Counter(category for category, _ in tests)
                                       if os.path.isdir(test_dir) else None)
    image_sizes = check_images(check, [images[key] for key in sorted(images)] + [tests[key] for key in sorted(tests)],
                               image_shape)
    check_labels(check, [(images[key], labels[key]) for key in sorted(images.keys() & labels.keys())], image_sizes)
    return check


def check_images(check, image_paths, image_shape=None):
    """Verify each image file (verify_image) and compare its size with image_shape (height, width), if given.

    Adds to check: an error per unreadable or too small image, a warning about images that are not RGB,
    and summary['image sizes']. Returns {path: (width, height)} of the readable images.
    """
    image_sizes, not_rgb = {}, collections.defaultdict(list)
    for image_path in tqdm(image_paths, desc='Checking images', unit='image', leave=False):
        try:
            (width, height), mode = verify_image(image_path)
        except DataError as error:
            check.errors.append(str(error))
            continue
        image_sizes[image_path] = width, height
        if mode != 'RGB':
            not_rgb[mode].append(image_path)
        if image_shape is not None and (height < image_shape[0] or width < image_shape[1]):
            check.errors.append(f'{image_path} is {width}x{height} pixels, smaller than the network input '
                                f'{image_shape[1]}x{image_shape[0]}. Remove it (and its label), or train with a '
                                'smaller --image-width and --image-height.')
    if not_rgb:
        paths = [path for mode_paths in not_rgb.values() for path in mode_paths]
        modes = ', '.join(f'{mode} {len(mode_paths)}' for mode, mode_paths in sorted(not_rgb.items()))
        check.warnings.append(f'images that are not RGB ({modes}): {quote_files(paths)}. '
                              'They are converted to RGB when read; an alpha channel is dropped.')
    check.summary['image sizes'] = collections.Counter(image_sizes.values())
    return image_sizes


def check_labels(check, pairs, image_sizes):
    """Decode the label of each (image path, label path) pair; compare its size with image_sizes[image path].

    Adds to check: an error per unreadable label, label of another size than its image, or label
    without a valid pixel; a warning about colours other than KITTI's three, with their pixel
    counts; and summary['label colours'].
    """
    colours, labels_by_odd_colour = collections.Counter(), collections.defaultdict(list)
    for image_path, label_path in tqdm(pairs, desc='Checking labels', unit='label', leave=False):
        try:
            verify_image(label_path)
            label = load_image(label_path)
        except DataError as error:
            check.errors.append(str(error))
            continue
        (label_width, label_height), image_size = (label.shape[1], label.shape[0]), image_sizes.get(image_path)
        if image_size is not None and (label_width, label_height) != image_size:
            check.errors.append(f'{label_path} is {label_width}x{label_height} pixels but its image {image_path} is '
                                f"{image_size[0]}x{image_size[1]}: a label must have its image's size. Replace the "
                                'label with the one made for this image.')
        colours_here = label_colours(label)
        colours.update(colours_here)
        for colour in colours_here.keys() - LABEL_COLOUR_NAMES.keys():
            labels_by_odd_colour[colour].append(label_path)
        if not any(red > 0 for red, _, _ in colours_here):
            check.errors.append(f'{label_path} has no valid pixel (none with red > 0): all of it lies outside the '
                                'evaluated area, so its image can neither be learned nor scored. Fix the label '
                                '(road magenta, background red) or remove the pair.')
    if labels_by_odd_colour:
        odd_labels = {path for paths in labels_by_odd_colour.values() for path in paths}
        odd_colours = '; '.join(f'{colour} {colours[colour]:,} pixels in {quote_files(paths)}' for colour, paths
                                in sorted(labels_by_odd_colour.items(), key=lambda item: -colours[item[0]]))
        check.warnings.append(
            f'{len(odd_labels)} of {len(pairs)} labels hold colours other than road {ROAD_COLOUR}, background '
            f'{BACKGROUND_COLOUR} and not evaluated {INVALID_COLOUR}: {odd_colours}. They are decoded by the KITTI '
            'devkit rule, road = blue > 0 and valid = red > 0: pixels with red = 0 (such as pure blue) lie outside '
            'the evaluated area and are ignored like black.')
    check.summary['label colours'] = colours


# ---------------------------------------------------------------- training batches

def split_training_pairs(pairs, val_count, seed=0):
    """Split [(image path, label path)] into (train_pairs, val_pairs), stratified over um, umm and uu.

    Each category gives a share of the val_count validation pairs proportional to its size (largest
    remainders first); the choice within a category is seeded. Both lists keep the input order.
    """
    if not 0 <= val_count < len(pairs):
        raise ValueError(f'--val-count {val_count} must lie in 0..{len(pairs) - 1}: there are {len(pairs)} training images')
    categories = [IMAGE_NAME.match(os.path.basename(image_path))[1] for image_path, _ in pairs]
    sizes = np.array([categories.count(category) for category in KITTI_CATEGORIES])
    quotas = sizes * val_count / len(pairs)
    shares = np.floor(quotas).astype(int)
    shares[np.argsort(shares - quotas, kind='stable')[:val_count - shares.sum()]] += 1
    rng = np.random.default_rng(seed)
    val_indices = set()
    for category, share in zip(KITTI_CATEGORIES, shares):
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


def gen_batch_function(data_folder, image_shape, pairs=None, augmentation=None):
    """Make get_batches_fn(batch_size) for the KITTI training folder data_folder.

    pairs restricts training to those (image path, label path) pairs (default: the whole folder);
    augmentation (an Augmentation) transforms each image and label afresh every epoch.
    Every image and label is decoded and resized to image_shape (height, width) once, here, and
    kept in memory as uint8. Each call of get_batches_fn yields one shuffled epoch of
    (images [b, h, w, 3] float32 RGB 0..255, labels [b, h, w, 2] float32 one-hot, invalid = 0).
    A background thread makes the batches (augmentation, one-hot labels) PREFETCH_BATCHES ahead of
    the consumer (prefetched), so that a training step does not wait for its batch; the shuffle and
    the augmentation's seed are drawn from np.random in the consumer's thread, as before, so a run
    seeded with np.random.seed gets the same batches.
    get_batches_fn.num_images is the number of training images.
    """
    pairs = list_training_pairs(data_folder) if pairs is None else pairs
    images, labels = [], []
    for image_path, label_path in tqdm(pairs, desc='Decoding training images', unit='image'):
        images.append(load_image(image_path, image_shape))
        labels.append(load_image(label_path, image_shape, Image.NEAREST))
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


# ---------------------------------------------------------------- inference and painted outputs

def paint_road(image, road_prob, threshold=ROAD_THRESHOLD):
    """Overlay: image [h, w, 3] uint8 with pixels of road_prob [h, w] > threshold tinted translucent green."""
    road = (road_prob > threshold)[..., None]
    tinted = image * (1 - OVERLAY_ALPHA) + np.array(OVERLAY_COLOUR) * OVERLAY_ALPHA
    return np.where(road, tinted, image).round().astype(np.uint8)


# A predictor, predict(images) -> road_probs, maps a list of [h, w, 3] uint8 RGB images of any sizes to their
# [h, w] float32 road probabilities in 0..1. session_road_predictor makes one from a training session,
# saved_model_road_predictor from the exported model. Both run the same TensorFlow ops: resize_bilinear to the
# network's image_shape, the FCN-8s with keep_prob 1, network_road_prob, road_prob_at_size back to each image's size.

def resize_bilinear(images, size):
    """[b, h, w, c] float32 resized to size ((height, width) or [2] int32): bilinear, antialiased when shrinking.

    Antialiased like PIL's BILINEAR, which resizes the training images (gen_batch_function).
    """
    return tf.compat.v2.image.resize(images, size, method='bilinear', antialias=True)


def network_road_prob(logits, image_shape):
    """[b, height, width] float32 road probability (softmax, class 1) of logits [b * height * width, num_classes].

    (height, width) = image_shape, the network's input size.
    """
    return tf.reshape(tf.nn.softmax(logits)[:, 1], [-1, *image_shape])


def road_prob_at_size(road_prob, size):
    """[b, h, w] float32 road probability resized to size ([2] int32 (height, width)): [b, height, width]."""
    return resize_bilinear(road_prob[..., None], size)[..., 0]


def predict_by_size(images, predict_batch):
    """[h, w] float32 road probability of each of a list of [h, w, 3] uint8 images of any sizes.

    predict_batch maps a batch of one size, [b, h, w, 3] float32 RGB 0..255, to [b, h, w] road
    probabilities; each run of consecutive images of one size goes through it as one batch.
    """
    road_probs = []
    for _, same_size in itertools.groupby(images, key=lambda image: image.shape):
        road_probs.extend(predict_batch(np.stack(list(same_size)).astype(np.float32)))
    return road_probs


def session_road_predictor(sess, logits, keep_prob, image_pl, image_shape):
    """predict(images) -> road probabilities (see above), for a training session's graph.

    logits: [b * height * width, num_classes] of the network fed through image_pl at image_shape
    (height, width). The resize ops are added to sess's graph once, here; predict runs them and the
    network in sess, two calls per batch, so it gives what the exported model gives (export_model).
    """
    with sess.graph.as_default():
        original_images = tf.placeholder(tf.float32, [None, None, None, 3], name='predict_images')
        network_input = resize_bilinear(original_images, image_shape)
        original_size = tf.placeholder(tf.int32, [2], name='predict_original_size')
        road_prob = road_prob_at_size(network_road_prob(logits, image_shape), original_size)

    def predict_batch(batch):
        resized = sess.run(network_input, {original_images: batch})
        return sess.run(road_prob, {image_pl: resized, keep_prob: 1.0, original_size: batch.shape[1:3]})

    return lambda images: predict_by_size(images, predict_batch)


def forward_pass(sess, logits):
    """(GraphDef of the ops that compute logits in sess's graph, {variable name: trained value numpy array}).

    Only the forward pass: no loss, optimizer or initializers. Its (TF1 reference) variables are left
    out of the GraphDef, and with them the ops' colocation hints, so that an import can map each
    'name:0' to a variable of its own (export_model).
    """
    graph_def = tf.graph_util.extract_sub_graph(sess.graph.as_graph_def(), [logits.op.name])
    variable_names = [node.name for node in graph_def.node if node.op in ('Variable', 'VariableV2')]
    trained_values = dict(zip(variable_names, sess.run([name + ':0' for name in variable_names])))
    operations = [node for node in graph_def.node if node.name not in trained_values]
    for node in operations:
        node.attr.pop('_class', None)
    del graph_def.node[:]
    graph_def.node.extend(operations)
    return graph_def, trained_values


def export_model(sess, input_image, keep_prob, logits, image_shape, export_dir):
    """Write the FCN-8s trained in sess as a SavedModel for tf.saved_model.load and TF Serving; returns export_dir.

    Tag 'serve', signature 'serving_default': images [batch, height, width, 3] float32 RGB 0..255 of
    any size -> road_prob [batch, height, width] float32 in 0..1. The serving graph resizes the images
    to image_shape (height, width), runs a copy of the training graph's forward pass (VGG16 and the
    decoder, imported with keep_prob fixed to 1) and resizes the road probability back. Its variables
    keep the training names and get the trained values; the optimizer state stays in the checkpoint.
    The folder is written whole or not at all.
    """
    graph_def, trained_values = forward_pass(sess, logits)
    staging_dir = export_dir + '.partial'
    shutil.rmtree(staging_dir, ignore_errors=True)
    with tf.Graph().as_default(), tf.Session() as serving_sess:
        variables = {name: tf.get_variable(name, value.shape, tf.as_dtype(value.dtype), tf.zeros_initializer(),
                                           use_resource=True)
                     for name, value in trained_values.items()}
        original_images = tf.placeholder(tf.float32, [None, None, None, 3], name=SERVING_INPUT)
        network_input = resize_bilinear(original_images, image_shape)
        network_logits, = tf.import_graph_def(
            graph_def, input_map={input_image.name: network_input, keep_prob.name: tf.constant(1.0),
                                  **{name + ':0': variable.value() for name, variable in variables.items()}},
            return_elements=[logits.name], name='fcn8s')
        road_prob = road_prob_at_size(network_road_prob(network_logits, image_shape), tf.shape(original_images)[1:3])
        road_prob = tf.identity(road_prob, name=SERVING_OUTPUT)
        for name, variable in variables.items():
            variable.load(trained_values[name], serving_sess)
        signature = tf.saved_model.predict_signature_def({SERVING_INPUT: original_images}, {SERVING_OUTPUT: road_prob})
        builder = tf.saved_model.Builder(staging_dir)
        builder.add_meta_graph_and_variables(serving_sess, [SERVING_TAG], signature_def_map={SERVING_SIGNATURE: signature})
        builder.save()
    os.replace(staging_dir, export_dir)
    return export_dir


def saved_model_road_predictor(model_dir, session_config=None):
    """predict(images) -> road probabilities (see above), from the SavedModel that export_model wrote to model_dir.

    The model is loaded into a graph and session of its own, which live as long as predict does; the
    session gets session_config, a tf.ConfigProto (main.session_config: the precision), if given.
    Raises ValueError naming model_dir when it holds no such model.
    """
    sess = tf.Session(graph=tf.Graph(), config=session_config)
    try:
        signature = tf.saved_model.loader.load(sess, [SERVING_TAG], model_dir).signature_def[SERVING_SIGNATURE]
        images_input = sess.graph.get_tensor_by_name(signature.inputs[SERVING_INPUT].name)
        road_prob_output = sess.graph.get_tensor_by_name(signature.outputs[SERVING_OUTPUT].name)
    except (OSError, RuntimeError, KeyError) as error:
        sess.close()
        raise ValueError(
            f'cannot load a road model from {model_dir}: {error}. Expected the SavedModel that every training run '
            f'exports to runs/<timestamp>/model/ (tag "{SERVING_TAG}", signature "{SERVING_SIGNATURE}" mapping '
            f'"{SERVING_INPUT}" to "{SERVING_OUTPUT}").') from error
    return lambda images: predict_by_size(images, lambda batch: sess.run(road_prob_output, {images_input: batch}))


def predict_image_files(predict, image_paths, batch_size=8):
    """Yield (path, image [h, w, 3] uint8 RGB, road_prob [h, w] float32) of each image file, batch_size per predict call."""
    for start in range(0, len(image_paths), batch_size):
        batch_paths = image_paths[start:start + batch_size]
        images = [load_image(path) for path in batch_paths]
        yield from zip(batch_paths, images, predict(images))


def gen_test_output(sess, logits, keep_prob, image_pl, data_folder, image_shape, batch_size=8):
    """Yield (file name, overlay [h, w, 3] uint8 at the image's own size) for data_folder/image_2/*.png.

    Images go through the network in batches of batch_size (session_road_predictor).
    """
    predict = session_road_predictor(sess, logits, keep_prob, image_pl, image_shape)
    image_paths = sorted(glob.glob(os.path.join(data_folder, 'image_2', '*.png')))
    for path, image, road_prob in predict_image_files(predict, image_paths, batch_size):
        yield os.path.basename(path), paint_road(image, road_prob)


def save_inference_samples(runs_dir, data_dir, sess, image_shape, logits, keep_prob, input_image, output_dir=None):
    """Paint every data_dir/data_road/testing image and save the overlays as PNG.

    They go to output_dir, or to runs_dir/<unix time> as in the classic project. Returns that folder.
    """
    output_dir = output_dir or os.path.join(runs_dir, str(time.time()))
    os.makedirs(output_dir, exist_ok=True)
    test_folder = os.path.join(data_dir, 'data_road', 'testing')
    num_images = len(glob.glob(os.path.join(test_folder, 'image_2', '*.png')))
    outputs = gen_test_output(sess, logits, keep_prob, input_image, test_folder, image_shape)
    for name, overlay in tqdm(outputs, total=num_images, desc='Painting test images', unit='image'):
        Image.fromarray(overlay).save(os.path.join(output_dir, name))
    return output_dir


# ---------------------------------------------------------------- using a trained model: image files and videos

def list_image_files(paths):
    """The image files that paths name: each file as given, and each folder's PNG and JPEG files in name order.

    Raises FileNotFoundError naming a path that does not exist or a folder that holds no such image.
    """
    image_paths = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, name) for name in os.listdir(path) if name.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise FileNotFoundError(f'{path} holds no image ({", ".join(IMAGE_EXTENSIONS)})')
            image_paths += found
        elif os.path.isfile(path):
            image_paths.append(path)
        else:
            raise FileNotFoundError(f'{path} does not exist: give PNG or JPEG images, or folders of them')
    return image_paths


def kitti_result_name(image_path):
    """um_000000.png -> um_road_000000.png: the KITTI Road benchmark's file name for an image's road result."""
    match = IMAGE_NAME.match(os.path.basename(image_path))
    if match is None:
        raise ValueError(f'{image_path} is not named like a KITTI Road image (<um|umm|uu>_NNNNNN.png), so the '
                         'benchmark has no name for its result; give the images of data_road/testing/image_2.')
    return f'{match[1]}_road_{match[2]}.png'


def save_road_images(predict, image_paths, output_dir, masks=False, kitti_submission=False, batch_size=8):
    """Write each image's road prediction, at the image's own size, under output_dir; returns the paths written.

    By default overlays/<name>.png, the image with its road painted (paint_road), and with masks also
    masks/<name>.png, grayscale 255 on road (probability > ROAD_THRESHOLD) and 0 elsewhere; <name> is
    the image's file name without its extension. With kitti_submission only <cat>_road_<NNNNNN>.png
    (kitti_result_name): the road probability as grayscale uint8 (probability * 255, rounded), the
    KITTI Road benchmark's perspective-space result, which its devkit transforms to the bird's-eye view.
    Raises ValueError before predicting anything when two images would write one file.
    """
    if kitti_submission:
        result_names = [kitti_result_name(path) for path in image_paths]
    else:
        result_names = [os.path.splitext(os.path.basename(path))[0] + '.png' for path in image_paths]
    clashes = sorted(name for name, count in collections.Counter(result_names).items() if count > 1)
    if clashes:
        raise ValueError(f'several input images would write {", ".join(clashes)}: give images with distinct names')
    written_paths = []
    predictions = predict_image_files(predict, image_paths, batch_size)
    for result_name, (_, image, road_prob) in tqdm(zip(result_names, predictions), total=len(image_paths),
                                                     desc='Predicting road', unit='image'):
        if kitti_submission:
            pictures = {result_name: np.clip(road_prob * 255, 0, 255).round().astype(np.uint8)}
        else:
            pictures = {os.path.join('overlays', result_name): paint_road(image, road_prob)}
            if masks:
                pictures[os.path.join('masks', result_name)] = np.where(road_prob > ROAD_THRESHOLD, 255, 0).astype(np.uint8)
        for relative_path, picture in pictures.items():
            written_path = os.path.join(output_dir, relative_path)
            os.makedirs(os.path.dirname(written_path), exist_ok=True)
            Image.fromarray(picture).save(written_path)
            written_paths.append(written_path)
    return written_paths


def open_video(path):
    """The video file at path as a moviepy VideoFileClip; raises ValueError naming path when ffmpeg cannot read it."""
    try:
        return VideoFileClip(path)
    except (OSError, KeyError) as error:
        raise ValueError(f'cannot read video {path}: {str(error).strip()}\n'
                         'Give a video file that ffmpeg reads, such as an MP4.') from error


def paint_video(predict, clip, output_path, batch_size=8):
    """Write clip (open_video) to output_path with the road painted on every frame; returns the frame count.

    fps, frame size and audio stay as they are; the codec follows output_path's extension (moviepy's
    write_videofile: H.264 for .mp4). moviepy asks for the frames in order, one at a time: the first
    request past the painted frames reads that frame and the next batch_size - 1, and paints them all
    with one predict call.
    """
    frame_count = int(clip.duration * clip.fps)  # as many frames as write_videofile writes
    painted = {}
    with tqdm(total=frame_count, desc='Painting video frames', unit='frame') as bar:

        def painted_frame(get_frame, time_s):
            frame_index = round(time_s * clip.fps)
            if frame_index not in painted:
                batch_indices = range(frame_index, max(frame_index + 1, min(frame_index + batch_size, frame_count)))
                frames = [get_frame(index / clip.fps) for index in batch_indices]
                painted.clear()
                painted.update(zip(batch_indices, map(paint_road, frames, predict(frames))))
                bar.update(len(frames))
            return painted[frame_index]

        clip.transform(painted_frame).write_videofile(
            output_path, fps=clip.fps, temp_audiofile_path=os.path.dirname(os.path.abspath(output_path)), logger=None)
    return frame_count


# ---------------------------------------------------------------- validation: the KITTI road metric

# The devkit sweeps these 256 thresholds: a pixel counts as road when its probability >= threshold.
EVAL_THRESHOLDS = np.arange(256) / 255.0


@dataclasses.dataclass
class RoadCounts:
    """Valid-pixel counts of the KITTI road evaluation, summed over images as the devkit sums them."""
    false_negatives: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(256, np.int64))  # [256] per threshold
    false_positives: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(256, np.int64))  # [256] per threshold
    positives: int = 0          # valid road pixels
    negatives: int = 0          # valid non-road pixels
    true_positives_05: int = 0  # road pixels with probability > 0.5, for IoU
    false_positives_05: int = 0
    images: int = 0

    def __add__(self, other):
        return RoadCounts(*(getattr(self, field.name) + getattr(other, field.name)
                            for field in dataclasses.fields(self)))


def count_road_pixels(road_prob, road, valid):
    """RoadCounts of one image: road_prob [h, w] float in 0..1; road, valid [h, w] bool from decode_label.

    One histogram of the probabilities per class (devkit evalExp): no pass per threshold.
    """
    bins = np.searchsorted(EVAL_THRESHOLDS, road_prob, side='right')  # 0..256: thresholds <= probability
    road_hist = np.bincount(bins[road & valid], minlength=257)
    other_hist = np.bincount(bins[~road & valid], minlength=257)
    painted = road_prob > 0.5
    return RoadCounts(
        false_negatives=np.cumsum(road_hist)[:256],
        false_positives=np.cumsum(other_hist[::-1])[::-1][1:],
        positives=int(road_hist.sum()), negatives=int(other_hist.sum()),
        true_positives_05=int((painted & road & valid).sum()), false_positives_05=int((painted & ~road & valid).sum()),
        images=1)


def precision_recall(counts):
    """(precision, recall, kept) [256] over EVAL_THRESHOLDS, without the points with neither TP nor recall (devkit)."""
    true_positives = counts.positives - counts.false_negatives
    recall = true_positives / max(counts.positives, 1)
    precision = true_positives / (true_positives + counts.false_positives + 1e-10)
    kept = ~((recall == 0) & (precision == 0))
    return precision, recall, kept


def road_metrics(counts):
    """The KITTI road benchmark's numbers from RoadCounts, as the devkit's pxEval_maximizeFMeasure computes them.

    MaxF: the largest F1 over the 256 thresholds; PRE, REC, FPR, FNR and threshold at that point.
    AP: the devkit's 11-point interpolated average precision (Pascal VOC 2007): the mean over recall
    levels 0, 0.1, ..., 1 of the best precision at a recall at least that level.
    IoU: road intersection over union at probability > 0.5. All as plain floats, plus the image count.
    """
    precision, recall, kept = precision_recall(counts)
    if counts.positives == 0 or not kept.any():
        raise ValueError(f'no valid road pixel was predicted or labelled in {counts.images} images: nothing to score')
    precision, recall, thresholds = precision[kept], recall[kept], EVAL_THRESHOLDS[kept]
    f_measure = 2 * precision * recall / (precision + recall + 1e-10)
    best = int(f_measure.argmax())
    average_precision = np.mean([precision[recall >= level].max() for level in np.arange(0, 1.1, 0.1)])
    false_negatives = counts.false_negatives[kept][best]
    false_positives = counts.false_positives[kept][best]
    true_positives = counts.positives - false_negatives
    true_negatives = counts.negatives - false_positives
    false_negatives_05 = counts.positives - counts.true_positives_05
    return {
        'MaxF': float(f_measure[best]),
        'AP': float(average_precision),
        'PRE': float(precision[best]),
        'REC': float(recall[best]),
        'FPR': float(false_positives / max(false_positives + true_negatives, 1)),
        'FNR': float(false_negatives / max(true_positives + false_negatives, 1)),
        'threshold': float(thresholds[best]),
        'IoU': float(counts.true_positives_05 / max(counts.true_positives_05 + counts.false_positives_05 + false_negatives_05, 1)),
        'images': counts.images,
    }


def evaluate_road(predict, pairs, batch_size=8):
    """{'um', 'umm', 'uu': RoadCounts} of predict on the (image path, label path) pairs.

    Scored in perspective space at each image's own size, as the devkit does: predict maps a list of
    [h, w, 3] uint8 images to their [h, w] road probabilities (see predict_by_size), batch_size at a time.
    """
    counts = {category: RoadCounts() for category in KITTI_CATEGORIES}
    label_paths = dict(pairs)
    predictions = predict_image_files(predict, [image_path for image_path, _ in pairs], batch_size)
    for image_path, _, road_prob in tqdm(predictions, total=len(pairs), desc='Scoring validation images',
                                         unit='image', leave=False):
        category = IMAGE_NAME.match(os.path.basename(image_path))[1]
        road, valid = decode_label(load_image(label_paths[image_path]))
        counts[category] = counts[category] + count_road_pixels(road_prob, road, valid)
    return counts


def score_road(counts_by_category):
    """{'overall': metrics, 'um': ..., 'umm': ..., 'uu': ...} (road_metrics) of evaluate_road's counts.

    The overall numbers come from the pixel counts summed over all images, not from a mean of the
    categories' numbers; a category without images is left out.
    """
    overall = sum(counts_by_category.values(), RoadCounts())
    scores = {'overall': road_metrics(overall)}
    scores.update({category: road_metrics(counts) for category, counts in counts_by_category.items() if counts.images})
    return scores


def save_pr_curve(counts_by_category, png_path):
    """Plot the precision-recall curve of each category with images, and overall; write a PNG."""
    figure, axes = pyplot.subplots(figsize=(6, 5), dpi=100)
    overall = sum(counts_by_category.values(), RoadCounts())
    for name, counts in [*counts_by_category.items(), ('overall', overall)]:
        if counts.images and counts.positives:
            precision, recall, kept = precision_recall(counts)
            axes.plot(recall[kept], precision[kept], linewidth=2 if name == 'overall' else 1.2,
                      label=f"{name} (MaxF {road_metrics(counts)['MaxF']:.3f}, {counts.images} images)")
    axes.set_xlabel('recall')
    axes.set_ylabel('precision')
    axes.set_xlim(0, 1.01)
    axes.set_ylim(0, 1.01)
    axes.grid(True, alpha=0.3)
    axes.legend(loc='lower left')
    figure.tight_layout()
    figure.savefig(png_path)
    pyplot.close(figure)


# ---------------------------------------------------------------- plots

def save_loss_curve(loss_rows, png_path):
    """Plot [(epoch, step, loss)] as the per-step loss and the per-epoch mean; write a PNG."""
    epochs, _, losses = (np.array(column) for column in zip(*loss_rows))
    global_steps = np.arange(1, len(losses) + 1)
    epoch_numbers = np.unique(epochs)
    epoch_ends = [global_steps[epochs == epoch][-1] for epoch in epoch_numbers]
    epoch_means = [losses[epochs == epoch].mean() for epoch in epoch_numbers]
    figure, axes = pyplot.subplots(figsize=(8, 4.5), dpi=100)
    axes.plot(global_steps, losses, color='tab:blue', alpha=0.35, linewidth=1, label='per step')
    axes.plot(epoch_ends, epoch_means, color='tab:blue', marker='o', linewidth=2, label='epoch mean')
    axes.set_xlabel('training step')
    axes.set_ylabel('loss (cross-entropy + L2)')
    axes.set_yscale('log')
    axes.grid(True, which='both', alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(png_path)
    pyplot.close(figure)
