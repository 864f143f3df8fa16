"""Data-parallel training on tf.distribute: two logical CPU devices train as one device on the same global batch."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import main
from fcn8s import distribute
from fcn8s.batches import TrainingBatches
from fcn8s.checkpoints import mirror_first_copies, variables_by_name
from fcn8s.config import TrainConfig
from fcn8s.kitti import BACKGROUND_COLOUR, ROAD_COLOUR
from fcn8s.run_folder import read_loss_csv
from fcn8s.tests.fixtures import PROJECT_DIR, TINY_RUN, TINY_WIDTH, TRAIN_UNTIL_SIGNAL
from fcn8s.tf1 import tf
from fcn8s.vgg import build_vgg16_savedmodel

IMAGE_SHAPE = (64, 96)


def training_arrays(count, seed=3):
    """(images [count, 64, 96, 3] uint8, labels [count, 64, 96] uint8 ids 0, 1 and 255 in uneven amounts)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, *IMAGE_SHAPE, 3), dtype=np.uint8)
    labels = rng.choice(np.array([0, 1, 255], np.uint8), (count, *IMAGE_SHAPE), p=[0.5, 0.3, 0.2])
    labels[0, :32] = 255  # the replicas' shares of labelled pixels differ
    return images, labels


def two_cpus():
    """MirroredStrategy over the two logical CPU devices that conftest made."""
    return tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])


def train_steps(vgg_path, strategy, steps, start_checkpoint, config, loss_scaling_precision='fp32', image_count=6):
    """Losses of `steps` steps of batches of 4 from image_count images, and the trained {variable name: value} after
    them, from start_checkpoint's values."""
    images, labels = training_arrays(image_count)
    batches = TrainingBatches(images, labels, 2, seed=5)
    one_thread_each = tf.ConfigProto(intra_op_parallelism_threads=1,  # sums in one order, run after run
                                     device_count={'CPU': len(tf.config.list_logical_devices('CPU'))})
    with tf.Graph().as_default(), tf.Session(config=one_thread_each) as sess:
        fcn = main.build_graph(sess, vgg_path, config, loss_scaling_precision, batches=batches.connect(4),
                               strategy=strategy)
        saver = tf.train.Saver(variables_by_name())
        if start_checkpoint.get('path') is None:
            start_checkpoint['path'] = saver.save(sess, start_checkpoint['folder'] + '/start')
        else:
            saver.restore(sess, start_checkpoint['path'])
            sess.run(mirror_first_copies())
        batches.start(sess)
        feed = {fcn.keep_prob: 1.0, fcn.learning_rate: 1e-3}
        losses = [sess.run([fcn.train_op, fcn.loss], feed)[1] for _ in range(steps)]
        return losses, {variable.op.name: sess.run(variable) for variable in tf.trainable_variables()}


@pytest.mark.slow
@pytest.mark.parametrize('precision, image_count', [('fp32', 6), ('fp16', 6), ('fp32', 5)])
def test_two_replicas_end_with_the_weights_of_one_device_on_the_same_global_batches(tiny_vgg_path, tmp_path,
                                                                                       precision, image_count):
    """3 steps of global batch 4, dropout off: from 6 images, batches of 4, 2 and 4; from 5 images, 4, 1 and 4, so
    that one replica has no row of the second batch.

    fp16 builds the loss-scaling optimizer (its arithmetic stays float32 on a CPU).
    """
    config = TrainConfig(pool_scaling=False, init_stddev=0.1)
    start = {'folder': str(tmp_path)}
    one_losses, one_weights = train_steps(tiny_vgg_path, None, 3, start, config, precision, image_count)
    two_losses, two_weights = train_steps(tiny_vgg_path, two_cpus(), 3, start, config, precision, image_count)
    assert sorted(two_weights) == sorted(one_weights)
    assert len(one_weights) == 15 * 2 + 3 * 2 + 3  # 15 VGG16 layers, 3 score layers, 3 upscore kernels (no bias)
    np.testing.assert_allclose(two_losses, one_losses, rtol=1e-5)
    for name, value in one_weights.items():
        # Adam moves a weight by up to the rate (1e-3) a step, whatever its gradient's size: where a gradient is
        # near 0, summing it in another order can move the weight by a little more or less.
        np.testing.assert_allclose(two_weights[name], value, rtol=1e-4, atol=5e-5, err_msg=name)
    moved = max(np.abs(one_weights[name] - value).max() for name, value in
                train_steps(tiny_vgg_path, None, 0, start, config, precision, image_count)[1].items())
    assert moved > 1e-4  # the steps changed the weights, so agreeing on them says something


