"""Tests of fcn8s/datasets.py and fcn8s/dataset_contract.py: the contract every dataset keeps, run on each dataset's
synthetic data."""
import inspect
import os

import numpy as np
import pytest
from PIL import Image

from fcn8s import cityscapes, kitti
from fcn8s.dataset_contract import Dataset
from fcn8s.datasets import DATASET_NAMES, DATASETS, dataset_of_folder, dataset_of_model
from fcn8s.errors import ModelError
from fcn8s.images import list_image_files, load_image
from fcn8s.options import parse_config

CONTRACT = sorted(name for name, member in inspect.getmembers(Dataset)
                  if getattr(member, '__isabstractmethod__', False))
IMAGE_SHAPE = (64, 128)


@pytest.fixture(scope='module', params=sorted(DATASETS))
def demo(request, tmp_path_factory):
    """(dataset, its synthetic folder, the config that made it): 2 validation images, 1 testing image a category."""
    dataset = DATASETS[request.param]
    data_dir = tmp_path_factory.mktemp(request.param)
    config, _ = parse_config(['--demo', '--dataset', request.param, '--data-dir', str(data_dir), '--val-count', '2',
                              '--demo-train-per-category', '2', '--demo-test-per-category', '1',
                              '--image-height', str(IMAGE_SHAPE[0]), '--image-width', str(IMAGE_SHAPE[1])])
    path = dataset.path(config.dataset_dir)
    dataset.make_demo_data(path, config)
    return dataset, path, config


def test_the_contract_is_every_method_that_training_validation_and_the_commands_call():
    assert CONTRACT == sorted([
        'check', 'check_labels', 'check_submission_inputs', 'evaluate', 'fetch', 'format_scores', 'history_entry',
        'labelled_pairs', 'load_label', 'make_demo_data', 'make_synthetic_pairs', 'named_validation_pairs', 'paint',
        'ranking_score', 'save_pictures', 'score', 'split', 'submission_inputs', 'summary_images', 'testing_folder',
        'testing_images', 'training_folder', 'training_pairs', 'write_results', 'write_submission'])
    with pytest.raises(TypeError, match='abstract'):
        type('Partial', (Dataset,), {'load_label': lambda self, label_path, image_shape: None})()


def everywhere(dataset, value):
    """A predictor that predicts value everywhere: road probability (KITTI) or class id (Cityscapes)."""
    dtype = np.float32 if dataset.num_classes == 2 else np.int32
    return lambda images: [np.full(image.shape[:2], value, dtype) for image in images]


def expected_share(dataset, label_paths):
    """Of the evaluated pixels of the labels at their own size, the share that are road (KITTI) or class 0 (road)."""
    hits = valid = 0
    for label_path in label_paths:
        if dataset.num_classes == 2:
            road, evaluated = kitti.decode_label(load_image(label_path))
            hits, valid = hits + (road & evaluated).sum(), valid + evaluated.sum()
        else:
            train_ids = cityscapes.train_ids_of(cityscapes.load_label_ids(label_path))
            hits, valid = hits + (train_ids == 0).sum(), valid + (train_ids != cityscapes.IGNORE_ID).sum()
    return hits / valid


