"""The workers' watch on each other: a lost worker is noticed in seconds, and a stop is not kept waiting on one.

TensorFlow's collectives in graph mode wait for a worker that is gone until the session's time limit. So every
worker of a run on several machines runs a Heartbeat while it trains: a thread that asks every other worker's
server for a trivial op every PROBE_INTERVAL_S seconds, through a session of its own. A worker that is only busy
(the chief validating, a slow step) still answers, as its server's threads do; a worker that is gone fails the
probe at once, or after PROBE_TIMEOUT_S when its machine is unreachable. After LOST_AFTER_S without an answer it
is lost: the training loop, at its next stop test, stops with WorkerLost, keeping what it has; when the main
thread is blocked in a step or a vote that waits for the lost worker, which would never end, the process stops
there with the message. A Ctrl-C or SIGTERM that arrives while the main thread is blocked so for longer than its
grace (Heartbeat.stop_grace_s) stops the process too (signal.set_wakeup_fd lets this thread see the signal before
Python can run its handler).
"""
import collections
import os
import signal
import socket
import statistics
import sys
import threading
import time

from fcn8s.tf1 import tf

PROBE_INTERVAL_S = 1.0  # between two rounds of probes
PROBE_TIMEOUT_S = 5.0  # the time limit of one probe
LOST_AFTER_S = 15.0  # without an answer for this long, a worker is lost
STOP_GRACE_S = 5.0  # at least this long a blocked step or vote may take after a stop request (stop_grace_s)
STEPS_KEPT = 50  # the last step times whose median sets the grace
# The functions whose sess.run waits for the other workers: main.train_nn's step and Replicas.summed's vote.
COLLECTIVE_CALLERS = ('train_nn', 'summed')
LOST_ADVICE = ('The chief keeps the weights of the last finished epoch in its run folder. Find out why in the output '
               'of the worker that stopped, then run `python main.py --resume RUN_DIR` on every worker.')


def waits_for_workers(thread):
    """Whether thread is inside a sess.run called by one of COLLECTIVE_CALLERS: the innermost frame on its stack
    outside TensorFlow's package, the one that called into TensorFlow, is one of them."""
    frame = sys._current_frames().get(thread.ident)
    tensorflow_folder = os.path.dirname(sys.modules['tensorflow'].__file__)
    reached_tensorflow = False
    while frame is not None and frame.f_code.co_filename.startswith(tensorflow_folder):
        frame, reached_tensorflow = frame.f_back, True
    return reached_tensorflow and frame is not None and frame.f_code.co_name in COLLECTIVE_CALLERS


class Heartbeat:
    """The watch of one worker on the others (task_devices {task name: its CPU device}), through server_target.

    lost: (task name, TensorFlow's error name) of the first worker found lost, else None. start() it once every
    worker has joined, from the main thread, which then calls tick() before each step and vote.
    """

    def __init__(self, server_target, task_devices):
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.value = tf.placeholder(tf.int32, [])
            self.probes = {}
            for task, device in task_devices.items():
                with tf.device(device):
                    self.probes[task] = tf.identity(self.value)
        self.session = tf.Session(server_target, graph=self.graph)
        self.lost = None
        self.last_answer = {}
        self.ticked = False
        self.last_tick, self.step_times = time.monotonic(), collections.deque(maxlen=STEPS_KEPT)
        self.main_thread = threading.main_thread()
        self.signal_reader = self.signal_writer = None

    def start(self):
        """Start the watching thread; from the main thread, signals are seen through a wakeup socket too."""
        self.last_answer = {task: time.monotonic() for task in self.probes}
        if threading.current_thread() is self.main_thread:
            self.signal_reader, signal_writer = socket.socketpair()
            for end in (self.signal_reader, signal_writer):
                end.setblocking(False)
            signal.set_wakeup_fd(signal_writer.fileno(), warn_on_full_buffer=False)
            self.signal_writer = signal_writer  # kept open as long as the process lives
        threading.Thread(target=self.watch, name='heartbeat', daemon=True).start()
        return self

    def tick(self):
        """The main thread is between two steps or votes: it makes progress. The time since the last tick is a step's
        (the first tick's, a graph's building, is not)."""
        now = time.monotonic()
        if self.ticked:
            self.step_times.append(now - self.last_tick)
        self.last_tick, self.ticked = now, True

    def stop_grace_s(self):
        """How long a blocked step or vote may go on after a stop request: STOP_GRACE_S, or 3 typical steps (the
        median of the last STEPS_KEPT; an epoch's end with its validation is a rare long one)."""
        return max(STOP_GRACE_S, 3 * statistics.median(self.step_times) if self.step_times else 0.0)

    def probe(self):
        """One round: ask every other worker's server; a worker silent for LOST_AFTER_S becomes self.lost."""
        options = tf.RunOptions(timeout_in_ms=int(PROBE_TIMEOUT_S * 1000))
        for task, probe in self.probes.items():
            try:
                self.session.run(probe, {self.value: 1}, options=options)
                self.last_answer[task] = time.monotonic()
            except tf.errors.OpError as error:
                if self.lost is None and time.monotonic() - self.last_answer[task] > LOST_AFTER_S:
                    self.lost = (task, type(error).__name__)

    def signal_arrived(self):
        """The number of a signal delivered since the last call (a byte on the wakeup socket), else None."""
        try:
            received = self.signal_reader.recv(64) if self.signal_reader is not None else b''
        except BlockingIOError:
            received = b''
        return received[0] if received else None

    def watch(self):
        """The thread: probe, and end the process when the main thread is blocked in a step or a vote with a lost
        worker, or for longer than its grace after a stop request."""
        stop_signal = None  # the number of the first signal
        while True:
            time.sleep(PROBE_INTERVAL_S)
            self.probe()
            stop_signal = stop_signal or self.signal_arrived()
            stalled_s = time.monotonic() - self.last_tick
            blocked = waits_for_workers(self.main_thread)
            if self.lost is not None and blocked and stalled_s > PROBE_INTERVAL_S:
                exit_now(f'error: {self.describe_lost()}, while this worker waited for it in a step or a vote. '
                         f'{LOST_ADVICE}', 1)
            if stop_signal and blocked and stalled_s > self.stop_grace_s():
                exit_now(f'{signal.Signals(stop_signal).name} stopped this worker while it waited {stalled_s:.0f} s '
                         f'for the others in a step or a vote. {LOST_ADVICE}', 128 + stop_signal)

    def describe_lost(self):
        """'worker 1 of this run stopped answering for 15 s (UnavailableError)' of self.lost."""
        task, problem = self.lost
        return f'{task} of this run stopped answering for {LOST_AFTER_S:g} s ({problem})'


def exit_now(message, status):
    """Print message and end the process with status at once: its main thread is blocked for good."""
    print(f'\n{message}', file=sys.stderr, flush=True)  # below a progress bar the main thread left unfinished
    os._exit(status)
