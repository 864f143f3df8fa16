"""Tests of fcn8s/downloads.py: Keras's weights land in Keras's cache, checked; a wrong zip lands nothing."""
import hashlib
import os
import urllib.request
import zipfile

import pytest

from fcn8s import downloads
from fcn8s.downloads import KERAS_VGG16_WEIGHTS_FILE, extract_zip, fetch_keras_vgg16_weights
from fcn8s.errors import DataUnavailableError
from fcn8s.tests.fixtures import FakeResponse


def test_keras_weights_download_into_keras_cache_and_are_checked(monkeypatch):
    payload = b'stand-in for the 553 MB weights file'
    monkeypatch.setattr(downloads, 'KERAS_VGG16_WEIGHTS_BYTES', len(payload))
    monkeypatch.setattr(downloads, 'KERAS_VGG16_WEIGHTS_MD5', hashlib.md5(payload).hexdigest())
    monkeypatch.setattr(urllib.request, 'urlopen', lambda url, timeout=None: FakeResponse(payload, len(payload)))
    weights_path = fetch_keras_vgg16_weights()
    assert weights_path == os.path.join(os.environ['KERAS_HOME'], 'models', KERAS_VGG16_WEIGHTS_FILE)
    assert open(weights_path, 'rb').read() == payload
    monkeypatch.setattr(downloads, 'KERAS_VGG16_WEIGHTS_MD5', '0' * 32)
    with pytest.raises(DataUnavailableError, match='it was deleted'):
        fetch_keras_vgg16_weights()
    assert not os.path.exists(weights_path)


def test_a_zip_without_the_expected_folder_is_deleted_and_nothing_lands(tmp_path):
    zip_path = tmp_path / 'vgg.zip'
    with zipfile.ZipFile(zip_path, 'w') as archive:
        archive.writestr('something_else/saved_model.pb', 'not the model')
    with pytest.raises(DataUnavailableError, match=r'holds no vgg/ folder.*it was deleted'):
        extract_zip(str(zip_path), str(tmp_path), 'vgg')
    assert os.listdir(tmp_path) == []
