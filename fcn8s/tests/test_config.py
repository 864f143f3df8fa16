"""Tests of fcn8s/config.py: the training command line refuses bad values."""
import dataclasses
import json
import os

import numpy as np
import pytest

from fcn8s.config import CONFIG_VERSION, BadSettings, TrainConfig, save_config
from fcn8s.options import parse_config
from fcn8s.tests.fixtures import HEAVY_PACKAGES, modules_loaded_by


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


def absolute_folders(config):
    """config with its folders absolute, as a run's config.json keeps them (and as read from the current folder)."""
    return dataclasses.replace(config, data_dir=os.path.abspath(config.data_dir), runs_dir=os.path.abspath(config.runs_dir))


def test_a_config_json_with_an_unknown_key_is_refused_and_a_missing_key_takes_its_default(tmp_path, capsys):
    settings = dataclasses.asdict(TrainConfig(epochs=3))
    (tmp_path / 'config.json').write_text(json.dumps({**settings, 'colour': 1}))
    with pytest.raises(SystemExit):
        parse_config(['--resume', str(tmp_path)])
    assert 'it holds settings no run has: colour' in capsys.readouterr().err
    del settings['eval_every']
    (tmp_path / 'config.json').write_text(json.dumps(settings))
    assert parse_config(['--resume', str(tmp_path), '--epochs', '5'])[0] == absolute_folders(TrainConfig(epochs=5))


def test_train_config_checks_its_own_values_and_makes_integer_rates_floats():
    with pytest.raises(BadSettings) as refused:
        TrainConfig(epochs=0, demo_vgg_width=0, precision='fp8')
    assert [name for name, _ in refused.value.problems] == ['epochs', 'precision', 'demo_vgg_width']
    assert str(refused.value).startswith('epochs must be at least 1, got 0; precision must be one of auto, fp16')
    rate = TrainConfig(learning_rate=1).learning_rate
    assert rate == 1.0 and isinstance(rate, float)


def test_a_run_config_json_records_its_format_and_vgg16_and_a_resumed_save_keeps_the_record(tmp_path):
    vgg16 = {'weights': 'hed', 'sha256': 'ab' * 32, 'path': 'data/vgg'}
    save_config(TrainConfig(epochs=3), str(tmp_path), vgg16)
    saved = json.loads((tmp_path / 'config.json').read_text())
    assert (saved['config_version'], saved['vgg16'], saved['epochs']) == (CONFIG_VERSION, vgg16, 3)
    save_config(TrainConfig(epochs=6), str(tmp_path))  # --resume RUN --epochs 6
    saved = json.loads((tmp_path / 'config.json').read_text())
    assert (saved['vgg16'], saved['epochs']) == (vgg16, 6)
    assert parse_config(['--resume', str(tmp_path)])[0] == absolute_folders(TrainConfig(epochs=6))
    assert (saved['data_dir'], saved['runs_dir']) == (os.path.abspath('data'), os.path.abspath('runs'))


def test_config_file_starts_a_new_run_with_its_settings_and_options_beside_it_win(tmp_path):
    recipe = tmp_path / 'recipe.json'
    recipe.write_text(json.dumps({'pool_scaling': False, 'learning_rate': 1e-4, 'frozen_blocks': 3, 'epochs': 9}))
    config, resume_dir = parse_config(['--config', str(recipe), '--epochs', '4', '--data-dir', 'elsewhere'])
    assert resume_dir is None
    assert config == TrainConfig(pool_scaling=False, learning_rate=1e-4, frozen_blocks=3, epochs=4,
                                 data_dir='elsewhere')


def test_a_run_is_reproduced_from_its_own_config_json(tmp_path):
    first = parse_config(['--demo', '--epochs', '2', '--seed', '7', '--no-augment-flip'])[0]
    save_config(first, str(tmp_path), {'weights': 'random'})
    assert parse_config(['--config', str(tmp_path / 'config.json')])[0] == absolute_folders(first)
    demo_recipe = tmp_path / 'demo.json'  # a partial file of a demo takes the demo's defaults for the rest
    demo_recipe.write_text(json.dumps({'demo': True, 'epochs': 2}))
    assert parse_config(['--config', str(demo_recipe)])[0] == dataclasses.replace(parse_config(['--demo'])[0],
                                                                                  epochs=2)


