"""Tests of fcn8s/cityscapes/check.py: every problem of a broken Cityscapes folder is named."""
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from fcn8s.cityscapes.check import check_cityscapes_folder
from fcn8s.cityscapes.synthetic import make_synthetic_cityscapes
from fcn8s.errors import DataError

INPUT_SHAPE = (256, 512)
TRAIN_IMAGE = 'leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png'
TRAIN_LABEL = 'gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png'
VAL_LABEL = 'gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelIds.png'


@pytest.fixture(scope='module')
def synthetic_cityscapes(tmp_path_factory):
    """A synthetic Cityscapes folder of 2 train, 2 val and 1 test images."""
    cityscapes_path = tmp_path_factory.mktemp('synthetic') / 'cityscapes'
    make_synthetic_cityscapes(str(cityscapes_path), {'train': 2, 'val': 2, 'test': 1})
    return cityscapes_path


@pytest.fixture
def cityscapes_copy(synthetic_cityscapes, tmp_path):
    """A copy of the synthetic Cityscapes folder that a test may break."""
    return shutil.copytree(synthetic_cityscapes, tmp_path / 'cityscapes')


def data_errors(cityscapes_path):
    """The DataError that check_cityscapes_folder(cityscapes_path, INPUT_SHAPE).raise_errors() raises."""
    with pytest.raises(DataError) as raised:
        check_cityscapes_folder(str(cityscapes_path), INPUT_SHAPE).raise_errors()
    return str(raised.value)


def test_the_synthetic_folder_passes(synthetic_cityscapes):
    data_check = check_cityscapes_folder(str(synthetic_cityscapes), INPUT_SHAPE)
    assert data_check.errors == [] and data_check.warnings == []
    assert data_check.summary['images'] == {'train': 2, 'val': 2, 'test': 1}
    assert data_check.summary['labels'] == {'train': 2, 'val': 2}
    assert data_check.summary['image sizes'] == {(2048, 1024): 5}
    report = data_check.report().splitlines()
    assert report[0] == f'Cityscapes folder {synthetic_cityscapes}'
    assert report[1:3] == ['  images          train 2, val 2, test 1', '  labels          train 2, val 2']
    assert report[4].startswith('  classes         ') and 'road' in report[4] and '% (of labelled pixels)' in report[4]
    data_check.raise_errors()


@pytest.mark.parametrize('folder', ['leftImg8bit/train', 'leftImg8bit/val', 'gtFine/train', 'gtFine/val'])
def test_check_names_a_missing_folder(cityscapes_copy, folder):
    shutil.rmtree(cityscapes_copy / folder)
    message = data_errors(cityscapes_copy)
    assert f'the Cityscapes folder {cityscapes_copy} cannot be trained on' in message
    assert f'{cityscapes_copy / folder} is missing' in message and 'gtFine_trainvaltest.zip' in message


@pytest.mark.parametrize('split', ['train', 'val'])
def test_check_fails_a_train_or_val_split_without_an_image_as_training_would(cityscapes_copy, split):
    for kind in ('leftImg8bit', 'gtFine'):
        shutil.rmtree(cityscapes_copy / kind / split)
        os.makedirs(cityscapes_copy / kind / split / 'aachen')  # a city folder, but no file
    check = check_cityscapes_folder(str(cityscapes_copy), INPUT_SHAPE)
    assert check.errors == [
        f"{cityscapes_copy / 'leftImg8bit' / split} holds no image named <city>_<seq>_<frame>_leftImg8bit.png in a "
        f"city folder: training needs the {split} split, " + {'train': 'the images it learns from',
                                                             'val': 'whose first --val-count images it scores'}[split]
        + '. Unpack leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip into the same folder (see '
        f"https://www.cityscapes-dataset.com/downloads/), so that {cityscapes_copy / 'leftImg8bit' / split}/<city>/ "
        'holds them.']


def test_a_missing_test_folder_is_only_a_warning(cityscapes_copy):
    shutil.rmtree(cityscapes_copy / 'leftImg8bit' / 'test')
    data_check = check_cityscapes_folder(str(cityscapes_copy), INPUT_SHAPE)
    assert data_check.errors == []
    assert [warning.split(' is missing')[0] for warning in data_check.warnings] == [
        str(cityscapes_copy / 'leftImg8bit' / 'test')]


def test_check_names_images_without_labels_and_labels_without_images(cityscapes_copy):
    os.remove(cityscapes_copy / TRAIN_LABEL)
    os.remove(cityscapes_copy / 'leftImg8bit' / 'val' / 'munster' / 'munster_000001_000019_leftImg8bit.png')
    message = data_errors(cityscapes_copy)
    assert ('images without their label: 1 (aachen_000000_000019_leftImg8bit.png). Expected each label in gtFine/ '
            f'beside its image, such as {cityscapes_copy / TRAIN_LABEL}') in message
    assert ('labels without their image: 1 (munster_000001_000019_gtFine_labelIds.png). Expected each image in '
            'leftImg8bit/ beside its label, such as '
            f"{cityscapes_copy / 'leftImg8bit/val/munster/munster_000001_000019_leftImg8bit.png'}") in message
    assert '(errors: 2)' in message