def test_the_replicated_vgg16_holds_the_savedmodels_weights_on_every_replica(tiny_vgg_path):
    images, labels = training_arrays(4)
    stored = tf.train.load_checkpoint(distribute.savedmodel_variables_path(tiny_vgg_path))
    with tf.Session() as sess:
        main.build_graph(sess, tiny_vgg_path, TrainConfig(), 'fp32',
                         batches=TrainingBatches(images, labels, 2).connect(2), strategy=two_cpus())
        vgg_variables = [variable for variable in tf.global_variables()
                         if variable.op.name.split('/')[0].startswith(('conv', 'fc'))
                         and variable.op.name.endswith(('weights', 'biases'))]
        assert len(vgg_variables) == 30
        for variable in vgg_variables:
            first, second = sess.run(list(variable.values))
            np.testing.assert_array_equal(first, stored.get_tensor(variable.op.name), err_msg=variable.op.name)
            np.testing.assert_array_equal(second, first, err_msg=variable.op.name)


def test_a_savedmodel_without_a_vgg16_layer_is_refused_naming_it(tmp_path):
    vgg_path = str(tmp_path / 'not_vgg')
    with tf.Graph().as_default(), tf.Session() as sess:
        tf.get_variable('conv1_1/weights', [3, 3, 3, 4])
        sess.run(tf.global_variables_initializer())
        builder = tf.saved_model.Builder(vgg_path)
        builder.add_meta_graph_and_variables(sess, ['vgg16'])
        builder.save()
    with pytest.raises(ValueError, match=r"has no single kernel and bias of conv1_1 \(found \['conv1_1/weights'\]\)"):
        distribute.savedmodel_layer_shapes(vgg_path)
    with pytest.raises(ValueError, match='cannot read the weights of the VGG16 SavedModel'):
        distribute.savedmodel_layer_shapes(str(tmp_path / 'missing'))


@pytest.mark.parametrize('tf_config, expected', [
    ('{"cluster": {"worker": ["127.0.0.1:1"]}', 'TF_CONFIG cannot be read (JSONDecodeError'),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}}', "TF_CONFIG cannot be read (KeyError: 'task')"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 1}}',
     "names the task worker 1, which its cluster {'worker': ['127.0.0.1:1']} does not hold"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "chief", "index": 0}}', 'names the task chief 0')])
def test_a_tf_config_that_cannot_be_used_is_refused_saying_what_it_must_be(tf_config, expected):
    with pytest.raises(ValueError) as raised:
        distribute.replicas_of(0, tf_config)
    assert expected in str(raised.value) and '"task": {"type": "worker", "index": 0}' in str(raised.value)


def test_replicas_on_a_machine_without_gpus_split_its_cpu_or_stay_on_one_device():
    assert len(tf.config.list_logical_devices('CPU')) == 2  # conftest's split; TensorFlow's devices are now started
    assert distribute.replicas_of(0).strategy is None and distribute.replicas_of(1).strategy is None
    one_worker = '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}'
    assert distribute.replicas_of(0, one_worker).strategy is None  # a cluster of one is one machine
    two = distribute.replicas_of(2)
    assert two.count == 2 and two.is_chief and two.strategy.extended.worker_devices == (
        '/replica:0/task:0/device:CPU:0', '/replica:0/task:0/device:CPU:1')
    assert two.describe(4).endswith('2 image(s) of each batch of 4 on each.')
    assert 'warning: 1 of the 2 replicas have no image of a batch of 1 and compute for nothing' in two.describe(1)
    with pytest.raises(ValueError, match='cannot split the CPU into 3 logical devices: TensorFlow has started'):
        distribute.replicas_of(3)


