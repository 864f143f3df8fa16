"""Synthetic street scenes in Cityscapes' exact layout and label ids: the offline stand-in for the real dataset."""
import os

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from fcn8s import cityscapes
from fcn8s.cityscapes import CITYSCAPES_SHAPE, GT_FINE, LEFT_IMG
from fcn8s.files import ensure_made

SYNTHETIC_COUNTS = {'train': 24, 'val': 6, 'test': 3}  # images per split
SPLIT_CITIES = {'train': ('aachen', 'bremen'), 'val': ('frankfurt', 'munster'), 'test': ('berlin', 'bonn')}
DRAW_SCALE = 2  # scenes are drawn at CITYSCAPES_SHAPE / DRAW_SCALE and written upscaled (nearest): 4x faster
PNG_COMPRESS_LEVEL = 1  # zlib's fastest: a 2048x1024 image takes about 0.1 s to write instead of 0.5 s

# Label ids of the official table that the scenes hold.
UNLABELED, EGO_VEHICLE, ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, PERSON, CAR = 0, 1, 7, 8, 11, 21, 23, 24, 26
# Each class has its own colour range (RGB low, high) and grain (stddev of the pixel noise), so that a random
# encoder's features separate them and the demo's decoder learns them in a few epochs.
CLASS_LOOKS = {
    UNLABELED: ((40, 40, 40), (220, 220, 220), 10),
    EGO_VEHICLE: ((20, 20, 25), (45, 45, 55), 3),
    ROAD: ((85, 85, 90), (115, 115, 120), 4),
    SIDEWALK: ((175, 150, 160), (205, 180, 190), 7),
    BUILDING: ((140, 95, 60), (180, 130, 90), 6),
    VEGETATION: ((40, 110, 20), (80, 150, 45), 22),
    SKY: ((120, 170, 225), (160, 200, 245), 2),
    PERSON: ((190, 20, 30), (235, 60, 60), 8),
    CAR: ((10, 30, 120), (40, 60, 170), 4),
}
UNSHADED = 128  # the shade of pixels painted in their class colour; windows are half as bright, lane dashes twice


