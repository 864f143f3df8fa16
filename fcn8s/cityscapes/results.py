"""Cityscapes predictions made visible and kept: class-colour overlays, train-id and colour masks, the evaluation,
and the label-id files of a benchmark submission."""
import dataclasses
import os

import numpy as np
from tqdm import tqdm

from fcn8s import cityscapes
from fcn8s.cityscapes.metric import ClassCounts, count_classes
from fcn8s.files import check_output_path
from fcn8s.images import OVERLAY_ALPHA, benchmark_output_names, predict_image_files, result_stems, save_png

SUBMISSION_PAGE = 'https://www.cityscapes-dataset.com/submit/'


def paint_classes(image, class_ids):
    """Overlay: image [h, w, 3] uint8 blended half and half with the official colour of each pixel's class [h, w]."""
    colours = cityscapes.colour_mask(class_ids.astype(np.uint8))
    return (image * (1 - OVERLAY_ALPHA) + colours * OVERLAY_ALPHA).round().astype(np.uint8)


@dataclasses.dataclass
class ClassEvaluation:
    """evaluate_classes' result: the confusion matrix over the images, and the pixels it left out for their ids."""
    counts: ClassCounts
    unknown_id_pixels: dict = dataclasses.field(default_factory=dict)  # {label path: {label id: pixels}}, ids > 33


def evaluate_classes(predict, pairs, batch_size=8):
    """ClassEvaluation of a class predictor (fcn8s.predict) on (image path, gtFine label-id path) pairs, at full size.

    Each label's ids become train ids (ignored pixels 255, left out of the confusion matrix). Ids outside the
    official table (cityscapes.LABEL_IDS) are ignored too, and counted per label in unknown_id_pixels.
    """
    evaluation = ClassEvaluation(ClassCounts.zeros(cityscapes.NUM_CLASSES))
    label_paths = dict(pairs)
    predictions = predict_image_files(predict, [image_path for image_path, _ in pairs], batch_size)
    for image_path, _, class_ids in tqdm(predictions, total=len(pairs), desc='Scoring validation images',
                                         unit='image', leave=False):
        label_ids = cityscapes.load_label_ids(label_paths[image_path])
        pixels_by_id = np.bincount(label_ids.ravel(), minlength=256)
        pixels_by_id[list(cityscapes.LABEL_IDS)] = 0
        if pixels_by_id.any():
            evaluation.unknown_id_pixels[label_paths[image_path]] = {
                int(label_id): int(pixels_by_id[label_id]) for label_id in np.flatnonzero(pixels_by_id)}
        evaluation.counts += count_classes(class_ids, cityscapes.train_ids_of(label_ids), cityscapes.NUM_CLASSES)
    return evaluation


def unknown_ids_note(evaluation):
    """The lines saying how many pixels of which labels a ClassEvaluation ignored for ids outside the table, or ''."""
    if not evaluation.unknown_id_pixels:
        return ''
    total = sum(sum(pixels.values()) for pixels in evaluation.unknown_id_pixels.values())
    lines = [f'{total:,} pixels of {len(evaluation.unknown_id_pixels)} labels hold ids outside the official table '
             f'(label ids {cityscapes.LABEL_IDS[0]}..{cityscapes.LABEL_IDS[-1]}) and were ignored, as void pixels are; '
             "cityscapesscripts' evaluator would stop at them:"]
    lines += [f'  - {label_path}: ' + ', '.join(f'id {label_id} {pixels:,} pixels' for label_id, pixels in ids.items())
              for label_path, ids in evaluation.unknown_id_pixels.items()]
    return '\n'.join(lines)


def save_class_images(predict, image_paths, output_dir, masks=False, batch_size=8):
    """Write overlays/<name>.png (paint_classes) of each image, and with masks masks/<name>_trainIds.png ([h, w]
    uint8 train ids) and masks/<name>_color.png (official colours); <name> is the file name without extension.

    Returns the paths written. Raises ValueError before predicting when two images would write one file
    (result_stems).
    """
    names = result_stems(image_paths)
    written_paths = []
    for name, (_, image, class_ids) in tqdm(zip(names, predict_image_files(predict, image_paths, batch_size)),
                                            total=len(image_paths), desc='Predicting classes', unit='image'):
        pictures = {os.path.join('overlays', f'{name}.png'): paint_classes(image, class_ids)}
        if masks:
            train_ids = class_ids.astype(np.uint8)
            pictures[os.path.join('masks', f'{name}_trainIds.png')] = train_ids
            pictures[os.path.join('masks', f'{name}_color.png')] = cityscapes.colour_mask(train_ids)
        for relative_path, picture in pictures.items():
            written_paths.append(os.path.join(output_dir, relative_path))
            save_png(picture, written_paths[-1])
    return written_paths


def check_submission_inputs(image_paths, output_dir):
    """[<city>_<seq>_<frame>_labelIds.png] of the images; raises ValueError when an image is not named like a
    Cityscapes one or two would have one name (benchmark_output_names), and
    UnwritableOutput when output_dir is a file (files.check_output_path)."""
    result_names = benchmark_output_names(image_paths, cityscapes.submission_name, cityscapes.IMAGE_NAME_FORM,
                                          'give the images of leftImg8bit/test (or leftImg8bit/val).')
    check_output_path(output_dir, folder=True)
    return result_names


def submission_report(output_dir, image_paths):
    """What write_cityscapes_submission wrote for image_paths into output_dir, what else the folder holds, and
    where to upload it: the benchmark's evaluator takes every *_labelIds.png file of the folder."""
    written = {cityscapes.submission_name(path) for path in image_paths}
    others = sorted(name for name in os.listdir(output_dir) if name.endswith(cityscapes.SUBMISSION_SUFFIX)
                    and name not in written)
    text = (f'Wrote {len(written)} label-id predictions to {output_dir}: zip its files and upload them at '
            f'{SUBMISSION_PAGE} (an account is needed; the server scores all 1525 test images).')
    if others:
        text += (f' The folder also holds {len(others)} other {cityscapes.SUBMISSION_SUFFIX} files that this command '
                 f"did not write ({', '.join(others[:3])}{' ...' if len(others) > 3 else ''}): leave them out of "
                 'the zip, or the server takes them too.')
    return text


def write_cityscapes_submission(predict, image_paths, output_dir, batch_size=8):
    """Write output_dir/<city>_<seq>_<frame>_labelIds.png for each Cityscapes image: [h, w] uint8 label ids.

    The benchmark (and cityscapesscripts' evaluator, CITYSCAPES_RESULTS=output_dir) takes these files.
    Returns the folder. Raises before predicting when an image is not named like a Cityscapes one, two images
    would write one file or output_dir is a file (check_submission_inputs).
    """
    result_names = check_submission_inputs(image_paths, output_dir)
    os.makedirs(output_dir, exist_ok=True)
    predictions = predict_image_files(predict, image_paths, batch_size)
    for result_name, (_, _, class_ids) in tqdm(zip(result_names, predictions), total=len(image_paths),
                                               desc='Predicting classes', unit='image'):
        label_ids = cityscapes.label_id_mask(class_ids.astype(np.uint8))
        save_png(label_ids, os.path.join(output_dir, result_name))
    return output_dir
