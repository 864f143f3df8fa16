"""Checks of the FCN-8s road trainer, all offline: the classic project's five tests, then known-answer
tests of the VGG16 builder, label decoding, the masked loss, downloads and a short end-to-end run.

    python project_tests.py            (or)            python -m pytest project_tests.py
"""
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import zipfile
from unittest import mock

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import h5py  # noqa: E402
import imageio_ffmpeg  # noqa: E402
import moviepy  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
from PIL import Image  # noqa: E402
from tensorflow.core.protobuf import rewriter_config_pb2  # noqa: E402

import helper  # noqa: E402
import main  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED_SAMPLES = os.path.join(HERE, '..', 'shared', 'kitti_samples', 'training')
TINY_WIDTH = 1 / 16  # VGG16 channels scaled to 4 ... 256: fast enough for CPU tests


@pytest.fixture(autouse=True)
def fresh_graph():
    """Every test builds its graph from scratch."""
    with tf.Graph().as_default():
        yield


@pytest.fixture(autouse=True)
def keras_cache_in_tmp(tmp_path_factory, monkeypatch):
    """Keras's cache ($KERAS_HOME) is a fresh folder in every test: no test reads or fills the user's ~/.keras."""
    monkeypatch.setenv('KERAS_HOME', str(tmp_path_factory.mktemp('keras_home')))


@pytest.fixture(scope='module')
def tiny_vgg_path(tmp_path_factory):
    """A builder-made VGG16 SavedModel of width 1/16 with random weights."""
    return helper.build_vgg16_savedmodel(str(tmp_path_factory.mktemp('vgg') / 'vgg'), width=TINY_WIDTH, seed=1)


def assert_tensor_shape(tensor, expected_shape, name):
    """The static shape of tensor equals expected_shape (None for unknown dimensions)."""
    assert tensor.shape.as_list() == expected_shape, f'{name} has shape {tensor.shape}, expected {expected_shape}'


# ---------------------------------------------------------------- the classic project's tests

def test_load_vgg():
    with mock.patch.object(main.tf.saved_model.loader, 'load') as mock_load_model, tf.Session() as sess:
        vgg_path = ''
        expected = [tf.placeholder(tf.float32, name=name) for name in
                    ('image_input', 'keep_prob', 'layer3_out', 'layer4_out', 'layer7_out')]
        loaded = main.load_vgg(sess, vgg_path)
    assert mock_load_model.call_args == mock.call(sess, ['vgg16'], vgg_path)
    assert list(loaded) == expected


def test_layers():
    num_classes = 2
    vgg_layer3_out = tf.placeholder(tf.float32, [None, None, None, 256])
    vgg_layer4_out = tf.placeholder(tf.float32, [None, None, None, 512])
    vgg_layer7_out = tf.placeholder(tf.float32, [None, None, None, 4096])
    layers_output = main.layers(vgg_layer3_out, vgg_layer4_out, vgg_layer7_out, num_classes)
    assert_tensor_shape(layers_output, [None, None, None, num_classes], 'Layers Output')


def test_optimize():
    num_classes = 2
    shape = [2, 3, 4, num_classes]
    layers_output = tf.Variable(tf.zeros(shape))
    correct_label = tf.placeholder(tf.float32, [None, None, None, num_classes])
    learning_rate = tf.placeholder(tf.float32)
    logits, train_op, cross_entropy_loss = main.optimize(layers_output, correct_label, learning_rate, num_classes)
    assert_tensor_shape(logits, [2 * 3 * 4, num_classes], 'Logits')
    labels = np.eye(num_classes)[np.arange(np.prod(shape[:3])) % num_classes].reshape(shape)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train_op, {correct_label: labels, learning_rate: 10})
        trained = sess.run(layers_output)
    assert np.abs(trained).max() > 0, 'Training operation not changing weights.'


def test_train_nn():
    epochs, batch_size = 2, 2

    def get_batches_fn(batch_size):
        shape = [batch_size, 2, 3, 3]
        return np.arange(np.prod(shape)).reshape(shape)

    losses = iter([10.11, 9.5, 8.25, 7.0])
    input_image = tf.placeholder(tf.float32, name='input_image')
    correct_label = tf.placeholder(tf.float32, name='correct_label')
    keep_prob = tf.placeholder(tf.float32, name='keep_prob')
    learning_rate = tf.placeholder(tf.float32, name='learning_rate')
    cross_entropy_loss = tf.py_func(lambda: np.float32(next(losses)), [], tf.float32)
    train_op = tf.no_op()
    with tf.Session() as sess:
        loss_rows = main.train_nn(sess, epochs, batch_size, get_batches_fn, train_op, cross_entropy_loss,
                                  input_image, correct_label, keep_prob, learning_rate)
    assert loss_rows == [(1, 1, pytest.approx(10.11)), (1, 2, 9.5), (2, 1, 8.25), (2, 2, 7.0)]


def test_for_kitti_dataset():
    data_folder = os.path.join(HERE, 'data', 'data_road')
    if not os.path.isdir(data_folder):
        pytest.skip(f'{data_folder} is absent: run `python main.py` once with network to download KITTI Road')
    counts = {folder: len(os.listdir(os.path.join(data_folder, folder))) for folder in helper.KITTI_FOLDERS}
    road_labels = len([name for name in os.listdir(os.path.join(data_folder, 'training', 'gt_image_2')) if '_road_' in name])
    assert counts['training/image_2'] == 289, 'expected 289 training images'
    assert road_labels == 289, 'expected 289 road labels'
    assert counts['testing/image_2'] == 290, 'expected 290 testing images'


# ---------------------------------------------------------------- the VGG16 builder and load_vgg

@pytest.mark.parametrize('width, channels', [(1.0, (256, 512, 4096)), (TINY_WIDTH, (16, 32, 256))])
def test_builder_savedmodel_through_load_vgg(tmp_path, width, channels):
    vgg_path = helper.build_vgg16_savedmodel(str(tmp_path / 'vgg'), width=width)
    with tf.Session() as sess:
        image_input, keep_prob, layer3_out, layer4_out, layer7_out = main.load_vgg(sess, vgg_path)
        assert_tensor_shape(image_input, [None, None, None, 3], 'image_input')
        outputs = sess.run([layer3_out, layer4_out, layer7_out],
                           {image_input: np.zeros((1, 160, 576, 3), np.float32), keep_prob: 1.0})
    assert [output.shape for output in outputs] == [
        (1, 20, 72, channels[0]), (1, 10, 36, channels[1]), (1, 5, 18, channels[2])]


