"""What every dataset's check shares: the DataCheck it returns, and the checks of image files and label sizes."""
import collections
import dataclasses
import os

from PIL import Image
from tqdm import tqdm

from fcn8s.errors import DataError
from fcn8s.images import rgb_conversion
from fcn8s.png import check_png_pixels

FILES_NAMED = 3  # how many file names a message about many files quotes


@dataclasses.dataclass
class DataCheck:
    """What a dataset's check found in its folder: each dataset's check subclasses it (fcn8s.kitti.check,
    fcn8s.cityscapes.check) with its title and summary_lines.

    errors stop training, warnings do not; each is one message naming its files and what to do. summary holds
    what the folder holds, as the dataset's check counts it; every check sets 'image sizes', a
    collections.Counter {(width, height): images}.
    """
    folder: str
    errors: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)
    summary: dict = dataclasses.field(default_factory=dict)
    title = 'dataset'

    def summary_lines(self):
        """What the folder holds, one line per kind of count: here the image sizes."""
        return [image_sizes_line(self.summary)]

    def report(self):
        """The summary, every warning and every error, as lines of text for a person."""
        lines = [f'{self.title} folder {self.folder}', *self.summary_lines()]
        lines += [f'warning: {warning}' for warning in self.warnings]
        lines += [f'error: {error}' for error in self.errors]
        lines.append(f'errors: {len(self.errors)}, warnings: {len(self.warnings)}')
        return '\n'.join(lines)

    def raise_errors(self):
        """Raise a DataError that lists every error, if there is one."""
        if self.errors:
            raise DataError(f'the {self.title} folder {self.folder} cannot be trained on as it is '
                            f'(errors: {len(self.errors)}):\n' + '\n'.join(f'  - {error}' for error in self.errors))


def image_sizes_line(summary):
    """'  image sizes     1242x375 9, 1224x370 2': a check's summary['image sizes'], the most frequent first."""
    sizes = summary.get('image sizes') or collections.Counter()
    return f"  {'image sizes':16}" + ', '.join(
        f'{width}x{height} {count}' for (width, height), count in sizes.most_common())


def quote_files(paths):
    """'a.png, b.png, c.png and 4 more': the first FILES_NAMED file names of a list of paths."""
    names = ', '.join(os.path.basename(path) for path in paths[:FILES_NAMED])
    return names + (f' and {len(paths) - FILES_NAMED} more' if len(paths) > FILES_NAMED else '')


def pixel_count_text(pixels):
    """'1 pixel', '1,234 pixels'."""
    return f"{pixels:,} pixel{'s' if pixels != 1 else ''}"


def verify_image(path):
    """((width, height), mode, format) of an image file, as PIL names them ('RGB', 'PNG'), once it is checked whole.

    A PNG is checked by every chunk's checksum and by the length of its inflated pixel data (check_png_pixels),
    without decoding, about 5 ms for a KITTI image; a file in another format PIL reads (a JPEG named .png) is
    decoded, as PIL's verify checks only PNG. Raises
    DataError naming a file that is not an image PIL reads, or is truncated or damaged.
    """
    try:
        with Image.open(path) as opened:
            size, mode, file_format = opened.size, opened.mode, opened.format
            if file_format == 'PNG':
                opened.verify()
            else:
                opened.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(f'{path} cannot be read as an image ({error}): it is truncated, damaged or not an image. '
                        "Replace it with a good copy from the dataset's zip, or remove it (and its label).") from error
    if file_format == 'PNG':
        check_png_pixels(path)
    return size, mode, file_format


def check_images(check, image_paths, image_shape=None):
    """Verify each image file (verify_image) and compare its size with image_shape (height, width), if given.

    Adds to check: an error per unreadable or too small image; a warning about images that are not RGB,
    saying how each mode is converted; a warning about images that are not PNG files, such as a JPEG named
    .png, which are read as they decode; and summary['image sizes']. Returns {path: (width, height)} of the
    readable images.
    """
    image_sizes, not_rgb, not_png = {}, collections.defaultdict(list), collections.defaultdict(list)
    for image_path in tqdm(image_paths, desc='Checking images', unit='image', leave=False):
        try:
            (width, height), mode, file_format = verify_image(image_path)
        except DataError as error:
            check.errors.append(str(error))
            continue
        image_sizes[image_path] = width, height
        if mode != 'RGB':
            not_rgb[mode].append(image_path)
        if file_format != 'PNG':
            not_png[file_format].append(image_path)
        if image_shape is not None and (height < image_shape[0] or width < image_shape[1]):
            check.errors.append(f'{image_path} is {width}x{height} pixels, smaller than the network input '
                                f'{image_shape[1]}x{image_shape[0]}. Remove it (and its label), or train with a '
                                'smaller --image-width and --image-height.')
    if not_rgb:
        conversions = []
        for mode, mode_paths in sorted(not_rgb.items()):
            what, how = rgb_conversion(mode)
            conversions.append(f'{what} ({mode}) {len(mode_paths)}: {quote_files(mode_paths)}: {how}')
        check.warnings.append(f"images that are not RGB, converted when read: {'; '.join(conversions)}.")
    if not_png:
        paths = [path for format_paths in not_png.values() for path in format_paths]
        formats = ', '.join(f'{file_format} {len(format_paths)}'
                            for file_format, format_paths in sorted(not_png.items()))
        check.warnings.append(f'images that are not PNG files ({formats}): {quote_files(paths)}. They are read as '
                              "they decode, but the datasets' own images are PNG: these are re-encoded copies, which "
                              "the originals in the dataset's zip can replace.")
    check.summary['image sizes'] = collections.Counter(image_sizes.values())
    return image_sizes


def check_label_size(check, label_path, label_size, image_path, image_sizes):
    """Add to check an error when label_size (width, height) differs from image_sizes[image_path], if known."""
    image_size = image_sizes.get(image_path)
    if image_size is not None and label_size != image_size:
        check.errors.append(f'{label_path} is {label_size[0]}x{label_size[1]} pixels but its image {image_path} is '
                            f"{image_size[0]}x{image_size[1]}: a label must have its image's size. Replace the "
                            'label with the one made for this image.')


def label_file_errors(pairs, label_modes, expected_label):
    """[error message] of the (image path, label path) pairs that cannot be scored: an image or label that cannot
    be read (verify_image), a label of a PIL mode not in label_modes (expected_label says what it should be) or of
    another size than its image. Each names its file; the files are verified, not decoded.
    """
    check = DataCheck('')
    for image_path, label_path in tqdm(pairs, desc='Checking labels', unit='label', leave=False):
        try:
            image_size, _, _ = verify_image(image_path)
            label_size, label_mode, _ = verify_image(label_path)
        except DataError as error:
            check.errors.append(str(error))
            continue
        if label_mode not in label_modes:
            what = rgb_conversion(label_mode)[0]
            what = what if what == label_mode else f'{what} ({label_mode})'
            check.errors.append(f'{label_path} is a {what} image: expected '
                                f'{expected_label}. Replace it with the label made for {image_path}.')
        check_label_size(check, label_path, label_size, image_path, {image_path: image_size})
    return check.errors