def make_synthetic_cityscapes(cityscapes_path, counts=None, seed=0):
    """Write synthetic street scenes in Cityscapes' exact layout under cityscapes_path.

    counts {'train': n, 'val': n, 'test': n} gives the images per split (default SYNTHETIC_COUNTS). Files:
    leftImg8bit/<split>/<city>/<city>_<seq>_000019_leftImg8bit.png, 2048x1024 RGB, and for train and val
    gtFine/<split>/<city>/<city>_<seq>_000019_gtFine_labelIds.png, 8-bit official label ids; two real cities
    per split, alternating. Deterministic for a given seed.
    """
    counts = SYNTHETIC_COUNTS if counts is None else counts
    jobs = [(split, index) for split in cityscapes.SPLITS for index in range(counts.get(split, 0))]
    for split, index in tqdm(jobs, desc='Synthetic Cityscapes', unit='image'):
        rng = np.random.default_rng([seed, cityscapes.SPLITS.index(split), index])
        cities = SPLIT_CITIES[split]
        frame_id = f'{cities[index % len(cities)]}_{index:06d}_000019'
        image, label_ids = synthetic_street(rng, (CITYSCAPES_SHAPE[0] // DRAW_SCALE, CITYSCAPES_SHAPE[1] // DRAW_SCALE))
        files = {LEFT_IMG: (cityscapes.image_name(frame_id), image),
                 GT_FINE: (cityscapes.label_name(frame_id), label_ids)}
        for kind in cityscapes.kinds_of(split):
            file_name, pixels = files[kind]
            folder = os.path.join(cityscapes.split_folder(cityscapes_path, kind, split), cityscapes.city_of(frame_id))
            os.makedirs(folder, exist_ok=True)
            full_size = Image.fromarray(pixels).resize(CITYSCAPES_SHAPE[::-1], Image.NEAREST)
            full_size.save(os.path.join(folder, file_name), compress_level=PNG_COMPRESS_LEVEL)


def synthetic_street(rng, shape):
    """One synthetic street scene of shape (height, width): (image [h, w, 3] uint8 RGB, label ids [h, w] uint8).

    Sky above the horizon; buildings with windows and trees along it; a road with a dashed centre line
    narrowing to a vanishing point between sidewalks; cars on the road and people on the sidewalks; the ego
    vehicle's bonnet at the bottom and a piece of unlabeled clutter (both ignored in training and scoring),
    as in Cityscapes. Each class is painted in its CLASS_LOOKS colour range with its own grain.
    """
    height, width = shape
    label, shade = Image.new('L', (width, height), SKY), Image.new('L', (width, height), UNSHADED)
    draw, draw_shade = ImageDraw.Draw(label), ImageDraw.Draw(shade)
    horizon = height * rng.uniform(0.38, 0.46)
    draw.rectangle([0, horizon, width, height], fill=SIDEWALK)

    for _ in range(rng.integers(5, 9)):
        left, building_width = rng.uniform(-0.1, 1.0) * width, rng.uniform(0.08, 0.22) * width
        top = horizon - rng.uniform(0.12, 0.36) * height
        draw.rectangle([left, top, left + building_width, horizon + 0.02 * height], fill=BUILDING)
        window = 0.012 * height
        for row in np.arange(top + 2 * window, horizon - 2 * window, 3 * window):
            for column in np.arange(left + window, left + building_width - 2 * window, 3 * window):
                draw_shade.rectangle([column, row, column + window, row + 1.4 * window], fill=UNSHADED // 2)
    for _ in range(rng.integers(3, 7)):
        centre_x, radius = rng.uniform(0, 1) * width, rng.uniform(0.07, 0.14) * height
        centre_y = horizon - rng.uniform(0.05, 0.15) * height
        canopy = [centre_x - 1.3 * radius, centre_y - radius, centre_x + 1.3 * radius, centre_y + radius]
        trunk = [centre_x - 0.12 * radius, centre_y, centre_x + 0.12 * radius, horizon + 0.03 * height]
        for drawing, fill in ((draw, VEGETATION), (draw_shade, UNSHADED)):
            drawing.ellipse(canopy, fill=fill)
            drawing.rectangle(trunk, fill=fill)

    vanishing_x = rng.uniform(0.4, 0.6) * width
    bottom_left, bottom_right = rng.uniform(0.02, 0.22) * width, rng.uniform(0.78, 0.98) * width

    def road_edges(fraction):
        """Left and right road x at `fraction` of the way from the horizon (0) to the bottom (1)."""
        return tuple(vanishing_x + (bottom_x - vanishing_x) * fraction for bottom_x in (bottom_left, bottom_right))

    draw.polygon([(vanishing_x - 0.01 * width, horizon), (vanishing_x + 0.01 * width, horizon),
                  (bottom_right, height), (bottom_left, height)], fill=ROAD)
    for start in np.arange(0.05, 1.0, 0.12):
        dash = [(sum(road_edges(fraction)) / 2, horizon + fraction * (height - horizon))
                for fraction in (start, start + 0.06)]
        draw_shade.line(dash, fill=255, width=max(1, int(0.012 * width * start)))

    for _ in range(rng.integers(1, 4)):
        fraction = rng.uniform(0.2, 0.75)
        left, right = road_edges(fraction)
        car_width = (right - left) * rng.uniform(0.25, 0.4)
        car_x, car_bottom = rng.uniform(left, right - car_width), horizon + fraction * (height - horizon)
        body = [car_x, car_bottom - 0.6 * car_width, car_x + car_width, car_bottom]
        draw.rectangle(body, fill=CAR)
        draw_shade.rectangle(body, fill=UNSHADED)
        draw_shade.rectangle([car_x + 0.15 * car_width, car_bottom - 0.55 * car_width, car_x + 0.85 * car_width,
                              car_bottom - 0.38 * car_width], fill=UNSHADED // 2)
    for _ in range(rng.integers(2, 5)):
        fraction = rng.uniform(0.1, 0.7)
        left, right = road_edges(fraction)
        side_x = rng.uniform(0, left) if rng.random() < 0.5 else rng.uniform(right, width)
        foot_y, person_height = horizon + fraction * (height - horizon), (0.12 + 0.35 * fraction) * height
        draw.rectangle([side_x - 0.15 * person_height, foot_y - 0.8 * person_height, side_x + 0.15 * person_height,
                        foot_y], fill=PERSON)
        draw.ellipse([side_x - 0.11 * person_height, foot_y - person_height, side_x + 0.11 * person_height,
                      foot_y - 0.78 * person_height], fill=PERSON)

    clutter_x, clutter_y = rng.uniform(0.05, 0.95) * width, horizon + rng.uniform(0.05, 0.3) * height
    clutter_size = rng.uniform(0.02, 0.05) * height
    draw.polygon([(clutter_x + clutter_size * np.cos(angle), clutter_y + clutter_size * np.sin(angle))
                  for angle in np.sort(rng.uniform(0, 2 * np.pi, 6))], fill=UNLABELED)
    bonnet_top = height * rng.uniform(0.86, 0.92)
    bonnet = [-0.2 * width, bonnet_top, 1.2 * width, bonnet_top + 2 * (height - bonnet_top)]
    draw.ellipse(bonnet, fill=EGO_VEHICLE)
    draw_shade.ellipse(bonnet, fill=UNSHADED)
    label_ids = np.asarray(label)
    return paint_scene(rng, label_ids, np.asarray(shade)), label_ids


def paint_scene(rng, label_ids, shade):
    """[h, w, 3] uint8 RGB image of a scene: label_ids [h, w] uint8, shade [h, w] uint8 brightness (UNSHADED = x1).

    Each class takes one colour from its CLASS_LOOKS range per scene, times the shade, plus its grain of
    Gaussian noise per pixel.
    """
    colours, grains = np.zeros((256, 3), np.float32), np.zeros(256, np.float32)
    for label_id, (low, high, grain) in CLASS_LOOKS.items():
        colours[label_id], grains[label_id] = rng.uniform(low, high), grain
    noise = rng.normal(0, 1, label_ids.shape + (1,)).astype(np.float32)
    pixels = colours[label_ids] * (shade[..., None] / np.float32(UNSHADED)) + noise * grains[label_ids, None]
    return np.clip(pixels, 0, 255).astype(np.uint8)


def ensure_synthetic_cityscapes(cityscapes_path, counts=None, seed=0):
    """Make cityscapes_path hold make_synthetic_cityscapes's scenes when it is missing or incomplete; else reuse it.

    files.ensure_made: made whole, never remade because counts or seed differ from those it was made with.
    """
    counts = SYNTHETIC_COUNTS if counts is None else counts
    return ensure_made(cityscapes_path, {'counts': counts, 'seed': seed},
                       lambda folder: make_synthetic_cityscapes(folder, counts, seed), 'the synthetic Cityscapes')
