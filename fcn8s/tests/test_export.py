"""Tests of fcn8s/export.py: `python main.py export` on KITTI and Cityscapes runs, and what it refuses."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import main
from fcn8s.export import export_command
from fcn8s.litert import open_interpreter, read_metadata, run_network
from fcn8s.tf1 import tf


def test_export_writes_a_cityscapes_int8_model_whose_probabilities_agree_with_the_savedmodel(cityscapes_run, tmp_path,
                                                                                           capsys):
    tflite_path = str(tmp_path / 'cars' / 'cityscapes.tflite')  # its folder is made
    assert main.run(['export', '--run', cityscapes_run, '--out', tflite_path]) == tflite_path
    printed = capsys.readouterr().out
    assert f'Wrote {tflite_path} (' in printed and 'MB): cityscapes, int8, input 64x128' in printed
    metadata = read_metadata(tflite_path)
    assert metadata['outputs'] == ['class_prob', 'class_id'] and metadata['num_classes'] == 19
    assert metadata['calibration_images'] == 4  # the run's 4 training images, fewer than the 64 asked for
    data_dir = json.load(open(os.path.join(cityscapes_run, 'config.json')))['data_dir']
    image_path = os.path.join(data_dir, 'demo', 'cityscapes', 'leftImg8bit', 'val', 'frankfurt',
                              'frankfurt_000000_000019_leftImg8bit.png')
    network_image = np.asarray(Image.open(image_path).resize((128, 64)), np.float32)[None]  # no resizing in either
    with tf.Session(graph=tf.Graph()) as sess:
        signature = tf.saved_model.loader.load(sess, ['serve'], os.path.join(cityscapes_run, 'model')).signature_def[
            'serving_default']
        saved_class_prob = sess.run(signature.outputs['class_prob'].name,
                                    {signature.inputs['images'].name: network_image})
    interpreter, _ = open_interpreter(tflite_path)
    tflite_class_prob = run_network(interpreter, network_image)['class_prob']
    assert tflite_class_prob.shape == saved_class_prob.shape == (1, 64, 128, 19)
    # Two epochs leave this tiny model's 19 probabilities within 0.01 of 1/19: its class ids are a matter of
    # rounding, so the probabilities are compared (class ids of a decisive model: tests/test_litert.py).
    assert np.abs(tflite_class_prob - saved_class_prob).mean() < 0.002  # 0.0008 measured
    np.testing.assert_allclose(tflite_class_prob, saved_class_prob, atol=0.005)


def test_export_of_fp16_and_float32_needs_no_training_images(exported_run, tmp_path, capsys):
    run_dir = shutil.copytree(exported_run[0], tmp_path / 'run')  # no split.json, no training images
    with pytest.raises(SystemExit) as stopped:
        export_command(['--run', str(run_dir)])
    assert 'cannot list the training images of' in str(stopped.value.code)
    assert 'or export with --quantize fp16 or none' in str(stopped.value.code)
    assert not os.path.exists(run_dir / 'model.tflite')
    sizes = {}
    for quantization, precision in (('fp16', 'fp16'), ('none', 'fp32')):
        tflite_path = str(tmp_path / f'{quantization}.tflite')
        export_command(['--run', str(run_dir), '--quantize', quantization, '--out', tflite_path])
        assert read_metadata(tflite_path)['precision'] == precision
        assert read_metadata(tflite_path)['calibration_images'] == 0
        sizes[precision] = os.path.getsize(tflite_path)
    assert 0.4 < sizes['fp16'] / sizes['fp32'] < 0.6


def test_export_of_a_run_without_its_model_says_how_to_get_one(exported_run, tmp_path):
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    shutil.copy(os.path.join(exported_run[0], 'config.json'), run_dir)
    with pytest.raises(SystemExit) as stopped:
        export_command(['--run', str(run_dir), '--quantize', 'none'])
    assert f'{run_dir} has no model/ folder' in str(stopped.value.code)
    assert f'python main.py --resume {run_dir}' in str(stopped.value.code)
    with pytest.raises(SystemExit) as stopped:
        export_command(['--run', str(tmp_path / 'nowhere')])
    assert 'is not the config.json of a run' in str(stopped.value.code)
