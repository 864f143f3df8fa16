"""Tests of fcn8s/kitti/bev.py: KITTI's bird's-eye view, on calibrations whose answers are known."""
import os
import time

import numpy as np
import pytest
from PIL import Image

from fcn8s.errors import DataError
from fcn8s.kitti.bev import (BEV_SHAPE, bev_lookup, bev_visible_mask, cached_calibration_lookup, calibration_lookup,
                             calibration_path, image_to_bev, read_calibration, road_to_image_homography, to_bev,
                             write_calibration)
from fcn8s.tests.fixtures import SHARED_SAMPLES

# A level camera 1.5 m over the road: focal length 100 pixels, principal point (u, v) = (60, 20), 1-based.
FOCAL, PRINCIPAL_U, PRINCIPAL_V, CAMERA_HEIGHT = 100.0, 60.0, 20.0, 1.5
TOY_SHAPE = (60, 121)  # (height, width)
REAL_CALIB_DIR = os.path.join(SHARED_SAMPLES, 'calib')


def toy_calibration(principal_v=PRINCIPAL_V):
    """{P2, R0_rect, Tr_cam_to_road}: u = 60 + 100 X / Z and v = principal_v + 150 / Z for a road point (X, Z)."""
    return {'P2': np.array([[FOCAL, 0, PRINCIPAL_U, 0], [0, FOCAL, principal_v, 0], [0, 0, 1, 0]]),
            'R0_rect': np.eye(3), 'Tr_cam_to_road': np.hstack([np.eye(3), [[0], [-CAMERA_HEIGHT], [0]]])}


def cell_centre(row, column):
    """(X, Z) float32 metres of a BEV cell's centre, as the devkit's grid puts it: 0.05 m cells, row 0 the farthest."""
    return np.float32(-10 + 0.05 * (column + 0.5)), np.float32(46 - 0.05 * (row + 0.5))


def test_homography_of_a_level_camera():
    np.testing.assert_allclose(road_to_image_homography(toy_calibration()),
                               [[FOCAL, PRINCIPAL_U, 0], [0, PRINCIPAL_V, FOCAL * CAMERA_HEIGHT], [0, 1, 0]])


def test_cells_take_the_pixels_computed_by_hand():
    lookup = bev_lookup(road_to_image_homography(toy_calibration()), TOY_SHAPE)
    rows, columns = np.indices(TOY_SHAPE)
    position_code = (rows * 1000 + columns).astype(np.int32)  # [60, 121]: each pixel holds 1000 * row + column
    position_rgb = np.stack([rows, columns, np.full(TOY_SHAPE, 255)], axis=-1).astype(np.uint8)
    bev_code, bev_rgb = to_bev(position_code, lookup), to_bev(position_rgb, lookup)
    assert bev_code.shape == BEV_SHAPE == (800, 400) and bev_code.dtype == np.int32
    assert bev_rgb.shape == (800, 400, 3) and bev_rgb.dtype == np.uint8

    # Cell (790, 250): X = 2.525, Z = 6.475; u = 60 + 252.5 / 6.475 = 98.996, v = 20 + 150 / 6.475 = 43.166.
    assert bev_code[790, 250] == 42 * 1000 + 97
    # Cell (0, 0): X = -9.975, Z = 45.975; u = 60 - 997.5 / 45.975 = 38.303, v = 20 + 150 / 45.975 = 23.263.
    assert bev_code[0, 0] == 22 * 1000 + 37
    # Cell (799, 200): X = 0.025, Z = 6.025; u = 60 + 2.5 / 6.025 = 60.415, v = 20 + 150 / 6.025 = 44.896.
    assert bev_code[799, 200] == 43 * 1000 + 59
    assert bev_rgb[799, 200].tolist() == [43, 59, 255]
    # Cell (799, 0): X = -9.975, Z = 6.025; u = 60 - 997.5 / 6.025 = -105.6, left of the image.
    assert bev_code[799, 0] == 0 and bev_rgb[799, 0].tolist() == [0, 0, 0]

    # 23.3 <= v <= 45 for every Z in 6..46 m, so a cell sees the image when 1 <= u <= 121: -0.59 Z <= X <= 0.61 Z
    # (no cell centre lies on either line: X = (2 column - 399) / 40 and Z = (1839 - 2 row) / 40).
    x_centres, z_centres = cell_centre(*np.indices(BEV_SHAPE))
    sees_image = (x_centres >= -0.59 * z_centres) & (x_centres <= 0.61 * z_centres)
    np.testing.assert_array_equal(bev_visible_mask(lookup), sees_image)
    assert (bev_rgb[~sees_image] == 0).all() and (bev_rgb[sees_image, 2] == 255).all()


