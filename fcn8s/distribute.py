"""Data-parallel training on tf.distribute, in graph mode: the replicas of a run and the replicated training graph.

One device: nothing changes (no strategy). Several devices of one machine (every GPU, or the CPU split into
logical devices): MirroredStrategy. Several machines: MultiWorkerMirroredStrategy from the standard TF_CONFIG,
with the tf.distribute.Server that graph mode needs. Every replica takes its rows of the global batch, which
every worker's pipeline makes alike (its draws are stateless), so that the summed gradients are those of one
device on the whole batch; VGG16 is built in code under the strategy, so that its weights are mirrored, and the
SavedModel's weights are restored into it.
"""
import collections
import contextlib
import dataclasses
import json
import os
import sys

from fcn8s import vgg
from fcn8s.batches import training_inputs
from fcn8s.checkpoints import mirror_first_copies, variables_by_name
from fcn8s.dataset_contract import IGNORE_ID
from fcn8s.errors import ModelError, SettingError
from fcn8s.heartbeat import Heartbeat
from fcn8s.tf1 import tf

SUM = tf.distribute.ReduceOp.SUM
VOTE_TIMEOUT_S = 7 * 24 * 3600  # a vote's time limit: a lost worker is the heartbeat's to notice
# What one replica of several minimises: its pixels' cross-entropy summed over valid_pixels, the labelled pixels of
# the global batch, plus the L2 terms / replicas. TF1 optimizers sum the replicas' gradients, so the update is one
# device's on the global batch.
ReplicaShare = collections.namedtuple('ReplicaShare', 'valid_pixels replicas')
ReplicatedGraph = collections.namedtuple('ReplicatedGraph', 'image_input keep_prob correct_label logits train_op loss '
                                                            'loss_terms trained_variables')


