"""Tests of fcn8s/checkpoints.py: epoch checkpoints are kept whole, the last and the best."""
import os

import pytest

from fcn8s.checkpoints import EpochCheckpoints
from fcn8s.errors import TrainingDiverged
from fcn8s.tf1 import tf


def test_epoch_checkpoints_keep_the_last_and_the_best_and_appear_whole(tmp_path, monkeypatch):
    folder = str(tmp_path / 'checkpoint')
    weight = tf.get_variable('weight', initializer=0.0)
    with tf.Session() as sess:
        sess.run(weight.initializer)
        checkpoints = EpochCheckpoints(folder, [weight], keep=2)
        for epoch, val_maxf in enumerate([0.5, 0.9, None, 0.7, 0.6], start=1):
            weight.load(float(epoch), sess)
            checkpoints.save(sess, epoch, val_maxf)
        assert sorted(os.listdir(folder)) == ['checkpoint', 'epoch-002', 'epoch-004', 'epoch-005']
        assert tf.train.latest_checkpoint(folder) == os.path.join(folder, 'epoch-005', 'model')

        def save_half_then_die(sess, save_path, write_state):
            os.makedirs(os.path.dirname(save_path))
            open(save_path + '.index', 'w').close()
            raise OSError('No space left on device')

        monkeypatch.setattr(checkpoints.saver, 'save', save_half_then_die)
        with pytest.raises(OSError):
            checkpoints.save(sess, 6)
        monkeypatch.undo()
        weight.load(float('nan'), sess)
        with pytest.raises(TrainingDiverged, match='epoch 7'):
            checkpoints.save(sess, 7)
        assert sorted(os.listdir(folder)) == ['.partial-epoch-006', 'checkpoint', 'epoch-002', 'epoch-004', 'epoch-005']
        reopened = EpochCheckpoints(folder, [weight], keep=2)
        assert sorted(os.listdir(folder)) == ['checkpoint', 'epoch-002', 'epoch-004', 'epoch-005']
        assert reopened.restore_last(sess) == 5 and sess.run(weight) == 5.0
