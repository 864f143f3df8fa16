"""Tests of fcn8s/config.py: the training command line refuses bad values."""
import pytest

from fcn8s.config import parse_config


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
