"""KITTI Road's bird's-eye view (BEV): the devkit's mapping of an image onto a metric grid of the road plane.

The benchmark ranks road results in BEV, as the devkit's transform2BEV.py / BirdsEyeView.py make it: every image
`<split>/image_2/<cat>_NNNNNN.png` has a calibration `<split>/calib/<cat>_NNNNNN.txt`, whose camera projection
(P2), rectification (R0_rect) and camera-to-road transform (Tr_cam_to_road) give a homography from the road
plane to the image. Each cell of a 0.05 m grid over X -10..10 m (left to right) and Z 6..46 m (ahead, the
farthest first) takes the image pixel its centre projects onto, or 0 where it projects outside the image.
Road coordinates: X to the right, Y down (the road surface is Y = 0), Z ahead, in metres.
"""
import functools
import os
from typing import NamedTuple

import numpy as np

from fcn8s import kitti
from fcn8s.errors import DataError

BEV_CELL_METRES = 0.05
BEV_X_RANGE = (-10.0, 10.0)  # metres, left to right
BEV_Z_RANGE = (6.0, 46.0)  # metres ahead of the camera
BEV_SHAPE = (800, 400)  # (rows: Z, farthest first; columns: X, leftmost first)
# The cells' centres in metres, float32 as the devkit rounds them before projecting.
BEV_X_CENTRES = (BEV_X_RANGE[0] + BEV_CELL_METRES * (np.arange(BEV_SHAPE[1]) + 0.5)).astype(np.float32)
BEV_Z_CENTRES = (BEV_Z_RANGE[1] - BEV_CELL_METRES * (np.arange(BEV_SHAPE[0]) + 0.5)).astype(np.float32)

CALIB_FOLDER = 'calib'
CALIBRATION_SHAPES = {'P2': (3, 4), 'R0_rect': (3, 3), 'Tr_cam_to_road': (3, 4)}  # the keys the BEV needs
LOOKUPS_CACHED = 64  # (calibration file, image size) lookups kept: a validation set's worth, 2.6 MB each
MAX_CONDITION_NUMBER = 1e12  # a Tr_cam_to_road (4x4) of a larger condition number counts as not invertible
CALIBRATION_ADVICE = ("KITTI's data_road.zip holds each split's calib/ folder beside image_2/: unpack it there, "
                   'or replace this file with its copy from the zip.')


def calibration_path(image_path):
    """<split>/calib/<cat>_NNNNNN.txt: the calibration of <split>/image_2/<cat>_NNNNNN.png (or of its road label).

    Raises DataError when the file is not named like a KITTI Road image or label.
    """
    name = os.path.basename(image_path)
    match = kitti.IMAGE_NAME.match(name) or kitti.LABEL_NAME.match(name)
    if match is None:
        raise DataError(f'{image_path} is not named like a KITTI Road image ({kitti.IMAGE_NAME_FORM}) or label '
                        f'({kitti.LABEL_NAME_FORM}), so it has no calibration file: give the images of image_2/.')
    split_folder = os.path.dirname(os.path.dirname(image_path))
    return os.path.join(split_folder, CALIB_FOLDER, f'{match[1]}_{match[2]}.txt')