def test_lookup_refuses_an_image_of_another_size():
    lookup = bev_lookup(road_to_image_homography(toy_calibration()), TOY_SHAPE)
    with pytest.raises(ValueError, match=r'shape \(61, 121\) cannot take a BEV lookup made for images of \(60, 121\)'):
        to_bev(np.zeros((61, 121), np.float32), lookup)


def test_calibration_path_of_images_and_labels():
    expected = os.path.join('data_road', 'testing', 'calib', 'um_000007.txt')
    assert calibration_path(os.path.join('data_road', 'testing', 'image_2', 'um_000007.png')) == expected
    assert calibration_path(os.path.join('data_road', 'training', 'gt_image_2', 'uu_road_000012.png')) == \
        os.path.join('data_road', 'training', 'calib', 'uu_000012.txt')
    with pytest.raises(DataError, match='photo.png is not named like a KITTI Road image'):
        calibration_path('photo.png')


def test_written_calibration_reads_back(tmp_path):
    path = str(tmp_path / 'um_000000.txt')
    write_calibration(path, {'P0': np.arange(12.0).reshape(3, 4), **toy_calibration()})
    calibration = read_calibration(path)
    assert sorted(calibration) == ['P2', 'R0_rect', 'Tr_cam_to_road']
    for key, matrix in toy_calibration().items():
        np.testing.assert_array_equal(calibration[key], matrix)


@pytest.mark.parametrize('content, message', [
    (None, r'does not exist: expected the camera calibration'),
    ('P2: 1 0 0 0 0 1 0 0 0 0 1 0\nR0_rect: 1 0 0 0 1 0 0 0 1\n', r'has no Tr_cam_to_road line'),
    ('P2: 1 0 0 0 0 1 0 0 0 0 1\nR0_rect: 1 0 0 0 1 0 0 0 1\nTr_cam_to_road: 1 0 0 0 0 1 0 -1.65 0 0 1 0\n',
     r'its P2 line has 11 numbers: expected "P2:" and 12 numbers \(a 3x4 matrix'),
    ('P2: 1 0 0 0 0 1 0 0 0 0 1 zero\n', r'its P2 line holds text that is not a number'),
])
def test_bad_calibration_files_are_named(tmp_path, content, message):
    path = tmp_path / 'training' / 'calib' / 'um_000003.txt'
    if content is not None:
        path.parent.mkdir(parents=True)
        path.write_text(content)
    with pytest.raises(DataError, match=message) as raised:
        read_calibration(str(path))
    assert str(raised.value).startswith(str(path)) and 'data_road.zip' in str(raised.value)


LEVEL_CAMERA = {'P2': '100 0 60 0 0 100 20 0 0 0 1 0', 'R0_rect': '1 0 0 0 1 0 0 0 1',
                'Tr_cam_to_road': '1 0 0 0 0 1 0 -1.5 0 0 1 0'}  # toy_calibration() as text


