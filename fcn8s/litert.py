"""LiteRT (TFLite) for the car: a run's model as a .tflite file (int8, fp16 or fp32), and its predictor.

The file holds the network alone, at the run's training size (height, width): images [batch, height, width, 3]
float32 RGB 0..255 in; out, road_prob [batch, height, width] float32 in 0..1 (KITTI Road), or class_prob
[batch, height, width, num_classes] float32 and class_id [batch, height, width] int32 (Cityscapes). Images are
resized outside the file (Pillow, bilinear, as training resizes them): LiteRT has no op for the SavedModel's
antialiased resize (ScaleAndTranslate). Its metadata entry 'fcn8s' records what it is (read_metadata).
The predictor runs it with ai_edge_litert's interpreter, which needs no TensorFlow.
"""
import json
import mmap
import os
import struct

import numpy as np
from ai_edge_litert import schema_py_generated as litert_schema
from ai_edge_litert.interpreter import Interpreter
from PIL import Image
from tensorflow.lite.python import schema_py_generated as tflite_schema
from tensorflow.lite.tools import flatbuffer_utils
from tqdm import tqdm

from fcn8s.datasets import DATASETS
from fcn8s.files import written_whole
from fcn8s.images import load_image
from fcn8s.predict import (CLASS_ID_OUTPUT, CLASS_PROB_OUTPUT, NETWORK_SCOPE, ROAD_PROB_OUTPUT, SERVING_INPUT,
                           load_saved_model, network_class_prob, network_road_prob, predict_by_size)
from fcn8s.tf1 import tf

TFLITE_FILE = 'model.tflite'  # what `export` writes into the run folder
TFLITE_IDENTIFIER = b'TFL3'  # bytes 4..8 of every TFLite flatbuffer
METADATA_NAME = 'fcn8s'  # the metadata entry that makes a .tflite file one of this project's
METADATA_VERSION = 1
QUANTIZATIONS = {'int8': 'int8', 'fp16': 'fp16', 'none': 'fp32'}  # --quantize -> the precision the file records
# Images of the run's training set that calibrate int8 (fewer when it has fewer): the value ranges of every layer.
CALIBRATION_IMAGES = 64
# Ops that feed the exported network from outside its scope without being its input image: weights, keep_prob.
NETWORK_CONSTANT_OPS = ('Const', 'ReadVariableOp', 'VarHandleOp')


def frozen_network(model_dir):
    """(GraphDef, input tensor name, logits tensor name) of the network in a SavedModel that export_model wrote.

    The GraphDef holds the ops from the network's input image (the output of the SavedModel's resize to the
    training size) to its logits [b * height * width, num_classes], weights frozen into constants, dropout
    still there (keep_prob is the constant 1). Raises ValueError naming model_dir when it is no such model.
    """
    with tf.Graph().as_default() as graph, tf.Session() as sess:
        load_saved_model(sess, model_dir)
        operations = graph.get_operations()
        logits_names = {op.inputs[0].name for op in operations if op.type == 'Softmax'}
        input_names = {tensor.name for op in operations if op.name.startswith(NETWORK_SCOPE + '/')
                       for tensor in op.inputs if not tensor.op.name.startswith(NETWORK_SCOPE + '/')
                       and tensor.op.type not in NETWORK_CONSTANT_OPS}
        if len(logits_names) != 1 or len(input_names) != 1:
            raise ValueError(f'{model_dir} is a SavedModel but not one that this project exported: expected one '
                             f'softmax over the logits and one image entering the scope {NETWORK_SCOPE}/, found the '
                             f'logits {sorted(logits_names)} and inputs {sorted(input_names)}.')
        logits_name, = logits_names
        graph_def = tf.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), [logits_name[:-2]])
    input_name, = input_names
    return graph_def, input_name, logits_name


def int8_grid_split(kernel, axis):
    """(rounded, remainder) float32 arrays adding up to kernel: kernel rounded to the grid of symmetric per-channel int8
    quantization along axis (scale max|kernel| / 127 per channel), and what that rounding leaves."""
    other_axes = tuple(index for index in range(kernel.ndim) if index != axis % kernel.ndim)
    scale = np.max(np.abs(kernel), axis=other_axes, keepdims=True) / 127
    rounded = np.where(scale > 0, np.round(kernel / np.where(scale > 0, scale, 1)) * scale, 0).astype(np.float32)
    return rounded, (kernel - rounded).astype(np.float32)


