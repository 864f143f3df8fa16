"""Tests of fcn8s/litert.py: the .tflite file agrees with the SavedModel, says what it is, runs without TensorFlow."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fcn8s.datasets import DATASETS
from fcn8s.images import load_image
from fcn8s.kitti.results import paint_road
from fcn8s.litert import read_metadata, tflite_predictor
from fcn8s.litert_export import export_tflite
from fcn8s.predict import export_model, saved_model_predictor, saved_model_road_predictor
from fcn8s.tests.fixtures import HEAVY_PACKAGES, PROJECT_DIR, TINY_INPUT_SHAPE, decisive_network, modules_loaded_by
from fcn8s.tf1 import tf


def test_a_float32_tflite_gives_the_savedmodels_road_probabilities(exported_run, tmp_path):
    run_dir, image, _ = exported_run
    metadata = export_tflite(os.path.join(run_dir, 'model'), DATASETS['kitti_road'], TINY_INPUT_SHAPE,
                             str(tmp_path / 'fp32.tflite'), 'none')
    assert metadata == read_metadata(str(tmp_path / 'fp32.tflite'))
    assert metadata['precision'] == 'fp32' and metadata['outputs'] == ['road_prob']
    network_size_image = np.random.default_rng(11).integers(0, 256, (*TINY_INPUT_SHAPE, 3), dtype=np.uint8)
    images = [image, network_size_image, image]  # two sizes, one batch each way
    saved_road_probs = saved_model_road_predictor(os.path.join(run_dir, 'model'))(images)
    tflite_road_probs = tflite_predictor(str(tmp_path / 'fp32.tflite'))(images)
    assert [road_prob.shape for road_prob in tflite_road_probs] == [(37, 61), TINY_INPUT_SHAPE, (37, 61)]
    np.testing.assert_allclose(tflite_road_probs[1], saved_road_probs[1], atol=1e-5)  # no resizing: the same network
    # Other sizes: Pillow's bilinear resizes against TensorFlow's antialiased ones.
    np.testing.assert_allclose(tflite_road_probs[0], saved_road_probs[0], atol=0.03)
    assert np.abs(tflite_road_probs[0] - saved_road_probs[0]).mean() < 0.003


def test_the_int8_tflite_agrees_with_the_savedmodel_and_records_its_calibration(kitti_tflite_run):
    tflite_path = os.path.join(kitti_tflite_run, 'model.tflite')
    metadata = read_metadata(tflite_path)
    assert {key: metadata[key] for key in ('dataset', 'image_height', 'image_width', 'precision', 'calibration_images')
            } == {'dataset': 'kitti_road', 'image_height': 64, 'image_width': 192, 'precision': 'int8',
                  'calibration_images': 6}
    image_dir = os.path.join(kitti_tflite_run, 'data', 'data_road', 'training', 'image_2')
    image = load_image(os.path.join(image_dir, sorted(os.listdir(image_dir))[0]))  # a scene like the calibration's
    saved_road_prob, = saved_model_road_predictor(os.path.join(kitti_tflite_run, 'model'))([image])
    tflite_road_prob, = tflite_predictor(tflite_path)([image])
    assert saved_road_prob.std() > 0.2
    assert tflite_road_prob.shape == (375, 1242)
    assert np.abs(tflite_road_prob - saved_road_prob).mean() < 0.02  # 0.009 measured
    assert ((tflite_road_prob > 0.5) == (saved_road_prob > 0.5)).mean() > 0.97  # 0.988 measured
    float_size = os.path.getsize(os.path.join(kitti_tflite_run, 'model', 'variables', 'variables.data-00000-of-00001'))
    assert os.path.getsize(tflite_path) < 0.4 * float_size


def test_files_that_are_not_models_of_this_project_are_named_with_what_is_wrong(tmp_path):
    with tf.Graph().as_default(), tf.Session() as sess:  # another project's model: no fcn8s metadata
        values = tf.placeholder(tf.float32, [1, 4], name='values')
        other_model = tf.lite.TFLiteConverter.from_session(sess, [values], [values * 2]).convert()
    (tmp_path / 'other.tflite').write_bytes(other_model)
    Image.new('RGB', (4, 4)).save(tmp_path / 'picture.png')
    os.rename(tmp_path / 'picture.png', tmp_path / 'picture.tflite')
    (tmp_path / 'folder.tflite').mkdir()
    for name, message in (('other.tflite', 'is a TFLite model, but not one that this project exported'),
                          ('picture.tflite', "is not a TFLite model: a .tflite file has \"TFL3\" in its bytes 4 to 8"),
                          ('missing.tflite', 'does not exist'),
                          ('folder.tflite', 'is a folder, not a .tflite file')):
        with pytest.raises(ValueError, match=re.escape(message)) as raised:
            read_metadata(str(tmp_path / name))
        assert str(tmp_path / name) in str(raised.value) and 'python main.py export --run' in str(raised.value)


# Run by a separate Python in which importing TensorFlow fails: the README's lines, as a user copies them.
WITHOUT_TENSORFLOW = '''
import sys
sys.modules['tensorflow'] = None  # any `import tensorflow` now raises ImportError
exec(open(sys.argv[1]).read())
print(sorted(name for name in sys.modules if name.startswith('tensorflow')))
'''


def test_the_readmes_lines_paint_an_image_with_litert_alone(kitti_tflite_run, exported_run, tmp_path):
    readme = open(os.path.join(PROJECT_DIR, 'README.md')).read()
    example = re.search(r'<!-- litert-example[^\n]*-->\n```python\n(.*?)```', readme, re.DOTALL).group(1)
    (tmp_path / 'example.py').write_text(example)
    image = np.random.default_rng(12).integers(0, 256, (50, 90, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / 'image.png')
    os.symlink(os.path.join(kitti_tflite_run, 'model.tflite'), tmp_path / 'model.tflite')
    finished = subprocess.run([sys.executable, '-c', WITHOUT_TENSORFLOW, 'example.py'], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.split('\n')[-2] == "['tensorflow']"  # only the blocked entry: nothing of TensorFlow loaded
    road_prob, = tflite_predictor(os.path.join(kitti_tflite_run, 'model.tflite'))([image])
    assert 0.05 < (road_prob > 0.5).mean() < 0.95
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'painted.png')), paint_road(image, road_prob))


def test_an_int8_cityscapes_model_gives_the_savedmodels_class_ids(tiny_vgg_path, tmp_path):
    rng = np.random.default_rng(14)
    calibration_paths = []
    for index in range(4):
        calibration_paths.append(str(tmp_path / f'calibration_{index}.png'))
        Image.fromarray(rng.integers(0, 256, (*TINY_INPUT_SHAPE, 3), dtype=np.uint8)).save(calibration_paths[-1])
    with tf.Session() as sess:  # seed 4: its test image comes out 46, 21, 11, 10 and 6% of five classes
        image_input, keep_prob, logits = decisive_network(sess, tiny_vgg_path, 19, seed=4)
        export_model(sess, image_input, keep_prob, logits, TINY_INPUT_SHAPE, str(tmp_path / 'model'),
                     DATASETS['cityscapes'])
    metadata = export_tflite(str(tmp_path / 'model'), DATASETS['cityscapes'], TINY_INPUT_SHAPE,
                             str(tmp_path / 'model.tflite'), 'int8', calibration_paths)
    assert metadata['outputs'] == ['class_prob', 'class_id'] and metadata['calibration_images'] == 4
    image = rng.integers(0, 256, (45, 83, 3), dtype=np.uint8)
    saved_class_ids, = saved_model_predictor(str(tmp_path / 'model'), None, 'class_id')([image])
    tflite_class_ids, = tflite_predictor(str(tmp_path / 'model.tflite'), output='class_id')([image])
    assert tflite_class_ids.shape == (45, 83) and tflite_class_ids.dtype == np.int32
    assert (np.unique(saved_class_ids, return_counts=True)[1] > 0.05 * saved_class_ids.size).sum() >= 4
    assert (tflite_class_ids == saved_class_ids).mean() > 0.93  # 0.968 measured


def test_importing_the_predictor_loads_no_tensorflow_and_nothing_but_numpy_pillow_and_litert():
    loaded = modules_loaded_by('fcn8s.litert')
    assert not [name for name in loaded if name.split('.')[0] in HEAVY_PACKAGES]
    fcn8s_modules = {name for name in loaded if name.startswith('fcn8s')}
    assert fcn8s_modules == {'fcn8s', 'fcn8s.errors', 'fcn8s.litert', 'fcn8s.model_io'}
    outside_the_standard_library = {name.split('.')[0] for name in loaded} - set(sys.stdlib_module_names)
    # What `pip install ai-edge-litert numpy pillow` installs (flatbuffers comes with ai-edge-litert); setuptools'
    # _distutils_hack is loaded by the virtualenv's .pth file, before any import.
    assert outside_the_standard_library <= {'__main__', '_distutils_hack', 'fcn8s', 'numpy', 'PIL', 'ai_edge_litert',
                                            'flatbuffers'}
