"""The check of a KITTI Road folder that training runs first: every bad file named, with what to do."""
import collections
import dataclasses
import os

import numpy as np
from tqdm import tqdm

from fcn8s import kitti
from fcn8s.datacheck import (DataCheck, check_images, check_label_size, image_sizes_line, pixel_count_text, quote_files,
                             verify_image)
from fcn8s.errors import DataError
from fcn8s.images import load_image
from fcn8s.kitti import BACKGROUND_COLOUR, INVALID_COLOUR, ROAD_COLOUR, bev

LABEL_COLOUR_NAMES = {ROAD_COLOUR: 'road', BACKGROUND_COLOUR: 'background', INVALID_COLOUR: 'not evaluated'}
COLOURS_NAMED = 5  # how many colours a message about label colours names, the most frequent first
# A label with more than this share of its pixels off KITTI's three colours is an error: it was JPEG-compressed or
# resampled. Measured: real labels hold at most 113 stray pure-blue pixels (0.03% of 1242x375); a real label shrunk
# 10% bilinearly has 0.3 to 0.9% off, one upscaled from 576x160 1.1 to 4%, one saved as a JPEG (quality 75 to 100) 95%.
ODD_LABEL_PIXELS_MAX_SHARE = 0.001


@dataclasses.dataclass
class KittiCheck(DataCheck):
    """What check_kitti_folder found in a KITTI Road folder.

    summary holds collections.Counters: 'training images', 'road labels' and 'testing images' per category
    ('testing images' is None when the folder is missing), 'image sizes' {(width, height): images} and
    'label colours' {(r, g, b): pixels}; and 'calibrations', the tuple (images with a usable calib/ file, images).
    """
    title = 'KITTI'

    def summary_lines(self):
        """What the folder holds, one line per kind of count."""
        lines = []
        for name in ('training images', 'road labels', 'testing images'):
            counts = self.summary.get(name)
            by_category = ', '.join(f'{category} {counts[category]}' for category in kitti.KITTI_CATEGORIES) if counts else ''
            lines.append(f'  {name:16}' + ('missing' if counts is None else f'{sum(counts.values())} ({by_category})'))
        lines.append(image_sizes_line(self.summary))
        usable, images = self.summary.get('calibrations', (0, 0))
        lines.append(f"  {'calibrations':16}{usable} of {images} images")
        colours = self.summary.get('label colours') or collections.Counter()
        lines.append(f"  {'label colours':16}{colour_counts_text(colours)}")
        return lines


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


def label_colours(label_rgb):
    """collections.Counter {(r, g, b): pixels} of a [h, w, 3] uint8 label image."""
    red, green, blue = (label_rgb[..., channel].astype(np.uint32) for channel in range(3))
    values, pixels = np.unique(red << 16 | green << 8 | blue, return_counts=True)
    return collections.Counter({(int(value) >> 16, int(value) >> 8 & 255, int(value) & 255): int(count)
                                for value, count in zip(values, pixels)})


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


def check_kitti_folder(road_path, image_shape=None, require_testing=True, require_calib=False):
    """Check a KITTI Road folder before training on it; returns a KittiCheck with every problem found.

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
    check = KittiCheck(road_path)
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