def split_upsampling_kernels(graph_def):
    """A copy of a frozen graph_def in which each transposed convolution (the decoder's upscore layers) is the sum
    of two: one with its kernel rounded to the int8 grid (int8_grid_split along its output channels, kernel
    [h, w, out, in]), one with the remainder. In float the sum is the layer itself; in int8 the first kernel
    is exact and the second is quantized on a grid 254 times finer. With one int8 kernel, the rounding of the
    bilinear upsampling kernels, on scores of up to tens, shifted the Cityscapes demo's logits by 0.5 (rms).
    """
    split = tf.GraphDef()
    split.CopyFrom(graph_def)
    nodes = {node.name: node for node in split.node}
    for node in [node for node in split.node if node.op == 'Conv2DBackpropInput']:
        kernel_node = nodes[node.input[1].split(':')[0]]
        while kernel_node.op == 'Identity':
            kernel_node = nodes[kernel_node.input[0].split(':')[0]]
        rounded, remainder = int8_grid_split(tf.make_ndarray(kernel_node.attr['value'].tensor), axis=2)
        kernel_node.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(rounded))
        remainder_kernel = split.node.add(name=f'{node.name}_remainder_kernel', op='Const')
        remainder_kernel.attr['dtype'].type = tf.float32.as_datatype_enum
        remainder_kernel.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(remainder))
        remainder_layer = split.node.add()
        remainder_layer.CopyFrom(node)
        remainder_layer.name, remainder_layer.input[1] = f'{node.name}_remainder', remainder_kernel.name
        rounded_name = node.name
        node.name = f'{rounded_name}_rounded'
        split.node.add(name=rounded_name, op='AddV2', input=[node.name, remainder_layer.name]).attr['T'].type = (
            tf.float32.as_datatype_enum)
    return split


def network_outputs(graph_def, input_name, logits_name, image_shape, road_output):
    """(images placeholder, {output name: tensor}) of the network of frozen_network, imported into the default graph.

    images: [batch, height, width, 3] float32 at image_shape. Dropout's random masks become the constant 0,
    which keeps every unit at keep_prob 1, so that the converter folds dropout away. The outputs are road_prob
    with road_output, else class_prob and class_id (see the module's docstring).
    """
    images = tf.placeholder(tf.float32, [None, *image_shape, 3], name=SERVING_INPUT)
    random_masks = {f'{node.name}:0': tf.zeros([]) for node in graph_def.node if node.op == 'RandomUniform'}
    logits, = tf.import_graph_def(graph_def, input_map={input_name: images, **random_masks},
                                  return_elements=[logits_name], name='')
    if road_output:
        return images, {ROAD_PROB_OUTPUT: tf.identity(network_road_prob(logits, image_shape), name=ROAD_PROB_OUTPUT)}
    class_prob = tf.identity(network_class_prob(logits, image_shape), name=CLASS_PROB_OUTPUT)
    return images, {CLASS_PROB_OUTPUT: class_prob,
                    CLASS_ID_OUTPUT: tf.argmax(class_prob, axis=-1, output_type=tf.int32, name=CLASS_ID_OUTPUT)}


def calibration_batches(image_paths, image_shape):
    """The representative dataset of int8 calibration: [[1, height, width, 3] float32] per image, with a progress bar.

    Each image is resized to image_shape (height, width) as training resizes it (images.load_image).
    """
    for image_path in tqdm(image_paths, desc='Calibrating int8', unit='image'):
        yield [load_image(image_path, image_shape)[None].astype(np.float32)]


def calibration_sample(image_paths, count=CALIBRATION_IMAGES, seed=0):
    """count of image_paths (all when there are fewer), drawn without replacement by a generator seeded with seed."""
    chosen = np.random.default_rng(seed).choice(len(image_paths), min(count, len(image_paths)), replace=False)
    return [image_paths[index] for index in sorted(chosen)]


def with_metadata(tflite_bytes, metadata):
    """tflite_bytes with the metadata entry METADATA_NAME holding metadata as JSON (a new buffer of the model)."""
    model = flatbuffer_utils.read_model_from_bytearray(tflite_bytes)
    buffer = tflite_schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = tflite_schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME.encode(), len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    return flatbuffer_utils.convert_object_to_bytearray(model)


