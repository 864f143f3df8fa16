"""Predictors from a training session or an exported model, and the export of a trained FCN-8s.

A road predictor, predict(images) -> road_probs, maps a list of [h, w, 3] uint8 RGB images of any sizes to their
[h, w] float32 road probabilities in 0..1 (KITTI Road); a class predictor maps them to [h, w] int32 class ids
(any number of classes). session_predictor makes either from a training session, saved_model_predictor from the
exported model. Both run the same TensorFlow ops: resize_bilinear to the network's image_shape, the FCN-8s with
keep_prob 1, the softmax, and a bilinear resize of the probabilities back to each image's size.
"""
import json
import os

from fcn8s.errors import ModelError
from fcn8s.files import written_whole
from fcn8s.model_io import (CLASS_ID_OUTPUT, CLASS_PROB_OUTPUT, MODEL_DATASET_FILE, NETWORK_SCOPE, ROAD_PROB_OUTPUT,
                            SERVING_INPUT, SERVING_SIGNATURE, SERVING_TAG, predict_by_size)
from fcn8s.provenance import write_model_record
from fcn8s.tf1 import tf


def resize_bilinear(images, size):
    """[b, h, w, c] float32 resized to size ((height, width) or [2] int32): bilinear, antialiased when shrinking.

    Antialiased like PIL's BILINEAR, which resizes the training images (fcn8s.batches).
    """
    return tf.compat.v2.image.resize(images, size, method='bilinear', antialias=True)


def network_class_prob(logits, image_shape):
    """[b, height, width, num_classes] float32 class probabilities of logits [b * height * width, num_classes].

    (height, width) = image_shape, the network's input size.
    """
    return tf.reshape(tf.nn.softmax(logits), [-1, *image_shape, logits.shape[-1]])


def network_road_prob(logits, image_shape):
    """[b, height, width] float32 road probability (softmax, class 1) of logits [b * height * width, num_classes].

    (height, width) = image_shape, the network's input size.
    """
    return network_class_prob(logits, image_shape)[..., 1]


def road_prob_at_size(road_prob, size):
    """[b, h, w] float32 road probability resized to size ([2] int32 (height, width)): [b, height, width]."""
    return resize_bilinear(road_prob[..., None], size)[..., 0]


def road_prob_output(logits, image_shape, size):
    """[b, height, width] road probability at size of logits [b * h * w, 2] of the network at image_shape."""
    return road_prob_at_size(network_road_prob(logits, image_shape), size)


def class_prob_output(logits, image_shape, size):
    """[b, height, width, num_classes] class probabilities at size of logits [b * h * w, num_classes]."""
    return resize_bilinear(network_class_prob(logits, image_shape), size)


def class_id_output(logits, image_shape, size):
    """[b, height, width] int32: the most probable class at size of logits [b * h * w, num_classes]."""
    return tf.argmax(class_prob_output(logits, image_shape, size), axis=-1, output_type=tf.int32)


PREDICTION_OUTPUTS = {ROAD_PROB_OUTPUT: road_prob_output, CLASS_ID_OUTPUT: class_id_output}


def session_predictor(sess, logits, keep_prob, image_pl, image_shape, dataset):
    """predict(images) -> what dataset (fcn8s.datasets) predicts, for a training session.

    dataset.prediction_output names it: road probabilities ('road_prob') or class ids ('class_id').
    logits: [b * height * width, num_classes] of the network fed through image_pl at image_shape
    (height, width). The resize ops are added to sess's graph by the first call for these logits, in the
    name scope <output's kind>_predictor/<logits' name>, and found there by later calls, so a graph holds
    one predictor of each kind. predict runs them and the network in sess, two calls per batch, so it
    gives what the exported model gives (export_model).
    """
    output = dataset.prediction_output
    scope = f"{output.split('_')[0]}_predictor/{logits.op.name}/"
    tensor_names = ('original_images', 'network_input', 'original_size', output)
    try:
        original_images, network_input, original_size, prediction = (
            sess.graph.get_tensor_by_name(f'{scope}{name}:0') for name in tensor_names)
    except KeyError:
        with sess.graph.as_default(), tf.name_scope(scope):
            original_images = tf.placeholder(tf.float32, [None, None, None, 3], name='original_images')
            network_input = tf.identity(resize_bilinear(original_images, image_shape), name='network_input')
            original_size = tf.placeholder(tf.int32, [2], name='original_size')
            prediction = tf.identity(PREDICTION_OUTPUTS[output](logits, image_shape, original_size), name=output)

    def predict_batch(batch):
        resized = sess.run(network_input, {original_images: batch})
        return sess.run(prediction, {image_pl: resized, keep_prob: 1.0, original_size: batch.shape[1:3]})

    return lambda images: predict_by_size(images, predict_batch)


