"""FCN-8s road segmentation on KITTI Road, in TensorFlow 1.x style (graph, session, placeholders).

  python main.py          train with the classic hyperparameters (fetches data/vgg and data/data_road)
  python main.py --demo   the same job offline: synthetic KITTI and a small random VGG16, under 2 minutes
  python main.py --resume runs/<timestamp>
                          go on with a stopped run (Ctrl-C, SIGTERM, a crash) after its last finished epoch
  python main.py check-data [--data DIR]
                          check a KITTI Road folder (the check training runs first) and list every problem
  python main.py build-vgg [--weights imagenet|random]
                          write data/vgg, the classic VGG16 SavedModel, from Keras's ImageNet weights
                          (or random ones); `python main.py build-vgg --help` for its options
  python main.py evaluate --run runs/<timestamp> [--images DIR --labels DIR]   (or --model DIR --images ...)
                          KITTI road measures (MaxF, AP, IoU, ...) of a trained run, per category and overall
  python main.py infer IMAGE_OR_DIR... --run runs/<timestamp> --out DIR [--masks | --kitti-submission]
                          paint the road on images of any size with a trained model
  python main.py video IN.mp4 OUT.mp4 --run runs/<timestamp>
                          paint the road on every frame of a video
  python main.py bench [--out bench.json]
                          training and inference speed of the classic loop and of this project, side by side

Every run writes runs/<timestamp>/: config.json, loss.csv, loss.png, split.json, metrics.json and pr_curve.png
(validation), checkpoint/ (one folder per kept epoch), tensorboard/, model/ (the exported SavedModel that
infer and video use) and overlays/.
"""
import argparse
import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TensorFlow loads: keep its C++ info lines quiet

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
from PIL import Image  # noqa: E402
from tensorflow.core.protobuf import rewriter_config_pb2  # noqa: E402
from tqdm import tqdm  # noqa: E402

import helper  # noqa: E402

NUM_CLASSES = 2  # background, road
VGG_TENSOR_NAMES = ('image_input:0', 'keep_prob:0', 'layer3_out:0', 'layer4_out:0', 'layer7_out:0')
# The FCN authors' "at-once" FCN-8s scales the skip inputs so that they start on the scale of fc7's scores.
POOL4_SCALE = 1e-2
POOL3_SCALE = 1e-4
# The arithmetic a session can run (session_config), and for whom each is fast (available_precisions).
PRECISION_NOTES = {
    'fp16': 'float16 mixed precision (the CUDA graph rewrite, with dynamic loss scaling) on an NVIDIA GPU of '
            'compute capability 7.0 or newer',
    'bf16': "bfloat16 mixed precision (oneDNN's graph rewrite) on a CPU with AVX-512 BF16 and no GPU",
    'fp32': 'float32 throughout, on any machine',
}
PRECISIONS = tuple(PRECISION_NOTES)  # fastest first


# ---------------------------------------------------------------- configuration

def setting(default, help_text, choices=None):
    """A TrainConfig field with its command-line help and, if given, the values it may take."""
    return dataclasses.field(default=default, metadata={'help': help_text, 'choices': choices})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run, with the classic project's values as defaults; saved as config.json."""
    epochs: int = setting(40, 'passes over the training images')
    batch_size: int = setting(4, 'images per training step')
    learning_rate: float = setting(5e-4, 'Adam learning rate')
    keep_prob: float = setting(0.5, 'dropout keep probability of fc6 and fc7 while training')
    image_height: int = setting(160, 'network input height in pixels, a multiple of 32')
    image_width: int = setting(576, 'network input width in pixels, a multiple of 32')
    l2_scale: float = setting(1e-3, 'L2 weight decay on the decoder kernels: scale * sum(w**2) / 2')
    init_stddev: float = setting(1e-3, 'standard deviation of the 1x1 score kernels at initialisation')
    pool_scaling: bool = setting(True, 'scale pool4 by 1e-2 and pool3 by 1e-4 before scoring them')
    train_encoder: bool = setting(True, 'fine-tune the VGG16 weights too (the classic project did); '
                                        'otherwise train the decoder only')
    val_count: int = setting(48, 'training images held out for validation, stratified over um/umm/uu (0: none)')
    eval_every: int = setting(0, 'also score the validation images every N epochs (0: only after the last)')
    augment_flip: bool = setting(True, 'augment: mirror training images left-right at random')
    augment_color: bool = setting(True, 'augment: jitter brightness and contrast')
    augment_scale: bool = setting(True, 'augment: zoom in by up to 1.25 about a random point')
    precision: str = setting('auto', 'arithmetic of training and inference: fp32; bf16, mixed bfloat16 on CPUs '
                                     'with AVX-512 BF16; fp16, mixed float16 on NVIDIA GPUs; auto, the fastest '
                                     'this machine has', choices=('auto', *PRECISIONS))
    seed: int = setting(0, 'seed of weight initialisation, shuffling, the split and the synthetic data')
    data_dir: str = setting('data', 'folder holding vgg/ and data_road/ (with --demo: its demo/ subfolder)')
    runs_dir: str = setting('runs', 'folder that receives runs/<timestamp>/')
    demo: bool = setting(False, 'offline: synthetic KITTI and a builder-made random VGG16 under DATA_DIR/demo')
    demo_vgg_width: float = setting(0.25, 'channel width of the demo VGG16 (1.0 = real VGG16)')
    demo_train_per_category: int = setting(20, 'synthetic training images per category (um, umm, uu)')
    demo_test_per_category: int = setting(4, 'synthetic testing images per category')

    @property
    def image_shape(self):
        """(height, width) of the network input."""
        return self.image_height, self.image_width

    @property
    def augmentation(self):
        """The helper.Augmentation of these settings, or None when all are off."""
        augmentation = helper.Augmentation(self.augment_flip, self.augment_color, self.augment_scale)
        return augmentation if any(dataclasses.astuple(augmentation)) else None


# The demo's VGG16 is random, not pre-trained, and the demo trains for about a minute. Measured on the
# synthetic set: fine-tuning a random VGG16 with Adam diverged after 4 to 6 epochs at every learning rate
# tried (5e-4 down to 5e-5), so the demo trains the decoder on the encoder's fixed random features; and with
# pool scaling the skip scores, whose inputs are 1e-2 and 1e-4 times smaller while Adam's steps are not,
# stayed too weak to paint anything finer than fc7's 32-pixel cells in that time.
DEMO_CONFIG = TrainConfig(demo=True, epochs=30, train_encoder=False, pool_scaling=False, val_count=12)


def parse_config(argv=None):
    """(TrainConfig, run folder to resume or None) from command-line arguments.

    --demo switches to DEMO_CONFIG's defaults. --resume RUN_DIR takes the run's own settings from
    its config.json; only --epochs may be given with it, to train for longer.
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--resume', metavar='RUN_DIR',
                        help='go on with the run in RUN_DIR (runs/<timestamp>) after its last finished epoch, with '
                             'the settings of its config.json; only --epochs may be given with it')
    for field in dataclasses.fields(TrainConfig):
        flag = '--' + field.name.replace('_', '-')
        demo_default = getattr(DEMO_CONFIG, field.name)
        demo_note = f'; with --demo: {demo_default}' if demo_default != field.default and field.name != 'demo' else ''
        help_text = f"{field.metadata['help']} (default: {field.default}{demo_note})"
        if field.type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            choices = field.metadata['choices']
            parser.add_argument(flag, type=field.type, default=None, choices=choices,
                                metavar=None if choices else field.name.upper(), help=help_text)
    arguments = parser.parse_args(argv)
    chosen = {name: value for name, value in vars(arguments).items() if value is not None}
    resume_dir = chosen.pop('resume', None)
    if resume_dir is None:
        config = dataclasses.replace(DEMO_CONFIG if arguments.demo else TrainConfig(), **chosen)
    elif chosen.keys() - {'epochs'}:
        others = ', '.join('--' + name.replace('_', '-') for name in sorted(chosen.keys() - {'epochs'}))
        parser.error(f'--resume goes on with the settings in {resume_dir}/config.json; give no option but --epochs '
                     f'with it (found {others})')
    else:
        config = dataclasses.replace(load_run_config(resume_dir), **chosen)
    problems = [f'--image-{side} {size} is not a multiple of 32' for side, size in
                (('height', config.image_height), ('width', config.image_width)) if size % 32 or size <= 0]
    problems += [f'--{name.replace("_", "-")} must be at least 1, got {getattr(config, name)}'
                 for name in ('epochs', 'batch_size') if getattr(config, name) < 1]
    problems += [f'--{name.replace("_", "-")} must not be negative, got {getattr(config, name)}'
                 for name in ('val_count', 'eval_every') if getattr(config, name) < 0]
    if not 0 < config.keep_prob <= 1:
        problems.append(f'--keep-prob must lie in (0, 1], got {config.keep_prob}')
    if problems:
        parser.error('; '.join(problems))
    return config, resume_dir


def cpu_info(cpuinfo_path='/proc/cpuinfo'):
    """{field: value} of the first processor in /proc/cpuinfo ('model name', 'flags', ...); {} where there is none."""
    if not os.path.exists(cpuinfo_path):
        return {}
    fields = {}
    with open(cpuinfo_path) as cpuinfo:
        for line in cpuinfo:
            if not line.strip():
                break
            name, _, value = line.partition(':')
            fields[name.strip()] = value.strip()
    return fields


def gpu_compute_capabilities():
    """[(major, minor)] compute capability of each GPU TensorFlow sees."""
    return [tf.config.experimental.get_device_details(gpu).get('compute_capability', (0, 0))
            for gpu in tf.config.list_physical_devices('GPU')]


def available_precisions():
    """The precisions of PRECISIONS that are fast on this machine, fastest first; fp32 is always there.

    fp16 needs an NVIDIA GPU of compute capability 7.0 (Volta) or newer, as TensorFlow's float16 rewrite
    does. bf16 needs the CPU flag avx512_bf16, oneDNN left on (TF_ENABLE_ONEDNN_OPTS not 0) and no GPU:
    oneDNN's bfloat16 rewrite converts only the ops placed on the CPU, and TensorFlow has no bfloat16
    rewrite for GPUs.
    """
    capabilities = gpu_compute_capabilities()
    if capabilities:
        return ('fp16', 'fp32') if max(capabilities) >= (7, 0) else ('fp32',)
    bf16_ready = ('avx512_bf16' in cpu_info().get('flags', '').split()
                  and os.environ.get('TF_ENABLE_ONEDNN_OPTS', '1') != '0')
    return ('bf16', 'fp32') if bf16_ready else ('fp32',)


def resolve_precision(requested):
    """The precision to run for requested, one of PRECISIONS or 'auto' (the fastest available here).

    Raises ValueError naming what the requested precision needs and what this machine offers.
    """
    available = available_precisions()
    if requested == 'auto':
        return available[0]
    if requested not in available:
        raise ValueError(f'--precision {requested} means {PRECISION_NOTES[requested]}, which this machine cannot '
                         f"run fast. It offers {', '.join(available)}: use --precision auto ({available[0]}).")
    return requested


def chosen_precision(requested):
    """resolve_precision(requested), printed with what it means; exits with the reason when it is not available."""
    try:
        precision = resolve_precision(requested)
    except ValueError as error:
        sys.exit(f'error: {error}')
    how = ', chosen by --precision auto' if requested == 'auto' else ''
    print(f'Precision {precision}{how}: {PRECISION_NOTES[precision]}')
    return precision


def session_config(precision):
    """The tf.ConfigProto of a session that computes at precision, one of PRECISIONS (resolved, not 'auto').

    bf16 turns on oneDNN's bfloat16 auto-mixed-precision graph rewrite; fp16 the CUDA float16 one, whose
    training needs loss scaling (optimize(..., loss_scaling=True)); fp32 keeps TensorFlow's defaults.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision {precision!r} is none of {PRECISIONS}; resolve_precision turns auto into one')
    config = tf.ConfigProto()
    rewrite_options = config.graph_options.rewrite_options
    if precision == 'bf16':
        rewrite_options.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    elif precision == 'fp16':
        rewrite_options.auto_mixed_precision = rewriter_config_pb2.RewriterConfig.ON
    return config


