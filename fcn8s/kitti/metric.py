"""The KITTI road metric as the devkit computes it, in perspective and in BEV: MaxF, AP, PRE, REC, IoU."""
import dataclasses

import numpy as np
from tqdm import tqdm

from fcn8s import kitti
from fcn8s.errors import DataError
from fcn8s.images import load_image, predict_image_files
from fcn8s.kitti import bev

# The devkit sweeps these 256 thresholds: a pixel counts as road when its probability >= threshold.
EVAL_THRESHOLDS = np.arange(256) / 255.0
TABLE_COLUMNS = ('MaxF', 'AP', 'PRE', 'REC', 'FPR', 'FNR', 'IoU')
# The leaderboard's names of the BEV rows: URBAN_ROAD scores the three categories together.
BEV_ROW_NAMES = {'overall': 'URBAN_ROAD', 'um': 'UM_ROAD', 'umm': 'UMM_ROAD', 'uu': 'UU_ROAD'}


@dataclasses.dataclass
class RoadCounts:
    """Valid-pixel counts of the KITTI road evaluation, summed over images as the devkit sums them."""
    false_negatives: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(256, np.int64))  # [256] per threshold
    false_positives: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(256, np.int64))  # [256] per threshold
    positives: int = 0          # valid road pixels
    negatives: int = 0          # valid non-road pixels
    true_positives_05: int = 0  # road pixels with probability > 0.5, for IoU
    false_positives_05: int = 0
    images: int = 0

    def __add__(self, other):
        return RoadCounts(*(getattr(self, field.name) + getattr(other, field.name)
                            for field in dataclasses.fields(self)))


def count_road_pixels(road_prob, road, valid):
    """RoadCounts of one image: road_prob [h, w] float in 0..1; road, valid [h, w] bool from decode_label.

    One histogram of the probabilities per class (devkit evalExp): no pass per threshold.
    """
    bins = np.searchsorted(EVAL_THRESHOLDS, road_prob, side='right')  # 0..256: thresholds <= probability
    road_hist = np.bincount(bins[road & valid], minlength=257)
    other_hist = np.bincount(bins[~road & valid], minlength=257)
    painted = road_prob > 0.5
    return RoadCounts(
        false_negatives=np.cumsum(road_hist)[:256],
        false_positives=np.cumsum(other_hist[::-1])[::-1][1:],
        positives=int(road_hist.sum()), negatives=int(other_hist.sum()),
        true_positives_05=int((painted & road & valid).sum()), false_positives_05=int((painted & ~road & valid).sum()),
        images=1)


def precision_recall(counts):
    """(precision, recall, kept) [256] over EVAL_THRESHOLDS, without the points with neither TP nor recall (devkit)."""
    true_positives = counts.positives - counts.false_negatives
    recall = true_positives / max(counts.positives, 1)
    precision = true_positives / (true_positives + counts.false_positives + 1e-10)
    kept = ~((recall == 0) & (precision == 0))
    return precision, recall, kept


def road_metrics(counts):
    """The KITTI road benchmark's numbers from RoadCounts, as the devkit's pxEval_maximizeFMeasure computes them.

    MaxF: the largest F1 over the 256 thresholds; PRE, REC, FPR, FNR and threshold at that point.
    AP: the devkit's 11-point interpolated average precision (Pascal VOC 2007): the mean over recall
    levels 0, 0.1, ..., 1 of the best precision at a recall at least that level.
    IoU: road intersection over union at probability > 0.5. All as plain floats, plus the image count.
    """
    precision, recall, kept = precision_recall(counts)
    if counts.positives == 0 or not kept.any():
        raise DataError(f'no valid road pixel was predicted or labelled in {counts.images} images: nothing to score')
    precision, recall, thresholds = precision[kept], recall[kept], EVAL_THRESHOLDS[kept]
    f_measure = 2 * precision * recall / (precision + recall + 1e-10)
    best = int(f_measure.argmax())
    average_precision = np.mean([precision[recall >= level].max() for level in np.arange(0, 1.1, 0.1)])
    false_negatives = counts.false_negatives[kept][best]
    false_positives = counts.false_positives[kept][best]
    true_positives = counts.positives - false_negatives
    true_negatives = counts.negatives - false_positives
    false_negatives_05 = counts.positives - counts.true_positives_05
    return {
        'MaxF': float(f_measure[best]),
        'AP': float(average_precision),
        'PRE': float(precision[best]),
        'REC': float(recall[best]),
        'FPR': float(false_positives / max(false_positives + true_negatives, 1)),
        'FNR': float(false_negatives / max(true_positives + false_negatives, 1)),
        'threshold': float(thresholds[best]),
        'IoU': float(counts.true_positives_05 / max(counts.true_positives_05 + counts.false_positives_05 + false_negatives_05, 1)),
        'images': counts.images,
    }