@dataclasses.dataclass
class Replicas:
    """The devices a run trains on: strategy None for one device; count, the replicas in sync over all workers.

    is_chief: whether this process writes the run (the only process, or worker 0 of a cluster).
    target: the session target ('' in process; the worker's server for several workers).
    """
    strategy: object = None
    count: int = 1
    is_chief: bool = True
    target: str = ''
    workers: int = 1
    task_number: int = 0  # this worker's place in task_names
    task_names: tuple = ('worker 0',)  # every worker's TF_CONFIG task ('chief 0', 'worker 1', ...), the chief first
    summing: tuple = None  # (value placeholder, its sum over all replicas), built by connect for several workers
    heartbeat: Heartbeat = None  # this worker's watch on the others, from start_heartbeat

    def session_config(self, proto, timeout_s):
        """proto (a tf.ConfigProto) as this process's sessions need it: with every logical CPU device (a session's
        own ConfigProto sees one unless told); for several workers, with the collective group leader
        (MultiWorkerMirroredStrategy.update_config_proto) and a limit of timeout_s seconds on every run, so that a
        worker lost in a step or a vote stops the others instead of leaving them waiting."""
        proto.device_count['CPU'] = len(tf.config.list_logical_devices('CPU'))
        if self.workers == 1:
            return proto
        proto.operation_timeout_in_ms = int(timeout_s * 1000)
        return self.strategy.update_config_proto(proto)

    def connect(self):
        """Build the op by which workers add up numbers (agree, stop_test) in the default graph; before anything
        else, so that it is the first collective of every worker's graph, whatever differs after it."""
        if self.workers > 1:
            self.summing = sum_over_replicas_op(self.strategy)

    def summed(self, sess, value, timeout_s=None):
        """The sum of every replica's value, each worker's replicas giving its own (a float64 scalar); within
        timeout_s seconds when given, else the session's time limit (--worker-timeout)."""
        value_input, total = self.summing
        options = None if timeout_s is None else tf.RunOptions(timeout_in_ms=int(timeout_s * 1000))
        return sess.run(total, {value_input: value}, options=options)

    def start_heartbeat(self):
        """Start this worker's watch on the others (heartbeat.Heartbeat), once all of them have joined."""
        if self.workers > 1 and self.heartbeat is None:
            others = {name: '/job:{}/replica:0/task:{}/device:CPU:0'.format(*name.split())
                      for number, name in enumerate(self.task_names) if number != self.task_number}
            self.heartbeat = Heartbeat(self.target, others).start()

    def agree(self, sess, value, what, advice=''):
        """Raise SettingError unless every worker gives the chief's value (a whole number below 2**31): the message
        says that they differ in what ('their settings') and which workers differ from the chief, then advice.
        Every worker must call it at the same point; one that does not come within the session's time limit
        (session_config) is said to be missing."""
        if self.workers == 1:
            return
        replicas_per_worker = self.count // self.workers
        try:
            chief_value = round(self.summed(sess, value if self.is_chief else 0) / replicas_per_worker)
            differing_bits = round(self.summed(sess, 2.0 ** self.task_number if value != chief_value else 0)
                                   / replicas_per_worker)
        except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError) as error:
            raise SettingError('the other workers of this run did not join in time (--worker-timeout). Run the same '
                               'command on every node, each with its own TF_CONFIG task, and read the output of those '
                               'that stopped.') from error
        differing = [name for number, name in enumerate(self.task_names) if differing_bits >> number & 1]
        if differing:
            raise SettingError(f"the {self.workers} workers of this run differ in {what}: {', '.join(differing)} "
                               f"{'differs' if len(differing) == 1 else 'differ'} from the chief "
                               f'({self.task_names[0]}). {advice}'.rstrip())

    def stop_test(self, sess, requested):
        """The stop test for train_nn (stop_requested) of this process's requested(): requested itself in one
        process. Several workers vote at every test, which all of them take at the same points (before each step,
        after each epoch), so that all of them stop at the step at which any was asked. A vote waits as long as
        the others are alive (the chief may validate for longer than --worker-timeout); a worker that the
        heartbeat found lost ends the test with UnavailableError, which train_nn makes a WorkerLost."""
        if self.workers == 1:
            return requested
        self.start_heartbeat()

        def stop_requested():
            self.heartbeat.tick()
            if self.heartbeat.lost is not None:  # train_nn makes it a WorkerLost, whose message names no worker
                print(f'{self.heartbeat.describe_lost()}.', file=sys.stderr, flush=True)
                raise tf.errors.UnavailableError(None, None, self.heartbeat.describe_lost())
            asked = requested()
            stop = self.summed(sess, float(asked), VOTE_TIMEOUT_S) > 0
            if stop and not asked:
                print('Another worker of the run was asked to stop: stopping with it.', flush=True)
            return stop
        return stop_requested

    def describe(self, batch_size):
        """How training is spread for global batches of batch_size, for the log; a warning when some replicas would
        take no image."""
        if self.strategy is None:
            return 'Training on one device.'
        devices = ', '.join(self.strategy.extended.worker_devices)
        where = f'{self.workers} workers, this one on {devices}' if self.workers > 1 else devices
        rows = -(-batch_size // self.count)
        idle = self.count - -(-batch_size // rows)
        warning = (f'\nwarning: {idle} of the {self.count} replicas have no image of a batch of {batch_size} and '
                   f'compute for nothing: give --batch-size {self.count} or a multiple of it.') if idle else ''
        return (f'Training data-parallel on {self.count} replicas ({where}), {rows} image(s) of each batch of '
                f'{batch_size} on each.{warning}')


def cluster_of(tf_config_text):
    """(cluster {job: [host:port]}, task type, task index) of a TF_CONFIG text; raises SettingError naming the fault."""
    advice = ('TF_CONFIG must be JSON such as {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, '
              '"task": {"type": "worker", "index": 0}}, the same cluster on every node and its own task on each')
    try:
        tf_config = json.loads(tf_config_text)
        cluster, task = tf_config['cluster'], tf_config['task']
        task_type, task_index = task['type'], task['index']
    except (ValueError, TypeError, KeyError) as error:
        raise SettingError(f'TF_CONFIG cannot be read ({type(error).__name__}: {error}). {advice}.') from error
    hosts = cluster.get(task_type) if isinstance(cluster, dict) else None
    if not isinstance(hosts, list) or not isinstance(task_index, int) or not 0 <= task_index < len(hosts):
        raise SettingError(f'TF_CONFIG names the task {task_type} {task_index!r}, which its cluster {cluster} does not '
                           f'hold. {advice}.')
    return cluster, task_type, task_index


def split_cpu(count):
    """Split this process's CPU into count logical devices (before TensorFlow's runtime starts), unless it is so."""
    cpu = tf.config.list_physical_devices('CPU')[0]
    if len(tf.config.get_logical_device_configuration(cpu) or ()) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:
        raise SettingError(f'cannot split the CPU into {count} logical devices: TensorFlow has started its devices '
                           f'already ({error}). Ask for the replicas before anything runs TensorFlow.') from error


def replicas_of(requested, tf_config_text=None):
    """The Replicas of a run: requested devices on this machine (0: every GPU, else one) and TF_CONFIG's cluster.

    Without GPUs, requested > 1 splits the CPU into that many logical devices (split_cpu), so that the
    replicated path runs anywhere. A TF_CONFIG of several tasks starts this worker's tf.distribute.Server;
    each worker then trains on its GPUs (one CPU device without GPUs). Raises SettingError for more GPUs than
    the machine has, or a TF_CONFIG that cannot be used. Call it before anything else runs TensorFlow.
    """
    gpus = tf.config.list_physical_devices('GPU')
    if requested > max(len(gpus), 1) and gpus:
        raise SettingError(f'--replicas {requested} asks for more GPUs than this machine has ({len(gpus)}); give '
                           f'--replicas {len(gpus)} or less, or 0 for all of them.')
    if tf_config_text:
        cluster, task_type, task_index = cluster_of(tf_config_text)
        workers = sum(len(hosts) for hosts in cluster.values())
        if workers > 1:
            return worker_replicas(cluster, task_type, task_index, workers)
    local_count = requested or max(len(gpus), 1)
    if local_count == 1:
        return Replicas()
    if not gpus:
        split_cpu(local_count)
    kind = 'gpu' if gpus else 'cpu'
    strategy = tf.distribute.MirroredStrategy([f'/{kind}:{index}' for index in range(local_count)])
    return Replicas(strategy, strategy.num_replicas_in_sync)


def worker_replicas(cluster, task_type, task_index, workers):
    """Replicas of this worker of a cluster: MultiWorkerMirroredStrategy and a started tf.distribute.Server.

    The all-reduce between workers is TensorFlow's RING collective, through the workers' servers (the port of
    their TF_CONFIG address, all that infra/ opens between nodes); NCCL would connect on ports of its own.
    """
    cluster_spec = tf.train.ClusterSpec(cluster)
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(cluster_spec, task_type=task_type,
                                                                    task_id=task_index, rpc_layer='grpc')
    strategy = tf.distribute.experimental.MultiWorkerMirroredStrategy(
        communication=tf.distribute.experimental.CollectiveCommunication.RING, cluster_resolver=resolver)
    try:
        server = tf.distribute.Server(cluster_spec, job_name=task_type, task_index=task_index,
                                      config=strategy.update_config_proto(tf.ConfigProto()), start=True)
    except tf.errors.OpError as error:
        raise SettingError(f'cannot start the server of TF_CONFIG\'s task {task_type} {task_index} at '
                           f'{cluster[task_type][task_index]} ({type(error).__name__}: {error.message}). Give this '
                           'node\'s own address and a free port.') from error
    is_chief = task_type == 'chief' or (task_type == 'worker' and task_index == 0 and 'chief' not in cluster)
    task_names = tuple(f'{job} {index}' for job in sorted(cluster, key=lambda job: job != 'chief')
                       for index in range(len(cluster[job])))
    return Replicas(strategy, strategy.num_replicas_in_sync, is_chief, server.target, workers,
                    task_names.index(f'{task_type} {task_index}'), task_names)


def replica_batch(images, labels, replica_id, count, ignored_id=IGNORE_ID):
    """This replica's rows of a global batch (images [b, h, w, 3], labels [b, h, w] class ids): the replica_id-th
    of count runs of ceil(b / count) rows. A replica left without rows (a batch smaller than count) takes the first
    image with every pixel ignored_id, which adds nothing to the loss or the gradients."""
    size = tf.shape(images)[0]
    rows = (size + count - 1) // count
    start = tf.minimum(replica_id * rows, size)
    end = tf.minimum(start + rows, size)
    empty = tf.equal(start, end)
    start, end = tf.where(empty, 0, start), tf.where(empty, 1, end)
    own_labels = labels[start:end]
    ignored = tf.fill(tf.shape(own_labels), tf.constant(ignored_id, labels.dtype))
    return images[start:end], tf.where(empty, ignored, own_labels)


@contextlib.contextmanager
def own_collection(key):
    """Within, the graph's collection key starts empty; after, what was added follows what was there before."""
    collection = tf.get_collection_ref(key)
    before = list(collection)
    del collection[:]
    try:
        yield
    finally:
        collection[:0] = before


def savedmodel_variables_path(vgg_path):
    """The checkpoint prefix of a SavedModel's variables."""
    return os.path.join(vgg_path, 'variables', 'variables')


def savedmodel_layer_shapes(vgg_path):
    """({VGG16 layer: kernel shape HWIO}, {checkpoint name: layer variable name}) of a VGG16 SavedModel's weights.

    Each layer's kernel is the 4-D and its bias the 1-D variable of the layer's scope, whatever their own
    names ('weights', 'filter'); raises ModelError naming a layer the SavedModel lacks.
    """
    try:
        stored = tf.train.list_variables(savedmodel_variables_path(vgg_path))
    except (tf.errors.OpError, ValueError) as error:
        raise ModelError(f'cannot read the weights of the VGG16 SavedModel in {vgg_path!r} ({error}). Delete the '
                         'folder to download it again, or write one with `python main.py build-vgg`.') from error
    layer_shapes, names = {}, {}
    for layer, _ in vgg.vgg16_layer_shapes():
        kernels = [(name, shape) for name, shape in stored if name.startswith(layer + '/') and len(shape) == 4]
        biases = [name for name, shape in stored if name.startswith(layer + '/') and len(shape) == 1]
        if len(kernels) != 1 or len(biases) != 1:
            raise ModelError(f'the VGG16 SavedModel in {vgg_path!r} has no single kernel and bias of {layer} '
                             f'(found {[name for name, _ in kernels] + biases}); its weights are '
                             f'{[name for name, _ in stored]}.')
        (kernel_name, kernel_shape), = kernels
        layer_shapes[layer] = tuple(kernel_shape)
        names.update({kernel_name: f'{layer}/weights', biases[0]: f'{layer}/biases'})
    return layer_shapes, names


def build_replicated_graph(sess, strategy, vgg_path, batches, num_classes, build_replica):
    """The training graph replicated over strategy's devices in sess's graph, initialised: a ReplicatedGraph.

    batches: (images [B, h, w, 3] uint8, class ids [B, h, w] uint8), the global batch of the input pipeline.
    build_replica(vgg_tensors, correct_label, vgg_variables, share) builds one replica's decoder, loss and
    train op on the VGG16 tensors (image_input, keep_prob, pool3, pool4, fc7) of its rows of the batch and
    returns (logits, train_op, loss, trained variables); share is its ReplicaShare. The VGG16 layers are built
    in code, mirrored, and get the SavedModel's weights. loss and loss_terms are summed over the replicas: the
    one-device values of the global batch. image_input, correct_label and logits are this worker's first
    replica's, for validation and the export: feeding image_input gives logits of the fed images.
    """
    layer_shapes, stored_names = savedmodel_layer_shapes(vgg_path)
    _, batch_labels = batches
    valid_pixels = tf.maximum(tf.reduce_sum(tf.cast(batch_labels < num_classes, tf.float32)), 1.0)
    keep_prob = tf.placeholder(tf.float32, name='keep_prob')

    def replica_step():
        """One replica: its rows, VGG16 in code, then build_replica with its own L2 terms."""
        replica_id = tf.distribute.get_replica_context().replica_id_in_sync_group
        rows = replica_batch(*batches, replica_id, strategy.num_replicas_in_sync)
        image_input, correct_label = training_inputs(rows, num_classes)
        vgg_outputs, vgg_layer_variables = vgg.vgg16_layers(image_input, keep_prob, layer_shapes)
        vgg_variables = {variable for pair in vgg_layer_variables.values() for variable in pair}
        with own_collection(tf.GraphKeys.REGULARIZATION_LOSSES):
            logits, train_op, loss, trained = build_replica((image_input, keep_prob, *vgg_outputs), correct_label,
                                                            vgg_variables,
                                                            ReplicaShare(valid_pixels, strategy.num_replicas_in_sync))
        return image_input, correct_label, logits, train_op, loss, tuple(loss.op.inputs), trained

    with strategy.scope():
        image_input, correct_label, logits, train_op, loss, loss_terms, trained = \
            strategy.extended.call_for_each_replica(replica_step)
        summed_loss, *summed_terms = (strategy.reduce(SUM, value, axis=None) for value in (loss, *loss_terms))
        grouped_train_op = strategy.group(train_op)
    first_replica = (strategy.experimental_local_results(value)[0] for value in (image_input, correct_label, logits))
    image_input, correct_label, logits = first_replica
    sess.run(tf.global_variables_initializer())
    by_name = variables_by_name()
    tf.train.Saver({stored: by_name[name] for stored, name in stored_names.items()}).restore(
        sess, savedmodel_variables_path(vgg_path))
    sess.run(mirror_first_copies())  # the Saver restored each variable's first copy
    return ReplicatedGraph(image_input, keep_prob, correct_label, logits, grouped_train_op, summed_loss,
                           tuple(summed_terms), trained)


def sum_over_replicas_op(strategy):
    """(value placeholder, op): the op sums the fed float64 value over every replica of every worker."""
    value_input = tf.placeholder(tf.float64, [], name='value_to_sum')
    with strategy.scope():
        values = strategy.extended.call_for_each_replica(lambda: tf.identity(value_input))
        return value_input, strategy.reduce(SUM, values, axis=None)
