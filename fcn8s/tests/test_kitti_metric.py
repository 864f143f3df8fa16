"""Tests of fcn8s/kitti/metric.py: the KITTI road metric on hand-made cases, in perspective and in BEV."""
import os

import numpy as np
import pytest
from PIL import Image

from fcn8s.errors import DataError
from fcn8s.kitti import KITTI_CATEGORIES
from fcn8s.kitti.bev import write_calibration
from fcn8s.kitti.metric import (RoadCounts, count_road_pixels, evaluate_road, format_evaluation, road_metrics,
                                score_evaluation, score_road)


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


def test_bev_scores_of_a_hand_made_pair_equal_the_hand_computed_values(tmp_path):
    # A camera of focal length 100 px at 1.65 m over the road, principal point (201, 10), 1-based: a road point
    # (X, Z) lands on u = 100 X / Z + 201, v = 165 / Z + 10. On a 400x40 image every BEV cell sees the image
    # (u in 34..368, v in 13.6..37.5). The label is road on image rows 30..39 (1-based v >= 31), so a cell is road
    # when 165 / Z >= 21, Z <= 7.857 m: the cell rows centred at Z = 46 - 0.05 (i + 0.5) <= 7.857, i >= 763, that
    # is 37 of the 800 rows. A constant road probability of 0.6 paints everything: recall 1, precision 37 / 800.
    training = tmp_path / 'training'
    for folder in ('image_2', 'gt_image_2', 'calib'):
        (training / folder).mkdir(parents=True)
    label = np.zeros((40, 400, 3), np.uint8)
    label[..., 0] = 255
    label[30:, :, 2] = 255
    Image.fromarray(np.zeros((40, 400, 3), np.uint8)).save(training / 'image_2' / 'um_000000.png')
    Image.fromarray(label).save(training / 'gt_image_2' / 'um_road_000000.png')
    camera = np.array([[100.0, 0, 201, 0], [0, 100, 10, 0], [0, 0, 1, 0]])
    write_calibration(str(training / 'calib' / 'um_000000.txt'), {
        'P2': camera, 'R0_rect': np.eye(3), 'Tr_cam_to_road': np.hstack([np.eye(3), [[0], [-1.65], [0]]])})
    evaluation = evaluate_road(lambda images: [np.full(image.shape[:2], 0.6) for image in images],
                               [(str(training / 'image_2' / 'um_000000.png'), str(training / 'gt_image_2' / 'um_road_000000.png'))])
    bev_counts = evaluation.bev['um']
    assert (bev_counts.positives, bev_counts.negatives) == (37 * 400, 763 * 400)
    scores = score_evaluation(evaluation)
    bev_precision = 37 / 800
    assert scores['bev']['um']['MaxF'] == pytest.approx(2 * bev_precision / (1 + bev_precision))
    assert scores['bev']['overall']['AP'] == pytest.approx(bev_precision)
    assert scores['bev']['overall']['IoU'] == pytest.approx(bev_precision)
    assert scores['bev']['overall']['threshold'] == 0  # F is the same up to 153 / 255: the first is taken
    assert scores['overall']['MaxF'] == pytest.approx(2 * 0.25 / 1.25)  # perspective: 10 of 40 rows are road
    assert evaluation.without_calibration == []
    for folder, name in (('image_2', 'um_000000.png'), ('gt_image_2', 'um_road_000000.png')):
        os.rename(training / folder / name, training / folder / name.replace('000000', '000001'))
    evaluation = evaluate_road(lambda images: [np.full(image.shape[:2], 0.6) for image in images],
                               [(str(training / 'image_2' / 'um_000001.png'), str(training / 'gt_image_2' / 'um_road_000001.png'))])
    assert score_evaluation(evaluation)['bev'] is None and 'um_000001.txt does not exist' in evaluation.without_calibration[0]