@pytest.mark.slow
def test_a_two_replica_demo_run_resumes_after_sigterm_goes_on_as_one_device_and_exports_a_model_for_infer(
        tiny_demo_data, tmp_path):
    # 4 training images in global batches of 2: 2 steps an epoch; SIGTERM as the 4th batch is taken (epoch 2, step 2).
    # Dropout off: the replicated run and the one-device run then go on from epoch 1 alike.
    run_args = [*TINY_RUN, '--epochs', '3', '--batch-size', '2', '--val-count', '2', '--precision', 'fp32',
                '--keep-prob', '1', '--data-dir', str(tiny_demo_data)]
    killed = subprocess.run([sys.executable, '-c', TRAIN_UNTIL_SIGNAL, '4', *run_args, '--replicas', '2',
                             '--runs-dir', str(tmp_path / 'killed')], cwd=PROJECT_DIR, capture_output=True, text=True,
                            timeout=300)
    assert killed.returncode == 128 + signal.SIGTERM, killed.stderr[-3000:]
    assert 'Training data-parallel on 2 replicas' in killed.stdout
    assert 'Stopped in epoch 2 after step 1' in killed.stdout
    [run_name] = os.listdir(tmp_path / 'killed')
    run_dir = str(tmp_path / 'killed' / run_name)
    assert sorted(os.listdir(os.path.join(run_dir, 'checkpoint'))) == ['checkpoint', 'epoch-001', 'epoch-002-step-0001']

    one_device_dir = str(tmp_path / 'one_device')
    shutil.copytree(run_dir, one_device_dir)
    assert main.run(['--resume', run_dir]) == run_dir  # conftest's two logical CPUs: 2 replicas again
    assert main.run(['--resume', one_device_dir, '--replicas', '1']) == one_device_dir  # from the same checkpoint
    for folder in ('.', 'checkpoint', 'overlays', 'model'):
        assert sorted(os.listdir(os.path.join(run_dir, folder))) == sorted(
            os.listdir(os.path.join(one_device_dir, folder))), folder
    assert sorted(os.listdir(os.path.join(run_dir, 'checkpoint'))) == ['checkpoint', 'epoch-001', 'epoch-002',
                                                                       'epoch-003']
    replicated_rows = read_loss_csv(os.path.join(run_dir, 'loss.csv'))
    one_device_rows = read_loss_csv(os.path.join(one_device_dir, 'loss.csv'))
    assert [row[:2] for row in replicated_rows] == [row[:2] for row in one_device_rows] == [
        (epoch, step) for epoch in (1, 2, 3) for step in (1, 2)]
    np.testing.assert_allclose([row[2:] for row in replicated_rows], [row[2:] for row in one_device_rows], rtol=1e-4)
    assert replicated_rows[-1][2] < replicated_rows[2][2] - 0.01  # epochs 2 and 3 trained: their loss went down

    image_path = tiny_demo_data / 'demo' / 'data_road' / 'testing' / 'image_2' / 'um_000000.png'
    masks = {}
    for name, folder in (('replicated', run_dir), ('one_device', one_device_dir)):
        main.run(['infer', str(image_path), '--run', folder, '--out', str(tmp_path / name), '--masks'])
        masks[name] = np.asarray(Image.open(tmp_path / name / 'masks' / 'um_000000.png'))
    assert masks['replicated'].shape[:2] == np.asarray(Image.open(image_path)).shape[:2]
    assert np.mean(masks['replicated'] == masks['one_device']) > 0.99


def free_ports(count):
    """count TCP ports of 127.0.0.1 that are free now."""
    sockets = [socket.socket() for _ in range(count)]
    for each in sockets:
        each.bind(('127.0.0.1', 0))
    ports = [each.getsockname()[1] for each in sockets]
    for each in sockets:
        each.close()
    return ports