def test_every_method_of_the_contract_runs_on_the_dataset(demo, tmp_path):
    dataset, path, config = demo
    called = set()

    def call(name, *args):
        called.add(name)
        return getattr(dataset, name)(*args)

    call('make_demo_data', path, config)  # present: made once, kept
    assert call('fetch', config.dataset_dir) == path
    assert call('check', path, IMAGE_SHAPE).errors == []
    pairs = call('training_pairs', call('training_folder', path))
    train_pairs, val_pairs = call('split', path, config)
    assert len(val_pairs) == 2 and train_pairs and all(os.path.isfile(file) for pair in pairs for file in pair)
    val_names = [os.path.basename(image_path) for image_path, _ in val_pairs]
    assert call('named_validation_pairs', path, val_names[:1]) == val_pairs[:1]
    assert dataset.validation_pairs(path, val_names) == val_pairs
    labelled = call('labelled_pairs', os.path.dirname(val_pairs[0][0]), os.path.dirname(val_pairs[0][1]))
    assert set(val_pairs[:1]) <= set(labelled)
    assert call('check_labels', val_pairs) == []
    label = call('load_label', val_pairs[0][1], IMAGE_SHAPE)
    assert label.shape == IMAGE_SHAPE and label.dtype == np.uint8
    assert set(np.unique(label).tolist()) <= {*range(dataset.num_classes), 255}

    evaluation = call('evaluate', everywhere(dataset, 1.0 if dataset.num_classes == 2 else 0), val_pairs)
    scores = call('score', evaluation)
    share = expected_share(dataset, [label_path for _, label_path in val_pairs])
    if dataset.num_classes == 2:
        assert scores['overall']['REC'] == pytest.approx(1) and scores['overall']['PRE'] == pytest.approx(share)
    else:
        assert scores['pixel_accuracy'] == pytest.approx(share)
    assert 0 < call('ranking_score', scores) <= 1
    assert call('history_entry', scores)
    assert 'IoU' in call('format_scores', scores, evaluation)
    call('save_pictures', evaluation, str(tmp_path))
    assert os.listdir(tmp_path) and all(name.endswith('.png') for name in os.listdir(tmp_path))

    testing_images = call('testing_images', call('testing_folder', path))
    assert len(testing_images) == (3 if dataset.num_classes == 2 else 1)
    image = load_image(testing_images[0])
    painted = call('paint', image, everywhere(dataset, 1)([image])[0])
    assert painted.shape == image.shape and painted.dtype == np.uint8 and not np.array_equal(painted, image)
    summary_images = call('summary_images', path, IMAGE_SHAPE)
    assert summary_images and all(image.shape == (*IMAGE_SHAPE, 3) for _, image in summary_images)
    written = call('write_results', everywhere(dataset, 1), testing_images, str(tmp_path / 'results'))
    assert written and all(os.path.isfile(file) for file in written)

    submission_images = list_image_files(call('submission_inputs', path))
    assert sorted(submission_images) == sorted(testing_images)
    call('check_submission_inputs', submission_images, str(tmp_path / 'submission'))
    uploaded = call('write_submission', everywhere(dataset, 1), submission_images, str(tmp_path / 'submission'))
    assert os.path.exists(uploaded)

    synthetic_pairs = call('make_synthetic_pairs', str(tmp_path / 'synthetic'), 4)
    assert len(synthetic_pairs) >= 4 and all(os.path.isfile(file) for pair in synthetic_pairs for file in pair)
    assert call('load_label', synthetic_pairs[0][1], IMAGE_SHAPE).shape == IMAGE_SHAPE
    assert called == set(CONTRACT)


def test_the_classic_helpers_find_the_dataset_a_folder_holds(demo, tmp_path):
    dataset, path, config = demo
    for folder in (config.dataset_dir, dataset.training_folder(path), dataset.testing_folder(path)):
        assert dataset_of_folder(folder) is dataset
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(ValueError, match='holds no dataset'):
        dataset_of_folder(str(tmp_path / 'empty'))
    for other in DATASETS.values():
        os.makedirs(tmp_path / 'both' / other.folder_name)
    Image.new('RGB', (4, 4)).save(tmp_path / 'both' / 'note.png')
    with pytest.raises(ValueError, match='more than one dataset'):
        dataset_of_folder(str(tmp_path / 'both'))


def test_a_model_is_of_the_dataset_it_records_and_one_of_a_dataset_this_version_does_not_know_is_named():
    assert DATASET_NAMES == ('kitti_road', 'cityscapes')
    assert dataset_of_model('cityscapes', 'runs/a/model') is DATASETS['cityscapes']
    with pytest.raises(ModelError, match=r"runs/a/model records that it learned the dataset 'kitti_raod', which this "
                                         r'version does not know \(it knows kitti_road, cityscapes\)'):
        dataset_of_model('kitti_raod', 'runs/a/model')