def test_builder_subtracts_bgr_means_in_graph(tiny_vgg_path):
    rgb = np.array([[[[10.0, 20.0, 30.0]]]], np.float32)
    with tf.Session() as sess:
        image_input, *_ = main.load_vgg(sess, tiny_vgg_path)
        bgr = sess.run(sess.graph.get_tensor_by_name('Processing/concat:0'), {image_input: rgb})
    np.testing.assert_allclose(bgr[0, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)


def test_builder_stores_given_weights(tmp_path):
    rng = np.random.default_rng(3)
    weights = {name: (rng.normal(size=shape).astype(np.float32), rng.normal(size=shape[3:]).astype(np.float32))
               for name, shape in helper.vgg16_layer_shapes(TINY_WIDTH)}
    vgg_path = helper.build_vgg16_savedmodel(str(tmp_path / 'vgg'), width=TINY_WIDTH, weights=weights)
    with tf.Session() as sess:
        main.load_vgg(sess, vgg_path)
        fc6_kernel, conv3_3_bias = sess.run(['fc6/weights:0', 'conv3_3/biases:0'])
    np.testing.assert_array_equal(fc6_kernel, weights['fc6'][0])
    np.testing.assert_array_equal(conv3_3_bias, weights['conv3_3'][1])


def test_builder_refuses_to_overwrite(tmp_path):
    (tmp_path / 'vgg').mkdir()
    with pytest.raises(FileExistsError, match='vgg'):
        helper.build_vgg16_savedmodel(str(tmp_path / 'vgg'), width=TINY_WIDTH)


def test_new_variables_initialised_without_touching_vgg_weights(tiny_vgg_path):
    with tf.Session() as sess:
        image_input, keep_prob, layer3_out, layer4_out, layer7_out = main.load_vgg(sess, tiny_vgg_path)
        loaded_kernel = sess.run('conv1_1/weights:0')
        nn_last_layer = main.layers(layer3_out, layer4_out, layer7_out, 2)
        main.optimize(nn_last_layer, tf.placeholder(tf.float32, [None, None, None, 2]), 1e-3, 2)
        main.initialize_new_variables(sess)
        assert sess.run(tf.report_uninitialized_variables()).size == 0
        np.testing.assert_array_equal(sess.run('conv1_1/weights:0'), loaded_kernel)


def test_load_vgg_names_missing_tensors(tmp_path):
    export_dir = str(tmp_path / 'not_vgg')
    with tf.Graph().as_default(), tf.Session() as sess:
        tf.placeholder(tf.float32, name='image_input')
        builder = tf.saved_model.Builder(export_dir)
        builder.add_meta_graph_and_variables(sess, ['vgg16'])
        builder.save()
    with tf.Session() as sess, pytest.raises(ValueError, match='layer7_out:0'):
        main.load_vgg(sess, export_dir)


def test_load_vgg_explains_a_wrong_path(tmp_path):
    with tf.Session() as sess, pytest.raises(ValueError, match='no_such_folder'):
        main.load_vgg(sess, str(tmp_path / 'no_such_folder'))


# ---------------------------------------------------------------- the FCN-8s decoder and the loss

def test_bilinear_upsample_kernel():
    kernel = main.bilinear_upsample_kernel(4, 2)
    ramp = np.array([0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(kernel[:, :, 0, 0], np.outer(ramp, ramp))
    np.testing.assert_allclose(kernel[:, :, 1, 1], np.outer(ramp, ramp))
    assert not kernel[:, :, 0, 1].any() and not kernel[:, :, 1, 0].any()


def test_layers_output_size_and_paper_names():
    layer3 = tf.placeholder(tf.float32, [2, 8, 12, 16])
    layer4 = tf.placeholder(tf.float32, [2, 4, 6, 32])
    layer7 = tf.placeholder(tf.float32, [2, 2, 3, 64])
    output = main.layers(layer3, layer4, layer7, 3)
    assert_tensor_shape(output, [2, 64, 96, 3], 'upscore8')
    op_names = {op.name for op in tf.get_default_graph().get_operations()}
    for name in ('score_fr/weights', 'upscore2/weights', 'score_pool4/weights', 'fuse_pool4',
                 'upscore_pool4/weights', 'score_pool3/weights', 'fuse_pool3', 'upscore8/weights'):
        assert name in op_names, name
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        scores = sess.run(output, {layer3: np.ones((2, 8, 12, 16)), layer4: np.ones((2, 4, 6, 32)),
                                   layer7: np.ones((2, 2, 3, 64))})
    assert scores.shape == (2, 64, 96, 3)


def test_pool_scaling_scales_the_skip_inputs():
    scaled_ops = []
    for pool_scaling in (True, False):
        with tf.Graph().as_default():
            layer3, layer4, layer7 = (tf.placeholder(tf.float32, [1, size, size, 4]) for size in (8, 4, 2))
            main.layers(layer3, layer4, layer7, 2, pool_scaling=pool_scaling)
            scaled_ops.append(sorted(op.name for op in tf.get_default_graph().get_operations() if op.type == 'Mul'
                                     and op.inputs[0].op.type == 'Placeholder'))
    assert len(scaled_ops[0]) == 2 and scaled_ops[1] == []


def test_masked_loss_on_a_hand_made_case():
    # Pixel 0 is road with logits (0, ln 3): p(road) = 3/4. Pixel 1 is background with logits (ln 4, 0):
    # p(background) = 4/5. Pixel 2 lies outside the evaluated area (label all zeros) and must not count.
    logits = tf.constant([[[[0.0, np.log(3)], [np.log(4), 0.0], [50.0, -50.0]]]], tf.float32)
    labels = tf.placeholder(tf.float32, [None, None, None, 2])
    _, _, loss = main.optimize(tf.Variable(logits), labels, 0.0, 2)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        value = sess.run(loss, {labels: [[[[0, 1], [1, 0], [0, 0]]]]})
    expected = (-np.log(3 / 4) - np.log(4 / 5)) / 2
    assert value == pytest.approx(expected, abs=1e-6)
    assert value == pytest.approx(0.25541, abs=1e-5)


def test_l2_term_is_in_the_loss():
    layer3, layer4, layer7 = (tf.placeholder(tf.float32, [1, size, size, 4]) for size in (8, 4, 2))
    labels = tf.placeholder(tf.float32, [None, None, None, 2])
    output = main.layers(layer3, layer4, layer7, 2, init_stddev=0.5, l2_scale=0.1)
    _, _, loss = main.optimize(output, labels, 1e-3, 2)
    cross_entropy = tf.get_default_graph().get_tensor_by_name('cross_entropy:0')
    kernels = [variable for variable in tf.global_variables() if variable.op.name.endswith('/weights')]
    assert len(kernels) == 6  # score_fr, score_pool4, score_pool3, upscore2, upscore_pool4, upscore8
    feed = {layer3: np.ones((1, 8, 8, 4)), layer4: np.ones((1, 4, 4, 4)), layer7: np.ones((1, 2, 2, 4)),
            labels: np.tile([0.0, 1.0], (1, 64, 64, 1))}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        loss_value, cross_entropy_value, kernel_values = sess.run([loss, cross_entropy, kernels], feed)
    expected_l2 = 0.1 * sum((kernel ** 2).sum() / 2 for kernel in kernel_values)
    assert expected_l2 > 0.1
    assert loss_value - cross_entropy_value == pytest.approx(expected_l2, rel=1e-5)


# ---------------------------------------------------------------- VGG16 from ImageNet weights

# Run by a separate Python, since Keras 3 needs TensorFlow's eager mode and this process is in graph mode.
# Arguments: image .npy ([1, 224, 224, 3] float32 RGB 0..255), weights .h5 and activations .npz to write.
# It writes a random Keras VGG16's weights in the layout of Keras's published weights file, loads that file
# into a fresh VGG16 the way Keras loads the published one, and saves pool3, pool4 and fc2 of the image.
KERAS_VGG16_SCRIPT = '''
import sys

import h5py
import keras
import numpy as np

image_path, weights_path, activations_path = sys.argv[1:]
keras.utils.set_random_seed(0)
random_model = keras.applications.VGG16(weights=None)
bias_rng = np.random.default_rng(0)  # Keras's biases start at zero: random ones let the test check them too
with h5py.File(weights_path, 'w') as weights_file:
    weights_file.attrs['layer_names'] = [layer.name.encode() for layer in random_model.layers]
    for layer in random_model.layers:
        values = layer.get_weights()
        if values:
            values[1] = bias_rng.normal(0, 0.1, values[1].shape).astype(np.float32)
        weight_names = [f'{layer.name}_{kind}_1:0'.encode() for kind in 'Wb'[:len(values)]]
        group = weights_file.create_group(layer.name)
        group.attrs['weight_names'] = weight_names
        for weight_name, value in zip(weight_names, values):
            group.create_dataset(weight_name, data=value)
model = keras.applications.VGG16(weights=weights_path)
probe = keras.Model(model.input, [model.get_layer(name).output for name in ('block3_pool', 'block4_pool', 'fc2')])
pool3, pool4, fc2 = probe.predict(keras.applications.vgg16.preprocess_input(np.load(image_path)), verbose=0)
np.savez(activations_path, pool3=pool3, pool4=pool4, fc2=fc2)
'''


@pytest.fixture(scope='module')
def keras_vgg16(tmp_path_factory):
    """(weights .h5 path, image [1, 224, 224, 3] float32 RGB 0..255, {pool3, pool4, fc2}: Keras's activations on it).

    A full-size Keras VGG16 with random weights (138M parameters, a 553 MB file; about 10 s).
    """
    folder = tmp_path_factory.mktemp('keras_vgg16')
    image_path, weights_path, activations_path = (
        str(folder / name) for name in ('image.npy', helper.KERAS_VGG16_WEIGHTS_FILE, 'activations.npz'))
    image = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    np.save(image_path, image)
    completed = subprocess.run([sys.executable, '-c', KERAS_VGG16_SCRIPT, image_path, weights_path, activations_path],
                               capture_output=True, text=True, timeout=300,
                               env={**os.environ, 'KERAS_HOME': str(folder / 'keras_home')})
    assert completed.returncode == 0, completed.stderr
    return weights_path, image, dict(np.load(activations_path))


def assert_close_to_keras(actual, expected, name):
    """Equal within 1e-4 relative, where values near 0 may differ by 1e-4 of the largest activation.

    fc6 sums its 25088 products in another order than Keras's dense fc1: measured errors are ~1e-6 of the
    activations' scale, while a wrong mapping errs by ~1 (fc1 flattened c, h, w: 0.8) or 1e-2 (one zeroed bias).
    """
    assert (expected > 0).mean() > 0.3, f"{name}: Keras's activations are mostly zero, so they prove little"
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max(), err_msg=name)


def test_build_vgg_from_keras_weights_gives_keras_activations(keras_vgg16, tmp_path):
    weights_path, image, keras_activations = keras_vgg16
    vgg_path = main.run(['build-vgg', '--keras-weights', weights_path, '--out', str(tmp_path / 'vgg')])
    with tf.Session() as sess:
        image_input, keep_prob, layer3_out, layer4_out, layer7_out = main.load_vgg(sess, vgg_path)
        pool3, pool4, fc7 = sess.run([layer3_out, layer4_out, layer7_out], {image_input: image, keep_prob: 1.0})
    assert fc7.shape == (1, 7, 7, 4096)
    assert_close_to_keras(pool3, keras_activations['pool3'], 'layer3_out vs block3_pool')
    assert_close_to_keras(pool4, keras_activations['pool4'], 'layer4_out vs block4_pool')
    # pool5 is 7x7, so at fc7's centre, fc6's 7x7 SAME convolution sees exactly the window that the dense fc1 sees.
    assert_close_to_keras(fc7[0, 3, 3], keras_activations['fc2'][0], 'layer7_out[0, 3, 3] vs fc2')


def test_vgg_is_built_from_keras_weights_when_the_zip_is_unreachable(keras_vgg16, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(helper.urllib.request, 'urlopen', unreachable)
    monkeypatch.setattr(helper, 'fetch_keras_vgg16_weights', lambda: keras_vgg16[0])
    vgg_path = helper.maybe_download_pretrained_vgg(str(tmp_path))
    assert vgg_path == str(tmp_path / 'vgg')
    assert all(os.path.exists(os.path.join(vgg_path, name)) for name in helper.VGG_FILES)
    assert sorted(os.listdir(tmp_path)) == ['vgg']
    printed = capsys.readouterr().out
    assert helper.VGG_URL in printed and "from Keras's ImageNet VGG16 weights instead" in printed


def test_offline_vgg_fails_naming_both_routes(tmp_path, monkeypatch):
    monkeypatch.setattr(helper.urllib.request, 'urlopen', unreachable)  # the classic zip and Keras's weights alike
    with pytest.raises(helper.DataUnavailableError) as raised:
        helper.maybe_download_pretrained_vgg(str(tmp_path))
    message = str(raised.value)
    for expected in (helper.VGG_URL, helper.KERAS_VGG16_WEIGHTS_URL, 'python main.py build-vgg --keras-weights',
                     'python main.py --demo'):
        assert expected in message
    assert os.listdir(tmp_path) == []


def test_keras_weights_download_into_keras_cache_and_are_checked(monkeypatch):
    payload = b'stand-in for the 553 MB weights file'
    monkeypatch.setattr(helper, 'KERAS_VGG16_WEIGHTS_BYTES', len(payload))
    monkeypatch.setattr(helper, 'KERAS_VGG16_WEIGHTS_MD5', hashlib.md5(payload).hexdigest())
    monkeypatch.setattr(helper.urllib.request, 'urlopen', lambda url, timeout=None: FakeResponse(payload, len(payload)))
    weights_path = helper.fetch_keras_vgg16_weights()
    assert weights_path == os.path.join(os.environ['KERAS_HOME'], 'models', helper.KERAS_VGG16_WEIGHTS_FILE)
    assert open(weights_path, 'rb').read() == payload
    monkeypatch.setattr(helper, 'KERAS_VGG16_WEIGHTS_MD5', '0' * 32)
    with pytest.raises(helper.DataUnavailableError, match='it was deleted'):
        helper.fetch_keras_vgg16_weights()
    assert not os.path.exists(weights_path)


def test_reading_keras_weights_explains_a_wrong_file(tmp_path):
    not_hdf5 = tmp_path / 'weights.h5'
    not_hdf5.write_bytes(b'not an HDF5 file')
    with pytest.raises(ValueError, match='cannot open .*weights.h5 as an HDF5 file'):
        helper.read_keras_vgg16_weights(str(not_hdf5))
    keras3_layout = str(tmp_path / 'vgg16.weights.h5')
    with h5py.File(keras3_layout, 'w') as weights_file:
        weights_file.create_dataset('layers/block1_conv1/vars/0', data=np.zeros((3, 3, 3, 64), np.float32))
    with pytest.raises(ValueError, match=r"expected a group block1_conv1 .* among the groups \['layers'\]"):
        helper.read_keras_vgg16_weights(keras3_layout)


def test_converting_keras_weights_refuses_a_wrong_shape():
    channels_first_kernel = np.zeros((64, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r'block1_conv1 has a kernel \(64, 3, 3, 3\).*\(3, 3, 3, 64\)'):
        helper.classic_vgg16_weights({'block1_conv1': (channels_first_kernel, np.zeros(64, np.float32))})


def test_build_vgg_command_writes_random_weights_and_refuses_imagenet_at_another_width(tmp_path, capsys):
    vgg_path = main.run(['build-vgg', '--weights', 'random', '--width', str(TINY_WIDTH),
                         '--out', str(tmp_path / 'vgg')])
    with tf.Session() as sess:
        layer7_out = main.load_vgg(sess, vgg_path)[4]
    assert layer7_out.shape[-1] == 256
    with pytest.raises(SystemExit):
        main.run(['build-vgg', '--width', '0.5', '--out', str(tmp_path / 'other')])
    assert '--width 0.5 needs --weights random' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'other')


# ---------------------------------------------------------------- labels and images

def test_decode_label_by_the_devkit_rule():
    label = np.array([[helper.ROAD_COLOUR, helper.BACKGROUND_COLOUR, helper.INVALID_COLOUR, (0, 0, 255)]], np.uint8)
    road, valid = helper.decode_label(label)
    assert road.tolist() == [[True, False, False, True]]
    assert valid.tolist() == [[True, True, False, False]]
    one_hot = helper.label_to_one_hot(label)
    assert one_hot.tolist() == [[[0, 1], [1, 0], [0, 0], [0, 0]]]


def test_nearest_resize_keeps_only_the_three_colours(tmp_path):
    label = np.zeros((37, 61, 3), np.uint8)
    label[:, :20] = helper.BACKGROUND_COLOUR
    label[10:30, 20:50] = helper.ROAD_COLOUR
    label_path = str(tmp_path / 'um_road_000000.png')
    Image.fromarray(label).save(label_path)
    allowed = {helper.ROAD_COLOUR, helper.BACKGROUND_COLOUR, helper.INVALID_COLOUR}
    resized = helper.load_image(label_path, (16, 48), Image.NEAREST)
    assert resized.shape == (16, 48, 3)
    assert {tuple(colour) for colour in resized.reshape(-1, 3).tolist()} == allowed
    smoothed = helper.load_image(label_path, (16, 48), Image.BILINEAR)
    assert {tuple(colour) for colour in smoothed.reshape(-1, 3).tolist()} - allowed, 'bilinear should invent colours'


def test_load_image_names_a_corrupt_file(tmp_path):
    broken = tmp_path / 'um_000000.png'
    broken.write_bytes(b'\x89PNG\r\n\x1a\n not really a png')
    with pytest.raises(ValueError, match='um_000000.png'):
        helper.load_image(str(broken))


@pytest.mark.skipif(not os.path.isdir(SHARED_SAMPLES), reason=f'{SHARED_SAMPLES} is absent (only in the dev workspace)')
def test_real_kitti_labels_decode():
    road, valid = helper.decode_label(helper.load_image(os.path.join(SHARED_SAMPLES, 'gt_image_2', 'umm_road_000009.png')))
    assert (road & ~valid).sum() == 33, 'the 33 pure-blue pixels are road but outside the valid area'
    assert (~valid).sum() == 27165 + 33


# ---------------------------------------------------------------- synthetic data and batches

def test_synthetic_kitti_layout_and_determinism(tmp_path):
    helper.make_synthetic_kitti(str(tmp_path / 'a'), train_per_category=2, test_per_category=1, seed=5)
    helper.make_synthetic_kitti(str(tmp_path / 'b'), train_per_category=2, test_per_category=1, seed=5)
    training = tmp_path / 'a' / 'training'
    assert sorted(os.listdir(training / 'image_2')) == [
        'um_000000.png', 'um_000001.png', 'umm_000000.png', 'umm_000001.png', 'uu_000000.png', 'uu_000001.png']
    assert sorted(os.listdir(training / 'gt_image_2')) == [
        'um_road_000000.png', 'um_road_000001.png', 'umm_road_000000.png', 'umm_road_000001.png',
        'uu_road_000000.png', 'uu_road_000001.png']
    assert sorted(os.listdir(tmp_path / 'a' / 'testing' / 'image_2')) == ['um_000000.png', 'umm_000000.png', 'uu_000000.png']
    kitti_sizes = {size for size, _ in helper.KITTI_SIZES}
    colours = set()
    for image_path, label_path in helper.list_training_pairs(str(training)):
        image, label = helper.load_image(image_path), helper.load_image(label_path)
        assert (image.shape[1], image.shape[0]) in kitti_sizes and label.shape == image.shape
        colours |= {tuple(colour) for colour in np.unique(label.reshape(-1, 3), axis=0).tolist()}
        twin = tmp_path / 'b' / os.path.relpath(image_path, tmp_path / 'a')
        np.testing.assert_array_equal(image, helper.load_image(str(twin)))
    assert {helper.ROAD_COLOUR, helper.BACKGROUND_COLOUR} <= colours <= {
        helper.ROAD_COLOUR, helper.BACKGROUND_COLOUR, helper.INVALID_COLOUR}


def test_synthetic_scenes_include_invalid_regions():
    invalid_fractions = [helper.decode_label(helper.synthetic_scene(np.random.default_rng(seed), 'um')[1])[1]
                         for seed in range(8)]
    assert sum((~valid).any() for valid in invalid_fractions) >= 2


def test_gen_batch_function_yields_one_hot_batches(tmp_path):
    helper.make_synthetic_kitti(str(tmp_path), train_per_category=2, test_per_category=0)
    get_batches_fn = helper.gen_batch_function(str(tmp_path / 'training'), (64, 192))
    batches = list(get_batches_fn(4))
    assert get_batches_fn.num_images == 6
    assert [images.shape for images, _ in batches] == [(4, 64, 192, 3), (2, 64, 192, 3)]
    images, labels = batches[0]
    assert images.dtype == np.float32 and images.max() > 1
    assert labels.shape == (4, 64, 192, 2) and set(np.unique(labels.sum(axis=-1))) <= {0.0, 1.0}


def test_gen_batch_function_names_a_missing_label(tmp_path):
    helper.make_synthetic_kitti(str(tmp_path), train_per_category=1, test_per_category=0)
    os.remove(tmp_path / 'training' / 'gt_image_2' / 'uu_road_000000.png')
    with pytest.raises(FileNotFoundError, match='uu_road_000000.png'):
        helper.gen_batch_function(str(tmp_path / 'training'), (64, 192))


# ---------------------------------------------------------------- validation split, augmentation and the KITTI metric

def test_split_is_stratified_seeded_and_disjoint():
    pairs = [(f'image_2/{category}_{index:06d}.png', f'gt_image_2/{category}_road_{index:06d}.png')
             for category, count in (('um', 95), ('umm', 96), ('uu', 98)) for index in range(count)]
    train_pairs, val_pairs = helper.split_training_pairs(pairs, 48, seed=7)
    categories = [os.path.basename(image).split('_')[0] for image, _ in val_pairs]
    assert len(val_pairs) == 48 and len(train_pairs) == 289 - 48
    assert {category: categories.count(category) for category in helper.KITTI_CATEGORIES} == {'um': 16, 'umm': 16, 'uu': 16}
    assert sorted(train_pairs + val_pairs) == sorted(pairs)
    assert helper.split_training_pairs(pairs, 48, seed=7) == (train_pairs, val_pairs)
    assert helper.split_training_pairs(pairs, 48, seed=8)[1] != val_pairs
    assert helper.split_training_pairs(pairs, 0, seed=7) == (pairs, [])
    with pytest.raises(ValueError, match='--val-count 289'):
        helper.split_training_pairs(pairs, 289)


def marked_pair(height=64, width=96):
    """An image with a bright green 8x12 block at rows 20..27, columns 10..21, and a label with road there."""
    image = np.zeros((height, width, 3), np.uint8)
    label = np.zeros((height, width, 3), np.uint8)
    label[:] = helper.BACKGROUND_COLOUR
    image[20:28, 10:22, 1] = 255
    label[20:28, 10:22] = helper.ROAD_COLOUR
    label[:4] = helper.INVALID_COLOUR
    return image, label


def test_flip_keeps_image_label_and_valid_area_aligned():
    image, label = marked_pair()
    flipped = [helper.augment_pair(image, label, helper.Augmentation(flip=True, color=False, scale=False),
                                   np.random.default_rng(seed)) for seed in range(6)]
    assert any(np.array_equal(flipped_image, image[:, ::-1]) for flipped_image, _ in flipped)
    for flipped_image, flipped_label in flipped:
        road, valid = helper.decode_label(flipped_label)
        assert np.array_equal(road & valid, flipped_image[..., 1] == 255)
        assert not valid[:4].any() and valid[4:].all()


def test_scale_and_crop_keeps_image_and_label_aligned():
    image, label = marked_pair()
    road_pixel_counts = set()
    for seed in range(5):
        zoomed_image, zoomed_label = helper.augment_pair(image, label, helper.Augmentation(flip=False, color=False),
                                                         np.random.default_rng(seed))
        road, valid = helper.decode_label(zoomed_label)
        assert zoomed_image.shape == image.shape and zoomed_label.shape == label.shape
        assert {tuple(colour) for colour in zoomed_label.reshape(-1, 3).tolist()} <= {
            helper.ROAD_COLOUR, helper.BACKGROUND_COLOUR, helper.INVALID_COLOUR}
        assert np.mean((zoomed_image[..., 1] > 127) == (road & valid)) > 0.98
        road_pixel_counts.add(int(road.sum()))
    assert len(road_pixel_counts) > 1, 'every zoom gave the same label: scale-and-crop did nothing'


def test_colour_jitter_changes_the_image_only():
    image, label = marked_pair()
    image[..., 0] = 100
    jittered_image, jittered_label = helper.augment_pair(image, label, helper.Augmentation(flip=False, scale=False),
                                                         np.random.default_rng(0))
    assert np.array_equal(jittered_label, label)
    assert not np.array_equal(jittered_image, image)


def hand_made_case():
    """4x4 probabilities and labels: road A=0.9, B=0.6, C=0.3; other D=0.7, E=0.2; ten others at 0; one invalid."""
    road_prob = np.zeros((4, 4))
    road = np.zeros((4, 4), bool)
    valid = np.ones((4, 4), bool)
    road_prob[0, :3], road[0, :3] = (0.9, 0.6, 0.3), True
    road_prob[1, :2] = (0.7, 0.2)
    road_prob[3, 3], road[3, 3], valid[3, 3] = 1.0, True, False
    return road_prob, road, valid


def test_metric_on_a_hand_made_case():
    # Threshold sweep (road when p >= t): t in (0.2, 0.3] gives TP 3, FP 1, FN 0: P 3/4, R 1, F 6/7, the maximum.
    # 11-point AP: recall levels 0 .. 0.3 see precision 1 (A alone), levels 0.4 .. 1 see at best 3/4.
    # IoU at p > 0.5: A and B hit, D is a false positive, C is missed: 2 / 4.
    metrics = helper.road_metrics(helper.count_road_pixels(*hand_made_case()))
    assert metrics['MaxF'] == pytest.approx(6 / 7)
    assert metrics['PRE'] == pytest.approx(3 / 4) and metrics['REC'] == pytest.approx(1.0)
    assert metrics['FPR'] == pytest.approx(1 / 12) and metrics['FNR'] == pytest.approx(0.0)
    assert metrics['threshold'] == pytest.approx(52 / 255)
    assert metrics['AP'] == pytest.approx((4 * 1.0 + 7 * 0.75) / 11)
    assert metrics['IoU'] == pytest.approx(0.5)
    assert metrics['images'] == 1


def test_perfect_prediction_scores_one():
    road_prob, road, valid = hand_made_case()
    metrics = helper.road_metrics(helper.count_road_pixels(road.astype(float), road, valid))
    assert metrics['MaxF'] == pytest.approx(1.0) and metrics['IoU'] == 1.0 and metrics['AP'] == pytest.approx(1.0)


def test_invalid_pixels_change_nothing():
    road_prob, road, valid = hand_made_case()
    reference = helper.road_metrics(helper.count_road_pixels(road_prob, road, valid))
    for invalid_prob, invalid_road in ((0.0, False), (0.55, True), (1.0, False)):
        road_prob[3, 3], road[3, 3] = invalid_prob, invalid_road
        assert helper.road_metrics(helper.count_road_pixels(road_prob, road, valid)) == reference


def test_categories_combine_by_pixel_counts():
    rng = np.random.default_rng(0)
    counts = {}
    for category, size in (('um', (30, 40)), ('umm', (10, 12)), ('uu', (20, 20))):
        road = rng.random(size) < 0.4
        road_prob = np.clip(road * 0.3 + rng.random(size) * 0.7, 0, 1)
        counts[category] = helper.count_road_pixels(road_prob, road, np.ones(size, bool))
    scores = helper.score_road(counts)
    summed = counts['um'] + counts['umm'] + counts['uu']
    assert summed.positives == sum(count.positives for count in counts.values())
    assert scores['overall'] == helper.road_metrics(summed)
    assert scores['overall']['images'] == 3
    mean_of_means = np.mean([scores[category]['MaxF'] for category in helper.KITTI_CATEGORIES])
    assert scores['overall']['MaxF'] != pytest.approx(mean_of_means, abs=1e-4)


# ---------------------------------------------------------------- downloads

def unreachable(url, timeout=None):
    raise urllib.error.URLError('Name or service not known')


def test_offline_download_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(helper.urllib.request, 'urlopen', unreachable)
    with pytest.raises(helper.DataUnavailableError) as raised:
        helper.maybe_download_kitti(str(tmp_path))
    message = str(raised.value)
    assert all(url in message for url in helper.KITTI_URLS)
    assert os.path.join(str(tmp_path), 'data_road', 'training', 'image_2') in message
    assert '--demo' in message
    assert os.listdir(tmp_path) == []


class FakeResponse(io.BytesIO):
    """A urlopen response: the given bytes, and a Content-Length that may promise more."""

    def __init__(self, payload, content_length):
        super().__init__(payload)
        self.headers = {'Content-Length': str(content_length)}


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(helper.urllib.request, 'urlopen', lambda url, timeout=None: FakeResponse(b'x' * 100, 1000))
    with pytest.raises(helper.DataUnavailableError, match='stopped at 100 of 1000 bytes'):
        helper.maybe_download_pretrained_vgg(str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_corrupt_zip_is_deleted_and_nothing_extracted(tmp_path, monkeypatch):
    monkeypatch.setattr(helper.urllib.request, 'urlopen', lambda url, timeout=None: FakeResponse(b'not a zip', 9))
    with pytest.raises(helper.DataUnavailableError, match='deleted'):
        helper.maybe_download_pretrained_vgg(str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_download_unpacks_a_good_zip(tmp_path, monkeypatch):
    archive_bytes = io.BytesIO()
    with zipfile.ZipFile(archive_bytes, 'w') as archive:
        for name in helper.VGG_FILES:
            archive.writestr(f'vgg/{name}', name)
    payload = archive_bytes.getvalue()
    monkeypatch.setattr(helper.urllib.request, 'urlopen', lambda url, timeout=None: FakeResponse(payload, len(payload)))
    vgg_path = helper.maybe_download_pretrained_vgg(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ['vgg']
    assert open(os.path.join(vgg_path, 'variables', 'variables.index')).read() == 'variables/variables.index'


# ---------------------------------------------------------------- inference and the whole job

def test_paint_road_tints_only_road_pixels():
    image = np.full((2, 2, 3), 100, np.uint8)
    overlay = helper.paint_road(image, np.array([[0.9, 0.1], [0.5, 0.51]]))
    tinted = np.round(np.array([100, 100, 100]) * (1 - 127 / 255) + np.array([0, 255, 0]) * 127 / 255)
    assert overlay[0, 0].tolist() == tinted.tolist() and overlay[1, 1].tolist() == tinted.tolist()
    assert overlay[0, 1].tolist() == [100, 100, 100] and overlay[1, 0].tolist() == [100, 100, 100]


def test_save_inference_samples_writes_one_overlay_per_testing_image(tmp_path, tiny_vgg_path):
    helper.make_synthetic_kitti(str(tmp_path / 'data_road'), train_per_category=0, test_per_category=2)
    with tf.Session() as sess:
        image_input, keep_prob, layer3_out, layer4_out, layer7_out = main.load_vgg(sess, tiny_vgg_path)
        logits = tf.reshape(main.layers(layer3_out, layer4_out, layer7_out, 2), (-1, 2))
        main.initialize_new_variables(sess)
        output_dir = helper.save_inference_samples(str(tmp_path / 'runs'), str(tmp_path), sess, (64, 192), logits,
                                                   keep_prob, image_input)
    test_dir = tmp_path / 'data_road' / 'testing' / 'image_2'
    assert sorted(os.listdir(output_dir)) == sorted(os.listdir(test_dir))
    for name in os.listdir(test_dir):
        assert Image.open(os.path.join(output_dir, name)).size == Image.open(test_dir / name).size


def test_short_demo_run_learns_and_writes_the_run_folder(tmp_path):
    run_dir = main.run(['--demo', '--data-dir', str(tmp_path / 'data'), '--runs-dir', str(tmp_path / 'runs'),
                        '--epochs', '12', '--image-height', '64', '--image-width', '192',
                        '--demo-vgg-width', str(TINY_WIDTH), '--demo-train-per-category', '4',
                        '--demo-test-per-category', '1', '--val-count', '3'])
    assert {'checkpoint', 'model', 'config.json', 'loss.csv', 'loss.png', 'overlays', 'split.json', 'metrics.json',
            'pr_curve.png'} <= set(os.listdir(run_dir))
    assert sorted(os.listdir(os.path.join(run_dir, 'overlays'))) == ['um_000000.png', 'umm_000000.png', 'uu_000000.png']
    rows = np.loadtxt(os.path.join(run_dir, 'loss.csv'), delimiter=',', skiprows=1)
    assert rows.shape == (12 * 3, 3)  # 9 training images in batches of 4, 4 and 1
    first_epoch, last_epoch = rows[rows[:, 0] == 1, 2].mean(), rows[rows[:, 0] == 12, 2].mean()
    assert last_epoch < 0.8 * first_epoch, f'loss fell only from {first_epoch:.3f} to {last_epoch:.3f}'
    assert Image.open(os.path.join(run_dir, 'loss.png')).size == (800, 450)

    split = json.load(open(os.path.join(run_dir, 'split.json')))
    assert sorted(name[:name.index('_')] for name in split['val']) == ['um', 'umm', 'uu']
    assert len(split['train']) == 9 and not set(split['train']) & set(split['val'])
    metrics = json.load(open(os.path.join(run_dir, 'metrics.json')))
    assert metrics['epoch'] == 12 and metrics['overall']['images'] == 3
    assert set(metrics['overall']) == {'MaxF', 'AP', 'PRE', 'REC', 'FPR', 'FNR', 'threshold', 'IoU', 'images'}
    assert {category: metrics[category]['images'] for category in helper.KITTI_CATEGORIES} == {'um': 1, 'umm': 1, 'uu': 1}
    assert 0 < metrics['overall']['MaxF'] <= 1
    with tf.Graph().as_default():
        scores = main.run(['evaluate', '--run', run_dir])
    assert scores['overall']['MaxF'] == pytest.approx(metrics['overall']['MaxF'], abs=1e-6)
    training = tmp_path / 'data' / 'demo' / 'data_road' / 'training'
    with tf.Graph().as_default():
        all_scores = main.run(['evaluate', '--model', os.path.join(run_dir, 'model'),
                               '--images', str(training / 'image_2'), '--labels', str(training / 'gt_image_2')])
    assert all_scores['overall']['images'] == 12
    with pytest.raises(SystemExit):
        main.run(['evaluate', '--model', os.path.join(run_dir, 'model')])


def test_offline_run_exits_with_the_clear_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(helper.urllib.request, 'urlopen', unreachable)
    with pytest.raises(SystemExit) as exited:
        main.run(['--data-dir', str(tmp_path / 'data'), '--runs-dir', str(tmp_path / 'runs')])
    message = str(exited.value.code)
    assert helper.VGG_URL in message and all(url in message for url in helper.KITTI_URLS)
    assert 'python main.py --demo' in message
    assert not os.path.exists(tmp_path / 'runs')


def test_bad_image_size_is_refused(capsys):
    with pytest.raises(SystemExit):
        main.parse_config(['--image-height', '100'])
    assert 'not a multiple of 32' in capsys.readouterr().err


def test_importing_main_prints_nothing_and_trains_nothing():
    completed = subprocess.run([sys.executable, '-c', 'import main'], cwd=HERE, capture_output=True, text=True,
                               env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'}, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == ''


# ---------------------------------------------------------------- using a trained model

TINY_IMAGE_SHAPE = (64, 192)

# Run by a separate Python: plain TensorFlow 2 in eager mode, as a user of the exported model would load it.
# Arguments: the model folder, images .npy ([batch, height, width, 3] float32 RGB 0..255) and the .npy to write.
RELOAD_EXPORTED_MODEL_SCRIPT = '''
import sys

import numpy as np
import tensorflow as tf

model_dir, images_path, road_prob_path = sys.argv[1:]
serving = tf.saved_model.load(model_dir).signatures['serving_default']
np.save(road_prob_path, serving(images=tf.constant(np.load(images_path)))['road_prob'].numpy())
'''


@pytest.fixture(scope='module')
def exported_run(tmp_path_factory, tiny_vgg_path):
    """(run folder, test image [37, 61, 3] uint8, its [37, 61] road probability from the training session).

    The run folder holds config.json, model/ (export_model of the tiny FCN-8s at TINY_IMAGE_SHAPE) and,
    as its data, one testing image data_road/testing/image_2/uu_000007.png of 50x130 pixels. Without pool
    scaling and with score kernels of stddev 0.5, the road probabilities vary across the image: with the
    defaults they would be nearly uniform, and agreeing on them would prove little.
    """
    run_dir = tmp_path_factory.mktemp('run')
    rng = np.random.default_rng(7)
    testing_dir = run_dir / 'data' / 'data_road' / 'testing' / 'image_2'
    testing_dir.mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (50, 130, 3), dtype=np.uint8)).save(testing_dir / 'uu_000007.png')
    config = main.TrainConfig(data_dir=str(run_dir / 'data'), image_height=TINY_IMAGE_SHAPE[0],
                              image_width=TINY_IMAGE_SHAPE[1])
    (run_dir / 'config.json').write_text(json.dumps(dataclasses.asdict(config)))
    image = rng.integers(0, 256, (37, 61, 3), dtype=np.uint8)
    with tf.Graph().as_default(), tf.Session() as sess:
        tf.set_random_seed(2)  # its test image comes out 69% road, with probabilities from 0.004 to 1
        image_input, keep_prob, layer3_out, layer4_out, layer7_out = main.load_vgg(sess, tiny_vgg_path)
        nn_last_layer = main.layers(layer3_out, layer4_out, layer7_out, 2, pool_scaling=False, init_stddev=0.5)
        logits, _, _ = main.optimize(nn_last_layer, tf.placeholder(tf.float32, [None, None, None, 2]), 1e-3, 2)
        main.initialize_new_variables(sess)
        helper.export_model(sess, image_input, keep_prob, logits, TINY_IMAGE_SHAPE, str(run_dir / 'model'))
        predict = helper.session_road_predictor(sess, logits, keep_prob, image_input, TINY_IMAGE_SHAPE)
        session_road_prob, = predict([image])
    return str(run_dir), image, session_road_prob


def test_exported_model_reloads_in_plain_tensorflow_with_the_sessions_probabilities(exported_run, tmp_path):
    run_dir, image, session_road_prob = exported_run
    assert session_road_prob.shape == (37, 61)
    assert session_road_prob.std() > 0.2 and 0.1 < (session_road_prob > 0.5).mean() < 0.9, 'too uniform to compare'
    images_path, road_prob_path = str(tmp_path / 'images.npy'), str(tmp_path / 'road_prob.npy')
    np.save(images_path, image[None].astype(np.float32))
    completed = subprocess.run([sys.executable, '-c', RELOAD_EXPORTED_MODEL_SCRIPT, os.path.join(run_dir, 'model'),
                                images_path, road_prob_path], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(np.load(road_prob_path)[0], session_road_prob, atol=1e-5)
    loaded_road_prob, = helper.saved_model_road_predictor(os.path.join(run_dir, 'model'))([image])
    np.testing.assert_allclose(loaded_road_prob, session_road_prob, atol=1e-5)
    exported_names = {name for name, _ in tf.train.list_variables(os.path.join(run_dir, 'model', 'variables', 'variables'))}
    assert {'conv1_1/weights', 'fc7/biases', 'score_fr/weights', 'upscore8/weights'} <= exported_names
    assert not [name for name in exported_names if 'Adam' in name or 'power' in name], 'optimizer state was exported'


def test_infer_writes_overlays_and_masks_at_each_images_own_size(exported_run, tmp_path):
    run_dir = exported_run[0]
    rng = np.random.default_rng(8)
    Image.fromarray(rng.integers(0, 256, (37, 61), dtype=np.uint8)).save(tmp_path / 'gray.png')
    folder = tmp_path / 'folder'
    folder.mkdir()
    Image.fromarray(rng.integers(0, 256, (375, 1242, 4), dtype=np.uint8)).save(folder / 'rgba.png')
    Image.fromarray(rng.integers(0, 256, (50, 80, 3), dtype=np.uint8)).save(folder / 'photo.jpg')
    out_dir = tmp_path / 'out'
    main.run(['infer', str(tmp_path / 'gray.png'), str(folder), '--run', run_dir, '--out', str(out_dir), '--masks'])
    predict = helper.saved_model_road_predictor(os.path.join(run_dir, 'model'))
    for input_path, name in ((tmp_path / 'gray.png', 'gray.png'), (folder / 'rgba.png', 'rgba.png'),
                             (folder / 'photo.jpg', 'photo.png')):
        overlay, mask = Image.open(out_dir / 'overlays' / name), Image.open(out_dir / 'masks' / name)
        assert overlay.mode == 'RGB' and mask.mode == 'L'
        assert overlay.size == mask.size == Image.open(input_path).size, name
        road_prob, = predict([helper.load_image(str(input_path))])
        np.testing.assert_array_equal(np.asarray(mask), np.where(road_prob > 0.5, 255, 0), err_msg=name)


def test_kitti_submission_writes_probability_maps_named_for_the_benchmark(exported_run, tmp_path):
    run_dir = exported_run[0]
    image = np.random.default_rng(9).integers(0, 256, (41, 150, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / 'um_000000.png')
    main.run(['infer', str(tmp_path / 'um_000000.png'), '--model', os.path.join(run_dir, 'model'),
              '--out', str(tmp_path / 'given'), '--kitti-submission'])
    assert os.listdir(tmp_path / 'given') == ['um_road_000000.png']
    result = Image.open(tmp_path / 'given' / 'um_road_000000.png')
    assert result.mode == 'L' and result.size == (150, 41)
    road_prob, = helper.saved_model_road_predictor(os.path.join(run_dir, 'model'))([image])
    np.testing.assert_array_equal(np.asarray(result), np.round(road_prob * 255))
    main.run(['infer', '--run', run_dir, '--out', str(tmp_path / 'testing'), '--kitti-submission'])
    assert os.listdir(tmp_path / 'testing') == ['uu_road_000007.png']  # the run's data_road/testing/image_2
    assert Image.open(tmp_path / 'testing' / 'uu_road_000007.png').size == (130, 50)


def test_video_paints_every_frame_in_batches_and_keeps_fps_size_and_audio(exported_run, tmp_path, monkeypatch):
    run_dir = exported_run[0]
    rng = np.random.default_rng(10)
    frames = [rng.integers(0, 256, (60, 90, 3), dtype=np.uint8) for _ in range(20)]  # 90x60: not a multiple of 32
    tone = moviepy.AudioClip(lambda time_s: np.sin(2 * np.pi * 440 * time_s), duration=2, fps=22050)
    input_path, output_path = str(tmp_path / 'in.mp4'), str(tmp_path / 'out.mp4')
    moviepy.ImageSequenceClip(frames, fps=10).with_audio(tone).write_videofile(input_path, logger=None)
    batch_sizes = []
    load_predictor = helper.saved_model_road_predictor

    def recording_predictor(model_dir, session_config=None):
        predict = load_predictor(model_dir, session_config)
        return lambda images: batch_sizes.append(len(images)) or predict(images)

    monkeypatch.setattr(helper, 'saved_model_road_predictor', recording_predictor)
    main.run(['video', input_path, output_path, '--run', run_dir, '--batch-size', '8'])
    assert batch_sizes == [8, 8, 4]
    assert imageio_ffmpeg.count_frames_and_secs(output_path) == imageio_ffmpeg.count_frames_and_secs(input_path) == (20, 2.0)
    with moviepy.VideoFileClip(output_path) as painted:
        assert painted.size == [90, 60] and painted.fps == 10 and painted.audio is not None


def test_missing_model_unreadable_image_or_video_exit_naming_the_path(exported_run, tmp_path, capsys):
    image_path = tmp_path / 'um_000000.png'
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(image_path)
    (tmp_path / 'old_run').mkdir()
    broken_image, broken_video = tmp_path / 'broken.png', tmp_path / 'broken.mp4'
    broken_image.write_bytes(b'\x89PNG\r\n\x1a\n not really a png')
    broken_video.write_bytes(b'not really a video')
    model_dir = os.path.join(exported_run[0], 'model')
    for argv, named_path in (
            (['infer', str(image_path), '--run', str(tmp_path / 'old_run'), '--out', str(tmp_path / 'out')],
             os.path.join(str(tmp_path / 'old_run'), 'model')),
            (['infer', str(image_path), '--model', str(tmp_path / 'no_model'), '--out', str(tmp_path / 'out')],
             str(tmp_path / 'no_model')),
            (['infer', str(broken_image), '--model', model_dir, '--out', str(tmp_path / 'out')], str(broken_image)),
            (['video', str(broken_video), str(tmp_path / 'out.mp4'), '--model', model_dir], str(broken_video))):
        with pytest.raises(SystemExit) as exited:
            main.run(argv)
        assert str(exited.value.code).startswith('error: ') and named_path in str(exited.value.code), argv
    assert not os.path.exists(tmp_path / 'out.mp4')


# ---------------------------------------------------------------- interruption and bad data

TINY_RUN = ['--demo', '--demo-vgg-width', str(TINY_WIDTH), '--image-height', '64', '--image-width', '192',
            '--demo-train-per-category', '2', '--demo-test-per-category', '1']
TINY_INPUT_SHAPE = (64, 192)

# Run in a subprocess: main.run(argv[2:]) whose process sends itself SIGTERM as training takes batch number argv[1].
TRAIN_UNTIL_SIGTERM = '''
import os, signal, sys
import helper, main

make_batches = helper.gen_batch_function


def gen_batch_function(*args, **kwargs):
    get_batches_fn = make_batches(*args, **kwargs)
    batches_taken = 0

    def batches_then_sigterm(batch_size):
        nonlocal batches_taken
        for batch in get_batches_fn(batch_size):
            batches_taken += 1
            if batches_taken == int(sys.argv[1]):
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    batches_then_sigterm.num_images = get_batches_fn.num_images
    return batches_then_sigterm


helper.gen_batch_function = gen_batch_function
main.run(sys.argv[2:])
'''


@pytest.fixture(scope='module')
def tiny_demo_data(tmp_path_factory, tiny_vgg_path):
    """A --data-dir holding what TINY_RUN uses in its demo/: a synthetic KITTI of 6 + 3 images and the tiny VGG16."""
    data_dir = tmp_path_factory.mktemp('demo_data')
    helper.make_synthetic_kitti(str(data_dir / 'demo' / 'data_road'), train_per_category=2, test_per_category=1)
    shutil.copytree(tiny_vgg_path, data_dir / 'demo' / f'vgg_width_{TINY_WIDTH:g}')
    return data_dir


@pytest.fixture
def kitti_copy(tiny_demo_data, tmp_path):
    """A copy of the tiny synthetic KITTI folder (training/, testing/) that a test may break."""
    return shutil.copytree(tiny_demo_data / 'demo' / 'data_road', tmp_path / 'data_road')


def data_errors(road_path, **options):
    """The DataError that check_kitti_folder(road_path, TINY_INPUT_SHAPE, **options).raise_errors() raises."""
    with pytest.raises(helper.DataError) as raised:
        helper.check_kitti_folder(str(road_path), TINY_INPUT_SHAPE, **options).raise_errors()
    return str(raised.value)


@pytest.mark.parametrize('folder', helper.KITTI_FOLDERS)
def test_check_names_a_missing_folder(kitti_copy, folder):
    shutil.rmtree(kitti_copy / folder)
    assert str(kitti_copy / folder) + ' is missing' in data_errors(kitti_copy)


def test_check_names_training_folders_without_a_pair(kitti_copy):
    for folder in ('image_2', 'gt_image_2'):
        for name in os.listdir(kitti_copy / 'training' / folder):
            os.remove(kitti_copy / 'training' / folder / name)
    assert f"{kitti_copy / 'training' / 'image_2'} and {kitti_copy / 'training' / 'gt_image_2'} hold no training pair" \
        in data_errors(kitti_copy)


def test_check_data_warns_only_about_a_missing_testing_folder(kitti_copy):
    shutil.rmtree(kitti_copy / 'testing')
    data_check = helper.check_kitti_folder(str(kitti_copy), TINY_INPUT_SHAPE, require_testing=False)
    assert data_check.errors == [] and data_check.summary['testing images'] is None
    assert any(str(kitti_copy / 'testing' / 'image_2') in warning for warning in data_check.warnings)


def test_check_names_an_image_without_its_label_and_a_label_without_its_image(kitti_copy):
    os.remove(kitti_copy / 'training' / 'gt_image_2' / 'umm_road_000001.png')
    os.remove(kitti_copy / 'training' / 'image_2' / 'uu_000000.png')
    message = data_errors(kitti_copy)
    assert f"{kitti_copy / 'training' / 'image_2' / 'umm_000001.png'} has no label" in message
    assert f"{kitti_copy / 'training' / 'gt_image_2' / 'uu_road_000000.png'} has no image" in message
    assert '(errors: 2)' in message


@pytest.mark.parametrize('path, damage', [
    ('training/image_2/um_000001.png', 'truncated'),
    ('training/image_2/um_000001.png', 'not a PNG'),
    ('training/gt_image_2/umm_road_000000.png', 'truncated'),
    ('testing/image_2/uu_000000.png', 'truncated')])
def test_check_names_an_unreadable_file(kitti_copy, path, damage):
    broken = kitti_copy / path
    png_bytes = broken.read_bytes()
    broken.write_bytes(png_bytes[:len(png_bytes) // 2] if damage == 'truncated' else b'GIF89a, not a PNG')
    message = data_errors(kitti_copy)
    assert f'{broken} cannot be read' in message and '(errors: 1)' in message


def test_check_names_a_label_of_another_size(kitti_copy):
    label_path = kitti_copy / 'training' / 'gt_image_2' / 'um_road_000000.png'
    label = Image.open(label_path)
    label.resize((label.width - 10, label.height), Image.NEAREST).save(label_path)
    assert f'{label_path} is {label.width - 10}x{label.height} pixels but its image' in data_errors(kitti_copy)


def test_check_names_a_label_without_a_valid_pixel(kitti_copy):
    label_path = kitti_copy / 'training' / 'gt_image_2' / 'uu_road_000001.png'
    Image.new('RGB', Image.open(label_path).size, helper.INVALID_COLOUR).save(label_path)
    assert f'{label_path} has no valid pixel' in data_errors(kitti_copy)


def test_check_names_an_image_smaller_than_the_network_input(kitti_copy):
    image_path = kitti_copy / 'training' / 'image_2' / 'umm_000000.png'
    label_path = kitti_copy / 'training' / 'gt_image_2' / 'umm_road_000000.png'
    Image.open(image_path).resize((180, 60)).save(image_path)
    Image.open(label_path).resize((180, 60), Image.NEAREST).save(label_path)
    assert f'{image_path} is 180x60 pixels, smaller than the network input 192x64' in data_errors(kitti_copy)


def test_check_warns_about_grayscale_and_rgba_images_and_other_label_colours(kitti_copy):
    grey_path, rgba_path = (kitti_copy / 'training' / 'image_2' / name for name in ('um_000000.png', 'uu_000001.png'))
    Image.open(grey_path).convert('L').save(grey_path)
    Image.open(rgba_path).convert('RGBA').save(rgba_path)
    label_path = kitti_copy / 'training' / 'gt_image_2' / 'umm_road_000001.png'
    label = np.array(Image.open(label_path))
    label[:5, :1] = (0, 0, 255)
    label[-2:, -1] = (0, 255, 0)
    Image.fromarray(label).save(label_path)
    data_check = helper.check_kitti_folder(str(kitti_copy), TINY_INPUT_SHAPE)
    assert data_check.errors == []
    not_rgb, odd_colours = data_check.warnings
    assert 'not RGB (L 1, RGBA 1): um_000000.png, uu_000001.png' in not_rgb
    assert '1 of 6 labels' in odd_colours and 'umm_road_000001.png' in odd_colours
    assert '(0, 0, 255) 5 pixels' in odd_colours and '(0, 255, 0) 2 pixels' in odd_colours
    assert data_check.summary['label colours'][0, 0, 255] == 5
    images, _ = next(helper.gen_batch_function(str(kitti_copy / 'training'), TINY_INPUT_SHAPE)(6))
    assert images.shape == (6, *TINY_INPUT_SHAPE, 3)


def test_check_data_command_prints_every_problem_and_fails(kitti_copy, capsys):
    os.remove(kitti_copy / 'training' / 'gt_image_2' / 'um_road_000001.png')
    truncated = kitti_copy / 'training' / 'image_2' / 'uu_000001.png'
    truncated.write_bytes(truncated.read_bytes()[:1000])
    with pytest.raises(SystemExit) as exited:
        main.run(['check-data', '--data', str(kitti_copy), '--image-height', '64', '--image-width', '192'])
    assert str(exited.value.code) == f'error: errors in {kitti_copy}: 2, listed above; training would stop on them.'
    report = capsys.readouterr().out
    assert 'training images 6 (um 2, umm 2, uu 2)' in report and 'errors: 2, warnings: 0' in report
    assert f"error: {kitti_copy / 'training' / 'image_2' / 'um_000001.png'} has no label" in report
    assert f'error: {truncated} cannot be read' in report


@pytest.mark.skipif(not os.path.isdir(SHARED_SAMPLES), reason=f'{SHARED_SAMPLES} is absent (only in the dev workspace)')
def test_check_data_passes_the_six_real_kitti_pairs(capsys):
    samples = os.path.dirname(SHARED_SAMPLES)  # training/ only: the real pairs come without testing/
    data_check = main.run(['check-data', '--data', samples])
    assert data_check.errors == []
    assert data_check.summary['training images'] == {'um': 2, 'umm': 2, 'uu': 2}
    assert data_check.summary['image sizes'] == {(1242, 375): 2, (1238, 374): 2, (1226, 370): 1, (1241, 376): 1}
    assert data_check.summary['label colours'][0, 0, 255] == 33
    missing_testing, blue_pixels = data_check.warnings
    assert 'testing/image_2 is missing' in missing_testing
    assert '1 of 6 labels' in blue_pixels and '(0, 0, 255) 33 pixels in umm_road_000009.png' in blue_pixels
    with pytest.raises(SystemExit):
        main.run(['check-data', '--data', samples, '--require-testing'])
    assert f"error: {os.path.join(samples, 'testing', 'image_2')} is missing" in capsys.readouterr().out


def test_training_stops_on_bad_data_before_making_a_run_folder(tiny_demo_data, tmp_path):
    data_dir = tmp_path / 'data'
    shutil.copytree(tiny_demo_data, data_dir)
    label_path = data_dir / 'demo' / 'data_road' / 'training' / 'gt_image_2' / 'uu_road_000000.png'
    label_path.write_bytes(label_path.read_bytes()[:500])
    with pytest.raises(SystemExit) as exited:
        main.run([*TINY_RUN, '--epochs', '1', '--data-dir', str(data_dir), '--runs-dir', str(tmp_path / 'runs')])
    assert str(exited.value.code).startswith('error: the KITTI folder') and f'{label_path}' in str(exited.value.code)
    assert not os.path.exists(tmp_path / 'runs')


def test_a_runs_folder_that_cannot_be_written_stops_training(tiny_demo_data, tmp_path):
    runs_dir = tmp_path / 'runs'
    runs_dir.write_text('a file where the runs folder should be')
    with pytest.raises(SystemExit) as exited:
        main.run([*TINY_RUN, '--epochs', '1', '--data-dir', str(tiny_demo_data), '--runs-dir', str(runs_dir)])
    assert str(exited.value.code).startswith(f'error: cannot write a run folder in {runs_dir}')
    assert '--runs-dir' in str(exited.value.code)


@pytest.mark.parametrize('tag, tensors, named', [
    ('VGG16', ('image_input', 'keep_prob', 'layer3_out', 'layer4_out', 'layer7_out'), 'tag "vgg16"'),
    ('vgg16', ('image_input', 'keep_prob', 'layer4_out', 'layer7_out'), "['layer3_out:0']")])
def test_a_vgg_folder_without_the_tag_or_a_tensor_stops_training(tiny_demo_data, tmp_path, tag, tensors, named):
    data_dir = tmp_path / 'data'
    shutil.copytree(tiny_demo_data / 'demo' / 'data_road', data_dir / 'demo' / 'data_road')
    vgg_path = data_dir / 'demo' / f'vgg_width_{TINY_WIDTH:g}'
    with tf.Graph().as_default(), tf.Session() as sess:
        for name in tensors:
            tf.placeholder(tf.float32, name=name)
        builder = tf.saved_model.Builder(str(vgg_path))
        builder.add_meta_graph_and_variables(sess, [tag])
        builder.save()
    with tf.Graph().as_default(), tf.Session() as sess, pytest.raises(ValueError) as raised:
        main.load_vgg(sess, str(vgg_path))
    assert str(vgg_path) in str(raised.value) and named in str(raised.value)
    with pytest.raises(SystemExit) as exited:
        main.run([*TINY_RUN, '--epochs', '1', '--data-dir', str(data_dir), '--runs-dir', str(tmp_path / 'runs')])
    assert str(exited.value.code) == f'error: {raised.value}'
    assert not os.path.exists(tmp_path / 'runs')


def test_epoch_checkpoints_keep_the_last_and_the_best_and_appear_whole(tmp_path, monkeypatch):
    folder = str(tmp_path / 'checkpoint')
    weight = tf.get_variable('weight', initializer=0.0)
    with tf.Session() as sess:
        sess.run(weight.initializer)
        checkpoints = main.EpochCheckpoints(folder, [weight], keep=2)
        for epoch, val_maxf in enumerate([0.5, 0.9, None, 0.7, 0.6], start=1):
            weight.load(float(epoch), sess)
            checkpoints.save(sess, epoch, val_maxf)
        assert sorted(os.listdir(folder)) == ['checkpoint', 'epoch-002', 'epoch-004', 'epoch-005']
        assert tf.train.latest_checkpoint(folder) == os.path.join(folder, 'epoch-005', 'model')

        def save_half_then_die(sess, save_path, write_state):
            os.makedirs(os.path.dirname(save_path))
            open(save_path + '.index', 'w').close()
            raise OSError('No space left on device')

        monkeypatch.setattr(checkpoints.saver, 'save', save_half_then_die)
        with pytest.raises(OSError):
            checkpoints.save(sess, 6)
        monkeypatch.undo()
        weight.load(float('nan'), sess)
        with pytest.raises(main.TrainingDiverged, match='epoch 7'):
            checkpoints.save(sess, 7)
        assert sorted(os.listdir(folder)) == ['.partial-epoch-006', 'checkpoint', 'epoch-002', 'epoch-004', 'epoch-005']
        reopened = main.EpochCheckpoints(folder, [weight], keep=2)
        assert sorted(os.listdir(folder)) == ['checkpoint', 'epoch-002', 'epoch-004', 'epoch-005']
        assert reopened.restore_last(sess) == 5 and sess.run(weight) == 5.0


def loss_keys(run_dir):
    """[(epoch, step)] of the rows of run_dir/loss.csv."""
    return [(epoch, step) for epoch, step, _ in main.read_loss_csv(os.path.join(run_dir, 'loss.csv'))]


def summary_steps(run_dir, tag):
    """{events file: [steps with a summary of tag, or 'start' for a session start]} of run_dir/tensorboard/."""
    steps = {}
    for events_file in sorted(os.listdir(os.path.join(run_dir, 'tensorboard'))):
        events = tf.train.summary_iterator(os.path.join(run_dir, 'tensorboard', events_file))
        steps[events_file] = ['start' if event.session_log.status == tf.SessionLog.START else event.step
                              for event in events if event.session_log.status == tf.SessionLog.START
                              or any(value.tag == tag for value in event.summary.value)]
    return list(steps.values())


def test_sigterm_mid_epoch_then_resume_gives_the_run_an_uninterrupted_one_gives(tiny_demo_data, tmp_path):
    # 6 training images in batches of 2: 3 steps an epoch; SIGTERM comes as the 5th batch is taken (epoch 2, step 2).
    run_args = [*TINY_RUN, '--epochs', '4', '--batch-size', '2', '--val-count', '0', '--data-dir', str(tiny_demo_data)]
    killed = subprocess.run([sys.executable, '-c', TRAIN_UNTIL_SIGTERM, '5', *run_args, '--runs-dir',
                             str(tmp_path / 'killed')], cwd=HERE, capture_output=True, text=True, timeout=300)
    assert killed.returncode == 128 + signal.SIGTERM, killed.stderr[-3000:]
    [run_name] = os.listdir(tmp_path / 'killed')
    run_dir = str(tmp_path / 'killed' / run_name)
    assert 'SIGTERM: stopping before the next step' in killed.stderr
    assert 'Stopped in epoch 2 after step 1' in killed.stdout and f'--resume {run_dir}' in killed.stdout
    assert sorted(os.listdir(os.path.join(run_dir, 'checkpoint'))) == ['checkpoint', 'epoch-001', 'epoch-002-step-0001']
    assert loss_keys(run_dir) == [(1, 1), (1, 2), (1, 3)]
    killed_first_epoch = main.read_loss_csv(os.path.join(run_dir, 'loss.csv'))

    assert main.run(['--resume', run_dir]) == run_dir
    uninterrupted_dir = main.run([*run_args, '--runs-dir', str(tmp_path / 'uninterrupted')])
    assert loss_keys(run_dir) == loss_keys(uninterrupted_dir) == [(epoch, step) for epoch in range(1, 5)
                                                                  for step in range(1, 4)]
    for folder in ('.', 'checkpoint', 'overlays'):
        assert sorted(os.listdir(os.path.join(run_dir, folder))) == sorted(os.listdir(os.path.join(uninterrupted_dir,
                                                                                                   folder))), folder
    assert sorted(os.listdir(os.path.join(run_dir, 'checkpoint'))) == [
        'checkpoint', 'epoch-002', 'epoch-003', 'epoch-004']
    assert tf.train.latest_checkpoint(os.path.join(run_dir, 'checkpoint')).endswith('epoch-004/model')
    # TensorBoard: the resumed session starts at epoch 2's first step (4) and rewrites the steps from there.
    assert summary_steps(run_dir, 'loss/step') == [['start', 1, 2, 3], ['start', *range(4, 13)]]
    assert summary_steps(uninterrupted_dir, 'loss/step') == [['start', *range(1, 13)]]
    assert main.read_loss_csv(os.path.join(uninterrupted_dir, 'loss.csv'))[:3] == killed_first_epoch, \
        'the same seed should give the same first-epoch losses, in another process too'


def test_seed_sets_the_first_epoch_losses(tiny_demo_data, tmp_path):
    first_epoch_losses = []
    for seed in (0, 0, 1):
        run_dir = main.run([*TINY_RUN, '--epochs', '1', '--batch-size', '2', '--val-count', '0', '--seed', str(seed),
                            '--data-dir', str(tiny_demo_data), '--runs-dir', str(tmp_path / 'runs')])
        first_epoch_losses.append(main.read_loss_csv(os.path.join(run_dir, 'loss.csv')))
    assert first_epoch_losses[0] == first_epoch_losses[1] != first_epoch_losses[2]


def test_a_nan_loss_stops_training_naming_epoch_and_step_and_the_last_checkpoint_loads(tiny_demo_data, tmp_path):
    # A learning rate of 1e30 moves every weight by about 1e30 in the first step: the second step's loss overflows.
    with pytest.raises(SystemExit) as exited:
        main.run([*TINY_RUN, '--epochs', '3', '--batch-size', '6', '--val-count', '0', '--learning-rate', '1e30',
                  '--data-dir', str(tiny_demo_data), '--runs-dir', str(tmp_path / 'runs')])
    [run_name] = os.listdir(tmp_path / 'runs')
    run_dir = tmp_path / 'runs' / run_name
    message = str(exited.value.code)
    assert re.match(r'error: the loss became (nan|-?inf) in epoch 2 at step 1 of 1\. ', message), message
    assert f"{run_dir / 'checkpoint' / 'epoch-001'}" in message and '--learning-rate' in message
    assert loss_keys(run_dir) == [(1, 1)]
    checkpoint = tf.train.latest_checkpoint(str(run_dir / 'checkpoint'))
    assert checkpoint == str(run_dir / 'checkpoint' / 'epoch-001' / 'model')
    with tf.Session() as sess:
        tf.train.import_meta_graph(checkpoint + '.meta').restore(sess, checkpoint)
        assert np.isfinite(sess.run('upscore8/weights:0')).all()


# ---------------------------------------------------------------- speed

def test_session_config_turns_on_its_precisions_rewrite_only():
    on = rewriter_config_pb2.RewriterConfig.ON
    rewrites = {precision: main.session_config(precision).graph_options.rewrite_options for precision in main.PRECISIONS}
    assert rewrites['bf16'].auto_mixed_precision_onednn_bfloat16 == on and rewrites['bf16'].auto_mixed_precision != on
    assert rewrites['fp16'].auto_mixed_precision == on and rewrites['fp16'].auto_mixed_precision_onednn_bfloat16 != on
    assert rewrites['fp32'].auto_mixed_precision_onednn_bfloat16 != on and rewrites['fp32'].auto_mixed_precision != on
    with pytest.raises(ValueError, match='auto'):
        main.session_config('auto')


@pytest.mark.parametrize('cpu_flags, gpu_capabilities, expected', [
    ('avx2 avx512f avx512_bf16', [], ('bf16', 'fp32')),
    ('avx2 fma', [], ('fp32',)),
    ('avx2 avx512_bf16', [(7, 0)], ('fp16', 'fp32')),  # a GPU runs the ops: no bfloat16 rewrite for them
    ('avx2', [(6, 1)], ('fp32',)),                      # Pascal: the float16 rewrite leaves it alone
])
def test_auto_precision_is_the_fastest_this_machine_has(monkeypatch, cpu_flags, gpu_capabilities, expected):
    monkeypatch.setattr(main, 'cpu_info', lambda: {'flags': cpu_flags})
    monkeypatch.setattr(main, 'gpu_compute_capabilities', lambda: gpu_capabilities)
    monkeypatch.delenv('TF_ENABLE_ONEDNN_OPTS', raising=False)
    assert main.available_precisions() == expected
    assert main.resolve_precision('auto') == expected[0]


def test_an_unavailable_precision_is_refused_saying_what_the_machine_offers(monkeypatch):
    monkeypatch.setattr(main, 'cpu_info', lambda: {'flags': 'avx2 fma'})
    monkeypatch.setattr(main, 'gpu_compute_capabilities', lambda: [])
    with pytest.raises(ValueError, match=r'--precision bf16 .*AVX-512 BF16.*offers fp32'):
        main.resolve_precision('bf16')
    assert main.parse_config(['--precision', 'fp32'])[0].precision == 'fp32'
    assert main.parse_config([])[0].precision == 'auto'


def test_loss_scaling_trains_and_keeps_a_dynamic_loss_scale():
    scores = tf.Variable(tf.zeros([1, 2, 2, 2]))
    labels = tf.placeholder(tf.float32, [None, None, None, 2])
    _, train_op, loss = main.optimize(scores, labels, 0.1, 2, loss_scaling=True)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        losses = [sess.run([train_op, loss], {labels: np.tile([0.0, 1.0], (1, 2, 2, 1))})[1] for _ in range(5)]
        assert np.abs(sess.run(scores)).max() > 0
    assert losses[-1] < losses[0] and losses[0] == pytest.approx(np.log(2))
    assert any('loss_scale' in variable.op.name for variable in tf.global_variables())


def test_prefetched_keeps_order_works_ahead_raises_the_producers_error_and_stops_with_the_consumer():
    assert list(helper.prefetched(iter(range(5)))) == [0, 1, 2, 3, 4]

    made = []

    def counted():
        for index in range(100):
            made.append(index)
            yield index

    threads_before = threading.active_count()
    items = helper.prefetched(counted(), depth=2)
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
        list(helper.prefetched(failing()))
    assert threading.active_count() == threads_before


def forward_gflop_by_hand(vgg_width, height, width):
    """GFLOP (2 x multiply-adds) of FCN-8s's convolutions for one height x width image, from the layer shapes."""
    multiply_adds = 0
    for name, kernel_shape in helper.vgg16_layer_shapes(vgg_width):
        stride = 32 if name.startswith('fc') else 2 ** (int(name[len('conv')]) - 1)  # conv3_1: block 3, stride 4
        multiply_adds += (height // stride) * (width // stride) * np.prod(kernel_shape)
    channels = {name: kernel_shape[3] for name, kernel_shape in helper.vgg16_layer_shapes(vgg_width)}
    for stride, in_channels in ((32, channels['fc7']), (16, channels['conv4_3']), (8, channels['conv3_3'])):
        multiply_adds += (height // stride) * (width // stride) * in_channels * 2          # score_fr, _pool4, _pool3
    for stride, kernel_size in ((32, 4), (16, 4), (8, 16)):
        multiply_adds += (height // stride) * (width // stride) * kernel_size ** 2 * 2 * 2  # upscore2, _pool4, 8
    return 2 * multiply_adds / 1e9


def test_bench_runs_on_a_tiny_configuration_and_writes_its_json(tmp_path):
    # A benchmark, not a test of speed: only that it runs and reports every figure, with no timing assertion.
    out_path = tmp_path / 'out' / 'bench.json'
    returned = main.run(['bench', '--image-height', '64', '--image-width', '192', '--width', str(TINY_WIDTH),
                         '--warmup-steps', '1', '--steps', '2', '--cache-dir', str(tmp_path / 'cache'),
                         '--out', str(out_path)])
    result = json.loads(out_path.read_text())
    assert result == json.loads(json.dumps(returned))
    for key in ('train_speedup', 'infer_speedup_b8', 'peak_gflops'):
        assert result[key] > 0, key
    best = main.available_precisions()[0]
    assert set(result['modes']) == {'classic_fp32', *(f'project_{precision}' for precision in main.available_precisions())}
    for name, speed in result['modes'].items():
        for figure in ('train_images_per_s', 'train_ms_per_step', 'train_input_wait_ms_per_step', 'train_share_of_peak',
                       'infer_b1_images_per_s', 'infer_b8_images_per_s', 'infer_b8_share_of_peak'):
            assert speed[figure] >= 0, (name, figure)
    assert result['modes'][f'project_{best}']['train_files_over_memory'] > 0
    assert set(result['speedups'][f'project_{best}']) == {'train', 'infer_b1', 'infer_b8'}
    assert result['gflop_per_image']['inference'] == pytest.approx(forward_gflop_by_hand(TINY_WIDTH, 64, 192))
    assert result['gflop_per_image']['training'] == pytest.approx(3 * result['gflop_per_image']['inference'])
    assert os.listdir(tmp_path / 'cache') == [f'vgg16_width_{TINY_WIDTH:g}']


def test_bench_refuses_a_size_that_is_not_a_multiple_of_32(capsys):
    with pytest.raises(SystemExit):
        main.run(['bench', '--image-height', '100'])
    assert 'not a multiple of 32' in capsys.readouterr().err


if __name__ == '__main__':
    sys.exit(pytest.main([__file__, '-v', *sys.argv[1:]]))
