"""Tests of fcn8s/checkpoints.py: epoch checkpoints are kept whole, the last and the best; the loss watch."""
import errno
import json
import os
import signal
import time

import pytest

from fcn8s.checkpoints import CheckpointFolder, EpochCheckpoints, LossWatch, finishing_run
from fcn8s.errors import DiskFull, RunStopped, TrainingDiverged
from fcn8s.tf1 import tf


def test_epoch_checkpoints_keep_the_last_and_the_best_and_appear_whole(tmp_path, monkeypatch):
    folder = str(tmp_path / 'checkpoint')
    weight = tf.get_variable('weight', initializer=0.0)
    with tf.Session() as sess:
        sess.run(weight.initializer)
        checkpoints = EpochCheckpoints(folder, [weight], keep=2)
        for epoch, val_score in enumerate([0.5, 0.9, None, 0.7, 0.6], start=1):
            weight.load(float(epoch), sess)
            checkpoints.save(sess, epoch, val_score)
        assert sorted(os.listdir(folder)) == ['checkpoint', 'epoch-002', 'epoch-004', 'epoch-005']
        assert tf.train.latest_checkpoint(folder) == os.path.join(folder, 'epoch-005', 'model')

        def save_half_then_fill_the_disk(sess, save_path, write_state):
            os.makedirs(os.path.dirname(save_path))
            open(save_path + '.index', 'w').close()
            raise OSError(errno.ENOSPC, 'No space left on device')

        monkeypatch.setattr(checkpoints.saver, 'save', save_half_then_fill_the_disk)
        with pytest.raises(DiskFull, match=f'the disk holding {folder} is full: the checkpoint epoch-006 could not'):
            checkpoints.save(sess, 6)
        monkeypatch.setattr(checkpoints.saver, 'save', lambda *args, **kwargs: (_ for _ in ()).throw(
            tf.errors.ResourceExhaustedError(None, None, 'out of disk space')))
        with pytest.raises(DiskFull, match='out of disk space'):
            checkpoints.save(sess, 6)
        monkeypatch.undo()
        assert sorted(os.listdir(folder)) == ['checkpoint', 'epoch-002', 'epoch-004', 'epoch-005']
        weight.load(float('nan'), sess)
        with pytest.raises(TrainingDiverged, match='epoch 7'):
            checkpoints.save(sess, 7)
        os.makedirs(os.path.join(folder, '.partial-epoch-006'))  # what a kill in the middle of a save leaves
        reopened = EpochCheckpoints(folder, [weight], keep=2)
        assert sorted(os.listdir(folder)) == ['checkpoint', 'epoch-002', 'epoch-004', 'epoch-005']
        assert reopened.restore_last(sess) == 5 and sess.run(weight) == 5.0


def saved_epochs(folder, epochs):
    """A variable `weight` and an EpochCheckpoints in folder holding the given epochs, each with weight = epoch."""
    weight = tf.get_variable('weight', initializer=0.0)
    sess = tf.Session()
    sess.run(weight.initializer)
    checkpoints = EpochCheckpoints(folder, [weight])
    for epoch in epochs:
        weight.load(float(epoch), sess)
        checkpoints.save(sess, epoch)
    weight.load(0.0, sess)
    return sess, weight, checkpoints


def test_a_corrupt_epoch_json_falls_back_to_the_epoch_before(tmp_path, capsys):
    folder = str(tmp_path / 'checkpoint')
    sess, weight, checkpoints = saved_epochs(folder, [1, 2])
    with open(os.path.join(folder, 'epoch-002', 'epoch.json'), 'w') as damaged:
        damaged.write('{"epoch": 2, "val_m')
    assert checkpoints.restore_last(sess) == 1 and sess.run(weight) == 1.0
    printed = capsys.readouterr().out
    assert f"epoch 2 in {os.path.join(folder, 'epoch-002')} cannot be restored" in printed
    assert os.path.join(folder, 'epoch-002', 'epoch.json') in printed and 'the epoch kept before it' in printed


def test_a_truncated_checkpoint_falls_back_to_the_epoch_before(tmp_path, capsys):
    folder = str(tmp_path / 'checkpoint')
    sess, weight, checkpoints = saved_epochs(folder, [1, 2, 3])
    [data_name] = [name for name in os.listdir(os.path.join(folder, 'epoch-003')) if name.startswith('model.data')]
    with open(os.path.join(folder, 'epoch-003', data_name), 'r+b') as data_file:
        data_file.truncate(2)
    assert checkpoints.restore_last(sess) == 2 and sess.run(weight) == 2.0
    assert 'the checkpoint of epoch 3' in capsys.readouterr().out


def test_no_intact_epoch_restores_nothing(tmp_path):
    folder = str(tmp_path / 'checkpoint')
    sess, weight, checkpoints = saved_epochs(folder, [1])
    os.remove(os.path.join(folder, 'epoch-001', 'epoch.json'))
    assert checkpoints.restore_last(sess) == 0 and sess.run(weight) == 0.0


def test_loss_watch_stops_an_exploding_loss_and_can_be_turned_off():
    watch = LossWatch(10, past_loss_rows=[(1, 1, 0.4, 0.3, 0.1), (1, 2, 0.32, 0.3, 0.02)])
    watch.check(2, [(2, 1, 3.0), (2, 2, 3.5)])  # 3.25 is below 10 times epoch 1's 0.36
    with pytest.raises(TrainingDiverged, match=r'mean loss of epoch 3, 15.1, is 41.9 times that of epoch 1, 0.36'):
        watch.check(3, [(3, 1, 15.1)])
    LossWatch(0, past_loss_rows=[(1, 1, 0.36)]).check(2, [(2, 1, 1429.0)])


def test_sigterm_while_a_run_finishes_stops_it_with_one_paragraph_and_the_advice_that_works(tmp_path):
    checkpoints = CheckpointFolder(str(tmp_path / 'checkpoint'))
    os.makedirs(tmp_path / 'checkpoint' / 'epoch-003')
    (tmp_path / 'checkpoint' / 'epoch-003' / 'epoch.json').write_text(json.dumps({'epoch': 3, 'val_score': None}))
    previous_handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RunStopped) as stopped:
        with finishing_run(str(tmp_path), checkpoints, 3, 'python main.py --epochs 3'):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            pytest.fail('SIGTERM did not stop the block')
    assert stopped.value.exit_status == 128 + signal.SIGTERM and signal.getsignal(signal.SIGTERM) == previous_handler
    assert str(stopped.value) == (
        f"SIGTERM stopped the run while it wrote its model and overlays: {tmp_path / 'model'} may be missing "
        'and overlays/ incomplete. The last finished epoch, 3, is checkpointed in '
        f"{tmp_path / 'checkpoint' / 'epoch-003'}. "
        f'To go on from there: python main.py --resume {tmp_path} (every epoch is trained: it only exports the model '
        'and paints the overlays).')
    os.remove(tmp_path / 'checkpoint' / 'epoch-003' / 'epoch.json')
    with pytest.raises(RunStopped) as stopped:
        with finishing_run(str(tmp_path), checkpoints, 3, 'python main.py --epochs 3'):
            raise OSError(errno.ENOSPC, 'No space left on device')
    assert stopped.value.exit_status == 1
    assert str(stopped.value).endswith('No epoch had finished, so none is checkpointed. --resume has nothing to go on '
                                       'from: start again with python main.py --epochs 3.')
    with pytest.raises(OSError, match='Permission denied'):  # not a stop, not a full disk: raised as it is
        with finishing_run(str(tmp_path), checkpoints, 3, 'python main.py --epochs 3'):
            raise OSError(errno.EACCES, 'Permission denied')
