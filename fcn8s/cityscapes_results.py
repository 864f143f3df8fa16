"""Cityscapes predictions made visible and kept: class-colour overlays, train-id and colour masks, the evaluation,
and the label-id files of a benchmark submission."""
import os

import numpy as np
from tqdm import tqdm

from fcn8s import cityscapes
from fcn8s.classmetric import ClassCounts, count_classes
from fcn8s.images import OVERLAY_ALPHA, predict_image_files, save_png

SUBMISSION_PAGE = 'https://www.cityscapes-dataset.com/submit/'


def paint_classes(image, class_ids):
    """Overlay: image [h, w, 3] uint8 blended half and half with the official colour of each pixel's class [h, w]."""
    colours = cityscapes.colour_mask(class_ids.astype(np.uint8))
    return (image * (1 - OVERLAY_ALPHA) + colours * OVERLAY_ALPHA).round().astype(np.uint8)


def evaluate_classes(predict, pairs, batch_size=8):
    """ClassCounts of a class predictor (fcn8s.predict) on (image path, gtFine label-id path) pairs, at full size.

    Each label's ids become train ids (ignored pixels 255, left out of the confusion matrix).
    """
    counts = ClassCounts.zeros(cityscapes.NUM_CLASSES)
    label_paths = dict(pairs)
    predictions = predict_image_files(predict, [image_path for image_path, _ in pairs], batch_size)
    for image_path, _, class_ids in tqdm(predictions, total=len(pairs), desc='Scoring validation images',
                                         unit='image', leave=False):
        truth = cityscapes.train_ids_of(cityscapes.load_label_ids(label_paths[image_path]))
        counts = counts + count_classes(class_ids, truth, cityscapes.NUM_CLASSES)
    return counts


def save_class_images(predict, image_paths, output_dir, masks=False, batch_size=8):
    """Write overlays/<name>.png (paint_classes) of each image, and with masks masks/<name>_trainIds.png ([h, w]
    uint8 train ids) and masks/<name>_color.png (official colours); <name> is the file name without extension.

    Returns the paths written.
    """
    written_paths = []
    for image_path, image, class_ids in tqdm(predict_image_files(predict, image_paths, batch_size),
                                             total=len(image_paths), desc='Predicting classes', unit='image'):
        name = os.path.splitext(os.path.basename(image_path))[0]
        pictures = {os.path.join('overlays', f'{name}.png'): paint_classes(image, class_ids)}
        if masks:
            train_ids = class_ids.astype(np.uint8)
            pictures[os.path.join('masks', f'{name}_trainIds.png')] = train_ids
            pictures[os.path.join('masks', f'{name}_color.png')] = cityscapes.colour_mask(train_ids)
        for relative_path, picture in pictures.items():
            written_paths.append(os.path.join(output_dir, relative_path))
            save_png(picture, written_paths[-1])
    return written_paths


def write_cityscapes_submission(predict, image_paths, output_dir, batch_size=8):
    """Write output_dir/<city>_<seq>_<frame>_labelIds.png for each Cityscapes image: [h, w] uint8 label ids.

    The benchmark (and cityscapesscripts' evaluator, CITYSCAPES_RESULTS=output_dir) takes these files.
    Returns the folder. Raises ValueError before predicting when an image is not named like a Cityscapes one.
    """
    result_names = [cityscapes.submission_name(path) for path in image_paths]
    os.makedirs(output_dir, exist_ok=True)
    predictions = predict_image_files(predict, image_paths, batch_size)
    for result_name, (_, _, class_ids) in tqdm(zip(result_names, predictions), total=len(image_paths),
                                               desc='Predicting classes', unit='image'):
        label_ids = cityscapes.label_id_mask(class_ids.astype(np.uint8))
        save_png(label_ids, os.path.join(output_dir, result_name))
    return output_dir
