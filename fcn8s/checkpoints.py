"""Checkpoints of finished epochs, kept whole, and what stops training: signals (Ctrl-C, SIGTERM), a diverging loss."""
import contextlib
import json
import os
import re
import shutil
import signal
import threading

import numpy as np

from fcn8s.errors import DataError, DiskFull, RunStopped, SettingError, TrainingDiverged
from fcn8s.files import DISK_FULL, write_atomically, written_whole
from fcn8s.tf1 import tf

CHECKPOINTS_KEPT = 3  # the last epochs whose checkpoints are kept, besides the one of the best validation score
EPOCH_FOLDER = re.compile(r'^epoch-(\d+)$')


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

    @property
    def exit_status(self):
        """The exit status of a process that stopped for a stop request: 128 + the signal's number (SIGTERM's when
        another worker of the run was asked to stop)."""
        return 128 + (self.signal_number or signal.SIGTERM)


class CheckpointFolder:
    """A run's checkpoint/ folder as it is on disk, read without a graph: which epochs finished, and where."""

    def __init__(self, folder):
        self.folder = folder

    def model_path(self, name):
        """The checkpoint prefix inside the folder `name`, as Saver.restore and tf.train.latest_checkpoint use it."""
        return os.path.join(self.folder, name, 'model')

    def epoch_folders(self):
        """{epoch: folder name} of the epoch-NNN/ folders present, by their names ({} without the folder)."""
        names = os.listdir(self.folder) if os.path.isdir(self.folder) else []
        return {int(match[1]): match[0] for match in map(EPOCH_FOLDER.match, names) if match}

    def read_description(self, name):
        """The epoch.json of the checkpoint folder `name`; raises DataError naming the file when it is unreadable."""
        description_path = os.path.join(self.folder, name, 'epoch.json')
        try:
            with open(description_path) as description_file:
                description = json.load(description_file)
            return {'epoch': int(description['epoch']),
                    'val_score': description.get('val_score', description.get('val_maxf'))}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(f'{description_path} cannot be read ({error})') from error

    def finished_epochs(self):
        """{epoch: validation score or None} of the epoch-NNN/ folders whose epoch.json can be read."""
        finished = {}
        for name in self.epoch_folders().values():
            try:
                description = self.read_description(name)
            except DataError:
                continue
            finished[description['epoch']] = description['val_score']
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

    def how_to_go_on(self, run_dir, restart_command):
        """describe_last(), and what to run next: `python main.py --resume run_dir` from the last finished epoch, or,
        when no epoch is kept, restart_command (options.command_line), as --resume has nothing to start from."""
        if self.last_finished() is None:
            return f'{self.describe_last()} --resume has nothing to go on from: start again with {restart_command}'
        return f'{self.describe_last()} To go on from there: python main.py --resume {run_dir}'

    def readable_class_counts(self):
        """{epoch: number of classes its weights score (score_fr/biases)} of the finished epochs whose epoch.json and
        checkpoint index can be read, newest first."""
        counts = {}
        for epoch, name in sorted(self.epoch_folders().items(), reverse=True):
            try:
                self.read_description(name)
                shapes = tf.train.load_checkpoint(self.model_path(name)).get_variable_to_shape_map()
            except (ValueError, tf.errors.OpError):
                continue
            counts[epoch] = shapes.get('score_fr/biases', [None])[0]
        return counts