def add_precision_argument(parser):
    """--precision of the commands that run a trained model (evaluate, infer, video), default auto."""
    parser.add_argument('--precision', choices=('auto', *PRECISIONS), default='auto',
                        help='arithmetic of inference (see `python main.py --help`); default: auto, the fastest '
                             'this machine has')


# ---------------------------------------------------------------- data

def dataset_root(config):
    """The folder holding the run's data_road/: config.data_dir, or its demo/ subfolder for demo runs."""
    return os.path.join(config.data_dir, 'demo') if config.demo else config.data_dir


def prepare_data(config):
    """Make the VGG16 SavedModel and KITTI Road available; return (data_dir holding data_road/, vgg_path).

    Real runs download what is missing into config.data_dir. Demo runs generate both under
    config.data_dir/demo: a synthetic KITTI and a random VGG16 of width config.demo_vgg_width.
    """
    if not config.demo:
        problems = []
        for fetch in (helper.maybe_download_pretrained_vgg, helper.maybe_download_kitti):
            try:
                fetch(config.data_dir)
            except helper.DataUnavailableError as error:
                problems.append(str(error))
        if problems:
            raise helper.DataUnavailableError('\n\n'.join(problems))
        return config.data_dir, os.path.join(config.data_dir, 'vgg')
    demo_dir = dataset_root(config)
    road_path = os.path.join(demo_dir, 'data_road')
    expected_images = 3 * config.demo_train_per_category
    image_dir = os.path.join(road_path, 'training', 'image_2')
    if not os.path.isdir(image_dir) or len(os.listdir(image_dir)) != expected_images:
        shutil.rmtree(road_path, ignore_errors=True)
        helper.make_synthetic_kitti(road_path, config.demo_train_per_category, config.demo_test_per_category, config.seed)
    vgg_path = os.path.join(demo_dir, f'vgg_width_{config.demo_vgg_width:g}')
    if not os.path.exists(vgg_path):
        print(f'Building a random VGG16 SavedModel of width {config.demo_vgg_width:g} in {vgg_path}')
        helper.build_vgg16_savedmodel(vgg_path, width=config.demo_vgg_width, seed=config.seed)
    return demo_dir, vgg_path


# ---------------------------------------------------------------- graph

def load_vgg(sess, vgg_path):
    """Load the VGG16 SavedModel (tag 'vgg16') into sess's graph.

    Returns (image_input, keep_prob, layer3_out, layer4_out, layer7_out): the float32 RGB 0..255
    input [batch, h, w, 3], the dropout keep probability, pool3 [batch, h/8, w/8, 256],
    pool4 [batch, h/16, w/16, 512] and fc7 [batch, h/32, w/32, 4096] (channels for width 1).
    """
    try:
        tf.saved_model.loader.load(sess, ['vgg16'], vgg_path)
    except (OSError, RuntimeError, ValueError) as error:
        raise ValueError(f'cannot load a VGG16 SavedModel with tag "vgg16" from {vgg_path!r}: {error}. '
                         'Delete the folder to download it again, or build one with --demo.') from error
    graph = sess.graph
    found = {op.name + ':0' for op in graph.get_operations()}
    missing = [name for name in VGG_TENSOR_NAMES if name not in found]
    if missing:
        raise ValueError(f'the SavedModel in {vgg_path!r} lacks the tensors {missing}; '
                         f'the classic VGG16 interface has {list(VGG_TENSOR_NAMES)}.')
    return tuple(graph.get_tensor_by_name(name) for name in VGG_TENSOR_NAMES)


def bilinear_upsample_kernel(size, channels):
    """[size, size, channels, channels] float32 kernel that upsamples each channel bilinearly on its own."""
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1 - np.abs(np.arange(size) - centre) / factor
    kernel = np.zeros((size, size, channels, channels), np.float32)
    kernel[:, :, range(channels), range(channels)] = np.outer(ramp, ramp)[..., None]
    return kernel


def add_l2_loss(kernel, l2_scale):
    """Register l2_scale * sum(kernel**2) / 2 in the graph's REGULARIZATION_LOSSES collection."""
    tf.add_to_collection(tf.GraphKeys.REGULARIZATION_LOSSES, tf.multiply(l2_scale, tf.nn.l2_loss(kernel), name='l2_loss'))


def score(features, num_classes, name, init_stddev, l2_scale):
    """1x1 convolution [b, h, w, c] -> [b, h, w, num_classes] class scores."""
    with tf.variable_scope(name):
        kernel = tf.get_variable('weights', [1, 1, features.shape[-1], num_classes],
                                 initializer=tf.random_normal_initializer(stddev=init_stddev))
        bias = tf.get_variable('biases', [num_classes], initializer=tf.zeros_initializer())
        add_l2_loss(kernel, l2_scale)
        return tf.nn.bias_add(tf.nn.conv2d(features, kernel, 1, 'SAME'), bias)


def upscore(scores, factor, output_hw, name, l2_scale):
    """Transposed convolution (kernel 2*factor, stride factor, bilinear init) of [b, h, w, c] scores.

    output_hw is ([2] int32 tensor, static (height, width) or Nones); returns [b, height, width, c].
    """
    num_classes = scores.shape[-1]
    dynamic_hw, static_hw = output_hw
    with tf.variable_scope(name):
        kernel = tf.get_variable('weights', initializer=bilinear_upsample_kernel(2 * factor, num_classes))
        add_l2_loss(kernel, l2_scale)
        output_shape = tf.concat([tf.shape(scores)[:1], dynamic_hw, [num_classes]], axis=0)
        upscored = tf.nn.conv2d_transpose(scores, kernel, output_shape, factor, 'SAME')
    upscored.set_shape([scores.shape[0], *static_hw, num_classes])
    return upscored


def spatial_size(features, factor=1):
    """(dynamic [2] int32, static (h, w)) size of [b, h, w, c] features, times factor."""
    static_hw = tuple(None if size is None else size * factor for size in features.shape.as_list()[1:3])
    return tf.shape(features)[1:3] * factor, static_hw


def layers(vgg_layer3_out, vgg_layer4_out, vgg_layer7_out, num_classes,
           pool_scaling=True, init_stddev=1e-3, l2_scale=1e-3):
    """The FCN-8s decoder on VGG16's pool3, pool4 and fc7, named as in the FCN paper.

    score_fr (1x1 on fc7) -> upscore2 (x2) + score_pool4 = fuse_pool4 -> upscore_pool4 (x2)
    + score_pool3 = fuse_pool3 -> upscore8 (x8). Returns [batch, 8 * h3, 8 * w3, num_classes]
    float32 logits, where h3, w3 is pool3's size (the input size for inputs divisible by 32).
    Each kernel's L2 term is registered in REGULARIZATION_LOSSES; optimize() adds them to the loss.
    """
    pool4 = vgg_layer4_out * POOL4_SCALE if pool_scaling else vgg_layer4_out
    pool3 = vgg_layer3_out * POOL3_SCALE if pool_scaling else vgg_layer3_out
    score_fr = score(vgg_layer7_out, num_classes, 'score_fr', init_stddev, l2_scale)
    score_pool4 = score(pool4, num_classes, 'score_pool4', init_stddev, l2_scale)
    upscore2 = upscore(score_fr, 2, spatial_size(score_pool4), 'upscore2', l2_scale)
    fuse_pool4 = tf.add(upscore2, score_pool4, name='fuse_pool4')
    score_pool3 = score(pool3, num_classes, 'score_pool3', init_stddev, l2_scale)
    upscore_pool4 = upscore(fuse_pool4, 2, spatial_size(score_pool3), 'upscore_pool4', l2_scale)
    fuse_pool3 = tf.add(upscore_pool4, score_pool3, name='fuse_pool3')
    return upscore(fuse_pool3, 8, spatial_size(fuse_pool3, 8), 'upscore8', l2_scale)