@pytest.mark.parametrize('relative_path', [TRAIN_IMAGE, TRAIN_LABEL])
def test_check_names_an_unreadable_file(cityscapes_copy, relative_path):
    broken = cityscapes_copy / relative_path
    broken.write_bytes(broken.read_bytes()[:5000])
    assert f'{broken} cannot be read as an image' in data_errors(cityscapes_copy)


def test_check_names_labels_that_are_not_single_channel_8_bit_pngs(cityscapes_copy):
    label_path = cityscapes_copy / TRAIN_LABEL
    with Image.open(label_path) as label:
        label.convert('RGB').save(label_path, format='PNG')
    with Image.open(cityscapes_copy / VAL_LABEL) as label:
        label.load()
        label.save(cityscapes_copy / VAL_LABEL, format='JPEG')
    message = data_errors(cityscapes_copy)
    assert ('labels that are not single-channel 8-bit PNG files of label ids (mode L, or P): 2 (JPEG L 1, PNG RGB 1: '
            'aachen_000000_000019_gtFine_labelIds.png, frankfurt_000000_000019_gtFine_labelIds.png).') in message


def test_a_palette_label_is_read_as_its_indices(synthetic_cityscapes, cityscapes_copy):
    label_pixels = check_cityscapes_folder(str(synthetic_cityscapes), INPUT_SHAPE).summary['label ids']
    with Image.open(cityscapes_copy / TRAIN_LABEL) as label:
        palette_label = label.convert('P')  # the grey palette: index = id, so the picture looks the same
        palette_label.putpalette([channel for index in range(256) for channel in (index, 0, 255 - index)])
    palette_label.save(cityscapes_copy / TRAIN_LABEL)
    assert Image.open(cityscapes_copy / TRAIN_LABEL).mode == 'P'
    data_check = check_cityscapes_folder(str(cityscapes_copy), INPUT_SHAPE)
    assert data_check.errors == [] and data_check.summary['label ids'] == label_pixels


def test_check_names_ids_that_are_no_label_ids(cityscapes_copy):
    label_path = cityscapes_copy / TRAIN_LABEL
    label_ids = np.array(Image.open(label_path))
    label_ids[:10, :20] = 40
    label_ids[-1, -1] = 255
    Image.fromarray(label_ids).save(label_path)
    assert ('ids that are not Cityscapes label ids (0..33) in 1 of 4 labels: id 40, 200 pixels in '
            'aachen_000000_000019_gtFine_labelIds.png; id 255, 1 pixel in aachen_000000_000019_gtFine_labelIds.png.'
            ) in data_errors(cityscapes_copy)


def test_check_names_a_label_of_another_size_and_a_too_small_image(cityscapes_copy):
    label_path = cityscapes_copy / TRAIN_LABEL
    with Image.open(label_path) as label:
        label.resize((1024, 512), Image.NEAREST).save(label_path)
    image_path = cityscapes_copy / 'leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png'
    with Image.open(image_path) as image:
        image.resize((256, 128)).save(image_path)
    message = data_errors(cityscapes_copy)
    assert f'{label_path} is 1024x512 pixels but its image {cityscapes_copy / TRAIN_IMAGE} is 2048x1024' in message
    assert f'{image_path} is 256x128 pixels, smaller than the network input 512x256' in message


def test_check_warns_about_labels_without_a_scored_pixel_and_ignored_files(cityscapes_copy):
    label_path = cityscapes_copy / TRAIN_LABEL
    Image.fromarray(np.ones((1024, 2048), np.uint8)).save(label_path)  # all ego vehicle
    (cityscapes_copy / 'gtFine/train/aachen/aachen_000000_000019_gtFine_color.png').touch()  # an official file
    (cityscapes_copy / 'leftImg8bit/train/aachen/notes.txt').touch()
    (cityscapes_copy / 'leftImg8bit/train/stray.png').touch()
    data_check = check_cityscapes_folder(str(cityscapes_copy), INPUT_SHAPE)
    assert data_check.errors == []
    assert data_check.warnings == [
        f"ignored in {cityscapes_copy / 'leftImg8bit/train'}: 2 files not named "
        '<city>_<seq>_<frame>_leftImg8bit.png in a city folder (notes.txt, stray.png).',
        'labels with no pixel of the 19 classes, only ignored ids: 1 of 4 (aachen_000000_000019_gtFine_labelIds.png). '
        'Their images teach and score nothing. Check that they are the right files, or remove the pairs.']
