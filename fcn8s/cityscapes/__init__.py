"""Cityscapes' layout and label table: its folders and file names, and label ids -> train ids, colours, categories.

Folder levels: a data folder holds cityscapes/ (cityscapes_path); it holds leftImg8bit/<split>/<city>/ with the
images <city>_<seq>_<frame>_leftImg8bit.png and gtFine/<split>/<city>/ with their labels
<city>_<seq>_<frame>_gtFine_labelIds.png (train and val; test has no public labels). <city>_<seq>_<frame>,
such as aachen_000000_000019, is a frame id. The label table is the official one, cityscapesscripts.helpers.labels:
34 label ids (0..33) in the label images, 19 of them trained and scored as train ids 0..18, the others ignored (255).
"""
import glob
import os
import re

import numpy as np
from cityscapesscripts.helpers.labels import labels as LABEL_TABLE
from PIL import Image

from fcn8s.dataset_contract import IGNORE_ID  # the train id of every pixel that is neither trained nor scored
from fcn8s.errors import DataError, DataUnavailableError

CITYSCAPES_FOLDER = 'cityscapes'
LEFT_IMG = 'leftImg8bit'
GT_FINE = 'gtFine'
SPLITS = ('train', 'val', 'test')
LABELLED_SPLITS = ('train', 'val')
CITYSCAPES_SHAPE = (1024, 2048)  # (height, width) of every image and label, the resolution validation scores at
DOWNLOAD_PAGE = 'https://www.cityscapes-dataset.com/downloads/'
PACKAGES = ('gtFine_trainvaltest.zip', 'leftImg8bit_trainvaltest.zip')

IMAGE_SUFFIX = '_leftImg8bit.png'
LABEL_SUFFIX = '_gtFine_labelIds.png'
SUBMISSION_SUFFIX = '_labelIds.png'
FRAME_ID = r'[^_/]+_\d{6}_\d{6}'
IMAGE_NAME = re.compile(rf'^({FRAME_ID}){IMAGE_SUFFIX}$')
LABEL_NAME = re.compile(rf'^({FRAME_ID}){LABEL_SUFFIX}$')
IMAGE_NAME_FORM = '<city>_<seq>_<frame>' + IMAGE_SUFFIX
LABEL_NAME_FORM = '<city>_<seq>_<frame>' + LABEL_SUFFIX

# The official table, in train-id order: the 19 classes that are trained and scored.
TRAIN_LABELS = sorted((label for label in LABEL_TABLE if 0 <= label.trainId < 255), key=lambda label: label.trainId)
NUM_CLASSES = len(TRAIN_LABELS)  # 19
CLASS_NAMES = tuple(label.name for label in TRAIN_LABELS)
CLASS_COLOURS = np.array([label.color for label in TRAIN_LABELS], np.uint8)  # [19, 3] RGB
CATEGORY_NAMES = tuple(dict.fromkeys(label.category for label in TRAIN_LABELS))  # the 7 scored; 'void' is not
CLASS_CATEGORY = np.array([CATEGORY_NAMES.index(label.category) for label in TRAIN_LABELS])  # [19] category index
LABEL_IDS = tuple(sorted(label.id for label in LABEL_TABLE if label.id >= 0))  # 0..33, the ids label images hold
LABEL_TO_TRAIN_ID = np.full(256, IGNORE_ID, np.uint8)  # [256]: 255 for ignored ids (0 unlabeled, ...) and unknown ones
LABEL_TO_TRAIN_ID[[label.id for label in TRAIN_LABELS]] = np.arange(NUM_CLASSES)
TRAIN_TO_LABEL_ID = np.array([label.id for label in TRAIN_LABELS], np.uint8)  # [19]
# PIL modes of label-id images: 8-bit grey, or a palette whose indices are the ids, as cityscapesscripts'
# evaluator reads both (np.array(Image.open(path))).
LABEL_ID_MODES = ('L', 'P')


def image_name(frame_id):
    """'aachen_000000_000019_leftImg8bit.png': the file name of a frame's image."""
    return frame_id + IMAGE_SUFFIX


def label_name(frame_id):
    """'aachen_000000_000019_gtFine_labelIds.png': the file name of a frame's fine label-id image."""
    return frame_id + LABEL_SUFFIX


def city_of(frame_id):
    """'aachen' of 'aachen_000000_000019': the city, which names the folder of the frame's files."""
    return frame_id.split('_')[0]


def frame_id_of(path):
    """'aachen_000000_000019' of a Cityscapes image or label file, or None for any other name."""
    name = os.path.basename(path)
    match = IMAGE_NAME.match(name) or LABEL_NAME.match(name)
    return match[1] if match else None


def submission_name(image_path):
    """<city>_<seq>_<frame>_labelIds.png: the benchmark's name for the label-id prediction of a Cityscapes image.

    The evaluator (cityscapesscripts evalPixelLevelSemanticLabeling.getPrediction) takes, for the label
    <frame id>_gtFine_labelIds.png, the one file named <frame id>*.png anywhere under its results folder.
    """
    frame_id = frame_id_of(image_path)
    if frame_id is None:
        raise DataError(f'{image_path} is not named like a Cityscapes image ({IMAGE_NAME_FORM}), so the benchmark '
                        'has no name for its prediction; give the images of leftImg8bit/val or leftImg8bit/test.')
    return frame_id + SUBMISSION_SUFFIX


