"""Group commit for heartbeats: the beats that arrive together share one transaction.

A beat the ASGI front took (``beat_asgi``) is handed to :func:`submit`, which returns a
future. A writer thread of the process (``LMS_BEAT_WRITERS`` of them) takes the first
waiting beat and every beat waiting behind it (up to ``LMS_BEAT_GROUP_MAX``); if that makes
fewer than ``LMS_BEAT_GROUP_ENOUGH``, it waits ``LMS_BEAT_GROUP_LINGER_US`` once and takes
what arrived meanwhile too (a round's fixed cost is then shared by more beats), and records
them with :func:`beat_front.record` in **one** transaction and commits once; only then is
each future answered, so every acknowledged beat is durable (``synchronous_commit`` is on)
and a group costs one WAL flush instead of one per beat.

Order and locks: a group records its beats in person-id order (a person's own beats in the
order they arrived, so the second sees the first), and a beat locks only its person's rows
(session, progress, clock, the anti-idle state row). Two groups (of two workers, or two
writer threads) therefore take their locks in the same order and cannot deadlock, whatever they hold.

A beat that must not be answered here (refused, late, ``BeatError``, a sign-in to judge) or
that raises: the group is rolled back and recorded again without it, and that beat's future
answers ``None``, so the front hands it to the Flask view, which does it alone and answers
(a refused beat is stored there, with its answer in the learner's language). So one bad
beat cannot lose or taint the others. If the COMMIT itself fails, nothing of the group was
written and every beat of it goes to the view.

Pattern of ``plugins/credit_bank/group_commit.py`` (the transfer API's group commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

from flask import Flask

from lms_core.accounts import principal
from lms_core.extensions import db
from lms_core.learning import beat_front, beat_group, beat_rows, beat_stalls, beat_trace, beat_tx, services
from lms_core.pluginhost.manager import get_plugin_manager
from lms_core.unit_of_work import bare_transaction

#: An answer for the ASGI server: (status, headers, body).
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
_STOP = object()
_lock = threading.Lock()
#: This process's id, kept by ``os.register_at_fork`` rather than asked of the kernel on every
#: beat (``os.getpid`` is a system call: one per beat, ~1 µs on this VM, in the event loop).
_process = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _process.__setitem__(0, os.getpid()))


class _Settled:
    """The outcome of a beat awaited on an event loop (:func:`wait`): the writer settles it, and
    ``_settle`` reads it on the loop after the group's one ``call_soon_threadsafe``.

    Nobody blocks on it (the loop awaits its own future), so it needs none of a
    ``concurrent.futures.Future``'s condition and lock: 0.28 µs a beat for creating, settling
    and reading it, against 3.64 µs (process time). Settled once, as a ``Future`` is."""

    __slots__ = ("_done", "_exception", "_result")

    def __init__(self) -> None:
        self._done = False
        self._result: Answer | None = None
        self._exception: BaseException | None = None

    def done(self) -> bool:
        return self._done

    def set_result(self, result: Answer | None) -> None:
        if self._done:
            raise InvalidStateError("already settled")
        self._result, self._done = result, True

    def set_exception(self, exception: BaseException) -> None:
        if self._done:
            raise InvalidStateError("already settled")
        self._exception, self._done = exception, True

    def exception(self) -> BaseException | None:
        return self._exception

    def result(self) -> Answer | None:
        if self._exception is not None:
            raise self._exception
        return self._result


@dataclass
class _Request:
    beat: beat_front.Beat
    #: Settled by the writer after the group: a ``Future`` (:func:`submit`, blocking callers),
    #: or for a beat awaited on an event loop (:func:`wait`) a :class:`_Settled`.
    future: Future[Answer | None] | _Settled
    #: The event loop awaiting the beat (:func:`wait`) and its future there: the writer
    #: answers a group's beats of one loop with one call into it, after the group.
    loop: asyncio.AbstractEventLoop | None = None
    waiter: asyncio.Future[Answer | None] | None = None
    #: Its times along the path when ``LMS_BEAT_TRACE`` is on (``beat_trace``).
    marks: beat_trace.Marks | None = None
    #: Instead of ``waiter``: called on the loop with the beat's answer (``None``: the view
    #: answers it, as for an error), by the group's one call into the loop (:func:`then`).
    then: Callable[[Answer | None], None] | None = None


def answer_parts(app: Flask, result: Any) -> Answer:
    """The view's answer for an accepted beat (``beat_front.answer_parts``), as ASGI wants it."""
    return beat_front.answer_asgi(app, result)


