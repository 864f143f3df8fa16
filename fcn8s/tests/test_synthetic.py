"""Tests of fcn8s/synthetic.py: the synthetic KITTI Road scenes."""
import os

import numpy as np

from fcn8s.images import load_image
from fcn8s.kitti import BACKGROUND_COLOUR, INVALID_COLOUR, KITTI_SIZES, ROAD_COLOUR, decode_label, list_training_pairs
from fcn8s.synthetic import make_synthetic_kitti, synthetic_scene


def test_synthetic_kitti_layout_and_determinism(tmp_path):
    make_synthetic_kitti(str(tmp_path / 'a'), train_per_category=2, test_per_category=1, seed=5)
    make_synthetic_kitti(str(tmp_path / 'b'), train_per_category=2, test_per_category=1, seed=5)
    training = tmp_path / 'a' / 'training'
    assert sorted(os.listdir(training / 'image_2')) == [
        'um_000000.png', 'um_000001.png', 'umm_000000.png', 'umm_000001.png', 'uu_000000.png', 'uu_000001.png']
    assert sorted(os.listdir(training / 'gt_image_2')) == [
        'um_road_000000.png', 'um_road_000001.png', 'umm_road_000000.png', 'umm_road_000001.png',
        'uu_road_000000.png', 'uu_road_000001.png']
    assert sorted(os.listdir(tmp_path / 'a' / 'testing' / 'image_2')) == ['um_000000.png', 'umm_000000.png', 'uu_000000.png']
    kitti_sizes = {size for size, _ in KITTI_SIZES}
    colours = set()
    for image_path, label_path in list_training_pairs(str(training)):
        image, label = load_image(image_path), load_image(label_path)
        assert (image.shape[1], image.shape[0]) in kitti_sizes and label.shape == image.shape
        colours |= {tuple(colour) for colour in np.unique(label.reshape(-1, 3), axis=0).tolist()}
        twin = tmp_path / 'b' / os.path.relpath(image_path, tmp_path / 'a')
        np.testing.assert_array_equal(image, load_image(str(twin)))
    assert {ROAD_COLOUR, BACKGROUND_COLOUR} <= colours <= {
        ROAD_COLOUR, BACKGROUND_COLOUR, INVALID_COLOUR}


def test_synthetic_scenes_include_invalid_regions():
    invalid_fractions = [decode_label(synthetic_scene(np.random.default_rng(seed), 'um')[1])[1]
                         for seed in range(8)]
    assert sum((~valid).any() for valid in invalid_fractions) >= 2
