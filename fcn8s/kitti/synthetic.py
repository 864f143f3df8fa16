"""Synthetic road scenes in KITTI Road's exact layout: the offline stand-in for the real dataset."""
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from fcn8s import kitti
from fcn8s.files import ensure_made, missing_parts
from fcn8s.kitti import (BACKGROUND_COLOUR, INVALID_COLOUR, KITTI_CATEGORIES, KITTI_FOLDERS, KITTI_SIZES, ROAD_COLOUR,
                         bev)

CAMERA_FOCAL_PIXELS = 721.5377  # KITTI's
CAMERA_HEIGHT_METRES = 1.65  # above the road, as KITTI's car carries its cameras


def make_synthetic_kitti(road_path, train_per_category=16, test_per_category=4, seed=0):
    """Write a small synthetic dataset in KITTI Road's exact layout under road_path.

    Files: training/image_2/<cat>_0000NN.png, training/gt_image_2/<cat>_road_0000NN.png and
    testing/image_2/<cat>_0000NN.png for cat in um, umm, uu; images of KITTI's real sizes
    (about 1242x375), labels in KITTI's three colours; each image's camera calibration in
    <split>/calib/<cat>_0000NN.txt, in KITTI's text format. Deterministic for a given seed.
    """
    calib_folders = tuple(f'{split}/{bev.CALIB_FOLDER}' for split in ('training', 'testing'))
    folders = {name: os.path.join(road_path, name) for name in KITTI_FOLDERS + calib_folders}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    jobs = [('training', category, index) for category in KITTI_CATEGORIES for index in range(train_per_category)]
    jobs += [('testing', category, index) for category in KITTI_CATEGORIES for index in range(test_per_category)]
    for split, category, index in tqdm(jobs, desc='Synthetic KITTI', unit='image'):
        rng = np.random.default_rng([seed, split == 'testing', KITTI_CATEGORIES.index(category), index])
        image, label, calibration = synthetic_scene(rng, category)
        number = f'{index:06d}'
        image_path = os.path.join(folders[f'{split}/image_2'], kitti.image_name(category, number))
        Image.fromarray(image).save(image_path)
        bev.write_calibration(bev.calibration_path(image_path), calibration)
        if split == 'training':
            Image.fromarray(label).save(os.path.join(folders['training/gt_image_2'], kitti.label_name(category, number)))


def synthetic_scene(rng, category, straight=False):
    """One synthetic road scene: image and KITTI label, both [height, width, 3] uint8, and its calibration.

    A road in perspective bends towards a vanishing point; grass, sky, buildings, cars and tree
    shadows make the task more than a colour threshold. um roads have a dashed centre line, umm
    roads are wider with two lanes, uu roads are unmarked. Half of the scenes have a side road
    that is labelled black (outside the evaluated area), as KITTI does. The calibration
    (synthetic_calibration) is the camera that sees the road as drawn: without its bend, the road is
    straight and of constant width on the ground. straight=True leaves the bend out and draws the rest
    of the scene the same.
    """
    sizes, counts = zip(*KITTI_SIZES)
    width, height = sizes[rng.choice(len(sizes), p=np.array(counts) / sum(counts))]
    horizon = int(height * rng.uniform(0.38, 0.5))
    image = Image.new('RGB', (width, height))
    label = Image.new('RGB', (width, height), BACKGROUND_COLOUR)
    paint, mark = ImageDraw.Draw(image), ImageDraw.Draw(label)

    sky_top, sky_bottom = rng.uniform([90, 120, 170], [140, 170, 230]), rng.uniform([170, 180, 190], [220, 225, 235])
    for y in range(horizon):
        paint.line([(0, y), (width, y)], fill=tuple(int(c) for c in sky_top + (sky_bottom - sky_top) * y / horizon))
    paint.rectangle([0, horizon, width, height], fill=tuple(int(c) for c in rng.uniform([60, 90, 30], [110, 140, 70])))
    for _ in range(rng.integers(4, 9)):
        left = rng.uniform(-50, width)
        top = horizon - rng.uniform(20, horizon * 0.9)
        grey = int(rng.uniform(70, 180))
        paint.rectangle([left, top, left + rng.uniform(60, 220), horizon + 5], fill=(grey, grey, int(grey * 0.95)))

    half_width_scale = {'um': (0.28, 0.4), 'umm': (0.45, 0.6), 'uu': (0.2, 0.3)}[category]
    bottom_half_width = width * rng.uniform(*half_width_scale)
    bottom_centre = width * rng.uniform(0.35, 0.65)
    vanishing_x = width * rng.uniform(0.3, 0.7)
    bend = width * rng.uniform(-0.35, 0.35)
    if straight:
        bend = 0.0  # drawn all the same, so that every later draw, and the scene, is unchanged

    def road_edges(fraction):
        """Left and right road x at `fraction` of the way from the horizon (0) to the bottom (1)."""
        centre = vanishing_x + (bottom_centre - vanishing_x) * fraction + bend * fraction * (1 - fraction) ** 2
        return centre - bottom_half_width * fraction, centre + bottom_half_width * fraction

    fractions = np.linspace(0.03, 1.0, 40)
    rows = horizon + fractions * (height - horizon)
    edges = [road_edges(fraction) for fraction in fractions]
    road_polygon = [(left, y) for (left, _), y in zip(edges, rows)] + [(right, y) for (_, right), y in reversed(list(zip(edges, rows)))]

    if rng.random() < 0.5:
        side_fraction = rng.uniform(0.3, 0.6)
        side_left, side_right = road_edges(side_fraction)
        side_y = horizon + side_fraction * (height - horizon)
        side_depth = (height - horizon) * 0.12 * side_fraction
        to_left = rng.random() < 0.5
        join_x = side_left if to_left else side_right
        far_x = 0 if to_left else width
        side_polygon = [(join_x, side_y - side_depth), (far_x, side_y - side_depth * 1.6),
                        (far_x, side_y + side_depth * 1.6), (join_x, side_y + side_depth)]
        tarmac = int(rng.uniform(70, 120))
        paint.polygon(side_polygon, fill=(tarmac, tarmac, tarmac))
        mark.polygon(side_polygon, fill=INVALID_COLOUR)

    tarmac = rng.uniform(65, 125)
    paint.polygon(road_polygon, fill=(int(tarmac), int(tarmac), int(tarmac * rng.uniform(0.95, 1.05))))
    mark.polygon(road_polygon, fill=ROAD_COLOUR)

    lane_fractions = {'um': (0.5,), 'umm': (1 / 3, 2 / 3), 'uu': ()}[category]
    for lane in lane_fractions:
        for start in np.arange(0.05, 1.0, 0.08):
            stop = min(start + 0.04, 1.0)
            points = []
            for fraction in (start, stop):
                left, right = road_edges(fraction)
                points.append((left + (right - left) * lane, horizon + fraction * (height - horizon)))
            paint.line(points, fill=(235, 235, 235), width=max(1, int(6 * stop)))

    for _ in range(rng.integers(1, 4)):
        fraction = rng.uniform(0.15, 0.7)
        left, right = road_edges(fraction)
        car_width = (right - left) * rng.uniform(0.15, 0.25)
        car_x = rng.uniform(left, right - car_width)
        car_y = horizon + fraction * (height - horizon)
        car_box = [car_x, car_y - car_width * 0.7, car_x + car_width, car_y]
        paint.rectangle(car_box, fill=tuple(int(c) for c in rng.uniform(0, 255, 3)))
        mark.rectangle(car_box, fill=BACKGROUND_COLOUR)

    pixels = np.asarray(image, dtype=np.float32)
    shadow = Image.new('L', (width, height), 0)
    shade = ImageDraw.Draw(shadow)
    for _ in range(rng.integers(2, 6)):
        x, y = rng.uniform(0, width), rng.uniform(horizon, height)
        radius = rng.uniform(30, 120)
        shade.ellipse([x - radius, y - radius * 0.4, x + radius, y + radius * 0.4], fill=int(rng.uniform(80, 150)))
    shadow_depth = np.asarray(shadow.filter(ImageFilter.GaussianBlur(6)), dtype=np.float32)[..., None] / 255
    pixels *= 1 - shadow_depth
    pixels += rng.normal(0, 6, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8), np.asarray(label), synthetic_calibration(width, horizon)


