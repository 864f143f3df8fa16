"""The check of a KITTI Road folder that training runs first: every bad file named, with what to do."""
import collections
import dataclasses
import os

import numpy as np
from PIL import Image
from tqdm import tqdm

from fcn8s import bev, kitti
from fcn8s.errors import DataError
from fcn8s.images import load_image, rgb_conversion
from fcn8s.png import check_png_pixels
from fcn8s.kitti import BACKGROUND_COLOUR, INVALID_COLOUR, ROAD_COLOUR

LABEL_COLOUR_NAMES = {ROAD_COLOUR: 'road', BACKGROUND_COLOUR: 'background', INVALID_COLOUR: 'not evaluated'}
FILES_NAMED = 3  # how many file names a message about many files quotes
COLOURS_NAMED = 5  # how many colours a message about label colours names, the most frequent first
# A label with more than this share of its pixels off KITTI's three colours is an error: it was JPEG-compressed or
# resampled. Measured: real labels hold at most 113 stray pure-blue pixels (0.03% of 1242x375); a real label shrunk
# 10% bilinearly has 0.3 to 0.9% off, one upscaled from 576x160 1.1 to 4%, one saved as a JPEG (quality 75 to 100) 95%.
ODD_LABEL_PIXELS_MAX_SHARE = 0.001


@dataclasses.dataclass
class DataCheck:
    """What a dataset's check found in its folder; this class holds a KITTI Road check (check_kitti_folder).

    errors stop training, warnings do not; each is one message naming its files and what to do.
    summary holds collections.Counters: 'training images', 'road labels' and 'testing images' per
    category ('testing images' is None when the folder is missing), 'image sizes'
    {(width, height): images} and 'label colours' {(r, g, b): pixels}; and 'calibrations', the tuple
    (images with a usable calib/ file, images). Another dataset's check subclasses it with its own
    title and summary_lines.
    """
    folder: str
    errors: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)
    summary: dict = dataclasses.field(default_factory=dict)
    title = 'KITTI'

    def summary_lines(self):
        """What the folder holds, one line per kind of count."""
        lines = []
        for name in ('training images', 'road labels', 'testing images'):
            counts = self.summary.get(name)
            by_category = ', '.join(f'{category} {counts[category]}' for category in kitti.KITTI_CATEGORIES) if counts else ''
            lines.append(f'  {name:16}' + ('missing' if counts is None else f'{sum(counts.values())} ({by_category})'))
        sizes = self.summary.get('image sizes') or collections.Counter()
        lines.append(f"  {'image sizes':16}" + ', '.join(
            f'{width}x{height} {count}' for (width, height), count in sizes.most_common()))
        usable, images = self.summary.get('calibrations', (0, 0))
        lines.append(f"  {'calibrations':16}{usable} of {images} images")
        colours = self.summary.get('label colours') or collections.Counter()
        lines.append(f"  {'label colours':16}{colour_counts_text(colours)}")
        return lines

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


def quote_files(paths):
    """'a.png, b.png, c.png and 4 more': the first FILES_NAMED file names of a list of paths."""
    names = ', '.join(os.path.basename(path) for path in paths[:FILES_NAMED])
    return names + (f' and {len(paths) - FILES_NAMED} more' if len(paths) > FILES_NAMED else '')


def colour_counts_text(colours):
    """'road (255, 0, 255) 9,120 pixels, (0, 0, 255) 33 pixels and 2 other colours (5 pixels)': the COLOURS_NAMED
    most frequent colours of a collections.Counter {(r, g, b): pixels}, KITTI's three by name."""
    named = colours.most_common(COLOURS_NAMED)
    text = ', '.join(f"{LABEL_COLOUR_NAMES[colour] + ' ' if colour in LABEL_COLOUR_NAMES else ''}{colour} "
                     f'{pixel_count_text(pixels)}' for colour, pixels in named)
    other_colours, other_pixels = len(colours) - len(named), sum(colours.values()) - sum(pixels for _, pixels in named)
    if other_colours:
        text += (f" and {other_colours:,} other colour{'s' if other_colours > 1 else ''} "
                 f'({pixel_count_text(other_pixels)})')
    return text


def pixel_count_text(pixels):
    """'1 pixel', '1,234 pixels'."""
    return f"{pixels:,} pixel{'s' if pixels != 1 else ''}"


