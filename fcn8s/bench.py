"""Speed: the classic loop against this project's pipeline, side by side on this machine (`python main.py bench`).

The FCN-8s graph comes from the caller (main.build_graph), so this module needs nothing of main.py.
"""
import contextlib
import dataclasses
import os
import tempfile
import time

import numpy as np
from PIL import Image
from tqdm import tqdm

from fcn8s import kitti
from fcn8s.batches import Augmentation, TrainingBatches, decode_pairs
from fcn8s.bench_litert import format_litert, litert_figures, open_litert_subjects
from fcn8s.config import TrainConfig
from fcn8s.datasets import DATASETS
from fcn8s.images import load_image
from fcn8s.precision import available_precisions, cpu_info, gpu_details, session_config
from fcn8s.predict import network_road_prob
from fcn8s.synthetic import make_synthetic_kitti
from fcn8s.synthetic_cityscapes import make_synthetic_cityscapes
from fcn8s.tf1 import tf
from fcn8s.vgg import cached_random_vgg

BENCH_INFER_BATCH_SIZES = (1, 8)
# The input pipeline alone, for each dataset at its training size: (image shape, synthetic images decoded).
PIPELINE_SETTINGS = {'kitti_road': ((160, 576), 24), 'cityscapes': ((512, 1024), 8)}
PIPELINE_BATCH_SIZE = 4
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
            labels = [kitti.label_ids(load_image(label_path, image_shape, Image.NEAREST))[..., None] == np.arange(2)
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
            training_batches = TrainingBatches(*decode_pairs(pairs, image_shape, DATASETS['kitti_road'].load_label),
                                               DATASETS['kitti_road'].num_classes, Augmentation())
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


def synthetic_training_pairs(dataset_name, folder, count):
    """[(image path, label path)] of about count synthetic training images of the dataset, written under folder."""
    dataset = DATASETS[dataset_name]
    if dataset_name == 'cityscapes':
        make_synthetic_cityscapes(folder, {'train': count})
    else:
        make_synthetic_kitti(folder, train_per_category=-(-count // len(kitti.KITTI_CATEGORIES)), test_per_category=0)
    return dataset.training_pairs(dataset.training_folder(folder))


def pipeline_speed(dataset, pairs, image_shape, timed_batches, warmup_batches=5):
    """The input pipeline alone (batches.TrainingBatches, augmentation on, batch PIPELINE_BATCH_SIZE), no model.

    Returns {'images_per_s': its batches' images per second, 'mb_per_image': MB (10**6 bytes) of the batch
    tensors it hands the graph per image, 'decode_ms_per_image' and 'decoded_mb_per_image': the one-off
    decoding of the pairs at image_shape (height, width), per image, and the memory they then take}.
    Each timed batch fetches one pixel of the batch, so the pipeline does all its work and nothing is copied out.
    """
    started = time.perf_counter()
    images, labels = decode_pairs(pairs, image_shape, dataset.load_label)
    decode_seconds = time.perf_counter() - started
    training_batches = TrainingBatches(images, labels, dataset.num_classes, Augmentation())
    with tf.Graph().as_default(), tf.Session() as sess:
        batch = training_batches.connect(PIPELINE_BATCH_SIZE)
        one_pixel = [tensor[:1, :1, :1] for tensor in batch]
        training_batches.start(sess)
        batch_images, batch_labels = sess.run(batch)
        for _ in range(warmup_batches):
            sess.run(one_pixel)
        seconds = seconds_of(lambda: [sess.run(one_pixel) for _ in range(timed_batches)])
    return {'images_per_s': timed_batches * PIPELINE_BATCH_SIZE / seconds,
            'mb_per_image': (batch_images.nbytes + batch_labels.nbytes) / len(batch_images) / 1e6,
            'decode_ms_per_image': 1000 * decode_seconds / len(pairs),
            'decoded_mb_per_image': (images.nbytes + labels.nbytes) / len(pairs) / 1e6}


def pipeline_speeds(timed_batches):
    """{dataset name: pipeline_speed} at each dataset's training size (PIPELINE_SETTINGS), on synthetic images."""
    speeds = {}
    for dataset_name, (image_shape, count) in PIPELINE_SETTINGS.items():
        with tempfile.TemporaryDirectory(prefix='fcn8s-bench-pipeline-') as folder:
            pairs = synthetic_training_pairs(dataset_name, folder, count)
            speeds[dataset_name] = {**pipeline_speed(DATASETS[dataset_name], pairs, image_shape, timed_batches),
                                    'image_height': image_shape[0], 'image_width': image_shape[1]}
    return speeds


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
        'gpus': [details['device_name'] for details in gpu_details()],
        'tensorflow': tf.version.VERSION,
        'available_precisions': list(available_precisions()),
    }


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
    categories = len(kitti.KITTI_CATEGORIES)
    images_per_category = options.batch_size * -(-max(BENCH_INFER_BATCH_SIZES) // (categories * options.batch_size))
    with tempfile.TemporaryDirectory(prefix='fcn8s-bench-') as road_path, contextlib.ExitStack() as stack:
        make_synthetic_kitti(road_path, train_per_category=images_per_category, test_per_category=0)
        pairs = kitti.list_training_pairs(os.path.join(road_path, 'training'))
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
    lines.append('')
    for dataset_name, speed in result['pipeline'].items():
        lines.append(f"Input pipeline alone, {dataset_name} {speed['image_height']}x{speed['image_width']}, batch "
                     f"{settings['pipeline_batch_size']}, augmented: {speed['images_per_s']:.0f} images/s, "
                     f"{speed['mb_per_image']:.2f} MB per image to the graph; decoding once "
                     f"{speed['decode_ms_per_image']:.0f} ms and {speed['decoded_mb_per_image']:.2f} MB per image")
    lines.append(f"train_speedup {result['train_speedup']:.2f}x ({result['train_speedup_mode']}), infer_speedup_b8 "
                 f"{result['infer_speedup_b8']:.2f}x ({result['infer_speedup_b8_mode']}); "
                 f"{result['seconds']:.0f} s in all")
    return '\n'.join([*lines, '', format_litert(result['litert'])])
