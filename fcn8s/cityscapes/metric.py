"""The multi-class metric, as Cityscapes' evaluator computes it: class and category IoU from one confusion matrix.

The numbers equal cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling's on the same predictions:
- class IoU = TP / (TP + FP + FN) over the pixels whose truth is not ignored (train id 255);
- a class with neither truth nor prediction has no IoU (the evaluator's NaN, here None), and the means
  (mIoU, category mIoU) are over the classes, or categories, that have one;
- category IoU comes from the class confusion matrix summed into categories: a pixel of one class predicted as
  another class of its category is a true positive of the category;
- pixel accuracy is the share of non-ignored pixels predicted right. The evaluator's own pixel accuracy
  (evalPixelAccuracy) is only per image and counts the ignored and the wrong pixels, so it is not used.
"""
import dataclasses

import numpy as np


def confusion_matrix(predicted_ids, truth_ids, num_classes):
    """[num_classes, num_classes] int64 pixel counts: row the true class, column the predicted class.

    predicted_ids, truth_ids: [...] integer class ids of the same shape; truth ids >= num_classes (255) are
    ignored. Raises ValueError when the shapes differ or a prediction is not a class id.
    """
    if predicted_ids.shape != truth_ids.shape:
        raise ValueError(f'predictions {predicted_ids.shape} and truth {truth_ids.shape} differ in shape')
    scored = truth_ids < num_classes
    predicted, truth = predicted_ids[scored].astype(np.int64), truth_ids[scored].astype(np.int64)
    if predicted.size and not 0 <= predicted.min() <= predicted.max() < num_classes:
        raise ValueError(f'predicted ids run from {predicted.min()} to {predicted.max()}: '
                         f'expected class ids 0..{num_classes - 1}')
    return np.bincount(truth * num_classes + predicted, minlength=num_classes ** 2).reshape(num_classes, num_classes)


@dataclasses.dataclass
class ClassCounts:
    """A confusion matrix summed over images, and how many images."""
    confusion: np.ndarray  # [num_classes, num_classes] int64: rows truth, columns prediction
    images: int = 0

    @classmethod
    def zeros(cls, num_classes):
        """The counts of no image."""
        return cls(np.zeros((num_classes, num_classes), np.int64))

    def __add__(self, other):
        return ClassCounts(self.confusion + other.confusion, self.images + other.images)


def count_classes(predicted_ids, truth_ids, num_classes):
    """ClassCounts of one image: predicted_ids, truth_ids [h, w] class ids, truth 255 ignored (confusion_matrix)."""
    return ClassCounts(confusion_matrix(predicted_ids, truth_ids, num_classes), images=1)


def intersection_over_union(confusion):
    """[C] float64 IoU of each class of a [C, C] confusion matrix; NaN for a class with neither truth nor prediction."""
    true_positives = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - true_positives
    with np.errstate(invalid='ignore', divide='ignore'):
        return true_positives / union


def mean_of_scored(scores):
    """The mean of the values that are not None, summed in order as the evaluator does (None when there is none)."""
    scored = [score for score in scores if score is not None]
    return sum(scored) / len(scored) if scored else None


def class_scores(counts, class_names, class_category, category_names):
    """The measures of ClassCounts, as Cityscapes' evaluator computes them (see the module docstring).

    class_names [C] in class-id order; class_category [C] the index in category_names of each class's category.
    Returns {'classes': {class name: IoU}, 'mIoU', 'categories': {category name: IoU}, 'category_mIoU',
    'pixel_accuracy', 'images'}: plain floats in 0..1, None where there is nothing to score.
    """
    membership = np.eye(len(category_names), dtype=np.int64)[class_category]  # [C, K]: class -> its category
    category_confusion = membership.T @ counts.confusion @ membership
    scores = {}
    for kind, names, confusion in (('classes', class_names, counts.confusion),
                                   ('categories', category_names, category_confusion)):
        scores[kind] = {name: None if np.isnan(iou) else float(iou)
                        for name, iou in zip(names, intersection_over_union(confusion))}
    scored_pixels = int(counts.confusion.sum())
    return {
        'classes': scores['classes'],
        'mIoU': mean_of_scored(scores['classes'].values()),
        'categories': scores['categories'],
        'category_mIoU': mean_of_scored(scores['categories'].values()),
        'pixel_accuracy': float(np.trace(counts.confusion) / scored_pixels) if scored_pixels else None,
        'images': counts.images,
    }


def format_class_scores(scores):
    """A text table of class_scores: IoU in percent per class, then per category, then the means and pixel accuracy.

    '-' marks a class or category with neither truth nor prediction, left out of the means.
    """
    def percent(value):
        return f'{"-":>7}' if value is None else f'{100 * value:7.2f}'

    lines = [f"{'class':16}{'IoU':>7}"]
    lines += [f'{name:16}{percent(iou)}' for name, iou in scores['classes'].items()]
    lines.append(f"{'category':16}{'IoU':>7}")
    lines += [f'{name:16}{percent(iou)}' for name, iou in scores['categories'].items()]
    scored_classes = sum(iou is not None for iou in scores['classes'].values())
    lines += [f"{'mIoU':16}{percent(scores['mIoU'])}  ({scored_classes} of {len(scores['classes'])} classes)",
              f"{'category mIoU':16}{percent(scores['category_mIoU'])}",
              f"{'pixel accuracy':16}{percent(scores['pixel_accuracy'])}  (images: {scores['images']})"]
    return '\n'.join(lines)
