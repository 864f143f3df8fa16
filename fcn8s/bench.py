"""Speed: the classic loop against this project's, side by side on this machine: `python main.py bench`.

The FCN-8s graph comes from the caller (main.build_graph), so this module needs nothing of main.py.
"""
import contextlib
import dataclasses
import json
import os
import tempfile
import time

import numpy as np
from tqdm import tqdm

from fcn8s.augmentation import Augmentation
from fcn8s.batches import TrainingBatches, decode_pairs
from fcn8s.bench_litert import format_litert, litert_figures, open_litert_subjects
from fcn8s.bench_machine import (TRAIN_FLOP_PER_FORWARD_FLOP, conv_gflop_per_image, machine_description,
                                 matmul_peak_gflops)
from fcn8s.bench_pipeline import PIPELINE_BATCH_SIZE, format_pipeline, pipeline_speeds, seconds_of
from fcn8s.commands import add_image_size_arguments, command_parser, exits_on_error
from fcn8s.config import TrainConfig, positive_int
from fcn8s.datasets import DATASETS
from fcn8s.errors import SettingError
from fcn8s.files import writable_folder, write_atomically, writing_into
from fcn8s.images import load_image
from fcn8s.precision import PRECISIONS, available_precisions, resolve_precision, session_config
from fcn8s.predict import network_road_prob
from fcn8s.tf1 import tf
from fcn8s.vgg import cached_random_vgg

BENCH_INFER_BATCH_SIZES = (1, 8)
KITTI_ROAD = DATASETS['kitti_road']  # bench measures the classic project's task


def classic_batches(pairs, image_shape, batch_size):
    """Endless (images, labels) batches made as the classic project made them: no cache, no prefetch, no augmentation.

    Each batch reads, decodes and resizes its PNG files in Python, one after another, while the model
    waits; each epoch goes through pairs [(image path, label path)] in a new random order. images
    [b, h, w, 3] float32 RGB 0..255 and labels [b, h, w, 2] float32 one-hot, at image_shape (height, width).
    """
    while True:
        order = np.random.permutation(len(pairs))
        for start in range(0, len(order), batch_size):
            batch_pairs = [pairs[index] for index in order[start:start + batch_size]]
            images = [load_image(image_path, image_shape) for image_path, _ in batch_pairs]
            labels = [KITTI_ROAD.load_label(label_path, image_shape)[..., None] == np.arange(KITTI_ROAD.num_classes)
                      for _, label_path in batch_pairs]
            yield np.stack(images).astype(np.float32), np.stack(labels).astype(np.float32)


@dataclasses.dataclass
class BenchSubject:
    """One way of running FCN-8s that bench measures: a graph and session of its own, open for the whole bench."""
    mode: str             # 'classic' or 'project'
    precision: str        # one of PRECISIONS
    next_feed: object     # next_feed(): the feed of the next training batch ({} where the graph takes it itself)
    train_step: object    # train_step(feed): one training step, as train_nn runs it
    memory_feed: dict     # the feed of one batch held in memory (project subjects), else None
    infer: object         # infer(batch_size): the road probability of batch_size network-size images in memory
    forward_gflop: float  # conv_gflop_per_image of its graph

    @property
    def name(self):
        """'classic_fp32', 'project_bf16', ...: the key of its figures in bench's results."""
        return f'{self.mode}_{self.precision}'


def open_bench_subject(stack, mode, precision, vgg_path, pairs, options, build_graph):
    """A BenchSubject of FCN-8s on the VGG16 at vgg_path, whose session and batches close with the ExitStack stack.

    mode 'classic' is the classic project's loop: batches from classic_batches, fed to a default (fp32)
    session. mode 'project' is this project's: the same files decoded once, batches augmented by the
    tf.data pipeline in the graph (batches.TrainingBatches), a session_config(precision) session.
    build_graph(sess, vgg_path, config, precision, batches=...) builds the FCN-8s as training does
    (main.build_graph), with the classic settings: every weight is trained. GPU memory grows as needed,
    so that the subjects' sessions fit on one GPU together.
    """
    image_shape = (options.image_height, options.image_width)
    defaults = TrainConfig()
    subject_session_config = session_config(precision)
    subject_session_config.gpu_options.allow_growth = True
    graph = tf.Graph()
    sess = stack.enter_context(tf.Session(graph=graph, config=subject_session_config))
    with graph.as_default():
        if mode == 'classic':
            fcn = build_graph(sess, vgg_path, defaults, precision)
            batches = stack.enter_context(contextlib.closing(classic_batches(pairs, image_shape, options.batch_size)))
        else:
            training_batches = TrainingBatches(*decode_pairs(pairs, image_shape, KITTI_ROAD.load_label),
                                               KITTI_ROAD.num_classes, Augmentation())
            fcn = build_graph(sess, vgg_path, defaults, precision, batches=training_batches.connect(options.batch_size))
            training_batches.start(sess)
        road_prob = network_road_prob(fcn.logits, image_shape)
        forward_gflop = conv_gflop_per_image(sess, fcn.image_input, fcn.keep_prob, image_shape)
    network_images = np.stack([load_image(image_path, image_shape) for image_path, _ in pairs])
    network_images = network_images.astype(np.float32)  # [images, h, w, 3] RGB 0..255, fed to inference

    def next_feed():
        """The classic loop's next batch as a feed; none for the project, whose graph takes its batch."""
        if mode == 'project':
            return {}
        images, labels = next(batches)
        return {fcn.image_input: images, fcn.correct_label: labels}

    def train_step(feed):
        """One training step on the batch of feed, or on the pipeline's next batch when feed is empty."""
        sess.run([fcn.train_op, fcn.loss], {**feed, fcn.keep_prob: defaults.keep_prob,
                                            fcn.learning_rate: defaults.learning_rate})

    def infer(batch_size):
        """Compute the road probability [batch_size, h, w] of the first batch_size images (and drop it)."""
        sess.run(road_prob, {fcn.image_input: network_images[:batch_size], fcn.keep_prob: 1.0})

    memory_feed = None
    if mode == 'project':
        memory_feed = dict(zip((fcn.image_input, fcn.correct_label), sess.run([fcn.image_input, fcn.correct_label])))
    return BenchSubject(mode, precision, next_feed, train_step, memory_feed, infer, forward_gflop)


