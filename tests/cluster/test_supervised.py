"""A crashing loop comes back, and says it crashed."""

from __future__ import annotations

import threading

from cluster.supervised import SupervisedThread


def test_a_loop_that_crashes_is_restarted_and_reported() -> None:
    stopping, second_run = threading.Event(), threading.Event()
    runs: list[int] = []

    def loop() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise KeyError("not a WekadocsError")
        second_run.set()
        stopping.wait()

    supervised = SupervisedThread("t", loop, stopping, backoff_base_s=0.01)
    assert second_run.wait(10), "the loop was not restarted after its crash"
    assert supervised.snapshot() == {"loop": "running", "restarts": 1, "last_crash": "KeyError: 'not a WekadocsError'"}
    stopping.set()
    supervised.thread.join(10)
    assert not supervised.thread.is_alive() and supervised.state == "stopped"


def test_a_crash_loop_shows_restarting_and_a_thread_that_ends_unstopped_is_dead() -> None:
    stopping = threading.Event()

    def crashes() -> None:
        raise ValueError("embedded null byte")

    supervised = SupervisedThread("t", crashes, stopping, backoff_base_s=60)
    for _ in range(1000):  # bounded: the first crash comes at once, then a 60 s backoff
        if supervised.state == "restarting":
            break
        stopping.wait(0.01)
    assert supervised.snapshot() == {"loop": "restarting", "restarts": 0, "last_crash": "ValueError: embedded null byte"}
    stopping.set()
    supervised.thread.join(10)

    def returns_early() -> None:
        """A loop may return only once stopped; one that ends otherwise is dead."""

    gone = SupervisedThread("t", returns_early, threading.Event())
    gone.thread.join(10)
    assert gone.state == "dead"
