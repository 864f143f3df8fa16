"""LiteRT (TFLite) on the car: what a run's .tflite file (int8, fp16 or fp32) holds, and its predictor, without
TensorFlow.

The file holds the network alone, at the run's training size (height, width): images [batch, height, width, 3]
float32 RGB 0..255 in; out, road_prob [batch, height, width] float32 in 0..1 (KITTI Road), or class_prob
[batch, height, width, num_classes] float32 and class_id [batch, height, width] int32 (Cityscapes). Images are
resized outside the file (Pillow, bilinear, as training resizes them): LiteRT has no op for the SavedModel's
antialiased resize (ScaleAndTranslate). Its metadata entry 'fcn8s' records what it is (read_metadata).
The predictor runs it with ai_edge_litert's interpreter. This module imports numpy, Pillow, ai_edge_litert, the
standard library and fcn8s modules of those alone (a test checks it): the conversion, which needs TensorFlow, is
fcn8s.litert_export.
"""
import json
import mmap
import os
import struct

import numpy as np
from ai_edge_litert import schema_py_generated as litert_schema
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from fcn8s.errors import ModelError, SettingError
from fcn8s.model_io import CLASS_PROB_OUTPUT, ROAD_PROB_OUTPUT, predict_by_size

TFLITE_FILE = 'model.tflite'  # what `export` writes into the run folder
TFLITE_IDENTIFIER = b'TFL3'  # bytes 4..8 of every TFLite flatbuffer
METADATA_NAME = 'fcn8s'  # the metadata entry that makes a .tflite file one of this project's
METADATA_VERSION = 1


def is_tflite_path(model_path):
    """Whether --model names a LiteRT file (a .tflite name, or any file) rather than a SavedModel folder."""
    return model_path.lower().endswith('.tflite') or os.path.isfile(model_path)


def read_metadata(tflite_path):
    """The metadata dict that litert_export.export_tflite wrote into tflite_path, read without TensorFlow.

    Raises SettingError when tflite_path is missing or a folder, ModelError saying what is wrong when it is not a
    TFLite file, or a TFLite file that this project did not export.
    """
    advice = 'Export one with `python main.py export --run runs/<timestamp>` (it writes the run\'s model.tflite).'
    if os.path.isdir(tflite_path):
        raise SettingError(f'{tflite_path} is a folder, not a .tflite file. Give the file itself, or for a '
                           f'SavedModel folder a name that does not end in .tflite. {advice}')
    try:
        with open(tflite_path, 'rb') as file:
            header = file.read(8)
            if len(header) < 8 or header[4:8] != TFLITE_IDENTIFIER:
                raise ModelError(f'{tflite_path} is not a TFLite model: a .tflite file has '
                                 f'"{TFLITE_IDENTIFIER.decode()}" in its bytes 4 to 8, this one has {header[4:8]!r}. '
                                 f'{advice}')
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as content:
                model = litert_schema.Model.GetRootAs(content, 0)
                entries = {model.Metadata(index).Name().decode(): model.Metadata(index).Buffer()
                           for index in range(model.MetadataLength())}
                if METADATA_NAME not in entries:
                    raise ModelError(f'{tflite_path} is a TFLite model, but not one that this project exported: it '
                                     f'has no "{METADATA_NAME}" metadata (its metadata: {sorted(entries) or "none"}). '
                                     f'{advice}')
                metadata = json.loads(model.Buffers(entries[METADATA_NAME]).DataAsNumpy().tobytes())
    except FileNotFoundError as error:
        raise SettingError(f'{tflite_path} does not exist. {advice}') from error
    except (OSError, struct.error, IndexError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f'cannot read {tflite_path} as a TFLite model ({error}): it is damaged. {advice}') from error
    usable = isinstance(metadata, dict) and metadata.get('version') == METADATA_VERSION
    if not usable or not isinstance(metadata.get('dataset'), str):
        raise ModelError(f'{tflite_path} has "{METADATA_NAME}" metadata this version cannot use: {metadata}; '
                         f'expected version {METADATA_VERSION} and the name of the dataset it learned. {advice}')
    return metadata


def open_interpreter(tflite_path, num_threads=None):
    """(ai_edge_litert Interpreter of tflite_path, its metadata), tensors allocated; num_threads default: all cores."""
    metadata = read_metadata(tflite_path)
    try:
        interpreter = Interpreter(model_path=tflite_path, num_threads=num_threads or os.cpu_count())
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as error:
        raise ModelError(f'LiteRT cannot load {tflite_path} ({error}): export it again.') from error
    return interpreter, metadata


def run_network(interpreter, network_images):
    """{output name: [b, ...] array} of the interpreter on network_images [b, height, width, 3] float32 RGB 0..255.

    The input is resized to the batch size first when it changes.
    """
    image_input, = interpreter.get_input_details()
    if tuple(image_input['shape']) != network_images.shape:
        interpreter.resize_tensor_input(image_input['index'], network_images.shape)
        interpreter.allocate_tensors()
    interpreter.set_tensor(image_input['index'], network_images)
    interpreter.invoke()
    return {details['name']: interpreter.get_tensor(details['index']) for details in interpreter.get_output_details()}


def resized(values, size):
    """[h, w] float32 values resized bilinearly to size (height, width), by Pillow."""
    return np.asarray(Image.fromarray(values).resize((size[1], size[0]), Image.BILINEAR))


def tflite_predictor(tflite_path, output=ROAD_PROB_OUTPUT, num_threads=None):
    """predict(images) -> road probabilities (output 'road_prob') or class ids ('class_id'), from a LiteRT file.

    Like predict.saved_model_predictor: a list of [h, w, 3] uint8 images of any sizes in, [h, w] float32
    road probabilities or int32 class ids out. Each image is resized to the file's input size (Pillow
    bilinear, as training resizes), and the road probability, or each class probability before the most
    probable class is taken, resized back. Raises ModelError (read_metadata) for a file that is not a model
    of this project, or one without the output asked for.
    """
    interpreter, metadata = open_interpreter(tflite_path, num_threads)
    image_shape = (metadata['image_height'], metadata['image_width'])
    wanted = ROAD_PROB_OUTPUT if output == ROAD_PROB_OUTPUT else CLASS_PROB_OUTPUT
    if wanted not in metadata['outputs']:
        raise ModelError(f'{tflite_path} is a {metadata["dataset"]} model with the outputs {metadata["outputs"]}, '
                         f'not {wanted}.')

    def predict_batch(batch):
        """[b, h, w] road probabilities or class ids of [b, h, w, 3] float32 RGB 0..255 images of one size."""
        network_images = np.stack([np.asarray(Image.fromarray(image.astype(np.uint8)).resize(
            (image_shape[1], image_shape[0]), Image.BILINEAR), np.float32) for image in batch])
        predicted = run_network(interpreter, network_images)[wanted]
        if output == ROAD_PROB_OUTPUT:
            return np.stack([resized(road_prob, batch.shape[1:3]) for road_prob in predicted])
        return np.stack([np.argmax(np.stack([resized(class_prob[..., index], batch.shape[1:3])
                                             for index in range(class_prob.shape[-1])], axis=-1), axis=-1)
                         for class_prob in predicted]).astype(np.int32)

    return lambda images: predict_by_size(images, predict_batch)