def forward_pass(sess, input_image, logits):
    """(GraphDef of the ops that compute logits from input_image in sess's graph, {variable name: trained value},
    {tensor name in the GraphDef: the variable name whose value it takes}).

    Only the forward pass: no loss, optimizer or initializers, and no input pipeline: an input_image
    that takes the pipeline's batch unless fed (batches.training_inputs) becomes a plain placeholder.
    Its variables are left out of the GraphDef: a TF1 reference variable's node is the tensor that takes its
    value; a resource variable's (a replica's mirrored copy) reads become placeholders that take it. Device
    placements and colocation hints go too, so that the GraphDef imports anywhere (export_model).
    """
    graph_def = tf.graph_util.extract_sub_graph(sess.graph.as_graph_def(), [logits.op.name])
    input_node, = (node for node in graph_def.node if node.name == input_image.op.name)
    if input_node.op == 'PlaceholderWithDefault':
        input_node.op = 'Placeholder'
        del input_node.input[:]
        graph_def = tf.graph_util.extract_sub_graph(graph_def, [logits.op.name])
    handles = {node.name for node in graph_def.node if node.op == 'VarHandleOp'}
    variable_of_input = {node.name + ':0': node.name for node in graph_def.node
                         if node.op in ('Variable', 'VariableV2')}
    for node in graph_def.node:
        if node.op == 'ReadVariableOp' and node.input[0] in handles:
            variable_of_input[node.name + ':0'] = node.input[0]
            node.op = 'Placeholder'
            del node.input[:]
    graph_def = tf.graph_util.extract_sub_graph(graph_def, [logits.op.name])
    value_of_variable = {name: tensor for tensor, name in variable_of_input.items()}  # one reading of each
    trained_values = sess.run(value_of_variable)
    operations = [node for node in graph_def.node if node.name not in trained_values]
    for node in operations:
        node.attr.pop('_class', None)
        node.device = ''
    del graph_def.node[:]
    graph_def.node.extend(operations)
    return graph_def, trained_values, variable_of_input


def export_model(sess, input_image, keep_prob, logits, image_shape, export_dir, dataset, epoch=None):
    """Write the FCN-8s trained in sess as a SavedModel for tf.saved_model.load and TF Serving; returns the weights
    record written into it with epoch, the epoch whose weights sess holds (provenance), or None without epoch.

    Tag 'serve', signature 'serving_default': images [batch, height, width, 3] float32 RGB 0..255 of
    any size -> class_prob [batch, height, width, num_classes] float32 and class_id [batch, height,
    width] int32, and with dataset.road_output (KITTI Road) road_prob [batch, height, width] float32 in
    0..1. dataset.name goes to assets.extra/dataset.json (model_dataset_name). The serving graph resizes the images
    to image_shape (height, width), runs a copy of the training graph's forward pass (VGG16 and the
    decoder, imported with keep_prob fixed to 1) and resizes the road probability back. Its variables
    keep the training names and get the trained values; the optimizer state stays in the checkpoint.
    The folder is written whole or not at all, replacing an earlier export; a failed or interrupted export
    leaves no partial folder.
    """
    graph_def, trained_values, variable_of_input = forward_pass(sess, input_image, logits)
    with tf.Graph().as_default(), tf.Session() as serving_sess, \
            written_whole(export_dir, discard_partial_on_error=True) as partial_dir:
        variables = {name: tf.get_variable(name, value.shape, tf.as_dtype(value.dtype), tf.zeros_initializer(),
                                           use_resource=True)
                     for name, value in trained_values.items()}
        original_images = tf.placeholder(tf.float32, [None, None, None, 3], name=SERVING_INPUT)
        network_input = resize_bilinear(original_images, image_shape)
        network_logits, = tf.import_graph_def(
            graph_def, input_map={input_image.name: network_input, keep_prob.name: tf.constant(1.0),
                                  **{tensor: variables[name].value() for tensor, name in variable_of_input.items()}},
            return_elements=[logits.name], name=NETWORK_SCOPE)
        original_size = tf.shape(original_images)[1:3]
        class_prob = tf.identity(class_prob_output(network_logits, image_shape, original_size), name=CLASS_PROB_OUTPUT)
        outputs = {CLASS_PROB_OUTPUT: class_prob,
                   CLASS_ID_OUTPUT: tf.argmax(class_prob, axis=-1, output_type=tf.int32, name=CLASS_ID_OUTPUT)}
        if dataset.road_output:
            outputs[ROAD_PROB_OUTPUT] = tf.identity(road_prob_output(network_logits, image_shape, original_size),
                                                    name=ROAD_PROB_OUTPUT)
        for name, variable in variables.items():
            variable.load(trained_values[name], serving_sess)
        signature = tf.saved_model.predict_signature_def({SERVING_INPUT: original_images}, outputs)
        builder = tf.saved_model.Builder(partial_dir)
        builder.add_meta_graph_and_variables(serving_sess, [SERVING_TAG], signature_def_map={SERVING_SIGNATURE: signature})
        builder.save()
        os.makedirs(os.path.join(partial_dir, os.path.dirname(MODEL_DATASET_FILE)))
        with open(os.path.join(partial_dir, MODEL_DATASET_FILE), 'w') as dataset_file:
            json.dump({'dataset': dataset.name}, dataset_file)
        return None if epoch is None else write_model_record(partial_dir, epoch)


