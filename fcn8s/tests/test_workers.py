"""Tests of fcn8s/workers.py: a worker other than the chief raises why it stopped, and the command exits with it."""
import signal

import pytest

from fcn8s.commands import exits_on_error
from fcn8s.config import TrainConfig
from fcn8s.distribute import Replicas
from fcn8s.errors import RunStopped, TrainingDiverged, TrainingInterrupted, WorkerLost
from fcn8s.workers import follow_chief


class StartedBatches:
    """A get_batches_fn stand-in that records the epoch its pipeline starts at."""
    first_epoch = None

    def start(self, sess, first_epoch=1):
        self.first_epoch = first_epoch


def stopping_with(stop):
    """train_epochs for follow_chief that raises stop at once."""
    def train_epochs(**_):
        raise stop
    return train_epochs


def follow(train_epochs):
    """follow_chief of a new run on one process (no session needed) with train_epochs."""
    return follow_chief(None, [], TrainConfig(), StartedBatches(), None, Replicas(), train_epochs)


def test_a_workers_stop_is_raised_with_its_message_and_exit_status(capsys):
    with pytest.raises(TrainingDiverged, match=r'^the loss became nan in epoch 2 at step 3; the chief says what it '
                                               r'kept\.$'):
        follow(stopping_with(TrainingDiverged('the loss became nan in epoch 2 at step 3')))
    with pytest.raises(RunStopped) as lost:
        follow(stopping_with(WorkerLost(2, 5, 'UnavailableError')))
    assert lost.value.exit_status == 1 and str(lost.value) == (
        'a worker of this run was lost in epoch 2 after step 5 (UnavailableError: its server is gone). Find out why '
        'in its output, then --resume the run on every worker; the chief keeps the weights of the steps before.')
    with pytest.raises(RunStopped) as stopped:
        follow(stopping_with(TrainingInterrupted(3, 4)))
    assert stopped.value.exit_status == 128 + signal.SIGTERM and str(stopped.value) == ''  # another worker's SIGTERM
    assert capsys.readouterr().out == ('Stopped with the other workers in epoch 3 after step 4; the chief keeps the '
                                       'weights and says how to go on.\n')


def test_a_run_stopped_exits_with_its_status_and_its_message_only_when_it_has_one(capsys):
    with pytest.raises(SystemExit) as exited, exits_on_error():
        raise RunStopped(exit_status=128 + signal.SIGINT)
    assert exited.value.code == 130 and capsys.readouterr().err == ''
    with pytest.raises(SystemExit) as exited, exits_on_error():
        raise RunStopped('SIGTERM stopped the run while it wrote its model', 128 + signal.SIGTERM)
    assert exited.value.code == 143 and capsys.readouterr().err == (
        'error: SIGTERM stopped the run while it wrote its model\n')
    with pytest.raises(SystemExit) as exited, exits_on_error():
        raise RunStopped('a worker of this run was lost')
    assert exited.value.code == 1 and capsys.readouterr().err == 'error: a worker of this run was lost\n'
