"""Tests of fcn8s/run_folder.py: the run folder's creation, split.json and loss.csv."""
import dataclasses
import hashlib
import json
import math
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from fcn8s.config import TrainConfig, load_run_config
from fcn8s.datasets import DATASETS
from fcn8s.errors import DataError
from fcn8s.kitti.synthetic import make_synthetic_kitti
from fcn8s.run_folder import (check_resumable, new_run_dir, read_loss_csv, read_split, restart_loss_csv, run_folder_of,
                              run_split, save_split, validator, write_loss_csv)
from fcn8s.tf1 import tf


def write_epoch_checkpoint(run_dir, epoch, num_classes):
    """run_dir/checkpoint/epoch-NNN/ as training writes it, of a decoder whose score_fr scores num_classes classes."""
    folder = os.path.join(run_dir, 'checkpoint', f'epoch-{epoch:03d}')
    os.makedirs(folder)
    with tf.Graph().as_default(), tf.Session() as sess:
        tf.get_variable('score_fr/biases', [num_classes], initializer=tf.zeros_initializer())
        sess.run(tf.global_variables_initializer())
        tf.train.Saver().save(sess, os.path.join(folder, 'model'), write_state=False)
    with open(os.path.join(folder, 'epoch.json'), 'w') as description_file:
        json.dump({'epoch': epoch, 'val_score': None}, description_file)


def test_new_run_dirs_hold_their_config_and_never_collide(tmp_path):
    config = TrainConfig(runs_dir=str(tmp_path / 'runs'), epochs=3)
    first, second = new_run_dir(config), new_run_dir(config)
    assert first != second and os.path.dirname(first) == os.path.dirname(second) == str(tmp_path / 'runs')
    assert load_run_config(first) == load_run_config(second) == dataclasses.replace(  # folders made absolute
        config, data_dir=os.path.abspath('data'))


def test_a_run_config_of_relative_folders_is_read_against_the_folder_the_run_was_started_in(tmp_path, monkeypatch):
    project = tmp_path / 'project'
    run_dir = project / 'runs' / 'mine' / '20260101-000000'
    run_dir.mkdir(parents=True)  # config.json as the earlier version wrote it: the folders as given
    (run_dir / 'config.json').write_text(json.dumps({'data_dir': 'data', 'runs_dir': 'runs/mine', 'epochs': 2}))
    monkeypatch.chdir(tmp_path)
    config = load_run_config(str(run_dir))
    assert (config.data_dir, config.runs_dir, config.epochs) == (str(project / 'data'), str(project / 'runs/mine'), 2)
    config = load_run_config(os.path.relpath(run_dir))
    assert config.data_dir == str(project / 'data')
    moved = tmp_path / 'elsewhere' / '20260101-000000'  # a run folder out of its runs_dir: the current folder
    moved.parent.mkdir()
    run_dir.rename(moved)
    assert load_run_config(str(moved)).data_dir == str(tmp_path / 'data')
    (moved / 'config.json').write_text(json.dumps({'data_dir': 'data', 'runs_dir': '.'}))
    assert load_run_config(str(moved)).data_dir == str(tmp_path / 'elsewhere' / 'data')


def test_the_kitti_split_is_saved_with_the_names_and_digests_of_both_parts(tmp_path, capsys):
    data_road = str(tmp_path / 'data_road')
    make_synthetic_kitti(data_road, train_per_category=2, test_per_category=0)
    config = TrainConfig(val_count=3, seed=4)
    train_pairs, val_pairs, split = run_split(DATASETS['kitti_road'], data_road, config)
    assert capsys.readouterr().out == '3 training images, 3 for validation.\n'
    save_split(str(tmp_path), split)
    assert read_split(str(tmp_path)) == json.loads((tmp_path / 'split.json').read_text()) == split
    assert split['train'] == [os.path.basename(image) for image, _ in train_pairs] and len(split['train']) == 3
    assert sorted(name.split('_')[0] for name in split['val']) == ['um', 'umm', 'uu']
    assert not set(split['train']) & set(split['val'])
    label_path = val_pairs[0][1]
    assert split['sha256'][os.path.relpath(label_path, data_road)] == hashlib.sha256(
        open(label_path, 'rb').read()).hexdigest()
    assert len(split['sha256']) == 12  # every image and label
    with pytest.raises(ValueError, match='--val-count 6 must lie in 0..5'):
        DATASETS['kitti_road'].split(data_road, TrainConfig(val_count=6))


