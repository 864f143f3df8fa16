"""The check of a KITTI Road folder that training runs first: every bad file named, with what to do."""
import collections
import dataclasses
import os

import numpy as np
from PIL import Image
from tqdm import tqdm

from fcn8s import kitti
from fcn8s.errors import DataError
from fcn8s.images import load_image
from fcn8s.kitti import BACKGROUND_COLOUR, INVALID_COLOUR, ROAD_COLOUR

LABEL_COLOUR_NAMES = {ROAD_COLOUR: 'road', BACKGROUND_COLOUR: 'background', INVALID_COLOUR: 'not evaluated'}
FILES_NAMED = 3  # how many file names a message about many files quotes


@dataclasses.dataclass
class DataCheck:
    """What check_kitti_folder found in road_path.

    errors stop training, warnings do not; each is one message naming its files and what to do.
    summary holds collections.Counters: 'training images', 'road labels' and 'testing images' per
    category ('testing images' is None when the folder is missing), 'image sizes'
    {(width, height): images} and 'label colours' {(r, g, b): pixels}.
    """
    road_path: str
    errors: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)
    summary: dict = dataclasses.field(default_factory=dict)

    def report(self):
        """The summary, every warning and every error, as lines of text for a person."""
        lines = [f'KITTI folder {self.road_path}']
        for name in ('training images', 'road labels', 'testing images'):
            counts = self.summary.get(name)
            by_category = ', '.join(f'{category} {counts[category]}' for category in kitti.KITTI_CATEGORIES) if counts else ''
            lines.append(f'  {name:16}' + ('missing' if counts is None else f'{sum(counts.values())} ({by_category})'))
        sizes = self.summary.get('image sizes') or collections.Counter()
        lines.append(f"  {'image sizes':16}" + ', '.join(
            f'{width}x{height} {count}' for (width, height), count in sizes.most_common()))
        colours = self.summary.get('label colours') or collections.Counter()
        colour_counts = ', '.join(f"{LABEL_COLOUR_NAMES.get(colour, 'other')} {colour} {pixels:,} px"
                                  for colour, pixels in colours.most_common())
        lines.append(f"  {'label colours':16}{colour_counts}")
        lines += [f'warning: {warning}' for warning in self.warnings]
        lines += [f'error: {error}' for error in self.errors]
        lines.append(f'errors: {len(self.errors)}, warnings: {len(self.warnings)}')
        return '\n'.join(lines)

    def raise_errors(self):
        """Raise a DataError that lists every error, if there is one."""
        if self.errors:
            raise DataError(f'the KITTI folder {self.road_path} cannot be trained on as it is '
                            f'(errors: {len(self.errors)}):\n' + '\n'.join(f'  - {error}' for error in self.errors))


def quote_files(paths):
    """'a.png, b.png, c.png and 4 more': the first FILES_NAMED file names of a list of paths."""
    names = ', '.join(os.path.basename(path) for path in paths[:FILES_NAMED])
    return names + (f' and {len(paths) - FILES_NAMED} more' if len(paths) > FILES_NAMED else '')


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
    """((width, height), mode) of an image file, read from its header after checking every PNG chunk's checksum.

    Nothing is decoded, so it costs about 2 ms for a KITTI image. Raises DataError naming a file that
    cannot be opened, or is truncated or damaged.
    """
    try:
        with Image.open(path) as opened:
            size, mode = opened.size, opened.mode
            opened.verify()
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(f'{path} cannot be read as an image ({error}): it is truncated, damaged or not a PNG. '
                        'Replace it with a good copy from data_road.zip, or remove it (and its label).') from error
    return size, mode


def label_colours(label_rgb):
    """collections.Counter {(r, g, b): pixels} of a [h, w, 3] uint8 label image."""
    red, green, blue = (label_rgb[..., channel].astype(np.uint32) for channel in range(3))
    values, pixels = np.unique(red << 16 | green << 8 | blue, return_counts=True)
    return collections.Counter({(int(value) >> 16, int(value) >> 8 & 255, int(value) & 255): int(count)
                                for value, count in zip(values, pixels)})


