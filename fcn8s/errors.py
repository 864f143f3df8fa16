"""The exceptions whose messages tell a user what went wrong and what to do.

Every one of them is a ProjectError: main.py and the command modules turn these, and only these, into
'error: <message>' and exit status 1 (commands.exits_on_error). Any other exception is a bug and shows its traceback.
Each also subclasses the built-in type it refines (DataError is a ValueError), so library callers can catch either.
"""


class ProjectError(Exception):
    """An error whose message says what went wrong, where, and what to do: a user's data, settings or disk."""


class DataUnavailableError(ProjectError, RuntimeError):
    """A dataset or model is missing and could not be fetched; the message says what to do."""


class DataError(ProjectError, ValueError):
    """Data that cannot be used as it is: the message names each bad file, what is wrong and what to do."""


class TrainingDiverged(ProjectError, FloatingPointError):
    """The loss became NaN, infinite or far larger than before, or a weight NaN or infinite; the message says where."""


class DiskFull(ProjectError, OSError):
    """A file could not be written because its disk is full; the message names the folder."""


class UnwritableOutput(ProjectError, OSError):
    """An output folder or file cannot be written (a file in the way, read-only, a full disk); the message says
    which, why and what to do."""


class SettingError(ProjectError, ValueError):
    """A setting, argument or path given that cannot be used (a bad value, a missing file or folder, a run folder
    without what the command needs); the message names it and says what to give instead."""


class ModelError(ProjectError, ValueError):
    """A model that cannot be used as it is (a VGG16 folder, a SavedModel or a .tflite file that is damaged, of
    another version or of another dataset); the message names it and says how to make a good one."""


class RunStopped(ProjectError):
    """A run stopped before its end (Ctrl-C or SIGTERM, a lost worker, a full disk while it wrote its last files),
    what it kept saved. The process prints 'error: <message>' if there is one and exits with exit_status: 1, or 128 +
    the number of the signal that asked for the stop (commands.exits_on_error)."""

    def __init__(self, message='', exit_status=1):
        super().__init__(message)
        self.exit_status = exit_status


class TrainingInterrupted(Exception):
    """Training was asked to stop (StopSignal) in `epoch`, after its first `steps_done` steps (0: none of them)."""

    def __init__(self, epoch, steps_done):
        super().__init__(f'stopped in epoch {epoch} after {steps_done} steps')
        self.epoch, self.steps_done = epoch, steps_done


WORKER_LOST_MEANINGS = {  # TensorFlow's error when another worker stops answering -> what it means, for a person
    'UnavailableError': ': its server is gone',
    'DeadlineExceededError': ': no answer within --worker-timeout seconds. A worker that was only slower, such as a '
                             'chief validating or checkpointing for longer than that, needs a larger --worker-timeout',
}


class WorkerLost(TrainingInterrupted):
    """Another worker of a run on several machines stopped answering in `epoch`, after `steps_done` steps; the step
    it was in was not applied. `problem` names TensorFlow's error, which the message explains (WORKER_LOST_MEANINGS)."""

    def __init__(self, epoch, steps_done, problem):
        super().__init__(epoch, steps_done)
        self.problem = problem
        meaning = WORKER_LOST_MEANINGS.get(problem, '')
        self.args = (f'a worker of this run was lost in epoch {epoch} after step {steps_done} ({problem}{meaning}). '
                     'Find out why in its output, then --resume the run on every worker',)
