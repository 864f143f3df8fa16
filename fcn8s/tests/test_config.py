"""Tests of fcn8s/config.py: the training command line refuses bad values."""
import pytest

from fcn8s.config import parse_config


def test_bad_image_size_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse_config(['--image-height', '100'])
    assert 'not a multiple of 32' in capsys.readouterr().err
