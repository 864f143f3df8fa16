"""KITTI Road's layout: its folders, file names and categories, and the decoding of its ground-truth colours.

Folder levels, named the same way everywhere: a data folder (`data_dir`, `--data-dir`) holds `data_road/`
(road_path(data_dir); `--data` of check-data); data_road/ holds the splits `training/` and `testing/`;
a split folder (`data_folder`) holds `image_2/` and, for training, `gt_image_2/` (and `calib/`).
"""
import glob
import os
import re

import numpy as np

from fcn8s.dataset_contract import IGNORE_ID  # label_ids gives it outside the evaluated area; 0 is background, 1 road
from fcn8s.errors import DataError

ROAD_FOLDER = 'data_road'
KITTI_FOLDERS = ('training/image_2', 'training/gt_image_2', 'testing/image_2')
KITTI_CATEGORIES = ('um', 'umm', 'uu')
# The real training set's image sizes as (width, height), with how many of the 289 images have each.
KITTI_SIZES = (((1242, 375), 202), ((1226, 370), 49), ((1241, 376), 35), ((1238, 374), 3))

# Ground-truth colours (RGB). The devkit reads road = B > 0 and valid = R > 0.
ROAD_COLOUR = (255, 0, 255)
BACKGROUND_COLOUR = (255, 0, 0)
INVALID_COLOUR = (0, 0, 0)

IMAGE_NAME = re.compile(r'^(um|umm|uu)_(\d{6})\.png$')
LABEL_NAME = re.compile(r'^(um|umm|uu)_road_(\d{6})\.png$')
LANE_LABEL_NAME = re.compile(r'^(um|umm|uu)_lane_(\d{6})\.png$')  # KITTI's lane labels, not used here
IMAGE_NAME_FORM = '<um|umm|uu>_NNNNNN.png'
LABEL_NAME_FORM = '<um|umm|uu>_road_NNNNNN.png'


def road_path(data_dir):
    """data_dir/data_road: the KITTI Road folder of a data folder."""
    return os.path.join(data_dir, ROAD_FOLDER)


def image_name(category, number):
    """'um_000007.png': the file name of image `number` (a 6-digit string) of a category."""
    return f'{category}_{number}.png'


def label_name(category, number):
    """'um_road_000007.png': the file name of the road label (or road result) of image `number` of a category."""
    return f'{category}_road_{number}.png'


def parse_image_name(path):
    """(category, 6-digit number) of a KITTI image file <cat>_NNNNNN.png, or None for any other name."""
    match = IMAGE_NAME.match(os.path.basename(path))
    return (match[1], match[2]) if match else None


def result_name(image_path):
    """um_000000.png -> um_road_000000.png: the KITTI Road benchmark's file name for an image's road result."""
    parsed = parse_image_name(image_path)
    if parsed is None:
        raise DataError(f'{image_path} is not named like a KITTI Road image ({IMAGE_NAME_FORM}), so the '
                        'benchmark has no name for its result; give the images of data_road/testing/image_2.')
    return label_name(*parsed)


def result_image(road_prob):
    """The benchmark's result image of a road probability [h, w] float in 0..1: [h, w] uint8, probability * 255."""
    return np.clip(road_prob * 255, 0, 255).round().astype(np.uint8)


def decode_label(label_rgb):
    """KITTI ground truth [h, w, 3] uint8 -> (road, valid) [h, w] bool, by the devkit's rule.

    road = blue channel > 0 and valid = red channel > 0: magenta is road, red is background,
    black lies outside the evaluated area, and the stray pure-blue pixels of real labels are road
    but not valid, so they are ignored like black.
    """
    return label_rgb[..., 2] > 0, label_rgb[..., 0] > 0


def label_ids(label_rgb):
    """KITTI ground truth [..., h, w, 3] uint8 -> [..., h, w] uint8 class ids: 0 background, 1 road, 255 ignored.

    By the devkit's rule (decode_label): pixels outside the valid area get IGNORE_ID, so they add
    nothing to the masked loss.
    """
    road, valid = decode_label(label_rgb)
    return np.where(valid, road.astype(np.uint8), np.uint8(IGNORE_ID))


def list_training_pairs(data_folder, image_names=None):
    """[(image path, label path)] of data_folder/image_2 and data_folder/gt_image_2, sorted by image name.

    image_names, if given, keeps only those images (file names such as a run's split.json lists).
    """
    return list_labelled_images(os.path.join(data_folder, 'image_2'), os.path.join(data_folder, 'gt_image_2'),
                                image_names)


def list_labelled_images(image_dir, label_dir, image_names=None):
    """[(image path, label path)]: each <cat>_NNNNNN.png of image_dir with its <cat>_road_NNNNNN.png of label_dir.

    image_names, if given, keeps only the images of those file names.
    """
    for folder in (image_dir, label_dir):
        if not os.path.isdir(folder):
            raise DataError(f'{folder} does not exist: expected KITTI Road training images in '
                            f'{image_dir} and labels in {label_dir}.')
    pairs = []
    for image_path in sorted(glob.glob(os.path.join(image_dir, '*.png'))):
        parsed = parse_image_name(image_path)
        if parsed is None or (image_names is not None and os.path.basename(image_path) not in image_names):
            continue
        label_path = os.path.join(label_dir, label_name(*parsed))
        if not os.path.exists(label_path):
            raise DataError(f'{image_path} has no label: expected {label_path}. '
                            'Add the label or remove the image.')
        pairs.append((image_path, label_path))
    if not pairs and image_names is None:
        raise DataError(f'no training images named {IMAGE_NAME_FORM} in {image_dir}')
    return pairs
