"""Tests of fcn8s/metric.py: the KITTI road metric on hand-made cases."""
import numpy as np
import pytest

from fcn8s.kitti import KITTI_CATEGORIES
from fcn8s.metric import count_road_pixels, road_metrics, score_road


def hand_made_case():
    """4x4 probabilities and labels: road A=0.9, B=0.6, C=0.3; other D=0.7, E=0.2; ten others at 0; one invalid."""
    road_prob = np.zeros((4, 4))
    road = np.zeros((4, 4), bool)
    valid = np.ones((4, 4), bool)
    road_prob[0, :3], road[0, :3] = (0.9, 0.6, 0.3), True
    road_prob[1, :2] = (0.7, 0.2)
    road_prob[3, 3], road[3, 3], valid[3, 3] = 1.0, True, False
    return road_prob, road, valid


def test_metric_on_a_hand_made_case():
    # Threshold sweep (road when p >= t): t in (0.2, 0.3] gives TP 3, FP 1, FN 0: P 3/4, R 1, F 6/7, the maximum.
    # 11-point AP: recall levels 0 .. 0.3 see precision 1 (A alone), levels 0.4 .. 1 see at best 3/4.
    # IoU at p > 0.5: A and B hit, D is a false positive, C is missed: 2 / 4.
    metrics = road_metrics(count_road_pixels(*hand_made_case()))
    assert metrics['MaxF'] == pytest.approx(6 / 7)
    assert metrics['PRE'] == pytest.approx(3 / 4) and metrics['REC'] == pytest.approx(1.0)
    assert metrics['FPR'] == pytest.approx(1 / 12) and metrics['FNR'] == pytest.approx(0.0)
    assert metrics['threshold'] == pytest.approx(52 / 255)
    assert metrics['AP'] == pytest.approx((4 * 1.0 + 7 * 0.75) / 11)
    assert metrics['IoU'] == pytest.approx(0.5)
    assert metrics['images'] == 1


def test_perfect_prediction_scores_one():
    road_prob, road, valid = hand_made_case()
    metrics = road_metrics(count_road_pixels(road.astype(float), road, valid))
    assert metrics['MaxF'] == pytest.approx(1.0) and metrics['IoU'] == 1.0 and metrics['AP'] == pytest.approx(1.0)


def test_invalid_pixels_change_nothing():
    road_prob, road, valid = hand_made_case()
    reference = road_metrics(count_road_pixels(road_prob, road, valid))
    for invalid_prob, invalid_road in ((0.0, False), (0.55, True), (1.0, False)):
        road_prob[3, 3], road[3, 3] = invalid_prob, invalid_road
        assert road_metrics(count_road_pixels(road_prob, road, valid)) == reference


def test_categories_combine_by_pixel_counts():
    rng = np.random.default_rng(0)
    counts = {}
    for category, size in (('um', (30, 40)), ('umm', (10, 12)), ('uu', (20, 20))):
        road = rng.random(size) < 0.4
        road_prob = np.clip(road * 0.3 + rng.random(size) * 0.7, 0, 1)
        counts[category] = count_road_pixels(road_prob, road, np.ones(size, bool))
    scores = score_road(counts)
    summed = counts['um'] + counts['umm'] + counts['uu']
    assert summed.positives == sum(count.positives for count in counts.values())
    assert scores['overall'] == road_metrics(summed)
    assert scores['overall']['images'] == 3
    mean_of_means = np.mean([scores[category]['MaxF'] for category in KITTI_CATEGORIES])
    assert scores['overall']['MaxF'] != pytest.approx(mean_of_means, abs=1e-4)
