"""Tests of fcn8s/cityscapes/metric.py: a hand-made case, and equality with cityscapesScripts' own evaluator."""
import copy
import math

import numpy as np
import pytest
from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as evaluator
from cityscapesscripts.helpers.labels import labels as label_table
from PIL import Image

from fcn8s import cityscapes
from fcn8s.cityscapes.metric import ClassCounts, class_scores, confusion_matrix, count_classes, format_class_scores
from fcn8s.cityscapes.synthetic import synthetic_street

CLASS_NAMES, CLASS_CATEGORY, CATEGORY_NAMES = ('a', 'b', 'c'), np.array([0, 0, 1]), ('ab', 'c')
TRUTH = np.array([[0, 0, 1, 1], [2, 2, 255, 0]], np.uint8)
PREDICTED = np.array([[0, 1, 1, 1], [2, 0, 2, 2]], np.uint8)


def test_confusion_matrix_and_scores_of_a_hand_made_case():
    # (truth, prediction) of the 7 scored pixels: (0,0) (0,1) (1,1) (1,1) (2,2) (2,0) (0,2); (255,2) is ignored.
    confusion = confusion_matrix(PREDICTED, TRUTH, 3)
    assert confusion.dtype == np.int64
    np.testing.assert_array_equal(confusion, [[1, 1, 1], [0, 2, 0], [1, 0, 1]])
    scores = class_scores(count_classes(PREDICTED, TRUTH, 3), CLASS_NAMES, CLASS_CATEGORY, CATEGORY_NAMES)
    # IoU = TP / (row + column - TP): a 1 / (3 + 2 - 1), b 2 / (2 + 3 - 2), c 1 / (2 + 2 - 1).
    assert scores['classes'] == pytest.approx({'a': 1 / 4, 'b': 2 / 3, 'c': 1 / 3})
    assert scores['mIoU'] == pytest.approx((1 / 4 + 2 / 3 + 1 / 3) / 3)
    # Categories ab = {a, b}, c = {c}: the category confusion is [[4, 1], [1, 1]], so ab 4 / (5 + 5 - 4), c 1 / 3.
    assert scores['categories'] == pytest.approx({'ab': 4 / 6, 'c': 1 / 3})
    assert scores['category_mIoU'] == pytest.approx((4 / 6 + 1 / 3) / 2)
    assert scores['pixel_accuracy'] == pytest.approx(4 / 7)
    assert scores['images'] == 1


def test_a_class_without_truth_or_prediction_has_no_iou_and_is_left_out_of_the_mean():
    truth, predicted = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])  # c predicted but never true, d neither
    scores = class_scores(count_classes(predicted, truth, 4), ('a', 'b', 'c', 'd'), np.array([0, 0, 1, 1]),
                          CATEGORY_NAMES)
    assert scores['classes'] == {'a': 0.5, 'b': 1.0, 'c': 0.0, 'd': None}
    assert scores['mIoU'] == pytest.approx(1.5 / 3)
    assert scores['categories'] == {'ab': 0.75, 'c': 0.0}
    empty = class_scores(ClassCounts.zeros(4), ('a', 'b', 'c', 'd'), np.array([0, 0, 1, 1]), CATEGORY_NAMES)
    assert empty['mIoU'] is empty['category_mIoU'] is empty['pixel_accuracy'] is None and empty['images'] == 0


def test_counts_add_up_over_images():
    counts = ClassCounts.zeros(3) + count_classes(PREDICTED, TRUTH, 3) + count_classes(TRUTH[:, :2], TRUTH[:, :2], 3)
    np.testing.assert_array_equal(counts.confusion, [[3, 1, 1], [0, 2, 0], [1, 0, 3]])
    assert counts.images == 2


def test_confusion_matrix_refuses_other_shapes_and_ids_that_are_no_class():
    with pytest.raises(ValueError, match='differ in shape'):
        confusion_matrix(PREDICTED[:, :3], TRUTH, 3)
    with pytest.raises(ValueError, match='predicted ids run from 0 to 255'):
        confusion_matrix(np.where(TRUTH == 0, 255, PREDICTED).astype(np.uint8), TRUTH, 3)


