"""Downloads: the classic VGG16 zip, KITTI Road and Keras's VGG16 weights, each whole or not at all, with progress."""
import hashlib
import os
import urllib.error
import urllib.request
import zipfile

from tqdm import tqdm

from fcn8s.errors import DataUnavailableError
from fcn8s.files import written_whole

VGG_URL = 'https://s3-us-west-1.amazonaws.com/udacity-selfdrivingcar/vgg.zip'
VGG_FILES = ('saved_model.pb', 'variables/variables.index', 'variables/variables.data-00000-of-00001')
KITTI_URLS = (
    'https://s3-us-west-1.amazonaws.com/udacity-selfdrivingcar/advanced_deep_learning/data_road.zip',
    'https://s3.eu-central-1.amazonaws.com/avg-kitti/data_road.zip',
)
KITTI_ZIP_BYTES = 470_992_343
# Keras publishes the ImageNet VGG16 (the authors' Caffe model, converted) as one HDF5 file, which
# keras.applications.VGG16 downloads into $KERAS_HOME/models (default ~/.keras/models) and checks by this md5.
KERAS_VGG16_WEIGHTS_FILE = 'vgg16_weights_tf_dim_ordering_tf_kernels.h5'
KERAS_VGG16_WEIGHTS_URL = ('https://storage.googleapis.com/tensorflow/keras-applications/vgg16/'
                           + KERAS_VGG16_WEIGHTS_FILE)
KERAS_VGG16_WEIGHTS_BYTES = 553_467_096
KERAS_VGG16_WEIGHTS_MD5 = '64373286793e3c8b2b4e3219cbf3544b'


def download_file(url, dest_path, expected_bytes=None, timeout_s=30):
    """Download url to dest_path with a tqdm bar; the file appears only once complete.

    Bytes go to `dest_path + '.part'`, which is renamed when the transfer ends with the expected
    size (Content-Length, or expected_bytes when given) and deleted on any failure or Ctrl-C.
    """
    with written_whole(dest_path, dest_path + '.part', discard_partial_on_error=True) as part_path:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(part_path, 'wb') as part:
            total_bytes = expected_bytes or int(response.headers.get('Content-Length') or 0) or None
            with tqdm(total=total_bytes, unit='B', unit_scale=True, desc=os.path.basename(dest_path)) as bar:
                while chunk := response.read(1 << 20):
                    part.write(chunk)
                    bar.update(len(chunk))
        received_bytes = os.path.getsize(part_path)
        if total_bytes is not None and received_bytes != total_bytes:
            raise OSError(f'download of {url} stopped at {received_bytes} of {total_bytes} bytes')


def extract_zip(zip_path, data_dir, folder_name):
    """Unpack the folder `folder_name` of a downloaded zip into data_dir/folder_name.

    The archive is checked (CRC of every member) and unpacked under a temporary name first, so a
    corrupt zip is deleted and reported and nothing half-extracted ever lands in data_dir.
    """
    prefix = folder_name + '/'
    try:
        with zipfile.ZipFile(zip_path) as archive:
            broken_member = archive.testzip()
            if broken_member is not None:
                raise zipfile.BadZipFile(f'member {broken_member} fails its CRC check')
            members = [member for member in archive.infolist() if member.filename.startswith(prefix)]
            if not members:
                raise zipfile.BadZipFile(f'it holds no {prefix} folder')
            target = os.path.join(data_dir, folder_name)
            with written_whole(target, os.path.join(data_dir, f'.{folder_name}.partial'),
                               discard_partial_on_error=True) as partial_dir:
                for member in members:
                    member.filename = member.filename[len(prefix):]
                    if member.filename:
                        archive.extract(member, partial_dir)
    except zipfile.BadZipFile as error:
        os.remove(zip_path)
        raise DataUnavailableError(
            f'{zip_path} is not a usable zip holding {folder_name}/ ({error}); it was deleted. '
            'Run again to download it afresh.') from error


def fetch_zip_folder(urls, data_dir, folder_name, expected_bytes=None, manual_hint='', unpack_dir=None):
    """Make data_dir/folder_name exist by downloading and unpacking the first reachable zip of urls.

    The zip is downloaded into data_dir; unpack_dir, if given, receives the folder instead of data_dir
    (a staging folder, from which the caller moves what it needs). Raises DataUnavailableError naming
    every URL tried, its error, where to put the files by hand, and that `python main.py --demo` runs
    offline.
    """
    os.makedirs(data_dir, exist_ok=True)
    zip_path = os.path.join(data_dir, folder_name + '.zip')
    failures = []
    for url in urls:
        try:
            download_file(url, zip_path, expected_bytes)
        except (urllib.error.URLError, OSError) as error:
            failures.append(f'  {url}: {error}')
            continue
        extract_zip(zip_path, unpack_dir or data_dir, folder_name)
        os.remove(zip_path)
        return
    target = os.path.join(data_dir, folder_name)
    raise DataUnavailableError(
        f'{target} is missing or incomplete and could not be downloaded. Tried:\n' + '\n'.join(failures) +
        f'\nDownload it on a machine with network and unpack it so that {manual_hint} exist. '
        'To try the whole job offline, run `python main.py --demo` (synthetic data, random VGG16).')


def keras_cache_path(file_name):
    """Where Keras keeps a downloaded model file: $KERAS_HOME/models/file_name, by default under ~/.keras."""
    keras_home = os.environ.get('KERAS_HOME') or os.path.join(os.path.expanduser('~'), '.keras')
    return os.path.join(keras_home, 'models', file_name)


def fetch_keras_vgg16_weights():
    """Path of Keras's ImageNet VGG16 weights file in Keras's cache, downloaded there (553 MB) when missing.

    Keras and this project share the cached file: whichever downloads it first, the other reuses it.
    The file is checked against Keras's md5. Raises DataUnavailableError naming the URL, its error
    and how to build the SavedModel from a copy fetched elsewhere.
    """
    weights_path = keras_cache_path(KERAS_VGG16_WEIGHTS_FILE)
    if not os.path.exists(weights_path):
        try:
            os.makedirs(os.path.dirname(weights_path), exist_ok=True)
            download_file(KERAS_VGG16_WEIGHTS_URL, weights_path, KERAS_VGG16_WEIGHTS_BYTES)
        except (urllib.error.URLError, OSError) as error:
            raise DataUnavailableError(
                f"Keras's ImageNet VGG16 weights could not be downloaded. Tried:\n"
                f'  {KERAS_VGG16_WEIGHTS_URL}: {error}\n'
                f'Download that file ({KERAS_VGG16_WEIGHTS_BYTES:,} bytes) on a machine with network and put it at '
                f'{weights_path}, or build from it with `python main.py build-vgg --keras-weights PATH`.') from error
    with open(weights_path, 'rb') as weights_file:
        md5 = hashlib.file_digest(weights_file, 'md5').hexdigest()
    if md5 != KERAS_VGG16_WEIGHTS_MD5:
        os.remove(weights_path)
        raise DataUnavailableError(
            f"{weights_path} has md5 {md5}, not {KERAS_VGG16_WEIGHTS_MD5} of Keras's VGG16 weights; it was deleted. "
            'Run again to download it afresh.')
    return weights_path