def time_training(subjects, warmup_steps, steps):
    """{subject name: {'step': [seconds], 'wait': [seconds], 'memory': [seconds]}} of interleaved training steps.

    Each round runs one step of every subject in turn, in reverse order every other round, so that
    changes in the machine's load reach them all alike: warmup_steps rounds untimed, then `steps`
    timed. A step is timed from asking for its batch (the 'wait' until the classic loop's comes; the
    project's pipeline is inside the step) to the end of the step. Project subjects then run a batch
    held in memory ('memory'), which is what their steps would take with no input pipeline at all.
    """
    times = {subject.name: {'step': [], 'wait': [], 'memory': []} for subject in subjects}
    for round_number in tqdm(range(warmup_steps + steps), desc='Training steps, interleaved', unit='round'):
        for subject in subjects[::-1] if round_number % 2 else subjects:
            asked = time.perf_counter()
            feed = subject.next_feed()
            received = time.perf_counter()
            subject.train_step(feed)
            stepped = time.perf_counter()
            memory_seconds = None if subject.memory_feed is None else seconds_of(subject.train_step,
                                                                                 subject.memory_feed)
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


def bench(options, build_graph):
    """Measure the classic loop and this project at each of options.precisions, in one run; returns the results.

    build_graph builds each subject's FCN-8s (open_bench_subject). The VGG16 (random weights, width
    options.width) is built once into options.cache_dir (vgg.cached_random_vgg) and reused;
    synthetic KITTI files, as many as make whole training batches and an inference batch of 8, are
    written to a temporary folder for this run. All subjects are open at once and measured in
    interleaved rounds. Each precision's matmul peak is probed before and after, and the larger kept. Then the
    LiteRT int8 and fp32 files (fcn8s.bench_litert) and the fastest project subject infer, interleaved.
    See the README's Speed section for every key.
    """
    started = time.perf_counter()
    pipeline = pipeline_speeds(options.pipeline_batches)
    vgg_path = cached_random_vgg(options.cache_dir, options.width)
    precisions = tuple(dict.fromkeys(('fp32', *options.precisions)))
    peak_gflops_before = {precision: matmul_peak_gflops(precision) for precision in precisions}
    pair_count = options.batch_size * -(-max(BENCH_INFER_BATCH_SIZES) // options.batch_size)
    with tempfile.TemporaryDirectory(prefix='fcn8s-bench-') as road_path, contextlib.ExitStack() as stack:
        pairs = KITTI_ROAD.make_synthetic_pairs(road_path, pair_count)
        pairs = pairs[:len(pairs) // options.batch_size * options.batch_size]  # whole training batches
        litert_subjects, savedmodel_bytes = open_litert_subjects(vgg_path, pairs, options, build_graph,
                                                                 os.path.join(road_path, 'litert'))
        subjects = [open_bench_subject(stack, 'classic', 'fp32', vgg_path, pairs, options, build_graph)]
        subjects += [open_bench_subject(stack, 'project', precision, vgg_path, pairs, options, build_graph)
                     for precision in options.precisions]
        training_times = time_training(subjects, options.warmup_steps, options.steps)
        inference_times = {batch_size: time_inference(subjects, batch_size, options.warmup_steps, options.steps)
                           for batch_size in BENCH_INFER_BATCH_SIZES}
        fastest_project = min(subjects[1:], key=lambda subject: np.median(inference_times[1][subject.name]))
        litert_times = {batch_size: time_inference([fastest_project, *litert_subjects], batch_size,
                                                   options.warmup_steps, options.steps)
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
    litert = litert_figures(litert_times, fastest_project.name, litert_subjects, savedmodel_bytes)
    best_train = max(speedups, key=lambda name: speedups[name]['train'])
    best_infer = max(speedups, key=lambda name: speedups[name]['infer_b8'])
    return {
        'train_speedup': speedups[best_train]['train'],
        'train_speedup_mode': best_train,
        'infer_speedup_b8': speedups[best_infer]['infer_b8'],
        'infer_speedup_b8_mode': best_infer,
        'litert_int8_speedup_b1': litert['modes']['litert_int8']['speedup_b1'],
        'litert': litert,
        'peak_gflops': peak_gflops['fp32'],
        'peak_gflops_by_precision': peak_gflops,
        'gflop_per_image': {'inference': subjects[0].forward_gflop,
                            'training': TRAIN_FLOP_PER_FORWARD_FLOP * subjects[0].forward_gflop},
        'speedups': speedups,
        'modes': modes,
        'pipeline': pipeline,
        'settings': {'image_height': options.image_height, 'image_width': options.image_width,
                     'batch_size': options.batch_size, 'vgg_width': options.width,
                     'warmup_steps': options.warmup_steps, 'steps': options.steps,
                     'pipeline_batches': options.pipeline_batches, 'pipeline_batch_size': PIPELINE_BATCH_SIZE,
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
    lines += ['', format_pipeline(result['pipeline'], settings['pipeline_batch_size'])]
    lines.append(f"train_speedup {result['train_speedup']:.2f}x ({result['train_speedup_mode']}), infer_speedup_b8 "
                 f"{result['infer_speedup_b8']:.2f}x ({result['infer_speedup_b8_mode']}); "
                 f"{result['seconds']:.0f} s in all")
    return '\n'.join([*lines, '', format_litert(result['litert'])])


def bench_command(argv, build_graph):
    """`python main.py bench`: the classic loop and this project side by side on this machine; returns bench's dict.

    build_graph(sess, vgg_path, config, precision) builds the FCN-8s that each mode trains (main.build_graph).
    """
    parser = command_parser(
        'bench',
        'Measure, in one run on this machine, training images/s and ms/step and inference images/s at '
        'batch 1 and 8 of FCN-8s on a random VGG16: (a) the classic loop, which decodes and resizes '
        'each batch\'s PNG files in Python while the model waits and computes in float32, and (b) this '
        "project's (images decoded once, batches augmented by the tf.data pipeline in the graph) at each "
        'precision. Prints the ratios b/a and the share of the measured matmul peak each reaches, and '
        "the input pipeline's images/s alone at KITTI's 160x576 and Cityscapes' 512x1024. A benchmark, "
        "not a test: its figures depend on the machine and its load. Then LiteRT's int8 and fp32 files beside (b).")
    add_image_size_arguments(parser, '')
    parser.add_argument('--batch-size', type=positive_int, default=TrainConfig().batch_size,
                        help='images per training step (default: %(default)s)')
    parser.add_argument('--width', type=float, default=1.0,
                        help='channel width of the random VGG16, 1.0 = the real VGG16 (default: %(default)s)')
    parser.add_argument('--warmup-steps', type=int, default=1,
                        help='untimed steps before each measurement (default: %(default)s)')
    parser.add_argument('--steps', type=positive_int, default=4,
                        help='timed steps (training) or calls (inference) per measurement (default: %(default)s)')
    parser.add_argument('--pipeline-batches', type=positive_int, default=100,
                        help='timed batches of the input pipeline alone, per dataset (default: %(default)s)')
    parser.add_argument('--precision', nargs='+', choices=('auto', *PRECISIONS), metavar='PRECISION',
                        help=f"precisions of this project to measure, of auto and {', '.join(PRECISIONS)} "
                             '(default: every one this machine has)')
    parser.add_argument('--cache-dir', default=os.path.join(tempfile.gettempdir(), 'fcn8s-bench'),
                        help='folder that keeps the random VGG16 between benches (default: %(default)s)')
    parser.add_argument('--out', metavar='FILE', help='also write the results as JSON to FILE')
    arguments = parser.parse_args(argv)
    problems = [f'--width must be positive, got {arguments.width:g}'] if arguments.width <= 0 else []
    if arguments.warmup_steps < 0:
        problems.append(f'--warmup-steps must not be negative, got {arguments.warmup_steps}')
    try:
        precisions = [resolve_precision(requested) for requested in arguments.precision or available_precisions()]
    except SettingError as error:
        problems.append(str(error))
    if arguments.out and os.path.isdir(arguments.out):
        problems.append(f'--out {arguments.out} is a folder: give the path of a JSON file to write')
    if problems:
        parser.error('; '.join(problems))
    out_dir = os.path.dirname(os.path.abspath(arguments.out)) if arguments.out else None
    with exits_on_error():
        if out_dir:
            writable_folder(out_dir, '--out')
    arguments.precisions = tuple(dict.fromkeys(precisions))
    result = bench(arguments, build_graph)
    print(format_bench(result))
    if arguments.out:
        with exits_on_error(), writing_into(out_dir, '--out'):
            write_atomically(arguments.out, json.dumps(result, indent=2))
        print(f'Wrote {arguments.out}')
    return result
