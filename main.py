"""FCN-8s road segmentation on KITTI Road, in TensorFlow 1.x style (graph, session, placeholders).

  python main.py          train with the classic hyperparameters (fetches data/vgg and data/data_road)
  python main.py --demo   the same job offline: synthetic KITTI and a small random VGG16, about 2 minutes
  python main.py build-vgg [--weights imagenet|random]
                          write data/vgg, the classic VGG16 SavedModel, from Keras's ImageNet weights
                          (or random ones); `python main.py build-vgg --help` for its options
  python main.py infer IMAGE_OR_DIR... --run runs/<timestamp> --out DIR [--masks | --kitti-submission]
                          paint the road on images of any size with a trained model
  python main.py video IN.mp4 OUT.mp4 --run runs/<timestamp>
                          paint the road on every frame of a video

Every run writes runs/<timestamp>/: config.json, loss.csv, loss.png, checkpoint/, model/ (the exported
SavedModel that infer and video use) and overlays/.
"""
import argparse
import csv
import dataclasses
import json
import os
import shutil
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TensorFlow loads: keep its C++ info lines quiet

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
from tqdm import tqdm  # noqa: E402

import helper  # noqa: E402

NUM_CLASSES = 2  # background, road
VGG_TENSOR_NAMES = ('image_input:0', 'keep_prob:0', 'layer3_out:0', 'layer4_out:0', 'layer7_out:0')
# The FCN authors' "at-once" FCN-8s scales the skip inputs so that they start on the scale of fc7's scores.
POOL4_SCALE = 1e-2
POOL3_SCALE = 1e-4


# ---------------------------------------------------------------- configuration

