"""KITTI Road's results as pictures: the road painted on its image, and the overlays and masks that infer writes."""
import os

import numpy as np
from tqdm import tqdm

from fcn8s.images import OVERLAY_ALPHA, predict_image_files, result_stems, save_png

OVERLAY_COLOUR = (0, 255, 0)
ROAD_THRESHOLD = 0.5  # a pixel is painted, and masked, as road when its road probability is above this


def paint_road(image, road_prob, threshold=ROAD_THRESHOLD):
    """Overlay: image [h, w, 3] uint8 with pixels of road_prob [h, w] > threshold tinted translucent green."""
    road = (road_prob > threshold)[..., None]
    tinted = image * (1 - OVERLAY_ALPHA) + np.array(OVERLAY_COLOUR) * OVERLAY_ALPHA
    return np.where(road, tinted, image).round().astype(np.uint8)


def save_road_images(predict, image_paths, output_dir, masks=False, batch_size=8):
    """Write each image's road prediction, at the image's own size, under output_dir; returns the paths written.

    overlays/<name>.png, the image with its road painted (paint_road), and with masks also
    masks/<name>.png, grayscale 255 on road (probability > ROAD_THRESHOLD) and 0 elsewhere; <name> is
    the image's file name without its extension. Raises ValueError before predicting anything when two
    images would write one file (result_stems).
    """
    result_names = [stem + '.png' for stem in result_stems(image_paths)]
    written_paths = []
    predictions = predict_image_files(predict, image_paths, batch_size)
    for result_name, (_, image, road_prob) in tqdm(zip(result_names, predictions), total=len(image_paths),
                                                   desc='Predicting road', unit='image'):
        pictures = {os.path.join('overlays', result_name): paint_road(image, road_prob)}
        if masks:
            pictures[os.path.join('masks', result_name)] = np.where(road_prob > ROAD_THRESHOLD, 255, 0).astype(np.uint8)
        for relative_path, picture in pictures.items():
            written_path = os.path.join(output_dir, relative_path)
            save_png(picture, written_path)
            written_paths.append(written_path)
    return written_paths