def test_a_resumed_run_keeps_its_split_and_refuses_a_missing_or_changed_file_of_it(tmp_path, capsys):
    data_road, run_dir, dataset = tmp_path / 'data_road', str(tmp_path), DATASETS['kitti_road']
    make_synthetic_kitti(str(data_road), train_per_category=2, test_per_category=0)
    config = TrainConfig(val_count=3, seed=4)
    train_pairs, val_pairs, split = run_split(dataset, str(data_road), config)
    save_split(run_dir, split)
    for name in ('um_000007.png', 'um_road_000007.png'):  # a new labelled image: a new split would differ
        folder = 'image_2' if 'road' not in name else 'gt_image_2'
        shutil.copy(data_road / 'training' / folder / name.replace('7', '0'), data_road / 'training' / folder / name)
    assert run_split(dataset, str(data_road), config, run_dir) == (train_pairs, val_pairs, split)
    assert capsys.readouterr().out.endswith(f'3 training images, 3 for validation (the split of {run_dir}).\n')

    label_path = val_pairs[1][1]
    os.rename(label_path, label_path + '.moved')
    with pytest.raises(DataError, match=f'{val_pairs[1][0]} has no label'):
        run_split(dataset, str(data_road), config, run_dir)
    os.rename(label_path + '.moved', label_path)
    os.rename(train_pairs[0][0], train_pairs[0][0] + '.moved')
    with pytest.raises(DataError) as missing:
        run_split(dataset, str(data_road), config, run_dir)
    assert str(missing.value).startswith(f'1 image(s) of the split of {run_dir} (split.json) are missing from '
                                         f'{data_road}: {os.path.basename(train_pairs[0][0])}. ')
    os.rename(train_pairs[0][0] + '.moved', train_pairs[0][0])
    with open(label_path, 'ab') as label_file:
        label_file.write(b'\0')
    with pytest.raises(DataError) as changed:
        run_split(dataset, str(data_road), config, run_dir)
    assert f'their contents changed: {label_path}. ' in str(changed.value)
    os.remove(os.path.join(run_dir, 'split.json'))
    with pytest.raises(DataError, match=f"cannot read {os.path.join(run_dir, 'split.json')}, the names of the images"):
        run_split(dataset, str(data_road), config, run_dir)


def test_validation_leaves_an_image_of_an_unusable_calibration_out_of_the_bev_and_goes_on(kitti_copy, tmp_path, capsys):
    calibration_path = kitti_copy / 'training' / 'calib' / 'um_000000.txt'
    calibration_path.write_text(''.join('Tr_cam_to_road: ' + ' '.join(['0'] * 12) + '\n' if line.startswith('Tr_cam')
                                        else line + '\n' for line in calibration_path.read_text().splitlines()))
    dataset = DATASETS['kitti_road']
    val_pairs = dataset.training_pairs(str(kitti_copy / 'training'))[:3]  # um_000000, um_000001, umm_000000
    validate = validator(dataset, lambda images: [np.full(image.shape[:2], 0.6) for image in images], val_pairs,
                         TrainConfig(epochs=1), str(tmp_path))
    scores = validate(1, [])
    assert scores['overall']['images'] == 3 and scores['bev']['overall']['images'] == 2
    assert scores['bev']['um']['images'] == 1 and scores['bev']['umm']['images'] == 1
    assert json.loads((tmp_path / 'metrics.json').read_text())['bev']['overall']['images'] == 2
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == 'Validation after epoch 1 (3 images), KITTI road measures in %'
    assert printed[-2:] == ["1 images are left out of the bird's-eye view (its tables count the images scored):",
                            f'  - {calibration_path}: its Tr_cam_to_road cannot be inverted (padded to 4x4, it is '
                            'singular): expected the rigid transform from camera to road coordinates, a rotation and '
                            "a translation (KITTI's put the road about 1.65 m below the camera). KITTI's data_road.zip "
                            "holds each split's calib/ folder beside image_2/: unpack it there, or replace this file "
                            'with its copy from the zip.']
    for _, label_path in val_pairs:  # without blue no pixel is road: nothing to score, and the epoch goes on
        label = np.array(Image.open(label_path))
        label[..., 2] = 0
        Image.fromarray(label).save(label_path)
    assert validate(1, []) is None
    assert capsys.readouterr().out.startswith('Validation after epoch 1 (3 images) scores nothing: the labels of the '
                                              '3 images scored hold no evaluated road pixel')

def test_restarting_loss_csv_keeps_the_epochs_before_the_resumed_one_and_skips_a_torn_row(tmp_path):
    csv_path = str(tmp_path / 'loss.csv')
    write_loss_csv([(1, 1, 0.5, 0.375, 0.125), (1, 2, 0.25, 0.125, 0.125), (2, 1, 0.125, 0.0625, 0.0625)], csv_path)
    with open(csv_path, 'a') as csv_file:
        csv_file.write('2,2,0.1,0.05,0.05')  # a row a kill cut short: no end of line, but complete
        csv_file.write('\n3,1')
    assert read_loss_csv(csv_path) == [(1, 1, 0.5, 0.375, 0.125), (1, 2, 0.25, 0.125, 0.125),
                                       (2, 1, 0.125, 0.0625, 0.0625), (2, 2, 0.1, 0.05, 0.05)]
    restart_loss_csv(csv_path, start_epoch=2)
    assert read_loss_csv(csv_path) == [(1, 1, 0.5, 0.375, 0.125), (1, 2, 0.25, 0.125, 0.125)]
    restart_loss_csv(str(tmp_path / 'new.csv'), start_epoch=1)
    assert (tmp_path / 'new.csv').read_text().splitlines() == ['epoch,step,loss,cross_entropy,l2']