def synthetic_calibration(width, horizon):
    """{key: matrix} in KITTI's calibration layout: a level camera CAMERA_HEIGHT_METRES over a flat road.

    A road point (X, Z) in metres lies at image x = width / 2 + f X / Z, y = horizon + f h / Z, in PIL's
    drawing coordinates (a vertex at (x, y) falls in pixel (int(x), int(y))): synthetic_scene's rows
    horizon + fraction * (height - horizon) lie at depth Z = f h / (fraction * (height - horizon)), and its
    road edges, linear in fraction, are straight lines on the road. The devkit's image coordinates are
    1-based, so the principal point is (width / 2 + 1, horizon + 1). R0_rect is the identity and
    Tr_cam_to_road moves the origin down to the road (road Y = camera Y - h, as KITTI's -1.6 m);
    P0..P3 are this one camera (no stereo baseline) and Tr_velo_to_cam only turns KITTI's lidar axes.
    """
    focal = CAMERA_FOCAL_PIXELS
    camera = np.array([[focal, 0, width / 2 + 1, 0], [0, focal, horizon + 1, 0], [0, 0, 1, 0]])
    return {'P0': camera, 'P1': camera, 'P2': camera, 'P3': camera, 'R0_rect': np.eye(3),
            'Tr_velo_to_cam': np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0]], np.float64),
            'Tr_imu_to_velo': np.hstack([np.eye(3), np.zeros((3, 1))]),
            'Tr_cam_to_road': np.hstack([np.eye(3), [[0], [-CAMERA_HEIGHT_METRES], [0]]])}


def ensure_synthetic_kitti(road_path, train_per_category, test_per_category, seed=0):
    """Make road_path hold make_synthetic_kitti's scenes when it is missing or incomplete; else reuse it as it is.

    files.ensure_made: made whole, never remade because these settings differ from those it was made
    with. A set of an earlier version (without a manifest) is reused when earlier_set_whole, else made again.
    """
    settings = {'train_per_category': train_per_category, 'test_per_category': test_per_category, 'seed': seed}
    return ensure_made(road_path, settings,
                       lambda folder: make_synthetic_kitti(folder, train_per_category, test_per_category, seed),
                       'the synthetic KITTI', reusable=earlier_set_whole)


def earlier_set_whole(road_path):
    """Whether a synthetic KITTI of an earlier version (no manifest) is whole, and so reused: in each split, as many
    calibrations (and training labels) as images, at least one training image. Sets made before the scenes had
    calibrations are not."""
    def file_count(split, folder):
        path = os.path.join(road_path, split, folder)
        return len(os.listdir(path)) if os.path.isdir(path) else -1

    training = {file_count('training', folder) for folder in ('image_2', 'gt_image_2', bev.CALIB_FOLDER)}
    testing = {file_count('testing', folder) for folder in ('image_2', bev.CALIB_FOLDER)}
    return len(training) == len(testing) == 1 and min(training) > 0 and min(testing) >= 0


def synthetic_kitti_to_make(road_path):
    """Whether ensure_synthetic_kitti(road_path, ...) would make the set (it is missing or incomplete)."""
    return bool(missing_parts(road_path, earlier_set_whole))
