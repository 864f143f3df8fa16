"""What an exported model takes and gives, without TensorFlow: its tensors' names, and predict_by_size, which feeds
a predictor images of any sizes one size at a time.

The SavedModel (fcn8s.predict.export_model) and the LiteRT file (fcn8s.litert) share these names, so that the
car's predictor (fcn8s.litert) and the datasets (fcn8s.datasets) name outputs without importing TensorFlow.
"""
import itertools
import os

import numpy as np

# The exported model (runs/<timestamp>/model): a SavedModel whose signature maps SERVING_INPUT, float32 RGB 0..255
# [batch, height, width, 3], to ROAD_PROB_OUTPUT, the road probability [batch, height, width].
SERVING_TAG = 'serve'
SERVING_SIGNATURE = 'serving_default'
SERVING_INPUT = 'images'
ROAD_PROB_OUTPUT = 'road_prob'
# Outputs of every exported model, whatever its classes: the probability of each class [batch, height, width,
# num_classes] and the most probable class [batch, height, width] int32.
CLASS_PROB_OUTPUT = 'class_prob'
CLASS_ID_OUTPUT = 'class_id'
MODEL_DATASET_FILE = os.path.join('assets.extra', 'dataset.json')  # {"dataset": its name}, beside the SavedModel
NETWORK_SCOPE = 'fcn8s'  # the name scope of the exported model's network (VGG16 and decoder), between its resizes


def predict_by_size(images, predict_batch):
    """[h, w] float32 road probability of each of a list of [h, w, 3] uint8 images of any sizes.

    predict_batch maps a batch of one size, [b, h, w, 3] float32 RGB 0..255, to [b, h, w] road
    probabilities; each run of consecutive images of one size goes through it as one batch.
    """
    road_probs = []
    for _, same_size in itertools.groupby(images, key=lambda image: image.shape):
        road_probs.extend(predict_batch(np.stack(list(same_size)).astype(np.float32)))
    return road_probs
