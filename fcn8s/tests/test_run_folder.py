"""Tests of fcn8s/run_folder.py: the run folder's creation, split.json and loss.csv."""
import json
import math
import os

import pytest

from fcn8s.config import TrainConfig, load_run_config
from fcn8s.datasets import DATASETS
from fcn8s.run_folder import (new_run_dir, read_loss_csv, read_split, restart_loss_csv, run_folder_of, save_split,
                              write_loss_csv)
from fcn8s.synthetic import make_synthetic_kitti


def test_new_run_dirs_hold_their_config_and_never_collide(tmp_path):
    config = TrainConfig(runs_dir=str(tmp_path / 'runs'), epochs=3)
    first, second = new_run_dir(config), new_run_dir(config)
    assert first != second and os.path.dirname(first) == os.path.dirname(second) == str(tmp_path / 'runs')
    assert load_run_config(first) == load_run_config(second) == config


def test_the_kitti_split_is_saved_with_the_names_of_both_parts(tmp_path):
    make_synthetic_kitti(str(tmp_path / 'data_road'), train_per_category=2, test_per_category=0)
    config = TrainConfig(val_count=3, seed=4)
    train_pairs, val_pairs = DATASETS['kitti_road'].split(str(tmp_path / 'data_road'), config)
    save_split(str(tmp_path), train_pairs, val_pairs)
    split = read_split(str(tmp_path))
    assert split == json.loads((tmp_path / 'split.json').read_text())
    assert split['train'] == [os.path.basename(image) for image, _ in train_pairs] and len(split['train']) == 3
    assert sorted(name.split('_')[0] for name in split['val']) == ['um', 'umm', 'uu']
    assert not set(split['train']) & set(split['val'])
    with pytest.raises(ValueError, match='--val-count 6 must lie in 0..5'):
        DATASETS['kitti_road'].split(str(tmp_path / 'data_road'), TrainConfig(val_count=6))


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


def test_a_model_in_a_run_folder_belongs_to_that_run(tmp_path):
    run_dir = new_run_dir(TrainConfig(runs_dir=str(tmp_path / 'runs')))
    assert run_folder_of(os.path.join(run_dir, 'model.tflite')) is None  # no split.json yet
    save_split(run_dir, [], [])
    assert run_folder_of(os.path.join(run_dir, 'model.tflite')) == os.path.abspath(run_dir)
    assert run_folder_of(os.path.join(run_dir, 'model')) == os.path.abspath(run_dir)
    assert run_folder_of(str(tmp_path / 'model.tflite')) is None
    assert run_folder_of(None) is None
