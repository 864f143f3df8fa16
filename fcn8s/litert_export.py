"""The conversion of a run's SavedModel to a LiteRT (TFLite) file for the car, with TensorFlow: int8, fp16 or fp32.

What the file holds and how the car runs it, without TensorFlow: fcn8s.litert. export_tflite freezes the
SavedModel's network (between its resizes), converts it with TFLiteConverter, int8 calibrated on the run's own
training images, and writes the metadata entry that read_metadata reads.
"""
import json

import numpy as np
from tensorflow.lite.python import schema_py_generated as tflite_schema
from tensorflow.lite.tools import flatbuffer_utils
from tqdm import tqdm

from fcn8s.errors import ModelError, SettingError
from fcn8s.files import written_whole
from fcn8s.images import load_image
from fcn8s.litert import METADATA_NAME, METADATA_VERSION
from fcn8s.model_io import CLASS_ID_OUTPUT, CLASS_PROB_OUTPUT, NETWORK_SCOPE, ROAD_PROB_OUTPUT, SERVING_INPUT
from fcn8s.predict import load_saved_model, network_class_prob, network_road_prob
from fcn8s.tf1 import tf

QUANTIZATIONS = {'int8': 'int8', 'fp16': 'fp16', 'none': 'fp32'}  # --quantize -> the precision the file records
# Images of the run's training set that calibrate int8 (fewer when it has fewer): the value ranges of every layer.
CALIBRATION_IMAGES = 64
# Ops that feed the exported network from outside its scope without being its input image: weights, keep_prob.
NETWORK_CONSTANT_OPS = ('Const', 'ReadVariableOp', 'VarHandleOp')


def frozen_network(model_dir):
    """(GraphDef, input tensor name, logits tensor name) of the network in a SavedModel that export_model wrote.

    The GraphDef holds the ops from the network's input image (the output of the SavedModel's resize to the
    training size) to its logits [b * height * width, num_classes], weights frozen into constants, dropout
    still there (keep_prob is the constant 1). Raises ModelError naming model_dir when it is no such model.
    """
    with tf.Graph().as_default() as graph, tf.Session() as sess:
        load_saved_model(sess, model_dir)
        operations = graph.get_operations()
        logits_names = {op.inputs[0].name for op in operations if op.type == 'Softmax'}
        input_names = {tensor.name for op in operations if op.name.startswith(NETWORK_SCOPE + '/')
                       for tensor in op.inputs if not tensor.op.name.startswith(NETWORK_SCOPE + '/')
                       and tensor.op.type not in NETWORK_CONSTANT_OPS}
        if len(logits_names) != 1 or len(input_names) != 1:
            raise ModelError(f'{model_dir} is a SavedModel but not one that this project exported: expected one '
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
    with road_output, else class_prob and class_id (see fcn8s.litert's docstring).
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
        raise SettingError('int8 quantization needs calibration images: none were given')
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
