"""The check of a Cityscapes folder that training runs first: every bad file named, with what to do."""
import collections
import dataclasses
import os
import re

import numpy as np
from tqdm import tqdm

from fcn8s import cityscapes
from fcn8s.cityscapes import GT_FINE, LABEL_IDS, LABELLED_SPLITS, LEFT_IMG, SPLITS
from fcn8s.datacheck import (DataCheck, check_images, check_label_size, image_sizes_line, pixel_count_text, quote_files,
                             verify_image)
from fcn8s.errors import DataError

# gtFine's other files beside the label-id images, skipped without a warning: the official zip's colour
# pictures, instance ids and polygons, and the train-id images that cityscapesscripts' preparation writes.
OTHER_GT_FINE_NAME = re.compile(r'_gtFine_(color|instanceIds|polygons|labelTrainIds|instanceTrainIds)\.(png|json)$')
# {kind: (file name pattern, its form for people, frame id -> file name)}
FILE_NAMES = {LEFT_IMG: (cityscapes.IMAGE_NAME, cityscapes.IMAGE_NAME_FORM, cityscapes.image_name),
              GT_FINE: (cityscapes.LABEL_NAME, cityscapes.LABEL_NAME_FORM, cityscapes.label_name)}
SPLIT_USES = {'train': 'the train split, the images it learns from',
              'val': 'the val split, whose first --val-count images it scores'}
UNPACK_HINT = (f'Unpack {cityscapes.PACKAGES[1]} and {cityscapes.PACKAGES[0]} into the same folder '
               f'(see {cityscapes.DOWNLOAD_PAGE})')


@dataclasses.dataclass
class CityscapesCheck(DataCheck):
    """What check_cityscapes_folder found in a Cityscapes folder.

    summary holds collections.Counters: 'images' and 'labels' {split: files}, 'image sizes'
    {(width, height): images} and 'label ids' {label id: pixels}.
    """
    title = 'Cityscapes'

    def summary_lines(self):
        """Files per split, image sizes, and each class's share of the labelled pixels."""
        lines = []
        for name in ('images', 'labels'):
            counts = self.summary.get(name) or collections.Counter()
            lines.append(f'  {name:16}' + (', '.join(f'{split} {counts[split]}' for split in SPLITS if split in counts)
                                              or 'none'))
        lines.append(image_sizes_line(self.summary))
        label_pixels = self.summary.get('label ids') or collections.Counter()
        class_pixels = collections.Counter({name: label_pixels[int(label_id)] for name, label_id
                                            in zip(cityscapes.CLASS_NAMES, cityscapes.TRAIN_TO_LABEL_ID)
                                            if label_pixels[int(label_id)]})
        labelled_pixels = sum(label_pixels.values())
        lines.append(f"  {'classes':16}" + ', '.join(
            f'{name} {100 * pixels / labelled_pixels:.1f}%' for name, pixels in class_pixels.most_common())
            + (f'; ignored {100 * (1 - sum(class_pixels.values()) / labelled_pixels):.1f}% (of labelled pixels)'
               if labelled_pixels else ''))
        return lines


def city_files(folder, name_pattern, name_form, check):
    """{frame id: path} of the files in folder's city folders named by name_pattern (name_form).

    Warns in check about other files, except gtFine's other files (OTHER_GT_FINE_NAME).
    """
    found, ignored = {}, []
    for city in sorted(os.listdir(folder)):
        city_folder = os.path.join(folder, city)
        if not os.path.isdir(city_folder):
            ignored.append(city_folder)
            continue
        for name in sorted(os.listdir(city_folder)):
            match = name_pattern.match(name)
            if match:
                found[match[1]] = os.path.join(city_folder, name)
            elif not OTHER_GT_FINE_NAME.search(name):
                ignored.append(os.path.join(city_folder, name))
    if ignored:
        check.warnings.append(f'ignored in {folder}: {len(ignored)} files not named {name_form} in a city folder '
                              f'({quote_files(ignored)}).')
    return found


def check_cityscapes_folder(cityscapes_path, image_shape=None):
    """Check a Cityscapes folder before training on it; returns a CityscapesCheck with every problem found.

    cityscapes_path holds leftImg8bit/{train,val,test}/<city>/ and gtFine/{train,val}/<city>/. Errors: a
    missing train or val folder, or one without an image; images without their label, labels without their
    image; files that cannot be read; labels that are not single-channel 8-bit PNG files (mode L, or P read as
    its indices), hold ids that are not Cityscapes label ids (0..33), or differ in size from their image;
    images smaller than image_shape (height, width), the network input. Warnings: a missing leftImg8bit/test,
    images that are not RGB, labels without a pixel of the 19 classes, ignored files. Each problem of many
    files is one line: how many, the first few names, and what to do.
    """
    check = CityscapesCheck(cityscapes_path)
    files = {LEFT_IMG: {}, GT_FINE: {}}  # {kind: {(split, frame id): path}}
    for split in SPLITS:
        for kind in cityscapes.kinds_of(split):
            folder = cityscapes.split_folder(cityscapes_path, kind, split)
            name_pattern, name_form, _ = FILE_NAMES[kind]
            if os.path.isdir(folder):
                files[kind].update(((split, frame_id), path) for frame_id, path
                                   in city_files(folder, name_pattern, name_form, check).items())
            elif split in LABELLED_SPLITS:
                check.errors.append(f"{folder} is missing: expected the {split} split's city folders of "
                                    f'{name_form} files there. {UNPACK_HINT}, so that {folder}/<city>/ exists.')
            else:
                check.warnings.append(f'{folder} is missing: the test images are only needed for overlays and '
                                      f'benchmark submissions. {UNPACK_HINT} to have them.')
    for split in LABELLED_SPLITS:
        folder = cityscapes.split_folder(cityscapes_path, LEFT_IMG, split)
        if os.path.isdir(folder) and not any(image_split == split for image_split, _ in files[LEFT_IMG]):
            check.errors.append(f'{folder} holds no image named {cityscapes.IMAGE_NAME_FORM} in a city folder: '
                                f'training needs {SPLIT_USES[split]}. {UNPACK_HINT}, so that {folder}/<city>/ holds '
                                'them.')
    check_pairing(check, cityscapes_path, files)
    images, labels = files[LEFT_IMG], files[GT_FINE]
    check.summary['images'] = collections.Counter(split for split, _ in images)
    check.summary['labels'] = collections.Counter(split for split, _ in labels)
    image_sizes = check_images(check, [images[key] for key in sorted(images)], image_shape)
    check_label_ids(check, [(images[key], labels[key]) for key in sorted(images.keys() & labels.keys())], image_sizes)
    return check


