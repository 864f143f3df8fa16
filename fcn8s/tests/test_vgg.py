"""Tests of fcn8s/vgg.py: the VGG16 SavedModel builder and the conversion of Keras's weights."""
import h5py
import numpy as np
import pytest

import main
from fcn8s.commands import build_vgg_command
from fcn8s.errors import UnwritableOutput
from fcn8s.tests.fixtures import TINY_WIDTH, assert_tensor_shape
from fcn8s.tf1 import tf
from fcn8s.vgg import build_vgg16_savedmodel, classic_vgg16_weights, read_keras_vgg16_weights, vgg16_layer_shapes


@pytest.mark.parametrize('width, channels', [(1.0, (256, 512, 4096)), (TINY_WIDTH, (16, 32, 256))])
def test_builder_savedmodel_through_load_vgg(tmp_path, width, channels):
    vgg_path = build_vgg16_savedmodel(str(tmp_path / 'vgg'), width=width)
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
               for name, shape in vgg16_layer_shapes(TINY_WIDTH)}
    vgg_path = build_vgg16_savedmodel(str(tmp_path / 'vgg'), width=TINY_WIDTH, weights=weights)
    with tf.Session() as sess:
        main.load_vgg(sess, vgg_path)
        fc6_kernel, conv3_3_bias = sess.run(['fc6/weights:0', 'conv3_3/biases:0'])
    np.testing.assert_array_equal(fc6_kernel, weights['fc6'][0])
    np.testing.assert_array_equal(conv3_3_bias, weights['conv3_3'][1])


def test_builder_refuses_to_overwrite(tmp_path):
    (tmp_path / 'vgg').mkdir()
    with pytest.raises(UnwritableOutput, match='vgg'):
        build_vgg16_savedmodel(str(tmp_path / 'vgg'), width=TINY_WIDTH)


def assert_close_to_keras(actual, expected, name):
    """Equal within 1e-4 relative, where values near 0 may differ by 1e-4 of the largest activation.

    fc6 sums its 25088 products in another order than Keras's dense fc1: measured errors are ~1e-6 of the
    activations' scale, while a wrong mapping errs by ~1 (fc1 flattened c, h, w: 0.8) or 1e-2 (one zeroed bias).
    """
    assert (expected > 0).mean() > 0.3, f"{name}: Keras's activations are mostly zero, so they prove little"
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max(), err_msg=name)


@pytest.mark.slow
def test_build_vgg_from_keras_weights_gives_keras_activations(keras_vgg16, tmp_path):
    weights_path, image, keras_activations = keras_vgg16
    vgg_path = build_vgg_command(['--keras-weights', weights_path, '--out', str(tmp_path / 'vgg')])
    with tf.Session() as sess:
        image_input, keep_prob, layer3_out, layer4_out, layer7_out = main.load_vgg(sess, vgg_path)
        pool3, pool4, fc7 = sess.run([layer3_out, layer4_out, layer7_out], {image_input: image, keep_prob: 1.0})
    assert fc7.shape == (1, 7, 7, 4096)
    assert_close_to_keras(pool3, keras_activations['pool3'], 'layer3_out vs block3_pool')
    assert_close_to_keras(pool4, keras_activations['pool4'], 'layer4_out vs block4_pool')
    # pool5 is 7x7, so at fc7's centre, fc6's 7x7 SAME convolution sees exactly the window that the dense fc1 sees.
    assert_close_to_keras(fc7[0, 3, 3], keras_activations['fc2'][0], 'layer7_out[0, 3, 3] vs fc2')


def test_reading_keras_weights_explains_a_wrong_file(tmp_path):
    not_hdf5 = tmp_path / 'weights.h5'
    not_hdf5.write_bytes(b'not an HDF5 file')
    with pytest.raises(ValueError, match='cannot open .*weights.h5 as an HDF5 file'):
        read_keras_vgg16_weights(str(not_hdf5))
    keras3_layout = str(tmp_path / 'vgg16.weights.h5')
    with h5py.File(keras3_layout, 'w') as weights_file:
        weights_file.create_dataset('layers/block1_conv1/vars/0', data=np.zeros((3, 3, 3, 64), np.float32))
    with pytest.raises(ValueError, match=r"expected a group block1_conv1 .* among the groups \['layers'\]"):
        read_keras_vgg16_weights(keras3_layout)


def test_converting_keras_weights_refuses_a_wrong_shape():
    channels_first_kernel = np.zeros((64, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r'block1_conv1 has a kernel \(64, 3, 3, 3\).*\(3, 3, 3, 64\)'):
        classic_vgg16_weights({'block1_conv1': (channels_first_kernel, np.zeros(64, np.float32))})
