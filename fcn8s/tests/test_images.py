"""Tests of fcn8s/images.py and fcn8s/kitti/results.py: reading image files and painting the road."""
import os

import numpy as np
import pytest
from PIL import Image

from fcn8s.errors import DataError, SettingError
from fcn8s.images import (benchmark_output_names, list_image_files, load_image, pair_images_with_labels,
                          require_distinct_outputs)
from fcn8s.kitti import BACKGROUND_COLOUR, IMAGE_NAME, INVALID_COLOUR, LABEL_NAME, ROAD_COLOUR, result_name
from fcn8s.kitti.results import paint_road


def test_nearest_resize_keeps_only_the_three_colours(tmp_path):
    label = np.zeros((37, 61, 3), np.uint8)
    label[:, :20] = BACKGROUND_COLOUR
    label[10:30, 20:50] = ROAD_COLOUR
    label_path = str(tmp_path / 'um_road_000000.png')
    Image.fromarray(label).save(label_path)
    allowed = {ROAD_COLOUR, BACKGROUND_COLOUR, INVALID_COLOUR}
    resized = load_image(label_path, (16, 48), Image.NEAREST)
    assert resized.shape == (16, 48, 3)
    assert {tuple(colour) for colour in resized.reshape(-1, 3).tolist()} == allowed
    smoothed = load_image(label_path, (16, 48), Image.BILINEAR)
    assert {tuple(colour) for colour in smoothed.reshape(-1, 3).tolist()} - allowed, 'bilinear should invent colours'


@pytest.mark.parametrize('mode, file_name', [('I;16', 'grey16.png'), ('I;16B', 'grey16b.tif'), ('I', 'grey32.tif')])
def test_load_image_scales_16_bit_grey_to_8_bits(tmp_path, mode, file_name):
    values = np.array([[0, 128, 129, 257 * 100, 65535]])
    if mode == 'I':
        grey = Image.fromarray(values.astype(np.int32))
    else:
        grey = Image.frombytes(mode, (values.shape[1], 1), values.astype('<u2' if mode == 'I;16' else '>u2').tobytes())
    grey.save(tmp_path / file_name)
    assert Image.open(tmp_path / file_name).mode == mode
    image = load_image(str(tmp_path / file_name))
    assert image.dtype == np.uint8 and image.tolist() == [[[value] * 3 for value in (0, 0, 1, 100, 255)]]


def test_load_image_names_a_corrupt_file(tmp_path):
    broken = tmp_path / 'um_000000.png'
    broken.write_bytes(b'\x89PNG\r\n\x1a\n not really a png')
    with pytest.raises(ValueError, match='um_000000.png'):
        load_image(str(broken))


def test_paint_road_tints_only_road_pixels():
    image = np.full((2, 2, 3), 100, np.uint8)
    overlay = paint_road(image, np.array([[0.9, 0.1], [0.5, 0.51]]))
    tinted = np.round(np.array([100, 100, 100]) * (1 - 127 / 255) + np.array([0, 255, 0]) * 127 / 255)
    assert overlay[0, 0].tolist() == tinted.tolist() and overlay[1, 1].tolist() == tinted.tolist()
    assert overlay[0, 1].tolist() == [100, 100, 100] and overlay[1, 0].tolist() == [100, 100, 100]


def test_folders_are_searched_at_every_depth_and_each_file_is_listed_once(tmp_path):
    for relative_path in ('leftImg8bit/test/berlin/b.png', 'leftImg8bit/test/bonn/a.JPG', 'leftImg8bit/top.jpeg',
                          'leftImg8bit/test/bonn/notes.txt', 'empty/sub/readme.md'):
        os.makedirs(tmp_path / os.path.dirname(relative_path), exist_ok=True)
        (tmp_path / relative_path).write_bytes(b'')
    images = str(tmp_path / 'leftImg8bit')
    berlin_image = os.path.join(images, 'test', 'berlin', 'b.png')
    expected = [berlin_image, os.path.join(images, 'test', 'bonn', 'a.JPG'), os.path.join(images, 'top.jpeg')]
    assert list_image_files([images]) == expected
    assert list_image_files([berlin_image, images, os.path.join(images, 'test', '..', 'test', 'berlin', 'b.png')]) == \
        [berlin_image] + expected[1:]
    assert list_image_files([images], output_dir=os.path.join(images, 'test', '..', 'test', 'bonn')) == \
        [berlin_image, expected[2]]  # the results of an earlier run inside an input folder are not inputs
    with pytest.raises(SettingError, match=f'{tmp_path / "empty"} holds no image .*, nor do its subfolders'):
        list_image_files([str(tmp_path / 'empty')])