def test_images_whose_calibration_cannot_make_a_bev_are_left_out_of_it_one_line_each(tmp_path):
    # The hand-made pair's camera, for um_000000 (scored) and three broken ones: P2 with a NaN, a singular
    # Tr_cam_to_road, and a good calibration of a label whose only valid (red) rows, 0..9, no cell sees (v >= 13.6).
    training = tmp_path / 'training'
    for folder in ('image_2', 'gt_image_2', 'calib'):
        (training / folder).mkdir(parents=True)
    camera = np.array([[100.0, 0, 201, 0], [0, 100, 10, 0], [0, 0, 1, 0]])
    level = {'P2': camera, 'R0_rect': np.eye(3), 'Tr_cam_to_road': np.hstack([np.eye(3), [[0], [-1.65], [0]]])}
    calibrations = {'um_000000': level, 'um_000001': {**level, 'P2': np.where(camera == 100, np.nan, camera)},
                    'umm_000002': {**level, 'Tr_cam_to_road': np.zeros((3, 4))}, 'uu_000003': level}
    pairs = []
    for name, calibration in calibrations.items():
        label = np.zeros((40, 400, 3), np.uint8)
        label[:10 if name == 'uu_000003' else 40, :, 0] = 255
        label[5 if name == 'uu_000003' else 30:, :, 2] = 255  # uu_000003: road rows 5..9 in perspective
        category, number = name.split('_')
        pairs.append((str(training / 'image_2' / f'{name}.png'),
                      str(training / 'gt_image_2' / f'{category}_road_{number}.png')))
        Image.fromarray(np.zeros((40, 400, 3), np.uint8)).save(pairs[-1][0])
        Image.fromarray(label).save(pairs[-1][1])
        write_calibration(str(training / 'calib' / f'{name}.txt'), calibration)
    evaluation = evaluate_road(lambda images: [np.full(image.shape[:2], 0.6) for image in images], pairs)
    assert [evaluation.perspective[category].images for category in KITTI_CATEGORIES] == [2, 1, 1]
    assert [evaluation.bev[category].images for category in KITTI_CATEGORIES] == [1, 0, 0]
    assert (evaluation.bev['um'].positives, evaluation.bev['um'].negatives) == (37 * 400, 763 * 400)
    scores = score_evaluation(evaluation)
    assert scores['bev']['overall']['images'] == 1 and sorted(scores['bev']) == ['overall', 'um']
    text = format_evaluation(scores, evaluation.without_calibration).splitlines()
    calib = training / 'calib'
    assert text[-4:] == [
        "3 images are left out of the bird's-eye view (its tables count the images scored):",
        f'  - {calib / "um_000001.txt"}: its P2 line holds nan, not a finite number: expected "P2:" and 12 numbers '
        "(a 3x4 matrix, row by row). KITTI's data_road.zip holds each split's calib/ folder beside image_2/: unpack it "
        'there, or replace this file with its copy from the zip.',
        text[-2], f'  - {calib / "uu_000003.txt"} maps none of the evaluated pixels of {pairs[3][1]} into the '
                  "bird's-eye-view grid: check that it is this image's calibration."]
    assert text[-2].startswith(f'  - {calib / "umm_000002.txt"}: its Tr_cam_to_road cannot be inverted')


def test_a_category_without_labelled_road_is_left_out_and_no_road_at_all_is_a_data_error():
    road_prob, road, valid = hand_made_case()
    counts = {'um': count_road_pixels(road_prob, road, valid), 'umm': count_road_pixels(road_prob, road & False, valid),
              'uu': RoadCounts()}
    scores = score_road(counts)
    assert sorted(scores) == ['overall', 'um'] and scores['overall']['images'] == 2
    assert scores['overall']['MaxF'] == pytest.approx(road_metrics(counts['um'] + counts['umm'])['MaxF'])
    with pytest.raises(DataError, match='^the labels of the 1 images scored hold no evaluated road pixel'):
        score_road({'umm': counts['umm']})
