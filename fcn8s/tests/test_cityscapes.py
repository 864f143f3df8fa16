"""Tests of fcn8s/cityscapes/__init__.py: Cityscapes' names, folders and label table."""
import copy

import numpy as np
import pytest
from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as evaluator
from PIL import Image

from fcn8s import cityscapes
from fcn8s.errors import DataError, DataUnavailableError


def test_tables_follow_the_official_label_table():
    assert cityscapes.NUM_CLASSES == 19 and len(cityscapes.CLASS_NAMES) == 19
    assert cityscapes.CLASS_NAMES[:3] == ('road', 'sidewalk', 'building') and cityscapes.CLASS_NAMES[-1] == 'bicycle'
    assert cityscapes.CATEGORY_NAMES == ('flat', 'construction', 'object', 'nature', 'sky', 'human', 'vehicle')
    assert [cityscapes.CATEGORY_NAMES[index] for index in cityscapes.CLASS_CATEGORY[[0, 10, 11, 13]]] == [
        'flat', 'sky', 'human', 'vehicle']
    assert cityscapes.CLASS_COLOURS.dtype == np.uint8 and cityscapes.CLASS_COLOURS.shape == (19, 3)
    assert cityscapes.CLASS_COLOURS[[0, 13]].tolist() == [[128, 64, 128], [0, 0, 142]]
    assert cityscapes.TRAIN_TO_LABEL_ID.tolist() == [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31,
                                                     32, 33]
    assert cityscapes.LABEL_IDS == tuple(range(34))


def test_label_ids_map_to_train_ids_with_every_ignored_and_unknown_id_255():
    # unlabeled 0, ego vehicle 1, road 7, sidewalk 8, parking 9 (ignored), building 11, person 24, car 26,
    # bicycle 33, and 34 and 255, which are no label ids.
    label_ids = np.array([[0, 1, 7, 8], [9, 11, 24, 26], [33, 34, 255, 7]], np.uint8)
    expected = np.array([[255, 255, 0, 1], [255, 2, 11, 13], [18, 255, 255, 0]], np.uint8)
    train_ids = cityscapes.train_ids_of(label_ids)
    assert train_ids.dtype == np.uint8
    np.testing.assert_array_equal(train_ids, expected)


def test_colour_and_label_id_masks():
    train_ids = np.array([[0, 13], [255, 18]], np.uint8)
    np.testing.assert_array_equal(cityscapes.colour_mask(train_ids),
                                  [[[128, 64, 128], [0, 0, 142]], [[0, 0, 0], [119, 11, 32]]])
    label_ids = cityscapes.label_id_mask(train_ids)
    assert label_ids.dtype == np.uint8
    np.testing.assert_array_equal(label_ids, [[7, 26], [0, 33]])
    every_train_id = np.arange(19, dtype=np.uint8)
    np.testing.assert_array_equal(cityscapes.train_ids_of(cityscapes.label_id_mask(every_train_id)), every_train_id)


def test_names_of_a_frame():
    image_path = '/data/cityscapes/leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png'
    assert cityscapes.frame_id_of(image_path) == 'frankfurt_000000_000294'
    assert cityscapes.frame_id_of('frankfurt_000000_000294_gtFine_labelIds.png') == 'frankfurt_000000_000294'
    assert cityscapes.frame_id_of('frankfurt_000000_000294_gtFine_color.png') is None
    assert cityscapes.city_of('frankfurt_000000_000294') == 'frankfurt'
    assert cityscapes.label_name('frankfurt_000000_000294') == 'frankfurt_000000_000294_gtFine_labelIds.png'
    assert cityscapes.image_name('frankfurt_000000_000294') == 'frankfurt_000000_000294_leftImg8bit.png'
    assert cityscapes.submission_name(image_path) == 'frankfurt_000000_000294_labelIds.png'
    with pytest.raises(ValueError, match='um_000000.png is not named like a Cityscapes image'):
        cityscapes.submission_name('um_000000.png')


def test_the_evaluator_finds_a_prediction_by_its_submission_name(tmp_path):
    label_path = str(tmp_path / 'gtFine' / 'val' / 'lindau' / 'lindau_000001_000019_gtFine_labelIds.png')
    (tmp_path / 'results').mkdir()
    prediction_path = tmp_path / 'results' / cityscapes.submission_name('lindau_000001_000019_leftImg8bit.png')
    prediction_path.touch()
    (tmp_path / 'results' / 'lindau_000002_000019_labelIds.png').touch()
    args = copy.copy(evaluator.args)
    args.predictionPath, args.predictionWalk = str(tmp_path / 'results'), None
    assert evaluator.getPrediction(args, label_path) == str(prediction_path)


