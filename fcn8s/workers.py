"""Several machines: the workers' agreement on a run, and what a worker other than the chief runs.

Every worker of a run builds the same graph and takes the same steps; the chief (worker 0) alone writes the run
folder. Before training, the workers agree on their settings, their data files and VGG16 weights (by contents),
then on the epoch they start from (Replicas.agree): a difference, or a worker that does not come, stops all of
them with the reason.
"""
import dataclasses
import json
import os
import zlib

from fcn8s import run_folder
from fcn8s.checkpoints import EpochCheckpoints, LossWatch, StopSignal
from fcn8s.config import RUN_FOLDER_SETTINGS
from fcn8s.errors import RunStopped, SettingError, TrainingDiverged, TrainingInterrupted, WorkerLost
from fcn8s.files import folder_sha256

START_EPOCH_ADVICE = ("To resume a run, give every worker --resume with the chief's run folder, which each must be "
                      "able to read: put --runs-dir on storage the workers share, or copy the chief's run folder to "
                      'every worker.')


def fingerprint(value):
    """A whole number in 0 .. 2**31 - 1 of a JSON-able value, for Replicas.agree."""
    return zlib.crc32(json.dumps(value, sort_keys=True).encode()) % 2 ** 31


def agree_on_run(sess, replicas, config, split, vgg_path):
    """Raise SettingError unless every worker of the run has the chief's settings (all but the folders, --replicas
    and --worker-timeout), the chief's split (names and sha256 of the files, run_folder.run_split) and the chief's
    VGG16 weights (the sha256 of vgg_path/variables): compared in that order, before any weight is restored, the
    error naming what differs and on which worker. Then every worker watches the others (Replicas.start_heartbeat)."""
    if replicas.workers == 1:
        return
    settings = {name: value for name, value in dataclasses.asdict(config).items()
                if name not in (*RUN_FOLDER_SETTINGS, 'replicas', 'worker_timeout')}
    replicas.agree(sess, fingerprint(settings), 'their settings',
                   'Start every worker with the same command (--data-dir and --runs-dir may differ).')
    replicas.agree(sess, fingerprint(split), 'their training and validation files (names or contents)',
                   'Give every worker the same copy of the dataset.')
    vgg_weights = folder_sha256(os.path.join(vgg_path, 'variables'))
    replicas.agree(sess, fingerprint(vgg_weights), f'their VGG16 weights (this one: {vgg_path}, sha256 '
                   f'{vgg_weights[:12]}...)', 'Give every worker the same VGG16 folder (copy the chief\'s).')
    replicas.start_heartbeat()


def agreed_start_epoch(sess, replicas, checkpoints, run_dir, required):
    """The epoch training starts from, that every worker restores: 1 + the last finished epoch that checkpoints
    (EpochCheckpoints; None for a worker's new run, which has no folder) restores into sess. Raises SettingError when
    the workers start from different epochs, or when required (a resumed run) and there is none; a worker that
    cannot restore still takes part in the agreement before it raises, so that no worker waits for it.
    """
    problems = []
    try:
        start_epoch = 1 if checkpoints is None else checkpoints.restore_last(sess, required) + 1
    except SettingError as error:
        start_epoch = 0
        problems.append(error)
    try:
        source = f'resuming {run_dir}' if required else 'a new run'
        replicas.agree(sess, start_epoch, f'the epoch they start from (this one: {start_epoch}, {source})',
                       START_EPOCH_ADVICE)
    except SettingError as error:
        problems.append(error)
    if problems:
        raise SettingError(' '.join(map(str, problems)))
    return start_epoch


def follow_chief(sess, trained_variables, config, get_batches_fn, resume_dir, replicas, train_epochs):
    """Train as a worker of several other than the chief: the chief's steps on this worker's replicas, nothing written.

    train_epochs(start_epoch=, on_epoch_end=, stop_requested=) is main.train_nn on the graph in sess, whose
    trained_variables a checkpoint restores. A resumed run starts from the chief's last finished epoch in
    resume_dir/checkpoint, which this worker must be able to read (storage shared by the workers, or a copy): the
    workers agree on it first. Every worker watches the same global losses (LossWatch) and votes on stopping
    (replicas.stop_test), so all of them stop at the same step; the chief keeps the weights. Raises TrainingDiverged
    on a diverging loss, and RunStopped for a lost worker (exit status 1) or a stop request (128 + the signal's
    number); the chief says what it kept.
    """
    checkpoints = resume_dir and EpochCheckpoints(os.path.join(resume_dir, 'checkpoint'), trained_variables,
                                                  writes=False)
    start_epoch = agreed_start_epoch(sess, replicas, checkpoints, resume_dir, required=bool(resume_dir))
    past_loss_rows = run_folder.read_loss_csv(os.path.join(resume_dir, 'loss.csv')) if resume_dir else []
    get_batches_fn.start(sess, start_epoch)
    loss_watch = LossWatch(config.divergence_ratio, past_loss_rows)
    with StopSignal() as stop_signal:
        try:
            train_epochs(start_epoch=start_epoch, on_epoch_end=loss_watch.check,
                         stop_requested=replicas.stop_test(sess, stop_signal.requested))
        except TrainingDiverged as divergence:
            raise TrainingDiverged(f'{divergence}; the chief says what it kept.') from divergence
        except WorkerLost as lost:
            raise RunStopped(f'{lost}; the chief keeps the weights of the steps before.') from lost
        except TrainingInterrupted as interruption:
            print(f'Stopped with the other workers in epoch {interruption.epoch} after step {interruption.steps_done}; '
                  'the chief keeps the weights and says how to go on.')
            raise RunStopped(exit_status=stop_signal.exit_status) from interruption
    print('This worker is done; the chief writes the run folder.')