def start_workers(run_args, tmp_path, signal_batches=(0, 0), own_args=((), ()), environment=None):
    """[(Popen, runs dir, weights .npz path)] of two workers on 127.0.0.1, each one CPU device, run_args and its
    own_args, with --runs-dir runs<index> unless they resume a run, each signalled at its batch of signal_batches
    (TRAIN_UNTIL_SIGNAL), with environment's variables added."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    ports = free_ports(2)
    cluster = {'worker': [f'127.0.0.1:{port}' for port in ports]}
    workers = []
    for index, (signal_batch, worker_args) in enumerate(zip(signal_batches, own_args)):
        runs_dir, weights_path = tmp_path / f'runs{index}', tmp_path / f'weights{index}.npz'
        worker_environment = {**os.environ, **(environment or {}), 'WEIGHTS_NPZ': str(weights_path),
                              'TF_CONFIG': json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': index}})}
        arguments = [*run_args, *worker_args]
        runs_option = [] if '--resume' in arguments else ['--runs-dir', str(runs_dir)]
        process = subprocess.Popen([sys.executable, '-c', TRAIN_UNTIL_SIGNAL, str(signal_batch), *arguments,
                                    *runs_option], cwd=PROJECT_DIR, env=worker_environment,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        workers.append((process, runs_dir, weights_path))
    return workers


def run_workers(run_args, tmp_path, signal_batches=(0, 0), own_args=((), ()), timeout=240, environment=None):
    """[(CompletedProcess, runs dir, weights .npz path)] of start_workers' two workers, run to their end; both killed
    at the timeout."""
    workers = start_workers(run_args, tmp_path, signal_batches, own_args, environment)
    finished = []
    for process, runs_dir, weights_path in workers:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other, _, _ in workers:
                other.kill()
            raise
        finished.append((subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), runs_dir,
                         weights_path))
    return finished


def assert_same_weights(first_path, second_path):
    first, second = np.load(first_path), np.load(second_path)
    assert sorted(first.files) == sorted(second.files) and len(first.files) == 39
    for name in first.files:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


MULTI_WORKER_RUN = [*TINY_RUN, '--batch-size', '2', '--val-count', '2']


@pytest.mark.slow
def test_two_workers_train_two_steps_to_the_same_weights_and_only_the_chief_writes_the_run(tiny_demo_data, tmp_path):
    (chief, chief_runs, chief_weights), (worker, worker_runs, worker_weights) = run_workers(
        [*MULTI_WORKER_RUN, '--epochs', '1', '--data-dir', str(tiny_demo_data)], tmp_path)
    assert chief.returncode == 0, chief.stderr[-3000:]
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert 'Training data-parallel on 2 replicas (2 workers' in chief.stdout
    assert 'Precision fp32' in chief.stdout  # bf16 does not run on a worker's server
    assert 'the chief writes the run folder' in worker.stdout
    assert_same_weights(chief_weights, worker_weights)
    assert not os.path.exists(worker_runs)
    [run_name] = os.listdir(chief_runs)
    run_dir = chief_runs / run_name
    assert {'config.json', 'loss.csv', 'metrics.json', 'model', 'checkpoint', 'tensorboard'} <= set(os.listdir(run_dir))
    assert [row[:2] for row in read_loss_csv(str(run_dir / 'loss.csv'))] == [(1, 1), (1, 2)]


@pytest.mark.slow
def test_sigterm_to_one_worker_stops_both_at_one_step_and_both_resume_from_the_chiefs_checkpoint(tiny_demo_data,
                                                                                                  tmp_path):
    run_args = [*MULTI_WORKER_RUN, '--epochs', '3', '--data-dir', str(tiny_demo_data)]
    (chief, chief_runs, _), (worker, worker_runs, _) = run_workers(run_args, tmp_path, signal_batches=(0, 4))
    assert chief.returncode == worker.returncode == 128 + signal.SIGTERM, (chief.stderr[-2000:], worker.stderr[-2000:])
    assert 'Another worker of the run was asked to stop' in chief.stdout
    assert 'Stopped in epoch 2 after step 1' in chief.stdout
    assert 'Stopped with the other workers in epoch 2' in worker.stdout
    [run_name] = os.listdir(chief_runs)
    run_dir = str(chief_runs / run_name)
    assert sorted(os.listdir(os.path.join(run_dir, 'checkpoint'))) == ['checkpoint', 'epoch-001', 'epoch-002-step-0001']
    assert not os.path.exists(worker_runs)

    (chief, _, chief_weights), (worker, _, worker_weights) = run_workers(['--resume', run_dir], tmp_path)
    assert chief.returncode == worker.returncode == 0, (chief.stderr[-2000:], worker.stderr[-2000:])
    assert f'Resuming {run_dir} after epoch 1 of 3' in chief.stdout
    assert_same_weights(chief_weights, worker_weights)
    assert [row[:2] for row in read_loss_csv(os.path.join(run_dir, 'loss.csv'))] == [
        (epoch, step) for epoch in (1, 2, 3) for step in (1, 2)]
    assert not os.path.exists(worker_runs)


@pytest.mark.slow
def test_workers_started_with_other_settings_or_unable_to_read_the_chiefs_checkpoint_all_stop_with_the_reason(
        tiny_demo_data, tmp_path):
    run_args = [*MULTI_WORKER_RUN, '--epochs', '1', '--data-dir', str(tiny_demo_data)]
    (chief, chief_runs, _), (worker, _, _) = run_workers(run_args, tmp_path, own_args=((), ('--learning-rate', '1e-3')))
    for process in (chief, worker):
        assert process.returncode == 1, process.stderr[-2000:]
        assert ('error: the 2 workers of this run differ in their settings: worker 1 differs from the chief (worker 0). '
                'Start every worker with the same command') in process.stderr
    assert not os.path.exists(chief_runs)  # refused before the run folder is made

    other_label = shutil.copytree(tiny_demo_data, tmp_path / 'other_label')  # same names, one label's contents changed
    label_path = other_label / 'demo' / 'data_road' / 'training' / 'gt_image_2' / 'um_road_000000.png'
    label = np.array(Image.open(label_path))
    label[0, 0] = BACKGROUND_COLOUR if tuple(label[0, 0]) == ROAD_COLOUR else ROAD_COLOUR
    Image.fromarray(label).save(label_path)
    other_vgg = shutil.copytree(tiny_demo_data, tmp_path / 'other_vgg')  # a VGG16 of other weights, same layout
    vgg_dir = other_vgg / 'demo' / f'vgg_width_{TINY_WIDTH:g}'
    shutil.rmtree(vgg_dir / 'variables')
    shutil.copytree(os.path.join(build_vgg16_savedmodel(str(tmp_path / 'vgg_seed_2'), width=TINY_WIDTH, seed=2),
                                 'variables'), vgg_dir / 'variables')
    for data_dir, what in ((other_label, 'their training and validation files (names or contents)'),
                           (other_vgg, 'their VGG16 weights (this one: ')):
        (chief, chief_runs, _), (worker, _, _) = run_workers(run_args, tmp_path / data_dir.name,
                                                             own_args=((), ('--data-dir', str(data_dir))))
        for process in (chief, worker):
            assert process.returncode == 1, process.stderr[-2000:]
            assert f'error: the 2 workers of this run differ in {what}' in process.stderr
            assert ': worker 1 differs from the chief (worker 0). Give every worker the same' in process.stderr
        assert not os.path.exists(chief_runs)

    (chief, chief_runs, _), _ = run_workers(run_args, tmp_path / 'finished')
    [run_name] = os.listdir(chief_runs)
    run_dir = chief_runs / run_name
    damaged_dir = tmp_path / 'damaged_copy'  # its checkpoint's index reads, its weights do not
    shutil.copytree(run_dir, damaged_dir)
    [weights_file] = (damaged_dir / 'checkpoint' / 'epoch-001').glob('model.data-*')
    weights_file.write_bytes(weights_file.read_bytes()[:100])
    (chief, _, _), (worker, _, _) = run_workers(['--epochs', '2'], tmp_path, own_args=(
        ('--resume', str(run_dir)), ('--resume', str(damaged_dir))))
    assert chief.returncode == worker.returncode == 1, (chief.stderr[-2000:], worker.stderr[-2000:])
    assert f'differ in the epoch they start from (this one: 2, resuming {run_dir})' in chief.stderr
    assert 'holds no intact finished epoch' in worker.stderr
    assert f'(this one: 0, resuming {damaged_dir})' in worker.stderr

    empty_dir = tmp_path / 'copy_without_checkpoints'  # refused at once: the chief waits for it no longer than asked
    shutil.copytree(run_dir, empty_dir, ignore=shutil.ignore_patterns('epoch-*'))
    (chief, _, _), (worker, _, _) = run_workers(['--epochs', '2', '--worker-timeout', '10'], tmp_path, own_args=(
        ('--resume', str(run_dir)), ('--resume', str(empty_dir))))
    assert chief.returncode == worker.returncode == 1, (chief.stderr[-2000:], worker.stderr[-2000:])
    assert 'the other workers of this run did not join in time (--worker-timeout)' in chief.stderr
    assert 'holds no intact finished epoch' in worker.stderr
    assert [row[:2] for row in read_loss_csv(str(run_dir / 'loss.csv'))] == [(1, 1), (1, 2)]


@pytest.mark.slow
def test_a_worker_killed_mid_run_stops_the_chief_in_seconds_with_the_reason_and_its_last_epoch_kept(tiny_demo_data,
                                                                                                     tmp_path):
    run_args = [*MULTI_WORKER_RUN, '--epochs', '3', '--data-dir', str(tiny_demo_data)]  # --worker-timeout 600
    started = time.monotonic()
    (chief, chief_runs, _), (worker, _, _) = run_workers(run_args, tmp_path, signal_batches=(0, -3))
    assert time.monotonic() - started < 180  # the heartbeat's 15 s, not the 600 s of --worker-timeout
    assert worker.returncode == -signal.SIGKILL
    assert chief.returncode == 1, chief.stderr[-2000:]
    assert ('error: worker 1 of this run stopped answering for 15 s (UnavailableError), while this worker waited for '
            'it in a step or a vote. The chief keeps the weights of the last finished epoch') in chief.stderr
    [run_name] = os.listdir(chief_runs)
    assert sorted(os.listdir(chief_runs / run_name / 'checkpoint')) == ['checkpoint', 'epoch-001']


@pytest.mark.slow
def test_a_worker_lost_while_the_chief_validates_lets_it_keep_that_epoch_then_stop_naming_it(tiny_demo_data, tmp_path):
    run_args = [*MULTI_WORKER_RUN, '--epochs', '3', '--eval-every', '1', '--data-dir', str(tiny_demo_data)]
    mark = tmp_path / 'validating'
    (chief, chief_runs, _), (worker, _, _) = start_workers(
        run_args, tmp_path, environment={'SLOW_VALIDATION_S': '25', 'VALIDATION_MARK': str(mark)})
    try:
        deadline = time.monotonic() + 180
        while not mark.exists():
            assert time.monotonic() < deadline and chief.poll() is None
            time.sleep(0.2)
        worker.kill()  # while the chief validates epoch 1, outside any step or vote
        _, stderr = chief.communicate(timeout=120)
        assert chief.returncode == 1, stderr[-2000:]
        assert 'worker 1 of this run stopped answering for 15 s (UnavailableError).' in stderr
        assert 'error: a worker of this run was lost in epoch 2 after step 0 (UnavailableError' in stderr
        [run_dir] = chief_runs.iterdir()
        assert sorted(os.listdir(run_dir / 'checkpoint')) == ['checkpoint', 'epoch-001']  # validated, then kept
    finally:
        for process in (chief, worker):
            process.kill()
            process.communicate()


@pytest.mark.slow
def test_ctrl_c_on_the_chief_stops_it_while_it_waits_for_a_worker_that_hangs(tiny_demo_data, tmp_path):
    run_args = [*MULTI_WORKER_RUN, '--epochs', '30', '--data-dir', str(tiny_demo_data)]
    (chief, chief_runs, _), (worker, _, _) = start_workers(run_args, tmp_path)
    try:
        deadline = time.monotonic() + 180
        while not list(chief_runs.glob('*/checkpoint/epoch-*')):  # an epoch has finished: training is under way
            assert time.monotonic() < deadline and chief.poll() is None, chief.stderr.read()[-2000:]
            time.sleep(0.5)
        worker.send_signal(signal.SIGSTOP)  # alive to the kernel, answering nothing: the chief's step waits
        time.sleep(3)
        asked = time.monotonic()
        chief.send_signal(signal.SIGINT)
        _, stderr = chief.communicate(timeout=60)
        assert time.monotonic() - asked < 30  # the grace of 5 s (or 3 steps), not --worker-timeout
        assert chief.returncode == 128 + signal.SIGINT, stderr[-2000:]
        assert 'SIGINT stopped this worker while it waited' in stderr
        [run_dir] = chief_runs.iterdir()
        assert [name for name in os.listdir(run_dir / 'checkpoint') if name.startswith('epoch-')]  # the epochs kept
    finally:
        for process in (chief, worker):
            process.kill()
            process.communicate()


@pytest.mark.slow
def test_a_chief_validating_for_longer_than_the_worker_timeout_is_not_taken_for_a_lost_worker(tiny_demo_data,
                                                                                              tmp_path):
    run_args = [*MULTI_WORKER_RUN, '--epochs', '2', '--eval-every', '1', '--worker-timeout', '8',
                '--data-dir', str(tiny_demo_data)]
    (chief, chief_runs, chief_weights), (worker, _, worker_weights) = run_workers(
        run_args, tmp_path, environment={'SLOW_VALIDATION_S': '16'})  # the worker's vote waits 16 s at each epoch end
    assert chief.returncode == worker.returncode == 0, (chief.stderr[-2000:], worker.stderr[-2000:])
    assert_same_weights(chief_weights, worker_weights)
    [run_name] = os.listdir(chief_runs)
    assert os.path.isdir(chief_runs / run_name / 'model')


@pytest.mark.slow
def test_a_worker_whose_port_is_taken_stops_naming_its_address(tmp_path):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        address = f'127.0.0.1:{taken.getsockname()[1]}'
        tf_config = json.dumps({'cluster': {'worker': [address, '127.0.0.1:1']},
                                'task': {'type': 'worker', 'index': 0}})
        started = subprocess.run([sys.executable, 'main.py', *TINY_RUN, '--data-dir', str(tmp_path / 'data')],
                                 cwd=PROJECT_DIR, env={**os.environ, 'TF_CONFIG': tf_config}, capture_output=True,
                                 text=True, timeout=120)
    assert started.returncode == 1
    assert f"error: cannot start the server of TF_CONFIG's task worker 0 at {address}" in started.stderr
    assert not os.path.exists(tmp_path / 'data')  # stopped before anything was made


@pytest.mark.slow
@pytest.mark.parametrize('replicated', [False, True])
def test_frozen_blocks_keep_their_loaded_weights_and_the_rest_trains(tiny_vgg_path, tmp_path, replicated):
    config = TrainConfig(pool_scaling=False, init_stddev=0.1, frozen_blocks=3)
    start = {'folder': str(tmp_path)}
    strategy = two_cpus() if replicated else None
    before = train_steps(tiny_vgg_path, strategy, 0, start, config)[1]
    after = train_steps(tiny_vgg_path, strategy, 2, start, config)[1]
    unchanged = sorted(name for name, value in before.items() if np.array_equal(after[name], value))
    assert unchanged == sorted(f'conv{block}_{conv}/{kind}' for block, convolutions in ((1, 2), (2, 2), (3, 3))
                               for conv in range(1, convolutions + 1) for kind in ('weights', 'biases'))
    assert not np.array_equal(after['conv4_1/weights'], before['conv4_1/weights'])