def export_tflite(model_dir, dataset, image_shape, tflite_path, quantization='int8', calibration_paths=(),
                  weights=None):
    """Write the SavedModel in model_dir (export_model) as a LiteRT file at tflite_path; returns its metadata.

    dataset: the dataset_contract.Dataset the model learned; image_shape (height, width): its training size.
    quantization (a key of QUANTIZATIONS): int8, full-integer weights and activations, calibrated on
    calibration_paths (images of the run's training set), with float32 input and outputs; fp16, float16
    weights; none, float32. weights, model_dir's weights record (provenance), goes into the metadata. The file is
    written whole or not at all.
    """
    if quantization == 'int8' and not calibration_paths:
        raise ValueError('int8 quantization needs calibration images: none were given')
    graph_def, input_name, logits_name = frozen_network(model_dir)
    if quantization == 'int8':
        graph_def = split_upsampling_kernels(graph_def)
    with tf.Graph().as_default(), tf.Session() as sess:
        images, outputs = network_outputs(graph_def, input_name, logits_name, image_shape, dataset.road_output)
        del graph_def  # its weights are in the session's graph now: free this copy (537 MB for the real VGG16)
        converter = tf.lite.TFLiteConverter.from_session(sess, [images], list(outputs.values()))
        if quantization != 'none':
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == 'fp16':
            converter.target_spec.supported_types = [tf.float16]
        if quantization == 'int8':
            converter.representative_dataset = lambda: calibration_batches(calibration_paths, image_shape)
        tflite_bytes = converter.convert()
    metadata = {'project': METADATA_NAME, 'version': METADATA_VERSION, 'dataset': dataset.name,
                'image_height': image_shape[0], 'image_width': image_shape[1],
                'precision': QUANTIZATIONS[quantization], 'num_classes': dataset.num_classes,
                'outputs': list(outputs), 'calibration_images': len(calibration_paths) if quantization == 'int8' else 0,
                **({'weights': weights} if weights else {})}
    with written_whole(tflite_path, discard_partial_on_error=True) as partial_path, open(partial_path, 'wb') as file:
        file.write(with_metadata(tflite_bytes, metadata))
    return metadata


def is_tflite_path(model_path):
    """Whether --model names a LiteRT file (a .tflite name, or any file) rather than a SavedModel folder."""
    return model_path.lower().endswith('.tflite') or os.path.isfile(model_path)


def read_metadata(tflite_path):
    """The metadata dict that export_tflite wrote into tflite_path, read without TensorFlow.

    Raises ValueError saying what is wrong when tflite_path is missing, a folder, not a TFLite file, or
    a TFLite file that this project did not export.
    """
    advice = 'Export one with `python main.py export --run runs/<timestamp>` (it writes the run\'s model.tflite).'
    if os.path.isdir(tflite_path):
        raise ValueError(f'{tflite_path} is a folder, not a .tflite file. Give the file itself, or for a SavedModel '
                         f'folder a name that does not end in .tflite. {advice}')
    try:
        with open(tflite_path, 'rb') as file:
            header = file.read(8)
            if len(header) < 8 or header[4:8] != TFLITE_IDENTIFIER:
                raise ValueError(f'{tflite_path} is not a TFLite model: a .tflite file has '
                                 f'"{TFLITE_IDENTIFIER.decode()}" in its bytes 4 to 8, this one has {header[4:8]!r}. '
                                 f'{advice}')
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as content:
                model = litert_schema.Model.GetRootAs(content, 0)
                entries = {model.Metadata(index).Name().decode(): model.Metadata(index).Buffer()
                           for index in range(model.MetadataLength())}
                if METADATA_NAME not in entries:
                    raise ValueError(f'{tflite_path} is a TFLite model, but not one that this project exported: it '
                                     f'has no "{METADATA_NAME}" metadata (its metadata: {sorted(entries) or "none"}). '
                                     f'{advice}')
                metadata = json.loads(model.Buffers(entries[METADATA_NAME]).DataAsNumpy().tobytes())
    except FileNotFoundError as error:
        raise ValueError(f'{tflite_path} does not exist. {advice}') from error
    except (OSError, struct.error, IndexError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f'cannot read {tflite_path} as a TFLite model ({error}): it is damaged. {advice}') from error
    usable = isinstance(metadata, dict) and metadata.get('version') == METADATA_VERSION
    if not usable or metadata.get('dataset') not in DATASETS:
        raise ValueError(f'{tflite_path} has "{METADATA_NAME}" metadata this version cannot use: {metadata}; '
                         f'expected version {METADATA_VERSION} and a dataset of {sorted(DATASETS)}. {advice}')
    return metadata


def open_interpreter(tflite_path, num_threads=None):
    """(ai_edge_litert Interpreter of tflite_path, its metadata), tensors allocated; num_threads default: all cores."""
    metadata = read_metadata(tflite_path)
    try:
        interpreter = Interpreter(model_path=tflite_path, num_threads=num_threads or os.cpu_count())
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as error:
        raise ValueError(f'LiteRT cannot load {tflite_path} ({error}): export it again.') from error
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
    probable class is taken, resized back. Raises ValueError (read_metadata) for a file that is not a model
    of this project, or one without the output asked for.
    """
    interpreter, metadata = open_interpreter(tflite_path, num_threads)
    image_shape = (metadata['image_height'], metadata['image_width'])
    wanted = ROAD_PROB_OUTPUT if output == ROAD_PROB_OUTPUT else CLASS_PROB_OUTPUT
    if wanted not in metadata['outputs']:
        raise ValueError(f'{tflite_path} is a {metadata["dataset"]} model with the outputs {metadata["outputs"]}, '
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
