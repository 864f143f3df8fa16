"""Tests of fcn8s/config.py: the training command line refuses bad values."""
import dataclasses
import json

import pytest

from fcn8s.config import BadSettings, TrainConfig, parse_config, save_config


def test_bad_image_size_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse_config(['--image-height', '100'])
    assert 'not a multiple of 32' in capsys.readouterr().err


def test_a_zero_image_side_is_said_to_be_not_positive(capsys):
    with pytest.raises(SystemExit):
        parse_config(['--image-width', '0'])
    assert '--image-width: must be positive, got 0' in capsys.readouterr().err


@pytest.mark.parametrize('argv, expected', [
    (['--learning-rate=-5e-4'], '--learning-rate must be positive, got -0.0005'),
    (['--learning-rate', '0'], '--learning-rate must be positive, got 0'),
    (['--l2-scale=-1'], '--l2-scale must not be negative, got -1'),
    (['--divergence-ratio=-2'], '--divergence-ratio must not be negative, got -2'),
    (['--epochs', '0', '--keep-prob', '1.5'], '--epochs must be at least 1, got 0; --keep-prob must lie in (0, 1]')])
def test_bad_numbers_are_refused_naming_the_option(capsys, argv, expected):
    with pytest.raises(SystemExit) as exited:
        parse_config(argv)
    assert exited.value.code == 2 and expected in capsys.readouterr().err


def test_the_divergence_ratio_defaults_to_ten_and_zero_turns_it_off():
    assert parse_config([])[0].divergence_ratio == 10
    assert parse_config(['--divergence-ratio', '0'])[0].divergence_ratio == 0


def test_the_dataset_brings_its_own_defaults_and_given_options_win():
    config = parse_config(['--dataset', 'cityscapes'])[0]
    assert (config.dataset, config.image_shape, config.val_count) == ('cityscapes', (512, 1024), 500)
    demo = parse_config(['--demo', '--dataset', 'cityscapes', '--epochs', '3', '--image-height', '64'])[0]
    assert (demo.epochs, demo.image_shape, demo.learning_rate) == (3, (64, 512), 2e-4)
    assert parse_config([])[0].image_shape == (160, 576) and parse_config([])[0].dataset == 'kitti_road'


@pytest.mark.parametrize('key, value, expected', [
    ('epochs', 'ten', "epochs must be an integer, got 'ten'"),
    ('batch_size', 2.5, 'batch_size must be an integer, got 2.5'),
    ('keep_prob', 3, 'keep_prob must lie in (0, 1], got 3'),
    ('learning_rate', float('nan'), 'learning_rate must be a finite number, got nan'),
    ('pool_scaling', 'no', "pool_scaling must be true or false, got 'no'"),
    ('image_height', 100, 'image_height must be a positive multiple of 32, got 100'),
    ('seed', -1, 'seed must lie in 0 .. 4294967295, got -1'),
    ('dataset', 'voc', "dataset must be one of kitti_road, cityscapes, got 'voc'"),
])
def test_a_resumed_config_json_with_a_bad_value_is_refused_naming_the_file_and_key(tmp_path, capsys, key, value,
                                                                                    expected):
    save_config(TrainConfig(), str(tmp_path))
    settings = json.loads((tmp_path / 'config.json').read_text())
    (tmp_path / 'config.json').write_text(json.dumps({**settings, key: value}))
    with pytest.raises(SystemExit) as exited:
        parse_config(['--resume', str(tmp_path)])
    assert exited.value.code == 1
    assert capsys.readouterr().err == (f"error: {tmp_path / 'config.json'} holds values no run can have: {expected}. "
                                       'Correct them in that file (`python main.py --help` describes each setting), '
                                       'or start a new run.\n')


def test_a_config_json_with_an_unknown_key_is_refused_and_a_missing_key_takes_its_default(tmp_path, capsys):
    settings = dataclasses.asdict(TrainConfig(epochs=3))
    (tmp_path / 'config.json').write_text(json.dumps({**settings, 'colour': 1}))
    with pytest.raises(SystemExit):
        parse_config(['--resume', str(tmp_path)])
    assert 'it holds settings no run has: colour' in capsys.readouterr().err
    del settings['eval_every']
    (tmp_path / 'config.json').write_text(json.dumps(settings))
    assert parse_config(['--resume', str(tmp_path), '--epochs', '5'])[0] == TrainConfig(epochs=5)


def test_train_config_checks_its_own_values_and_makes_integer_rates_floats():
    with pytest.raises(BadSettings) as refused:
        TrainConfig(epochs=0, demo_vgg_width=0, precision='fp8')
    assert [name for name, _ in refused.value.problems] == ['epochs', 'precision', 'demo_vgg_width']
    assert str(refused.value).startswith('epochs must be at least 1, got 0; precision must be one of auto, fp16')
    rate = TrainConfig(learning_rate=1).learning_rate
    assert rate == 1.0 and isinstance(rate, float)
