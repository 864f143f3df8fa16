"""Tests of fcn8s/kitti/synthetic.py: the synthetic KITTI Road scenes."""
import os

import numpy as np
import pytest

from fcn8s.images import load_image
from fcn8s.kitti import BACKGROUND_COLOUR, INVALID_COLOUR, KITTI_SIZES, ROAD_COLOUR, decode_label, list_training_pairs
from fcn8s.kitti.bev import (bev_lookup, bev_visible_mask, calibration_path, read_calibration, road_to_image_homography,
                             to_bev)
from fcn8s.kitti.synthetic import ensure_synthetic_kitti, make_synthetic_kitti, synthetic_kitti_to_make, synthetic_scene

KITTI_CALIBRATION_KEYS = ['P0', 'P1', 'P2', 'P3', 'R0_rect', 'Tr_velo_to_cam', 'Tr_imu_to_velo', 'Tr_cam_to_road']


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

    for split in ('training', 'testing'):  # every image has a calibration in KITTI's format
        image_names = sorted(os.listdir(tmp_path / 'a' / split / 'image_2'))
        calib_names = sorted(os.listdir(tmp_path / 'a' / split / 'calib'))
        assert calib_names == [name.replace('.png', '.txt') for name in image_names]
        for name in image_names:
            path = calibration_path(str(tmp_path / 'a' / split / 'image_2' / name))
            with open(path) as calibration_file:
                text = calibration_file.read()
            assert [line.split(':')[0] for line in text.splitlines()] == KITTI_CALIBRATION_KEYS
            assert read_calibration(path)['P2'][0, 0] == 721.5377
            assert (tmp_path / 'b' / os.path.relpath(path, tmp_path / 'a')).read_text() == text


def road_edges_in_bev(category, seed, nearest_rows):
    """(BEV rows, left and right road columns) of a straight synthetic road, in the nearest_rows rows of the BEV.

    Rows where the road meets the grid's side or the image's side, or holds no road, are left out.
    """
    _, label, calibration = synthetic_scene(np.random.default_rng(seed), category, straight=True)
    lookup = bev_lookup(road_to_image_homography(calibration), label.shape[:2])
    road, visible = decode_label(to_bev(label, lookup))[0], bev_visible_mask(lookup)
    rows, left_columns, right_columns = [], [], []
    for row in range(road.shape[0] - nearest_rows, road.shape[0]):
        columns = np.flatnonzero(road[row])
        if columns.size and 0 < columns[0] and columns[-1] < road.shape[1] - 1 and visible[row, columns[0] - 1] \
                and visible[row, columns[-1] + 1]:
            rows.append(row)
            left_columns.append(columns[0])
            right_columns.append(columns[-1])
    return np.array(rows), np.array(left_columns), np.array(right_columns)


@pytest.mark.parametrize('category', ['um', 'umm', 'uu'])
def test_straight_synthetic_road_is_a_band_of_constant_width_in_bev(category):
    """The scene's own calibration sees its straight road as a straight band on the ground, in front of the car.

    The nearest 200 rows (Z 6..16 m): farther, one image row spans Z^2 / (721.5 * 1.65) m, 0.6 m at 26 m and
    1.8 m (36 cells) at 46 m, and the BEV of a pixel row is a wedge, not a band. Seed 2: none of its cars
    (background inside the road) touches a road edge in those rows.
    """
    rows, left_columns, right_columns = road_edges_in_bev(category, seed=2, nearest_rows=200)
    assert len(rows) >= 150
    for edge_columns in (left_columns, right_columns):
        straight_line = np.polyval(np.polyfit(rows, edge_columns, 1), rows)
        assert np.abs(edge_columns - straight_line).max() <= 2
    widths = right_columns - left_columns
    assert np.abs(widths - np.median(widths)).max() <= 2
    assert 80 <= np.median(widths) <= 240, 'a road 4 to 12 m wide'


@pytest.mark.parametrize('category', ['um', 'uu'])
def test_synthetic_horizon_is_where_the_road_vanishes(category):
    """A point 1000 km ahead projects onto the image row where the straight road's edges meet (PIL's rounding: +-2)."""
    _, label, calibration = synthetic_scene(np.random.default_rng(2), category, straight=True)
    u_scaled, v_scaled, w_scaled = road_to_image_homography(calibration) @ [0, 1e6, 1]
    horizon_row = int(v_scaled / w_scaled) - 1  # the devkit's 1-based coordinate -> row index
    road = decode_label(label)[0]
    near_rows = [row for row in range(road.shape[0] - 60, road.shape[0])  # seed 2's cars stand farther
                 if road[row].any() and not road[row, 0] and not road[row, -1]]
    left_slope, left_offset = np.polyfit(near_rows, [np.flatnonzero(road[row])[0] for row in near_rows], 1)
    right_slope, right_offset = np.polyfit(near_rows, [np.flatnonzero(road[row])[-1] for row in near_rows], 1)
    meeting_row = (right_offset - left_offset) / (left_slope - right_slope)
    assert len(near_rows) >= 40 and abs(meeting_row - horizon_row) <= 2


def test_synthetic_scenes_include_invalid_regions():
    invalid_fractions = [decode_label(synthetic_scene(np.random.default_rng(seed), 'um')[1])[1]
                         for seed in range(8)]
    assert sum((~valid).any() for valid in invalid_fractions) >= 2


def test_an_earlier_versions_synthetic_kitti_is_reused_when_whole_and_made_again_when_cut(tmp_path, capsys):
    road_path = tmp_path / 'data_road'
    make_synthetic_kitti(str(road_path), train_per_category=1, test_per_category=0)  # no manifest, as before
    assert not synthetic_kitti_to_make(str(road_path))
    ensure_synthetic_kitti(str(road_path), 3, 1)  # other counts: reused as it is
    assert len(os.listdir(road_path / 'training' / 'image_2')) == 3 and not os.path.exists(road_path / 'made.json')
    os.remove(road_path / 'training' / 'gt_image_2' / 'uu_road_000000.png')  # as a killed earlier version left it
    assert synthetic_kitti_to_make(str(road_path))
    ensure_synthetic_kitti(str(road_path), 1, 0)
    assert 'making the synthetic KITTI again' in capsys.readouterr().out
    assert len(os.listdir(road_path / 'training' / 'gt_image_2')) == 3 and os.path.exists(road_path / 'made.json')