class EpochCheckpoints(CheckpointFolder):
    """A run's checkpoint/ folder: the checkpoint of each finished epoch in epoch-NNN/, kept as training goes on.

    Each epoch-NNN/ holds a whole TensorFlow checkpoint (model.index, model.data-*, model.meta) and
    epoch.json ({"epoch": N, "val_score": its validation score or null: KITTI's MaxF, Cityscapes' mIoU; runs of
    an earlier version wrote "val_maxf"}). It is written in full into a
    hidden .partial folder and then renamed, so it is complete or absent. TensorFlow's `checkpoint` file,
    replaced the same way, names the newest: tf.train.latest_checkpoint(folder) returns it. The last
    `keep` epochs are kept, and the one with the best validation score. The weights of an interrupted
    epoch go to epoch-NNN-step-SSSS/, the newest until the next finished epoch replaces it; resuming
    starts from the last finished epoch.
    """

    def __init__(self, folder, trained_variables, keep=CHECKPOINTS_KEPT, writes=True):
        super().__init__(folder)
        self.keep = keep
        self.saver = tf.train.Saver(variables_by_name(), max_to_keep=None)  # pruning is done here, by epoch
        self.mirror_restored = mirror_first_copies()
        self.weights_finite = tf.reduce_all([tf.reduce_all(tf.is_finite(variable)) for variable in trained_variables])
        if not writes:  # a worker of several, which restores what the chief writes
            return
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if name.startswith('.partial-'):
                shutil.rmtree(os.path.join(folder, name))

    def restore_last(self, sess, required=False):
        """Restore the last intact finished epoch's weights and optimizer state into sess; returns it, 0 for none.

        A checkpoint whose epoch.json or weights cannot be read (a damaged or truncated file) is named
        in a printed warning, and the epoch kept before it is tried instead. With required (a resumed
        run), finding none raises SettingError.
        """
        for epoch, name in sorted(self.epoch_folders().items(), reverse=True):
            try:
                self.read_description(name)
                self.saver.restore(sess, self.model_path(name))
                sess.run(self.mirror_restored)
                return epoch
            except (ValueError, tf.errors.OpError) as error:
                problem = str(error).strip().splitlines()[0]
                print(f'warning: the checkpoint of epoch {epoch} in {os.path.join(self.folder, name)} cannot be '
                      f'restored ({problem}); trying the epoch kept before it.')
        if required:
            raise SettingError(f'{self.folder} holds no intact finished epoch, so there is nothing to resume; the '
                               'files are left as they are. Start a new run instead.')
        return 0

    def save(self, sess, epoch, val_score=None):
        """Checkpoint the finished epoch (val_score: the dataset's ranking score of its validation, if scored).

        The last `keep` epochs stay, and the one with the best val_score; the others are deleted. Raises
        TrainingDiverged, saving nothing, when a trained weight is NaN or infinite.
        """
        if not sess.run(self.weights_finite):
            raise TrainingDiverged(f'a trained weight became NaN or infinite in epoch {epoch}')
        self.write(sess, f'epoch-{epoch:03d}', {'epoch': epoch, 'val_score': val_score})
        finished = self.finished_epochs()
        kept_epochs = set(sorted(finished)[-self.keep:])
        scored = sorted(number for number, score in finished.items() if score is not None)
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
        """Write the checkpoint and its epoch.json into .partial-<name>/, then rename that to <name>/.

        A folder <name>/ that is there already (an interrupted epoch's earlier stop at the same step) is
        replaced. Raises DiskFull, leaving no partial folder, when the disk fills up.
        """
        partial_path = os.path.join(self.folder, f'.partial-{name}')
        try:
            with written_whole(os.path.join(self.folder, name), partial_path, discard_partial_on_error=True) as partial:
                self.saver.save(sess, os.path.join(partial, 'model'), write_state=False)
                with open(os.path.join(partial, 'epoch.json'), 'w') as description_file:
                    json.dump(description, description_file)
        except (tf.errors.ResourceExhaustedError, OSError) as error:
            if not disk_full(error):
                raise
            problem = str(error).strip().splitlines()[0]
            raise DiskFull(f'the disk holding {self.folder} is full: the checkpoint {name} could not be written '
                           f'({problem})') from error

    def write_index(self, names):
        """Replace TensorFlow's `checkpoint` file: all the given folders' checkpoints, the last one the newest."""
        lines = [f'model_checkpoint_path: "{names[-1]}/model"'] + [
            f'all_model_checkpoint_paths: "{name}/model"' for name in names]
        write_atomically(os.path.join(self.folder, 'checkpoint'), '\n'.join(lines) + '\n')


def variables_by_name():
    """{op name: variable} of the default graph's variables: the keys under which a checkpoint keeps them.

    Op names are alike on one device and on several replicas (a mirrored variable has its first copy's), so a
    checkpoint of either restores into the other; TensorFlow's default keys differ for variables made in a cond,
    as the fp16 loss-scaling optimizer makes Adam's. Keyed so, a mirrored variable saves and restores its first
    copy: mirror_first_copies makes the others alike after a restore.
    """
    return {variable.op.name: variable for variable in tf.global_variables()}