def kitti_files(folder, name_pattern, name_form, check):
    """{(category, number): path} of folder's files named by name_pattern (name_form); warns in check about others.

    KITTI's lane labels (<cat>_lane_NNNNNN.png) are skipped without a warning.
    """
    found, ignored = {}, []
    for name in sorted(os.listdir(folder)):
        match = name_pattern.match(name)
        if match:
            found[match[1], match[2]] = os.path.join(folder, name)
        elif not kitti.LANE_LABEL_NAME.match(name):
            ignored.append(name)
    if ignored:
        check.warnings.append(f'ignored in {folder}, not named {name_form}: {quote_files(ignored)}.')
    return found


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


def label_colours(label_rgb):
    """collections.Counter {(r, g, b): pixels} of a [h, w, 3] uint8 label image."""
    red, green, blue = (label_rgb[..., channel].astype(np.uint32) for channel in range(3))
    values, pixels = np.unique(red << 16 | green << 8 | blue, return_counts=True)
    return collections.Counter({(int(value) >> 16, int(value) >> 8 & 255, int(value) & 255): int(count)
                                for value, count in zip(values, pixels)})


def check_kitti_folder(road_path, image_shape=None, require_testing=True, require_calib=False):
    """Check a KITTI Road folder before training on it; returns a DataCheck with every problem found.

    road_path holds training/image_2 (<cat>_NNNNNN.png), training/gt_image_2 (<cat>_road_NNNNNN.png) and
    testing/image_2. Errors: a missing folder, or no training pair at all; an image without its label or
    a label without its image; a file that cannot be read; a label whose size differs from its image's
    or that has no valid pixel (red > 0); an image smaller than image_shape (height, width), the network
    input. A missing testing/image_2 is an error when require_testing (training paints its images), else
    a warning. A label that is not a PNG file (a JPEG named .png), or has more than ODD_LABEL_PIXELS_MAX_SHARE
    of its pixels in colours other than KITTI's three (JPEG-compressed or resampled), is an error. Warnings:
    images that are not RGB (converted when read, as rgb_conversion says), images that are not PNG files
    (read as they decode), labels with fewer pixels of other colours (decoded by the devkit rule, as the 21
    real labels with pure-blue pixels are), ignored file names. Images whose calib/ file is missing or
    unreadable (check_calibrations) are a warning, or errors when require_calib.
    Labels are decoded (8 ms each); images are only verified (verify_image), so training decodes them once.
    """
    check = DataCheck(road_path)
    image_dir, label_dir, test_dir = (os.path.join(road_path, folder) for folder in kitti.KITTI_FOLDERS)
    images, labels, tests = {}, {}, {}
    for folder, what in ((image_dir, f'training images {kitti.IMAGE_NAME_FORM}'),
                         (label_dir, f'training labels {kitti.LABEL_NAME_FORM}')):
        if not os.path.isdir(folder):
            check.errors.append(f"{folder} is missing: expected KITTI Road's {what} there. Unpack data_road.zip so "
                                f'that {road_path} holds training/ and testing/, or point to the folder that does.')
    if not check.errors:
        images = kitti_files(image_dir, kitti.IMAGE_NAME, kitti.IMAGE_NAME_FORM, check)
        labels = kitti_files(label_dir, kitti.LABEL_NAME, kitti.LABEL_NAME_FORM, check)
        if not images and not labels:
            check.errors.append(f'{image_dir} and {label_dir} hold no training pair: expected images '
                                f'{kitti.IMAGE_NAME_FORM} and their labels {kitti.LABEL_NAME_FORM}.')
    if os.path.isdir(test_dir):
        tests = kitti_files(test_dir, kitti.IMAGE_NAME, kitti.IMAGE_NAME_FORM, check)
    else:
        (check.errors if require_testing else check.warnings).append(
            f"{test_dir} is missing: training paints its images into the run's overlays/ and stops without it. "
            "Unpack data_road.zip's testing/ folder there.")
    for category, number in sorted(images.keys() - labels.keys()):
        expected_label = os.path.join(label_dir, kitti.label_name(category, number))
        check.errors.append(f'{images[category, number]} has no label: expected {expected_label}. '
                            'Add the label or remove the image.')
    for category, number in sorted(labels.keys() - images.keys()):
        expected_image = os.path.join(image_dir, kitti.image_name(category, number))
        check.errors.append(f'{labels[category, number]} has no image: expected {expected_image}. '
                            'Add the image or remove the label.')
    check.summary['training images'] = collections.Counter(category for category, _ in images)
    check.summary['road labels'] = collections.Counter(category for category, _ in labels)
    check.summary['testing images'] = (collections.Counter(category for category, _ in tests)
                                       if os.path.isdir(test_dir) else None)
    image_sizes = check_images(check, [images[key] for key in sorted(images)] + [tests[key] for key in sorted(tests)],
                               image_shape)
    check_labels(check, [(images[key], labels[key]) for key in sorted(images.keys() & labels.keys())], image_sizes)
    check_calibrations(check, [images[key] for key in sorted(images)] + [tests[key] for key in sorted(tests)],
                       require_calib)
    return check