def write_layout(cityscapes_path, frame_ids_by_split, labelled=True):
    """Empty image (and label) files of the frame ids {split: [frame id]} in Cityscapes' layout."""
    for split, frame_ids in frame_ids_by_split.items():
        for frame_id in frame_ids:
            kinds = cityscapes.kinds_of(split) if labelled else (cityscapes.LEFT_IMG,)
            for kind in kinds:
                name = (cityscapes.image_name if kind == cityscapes.LEFT_IMG else cityscapes.label_name)(frame_id)
                folder = cityscapes_path / kind / split / cityscapes.city_of(frame_id)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / name).touch()


def test_list_pairs_and_images_sorted_by_city_and_frame(tmp_path):
    write_layout(tmp_path, {'train': ['bremen_000001_000019', 'aachen_000002_000019', 'aachen_000000_000019'],
                            'test': ['berlin_000000_000019']})
    (tmp_path / 'gtFine' / 'train' / 'aachen' / 'aachen_000000_000019_gtFine_color.png').touch()
    pairs = cityscapes.list_cityscapes_pairs(str(tmp_path), 'train')
    assert [(image_path[len(str(tmp_path)):], label_path[len(str(tmp_path)):]) for image_path, label_path in pairs] == [
        (f'/leftImg8bit/train/{city}/{city}_{seq}_000019_leftImg8bit.png',
         f'/gtFine/train/{city}/{city}_{seq}_000019_gtFine_labelIds.png')
        for city, seq in (('aachen', '000000'), ('aachen', '000002'), ('bremen', '000001'))]
    assert cityscapes.list_cityscapes_images(str(tmp_path), 'test') == [
        str(tmp_path / 'leftImg8bit' / 'test' / 'berlin' / 'berlin_000000_000019_leftImg8bit.png')]


def test_list_pairs_names_an_image_without_label_and_an_empty_split(tmp_path):
    write_layout(tmp_path, {'val': ['munster_000003_000019']}, labelled=False)
    with pytest.raises(DataError, match=r'munster_000003_000019_leftImg8bit.png has no label: expected '
                                        r'.*gtFine/val/munster/munster_000003_000019_gtFine_labelIds.png'):
        cityscapes.list_cityscapes_pairs(str(tmp_path), 'val')
    with pytest.raises(DataError, match='no images named'):
        cityscapes.list_cityscapes_pairs(str(tmp_path), 'train')


def test_load_label_ids_resizes_nearest_and_refuses_a_colour_picture(tmp_path):
    label_ids = np.array([[7, 26], [0, 24]], np.uint8)
    Image.fromarray(label_ids).save(tmp_path / 'label.png')
    np.testing.assert_array_equal(cityscapes.load_label_ids(str(tmp_path / 'label.png'), (4, 6)),
                                  np.repeat(np.repeat(label_ids, 2, axis=0), 3, axis=1))
    Image.fromarray(cityscapes.colour_mask(cityscapes.train_ids_of(label_ids))).save(tmp_path / 'colour.png')
    with pytest.raises(DataError, match=r'colour.png is a RGB image, not the single-channel 8-bit image of label ids '
                                        r'\(mode L, or P read as its palette indices\)'):
        cityscapes.load_label_ids(str(tmp_path / 'colour.png'))
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(DataError, match='cannot read label .*broken.png'):
        cityscapes.load_label_ids(str(tmp_path / 'broken.png'))


def test_a_palette_label_reads_as_its_indices_as_the_official_evaluator_reads_it(tmp_path):
    label_ids = np.array([[7, 26, 33], [0, 24, 8]], np.uint8)
    palette_label = Image.new('P', (3, 2))
    palette_label.putpalette([channel for index in range(256) for channel in (255 - index, index, 3 * index % 256)])
    palette_label.putdata(label_ids.ravel().tolist())
    palette_label.save(tmp_path / 'palette.png')
    with Image.open(tmp_path / 'palette.png') as reopened:
        assert reopened.mode == 'P'
        assert np.asarray(reopened.convert('RGB'))[0, 0].tolist() == [248, 7, 21]  # the colour is not the id
    np.testing.assert_array_equal(cityscapes.load_label_ids(str(tmp_path / 'palette.png')), label_ids)
    np.testing.assert_array_equal(cityscapes.load_label_ids(str(tmp_path / 'palette.png'), (4, 6)),
                                  np.repeat(np.repeat(label_ids, 2, axis=0), 2, axis=1))


def test_require_cityscapes_says_how_to_get_it(tmp_path):
    with pytest.raises(DataUnavailableError) as raised:
        cityscapes.require_cityscapes(str(tmp_path / 'cityscapes'))
    message = str(raised.value)
    for needed in ('gtFine_trainvaltest.zip', 'leftImg8bit_trainvaltest.zip', 'https://www.cityscapes-dataset.com/',
                   'csDownload', f"{tmp_path / 'cityscapes' / 'leftImg8bit' / 'train'}/<city>/",
                   '--demo --dataset cityscapes'):
        assert needed in message
    write_layout(tmp_path / 'cityscapes', {'train': ['aachen_000000_000019'], 'val': ['lindau_000000_000019']})
    cityscapes.require_cityscapes(str(tmp_path / 'cityscapes'))