def setting(default, help_text):
    """A TrainConfig field with its command-line help."""
    return dataclasses.field(default=default, metadata={'help': help_text})


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
    """TrainConfig from command-line arguments; --demo switches to DEMO_CONFIG's defaults."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for field in dataclasses.fields(TrainConfig):
        flag = '--' + field.name.replace('_', '-')
        demo_default = getattr(DEMO_CONFIG, field.name)
        demo_note = f'; with --demo: {demo_default}' if demo_default != field.default and field.name != 'demo' else ''
        help_text = f"{field.metadata['help']} (default: {field.default}{demo_note})"
        if field.type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            parser.add_argument(flag, type=field.type, default=None, metavar=field.name.upper(), help=help_text)
    arguments = parser.parse_args(argv)
    chosen = {name: value for name, value in vars(arguments).items() if value is not None}
    config = dataclasses.replace(DEMO_CONFIG if arguments.demo else TrainConfig(), **chosen)
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
    return config


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


def optimize(nn_last_layer, correct_label, learning_rate, num_classes, var_list=None):
    """Masked cross-entropy plus the registered L2 terms, minimised by Adam over var_list (default: all trainable).

    nn_last_layer: [b, h, w, num_classes] logits; correct_label: [b, h, w, num_classes] one-hot,
    all zeros at pixels outside the evaluated area. The cross-entropy is averaged over valid
    pixels only. Returns (logits [b * h * w, num_classes], train_op, loss = cross-entropy + L2).
    """
    logits = tf.reshape(nn_last_layer, (-1, num_classes), name='logits')
    labels = tf.reshape(correct_label, (-1, num_classes))
    pixel_losses = tf.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=logits)
    valid_pixels = tf.maximum(tf.reduce_sum(labels), 1.0)
    cross_entropy = tf.divide(tf.reduce_sum(pixel_losses), valid_pixels, name='cross_entropy')
    loss = tf.add(cross_entropy, tf.losses.get_regularization_loss(), name='loss')
    train_op = tf.train.AdamOptimizer(learning_rate).minimize(loss, var_list=var_list)
    return logits, train_op, loss


# ---------------------------------------------------------------- training

def initialize_new_variables(sess):
    """Initialise the variables that hold no value yet, leaving the loaded VGG16 weights as they are.

    tf.global_variables_initializer() after load_vgg would overwrite the pre-trained weights with
    the random initialisers stored in the SavedModel's graph.
    """
    uninitialized = set(sess.run(tf.report_uninitialized_variables()))
    sess.run([variable.initializer for variable in tf.global_variables() if variable.op.name.encode() in uninitialized])


def train_nn(sess, epochs, batch_size, get_batches_fn, train_op, cross_entropy_loss, input_image,
             correct_label, keep_prob, learning_rate, keep_prob_value=0.5, learning_rate_value=5e-4,
             on_epoch_end=None):
    """Run train_op on every (images, labels) batch of get_batches_fn(batch_size), `epochs` times.

    Prints each epoch's mean loss and then calls on_epoch_end(epoch, epoch_loss_rows) if given
    (validation, checkpoints). Returns [(epoch, step, loss)] with one row per step.
    """
    loss_rows = []
    num_images = getattr(get_batches_fn, 'num_images', None)
    steps_per_epoch = -(-num_images // batch_size) if num_images else None
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        batches = tqdm(get_batches_fn(batch_size), total=steps_per_epoch, desc=f'Epoch {epoch}/{epochs}',
                       unit='batch', leave=False)
        epoch_losses = []
        for step, (images, labels) in enumerate(batches, start=1):
            _, loss = sess.run([train_op, cross_entropy_loss], {
                input_image: images, correct_label: labels,
                keep_prob: keep_prob_value, learning_rate: learning_rate_value})
            epoch_losses.append(float(loss))
            loss_rows.append((epoch, step, float(loss)))
            batches.set_postfix(loss=f'{float(loss):.4f}')
        tqdm.write(f'Epoch {epoch}/{epochs}: mean loss {np.mean(epoch_losses):.4f} '
                   f'({time.perf_counter() - started:.1f} s)')
        if on_epoch_end is not None:
            on_epoch_end(epoch, loss_rows[-len(epoch_losses):])
    return loss_rows


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


def write_loss_csv(loss_rows, csv_path):
    """Write [(epoch, step, loss)] as a CSV with a header row."""
    with open(csv_path, 'w', newline='') as csv_file:
        writer = csv.writer(csv_file)
        writer.writerow(('epoch', 'step', 'loss'))
        writer.writerows(loss_rows)


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


def validator(predict, val_pairs, config, run_dir):
    """on_epoch_end hook for train_nn: scores val_pairs after the last epoch and every config.eval_every epochs.

    Each evaluation prints the table and rewrites run_dir/metrics.json (the latest scores per category,
    with the overall MaxF and IoU of every evaluated epoch under 'history') and run_dir/pr_curve.png.
    """
    history = []

    def validate(epoch, epoch_loss_rows):
        due = epoch == config.epochs or (config.eval_every and epoch % config.eval_every == 0)
        if not val_pairs or not due:
            return None
        counts = helper.evaluate_road(predict, val_pairs)
        scores = helper.score_road(counts)
        history.append({'epoch': epoch, 'MaxF': scores['overall']['MaxF'], 'IoU': scores['overall']['IoU']})
        tqdm.write(f'Validation after epoch {epoch} ({len(val_pairs)} images, KITTI road measures in %):\n'
                   + format_scores(scores))
        with open(os.path.join(run_dir, 'metrics.json'), 'w') as metrics_file:
            json.dump({'epoch': epoch, **scores, 'history': history}, metrics_file, indent=2)
        helper.save_pr_curve(counts, os.path.join(run_dir, 'pr_curve.png'))
        return scores

    return validate


# ---------------------------------------------------------------- command line

def train(config):
    """Train FCN-8s as configured and fill a new runs/<timestamp>/ folder; returns its path."""
    started = time.perf_counter()
    try:
        data_dir, vgg_path = prepare_data(config)
    except helper.DataUnavailableError as error:
        sys.exit(f'error: {error}')
    np.random.seed(config.seed)
    run_dir = make_run_dir(config.runs_dir)
    with open(os.path.join(run_dir, 'config.json'), 'w') as config_file:
        json.dump(dataclasses.asdict(config), config_file, indent=2)
    print(f'Run folder: {run_dir}')

    with tf.Graph().as_default(), tf.Session() as sess:
        tf.set_random_seed(config.seed)
        input_image, keep_prob, layer3_out, layer4_out, layer7_out = load_vgg(sess, vgg_path)
        vgg_variables = set(tf.global_variables())
        nn_last_layer = layers(layer3_out, layer4_out, layer7_out, NUM_CLASSES, pool_scaling=config.pool_scaling,
                               init_stddev=config.init_stddev, l2_scale=config.l2_scale)
        correct_label = tf.placeholder(tf.float32, [None, None, None, NUM_CLASSES], name='correct_label')
        learning_rate = tf.placeholder(tf.float32, name='learning_rate')
        trained_variables = None if config.train_encoder else [
            variable for variable in tf.trainable_variables() if variable not in vgg_variables]
        logits, train_op, loss = optimize(nn_last_layer, correct_label, learning_rate, NUM_CLASSES, trained_variables)
        initialize_new_variables(sess)

        training_folder = os.path.join(data_dir, 'data_road', 'training')
        train_pairs, val_pairs = split_for_run(training_folder, config, run_dir)
        get_batches_fn = helper.gen_batch_function(training_folder, config.image_shape, pairs=train_pairs,
                                                   augmentation=config.augmentation)
        validate = validator(helper.session_road_predictor(sess, logits, keep_prob, input_image, config.image_shape),
                             val_pairs, config, run_dir)
        loss_rows = train_nn(sess, config.epochs, config.batch_size, get_batches_fn, train_op, loss, input_image,
                             correct_label, keep_prob, learning_rate,
                             keep_prob_value=config.keep_prob, learning_rate_value=config.learning_rate,
                             on_epoch_end=validate)
        write_loss_csv(loss_rows, os.path.join(run_dir, 'loss.csv'))
        helper.save_loss_curve(loss_rows, os.path.join(run_dir, 'loss.png'))
        tf.train.Saver().save(sess, os.path.join(run_dir, 'checkpoint', 'model'))
        helper.export_model(sess, input_image, keep_prob, logits, config.image_shape, os.path.join(run_dir, 'model'))
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
                 'give --run a folder written by `python main.py`, such as runs/<timestamp>.')


def restore_run_predictor(sess, run_dir, image_shape):
    """helper.session_road_predictor of the newest checkpoint in run_dir/checkpoint/, restored into sess."""
    checkpoint = tf.train.latest_checkpoint(os.path.join(run_dir, 'checkpoint'))
    if checkpoint is None:
        sys.exit(f'error: {run_dir}/checkpoint/ holds no checkpoint; was the run interrupted before its first save?')
    tf.train.import_meta_graph(checkpoint + '.meta').restore(sess, checkpoint)
    logits, keep_prob, image_input = (sess.graph.get_tensor_by_name(name) for name in ('logits:0', 'keep_prob:0', 'image_input:0'))
    return helper.session_road_predictor(sess, logits, keep_prob, image_input, image_shape)


def evaluate_command(argv):
    """`python main.py evaluate`: KITTI road measures of a run's model; returns score_road's dict."""
    parser = argparse.ArgumentParser(
        prog='main.py evaluate',
        description='Score a trained run with the KITTI road measures (MaxF, AP, PRE, REC, FPR, FNR at the MaxF '
                    'threshold, and IoU at 0.5), in perspective space at full resolution, per category and '
                    'overall. By default on the validation images the run held out (its split.json).')
    parser.add_argument('--run', required=True, help='run folder written by training, e.g. runs/<timestamp>')
    parser.add_argument('--images', metavar='DIR', help='score these <cat>_NNNNNN.png images instead ...')
    parser.add_argument('--labels', metavar='DIR', help='... with their <cat>_road_NNNNNN.png KITTI labels from DIR')
    arguments = parser.parse_args(argv)
    if (arguments.images is None) != (arguments.labels is None):
        parser.error('--images and --labels go together')
    config = load_run_config(arguments.run)
    try:
        if arguments.images:
            pairs = helper.list_labelled_images(arguments.images, arguments.labels)
        else:
            with open(os.path.join(arguments.run, 'split.json')) as split_file:
                val_names = set(json.load(split_file)['val'])
            training_folder = os.path.join(dataset_root(config), 'data_road', 'training')
            pairs = [pair for pair in helper.list_training_pairs(training_folder)
                     if os.path.basename(pair[0]) in val_names]
    except (OSError, ValueError) as error:
        sys.exit(f'error: {error}')
    if not pairs:
        sys.exit(f'error: {arguments.run} held out no validation images (val_count 0): give --images and --labels')
    with tf.Graph().as_default(), tf.Session() as sess:
        predict = restore_run_predictor(sess, arguments.run, config.image_shape)
        counts = helper.evaluate_road(predict, pairs)
    scores = helper.score_road(counts)
    print(f'{len(pairs)} images, KITTI road measures in %:\n{format_scores(scores)}')
    return scores


def positive_int(text):
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


def add_model_arguments(parser):
    """--run or --model (one is required), and --batch-size: where and how infer and video use the model."""
    model_source = parser.add_mutually_exclusive_group(required=True)
    model_source.add_argument('--run', help='run folder written by training, e.g. runs/<timestamp>: its model/ is used')
    model_source.add_argument('--model', metavar='DIR', help='an exported model folder (a runs/<timestamp>/model) instead')
    parser.add_argument('--batch-size', type=positive_int, default=8,
                        help='images or video frames per pass through the model (default: 8)')


def load_road_predictor(arguments):
    """helper.saved_model_road_predictor of --model, or of --run's model/; exits saying what to do when it cannot."""
    model_dir = arguments.model or os.path.join(arguments.run, 'model')
    if arguments.run and not os.path.isdir(model_dir):
        sys.exit(f'error: {arguments.run} has no model/ folder: expected {model_dir}, the SavedModel that training '
                 'exports at the end of every run. Give a finished run of this version of main.py, or an exported '
                 'model folder with --model DIR.')
    try:
        return helper.saved_model_road_predictor(model_dir)
    except ValueError as error:
        sys.exit(f'error: {error}')


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


# `python main.py COMMAND ...` runs COMMANDS[COMMAND] with the remaining arguments.
COMMANDS = {'build-vgg': build_vgg_command, 'evaluate': evaluate_command, 'infer': infer_command,
            'video': video_command}


def run(argv=None):
    """The command line (argv default sys.argv[1:]): a command of COMMANDS with its options, else training."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return train(parse_config(argv))


if __name__ == '__main__':
    run()
