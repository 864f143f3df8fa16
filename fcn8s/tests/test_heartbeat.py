"""Tests of fcn8s/heartbeat.py in one process: which waits count as waiting for the other workers, and the stop
grace. The workers' own tests (a worker killed, a chief stopped while it waits) are in test_distribute.py."""
import collections
import threading
import time

from fcn8s import heartbeat
from fcn8s.heartbeat import Heartbeat, waits_for_workers
from fcn8s.tf1 import tf


def blocked_thread(caller_name):
    """(thread, release) of a thread whose function named caller_name is blocked in sess.run on an empty queue."""
    graph = tf.Graph()
    with graph.as_default():
        queue = tf.FIFOQueue(1, tf.float32)
        dequeue, enqueue = queue.dequeue(), queue.enqueue(1.0)
    sess = tf.Session(graph=graph)

    def wait_in_sess_run():
        sess.run(dequeue)

    wait_in_sess_run.__code__ = wait_in_sess_run.__code__.replace(co_name=caller_name)
    thread = threading.Thread(target=wait_in_sess_run)
    thread.start()
    time.sleep(0.5)
    return thread, lambda: (sess.run(enqueue), thread.join(), sess.close())


def test_only_a_step_or_a_vote_blocked_in_tensorflow_waits_for_the_workers():
    for caller_name, waits in (('train_nn', True), ('summed', True), ('validate', False), ('predict_batch', False)):
        thread, release = blocked_thread(caller_name)
        try:
            assert waits_for_workers(thread) is waits, caller_name
        finally:
            release()
    idle = threading.Thread(target=time.sleep, args=(1,))  # in Python, not in TensorFlow
    idle.start()
    assert waits_for_workers(idle) is False
    idle.join()


def test_the_stop_grace_is_three_typical_steps_and_never_under_its_floor():
    watch = Heartbeat.__new__(Heartbeat)  # its clock alone: no server
    watch.ticked, watch.last_tick, watch.step_times = False, time.monotonic(), collections.deque(maxlen=50)
    assert watch.stop_grace_s() == heartbeat.STOP_GRACE_S
    watch.tick()
    assert not watch.step_times  # the time before the first tick is the graph's building: not a step
    watch.tick()
    assert len(watch.step_times) == 1 and watch.stop_grace_s() == heartbeat.STOP_GRACE_S
    watch.step_times.extend([4.0, 4.0, 4.0, 388.0])  # an epoch's end with its validation: a rare long one
    assert watch.stop_grace_s() == 12.0