def check_calibrations(check, image_paths, require_calib=False):
    """Read each image's calib/<cat>_NNNNNN.txt (bev.read_calibration), which the bird's-eye view needs.

    Adds to check: one warning naming the images without a usable calibration and the first problem,
    saying that BEV scores leave them out; with require_calib an error per such image instead. Sets
    summary['calibrations'] to (images with a usable calibration, images).
    """
    problems = {}
    for image_path in image_paths:
        try:
            bev.read_calibration(bev.calibration_path(image_path))
        except DataError as error:
            problems[image_path] = str(error)
    check.summary['calibrations'] = (len(image_paths) - len(problems), len(image_paths))
    if require_calib:
        check.errors.extend(problems.values())
    elif problems:
        check.warnings.append(
            f'{len(problems)} of {len(image_paths)} images have no usable calibration ({quote_files(list(problems))}): '
            "BEV scores leave them out and infer --kitti-submission stops on them. First: "
            + next(iter(problems.values())))


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


def check_labels(check, pairs, image_sizes):
    """Check the label of each (image path, label path) pair: its format, its size against image_sizes[image path]
    and its colours.

    Adds to check: an error per label that cannot be read, is not a PNG file, has another size than its
    image, has more than ODD_LABEL_PIXELS_MAX_SHARE of its pixels in colours other than KITTI's three
    (it looks JPEG-compressed or resampled) or has no valid pixel; one warning about the labels with fewer
    pixels of other colours, naming the most frequent of those colours; and summary['label colours'].
    """
    colours, odd_colours, odd_pixels_of_label = collections.Counter(), collections.Counter(), {}
    for image_path, label_path in tqdm(pairs, desc='Checking labels', unit='label', leave=False):
        try:
            _, _, label_format = verify_image(label_path)
            if label_format != 'PNG':
                check.errors.append(f"{label_path} is a {label_format}, not a PNG: a label must be the lossless PNG "
                                    "KITTI ships, as compression changes its colours. Replace it with the original "
                                    'from data_road.zip.')
                continue
            label = load_image(label_path)
        except DataError as error:
            check.errors.append(str(error))
            continue
        label_height, label_width = label.shape[:2]
        check_label_size(check, label_path, (label_width, label_height), image_path, image_sizes)
        colours_here = label_colours(label)
        colours.update(colours_here)
        odd_colours_here = collections.Counter({colour: pixels for colour, pixels in colours_here.items()
                                                if colour not in LABEL_COLOUR_NAMES})
        odd_pixels = sum(odd_colours_here.values())
        if odd_pixels > ODD_LABEL_PIXELS_MAX_SHARE * label_width * label_height:
            check.errors.append(
                f"{label_path} has {odd_pixels:,} pixels ({odd_pixels / (label_width * label_height):.2%}) in "
                f"{len(odd_colours_here):,} colours other than KITTI's three, more than "
                f'{ODD_LABEL_PIXELS_MAX_SHARE:.1%}: it looks JPEG-compressed or resampled, and the devkit rule would '
                'misread its blurred colours (background as road wherever blue > 0). Replace it with the original '
                'PNG from data_road.zip.')
        elif odd_pixels:
            odd_colours.update(odd_colours_here)
            odd_pixels_of_label[label_path] = odd_pixels
        if not any(red > 0 for red, _, _ in colours_here):
            check.errors.append(f'{label_path} has no valid pixel (none with red > 0): all of it lies outside the '
                                'evaluated area, so its image can neither be learned nor scored. Fix the label '
                                '(road magenta, background red) or remove the pair.')
    if odd_pixels_of_label:
        odd_labels = sorted(odd_pixels_of_label, key=lambda path: -odd_pixels_of_label[path])
        check.warnings.append(
            f'{len(odd_labels)} of {len(pairs)} labels hold a few pixels of colours other than KITTI\'s road '
            f'{ROAD_COLOUR}, background {BACKGROUND_COLOUR} and not evaluated {INVALID_COLOUR}: '
            f'{colour_counts_text(odd_colours)} in {quote_files(odd_labels)}. The devkit rule decodes them (road = '
            'blue > 0, valid = red > 0): those with red = 0, such as pure blue, are ignored like black.')
    check.summary['label colours'] = colours