def read_calibration(path):
    """{'P2': [3, 4], 'R0_rect': [3, 3], 'Tr_cam_to_road': [3, 4]} float64 matrices of a KITTI calibration file.

    Lines are `KEY: v1 v2 ...` (row-major); other keys are ignored. The one reader of calibration files: it
    raises DataError naming the file, and the key where there is one, when the file is missing or unreadable,
    lacks one of the three keys, gives one the wrong number of values or a value that is not a finite number,
    holds a Tr_cam_to_road that cannot be inverted, or a homography (road_to_image_homography) that does not
    put the whole BEV grid in front of the camera (check_bev_grid_in_front).
    """
    try:
        with open(path, encoding='ascii') as calibration_file:
            lines = calibration_file.read().splitlines()
    except FileNotFoundError as error:
        raise DataError(f'{path} does not exist: expected the camera calibration of the image of the same name, '
                        f'which the bird\'s-eye view needs. {CALIBRATION_ADVICE}') from error
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f'{path} cannot be read as a KITTI calibration text file ({error}). '
                        f'{CALIBRATION_ADVICE}') from error
    fields = {key.strip(): text.split() for key, text in (line.split(':', 1) for line in lines if ':' in line)}
    calibration = {}
    for key, shape in CALIBRATION_SHAPES.items():
        expected = f'"{key}:" and {shape[0] * shape[1]} numbers (a {shape[0]}x{shape[1]} matrix, row by row)'
        if key not in fields:
            raise DataError(f'{path} has no {key} line: expected {expected}. {CALIBRATION_ADVICE}')
        try:
            values = np.array(fields[key], dtype=np.float64)
        except ValueError as error:
            raise DataError(f'{path}: its {key} line holds text that is not a number ({error}): expected '
                            f'{expected}. {CALIBRATION_ADVICE}') from error
        if values.size != shape[0] * shape[1]:
            raise DataError(f'{path}: its {key} line has {values.size} numbers: expected {expected}. '
                            f'{CALIBRATION_ADVICE}')
        if not np.isfinite(values).all():
            raise DataError(f'{path}: its {key} line holds {values[~np.isfinite(values)][0]}, not a finite number: '
                            f'expected {expected}. {CALIBRATION_ADVICE}')
        calibration[key] = values.reshape(shape)
    if np.linalg.cond(padded_4x4(calibration['Tr_cam_to_road'])) > MAX_CONDITION_NUMBER:
        raise DataError(f'{path}: its Tr_cam_to_road cannot be inverted (padded to 4x4, it is singular): expected '
                        'the rigid transform from camera to road coordinates, a rotation and a translation (KITTI\'s '
                        f'put the road about 1.65 m below the camera). {CALIBRATION_ADVICE}')
    check_bev_grid_in_front(road_to_image_homography(calibration), path)
    return calibration


def check_bev_grid_in_front(homography, path):
    """Raise DataError naming path unless homography Tr33 [3, 3] puts every BEV cell in front of the camera.

    A road point (X, Z) lies in front when its projection's w' > 0; w' is affine in X and Z, so the four
    corner cells decide for the whole grid. A cell behind the camera would take a pixel through its
    mirrored projection, as the devkit, which does not test w', would.
    """
    corners_x, corners_z = np.meshgrid(BEV_X_CENTRES[[0, -1]], BEV_Z_CENTRES[[0, -1]])
    depths = homography[2, 0] * corners_x + homography[2, 1] * corners_z + homography[2, 2]
    if not (depths > 0).all():
        raise DataError(f'{path}: its P2, R0_rect and Tr_cam_to_road put part of the bird\'s-eye-view grid '
                        f'(X {BEV_X_RANGE[0]:g}..{BEV_X_RANGE[1]:g} m, Z {BEV_Z_RANGE[0]:g}..{BEV_Z_RANGE[1]:g} m '
                        'ahead on the road) behind the camera or on its focal plane (projected depth '
                        f'w\' from {depths.min():.3g} to {depths.max():.3g}; expected > 0 for every cell). '
                        f'{CALIBRATION_ADVICE}')


def write_calibration(path, matrices):
    """Write {key: matrix} as a KITTI calibration file: one `KEY: v1 v2 ...` line each, row-major, in '%.12e'."""
    with open(path, 'w', encoding='ascii') as calibration_file:
        for key, matrix in matrices.items():
            calibration_file.write(f'{key}: ' + ' '.join(f'{value:.12e}' for value in np.ravel(matrix)) + '\n')


def padded_4x4(matrix):
    """A [3, 3] or [3, 4] matrix in the top rows of the 4x4 identity: [4, 4] float64, 1 at [3, 3]."""
    padded = np.eye(4)
    padded[:3, :matrix.shape[1]] = matrix
    return padded


def road_to_image_homography(calibration):
    """Tr33 [3, 3] float64: maps a road-plane point (X, Z, 1) in metres to (u', v', w'), u'/w', v'/w' 1-based pixels.

    Tr = P2 . R0 . inv(T) with R0_rect and Tr_cam_to_road padded to 4x4 (1 at [3, 3]); Tr33 is its columns
    for X, Z and 1, as the road plane is Y = 0.
    """
    road_to_image = (calibration['P2'] @ padded_4x4(calibration['R0_rect'])
                     @ np.linalg.inv(padded_4x4(calibration['Tr_cam_to_road'])))
    return road_to_image[:, [0, 2, 3]]


