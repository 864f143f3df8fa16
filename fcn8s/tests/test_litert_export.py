"""Tests of fcn8s/litert_export.py's parts: the int8 grid, the split upsampling kernels, the calibration sample.

The files it writes are tested through the LiteRT predictor, in test_litert.py."""
import os

import numpy as np
import pytest

from fcn8s.litert_export import calibration_sample, frozen_network, int8_grid_split, split_upsampling_kernels
from fcn8s.tests.fixtures import TINY_INPUT_SHAPE
from fcn8s.tf1 import tf


def test_int8_grid_split_rounds_onto_the_grid_and_keeps_the_sum():
    kernel = np.array([[[0.5, -1.27], [0.004, 0.0]], [[0.3, 0.02], [0.0, 0.0]]], np.float32)  # axis 2: 2 channels
    rounded, remainder = int8_grid_split(kernel, axis=2)
    np.testing.assert_allclose(rounded + remainder, kernel, atol=1e-7)
    scales = np.array([0.5, 1.27]) / 127  # max |kernel| of each channel / 127
    np.testing.assert_allclose(rounded / scales, np.round(rounded / scales), atol=1e-4)
    assert np.all(np.abs(remainder) <= scales / 2 + 1e-7)
    assert rounded[0, 0, 0] == pytest.approx(0.5) and rounded[0, 1, 0] == pytest.approx(1 * 0.5 / 127)
    assert not rounded[..., 1][kernel[..., 1] == 0].any()


def test_split_upsampling_kernels_computes_the_same_logits_with_twice_the_transposed_convolutions(exported_run):
    graph_def, input_name, logits_name = frozen_network(os.path.join(exported_run[0], 'model'))
    split = split_upsampling_kernels(graph_def)
    assert [node.op for node in split.node].count('Conv2DBackpropInput') == 6  # upscore2, upscore_pool4, upscore8
    image = np.random.default_rng(1).uniform(0, 255, (1, *TINY_INPUT_SHAPE, 3)).astype(np.float32)
    logits = []
    for definition in (graph_def, split):
        with tf.Graph().as_default(), tf.Session() as sess:
            images = tf.placeholder(tf.float32, [None, *TINY_INPUT_SHAPE, 3])
            output, = tf.import_graph_def(definition, input_map={input_name: images}, return_elements=[logits_name])
            logits.append(sess.run(output, {images: image}))
    assert logits[0].std() > 0.1
    np.testing.assert_allclose(logits[1], logits[0], atol=1e-4)


def test_the_calibration_sample_is_seeded_and_never_repeats_an_image():
    image_paths = [f'image_{index}.png' for index in range(10)]
    first, again, other_seed = (calibration_sample(image_paths, 4, seed) for seed in (3, 3, 4))
    assert first == again != other_seed
    assert len(set(first)) == 4 and first == sorted(first, key=image_paths.index)
    assert calibration_sample(image_paths[:3], 4) == image_paths[:3]