@dataclasses.dataclass
class RoadEvaluation:
    """evaluate_road's counts per category ('um', 'umm', 'uu'), in perspective and in bird's-eye view.

    BEV counts leave out the images whose calibration is missing or unusable (bev.read_calibration), or
    maps none of the label's evaluated pixels into the grid: without_calibration holds one message per such
    image, naming its calibration file and the problem. bev_examples holds the first evaluated image of each
    category in BEV: (image [800, 400, 3] uint8, road probability [800, 400] float, label [800, 400, 3] uint8).
    """
    perspective: dict = dataclasses.field(default_factory=lambda: {category: RoadCounts()
                                                                   for category in kitti.KITTI_CATEGORIES})
    bev: dict = dataclasses.field(default_factory=lambda: {category: RoadCounts() for category in kitti.KITTI_CATEGORIES})
    without_calibration: list = dataclasses.field(default_factory=list)
    bev_examples: dict = dataclasses.field(default_factory=dict)


def evaluate_road(predict, pairs, batch_size=8):
    """RoadEvaluation of predict on the (image path, label path) pairs, in perspective and in BEV.

    Perspective: at each image's own size, as the devkit scores a held-out part of training. BEV: as
    the benchmark's server scores, the label and the 8-bit result image (road probability * 255,
    rounded, what infer writes) go through the image's calibration (fcn8s.kitti.bev) and the same counts are
    taken on the BEV grid. predict maps a list of [h, w, 3] uint8 images to their [h, w] road
    probabilities (fcn8s.predict), batch_size at a time.
    """
    evaluation = RoadEvaluation()
    label_paths = dict(pairs)
    predictions = predict_image_files(predict, [image_path for image_path, _ in pairs], batch_size)
    for image_path, image, road_prob in tqdm(predictions, total=len(pairs), desc='Scoring validation images',
                                             unit='image', leave=False):
        category, _ = kitti.parse_image_name(image_path)
        label = load_image(label_paths[image_path])
        evaluation.perspective[category] += count_road_pixels(road_prob, *kitti.decode_label(label))
        try:
            bev_label = bev.image_to_bev(label, image_path)
        except DataError as error:
            evaluation.without_calibration.append(str(error))
            continue
        bev_road, bev_valid = kitti.decode_label(bev_label)
        if not bev_valid.any():
            evaluation.without_calibration.append(
                f'{bev.calibration_path(image_path)} maps none of the evaluated pixels of {label_paths[image_path]} '
                "into the bird's-eye-view grid: check that it is this image's calibration.")
            continue
        bev_road_prob = bev.image_to_bev(kitti.result_image(road_prob), image_path) / 255
        evaluation.bev[category] += count_road_pixels(bev_road_prob, bev_road, bev_valid)
        if category not in evaluation.bev_examples:
            evaluation.bev_examples[category] = (bev.image_to_bev(image, image_path), bev_road_prob, bev_label)
    return evaluation


def score_road(counts_by_category):
    """{'overall': metrics, 'um': ..., 'umm': ..., 'uu': ...} (road_metrics) of one space's counts per category.

    The overall numbers come from the pixel counts summed over all images, not from a mean of the
    categories' numbers; a category without a labelled road pixel (or without images) is left out. Raises
    DataError when no image has one: there is nothing to score.
    """
    overall = sum(counts_by_category.values(), RoadCounts())
    if not overall.positives:
        raise DataError(f'the labels of the {overall.images} images scored hold no evaluated road pixel (magenta, '
                        'red > 0 and blue > 0) in this space, so there is no road to score: give labelled images '
                        'that show road.')
    scores = {'overall': road_metrics(overall)}
    scores.update({category: road_metrics(counts) for category, counts in counts_by_category.items()
                   if counts.positives})
    return scores


def score_evaluation(evaluation):
    """score_road of the perspective counts, with score_road of the BEV counts under 'bev' (None without a road pixel).

    Raises DataError when the perspective counts hold no road pixel (score_road).
    """
    bev_positives = sum(counts.positives for counts in evaluation.bev.values())
    return {**score_road(evaluation.perspective), 'bev': score_road(evaluation.bev) if bev_positives else None}


def format_scores(scores, row_names=None):
    """A text table of score_road's results: one row per category, the KITTI road measures in percent.

    row_names maps score_road's keys to the names printed (default: the keys).
    """
    row_names = row_names or {}
    lines = [f"{'':12}" + ''.join(f'{column:>8}' for column in TABLE_COLUMNS) + f"{'thresh':>8}{'images':>8}"]
    for name, measures in scores.items():
        lines.append(f'{row_names.get(name, name):12}' + ''.join(f'{100 * measures[column]:8.2f}'
                                                                 for column in TABLE_COLUMNS)
                     + f"{measures['threshold']:8.3f}{measures['images']:8d}")
    return '\n'.join(lines)


def format_evaluation(scores, without_calibration=()):
    """Both tables of score_evaluation's scores, titled: perspective, then BEV with the leaderboard's row names."""
    perspective = {name: measures for name, measures in scores.items() if name != 'bev'}
    text = 'Perspective (the image as the camera sees it):\n' + format_scores(perspective)
    text += "\nBird's-eye view (the benchmark's space; compare with the leaderboard):\n"
    text += format_scores(scores['bev'], BEV_ROW_NAMES) if scores['bev'] else '  no image with road is scored in BEV'
    if without_calibration:
        text += (f"\n{len(without_calibration)} images are left out of the bird's-eye view (its tables count the "
                 'images scored):\n' + '\n'.join(f'  - {problem}' for problem in without_calibration))
    return text
