"""Tests of fcn8s/datacheck.py: every problem of a broken KITTI folder is named."""
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from fcn8s.batches import make_get_batches_fn
from fcn8s.datacheck import check_kitti_folder
from fcn8s.errors import DataError
from fcn8s.kitti import INVALID_COLOUR, KITTI_FOLDERS, list_training_pairs
from fcn8s.tests.fixtures import TINY_INPUT_SHAPE


def data_errors(road_path, **options):
    """The DataError that check_kitti_folder(road_path, TINY_INPUT_SHAPE, **options).raise_errors() raises."""
    with pytest.raises(DataError) as raised:
        check_kitti_folder(str(road_path), TINY_INPUT_SHAPE, **options).raise_errors()
    return str(raised.value)


@pytest.mark.parametrize('folder', KITTI_FOLDERS)
def test_check_names_a_missing_folder(kitti_copy, folder):
    shutil.rmtree(kitti_copy / folder)
    assert str(kitti_copy / folder) + ' is missing' in data_errors(kitti_copy)


def test_check_names_training_folders_without_a_pair(kitti_copy):
    for folder in ('image_2', 'gt_image_2'):
        for name in os.listdir(kitti_copy / 'training' / folder):
            os.remove(kitti_copy / 'training' / folder / name)
    assert f"{kitti_copy / 'training' / 'image_2'} and {kitti_copy / 'training' / 'gt_image_2'} hold no training pair" \
        in data_errors(kitti_copy)


def test_check_data_warns_only_about_a_missing_testing_folder(kitti_copy):
    shutil.rmtree(kitti_copy / 'testing')
    data_check = check_kitti_folder(str(kitti_copy), TINY_INPUT_SHAPE, require_testing=False)
    assert data_check.errors == [] and data_check.summary['testing images'] is None
    assert any(str(kitti_copy / 'testing' / 'image_2') in warning for warning in data_check.warnings)


def test_check_names_an_image_without_its_label_and_a_label_without_its_image(kitti_copy):
    os.remove(kitti_copy / 'training' / 'gt_image_2' / 'umm_road_000001.png')
    os.remove(kitti_copy / 'training' / 'image_2' / 'uu_000000.png')
    message = data_errors(kitti_copy)
    assert f"{kitti_copy / 'training' / 'image_2' / 'umm_000001.png'} has no label" in message
    assert f"{kitti_copy / 'training' / 'gt_image_2' / 'uu_road_000000.png'} has no image" in message
    assert '(errors: 2)' in message


@pytest.mark.parametrize('path, damage', [
    ('training/image_2/um_000001.png', 'truncated'),
    ('training/image_2/um_000001.png', 'not a PNG'),
    ('training/gt_image_2/umm_road_000000.png', 'truncated'),
    ('testing/image_2/uu_000000.png', 'truncated')])
def test_check_names_an_unreadable_file(kitti_copy, path, damage):
    broken = kitti_copy / path
    png_bytes = broken.read_bytes()
    broken.write_bytes(png_bytes[:len(png_bytes) // 2] if damage == 'truncated' else b'GIF89a, not a PNG')
    message = data_errors(kitti_copy)
    assert f'{broken} cannot be read' in message and '(errors: 1)' in message


def test_check_names_a_label_of_another_size(kitti_copy):
    label_path = kitti_copy / 'training' / 'gt_image_2' / 'um_road_000000.png'
    label = Image.open(label_path)
    label.resize((label.width - 10, label.height), Image.NEAREST).save(label_path)
    assert f'{label_path} is {label.width - 10}x{label.height} pixels but its image' in data_errors(kitti_copy)


def test_check_names_a_label_without_a_valid_pixel(kitti_copy):
    label_path = kitti_copy / 'training' / 'gt_image_2' / 'uu_road_000001.png'
    Image.new('RGB', Image.open(label_path).size, INVALID_COLOUR).save(label_path)
    assert f'{label_path} has no valid pixel' in data_errors(kitti_copy)


def test_check_names_an_image_smaller_than_the_network_input(kitti_copy):
    image_path = kitti_copy / 'training' / 'image_2' / 'umm_000000.png'
    label_path = kitti_copy / 'training' / 'gt_image_2' / 'umm_road_000000.png'
    Image.open(image_path).resize((180, 60)).save(image_path)
    Image.open(label_path).resize((180, 60), Image.NEAREST).save(label_path)
    assert f'{image_path} is 180x60 pixels, smaller than the network input 192x64' in data_errors(kitti_copy)


def test_check_warns_about_grayscale_and_rgba_images_and_other_label_colours(kitti_copy):
    grey_path, rgba_path = (kitti_copy / 'training' / 'image_2' / name for name in ('um_000000.png', 'uu_000001.png'))
    Image.open(grey_path).convert('L').save(grey_path)
    Image.open(rgba_path).convert('RGBA').save(rgba_path)
    label_path = kitti_copy / 'training' / 'gt_image_2' / 'umm_road_000001.png'
    label = np.array(Image.open(label_path))
    label[:5, :1] = (0, 0, 255)
    label[-2:, -1] = (0, 255, 0)
    Image.fromarray(label).save(label_path)
    data_check = check_kitti_folder(str(kitti_copy), TINY_INPUT_SHAPE)
    assert data_check.errors == []
    not_rgb, odd_colours = data_check.warnings
    assert 'not RGB (L 1, RGBA 1): um_000000.png, uu_000001.png' in not_rgb
    assert '1 of 6 labels' in odd_colours and 'umm_road_000001.png' in odd_colours
    assert '(0, 0, 255) 5 pixels' in odd_colours and '(0, 255, 0) 2 pixels' in odd_colours
    assert data_check.summary['label colours'][0, 0, 255] == 5
    images, _ = next(make_get_batches_fn(list_training_pairs(str(kitti_copy / 'training')), TINY_INPUT_SHAPE)(6))
    assert images.shape == (6, *TINY_INPUT_SHAPE, 3)