def test_inputs_whose_outputs_share_a_name_are_named_together():
    require_distinct_outputs(['a/x.png', 'b/y.png'], ['x.png', 'y.png'])
    with pytest.raises(ValueError) as raised:
        require_distinct_outputs(['a/x.png', 'b/x.jpg', 'c/y.png', 'd/y.png', 'e/z.png'],
                                 ['x.png', 'x.png', 'y.png', 'y.png', 'z.png'])
    assert str(raised.value) == (
        'input images whose outputs would share a name, so that one would overwrite another: a/x.png and b/x.jpg '
        'would write the same x.png; c/y.png and d/y.png would write the same y.png. Give images with distinct file '
        'names, or infer each folder into its own --out.')


def test_images_in_subfolders_pair_with_labels_of_the_same_groups_anywhere_under_the_label_folder(tmp_path):
    for relative_path in ('images/a/um_000000.png', 'images/b/c/uu_000001.png', 'images/b/notes.png',
                          'labels/x/um_road_000000.png', 'labels/uu_road_000001.png', 'labels/um_lane_000000.png'):
        os.makedirs(tmp_path / os.path.dirname(relative_path), exist_ok=True)
        (tmp_path / relative_path).write_bytes(b'')
    images, labels = str(tmp_path / 'images'), str(tmp_path / 'labels')

    def pairs():
        return pair_images_with_labels(images, labels, IMAGE_NAME, LABEL_NAME, 'KITTI image', 'give KITTI images.')

    assert pairs() == [(os.path.join(images, 'a', 'um_000000.png'), os.path.join(labels, 'x', 'um_road_000000.png')),
                       (os.path.join(images, 'b', 'c', 'uu_000001.png'), os.path.join(labels, 'uu_road_000001.png'))]
    (tmp_path / 'images' / 'b' / 'um_000000.png').write_bytes(b'')
    with pytest.raises(ValueError, match=f"files of the same image under {images}, which cannot both be paired: "
                                         f"{os.path.join(images, 'a', 'um_000000.png')} and "
                                         f"{os.path.join(images, 'b', 'um_000000.png')}. Keep one of each."):
        pairs()
    os.rename(tmp_path / 'images' / 'b' / 'um_000000.png', tmp_path / 'images' / 'b' / 'umm_000002.png')
    with pytest.raises(DataError, match=f"^1 images have no label under {labels} or its subfolders: "
                                        f"{os.path.join(images, 'b', 'umm_000002.png')}. Add their labels"):
        pairs()
    with pytest.raises(SettingError, match=f'^no KITTI image was found in {labels} or its subfolders: give KITTI'):
        pair_images_with_labels(labels, labels, IMAGE_NAME, LABEL_NAME, 'KITTI image', 'give KITTI images.')


def test_benchmark_names_are_checked_for_every_image_before_predicting():
    assert benchmark_output_names(['t/um_000001.png', 'u/uu_000002.png'], result_name, 'KITTI', 'give KITTI.') == [
        'um_road_000001.png', 'uu_road_000002.png']
    with pytest.raises(ValueError) as raised:
        benchmark_output_names(['t/um_000001.png', 'a.png', 'b.png', 'c.png', 'd.png'], result_name, 'KITTI',
                               'give KITTI.')
    assert str(raised.value) == ('4 of 5 images are not named KITTI (a.png, b.png, c.png and 1 more), so the benchmark '
                                 'has no name for their results: give KITTI.')
    with pytest.raises(ValueError, match=r'^no KITTI was found among the 1 images given \(a.png\), so the benchmark'):
        benchmark_output_names(['a.png'], result_name, 'KITTI', 'give KITTI.')
    with pytest.raises(ValueError, match='t/um_000001.png and u/um_000001.png would write the same um_road_000001.png'):
        benchmark_output_names(['t/um_000001.png', 'u/um_000001.png'], result_name, 'KITTI', 'give KITTI.')