def check_pairing(check, cityscapes_path, files):
    """Add to check one error about the train and val images without their label, one about labels without image.

    files: {LEFT_IMG: {(split, frame id): image path}, GT_FINE: {(split, frame id): label path}}.
    """
    for kind, other_kind, what, missing in ((LEFT_IMG, GT_FINE, 'images', 'label'),
                                            (GT_FINE, LEFT_IMG, 'labels', 'image')):
        unpaired = sorted(key for key in files[kind].keys() - files[other_kind].keys()
                          if other_kind in cityscapes.kinds_of(key[0]))
        if unpaired:
            split, frame_id = unpaired[0]
            expected_path = os.path.join(cityscapes.split_folder(cityscapes_path, other_kind, split),
                                         cityscapes.city_of(frame_id), FILE_NAMES[other_kind][2](frame_id))
            check.errors.append(f'{what} without their {missing}: {len(unpaired)} '
                                f'({quote_files([files[kind][key] for key in unpaired])}). Expected each {missing} in '
                                f'{other_kind}/ beside its {what[:-1]}, such as {expected_path}. {UNPACK_HINT}, or '
                                f'remove the {what}.')


def check_label_ids(check, pairs, image_sizes):
    """Read the label of each (image path, label path) pair; compare its size with image_sizes[image path].

    Adds to check: an error per unreadable label or label of another size than its image; one error about
    labels that are not single-channel 8-bit PNG files, one about ids that are not label ids; one warning about labels
    without a pixel of the 19 classes; and summary['label ids'].
    """
    label_pixels, not_label_png, unscored = collections.Counter(), collections.defaultdict(list), []
    labels_by_unknown_id = collections.defaultdict(list)
    for image_path, label_path in tqdm(pairs, desc='Checking labels', unit='label', leave=False):
        try:
            (width, height), mode, file_format = verify_image(label_path)
            if file_format != 'PNG' or mode not in cityscapes.LABEL_ID_MODES:
                not_label_png[f'{file_format} {mode}'].append(label_path)
                continue
            label_ids = cityscapes.load_label_ids(label_path)
        except DataError as error:
            check.errors.append(str(error))
            continue
        check_label_size(check, label_path, (width, height), image_path, image_sizes)
        pixels_by_id = np.bincount(label_ids.ravel(), minlength=256)
        label_pixels.update({int(label_id): int(pixels_by_id[label_id]) for label_id in np.flatnonzero(pixels_by_id)})
        for label_id in sorted(set(np.flatnonzero(pixels_by_id).tolist()) - set(LABEL_IDS)):
            labels_by_unknown_id[label_id].append(label_path)
        if not pixels_by_id[cityscapes.TRAIN_TO_LABEL_ID].any():
            unscored.append(label_path)
    if not_label_png:
        paths = [path for kind_paths in not_label_png.values() for path in kind_paths]
        kinds = ', '.join(f'{kind} {len(kind_paths)}' for kind, kind_paths in sorted(not_label_png.items()))
        check.errors.append(f'labels that are not single-channel 8-bit PNG files of label ids (mode L, or P): '
                            f'{len(paths)} ({kinds}: {quote_files(paths)}). Replace them with the '
                            f'{cityscapes.LABEL_NAME_FORM} files of {cityscapes.PACKAGES[0]}; its _gtFine_color.png '
                            'files are pictures, not labels, and lossy compression (JPEG) changes ids.')
    if labels_by_unknown_id:
        odd_labels = {path for paths in labels_by_unknown_id.values() for path in paths}
        odd_ids = '; '.join(f'id {label_id}, {pixel_count_text(label_pixels[label_id])} in {quote_files(paths)}'
                            for label_id, paths in sorted(labels_by_unknown_id.items()))
        check.errors.append(f'ids that are not Cityscapes label ids ({LABEL_IDS[0]}..{LABEL_IDS[-1]}) in '
                            f'{len(odd_labels)} of {len(pairs)} labels: {odd_ids}. The official evaluator stops at '
                            f'such ids. Give the {cityscapes.LABEL_NAME_FORM} files of {cityscapes.PACKAGES[0]}: the '
                            '_gtFine_labelTrainIds.png files that csCreateTrainIdLabelImgs writes hold train ids.')
    if unscored:
        check.warnings.append(f'labels with no pixel of the {cityscapes.NUM_CLASSES} classes, only ignored ids: '
                              f'{len(unscored)} of {len(pairs)} ({quote_files(unscored)}). Their images teach and '
                              'score nothing. Check that they are the right files, or remove the pairs.')
    check.summary['label ids'] = label_pixels