def mirror_first_copies():
    """Op that gives the other copies of each mirrored variable (tf.distribute) its first copy's value."""
    copies = [variable.values for variable in tf.global_variables()
              if isinstance(variable, tf.compat.v2.distribute.DistributedValues)]
    return tf.group([copy.assign(first.read_value()) for first, *others in copies for copy in others])


def disk_full(error):
    """Whether error says that a disk is full (or a quota used up): an OSError of DISK_FULL, or the
    ResourceExhaustedError by which TensorFlow's file writes report it."""
    if isinstance(error, OSError):
        return error.errno in DISK_FULL
    return isinstance(error, tf.errors.ResourceExhaustedError)


@contextlib.contextmanager
def finishing_run(run_dir, checkpoints, epochs, restart_command):
    """The block that writes the last files of a run trained for `epochs` epochs: loss.png, model/ and overlays/.

    Ctrl-C or SIGTERM, or a full disk, in the block raises RunStopped with one paragraph saying that
    run_dir/model may be missing and how to get it (checkpoints.how_to_go_on: --resume exports it without
    training again), and the exit status 128 + the signal's number, or 1. The export leaves no partial folder.
    """
    stopping_signals = []

    def stop(signal_number, frame):
        stopping_signals.append(signal_number)
        raise KeyboardInterrupt

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_sigterm = signal.signal(signal.SIGTERM, stop) if in_main_thread else None
    try:
        yield
    except (KeyboardInterrupt, OSError, tf.errors.ResourceExhaustedError) as error:
        if not isinstance(error, KeyboardInterrupt) and not disk_full(error):
            raise
        go_on = checkpoints.how_to_go_on(run_dir, restart_command)
        if checkpoints.last_finished() is not None and checkpoints.last_finished()[0] == epochs:
            go_on += ' (every epoch is trained: it only exports the model and paints the overlays)'
        signal_number = stopping_signals[0] if stopping_signals else signal.SIGINT
        cause = (f'{signal.Signals(signal_number).name} stopped the run' if isinstance(error, KeyboardInterrupt)
                 else f'the disk holding {run_dir} is full (No space left on device); free some space there. It '
                      'stopped the run')
        raise RunStopped(f'{cause} while it wrote its model and overlays: {os.path.join(run_dir, "model")} may be '
                         f'missing and overlays/ incomplete. {go_on}.',
                         128 + signal_number if isinstance(error, KeyboardInterrupt) else 1) from error
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm)


class LossWatch:
    """Stops a run whose loss explodes without becoming NaN: an epoch mean above `ratio` times the lowest so far.

    ratio 0 turns the watch off. past_loss_rows, [(epoch, step, loss, ...)] of a resumed run's earlier
    epochs, count as epochs seen.
    """

    def __init__(self, ratio, past_loss_rows=()):
        self.ratio = ratio
        epochs = np.array([row[0] for row in past_loss_rows])
        losses = np.array([row[2] for row in past_loss_rows])
        self.epoch_means = {int(epoch): float(losses[epochs == epoch].mean()) for epoch in np.unique(epochs)}

    def check(self, epoch, epoch_loss_rows):
        """Record the epoch's mean loss; raise TrainingDiverged when it exceeds ratio times the lowest earlier one."""
        mean_loss = float(np.mean([row[2] for row in epoch_loss_rows]))
        if self.ratio and self.epoch_means:
            best_epoch = min(self.epoch_means, key=self.epoch_means.get)
            best_loss = self.epoch_means[best_epoch]
            if mean_loss > self.ratio * best_loss:
                raise TrainingDiverged(
                    f'the mean loss of epoch {epoch}, {mean_loss:.4g}, is {mean_loss / best_loss:.3g} times that of '
                    f'epoch {best_epoch}, {best_loss:.4g}: more than --divergence-ratio {self.ratio:g} '
                    '(0 turns this check off)')
        self.epoch_means[epoch] = mean_loss