@pytest.mark.parametrize('key, values, message', [
    ('P2', 'nan 0 60 0 0 100 20 0 0 0 1 0', r'its P2 line holds nan, not a finite number'),
    ('R0_rect', '1 0 0 0 inf 0 0 0 1', r'its R0_rect line holds inf, not a finite number'),
    ('Tr_cam_to_road', '0 0 0 0 0 0 0 0 0 0 0 0', r'its Tr_cam_to_road cannot be inverted'),
    ('Tr_cam_to_road', '1 0 0 0 0 1 0 -1.5 2 0 0 0', r'its Tr_cam_to_road cannot be inverted'),  # rows 1 and 3 alike
    # A camera looking backwards (Z -> -Z): every cell is behind it, w' = -Z from -46 to -6.
    ('R0_rect', '1 0 0 0 1 0 0 0 -1', r"behind the camera .*projected depth w' from -46 to -6"),
    # Turned 90 degrees to the left (camera Z = road -X): w' = -X at cell centres X = -9.975..9.975.
    ('Tr_cam_to_road', '0 0 -1 0 0 1 0 -1.5 1 0 0 0', r"behind the camera .*w' from -9.98 to 9.98"),
    ('P2', '0 0 0 0 0 0 0 0 0 0 0 0', r"on its focal plane .*w' from 0 to 0"),
])
def test_calibrations_that_cannot_make_a_bev_are_refused_naming_the_file_and_key(tmp_path, key, values, message):
    path = tmp_path / 'calib' / 'um_000003.txt'
    path.parent.mkdir()
    path.write_text(''.join(f'{name}: {values if name == key else text}\n' for name, text in LEVEL_CAMERA.items()))
    with pytest.raises(DataError, match=message) as raised:
        read_calibration(str(path))
    assert str(raised.value).startswith(f'{path}: ') and 'data_road.zip' in str(raised.value)


def test_a_calibration_through_which_no_cell_sees_the_image_is_refused_for_that_image_size(tmp_path):
    path = str(tmp_path / 'um_000003.txt')
    write_calibration(path, toy_calibration(principal_v=100.0))  # v = 100 + 150 / Z in 103.3..125: below 60 rows
    with pytest.raises(DataError, match=rf"^{path}: no cell of the bird's-eye-view grid sees an image of 121x60 pixels "
                                        'through it, so its BEV would be all black'):
        calibration_lookup(path, TOY_SHAPE)
    assert bev_visible_mask(calibration_lookup(path, (126, 121))).any()  # 126 rows reach v = 103.3..125


def test_the_level_camera_text_reads_as_the_toy_calibration(tmp_path):
    path = tmp_path / 'um_000003.txt'
    path.write_text(''.join(f'{name}: {text}\n' for name, text in LEVEL_CAMERA.items()))
    for key, matrix in toy_calibration().items():
        np.testing.assert_array_equal(read_calibration(str(path))[key], matrix)


def test_unreadable_calibration_is_named(tmp_path):
    with pytest.raises(DataError, match='cannot be read as a KITTI calibration text file'):
        read_calibration(str(tmp_path))  # a folder