def model_dataset_name(model_dir):
    """The dataset name export_model kept in model_dir; 'kitti_road' for a model exported before it kept one."""
    try:
        with open(os.path.join(model_dir, MODEL_DATASET_FILE)) as dataset_file:
            return json.load(dataset_file)['dataset']
    except FileNotFoundError:
        return 'kitti_road'
    except (OSError, ValueError, KeyError) as error:
        raise ModelError(f'{os.path.join(model_dir, MODEL_DATASET_FILE)} cannot be read ({error}): it should hold '
                         '{"dataset": "kitti_road"} or {"dataset": "cityscapes"}; write that or export again.') from error


# The lines of a TensorFlow error message that say where it happened, not what: error_words skips them.
TENSORFLOW_MESSAGE_FRAMES = ('Graph execution error', 'Detected at node', 'Node:', '[[', 'Original stack trace')


def error_words(error):
    """The first line of error's message that says what went wrong ('Read less bytes than requested' of a
    TensorFlow error whose message begins 'Graph execution error:'), at most 300 characters."""
    lines = [line.strip() for line in str(error).splitlines()]
    words = [line for line in lines if line and not line.startswith(TENSORFLOW_MESSAGE_FRAMES)]
    return (words or [type(error).__name__])[0][:300]


def load_saved_model(sess, model_dir):
    """Load the SavedModel that export_model wrote in model_dir into sess; returns its MetaGraphDef.

    Raises ModelError naming model_dir when it is missing or not such a model, or when its weights cannot be read
    (a truncated or damaged variables file), saying how to write it again.
    """
    try:
        return tf.saved_model.loader.load(sess, [SERVING_TAG], model_dir)
    except (OSError, RuntimeError, ValueError, tf.errors.OpError) as error:
        raise ModelError(f'cannot load the model in {model_dir} ({type(error).__name__}: {error_words(error)}). '
                         'Expected the SavedModel that training exports into every run folder as model/, whole: a '
                         'damaged one is written again from the run\'s last checkpoint by `python main.py --resume '
                         'RUN_DIR`.') from error


def saved_model_predictor(model_dir, session_config, output):
    """predict(images) -> road probabilities or class ids (output), from the SavedModel that export_model wrote.

    The model is loaded into a graph and session of its own, which live as long as predict does; the
    session gets session_config, a tf.ConfigProto (fcn8s.precision.session_config) or None.
    Raises ModelError naming model_dir when it holds no such model.
    """
    sess = tf.Session(graph=tf.Graph(), config=session_config)
    try:
        signature = load_saved_model(sess, model_dir).signature_def[SERVING_SIGNATURE]
        images_input = sess.graph.get_tensor_by_name(signature.inputs[SERVING_INPUT].name)
        prediction = sess.graph.get_tensor_by_name(signature.outputs[output].name)
    except KeyError as error:
        sess.close()
        raise ModelError(
            f'cannot load a model from {model_dir}: {error}. Expected the SavedModel that every training run '
            f'exports to runs/<timestamp>/model/ (tag "{SERVING_TAG}", signature "{SERVING_SIGNATURE}" mapping '
            f'"{SERVING_INPUT}" to "{output}").') from error
    except ModelError:
        sess.close()
        raise
    return lambda images: predict_by_size(images, lambda batch: sess.run(prediction, {images_input: batch}))


def saved_model_road_predictor(model_dir, session_config=None):
    """saved_model_predictor of road probabilities."""
    return saved_model_predictor(model_dir, session_config, ROAD_PROB_OUTPUT)
