"""Tests of fcn8s/kitti/__init__.py: KITTI Road's file names, listing, and its label colours decoded by the devkit's rule."""
import os

import numpy as np
import pytest

from fcn8s.images import load_image
from fcn8s.kitti import (BACKGROUND_COLOUR, INVALID_COLOUR, ROAD_COLOUR, decode_label, image_name, label_ids,
                         label_name, list_training_pairs, parse_image_name, result_name, road_path)
from fcn8s.run_folder import image_names_of
from fcn8s.tests.fixtures import SHARED_SAMPLES


def test_decode_label_by_the_devkit_rule():
    label = np.array([[ROAD_COLOUR, BACKGROUND_COLOUR, INVALID_COLOUR, (0, 0, 255)]], np.uint8)
    road, valid = decode_label(label)
    assert road.tolist() == [[True, False, False, True]]
    assert valid.tolist() == [[True, True, False, False]]
    assert label_ids(label).tolist() == [[1, 0, 255, 255]]  # road, background, and two ignored pixels


@pytest.mark.skipif(not os.path.isdir(SHARED_SAMPLES), reason=f'{SHARED_SAMPLES} is absent (only in the dev workspace)')
def test_real_kitti_labels_decode():
    road, valid = decode_label(load_image(os.path.join(SHARED_SAMPLES, 'gt_image_2', 'umm_road_000009.png')))
    assert (road & ~valid).sum() == 33, 'the 33 pure-blue pixels are road but outside the valid area'
    assert (~valid).sum() == 27165 + 33


def test_names_are_built_and_read_in_one_place():
    assert image_name('umm', '000042') == 'umm_000042.png' and label_name('umm', '000042') == 'umm_road_000042.png'
    assert parse_image_name('/data/uu_000007.png') == ('uu', '000007')
    assert parse_image_name('uu_road_000007.png') is None and parse_image_name('um_7.png') is None
    assert result_name('testing/image_2/um_000123.png') == 'um_road_000123.png'
    with pytest.raises(ValueError, match='photo.png is not named like a KITTI Road image'):
        result_name('photo.png')
    assert road_path('data') == os.path.join('data', 'data_road')


def test_listing_pairs_can_keep_only_the_named_images(tmp_path):
    for folder, names in (('image_2', ('um_000000.png', 'uu_000001.png', 'notes.txt')),
                          ('gt_image_2', ('um_road_000000.png', 'uu_road_000001.png', 'um_lane_000000.png'))):
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / name).write_bytes(b'')
    pairs = list_training_pairs(str(tmp_path))
    assert image_names_of(pairs) == ['um_000000.png', 'uu_000001.png']
    assert pairs[1] == (str(tmp_path / 'image_2' / 'uu_000001.png'), str(tmp_path / 'gt_image_2' / 'uu_road_000001.png'))
    assert list_training_pairs(str(tmp_path), {'uu_000001.png'}) == pairs[1:]
    assert list_training_pairs(str(tmp_path), set()) == []