def test_a_loss_csv_of_the_earlier_version_reads_with_nan_parts(tmp_path):
    csv_path = tmp_path / 'loss.csv'
    csv_path.write_text('epoch,step,loss\n1,1,0.5\n1,2,0.25\n')
    rows = read_loss_csv(str(csv_path))
    assert [row[:3] for row in rows] == [(1, 1, 0.5), (1, 2, 0.25)]
    assert all(len(row) == 5 and math.isnan(row[3]) and math.isnan(row[4]) for row in rows)


def test_check_resumable_refuses_other_classes_more_epochs_and_no_readable_epoch(tmp_path):
    run_dir = str(tmp_path)
    with pytest.raises(ValueError, match='holds no intact finished epoch.*Start a new run instead: python main.py '
                                         '--epochs 3$'):
        check_resumable(run_dir, TrainConfig(epochs=3))
    write_epoch_checkpoint(run_dir, 1, 2)
    write_epoch_checkpoint(run_dir, 2, 2)
    check_resumable(run_dir, TrainConfig(epochs=2))  # all done: resuming exports the model
    with pytest.raises(ValueError, match='has finished 2 epochs; --epochs 1 is fewer. Give --epochs 2 to export'):
        check_resumable(run_dir, TrainConfig(epochs=1))
    with pytest.raises(ValueError, match=r'names the dataset cityscapes, of 19 classes, but the checkpoints in .* are '
                                         r'of a model of 2 classes \(kitti_road\)'):
        check_resumable(run_dir, TrainConfig(dataset='cityscapes', epochs=5))
    index_path = os.path.join(run_dir, 'checkpoint', 'epoch-002', 'model.index')
    with open(index_path, 'wb') as index_file:
        index_file.write(b'cut')
    check_resumable(run_dir, TrainConfig(epochs=1))  # epoch 2 cannot be read: epoch 1 is the last one to go on from


def test_a_loss_csv_cut_mid_line_keeps_every_complete_row_and_names_the_steps_it_lost(tmp_path, capsys):
    csv_path = str(tmp_path / 'loss.csv')
    rows = [(epoch, step, 1 / (epoch + step), 0.5 / (epoch + step), 0.5 / (epoch + step))
            for epoch in (1, 2, 3) for step in (1, 2, 3, 4)]
    write_loss_csv(rows, csv_path)
    with open(csv_path, newline='') as csv_file:
        lines = csv_file.read().splitlines(keepends=True)
    del lines[2:4]  # epoch 1, steps 2 and 3 gone
    cut = ''.join(lines[:6]) + lines[6][:8]  # epoch 2 step 4's row cut within its loss: 0.16666 -> 0.16
    assert cut.endswith('\r\n2,4,0.16')
    with open(csv_path, 'w', newline='') as csv_file:
        csv_file.write(cut)
    assert [row[:2] for row in read_loss_csv(csv_path)] == [(1, 1), (1, 4), (2, 1), (2, 2), (2, 3)]
    lost = restart_loss_csv(csv_path, start_epoch=3, steps_per_epoch=4)
    assert lost == {1: [2, 3], 2: [4]}
    assert read_loss_csv(csv_path) == [row for row in rows if row[:2] in {(1, 1), (1, 4), (2, 1), (2, 2), (2, 3)}]
    assert capsys.readouterr().out == (f'warning: {csv_path} had lost the losses of epoch 1 steps 2-3; epoch 2 step 4 '
                                       '(of 4 steps an epoch; a kill or a full disk cut the file). Every complete row '
                                       'is kept; loss.png and the loss watch go on without the lost ones.\n')
    assert restart_loss_csv(csv_path, start_epoch=2, steps_per_epoch=1) == {}


def test_a_model_in_a_run_folder_belongs_to_that_run(tmp_path):
    run_dir = new_run_dir(TrainConfig(runs_dir=str(tmp_path / 'runs')))
    assert run_folder_of(os.path.join(run_dir, 'model.tflite')) is None  # no split.json yet
    save_split(run_dir, {'train': [], 'val': [], 'sha256': {}})
    assert run_folder_of(os.path.join(run_dir, 'model.tflite')) == os.path.abspath(run_dir)
    assert run_folder_of(os.path.join(run_dir, 'model')) == os.path.abspath(run_dir)
    assert run_folder_of(str(tmp_path / 'model.tflite')) is None
    assert run_folder_of(None) is None
