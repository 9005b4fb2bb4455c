"""The group writer's grouping (learning/beat_batch.py, ``BeatWriter``): what one group takes.

No database and no timing: ``record_group`` is replaced by one that notes each group's size
(and holds the first until the test has queued the rest), so the groups are fixed by what
waits in the queue, not by when the thread runs.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest

from lms_core.learning import beat_batch


def _writer(app: Any, monkeypatch: pytest.MonkeyPatch, max_beats: int) -> tuple[Any, list[int], threading.Event]:
    sizes: list[int] = []
    gate = threading.Event()

    def record(_app: Any, group: list[Any]) -> None:
        sizes.append(len(group))
        if len(sizes) == 1:
            gate.wait(30)  # the first group is recording while the others queue up
        for req in group:
            req.future.set_result(None)

    monkeypatch.setattr(beat_batch, "record_group", record)
    return beat_batch.BeatWriter(app, max_beats, 1), sizes, gate


def _requests(n: int) -> list[Any]:
    return [beat_batch._Request(None, Future()) for _ in range(n)]  # type: ignore[arg-type]


def _run(writer: Any, sizes: list[int], gate: threading.Event, waiting: int) -> None:
    reqs = _requests(1 + waiting)
    try:
        writer.queue.put(reqs[0])
        while not sizes:  # the first beat alone is taken at once: a group never waits for more
            time.sleep(0.005)
        for req in reqs[1:]:
            writer.queue.put(req)
        gate.set()
        for req in reqs:
            assert req.future.result(timeout=30) is None
    finally:
        gate.set()
        for _thread in writer.threads:
            writer.queue.put(beat_batch._STOP)
        for thread in writer.threads:
            thread.join(timeout=30)


def test_a_group_takes_every_beat_waiting_up_to_the_bound(app, monkeypatch):
    writer, sizes, gate = _writer(app, monkeypatch, 256)
    _run(writer, sizes, gate, 300)
    # 300 beats queued behind a recording group: the next group takes 256 of them, then the rest.
    assert sizes == [1, 256, 44]


def test_the_bound_cuts_a_backlog_into_groups_of_at_most_that_many(app, monkeypatch):
    writer, sizes, gate = _writer(app, monkeypatch, 64)
    _run(writer, sizes, gate, 150)
    assert sizes == [1, 64, 64, 22]


def test_a_writer_whose_thread_ended_is_replaced_by_the_next_beat(app, monkeypatch):
    """``BeatWriter.alive`` (read on every beat, without a system call): false once a thread of
    it has ended, so the next beat starts a new writer rather than queue for nobody."""
    monkeypatch.setattr(beat_batch, "record_group", lambda _app, group: [r.future.set_result(None) for r in group])
    first = beat_batch.submit(app, None)  # type: ignore[arg-type]
    assert first.result(timeout=30) is None
    writer = app.extensions["lms.beat_writer"]
    assert writer.alive
    writer.queue.put(beat_batch._STOP)  # its thread ends (an error out of its loop would as well)
    writer.threads[0].join(timeout=30)
    assert not writer.alive
    second = beat_batch.submit(app, None)  # type: ignore[arg-type]
    assert second.result(timeout=30) is None
    assert app.extensions["lms.beat_writer"] is not writer
    beat_batch.stop(app)


def test_a_writer_of_the_parent_process_is_not_alive_in_a_forked_child(app, monkeypatch):
    """The process id ``alive`` compares is kept by ``os.register_at_fork``: a forked worker
    starts writers of its own (the parent's threads do not exist in it)."""
    monkeypatch.setattr(beat_batch, "record_group", lambda _app, group: [r.future.set_result(None) for r in group])
    assert beat_batch.submit(app, None).result(timeout=30) is None  # type: ignore[arg-type]
    writer = app.extensions["lms.beat_writer"]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, and leave at once
        os.write(write, b"1" if not writer.alive else b"0")
        os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1", "the parent's writer looked alive in the child"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert writer.alive
    beat_batch.stop(app)


def _lingering_writer(
    app: Any, monkeypatch: pytest.MonkeyPatch, linger_us: int, enough: int, queued: list[Any], arriving: int
) -> tuple[Any, list[int], list[float]]:
    """A writer that finds ``queued`` waiting when its thread starts, whose wait for more beats
    (``LMS_BEAT_GROUP_LINGER_US``) is noted, and during which ``arriving`` beats are queued
    (as beats arriving while it waits would be)."""
    sizes: list[int] = []
    waits: list[float] = []
    monkeypatch.setitem(app.config, "LMS_BEAT_GROUP_LINGER_US", linger_us)
    monkeypatch.setitem(app.config, "LMS_BEAT_GROUP_ENOUGH", enough)
    waiting: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for req in queued:
        waiting.put(req)

    def record(_app: Any, group: list[Any]) -> None:
        sizes.append(len(group))
        for req in group:
            req.future.set_result(None)

    def wait(seconds: float) -> None:
        waits.append(seconds)
        for req in _requests(arriving):
            waiting.put(req)

    monkeypatch.setattr(beat_batch, "record_group", record)
    monkeypatch.setattr(beat_batch, "linger_sleep", wait)
    monkeypatch.setattr(beat_batch.queue, "SimpleQueue", lambda: waiting)
    return beat_batch.BeatWriter(app, 256, 1), sizes, waits


def _finish(writer: Any, reqs: list[Any]) -> None:
    for req in reqs:
        assert req.future.result(timeout=30) is None
    for _thread in writer.threads:
        writer.queue.put(beat_batch._STOP)
    for thread in writer.threads:
        thread.join(timeout=30)


@pytest.mark.parametrize(
    ("linger_us", "enough", "waiting", "waits", "sizes"),
    [
        # 2 waiting beats (fewer than 16) wait 4 ms once; the 3 that come meanwhile join them.
        (4_000, 16, 2, [0.004], [5]),
        # 5 waiting beats are enough (5): no wait.
        (4_000, 5, 5, [], [5]),
        # The wait off: a lone beat goes at once.
        (0, 16, 1, [], [1]),
    ],
    ids=["small-group-waits-once", "enough-beats-do-not-wait", "off"],
)
def test_a_group_waits_for_arrivals_only_when_small_and_on(app, monkeypatch, linger_us, enough, waiting, waits, sizes):
    reqs = _requests(waiting)
    writer, seen_sizes, seen_waits = _lingering_writer(app, monkeypatch, linger_us, enough, reqs, arriving=3)
    _finish(writer, reqs)
    assert seen_waits == waits
    assert seen_sizes == sizes


def test_a_stop_met_while_taking_the_waiting_beats_is_not_waited_for(app, monkeypatch):
    reqs = _requests(2)
    writer, sizes, waits = _lingering_writer(app, monkeypatch, 4_000, 16, [*reqs, beat_batch._STOP], arriving=3)
    for req in reqs:
        assert req.future.result(timeout=30) is None
    for thread in writer.threads:
        thread.join(timeout=30)
    # The stop ends the group at once (no wait) and then the thread.
    assert waits == []
    assert sizes == [2]
    assert not writer.alive