def record_group(app: Flask, requests: list[_Request]) -> None:
    """Record the beats in one transaction (person-id order), answer each future after the COMMIT;
    a beat that is refused or raises is taken out (its future: ``None``) and the rest redone."""
    pending = sorted(requests, key=lambda r: r.beat.user_id)  # stable: a person's beats keep their order
    handed: list[_Request] = []  # answered after the group, so the view never waits on its locks
    try:
        with beat_tx.pinned():
            _record(app, pending, handed)
    finally:
        for req in handed:
            req.future.set_result(None)


def _record(app: Flask, pending: list[_Request], handed: list[_Request]) -> None:
    batched = beat_rows.is_pg()
    while pending:
        current: int | None = None
        results: list[Any] = [None] * len(pending)
        try:
            with bare_transaction((*beat_front.refusals(), beat_group.HandOff)) as refused:
                for round_ in _rounds(pending) if batched else [list(range(len(pending)))]:
                    info = beat_tx.connection().info if batched else None
                    try:
                        if info is not None:
                            try:
                                _read_round(pending, round_, beat_group.begin(info))
                            except Exception as exc:
                                raise beat_group.RoundFailed from exc
                        for current in round_:  # noqa: B007 - read after the loop
                            results[current] = beat_front.record(pending[current].beat)
                        current = None  # the round's write (then the COMMIT, when the block ends)
                        if info is not None:
                            batch = beat_group.current(info)
                            assert batch is not None
                            batch.flush()
                    finally:
                        if info is not None:
                            beat_group.end(info)
        except Exception as exc:  # noqa: BLE001 - a beat raised (rolled back) or a round's read/write or the COMMIT failed
            db.session.rollback()
            if isinstance(exc, beat_group.RoundFailed) or current is None:
                if batched:
                    # A round's read or write failed (a deadlock with a person's first beat,
                    # say): nothing is written; the group again, one beat after another,
                    # which also finds the beat to blame if one is.
                    batched = False
                    continue
                handed.extend(pending)  # the COMMIT: nothing of the group is written; each beat to the view
                return
            _hand(pending, current, handed)
            continue
        if refused:
            assert current is not None
            _hand(pending, current, handed)
            continue
        for req, result in zip(pending, results, strict=True):
            req.future.set_result(answer_parts(app, result))
        return


def _hand(pending: list[_Request], current: int, handed: list[_Request]) -> None:
    """Take the beat at ``current`` out of the group for the view, with the person's later
    beats in it: recorded here, they would come before it."""
    user_id = pending[current].beat.user_id
    later = [i for i in range(current, len(pending)) if pending[i].beat.user_id == user_id]
    for i in reversed(later):
        handed.append(pending.pop(i))
    handed[len(handed) - len(later) :] = reversed(handed[len(handed) - len(later) :])  # in arrival order


