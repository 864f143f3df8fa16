"""Tests of fcn8s/kitti/check.py and fcn8s/datacheck.py: every problem of a broken KITTI folder is named."""
import io
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from fcn8s.batches import decode_pairs
from fcn8s.datacheck import label_file_errors
from fcn8s.datasets import DATASETS
from fcn8s.errors import DataError
from fcn8s.kitti import INVALID_COLOUR, KITTI_FOLDERS, list_training_pairs
from fcn8s.kitti.check import check_kitti_folder
from fcn8s.tests.fixtures import TINY_INPUT_SHAPE, cut_png_rows


def jpeg_bytes(path, quality=75):
    """The image file at path compressed as a JPEG of that quality."""
    compressed = io.BytesIO()
    Image.open(path).convert('RGB').save(compressed, 'JPEG', quality=quality)
    return compressed.getvalue()


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
    ('training/image_2/um_000001.png', 'not an image'),
    ('training/image_2/um_000001.png', 'truncated JPEG'),
    ('training/gt_image_2/umm_road_000000.png', 'truncated'),
    ('testing/image_2/uu_000000.png', 'truncated')])
def test_check_names_an_unreadable_file(kitti_copy, path, damage):
    broken = kitti_copy / path
    image_bytes = jpeg_bytes(broken) if damage == 'truncated JPEG' else broken.read_bytes()
    broken.write_bytes(b'GIF89a, not an image' if damage == 'not an image' else image_bytes[:len(image_bytes) // 2])
    message = data_errors(kitti_copy)
    assert f'{broken} cannot be read' in message and '(errors: 1)' in message


@pytest.mark.parametrize('path', ['training/image_2/um_000001.png', 'training/gt_image_2/umm_road_000000.png'])
def test_check_names_a_png_whose_pixel_data_ends_half_way_with_its_checksums_intact(kitti_copy, path):
    broken = kitti_copy / path
    height = Image.open(broken).height
    cut_png_rows(broken)
    message = data_errors(kitti_copy)
    assert (f'{broken} holds ' in message and f'ends after about row {height // 2}, and the rows after it would be '
            'read as black' in message and '(errors: 1)' in message)


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


def test_check_says_how_images_that_are_not_rgb_are_converted(kitti_copy):
    image_dir = kitti_copy / 'training' / 'image_2'
    for name in ('um_000000.png', 'uu_000001.png'):
        grey = np.asarray(Image.open(image_dir / name).convert('L')).astype(np.uint16) * 257
        Image.fromarray(grey).save(image_dir / name)
    Image.open(image_dir / 'umm_000000.png').convert('L').save(image_dir / 'umm_000000.png')
    Image.open(image_dir / 'umm_000001.png').convert('RGBA').save(image_dir / 'umm_000001.png')
    data_check = check_kitti_folder(str(kitti_copy), TINY_INPUT_SHAPE)
    assert data_check.errors == []
    not_rgb, = data_check.warnings
    assert ('16-bit grey (I;16) 2: um_000000.png, uu_000001.png: scaled to 8 bits (value / 257) and repeated into '
            'R, G, B') in not_rgb
    assert '8-bit grey (L) 1: umm_000000.png: repeated into R, G, B' in not_rgb
    assert 'RGB with alpha (RGBA) 1: umm_000001.png: alpha dropped' in not_rgb
    images, _ = decode_pairs(list_training_pairs(str(kitti_copy / 'training')), TINY_INPUT_SHAPE,
                             DATASETS['kitti_road'].load_label)
    assert images.shape == (6, *TINY_INPUT_SHAPE, 3) and 0 < images.mean() < 250, 'not clipped to white'


def test_check_warns_about_a_few_stray_label_colours(kitti_copy):
    label_path = kitti_copy / 'training' / 'gt_image_2' / 'umm_road_000001.png'
    label = np.array(Image.open(label_path))
    assert label.shape[0] * label.shape[1] >= 1226 * 370, "KITTI's smallest label, where 113 pixels weigh most"
    label[:113, :1] = (0, 0, 255)  # as many as the worst real label has
    label[-2:, -1] = (0, 255, 0)
    Image.fromarray(label).save(label_path)
    data_check = check_kitti_folder(str(kitti_copy), TINY_INPUT_SHAPE)
    assert data_check.errors == []
    odd_colours, = data_check.warnings
    assert '1 of 6 labels' in odd_colours
    assert '(0, 0, 255) 113 pixels, (0, 255, 0) 2 pixels in umm_road_000001.png' in odd_colours
    assert data_check.summary['label colours'][0, 0, 255] == 113


def test_check_bounds_the_warning_about_many_label_colours(kitti_copy):
    label_paths = sorted((kitti_copy / 'training' / 'gt_image_2').iterdir())
    for index, label_path in enumerate(label_paths):
        label = np.array(Image.open(label_path))
        label[0, :300] = [(1 + index, column % 256, column // 256 + 1) for column in range(300)]  # 300 colours each
        label[1, :50] = (0, 0, 255)
        Image.fromarray(label).save(label_path)
    data_check = check_kitti_folder(str(kitti_copy), TINY_INPUT_SHAPE)
    assert data_check.errors == []
    odd_colours, = data_check.warnings
    assert len(odd_colours) < 500, odd_colours
    assert '6 of 6 labels' in odd_colours and ' and 3 more' in odd_colours
    assert '(0, 0, 255) 300 pixels' in odd_colours and '1,796 other colours (1,796 pixels)' in odd_colours
    colour_line, = [line for line in data_check.report().splitlines() if line.lstrip().startswith('label colours')]
    assert len(colour_line) < 300 and 'other colours' in colour_line, colour_line


@pytest.mark.parametrize('damage', ['JPEG-compressed', 'resampled'])
def test_check_names_a_lossy_label_saved_as_png(kitti_copy, damage):
    label_path = kitti_copy / 'training' / 'gt_image_2' / 'uu_road_000001.png'
    label = Image.open(label_path)
    if damage == 'JPEG-compressed':
        Image.open(io.BytesIO(jpeg_bytes(label_path))).save(label_path)
    else:
        shrunk = label.resize((label.width * 9 // 10, label.height * 9 // 10), Image.BILINEAR)
        shrunk.resize(label.size, Image.BILINEAR).save(label_path)
    data_check = check_kitti_folder(str(kitti_copy), TINY_INPUT_SHAPE)
    lossy, = data_check.errors
    assert str(label_path) in lossy and 'JPEG-compressed or resampled' in lossy and 'data_road.zip' in lossy
    assert len(lossy) < 500, lossy
    assert data_check.warnings == [], 'the label is an error, not also a warning'


def test_check_names_a_jpeg_label(kitti_copy):
    label_path = kitti_copy / 'training' / 'gt_image_2' / 'um_road_000001.png'
    label_path.write_bytes(jpeg_bytes(label_path, quality=100))
    message = data_errors(kitti_copy)
    assert f'{label_path} is a JPEG, not a PNG' in message and '(errors: 1)' in message


def test_check_warns_about_jpeg_images_named_png(kitti_copy):
    for image_path in (kitti_copy / 'training' / 'image_2' / 'um_000001.png',
                       kitti_copy / 'testing' / 'image_2' / 'uu_000000.png'):
        image_path.write_bytes(jpeg_bytes(image_path))
    data_check = check_kitti_folder(str(kitti_copy), TINY_INPUT_SHAPE)
    assert data_check.errors == []
    not_png, = data_check.warnings
    assert 'not PNG files (JPEG 2): um_000001.png, uu_000000.png' in not_png
    images, _ = decode_pairs(list_training_pairs(str(kitti_copy / 'training')), TINY_INPUT_SHAPE,
                             DATASETS['kitti_road'].load_label)
    assert images.shape == (6, *TINY_INPUT_SHAPE, 3)


def test_calibrations_missing_or_malformed_are_a_warning_or_with_require_calib_errors(kitti_copy):
    assert check_kitti_folder(str(kitti_copy), TINY_INPUT_SHAPE).summary['calibrations'] == (9, 9)
    missing = kitti_copy / 'training' / 'calib' / 'um_000001.txt'
    malformed = kitti_copy / 'testing' / 'calib' / 'uu_000000.txt'
    os.remove(missing)
    malformed.write_text('P2: 1 2 3\n')
    data_check = check_kitti_folder(str(kitti_copy), TINY_INPUT_SHAPE)
    assert data_check.errors == [] and data_check.summary['calibrations'] == (7, 9)
    [warning] = data_check.warnings
    assert warning.startswith('2 of 9 images have no usable calibration (um_000001.png, uu_000000.png)')
    assert 'BEV scores leave them out' in warning and f'{missing} does not exist' in warning
    message = data_errors(kitti_copy, require_calib=True)
    assert f'{missing} does not exist' in message and str(malformed) in message


def test_calibrations_of_non_finite_values_or_a_singular_transform_never_count_as_usable(kitti_copy):
    not_finite = kitti_copy / 'training' / 'calib' / 'umm_000000.txt'
    singular = kitti_copy / 'testing' / 'calib' / 'um_000000.txt'
    for path, key, values in ((not_finite, 'P2', ['nan'] + ['0'] * 11), (singular, 'Tr_cam_to_road', ['0'] * 12)):
        path.write_text(''.join(f'{key}: {" ".join(values)}\n' if line.startswith(f'{key}:') else f'{line}\n'
                                for line in path.read_text().splitlines()))
    data_check = check_kitti_folder(str(kitti_copy), TINY_INPUT_SHAPE)
    assert data_check.errors == [] and data_check.summary['calibrations'] == (7, 9)
    [warning] = data_check.warnings
    assert warning.startswith('2 of 9 images have no usable calibration (umm_000000.png, um_000000.png)')
    assert f'First: {not_finite}: its P2 line holds nan, not a finite number' in warning
    message = data_errors(kitti_copy, require_calib=True)
    assert f'{not_finite}: its P2 line holds nan, not a finite number' in message
    assert f'{singular}: its Tr_cam_to_road cannot be inverted' in message


def test_labels_that_evaluate_cannot_score_are_named_without_decoding(kitti_copy):
    pairs = list_training_pairs(str(kitti_copy / 'training'))
    assert label_file_errors(pairs, ('RGB',), 'an RGB label') == []
    (image_path, small_label), (_, grey_label), (_, broken_label) = pairs[0], pairs[1], pairs[2]
    Image.open(small_label).resize((20, 10), Image.NEAREST).save(small_label)
    Image.open(grey_label).convert('L').save(grey_label)
    open(broken_label, 'r+b').truncate(100)
    errors = label_file_errors(pairs, ('RGB',), 'an RGB label')
    assert errors[0].startswith(f'{small_label} is 20x10 pixels but its image {image_path} is ')
    assert errors[1] == (f'{grey_label} is a 8-bit grey (L) image: expected an RGB label. Replace it with the label '
                         f'made for {pairs[1][0]}.')
    assert errors[2].startswith(f'{broken_label} cannot be read as an image') and len(errors) == 3