def split_folder(cityscapes_path, kind, split):
    """cityscapes_path/<kind>/<split>, kind LEFT_IMG or GT_FINE: the folder of a split's city folders."""
    return os.path.join(cityscapes_path, kind, split)


def kinds_of(split):
    """(LEFT_IMG, GT_FINE) for a labelled split (train, val), (LEFT_IMG,) for test: the folders holding its files."""
    return (LEFT_IMG, GT_FINE) if split in LABELLED_SPLITS else (LEFT_IMG,)


def list_cityscapes_images(cityscapes_path, split):
    """[image path] of leftImg8bit/<split>/<city>/*_leftImg8bit.png, sorted by city and frame.

    Raises DataError when the split holds no image.
    """
    image_dir = split_folder(cityscapes_path, LEFT_IMG, split)
    image_paths = sorted(glob.glob(os.path.join(image_dir, '*', '*' + IMAGE_SUFFIX)))
    if not image_paths:
        raise DataError(f'no images named {IMAGE_NAME_FORM} in the city folders of {image_dir}')
    return image_paths


def list_cityscapes_pairs(cityscapes_path, split):
    """[(image path, label path)] of a labelled split (train, val), sorted by city and frame.

    Raises DataError naming an image whose gtFine/<split>/<city>/<frame id>_gtFine_labelIds.png is missing.
    """
    pairs = []
    for image_path in list_cityscapes_images(cityscapes_path, split):
        frame_id = frame_id_of(image_path)
        label_folder = os.path.join(split_folder(cityscapes_path, GT_FINE, split), city_of(frame_id))
        label_path = os.path.join(label_folder, label_name(frame_id))
        if not os.path.exists(label_path):
            raise DataError(f'{image_path} has no label: expected {label_path}. '
                            'Unpack gtFine_trainvaltest.zip next to leftImg8bit/, or remove the image.')
        pairs.append((image_path, label_path))
    return pairs


def load_label_ids(path, image_shape=None):
    """A gtFine label-id image as [height, width] uint8 label ids, resized nearest to image_shape (height, width).

    An 8-bit grey image's values, or a palette image's indices, are the ids (LABEL_ID_MODES). Raises DataError
    naming a file that cannot be read or is of another mode.
    """
    try:
        with Image.open(path) as opened:
            if opened.mode not in LABEL_ID_MODES:
                raise DataError(f'{path} is a {opened.mode} image, not the single-channel 8-bit image of label ids '
                                f'(mode L, or P read as its palette indices) that {LABEL_NAME_FORM} is: replace it '
                                'with the file from gtFine_trainvaltest.zip (the _color.png files are not labels).')
            if image_shape is not None:
                opened = opened.resize((image_shape[1], image_shape[0]), Image.NEAREST)
            return np.asarray(opened)
    except (OSError, SyntaxError) as error:
        raise DataError(f'cannot read label {path}: {error}. Replace it with the file from gtFine_trainvaltest.zip.') \
            from error


def train_ids_of(label_ids):
    """[h, w] uint8 label ids (0..33) -> [h, w] uint8 train ids (0..18), 255 where the id is ignored or unknown."""
    return LABEL_TO_TRAIN_ID[label_ids]


def colour_mask(train_ids):
    """[h, w] train ids -> [h, w, 3] uint8 RGB in the official class colours; ignored pixels (255) black."""
    palette = np.zeros((256, 3), np.uint8)
    palette[:NUM_CLASSES] = CLASS_COLOURS
    return palette[train_ids]


def label_id_mask(train_ids):
    """[h, w] train ids -> [h, w] uint8 label ids, as the benchmark takes predictions; 255 becomes 0 (unlabeled)."""
    label_ids = np.zeros(256, np.uint8)
    label_ids[:NUM_CLASSES] = TRAIN_TO_LABEL_ID
    return label_ids[train_ids]


def require_cityscapes(cityscapes_path):
    """Raise DataUnavailableError, saying how to get the dataset, unless cityscapes_path holds train and val splits."""
    missing = [split_folder(cityscapes_path, kind, split) for kind in (LEFT_IMG, GT_FINE) for split in LABELLED_SPLITS
               if not os.path.isdir(split_folder(cityscapes_path, kind, split))]
    if missing:
        raise DataUnavailableError(
            f"Cityscapes is not in {cityscapes_path}: {', '.join(missing)} missing. It cannot be downloaded without "
            f'an account: register at {DOWNLOAD_PAGE}, download {PACKAGES[0]} (labels, 241 MB) and {PACKAGES[1]} '
            f'(images, 11 GB), and unpack both into {cityscapes_path}, so that '
            f'{split_folder(cityscapes_path, LEFT_IMG, "train")}/<city>/ and '
            f'{split_folder(cityscapes_path, GT_FINE, "train")}/<city>/ exist. With your login, cityscapesscripts '
            f"fetches them: `csDownload -d {cityscapes_path} {' '.join(PACKAGES)}`, then unzip them there. "
            'To try the whole job offline, run with `--demo --dataset cityscapes` (synthetic scenes, random VGG16).')