def _rounds(pending: list[_Request]) -> list[list[int]]:
    """The group's beats (indexes into ``pending``, person-id order) as rounds of distinct
    people: a person's first beat in the first round, their second in the second, and so
    on; so a person's beats are recorded in the order they arrived, each seeing the one before."""
    rounds: list[list[int]] = []
    seen: dict[int, int] = {}
    for i, req in enumerate(pending):
        n = seen[req.beat.user_id] = seen.get(req.beat.user_id, -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(i)
    return rounds


def _group_rounds(group: list[_Request]) -> int:
    """How many rounds the group made (asked by the stall log of a slow group only)."""
    return len(_rounds(sorted(group, key=lambda r: r.beat.user_id)))


def _read_round(pending: list[_Request], round_: list[int], batch: beat_group.Batch) -> None:
    """The round's rows, locked: the core's in one statement, then each plugin's
    (``lms_beat_group_read``), both in person-id order."""
    states = beat_rows.prefetch(batch, [(pending[i].beat.session_id, pending[i].beat.user_id) for i in round_])
    beats = [(st.user_id, st.course_id, st.kind) for st in states.values()]
    if beats:
        get_plugin_manager().hook.lms_beat_group_read(batch=batch, beats=sorted(beats))
        # The completions the round may make, read ahead: two statements, not two a completion.
        services.completion_group_read(batch, states.values())
    # The round's sign-ins whose cached principal expired (at the player's 10 s cadence,
    # nearly all of them), in one read rather than one per beat.
    principal.warm([pending[i].beat.user_id for i in round_], beat_rows.users)


#: The writer's wait for more beats (``LMS_BEAT_GROUP_LINGER_US``): one sleep, so one wake-up,
#: rather than a wake-up per arriving beat; the GIL is free meanwhile. A module attribute so a
#: test can stand in for the time passing.
linger_sleep = time.sleep


class BeatWriter:
    """The writer threads of one process (created lazily, again after a fork).

    ``LMS_BEAT_WRITERS`` threads take groups from one queue (one by default: with more,
    each waiting for the database while another records, groups were smaller and p99 had
    multi-second tails on the 2-core machine). Their groups lock people in id order too,
    so they cannot deadlock each other.
    """

    def __init__(self, app: Flask, max_beats: int, writers: int) -> None:
        self.app = app
        self.max_beats = max_beats
        config = app.config
        #: ``LMS_BEAT_GROUP_LINGER_US`` in seconds (0: off): how long a group smaller than
        #: ``LMS_BEAT_GROUP_ENOUGH`` waits for the beats about to arrive before it is recorded.
        self.linger = int(config.get("LMS_BEAT_GROUP_LINGER_US") or 0) / 1_000_000
        self.enough = int(config.get("LMS_BEAT_GROUP_ENOUGH") or 0)
        self.pid = _process[0]
        #: Set when one of the threads ends (``_STOP``, or an error out of its loop): the next
        #: beat starts new writers.
        self.ended = False
        self.trace: beat_trace.Tracer | None = app.extensions.get("lms.beat_trace")
        #: ``LMS_BEAT_STALL_LOG``: slow groups and the writer's seconds (beat_stalls.py); off: ``None``.
        self.stalls: beat_stalls.StallLog | None = app.extensions.get("lms.beat_stalls")
        # SimpleQueue (C): the event loop's put is ~0.1 µs, against ~1.6 µs for ``queue.Queue``'s
        # Python condition (put and get_nowait, one beat).
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.threads = [
            threading.Thread(target=self._run, name=f"beat-group-commit-{i}", daemon=True) for i in range(writers)
        ]
        for thread in self.threads:
            thread.start()

    def _take_waiting(self, group: list[Any]) -> bool:
        """Add the beats waiting in the queue to ``group``, up to the bound; whether a stop
        was met (it is put back for the next thread, after this group)."""
        while len(group) < self.max_beats:
            try:
                nxt = self.queue.get_nowait()
            except queue.Empty:
                return False
            if nxt is _STOP:
                self.queue.put(_STOP)
                return True
            group.append(nxt)
        return False

    @property
    def alive(self) -> bool:
        """The writers are this process's (not a forked parent's) and none has ended: read on
        every beat, so without a system call or a lock (``Thread.is_alive``)."""
        return self.pid == _process[0] and not self.ended

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self.ended = True

    def _loop(self) -> None:
        while True:
            first = self.queue.get()
            if first is _STOP:
                return
            group = [first]
            stopping = self._take_waiting(group)
            if not stopping and self.linger > 0 and len(group) < self.enough:
                # A small group pays a round's fixed cost (its reads, writes, COMMIT and their
                # round trips) over few beats: let the beats about to arrive join it.
                linger_sleep(self.linger)
                self._take_waiting(group)
            trace, stalls = self.trace, self.stalls
            if trace is not None:
                started = time.perf_counter()
                number = trace.group_taken([req.marks for req in group], started)
            if stalls is not None:
                stall_started, stall_cpu = time.perf_counter(), time.thread_time()
            try:
                # A context per group: its own database session and ``g``, as a request has.
                with self.app.app_context():
                    record_group(self.app, group)
            except BaseException as exc:  # noqa: BLE001 - never leave a beat unanswered
                for req in group:
                    if not req.future.done():
                        req.future.set_exception(exc)
            if trace is not None:
                trace.group_done([req.marks for req in group], number, started)
            if stalls is not None:
                stalls.group_done(len(group), stall_started, stall_cpu, lambda g=group: _group_rounds(g))
            _wake(group)


def _wake(group: list[_Request]) -> None:
    """Hand the group's answers to the event loops awaiting them: one call per loop.

    ``asyncio.wrap_future`` on each beat's future made one ``call_soon_threadsafe`` per
    beat (a wake-up of the loop, a callback chain on each side); a group of 13 beats made
    13. Every future of the group is settled by now."""
    loops: dict[asyncio.AbstractEventLoop, list[_Request]] = {}
    for req in group:
        if req.loop is not None:
            loops.setdefault(req.loop, []).append(req)
    for loop, reqs in loops.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits these answers any more
            loop.call_soon_threadsafe(_settle, reqs)


def _settle(reqs: list[_Request]) -> None:
    """On the event loop: each waiter gets its beat's answer (or error), unless it gave up;
    each ``then`` is called with its answer (``None`` for an error)."""
    for req in reqs:
        then = req.then
        if then is not None:
            if req.marks is not None:
                req.marks.settled = time.perf_counter()
            future = req.future
            try:
                then(None if future.exception() is not None else future.result())
            except Exception as error:  # noqa: BLE001 - as a future's callback: reported, the others still answered
                assert req.loop is not None
                req.loop.call_exception_handler({"message": "beat answer callback failed", "exception": error})
            continue
        waiter = req.waiter
        if waiter is None or waiter.done():
            continue
        if req.marks is not None:
            req.marks.settled = time.perf_counter()
        exc = req.future.exception()
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(req.future.result())


def submit(app: Flask, beat: beat_front.Beat) -> Future[Answer | None]:
    """Queue a beat for this process's writer; the future answers after its group's COMMIT
    (``None``: the Flask view must answer it)."""
    future: Future[Answer | None] = Future()
    _enqueue(app, _Request(beat, future))
    return future


async def wait(app: Flask, beat: beat_front.Beat, marks: beat_trace.Marks | None = None) -> Answer | None:
    """:func:`submit` for the event loop: the beat's answer once its group is committed
    (``marks``: its times, when traced)."""
    return await waiter(app, beat, asyncio.get_running_loop(), marks)


def waiter(
    app: Flask, beat: beat_front.Beat, loop: asyncio.AbstractEventLoop, marks: beat_trace.Marks | None = None
) -> asyncio.Future[Answer | None]:
    """Queue a beat from ``loop`` (its thread): the future there answers after its group's
    COMMIT. For callers on the loop that take the answer in a callback, not a task
    (``beat_http``)."""
    req = _Request(beat, _Settled(), loop, loop.create_future(), marks)
    if marks is not None:
        marks.queued = time.perf_counter()
    _enqueue(app, req)
    assert req.waiter is not None
    return req.waiter


def then(
    app: Flask,
    beat: beat_front.Beat,
    loop: asyncio.AbstractEventLoop,
    callback: Callable[[Answer | None], None],
    marks: beat_trace.Marks | None = None,
) -> None:
    """Queue a beat from ``loop`` (its thread); ``callback`` is called there with its answer
    after its group's COMMIT (``None``: the view must answer it, also when the writer failed).

    :func:`waiter` without an asyncio future: no future made and settled per beat, and no
    second pass through the loop's ready queue for its done-callback; the group's one
    ``call_soon_threadsafe`` calls each beat's callback itself (``beat_http``)."""
    req = _Request(beat, _Settled(), loop, None, marks, callback)
    if marks is not None:
        marks.queued = time.perf_counter()
    _enqueue(app, req)


def _enqueue(app: Flask, req: _Request) -> None:
    with _lock:
        writer: BeatWriter | None = app.extensions.get("lms.beat_writer")
        # A writer of the parent process does not exist in a forked worker: start one here.
        if writer is None or not writer.alive:
            config = app.config
            writer = BeatWriter(app, int(config["LMS_BEAT_GROUP_MAX"]), int(config["LMS_BEAT_WRITERS"]))
            app.extensions["lms.beat_writer"] = writer
        writer.queue.put(req)


def stop(app: Flask) -> None:
    """Stop the app's writers (shutdown, tests); queued beats are still recorded first."""
    with _lock:
        writer: BeatWriter | None = app.extensions.pop("lms.beat_writer", None)
        if writer is not None and writer.alive:
            for _thread in writer.threads:
                writer.queue.put(_STOP)
    if writer is not None:
        for thread in writer.threads:
            thread.join(timeout=10)