@pytest.mark.skipif(not os.path.isdir(REAL_CALIB_DIR), reason=f'{REAL_CALIB_DIR} is absent (only in the dev workspace)')
@pytest.mark.parametrize('name', ['um_000000', 'um_000084', 'umm_000009', 'umm_000080', 'uu_000038', 'uu_000073'])
def test_real_calibrations_against_the_inverse_homography(name):
    """Which cells see a real image, and where its bottom edge lies, found again from the image's corners.

    The corners, mapped to the road by the inverse homography, bound the visible area by four lines; a cell
    sees the image when its centre is on the image's side of each (all cells are in front of the camera).
    The bottom edge runs from the bottom-left to the bottom-right corner: the lowest visible cell of each
    column between them is the last whose centre lies beyond that line.
    """
    with Image.open(os.path.join(SHARED_SAMPLES, 'image_2', f'{name}.png')) as image:
        width, height = image.size
    homography = road_to_image_homography(read_calibration(os.path.join(REAL_CALIB_DIR, f'{name}.txt')))
    visible = bev_visible_mask(calibration_lookup(os.path.join(REAL_CALIB_DIR, f'{name}.txt'), (height, width)))
    assert visible.shape == BEV_SHAPE == (800, 400)

    image_to_road = np.linalg.inv(homography)
    top_left, top_right, bottom_right, bottom_left = (image_to_road @ [u, v, 1.0] for u, v in
                                                      ((1, 1), (width, 1), (width, height), (1, height)))
    edges = [np.cross(start, end) for start, end in ((top_left, top_right), (top_right, bottom_right),
                                                     (bottom_right, bottom_left), (bottom_left, top_left))]
    inside_point = image_to_road @ [width / 2, height - 10, 1.0]
    rows, columns = np.indices(BEV_SHAPE)
    x_centres, z_centres = cell_centre(rows, columns)
    cells = np.stack([x_centres, z_centres, np.ones(BEV_SHAPE)], axis=-1)
    sees_image = np.all([np.sign(cells @ edge) == np.sign(inside_point @ edge) for edge in edges], axis=0)
    assert visible.sum() == sees_image.sum() > 300_000
    np.testing.assert_array_equal(visible, sees_image)

    (left_x, left_z), (right_x, right_z) = (corner[:2] / corner[2] for corner in (bottom_left, bottom_right))
    left_row, right_row = (46 - left_z) / 0.05, (46 - right_z) / 0.05  # continuous: cell r spans [r, r + 1)
    left_column, right_column = (left_x + 10) / 0.05, (right_x + 10) / 0.05
    assert 780 < left_row < 810 and 780 < right_row < 810, 'the bottom corners land about 6 m ahead'
    checked = 0
    for column in range(int(np.ceil(left_column)), min(int(right_column), BEV_SHAPE[1])):
        edge_row = left_row + (column + 0.5 - left_column) * (right_row - left_row) / (right_column - left_column)
        expected_lowest = min(int(np.ceil(edge_row - 0.5)) - 1, BEV_SHAPE[0] - 1)
        assert np.flatnonzero(visible[:, column])[-1] == expected_lowest, f'column {column}'
        checked += 1
    assert checked > 150


def test_48_images_through_the_cached_transform_in_under_2_s(tmp_path):
    """48 validation images of 375x1242, each with its own calibration file: probabilities and label, twice over."""
    calib_dir, image_dir = tmp_path / 'training' / 'calib', tmp_path / 'training' / 'image_2'
    calib_dir.mkdir(parents=True)
    image_paths = [str(image_dir / f'um_{index:06d}.png') for index in range(48)]
    for index, image_path in enumerate(image_paths):
        write_calibration(calibration_path(image_path), toy_calibration(principal_v=150 + index))
    rng = np.random.default_rng(0)
    road_prob = rng.random((375, 1242), np.float32)
    label = rng.integers(0, 256, (375, 1242, 3), np.uint8)
    cached_calibration_lookup.cache_clear()
    start = time.process_time()  # this process's CPU time: other jobs on the machine do not count
    for image_path in image_paths:
        bev_prob, bev_label = image_to_bev(road_prob, image_path), image_to_bev(label, image_path)
    seconds = time.process_time() - start
    assert bev_prob.shape == (800, 400) and bev_label.shape == (800, 400, 3)
    assert cached_calibration_lookup.cache_info().misses == 48, 'each file read and its lookup made once'
    assert seconds < 2, f'{seconds:.2f} s'


def test_lookups_of_a_file_are_cached(tmp_path):
    path = str(tmp_path / 'um_000000.txt')
    write_calibration(path, toy_calibration())
    assert calibration_lookup(path, TOY_SHAPE) is calibration_lookup(path, TOY_SHAPE)
    assert calibration_lookup(path, (61, 121)) is not calibration_lookup(path, TOY_SHAPE)


def test_a_calibration_changed_or_removed_after_its_first_use_is_read_again(tmp_path):
    path = str(tmp_path / 'um_000000.txt')
    write_calibration(path, toy_calibration())
    first = calibration_lookup(path, TOY_SHAPE)
    write_calibration(path, toy_calibration(principal_v=PRINCIPAL_V + 10))
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10 ** 9))  # a later modification
    second = calibration_lookup(path, TOY_SHAPE)
    assert second is not first and not np.array_equal(second.pixel_index, first.pixel_index)
    os.remove(path)
    with pytest.raises(DataError, match='um_000000.txt'):
        calibration_lookup(path, TOY_SHAPE)