def check_kitti_folder(road_path, image_shape=None, require_testing=True):
    """Check a KITTI Road folder before training on it; returns a DataCheck with every problem found.

    road_path holds training/image_2 (<cat>_NNNNNN.png), training/gt_image_2 (<cat>_road_NNNNNN.png) and
    testing/image_2. Errors: a missing folder, or no training pair at all; an image without its label or
    a label without its image; a file that cannot be read; a label whose size differs from its image's
    or that has no valid pixel (red > 0); an image smaller than image_shape (height, width), the network
    input. A missing testing/image_2 is an error when require_testing (training paints its images), else
    a warning. Warnings: images that are not RGB (converted when read), label colours other than KITTI's three
    (decoded by the devkit rule, as the 21 real labels with pure-blue pixels are), ignored file names.
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
    return check


def check_images(check, image_paths, image_shape=None):
    """Verify each image file (verify_image) and compare its size with image_shape (height, width), if given.

    Adds to check: an error per unreadable or too small image, a warning about images that are not RGB,
    and summary['image sizes']. Returns {path: (width, height)} of the readable images.
    """
    image_sizes, not_rgb = {}, collections.defaultdict(list)
    for image_path in tqdm(image_paths, desc='Checking images', unit='image', leave=False):
        try:
            (width, height), mode = verify_image(image_path)
        except DataError as error:
            check.errors.append(str(error))
            continue
        image_sizes[image_path] = width, height
        if mode != 'RGB':
            not_rgb[mode].append(image_path)
        if image_shape is not None and (height < image_shape[0] or width < image_shape[1]):
            check.errors.append(f'{image_path} is {width}x{height} pixels, smaller than the network input '
                                f'{image_shape[1]}x{image_shape[0]}. Remove it (and its label), or train with a '
                                'smaller --image-width and --image-height.')
    if not_rgb:
        paths = [path for mode_paths in not_rgb.values() for path in mode_paths]
        modes = ', '.join(f'{mode} {len(mode_paths)}' for mode, mode_paths in sorted(not_rgb.items()))
        check.warnings.append(f'images that are not RGB ({modes}): {quote_files(paths)}. '
                              'They are converted to RGB when read; an alpha channel is dropped.')
    check.summary['image sizes'] = collections.Counter(image_sizes.values())
    return image_sizes


def check_labels(check, pairs, image_sizes):
    """Decode the label of each (image path, label path) pair; compare its size with image_sizes[image path].

    Adds to check: an error per unreadable label, label of another size than its image, or label
    without a valid pixel; a warning about colours other than KITTI's three, with their pixel
    counts; and summary['label colours'].
    """
    colours, labels_by_odd_colour = collections.Counter(), collections.defaultdict(list)
    for image_path, label_path in tqdm(pairs, desc='Checking labels', unit='label', leave=False):
        try:
            verify_image(label_path)
            label = load_image(label_path)
        except DataError as error:
            check.errors.append(str(error))
            continue
        (label_width, label_height), image_size = (label.shape[1], label.shape[0]), image_sizes.get(image_path)
        if image_size is not None and (label_width, label_height) != image_size:
            check.errors.append(f'{label_path} is {label_width}x{label_height} pixels but its image {image_path} is '
                                f"{image_size[0]}x{image_size[1]}: a label must have its image's size. Replace the "
                                'label with the one made for this image.')
        colours_here = label_colours(label)
        colours.update(colours_here)
        for colour in colours_here.keys() - LABEL_COLOUR_NAMES.keys():
            labels_by_odd_colour[colour].append(label_path)
        if not any(red > 0 for red, _, _ in colours_here):
            check.errors.append(f'{label_path} has no valid pixel (none with red > 0): all of it lies outside the '
                                'evaluated area, so its image can neither be learned nor scored. Fix the label '
                                '(road magenta, background red) or remove the pair.')
    if labels_by_odd_colour:
        odd_labels = {path for paths in labels_by_odd_colour.values() for path in paths}
        odd_colours = '; '.join(f'{colour} {colours[colour]:,} pixels in {quote_files(paths)}' for colour, paths
                                in sorted(labels_by_odd_colour.items(), key=lambda item: -colours[item[0]]))
        check.warnings.append(
            f'{len(odd_labels)} of {len(pairs)} labels hold colours other than road {ROAD_COLOUR}, background '
            f'{BACKGROUND_COLOUR} and not evaluated {INVALID_COLOUR}: {odd_colours}. They are decoded by the KITTI '
            'devkit rule, road = blue > 0 and valid = red > 0: pixels with red = 0 (such as pure blue) lie outside '
            'the evaluated area and are ignored like black.')
    check.summary['label colours'] = colours