class BevLookup(NamedTuple):
    """Which image pixel each BEV cell takes, for images of one size under one calibration."""
    image_shape: tuple  # (height, width) in pixels
    pixel_index: np.ndarray  # [800, 400] intp: row * width + column of the pixel a cell takes; height * width if none


def bev_lookup(homography, image_shape):
    """The BevLookup of images of image_shape (height, width) under a road-to-image homography Tr33 [3, 3].

    As the devkit: each cell centre (X, Z) projects to 1-based (u, v) = (u'/w', v'/w'); it sees the image when
    1 <= u <= width and 1 <= v <= height, and takes the pixel at row int(v) - 1, column int(u) - 1 (truncation):
    so the image's last row and column are taken only where v = height or u = width exactly. Like the devkit,
    cells are not tested for w' > 0 (lying in front of the camera) here: read_calibration refuses a calibration
    that puts any cell behind (for KITTI's and synthetic.py's, w' is about the depth Z >= 6 m).
    """
    height, width = image_shape
    x_centres, z_centres = BEV_X_CENTRES.astype(np.float64), BEV_Z_CENTRES[:, np.newaxis].astype(np.float64)
    u_scaled, v_scaled, w_scaled = (row[0] * x_centres + row[1] * z_centres + row[2] for row in homography)
    u, v = u_scaled / w_scaled, v_scaled / w_scaled
    visible = (u >= 1) & (u <= width) & (v >= 1) & (v <= height)
    # Clipped only so that cells that do not see the image get some index before np.where replaces it.
    pixel_row, pixel_column = np.clip(v, 1, height).astype(np.intp) - 1, np.clip(u, 1, width).astype(np.intp) - 1
    return BevLookup((height, width), np.where(visible, pixel_row * width + pixel_column, height * width))


def calibration_lookup(calibration_file, image_shape):
    """The BevLookup of images of image_shape (height, width) that calibration_file describes, cached while the
    file stays as it is (its size and modification time).

    Raises DataError naming the file when it is missing or unusable (read_calibration), or when no BEV cell
    sees such an image through it (it describes another camera or image size: the BEV would be all black).
    """
    try:
        stat = os.stat(calibration_file)
        version = (stat.st_size, stat.st_mtime_ns)
    except OSError:
        version = None  # read_calibration names what is wrong
    return cached_calibration_lookup(calibration_file, version, image_shape)


@functools.lru_cache(maxsize=LOOKUPS_CACHED)
def cached_calibration_lookup(calibration_file, version, image_shape):
    """calibration_lookup of one version, (size, modification time) or None, of calibration_file."""
    lookup = bev_lookup(road_to_image_homography(read_calibration(calibration_file)), image_shape)
    if not bev_visible_mask(lookup).any():
        raise DataError(f"{calibration_file}: no cell of the bird's-eye-view grid sees an image of {image_shape[1]}x"
                        f'{image_shape[0]} pixels through it, so its BEV would be all black: it is not the calibration '
                        f'of this image. {CALIBRATION_ADVICE}')
    return lookup


def to_bev(array, lookup):
    """array [h, w] or [h, w, channels] (probabilities, label colours, pixels) -> [800, 400(, channels)] BEV.

    The same dtype; cells that do not see the image are 0 (black: outside the evaluated area for a label).
    """
    if array.shape[:2] != lookup.image_shape:
        raise ValueError(f'an array of shape {array.shape} cannot take a BEV lookup made for images of '
                         f'{lookup.image_shape} (height, width)')
    pixels = array.reshape((-1,) + array.shape[2:])
    pixels_then_zero = np.concatenate([pixels, np.zeros((1,) + array.shape[2:], array.dtype)])
    return np.take(pixels_then_zero, lookup.pixel_index, axis=0)  # 4x faster than indexing for [h * w, 3] pixels


def image_to_bev(array, image_path):
    """to_bev of array [h, w(, channels)] of the image at image_path (its pixels, label or road probabilities)."""
    return to_bev(array, calibration_lookup(calibration_path(image_path), array.shape[:2]))


def bev_visible_mask(lookup):
    """[800, 400] bool: the BEV cells that see the image (the others are 0 in every to_bev)."""
    return lookup.pixel_index < lookup.image_shape[0] * lookup.image_shape[1]