def optimize(nn_last_layer, correct_label, learning_rate, num_classes, var_list=None, loss_scaling=False):
    """Masked cross-entropy plus the registered L2 terms, minimised by Adam over var_list (default: all trainable).

    nn_last_layer: [b, h, w, num_classes] logits; correct_label: [b, h, w, num_classes] one-hot,
    all zeros at pixels outside the evaluated area. The cross-entropy is averaged over valid
    pixels only. Returns (logits [b * h * w, num_classes], train_op, loss = cross-entropy + L2).
    loss_scaling, for float16 training (precision fp16), scales the loss before the gradients are taken
    and the gradients back after, with TF1's dynamic loss scale: it starts at 2**15, halves and skips
    the step when a gradient overflows, and doubles after 2000 steps without overflow.
    """
    logits = tf.reshape(nn_last_layer, (-1, num_classes), name='logits')
    labels = tf.reshape(correct_label, (-1, num_classes))
    pixel_losses = tf.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=logits)
    valid_pixels = tf.maximum(tf.reduce_sum(labels), 1.0)
    cross_entropy = tf.divide(tf.reduce_sum(pixel_losses), valid_pixels, name='cross_entropy')
    loss = tf.add(cross_entropy, tf.losses.get_regularization_loss(), name='loss')
    optimizer = tf.train.AdamOptimizer(learning_rate)
    if loss_scaling:
        optimizer = tf.mixed_precision.MixedPrecisionLossScaleOptimizer(optimizer, loss_scale='dynamic')
    train_op = optimizer.minimize(loss, var_list=var_list)
    return logits, train_op, loss


# ---------------------------------------------------------------- training

def initialize_new_variables(sess):
    """Initialise the variables that hold no value yet, leaving the loaded VGG16 weights as they are.

    tf.global_variables_initializer() after load_vgg would overwrite the pre-trained weights with
    the random initialisers stored in the SavedModel's graph.
    """
    uninitialized = set(sess.run(tf.report_uninitialized_variables()))
    sess.run([variable.initializer for variable in tf.global_variables() if variable.op.name.encode() in uninitialized])


class TrainingDiverged(FloatingPointError):
    """The loss or a trained weight became NaN or infinite; the message names the epoch and step."""


class TrainingInterrupted(Exception):
    """Training was asked to stop (StopSignal) in `epoch`, after its first `steps_done` steps (0: none of them)."""

    def __init__(self, epoch, steps_done):
        super().__init__(f'stopped in epoch {epoch} after {steps_done} steps')
        self.epoch, self.steps_done = epoch, steps_done