def test_format_class_scores():
    scores = class_scores(count_classes(np.array([0, 1]), np.array([0, 1]), 3), CLASS_NAMES, CLASS_CATEGORY,
                          CATEGORY_NAMES)
    assert format_class_scores(scores).splitlines() == [
        'class               IoU', 'a                100.00', 'b                100.00', 'c                     -',
        'category            IoU', 'ab               100.00', 'c                     -',
        'mIoU             100.00  (2 of 3 classes)', 'category mIoU    100.00',
        'pixel accuracy   100.00  (images: 1)']


def test_scores_equal_cityscapes_evaluator_on_synthetic_predictions(tmp_path):
    """Label-id ground truth and predictions of 4 small synthetic scenes, scored by both; every number equal.

    The truth holds ignored ids (0 unlabeled, 1 ego vehicle, 9 parking) and rider (25), which the scenes lack;
    a third of the predictions are random classes among train ids 0..13 at any pixel, so classes 14..18 have
    neither truth nor prediction (NaN), and some have predictions but no truth (IoU 0).
    """
    rng = np.random.default_rng(11)
    counts = ClassCounts.zeros(cityscapes.NUM_CLASSES)
    truth_paths, prediction_paths = [], []
    for index in range(4):
        _, label_ids = synthetic_street(np.random.default_rng(index), (48, 96))
        label_ids = label_ids.copy()
        label_ids[:6, :10] = (9, 25)[index % 2]
        truth = cityscapes.train_ids_of(label_ids)
        predicted = np.where(rng.random(truth.shape) < 1 / 3, rng.integers(0, 14, truth.shape),
                             np.where(truth == 255, 0, truth)).astype(np.uint8)
        counts += count_classes(predicted, truth, cityscapes.NUM_CLASSES)
        frame_id = f'lindau_{index:06d}_000019'
        truth_paths.append(str(tmp_path / cityscapes.label_name(frame_id)))
        prediction_paths.append(str(tmp_path / cityscapes.submission_name(cityscapes.image_name(frame_id))))
        Image.fromarray(label_ids).save(truth_paths[-1])
        Image.fromarray(cityscapes.label_id_mask(predicted)).save(prediction_paths[-1])
    ours = class_scores(counts, cityscapes.CLASS_NAMES, cityscapes.CLASS_CATEGORY, cityscapes.CATEGORY_NAMES)

    args = copy.copy(evaluator.args)  # the module's settings, without changing them for others
    args.quiet, args.JSONOutput, args.evalInstLevelScore, args.evalPixelAccuracy = True, False, False, False
    theirs = evaluator.evaluateImgLists(prediction_paths, truth_paths, args)

    their_confusion = np.array(theirs['confMatrix'], np.int64)  # [34, 34] over label ids
    label_ids = cityscapes.TRAIN_TO_LABEL_ID
    np.testing.assert_array_equal(their_confusion[np.ix_(label_ids, label_ids)], counts.confusion)
    for kind, names, their_kind in (('classes', cityscapes.CLASS_NAMES, 'classScores'),
                                    ('categories', cityscapes.CATEGORY_NAMES, 'categoryScores')):
        for name in names:
            their_iou = theirs[their_kind][name]
            assert (ours[kind][name] is None) if math.isnan(their_iou) else ours[kind][name] == their_iou, name
    assert sum(iou is None for iou in ours['classes'].values()) == 5
    assert 0.0 in ours['classes'].values()
    assert ours['mIoU'] == theirs['averageScoreClasses']
    assert ours['category_mIoU'] == theirs['averageScoreCategories']
    scored_ids = [label.id for label in label_table if label.id >= 0 and not label.ignoreInEval]
    scored_rows = their_confusion[scored_ids]
    assert ours['pixel_accuracy'] == scored_rows[:, scored_ids].trace() / scored_rows.sum()