@pytest.mark.parametrize('text, expected', [
    ('{"epochs": 3,', 'cannot be read as a config.json (Expecting'),
    ('[1, 2]', 'holds a JSON list, not the object of settings that a config.json holds'),
    ('{"model": "resnet", "epochs": 3}', 'is not a config.json of this project: it holds settings no run has: model'),
    ('{"config_version": 3, "epochs": 3}', 'has config_version 3; this main.py reads config_version 1 to 2. A file '
                                           'written by a newer version needs that version of the project'),
    ('{"config_version": "2"}', "has config_version '2'"),
    ('{"epochs": 0}', 'holds values no run can have: epochs must be at least 1, got 0'),
])
def test_a_damaged_foreign_or_future_config_file_is_refused_naming_it(tmp_path, capsys, text, expected):
    config_path = tmp_path / 'config.json'
    config_path.write_text(text)
    with pytest.raises(SystemExit) as exited:
        parse_config(['--config', str(config_path)])
    printed = capsys.readouterr().err
    assert exited.value.code == 1 and printed.startswith(f'error: {config_path} ') and expected in printed


def test_config_file_with_resume_or_a_missing_file_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_config(['--config', str(tmp_path / 'none.json'), '--resume', str(tmp_path)])
    assert exited.value.code == 2 and 'give one of them' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_config(['--config', str(tmp_path)])  # a folder where the file goes
    assert f'error: {tmp_path} cannot be read as a config.json (' in capsys.readouterr().err


def test_the_cosine_decay_falls_from_the_rate_to_zero_over_the_run_and_none_keeps_it():
    config = TrainConfig(epochs=2, learning_rate=1e-4, learning_rate_decay='cosine')
    rates = [config.learning_rate_at(10, epoch, step) for epoch in (1, 2) for step in range(1, 11)]
    assert rates[0] == 1e-4 and rates[10] == pytest.approx(0.5e-4) and rates[-1] == pytest.approx(1e-4 * 0.5 * (
        1 + np.cos(np.pi * 19 / 20)))
    assert all(later < earlier for earlier, later in zip(rates, rates[1:]))
    assert TrainConfig(learning_rate=3e-4).learning_rate_at(10, 2, 5) == 3e-4


def test_the_real_kitti_cpu_recipe_in_asset_loads_as_the_settings_the_readme_quotes():
    recipe = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'asset',
                          'real_kitti_cpu.json')
    config = parse_config(['--config', recipe, '--data-dir', 'real'])[0]
    assert config == TrainConfig(epochs=16, learning_rate=2e-4, learning_rate_decay='cosine', pool_scaling=False,
                                 eval_every=2, data_dir='real')


def test_a_resumed_run_may_be_told_where_its_data_is_now_and_nothing_else_of_its_settings(tmp_path, capsys):
    save_config(TrainConfig(epochs=3, data_dir='data'), str(tmp_path))
    config, resume_dir = parse_config(['--resume', str(tmp_path), '--data-dir', str(tmp_path / 'moved')])
    assert (config.data_dir, config.epochs, resume_dir) == (str(tmp_path / 'moved'), 3, str(tmp_path))
    with pytest.raises(SystemExit):
        parse_config(['--resume', str(tmp_path), '--learning-rate', '0.1'])
    assert ('give no option but --epochs, --replicas, --worker-timeout and --data-dir with it (found --learning-rate)'
            in capsys.readouterr().err)


@pytest.mark.parametrize('module', ('fcn8s.config', 'fcn8s.options'))
def test_importing_the_settings_loads_no_tensorflow_matplotlib_or_moviepy(module):
    loaded = modules_loaded_by(module)
    assert 'fcn8s.datasets' in loaded  # the datasets' own defaults are read: the dataset modules are light too
    assert not [name for name in loaded if name.split('.')[0] in HEAVY_PACKAGES]
    assert not {'fcn8s.tf1', 'fcn8s.batches', 'fcn8s.precision', 'fcn8s.predict', 'fcn8s.video'} & loaded