def train_nn(sess, epochs, batch_size, get_batches_fn, train_op, cross_entropy_loss, input_image,
             correct_label, keep_prob, learning_rate, keep_prob_value=0.5, learning_rate_value=5e-4,
             on_epoch_end=None, start_epoch=1, stop_requested=None):
    """Run train_op on every (images, labels) batch of get_batches_fn(batch_size), for epochs start_epoch..epochs.

    Prints each epoch's mean loss and then calls on_epoch_end(epoch, epoch_loss_rows) if given
    (validation, checkpoints). Returns [(epoch, step, loss)] with one row per step.
    Raises TrainingDiverged at the first loss that is NaN or infinite, and TrainingInterrupted at the
    first step or epoch end at which stop_requested(), if given, is true.
    """
    loss_rows = []
    num_images = getattr(get_batches_fn, 'num_images', None)
    steps_per_epoch = -(-num_images // batch_size) if num_images else None
    for epoch in range(start_epoch, epochs + 1):
        started = time.perf_counter()
        epoch_losses = []
        with tqdm(get_batches_fn(batch_size), total=steps_per_epoch, desc=f'Epoch {epoch}/{epochs}',
                  unit='batch', leave=False) as batches:
            for step, (images, labels) in enumerate(batches, start=1):
                if stop_requested is not None and stop_requested():
                    raise TrainingInterrupted(epoch, step - 1)
                _, loss = sess.run([train_op, cross_entropy_loss], {
                    input_image: images, correct_label: labels,
                    keep_prob: keep_prob_value, learning_rate: learning_rate_value})
                if not np.isfinite(loss):
                    raise TrainingDiverged(f'the loss became {float(loss)} in epoch {epoch} at step {step}'
                                           + (f' of {steps_per_epoch}' if steps_per_epoch else ''))
                epoch_losses.append(float(loss))
                loss_rows.append((epoch, step, float(loss)))
                batches.set_postfix(loss=f'{float(loss):.4f}')
        tqdm.write(f'Epoch {epoch}/{epochs}: mean loss {np.mean(epoch_losses):.4f} '
                   f'({time.perf_counter() - started:.1f} s)')
        if on_epoch_end is not None:
            on_epoch_end(epoch, loss_rows[-len(epoch_losses):])
        if stop_requested is not None and stop_requested():
            raise TrainingInterrupted(epoch + 1, 0)
    return loss_rows


class StopSignal:
    """A context in which Ctrl-C (SIGINT) or SIGTERM, what a spot instance's shutdown sends, asks training to stop.

    The first such signal only records itself (signal_number); train_nn, given stop_requested=self.requested,
    then stops before its next step, so that what was trained can be saved. Within the context a second
    signal acts as usual: Ctrl-C raises KeyboardInterrupt, SIGTERM ends the process. Signals can only be
    caught in the main thread; elsewhere the context changes nothing.
    """
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signal_number = None
        self.previous_handlers = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous_handlers = {number: signal.signal(number, self.record) for number in self.SIGNALS}
        return self

    def __exit__(self, *exc_info):
        self.restore_handlers()

    def record(self, signal_number, frame):
        """Signal handler: remember the signal, hand later ones back to the previous handlers, and say so."""
        self.signal_number = signal_number
        self.restore_handlers()
        os.write(2, f'\n{signal.Signals(signal_number).name}: stopping before the next step to save the weights; '
                    'send it again to stop at once.\n'.encode())

    def restore_handlers(self):
        """Give SIGINT and SIGTERM back to the handlers they had before the context."""
        for number, handler in self.previous_handlers.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        self.previous_handlers = {}

    def requested(self):
        """Whether a stop was asked for."""
        return self.signal_number is not None


def make_run_dir(runs_dir):
    """Create and return runs_dir/<YYYYmmdd-HHMMSS>, with a suffix if that name is taken."""
    stamp = time.strftime('%Y%m%d-%H%M%S')
    for attempt in range(100):
        run_dir = os.path.join(runs_dir, stamp if attempt == 0 else f'{stamp}-{attempt}')
        try:
            os.makedirs(run_dir)
            return run_dir
        except FileExistsError:
            continue
    raise FileExistsError(f'could not create a new run folder under {runs_dir}')


def write_atomically(path, text):
    """Write text to path through a temporary file, synced and renamed: path holds its old text or all the new."""
    temporary_path = path + '.tmp'
    with open(temporary_path, 'w', newline='') as temporary_file:
        temporary_file.write(text)
        temporary_file.flush()
        os.fsync(temporary_file.fileno())
    os.replace(temporary_path, path)


def save_config(config, run_dir):
    """Write config as run_dir/config.json."""
    write_atomically(os.path.join(run_dir, 'config.json'), json.dumps(dataclasses.asdict(config), indent=2))


def write_loss_csv(loss_rows, csv_path):
    """Write [(epoch, step, loss)] as a CSV with a header row, replacing csv_path whole (write_atomically)."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(('epoch', 'step', 'loss'))
    writer.writerows(loss_rows)
    write_atomically(csv_path, text.getvalue())


def append_loss_rows(loss_rows, csv_path):
    """Append [(epoch, step, loss)] to the CSV at csv_path and sync them to disk."""
    with open(csv_path, 'a', newline='') as csv_file:
        csv.writer(csv_file).writerows(loss_rows)
        csv_file.flush()
        os.fsync(csv_file.fileno())


def read_loss_csv(csv_path):
    """[(epoch, step, loss)] of a loss.csv ([] when there is none), skipping a row torn by a kill mid-write."""
    if not os.path.exists(csv_path):
        return []
    loss_rows = []
    with open(csv_path, newline='') as csv_file:
        for fields in list(csv.reader(csv_file))[1:]:
            try:
                loss_rows.append((int(fields[0]), int(fields[1]), float(fields[2])))
            except (ValueError, IndexError):
                continue
    return loss_rows


CHECKPOINTS_KEPT = 3  # the last epochs whose checkpoints are kept, besides the one of the best validation MaxF
EPOCH_FOLDER = re.compile(r'^epoch-(\d+)$')


class EpochCheckpoints:
    """A run's checkpoint/ folder: the checkpoint of each finished epoch in epoch-NNN/, kept as training goes on.

    Each epoch-NNN/ holds a whole TensorFlow checkpoint (model.index, model.data-*, model.meta) and
    epoch.json ({"epoch": N, "val_maxf": its validation MaxF or null}). It is written in full into a
    hidden .partial folder and then renamed, so it is complete or absent. TensorFlow's `checkpoint` file,
    replaced the same way, names the newest: tf.train.latest_checkpoint(folder) returns it. The last
    `keep` epochs are kept, and the one with the best validation MaxF. The weights of an interrupted
    epoch go to epoch-NNN-step-SSSS/, the newest until the next finished epoch replaces it; resuming
    starts from the last finished epoch.
    """

    def __init__(self, folder, trained_variables, keep=CHECKPOINTS_KEPT):
        self.folder, self.keep = folder, keep
        self.saver = tf.train.Saver(max_to_keep=None)  # pruning is done here, by epoch
        self.weights_finite = tf.reduce_all([tf.reduce_all(tf.is_finite(variable)) for variable in trained_variables])
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if name.startswith('.partial-'):
                shutil.rmtree(os.path.join(folder, name))

    def model_path(self, name):
        """The checkpoint prefix inside the folder `name`, as Saver.restore and tf.train.latest_checkpoint use it."""
        return os.path.join(self.folder, name, 'model')

    def finished_epochs(self):
        """{epoch: validation MaxF or None} of the epoch-NNN/ folders present."""
        finished = {}
        for name in os.listdir(self.folder):
            if EPOCH_FOLDER.match(name):
                with open(os.path.join(self.folder, name, 'epoch.json')) as epoch_file:
                    saved = json.load(epoch_file)
                finished[saved['epoch']] = saved['val_maxf']
        return finished

    def last_finished(self):
        """(epoch, checkpoint prefix) of the last finished epoch, or None when no epoch has finished."""
        finished = self.finished_epochs()
        return (max(finished), self.model_path(f'epoch-{max(finished):03d}')) if finished else None

    def describe_last(self):
        """A sentence for a person: which epoch is the last one checkpointed, and where."""
        last = self.last_finished()
        if last is None:
            return 'No epoch had finished, so none is checkpointed.'
        return f'The last finished epoch, {last[0]}, is checkpointed in {os.path.dirname(last[1])}.'

    def restore_last(self, sess):
        """Restore the last finished epoch's weights and optimizer state into sess; returns the epoch, 0 for none."""
        last = self.last_finished()
        if last is None:
            return 0
        self.saver.restore(sess, last[1])
        return last[0]

    def save(self, sess, epoch, val_maxf=None):
        """Checkpoint the finished epoch (val_maxf: its overall validation MaxF, if scored); prune the others.

        Raises TrainingDiverged, saving nothing, when a trained weight is NaN or infinite.
        """
        if not sess.run(self.weights_finite):
            raise TrainingDiverged(f'a trained weight became NaN or infinite in epoch {epoch}')
        self.write(sess, f'epoch-{epoch:03d}', {'epoch': epoch, 'val_maxf': val_maxf})
        finished = self.finished_epochs()
        kept_epochs = set(sorted(finished)[-self.keep:])
        scored = sorted(number for number, maxf in finished.items() if maxf is not None)
        if scored:
            kept_epochs.add(max(scored, key=finished.get))  # the earliest of equals
        kept = [f'epoch-{number:03d}' for number in sorted(kept_epochs)]
        self.write_index(kept)
        for name in os.listdir(self.folder):
            if name.startswith('epoch-') and name not in kept:
                shutil.rmtree(os.path.join(self.folder, name))

    def save_interrupted(self, sess, epoch, steps_done):
        """Checkpoint the weights after the first steps_done steps of an unfinished epoch; returns its folder."""
        name = f'epoch-{epoch:03d}-step-{steps_done:04d}'
        self.write(sess, name, {'epoch': epoch, 'steps_done': steps_done})
        self.write_index([f'epoch-{number:03d}' for number in sorted(self.finished_epochs())] + [name])
        return os.path.join(self.folder, name)

    def write(self, sess, name, description):
        """Write the checkpoint and its epoch.json into .partial-<name>/, then rename that to <name>/."""
        partial_folder = os.path.join(self.folder, f'.partial-{name}')
        self.saver.save(sess, os.path.join(partial_folder, 'model'), write_state=False)
        with open(os.path.join(partial_folder, 'epoch.json'), 'w') as description_file:
            json.dump(description, description_file)
        final_folder = os.path.join(self.folder, name)
        shutil.rmtree(final_folder, ignore_errors=True)  # an interrupted epoch's earlier stop at the same step
        os.replace(partial_folder, final_folder)

    def write_index(self, names):
        """Replace TensorFlow's `checkpoint` file: all the given folders' checkpoints, the last one the newest."""
        lines = [f'model_checkpoint_path: "{names[-1]}/model"'] + [
            f'all_model_checkpoint_paths: "{name}/model"' for name in names]
        write_atomically(os.path.join(self.folder, 'checkpoint'), '\n'.join(lines) + '\n')


OVERLAY_JPEG_QUALITY = 90


class RunSummaries:
    """TensorBoard event files in a run's tensorboard/ folder, written at the end of every epoch.

    Scalars: loss/step (every step), loss/epoch_mean, learning_rate and, for epochs that were
    scored, validation/<category or overall>/<measure>. Images: overlays/<name>, a few testing
    images at the network's input size with their predicted road painted green. Steps count
    training steps from the run's start, so a resumed run continues the curves; the session-start
    marker at its first step makes TensorBoard drop what an interrupted session wrote after it.
    """

    def __init__(self, log_dir, graph, steps_per_epoch, start_epoch, predict, overlay_images):
        self.writer = tf.summary.FileWriter(log_dir, graph)
        self.steps_per_epoch, self.predict, self.overlay_images = steps_per_epoch, predict, overlay_images
        self.writer.add_session_log(tf.SessionLog(status=tf.SessionLog.START), self.global_step(start_epoch, 1))

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.writer.close()

    def global_step(self, epoch, step):
        """Training steps from the start of the run to `step` of `epoch`."""
        return (epoch - 1) * self.steps_per_epoch + step

    def add_epoch(self, epoch, epoch_loss_rows, learning_rate, scores=None):
        """Write a finished epoch: its [(epoch, step, loss)] rows, learning rate, score_road scores (or None)."""
        for _, step, loss in epoch_loss_rows:
            self.writer.add_summary(tf.Summary(value=[tf.Summary.Value(tag='loss/step', simple_value=loss)]),
                                    self.global_step(epoch, step))
        scalars = {'loss/epoch_mean': np.mean([loss for _, _, loss in epoch_loss_rows]), 'learning_rate': learning_rate}
        scalars.update({f'validation/{group}/{name}': value for group, measures in (scores or {}).items()
                        for name, value in measures.items() if name != 'images'})
        values = [tf.Summary.Value(tag=tag, simple_value=value) for tag, value in scalars.items()]
        self.writer.add_summary(tf.Summary(value=values + self.overlay_values()),
                                self.global_step(epoch, epoch_loss_rows[-1][1]))
        self.writer.flush()

    def overlay_values(self):
        """tf.Summary.Values of the overlay images as predicted now, JPEG-encoded."""
        values = []
        road_probs = self.predict([image for _, image in self.overlay_images]) if self.overlay_images else []
        for (name, image), road_prob in zip(self.overlay_images, road_probs):
            jpeg = io.BytesIO()
            Image.fromarray(helper.paint_road(image, road_prob)).save(jpeg, 'JPEG', quality=OVERLAY_JPEG_QUALITY)
            values.append(tf.Summary.Value(tag=f'overlays/{name}', image=tf.Summary.Image(
                height=image.shape[0], width=image.shape[1], colorspace=3, encoded_image_string=jpeg.getvalue())))
        return values


def summary_overlay_images(road_path, image_shape):
    """[(file name, [height, width, 3] uint8 image)]: the first testing image of each category, at image_shape."""
    test_dir = os.path.join(road_path, 'testing', 'image_2')
    first_of_category = {}
    for name in sorted(os.listdir(test_dir)):
        match = helper.IMAGE_NAME.match(name)
        if match:
            first_of_category.setdefault(match[1], name)
    return [(name, helper.load_image(os.path.join(test_dir, name), image_shape)) for name in first_of_category.values()]


# ---------------------------------------------------------------- validation

def split_for_run(training_folder, config, run_dir):
    """(train_pairs, val_pairs) of training_folder by config.val_count and config.seed; writes run_dir/split.json."""
    pairs = helper.list_training_pairs(training_folder)
    try:
        train_pairs, val_pairs = helper.split_training_pairs(pairs, config.val_count, config.seed)
    except ValueError as error:
        sys.exit(f'error: {error}')
    with open(os.path.join(run_dir, 'split.json'), 'w') as split_file:
        json.dump({'train': [os.path.basename(image) for image, _ in train_pairs],
                   'val': [os.path.basename(image) for image, _ in val_pairs]}, split_file, indent=1)
    print(f'{len(train_pairs)} training images, {len(val_pairs)} held out for validation')
    return train_pairs, val_pairs


def format_scores(scores):
    """A text table of score_road's results: one row per category, the KITTI road measures in percent."""
    columns = ('MaxF', 'AP', 'PRE', 'REC', 'FPR', 'FNR', 'IoU')
    lines = [f"{'':8}" + ''.join(f'{column:>8}' for column in columns) + f"{'thresh':>8}{'images':>8}"]
    for name, measures in scores.items():
        lines.append(f'{name:8}' + ''.join(f'{100 * measures[column]:8.2f}' for column in columns)
                     + f"{measures['threshold']:8.3f}{measures['images']:8d}")
    return '\n'.join(lines)


def validator(predict, val_pairs, config, run_dir, start_epoch=1):
    """on_epoch_end hook for train_nn: scores val_pairs after the last epoch and every config.eval_every epochs.

    Each evaluation prints the table and rewrites run_dir/metrics.json (the latest scores per category,
    with the overall MaxF and IoU of every evaluated epoch under 'history') and run_dir/pr_curve.png.
    A resumed run (start_epoch > 1) keeps the history of the epochs before start_epoch.
    """
    metrics_path = os.path.join(run_dir, 'metrics.json')
    history = []
    if start_epoch > 1 and os.path.exists(metrics_path):
        with open(metrics_path) as metrics_file:
            history = [entry for entry in json.load(metrics_file)['history'] if entry['epoch'] < start_epoch]

    def validate(epoch, epoch_loss_rows):
        due = epoch == config.epochs or (config.eval_every and epoch % config.eval_every == 0)
        if not val_pairs or not due:
            return None
        counts = helper.evaluate_road(predict, val_pairs)
        scores = helper.score_road(counts)
        history.append({'epoch': epoch, 'MaxF': scores['overall']['MaxF'], 'IoU': scores['overall']['IoU']})
        tqdm.write(f'Validation after epoch {epoch} ({len(val_pairs)} images, KITTI road measures in %):\n'
                   + format_scores(scores))
        write_atomically(metrics_path, json.dumps({'epoch': epoch, **scores, 'history': history}, indent=2))
        helper.save_pr_curve(counts, os.path.join(run_dir, 'pr_curve.png'))
        return scores

    return validate


# ---------------------------------------------------------------- speed: the classic loop against this project

BENCH_INFER_BATCH_SIZES = (1, 8)
# The n x n matrix products (2 n**3 FLOP each) whose fastest measures the machine's peak: which n runs best
# depends on the machine's caches and its load. On a big GPU they are small enough for launch overheads to
# count, so there the peak is an underestimate.
MATMUL_PROBE_SIZES = (1024, 2048, 3072)
MATMUL_DTYPES = {'fp16': tf.float16, 'bf16': tf.bfloat16, 'fp32': tf.float32}
# A training step costs about three forward passes: the pass itself, then the gradients with respect to the
# activations and with respect to the weights, each about as many multiply-adds as the pass.
TRAIN_FLOP_PER_FORWARD_FLOP = 3


def seconds_of(function, *args):
    """Wall-clock seconds that function(*args) takes."""
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def matmul_peak_gflops(precision, sizes=MATMUL_PROBE_SIZES, repeats=3):
    """The machine's measured peak in GFLOP/s at precision: its fastest n x n matrix product, n in sizes.

    Each size runs once untimed, then `repeats` times; the fastest run of the fastest size counts. The
    operands are variables of precision's dtype (fp32 float32, bf16 bfloat16, fp16 float16), in a
    session of TensorFlow's defaults, on the device TensorFlow places them (a GPU if there is one).
    """
    with tf.Graph().as_default(), tf.Session() as sess:
        product_sums = {}
        for size in sizes:
            left, right = (tf.Variable(tf.cast(tf.random.normal([size, size]), MATMUL_DTYPES[precision]))
                           for _ in range(2))
            product_sums[size] = tf.reduce_sum(tf.cast(tf.matmul(left, right), tf.float32))  # a scalar fetch
        sess.run(tf.global_variables_initializer())
        gflops = []
        for size, product_sum in product_sums.items():
            sess.run(product_sum)
            gflops.append(2 * size ** 3 / min(seconds_of(sess.run, product_sum) for _ in range(repeats)) / 1e9)
    return max(gflops)


def conv_gflop_per_image(sess, image_input, keep_prob, image_shape):
    """GFLOP of one image's forward pass through the convolutions of sess's graph: 2 x their multiply-adds.

    Counted from the graph: every Conv2D, and every Conv2DBackpropInput outside the gradients (the
    decoder's transposed convolutions), sized by a batch-1 pass at image_shape (height, width). A
    convolution makes (its output's height x width) x (kernel height x width x in x out channels)
    multiply-adds; a transposed one the same with its input's height x width. ReLU, pooling and the
    loss are left out: they are under 1% of the work.
    """
    convolutions = [op for op in sess.graph.get_operations()
                    if op.type in ('Conv2D', 'Conv2DBackpropInput') and not op.name.startswith('gradients')]
    slid_over = [op.outputs[0] if op.type == 'Conv2D' else op.inputs[2] for op in convolutions]
    kernels = [op.inputs[1] for op in convolutions]
    shapes = sess.run([tf.shape(tensor) for tensor in slid_over + kernels],
                      {image_input: np.zeros((1, *image_shape, 3), np.float32), keep_prob: 1.0})
    multiply_adds = sum(np.prod(slid_shape[1:3], dtype=np.int64) * np.prod(kernel_shape, dtype=np.int64)
                        for slid_shape, kernel_shape in zip(shapes[:len(convolutions)], shapes[len(convolutions):]))
    return 2 * float(multiply_adds) / 1e9


def classic_batches(pairs, image_shape, batch_size):
    """Endless (images, labels) batches made as the seed made them: no cache, no prefetch, no augmentation.

    Each batch reads, decodes and resizes its PNG files in Python, one after another, while the model
    waits; each epoch goes through pairs [(image path, label path)] in a new random order. images
    [b, h, w, 3] float32 RGB 0..255 and labels [b, h, w, 2] float32 one-hot, at image_shape (height, width).
    """
    while True:
        order = np.random.permutation(len(pairs))
        for start in range(0, len(order), batch_size):
            batch_pairs = [pairs[index] for index in order[start:start + batch_size]]
            images = [helper.load_image(image_path, image_shape) for image_path, _ in batch_pairs]
            labels = [helper.label_to_one_hot(helper.load_image(label_path, image_shape, Image.NEAREST))
                      for _, label_path in batch_pairs]
            yield np.stack(images).astype(np.float32), np.stack(labels)


def endless_batches(get_batches_fn, batch_size):
    """The (images, labels) batches of get_batches_fn(batch_size), epoch after epoch, without end."""
    while True:
        yield from get_batches_fn(batch_size)


@dataclasses.dataclass
class BenchSubject:
    """One way of running FCN-8s that bench measures: a graph and session of its own, open for the whole bench."""
    mode: str             # 'classic' or 'project'
    precision: str        # one of PRECISIONS
    batches: object       # endless iterator of training (images, labels)
    train_step: object    # train_step(images, labels): one training step, as train_nn runs it
    infer: object         # infer(batch_size): the road probability of batch_size network-size images in memory
    forward_gflop: float  # conv_gflop_per_image of its graph

    @property
    def name(self):
        """'classic_fp32', 'project_bf16', ...: the key of its figures in bench's results."""
        return f'{self.mode}_{self.precision}'


def open_bench_subject(stack, mode, precision, vgg_path, pairs, options):
    """A BenchSubject of FCN-8s on the VGG16 at vgg_path, whose session and batches close with the ExitStack stack.

    mode 'classic' is the seed's loop: batches from classic_batches, a default (fp32) session. mode
    'project' is this project's: batches from helper.gen_batch_function over the same files (decoded
    once, augmented and prefetched by a background thread), a session_config(precision) session.
    Training trains every weight, as the classic project did. GPU memory grows as needed, so that the
    subjects' sessions fit on one GPU together.
    """
    image_shape = (options.image_height, options.image_width)
    defaults = TrainConfig()
    config = session_config(precision)
    config.gpu_options.allow_growth = True
    graph = tf.Graph()
    sess = stack.enter_context(tf.Session(graph=graph, config=config))
    with graph.as_default():
        image_input, keep_prob, layer3_out, layer4_out, layer7_out = load_vgg(sess, vgg_path)
        nn_last_layer = layers(layer3_out, layer4_out, layer7_out, NUM_CLASSES)
        correct_label = tf.placeholder(tf.float32, [None, None, None, NUM_CLASSES])
        learning_rate = tf.placeholder(tf.float32)
        logits, train_op, loss = optimize(nn_last_layer, correct_label, learning_rate, NUM_CLASSES,
                                          loss_scaling=precision == 'fp16')
        road_prob = helper.network_road_prob(logits, image_shape)
        initialize_new_variables(sess)
        forward_gflop = conv_gflop_per_image(sess, image_input, keep_prob, image_shape)
    if mode == 'classic':
        batches = classic_batches(pairs, image_shape, options.batch_size)
    else:
        training_folder = os.path.dirname(os.path.dirname(pairs[0][0]))
        batches = endless_batches(helper.gen_batch_function(training_folder, image_shape, pairs=pairs,
                                                            augmentation=helper.Augmentation()), options.batch_size)
    stack.enter_context(contextlib.closing(batches))
    network_images = np.stack([helper.load_image(image_path, image_shape) for image_path, _ in pairs])
    network_images = network_images.astype(np.float32)  # [images, h, w, 3] RGB 0..255, fed to inference

    def train_step(images, labels):
        """One training step on [b, h, w, 3] images and [b, h, w, 2] one-hot labels."""
        sess.run([train_op, loss], {image_input: images, correct_label: labels, keep_prob: defaults.keep_prob,
                                    learning_rate: defaults.learning_rate})

    def infer(batch_size):
        """Compute the road probability [batch_size, h, w] of the first batch_size images (and drop it)."""
        sess.run(road_prob, {image_input: network_images[:batch_size], keep_prob: 1.0})

    return BenchSubject(mode, precision, batches, train_step, infer, forward_gflop)


def time_training(subjects, warmup_steps, steps):
    """{subject name: {'step': [seconds], 'wait': [seconds], 'memory': [seconds]}} of interleaved training steps.

    Each round runs one step of every subject in turn, in reverse order every other round, so that
    changes in the machine's load reach them all alike: warmup_steps rounds untimed, then `steps`
    timed. A step is timed from asking for its batch (the 'wait' until it comes) to the end of the
    step. Project subjects then run the same batch again from memory ('memory'), which is what their
    steps would take with no input pipeline at all.
    """
    times = {subject.name: {'step': [], 'wait': [], 'memory': []} for subject in subjects}
    for round_number in tqdm(range(warmup_steps + steps), desc='Training steps, interleaved', unit='round'):
        for subject in subjects[::-1] if round_number % 2 else subjects:
            asked = time.perf_counter()
            images, labels = next(subject.batches)
            received = time.perf_counter()
            subject.train_step(images, labels)
            stepped = time.perf_counter()
            memory_seconds = seconds_of(subject.train_step, images, labels) if subject.mode == 'project' else None
            if round_number >= warmup_steps:
                times[subject.name]['step'].append(stepped - asked)
                times[subject.name]['wait'].append(received - asked)
                if memory_seconds is not None:
                    times[subject.name]['memory'].append(memory_seconds)
    return times


def time_inference(subjects, batch_size, warmup_steps, steps):
    """{subject name: [seconds]} of interleaved inference calls at batch_size, as time_training interleaves steps."""
    times = {subject.name: [] for subject in subjects}
    for round_number in tqdm(range(warmup_steps + steps), desc=f'Inference at batch {batch_size}, interleaved',
                             unit='round'):
        for subject in subjects[::-1] if round_number % 2 else subjects:
            seconds = seconds_of(subject.infer, batch_size)
            if round_number >= warmup_steps:
                times[subject.name].append(seconds)
    return times


def subject_speed(subject, training_times, inference_times, options, peak_gflops):
    """The figures of one subject from the median of its timed steps and calls (bench's 'modes' entries).

    Its shares of the peak divide the GFLOP/s it reaches by peak_gflops[its precision].
    """
    peak = peak_gflops[subject.precision]
    step_seconds = float(np.median(training_times['step']))
    speed = {
        'train_images_per_s': options.batch_size / step_seconds,
        'train_ms_per_step': 1000 * step_seconds,
        'train_input_wait_ms_per_step': 1000 * float(np.median(training_times['wait'])),
        'train_share_of_peak': (options.batch_size / step_seconds * TRAIN_FLOP_PER_FORWARD_FLOP * subject.forward_gflop
                                / peak),
    }
    if training_times['memory']:
        memory_seconds = float(np.median(training_times['memory']))
        speed['train_ms_per_step_in_memory'] = 1000 * memory_seconds
        speed['train_files_over_memory'] = step_seconds / memory_seconds
    for batch_size, times in inference_times.items():
        batch_seconds = float(np.median(times[subject.name]))
        speed[f'infer_b{batch_size}_images_per_s'] = batch_size / batch_seconds
        speed[f'infer_b{batch_size}_ms_per_batch'] = 1000 * batch_seconds
        speed[f'infer_b{batch_size}_share_of_peak'] = batch_size / batch_seconds * subject.forward_gflop / peak
    return speed


def machine_description():
    """What the bench ran on: CPU model, cores and vector flags, GPUs, TensorFlow version, available precisions."""
    cpu = cpu_info()
    return {
        'cpu': cpu.get('model name', 'unknown'),
        'cpu_cores': os.cpu_count(),
        'cpu_vector_flags': sorted(flag for flag in cpu.get('flags', '').split() if flag.startswith(('avx', 'amx'))),
        'gpus': [tf.config.experimental.get_device_details(gpu).get('device_name', gpu.name)
                 for gpu in tf.config.list_physical_devices('GPU')],
        'tensorflow': tf.version.VERSION,
        'available_precisions': list(available_precisions()),
    }


def bench(options):
    """Measure the classic loop and this project at each of options.precisions, in one run; returns the results.

    The VGG16 (random weights, width options.width) is built once into options.cache_dir and reused;
    synthetic KITTI files, as many as make whole training batches and an inference batch of 8, are
    written to a temporary folder for this run. All subjects are open at once and measured in
    interleaved rounds. Each precision's matmul peak is probed before and after, and the larger kept.
    See the README's Speed section for every key.
    """
    started = time.perf_counter()
    vgg_path = os.path.join(options.cache_dir, f'vgg16_width_{options.width:g}')
    if not os.path.exists(vgg_path):
        print(f'Building a random VGG16 SavedModel of width {options.width:g} in {vgg_path} (kept for later benches)')
        os.makedirs(options.cache_dir, exist_ok=True)
        helper.build_vgg16_savedmodel(vgg_path, width=options.width)
    precisions = tuple(dict.fromkeys(('fp32', *options.precisions)))
    peak_gflops_before = {precision: matmul_peak_gflops(precision) for precision in precisions}
    categories = len(helper.KITTI_CATEGORIES)
    images_per_category = options.batch_size * -(-max(BENCH_INFER_BATCH_SIZES) // (categories * options.batch_size))
    with tempfile.TemporaryDirectory(prefix='fcn8s-bench-') as road_path, contextlib.ExitStack() as stack:
        helper.make_synthetic_kitti(road_path, train_per_category=images_per_category, test_per_category=0)
        pairs = helper.list_training_pairs(os.path.join(road_path, 'training'))
        subjects = [open_bench_subject(stack, 'classic', 'fp32', vgg_path, pairs, options)]
        subjects += [open_bench_subject(stack, 'project', precision, vgg_path, pairs, options)
                     for precision in options.precisions]
        training_times = time_training(subjects, options.warmup_steps, options.steps)
        inference_times = {batch_size: time_inference(subjects, batch_size, options.warmup_steps, options.steps)
                           for batch_size in BENCH_INFER_BATCH_SIZES}
    peak_gflops = {precision: max(peak_gflops_before[precision], matmul_peak_gflops(precision))
                   for precision in precisions}
    modes = {subject.name: subject_speed(subject, training_times[subject.name], inference_times, options, peak_gflops)
             for subject in subjects}
    classic = modes['classic_fp32']
    speedups = {name: {'train': speed['train_images_per_s'] / classic['train_images_per_s'],
                       **{f'infer_b{batch_size}': speed[f'infer_b{batch_size}_images_per_s']
                          / classic[f'infer_b{batch_size}_images_per_s'] for batch_size in BENCH_INFER_BATCH_SIZES}}
                for name, speed in modes.items() if name != 'classic_fp32'}
    best_train = max(speedups, key=lambda name: speedups[name]['train'])
    best_infer = max(speedups, key=lambda name: speedups[name]['infer_b8'])
    return {
        'train_speedup': speedups[best_train]['train'],
        'train_speedup_mode': best_train,
        'infer_speedup_b8': speedups[best_infer]['infer_b8'],
        'infer_speedup_b8_mode': best_infer,
        'peak_gflops': peak_gflops['fp32'],
        'peak_gflops_by_precision': peak_gflops,
        'gflop_per_image': {'inference': subjects[0].forward_gflop,
                            'training': TRAIN_FLOP_PER_FORWARD_FLOP * subjects[0].forward_gflop},
        'speedups': speedups,
        'modes': modes,
        'settings': {'image_height': options.image_height, 'image_width': options.image_width,
                     'batch_size': options.batch_size, 'vgg_width': options.width,
                     'warmup_steps': options.warmup_steps, 'steps': options.steps,
                     'synthetic_images': len(pairs)},
        'machine': machine_description(),
        'seconds': time.perf_counter() - started,
    }


def format_bench(result):
    """A text report of bench's result: one row per mode, then the speedups over the classic loop."""
    settings, machine = result['settings'], result['machine']
    peaks = ', '.join(f'{precision} {gflops:.0f}' for precision, gflops in result['peak_gflops_by_precision'].items())
    lines = [
        f"FCN-8s at {settings['image_height']}x{settings['image_width']}, training batch {settings['batch_size']}, "
        f"VGG16 width {settings['vgg_width']:g} (random weights); {settings['warmup_steps']} warm-up and "
        f"{settings['steps']} timed steps per figure",
        f"Machine: {machine['cpu']}, {machine['cpu_cores']} cores, GPUs: {', '.join(machine['gpus']) or 'none'}; "
        f"TensorFlow {machine['tensorflow']}; precisions available: {', '.join(machine['available_precisions'])}",
        f'Matmul peak (GFLOP/s): {peaks}. Counted per image: {result["gflop_per_image"]["inference"]:.3g} GFLOP '
        f'forward, {result["gflop_per_image"]["training"]:.3g} GFLOP training',
        '',
        f"{'mode':14}{'train img/s':>12}{'ms/step':>10}{'wait ms':>9}{'% peak':>8}"
        f"{'infer b1 img/s':>16}{'b8 img/s':>10}{'% peak':>8}{'files/memory':>14}",
    ]
    for name, speed in result['modes'].items():
        files_over_memory = speed.get('train_files_over_memory')
        lines.append(
            f"{name:14}{speed['train_images_per_s']:12.3f}{speed['train_ms_per_step']:10.0f}"
            f"{speed['train_input_wait_ms_per_step']:9.1f}{100 * speed['train_share_of_peak']:8.1f}"
            f"{speed['infer_b1_images_per_s']:16.3f}{speed['infer_b8_images_per_s']:10.3f}"
            f"{100 * speed['infer_b8_share_of_peak']:8.1f}"
            + (f'{files_over_memory:14.3f}' if files_over_memory else f"{'-':>14}"))
    lines.append('')
    for name, ratios in result['speedups'].items():
        lines.append(f"{name} over classic_fp32: training {ratios['train']:.2f}x, inference batch 1 "
                     f"{ratios['infer_b1']:.2f}x, batch 8 {ratios['infer_b8']:.2f}x")
    lines.append(f"train_speedup {result['train_speedup']:.2f}x ({result['train_speedup_mode']}), infer_speedup_b8 "
                 f"{result['infer_speedup_b8']:.2f}x ({result['infer_speedup_b8_mode']}); "
                 f"{result['seconds']:.0f} s in all")
    return '\n'.join(lines)


# ---------------------------------------------------------------- command line

def new_run_dir(config):
    """Create runs_dir/<timestamp>/ holding config.json; exits naming the folder when it cannot be written."""
    try:
        run_dir = make_run_dir(config.runs_dir)
        save_config(config, run_dir)
    except OSError as error:
        sys.exit(f'error: cannot write a run folder in {config.runs_dir} ({error}). Make it writable, or choose '
                 'another folder with --runs-dir.')
    return run_dir


def train(config, resume_dir=None):
    """Train FCN-8s as configured in a new runs/<timestamp>/, or go on with the run in resume_dir; returns the folder.

    The data is checked first (helper.check_kitti_folder): warnings are printed, errors end the process
    naming every bad file. Each epoch is kept as soon as it ends: its loss rows are appended to loss.csv,
    its summaries to tensorboard/, its checkpoint written to checkpoint/epoch-NNN/. Ctrl-C or SIGTERM
    stops training before the next step, saves the weights and exits with 128 + the signal's number; a
    loss that becomes NaN or infinite ends it with a message naming the epoch and step. A resumed run
    restores its last finished epoch (weights and optimizer state) and trains the epochs after it.
    """
    started = time.perf_counter()
    precision = chosen_precision(config.precision)
    try:
        data_dir, vgg_path = prepare_data(config)
        road_path = os.path.join(data_dir, 'data_road')
        data_check = helper.check_kitti_folder(road_path, config.image_shape)
        for warning in data_check.warnings:
            print(f'warning: {warning}')
        data_check.raise_errors()
    except (helper.DataUnavailableError, helper.DataError) as error:
        sys.exit(f'error: {error}')
    np.random.seed(config.seed)

    with tf.Graph().as_default(), tf.Session(config=session_config(precision)) as sess:
        tf.set_random_seed(config.seed)
        try:
            input_image, keep_prob, layer3_out, layer4_out, layer7_out = load_vgg(sess, vgg_path)
        except ValueError as error:
            sys.exit(f'error: {error}')
        vgg_variables = set(tf.global_variables())
        nn_last_layer = layers(layer3_out, layer4_out, layer7_out, NUM_CLASSES, pool_scaling=config.pool_scaling,
                               init_stddev=config.init_stddev, l2_scale=config.l2_scale)
        correct_label = tf.placeholder(tf.float32, [None, None, None, NUM_CLASSES], name='correct_label')
        learning_rate = tf.placeholder(tf.float32, name='learning_rate')
        trained_variables = None if config.train_encoder else [
            variable for variable in tf.trainable_variables() if variable not in vgg_variables]
        logits, train_op, loss = optimize(nn_last_layer, correct_label, learning_rate, NUM_CLASSES, trained_variables,
                                          loss_scaling=precision == 'fp16')
        initialize_new_variables(sess)

        run_dir = resume_dir or new_run_dir(config)
        checkpoints = EpochCheckpoints(os.path.join(run_dir, 'checkpoint'),
                                       trained_variables or tf.trainable_variables())
        start_epoch = checkpoints.restore_last(sess) + 1
        if start_epoch > config.epochs + 1:
            sys.exit(f'error: {run_dir} has finished {start_epoch - 1} epochs; --epochs {config.epochs} is fewer.')
        loss_csv_path = os.path.join(run_dir, 'loss.csv')
        write_loss_csv([row for row in read_loss_csv(loss_csv_path) if row[0] < start_epoch], loss_csv_path)
        if resume_dir:
            save_config(config, run_dir)  # --epochs may have changed
            print(f'Resuming {run_dir} after epoch {start_epoch - 1} of {config.epochs}')
        else:
            print(f'Run folder: {run_dir}')

        training_folder = os.path.join(road_path, 'training')
        train_pairs, val_pairs = split_for_run(training_folder, config, run_dir)
        get_batches_fn = helper.gen_batch_function(training_folder, config.image_shape, pairs=train_pairs,
                                                   augmentation=config.augmentation)
        predict = helper.session_road_predictor(sess, logits, keep_prob, input_image, config.image_shape)
        validate = validator(predict, val_pairs, config, run_dir, start_epoch)
        summaries = RunSummaries(os.path.join(run_dir, 'tensorboard'), sess.graph,
                                 -(-get_batches_fn.num_images // config.batch_size), start_epoch, predict,
                                 summary_overlay_images(road_path, config.image_shape))

        def end_epoch(epoch, epoch_loss_rows):
            """Validation when due, the epoch's loss rows and summaries, then its checkpoint: that marks it finished."""
            scores = validate(epoch, epoch_loss_rows)
            append_loss_rows(epoch_loss_rows, loss_csv_path)
            summaries.add_epoch(epoch, epoch_loss_rows, config.learning_rate, scores)
            checkpoints.save(sess, epoch, val_maxf=None if scores is None else scores['overall']['MaxF'])

        with summaries, StopSignal() as stop_signal:
            try:
                train_nn(sess, config.epochs, config.batch_size, get_batches_fn, train_op, loss, input_image,
                         correct_label, keep_prob, learning_rate,
                         keep_prob_value=config.keep_prob, learning_rate_value=config.learning_rate,
                         on_epoch_end=end_epoch, start_epoch=start_epoch, stop_requested=stop_signal.requested)
            except TrainingDiverged as divergence:
                sys.exit(f'error: {divergence}. {checkpoints.describe_last()} Start a new run with a lower '
                         f'--learning-rate (this run had {config.learning_rate:g}).')
            except TrainingInterrupted as interruption:
                if interruption.steps_done:
                    saved = checkpoints.save_interrupted(sess, interruption.epoch, interruption.steps_done)
                    print(f'Stopped in epoch {interruption.epoch} after step {interruption.steps_done}; the weights '
                          f'after that step are in {saved}.')
                print(f'{checkpoints.describe_last()} To go on from there: python main.py --resume {run_dir}')
                sys.exit(128 + stop_signal.signal_number)

        helper.save_loss_curve(read_loss_csv(loss_csv_path), os.path.join(run_dir, 'loss.png'))
        model_dir = os.path.join(run_dir, 'model')
        shutil.rmtree(model_dir, ignore_errors=True)  # a resumed run that had exported it exports it again
        helper.export_model(sess, input_image, keep_prob, logits, config.image_shape, model_dir)
        helper.save_inference_samples(config.runs_dir, data_dir, sess, config.image_shape, logits, keep_prob,
                                      input_image, output_dir=os.path.join(run_dir, 'overlays'))
    print(f'Done in {time.perf_counter() - started:.0f} s: {run_dir}')
    return run_dir


def build_vgg_command(argv):
    """`python main.py build-vgg`: write the classic VGG16 SavedModel, ImageNet or random weights; returns its path."""
    parser = argparse.ArgumentParser(
        prog='main.py build-vgg',
        description="Write a VGG16 SavedModel with the classic interface of the course's vgg.zip (tag vgg16; "
                    'image_input, keep_prob, layer3_out, layer4_out, layer7_out), for when that zip cannot be '
                    "downloaded. ImageNet weights come from Keras's VGG16 weights file "
                    f'({helper.KERAS_VGG16_WEIGHTS_BYTES:,} bytes, downloaded into Keras\'s cache when missing).')
    parser.add_argument('--weights', choices=('imagenet', 'random'), default='imagenet',
                        help="imagenet: Keras's ImageNet VGG16 weights, converted; random: He-normal weights, "
                             'seeded (default: imagenet)')
    parser.add_argument('--width', type=float, default=1.0,
                        help='channel width multiplier, 1.0 = the real VGG16; other widths need --weights random '
                             '(default: 1.0)')
    parser.add_argument('--out', default=os.path.join('data', 'vgg'),
                        help='SavedModel folder to create; it must not exist yet (default: data/vgg)')
    parser.add_argument('--keras-weights', metavar='PATH',
                        help=f'a local copy of {helper.KERAS_VGG16_WEIGHTS_FILE} to convert instead of '
                             f"Keras's cached or downloaded one ({helper.KERAS_VGG16_WEIGHTS_URL})")
    arguments = parser.parse_args(argv)
    if arguments.weights == 'imagenet' and arguments.width != 1.0:
        parser.error(f'--width {arguments.width:g} needs --weights random: '
                     'the ImageNet weights exist only for the real VGG16 (width 1.0)')
    if arguments.weights == 'random' and arguments.keras_weights:
        parser.error('--keras-weights goes with --weights imagenet, not random')
    if arguments.width <= 0:
        parser.error(f'--width must be positive, got {arguments.width:g}')
    if os.path.exists(arguments.out):
        parser.error(f'{arguments.out} already exists; delete it or choose another --out')
    try:
        if arguments.weights == 'imagenet':
            weights_path = arguments.keras_weights or helper.fetch_keras_vgg16_weights()
            helper.build_vgg16_from_keras_weights(weights_path, arguments.out)
        else:
            helper.build_vgg16_savedmodel(arguments.out, width=arguments.width)
    except (helper.DataUnavailableError, ValueError) as error:
        sys.exit(f'error: {error}')
    print(f'Wrote the VGG16 SavedModel ({arguments.weights} weights, width {arguments.width:g}) to {arguments.out}')
    return arguments.out


def load_run_config(run_dir):
    """The TrainConfig saved in run_dir/config.json."""
    config_path = os.path.join(run_dir, 'config.json')
    try:
        with open(config_path) as config_file:
            return TrainConfig(**json.load(config_file))
    except (OSError, ValueError, TypeError) as error:
        sys.exit(f'error: {config_path} is not the config.json of a run ({error}); '
                 'give a run folder written by `python main.py`, such as runs/<timestamp>.')


def positive_int(text):
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


def add_model_arguments(parser):
    """--run or --model (one is required), --batch-size and --precision: where and how a command uses the model."""
    model_source = parser.add_mutually_exclusive_group(required=True)
    model_source.add_argument('--run', help='run folder written by training, e.g. runs/<timestamp>: its model/ is used')
    model_source.add_argument('--model', metavar='DIR', help='an exported model folder (a runs/<timestamp>/model) instead')
    parser.add_argument('--batch-size', type=positive_int, default=8,
                        help='images or video frames per pass through the model (default: 8)')
    add_precision_argument(parser)


def load_road_predictor(arguments):
    """helper.saved_model_road_predictor of --model, or of --run's model/; exits saying what to do when it cannot."""
    model_dir = arguments.model or os.path.join(arguments.run, 'model')
    if arguments.run and not os.path.isdir(model_dir):
        sys.exit(f'error: {arguments.run} has no model/ folder: expected {model_dir}, the SavedModel that training '
                 'exports at the end of every run. Give a finished run of this version of main.py, or an exported '
                 'model folder with --model DIR.')
    try:
        return helper.saved_model_road_predictor(model_dir, session_config(chosen_precision(arguments.precision)))
    except ValueError as error:
        sys.exit(f'error: {error}')


def evaluate_command(argv):
    """`python main.py evaluate`: KITTI road measures of a trained model; returns score_road's dict."""
    parser = argparse.ArgumentParser(
        prog='main.py evaluate',
        description='Score a trained model with the KITTI road measures (MaxF, AP, PRE, REC, FPR, FNR at the MaxF '
                    'threshold, and IoU at 0.5), in perspective space at full resolution, per category and '
                    'overall. With --run, by default on the validation images the run held out (its split.json).')
    add_model_arguments(parser)
    parser.add_argument('--images', metavar='DIR', help='score these <cat>_NNNNNN.png images instead ...')
    parser.add_argument('--labels', metavar='DIR', help='... with their <cat>_road_NNNNNN.png KITTI labels from DIR')
    arguments = parser.parse_args(argv)
    if (arguments.images is None) != (arguments.labels is None):
        parser.error('--images and --labels go together')
    if arguments.model and not arguments.images:
        parser.error('--model has no validation split of its own: give --images and --labels, or --run')
    predict = load_road_predictor(arguments)
    try:
        if arguments.images:
            pairs = helper.list_labelled_images(arguments.images, arguments.labels)
        else:
            with open(os.path.join(arguments.run, 'split.json')) as split_file:
                val_names = set(json.load(split_file)['val'])
            training_folder = os.path.join(dataset_root(load_run_config(arguments.run)), 'data_road', 'training')
            pairs = [pair for pair in helper.list_training_pairs(training_folder)
                     if os.path.basename(pair[0]) in val_names]
    except (OSError, ValueError) as error:
        sys.exit(f'error: {error}')
    if not pairs:
        sys.exit(f'error: {arguments.run} held out no validation images (val_count 0): give --images and --labels')
    counts = helper.evaluate_road(predict, pairs, arguments.batch_size)
    scores = helper.score_road(counts)
    print(f'{len(pairs)} images, KITTI road measures in %:\n{format_scores(scores)}')
    return scores


def infer_command(argv):
    """`python main.py infer`: the road on images, painted or as masks or KITTI results; returns the paths written."""
    parser = argparse.ArgumentParser(
        prog='main.py infer',
        description='Predict the road on images of any size (PNG or JPEG; RGB, RGBA or grayscale) with a trained '
                    "model, and write the results at each image's own size: OUT/overlays/<name>.png, the image with "
                    'its road tinted green, and with --masks also OUT/masks/<name>.png.')
    parser.add_argument('inputs', nargs='*', metavar='IMAGE_OR_DIR', help='image files, or folders of them')
    add_model_arguments(parser)
    parser.add_argument('--out', required=True, metavar='DIR', help='folder for the results, created when missing')
    parser.add_argument('--masks', action='store_true',
                        help='also write OUT/masks/<name>.png: grayscale, 255 on road (probability > 0.5), 0 elsewhere')
    parser.add_argument('--kitti-submission', action='store_true',
                        help='write only OUT/<cat>_road_<NNNNNN>.png for each <cat>_<NNNNNN>.png: the road probability '
                             'as grayscale 0..255 (probability * 255), as the KITTI Road benchmark and its devkit '
                             "expect; without IMAGE_OR_DIR, for the --run's testing/image_2 images")
    arguments = parser.parse_args(argv)
    if arguments.masks and arguments.kitti_submission:
        parser.error('--masks goes without --kitti-submission, which writes probability maps only')
    if not arguments.inputs:
        if not (arguments.kitti_submission and arguments.run):
            parser.error("give IMAGE_OR_DIR (only --kitti-submission --run defaults to the run's testing images)")
        config = load_run_config(arguments.run)
        arguments.inputs = [os.path.join(dataset_root(config), 'data_road', 'testing', 'image_2')]
    try:
        image_paths = helper.list_image_files(arguments.inputs)
    except FileNotFoundError as error:
        sys.exit(f'error: {error}')
    predict = load_road_predictor(arguments)
    try:
        written_paths = helper.save_road_images(predict, image_paths, arguments.out, masks=arguments.masks,
                                                kitti_submission=arguments.kitti_submission,
                                                batch_size=arguments.batch_size)
    except ValueError as error:
        sys.exit(f'error: {error}')
    print(f'Wrote {len(written_paths)} files for {len(image_paths)} images to {arguments.out}')
    return written_paths


def video_command(argv):
    """`python main.py video`: a video with the road painted on every frame; returns the output path."""
    parser = argparse.ArgumentParser(
        prog='main.py video',
        description='Paint the road on every frame of a video with a trained model. Frame rate, frame size (any) '
                    'and audio are kept; the output format follows its extension (.mp4: H.264).')
    parser.add_argument('input', metavar='IN_VIDEO', help='a video file that ffmpeg reads, e.g. IN.mp4')
    parser.add_argument('output', metavar='OUT_VIDEO', help='the painted video to write, e.g. OUT.mp4')
    add_model_arguments(parser)
    arguments = parser.parse_args(argv)
    try:
        clip = helper.open_video(arguments.input)
    except ValueError as error:
        sys.exit(f'error: {error}')
    with clip:
        predict = load_road_predictor(arguments)
        frame_count = helper.paint_video(predict, clip, arguments.output, batch_size=arguments.batch_size)
    print(f'Wrote {arguments.output}: {frame_count} frames at {clip.fps:g} fps')
    return arguments.output


def check_data_command(argv):
    """`python main.py check-data`: check a KITTI Road folder and print what it holds and every problem.

    Returns the helper.DataCheck; exits with status 1 when it holds an error.
    """
    default_config = TrainConfig()
    parser = argparse.ArgumentParser(
        prog='main.py check-data',
        description='Check a folder in KITTI Road\'s layout as training checks it before it starts: the folders, '
                    'image and label pairs, that every file can be read, label sizes and colours, image sizes '
                    'against the network input. Prints what the folder holds, every warning and every error; '
                    'exits with status 1 when there is an error.')
    parser.add_argument('--data', metavar='DIR', default=os.path.join(default_config.data_dir, 'data_road'),
                        help='the folder holding training/image_2, training/gt_image_2 and testing/image_2 '
                             '(default: %(default)s)')
    parser.add_argument('--image-height', type=positive_int, default=default_config.image_height,
                        help='network input height: smaller images are errors (default: %(default)s)')
    parser.add_argument('--image-width', type=positive_int, default=default_config.image_width,
                        help='network input width: smaller images are errors (default: %(default)s)')
    parser.add_argument('--require-testing', action='store_true',
                        help='a missing testing/image_2 is an error, as it is for training (by default a warning, '
                             'so that a folder of training pairs alone can be checked)')
    arguments = parser.parse_args(argv)
    data_check = helper.check_kitti_folder(arguments.data, (arguments.image_height, arguments.image_width),
                                           require_testing=arguments.require_testing)
    print(data_check.report())
    if data_check.errors:
        sys.exit(f'error: errors in {arguments.data}: {len(data_check.errors)}, listed above; '
                 'training would stop on them.')
    return data_check


# `python main.py COMMAND ...` runs COMMANDS[COMMAND] with the remaining arguments.
def bench_command(argv):
    """`python main.py bench`: the classic loop and this project, side by side on this machine; returns bench's dict."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog='main.py bench',
        description='Measure, in one run on this machine, training images/s and ms/step and inference images/s at '
                    'batch 1 and 8 of FCN-8s on a random VGG16: (a) the classic loop, which decodes and resizes '
                    'each batch\'s PNG files in Python while the model waits and computes in float32, and (b) this '
                    "project's pipeline (images decoded once, batches augmented and prefetched by a background "
                    'thread) at each precision. Prints the ratios b/a and the share of the measured matmul peak '
                    'each reaches. A benchmark, not a test: its figures depend on the machine and its load.')
    parser.add_argument('--image-height', type=positive_int, default=defaults.image_height,
                        help='network input height, a multiple of 32 (default: %(default)s)')
    parser.add_argument('--image-width', type=positive_int, default=defaults.image_width,
                        help='network input width, a multiple of 32 (default: %(default)s)')
    parser.add_argument('--batch-size', type=positive_int, default=defaults.batch_size,
                        help='images per training step (default: %(default)s)')
    parser.add_argument('--width', type=float, default=1.0,
                        help='channel width of the random VGG16, 1.0 = the real VGG16 (default: %(default)s)')
    parser.add_argument('--warmup-steps', type=int, default=1,
                        help='untimed steps before each measurement (default: %(default)s)')
    parser.add_argument('--steps', type=positive_int, default=4,
                        help='timed steps (training) or calls (inference) per measurement (default: %(default)s)')
    parser.add_argument('--precision', nargs='+', choices=('auto', *PRECISIONS), metavar='PRECISION',
                        help=f"precisions of this project to measure, of auto and {', '.join(PRECISIONS)} "
                             '(default: every one this machine has)')
    parser.add_argument('--cache-dir', default=os.path.join(tempfile.gettempdir(), 'fcn8s-bench'),
                        help='folder that keeps the random VGG16 between benches (default: %(default)s)')
    parser.add_argument('--out', metavar='FILE', help='also write the results as JSON to FILE')
    arguments = parser.parse_args(argv)
    problems = [f'--image-{side} {size} is not a multiple of 32' for side, size in
                (('height', arguments.image_height), ('width', arguments.image_width)) if size % 32]
    if arguments.width <= 0:
        problems.append(f'--width must be positive, got {arguments.width:g}')
    if arguments.warmup_steps < 0:
        problems.append(f'--warmup-steps must not be negative, got {arguments.warmup_steps}')
    try:
        precisions = [resolve_precision(requested) for requested in arguments.precision or available_precisions()]
    except ValueError as error:
        problems.append(str(error))
    if problems:
        parser.error('; '.join(problems))
    arguments.precisions = tuple(dict.fromkeys(precisions))
    result = bench(arguments)
    print(format_bench(result))
    if arguments.out:
        os.makedirs(os.path.dirname(os.path.abspath(arguments.out)), exist_ok=True)
        write_atomically(arguments.out, json.dumps(result, indent=2))
        print(f'Wrote {arguments.out}')
    return result


COMMANDS = {'build-vgg': build_vgg_command, 'evaluate': evaluate_command, 'infer': infer_command,
            'video': video_command, 'check-data': check_data_command, 'bench': bench_command}


def run(argv=None):
    """The command line (argv default sys.argv[1:]): a command of COMMANDS with its options, else training."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return train(*parse_config(argv))


if __name__ == '__main__':
    run()
