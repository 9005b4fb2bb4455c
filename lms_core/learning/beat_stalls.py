"""A worker's rare events, cheap enough to leave on in a timed window (``LMS_BEAT_STALL_LOG``).

Why: at 20,000 learners a failing window's p99 comes from a few slow seconds in which a whole
batch of beats waited together, and most of them had no autovacuum or checkpoint in them
(docs/benchmarks.md). ``LMS_BEAT_TRACE`` (beat_trace.py) notes every beat and costs too much
to leave on in the measured window; this log notes only what is rare, so the slow seconds of
a real window can be named:

- ``gc``: every collection of generation >= 1, and any collection longer than
  :data:`GC_SLOW_SECONDS` (its wall time, generation, objects collected; for a full one,
  whether ``LMS_BEAT_GC_REFREEZE`` froze its survivors and whether it was the hourly thaw; the
  thread it ran in);
- ``loop``: the event loop woke a timer (asked every :data:`LOOP_TICK_SECONDS`) more than
  :data:`LOOP_LATE_SECONDS` late: when it was due and how late;
- ``group``: a writer group whose wall time passed :data:`GROUP_SLOW_SECONDS`: its size, its
  rounds, the writer thread's CPU in it against its wall time;
- ``second``: per second, per worker, what the writer did (beats and groups committed, its CPU
  in them) and the wall time of all collections, so a slow second can be set beside its
  neighbours and one worker beside the other.

Lines are JSON, one file per worker pid (``stalls-<pid>.jsonl``); times are Unix times (the
ingest bench's seconds and PostgreSQL's log are in Unix time too). Events are queued (a deque:
a collection may happen in any thread, while another writes) and written with one ``os.write``
on an ``O_APPEND`` descriptor by the loop's timer (every 10 ms) or the writer at a second's
turn: nothing is buffered in Python, so a killed worker loses at most its last tick.
Off (the default) the beat path pays one ``is None`` test per group.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

#: A young collection longer than this (wall, seconds) is noted too.
GC_SLOW_SECONDS = 0.005
#: The loop timer asks to run this often (seconds)...
LOOP_TICK_SECONDS = 0.010
#: ...and a tick later than this (seconds) is noted.
LOOP_LATE_SECONDS = 0.020
#: A writer group longer than this (wall, seconds) is noted.
GROUP_SLOW_SECONDS = 0.050


class StallLog:
    """One worker's stall log: events queued in memory, appended to its file."""

    def __init__(self, directory: Path, *, refreeze: bool = False) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.refreeze = refreeze
        #: The loop, the writer thread and the collector append; the drain takes (atomic in CPython).
        self.pending: deque[dict[str, Any]] = deque()
        self._drain_lock = threading.Lock()  # never taken by the gc callback (it only appends)
        self._fd = -1
        self._fd_pid = 0
        self._gc_start = 0.0
        self._gc_thaw = 0.0
        # The writer's counts for the current second (only the writer thread touches them,
        # but ``gc_s``, which any collecting thread adds to).
        self._second = 0
        self._beats = 0
        self._groups = 0
        self._cpu = 0.0
        self._gc_s = 0.0
        self._gc_n = 0
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0

    # --- start and stop ----------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Note collections (after ``tune_gc``: this callback then runs after ``_refreeze``) and,
        given the worker's loop, start the loop timer (call on the loop)."""
        if self._gc not in gc.callbacks:
            gc.callbacks.append(self._gc)
        if loop is not None and self._timer is None:
            self._due = loop.time() + LOOP_TICK_SECONDS
            self._timer = loop.call_at(self._due, self._tick, loop)

    def close(self) -> None:
        """Stop the timer and the gc notes, write what is left (the worker's shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._gc)
        self.drain()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # --- on the event loop -------------------------------------------------------------
    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        late = now - self._due
        if late > LOOP_LATE_SECONDS:
            self.pending.append({"kind": "loop", "t": round(time.time() - late, 4), "late_ms": round(late * 1000, 1)})
        if self.pending:
            self.drain()
        self._due = now + LOOP_TICK_SECONDS
        self._timer = loop.call_at(self._due, self._tick, loop)

    # --- on the writer thread ----------------------------------------------------------
    def group_done(self, beats: int, started: float, cpu_started: float, rounds: Any = None) -> None:
        """A group ended (``started``: its ``perf_counter``, ``cpu_started``: the writer thread's
        ``thread_time`` when it was taken; ``rounds``: a callable giving its rounds, asked only
        when the group was slow)."""
        wall = time.perf_counter() - started
        cpu = time.thread_time() - cpu_started
        now = time.time()
        second = int(now)
        if second != self._second:
            self._turn(second)
        self._beats += beats
        self._groups += 1
        self._cpu += cpu
        if wall > GROUP_SLOW_SECONDS:
            event = {
                "kind": "group",
                "t": round(now - wall, 4),
                "ms": round(wall * 1000, 1),
                "cpu_ms": round(cpu * 1000, 1),
                "beats": beats,
            }
            if rounds is not None:
                event["rounds"] = rounds()
            self.pending.append(event)

    def _turn(self, second: int) -> None:
        """The second changed: note the one that ended (if the writer did anything in it)."""
        if self._groups:
            self.pending.append(
                {
                    "kind": "second",
                    "t": self._second,
                    "beats": self._beats,
                    "groups": self._groups,
                    "writer_cpu_ms": round(self._cpu * 1000, 1),
                    "gc_ms": round(self._gc_s * 1000, 1),
                    "gcs": self._gc_n,
                }
            )
            self.drain()
        self._second, self._beats, self._groups, self._cpu, self._gc_s, self._gc_n = second, 0, 0, 0.0, 0.0, 0

    # --- anywhere ----------------------------------------------------------------------
    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
            if info.get("generation") == 2:
                self._gc_thaw = _last_thaw()
            return
        wall = time.perf_counter() - self._gc_start
        self._gc_s += wall
        self._gc_n += 1
        generation = info.get("generation")
        if generation or wall > GC_SLOW_SECONDS:
            event = {
                "kind": "gc",
                "t": round(time.time() - wall, 4),
                "ms": round(wall * 1000, 2),
                "gen": generation,
                "collected": info.get("collected"),
                # Which thread's allocations set it off (the writer, the loop, a2wsgi's): it ran there.
                "thread": threading.current_thread().name,
            }
            if generation == 2:
                event["refrozen"] = self.refreeze
                event["thawed"] = _last_thaw() != self._gc_thaw
            self.pending.append(event)

    def drain(self) -> None:
        """Append the queued events to this process's file (one ``os.write``)."""
        with self._drain_lock:
            if not self.pending:
                return
            events = [self.pending.popleft() for _ in range(len(self.pending))]
            pid = os.getpid()
            if self._fd < 0 or self._fd_pid != pid:  # (a forked worker writes its own file)
                self._fd = os.open(
                    self.directory / f"stalls-{pid}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
                )
                self._fd_pid = pid
            os.write(self._fd, "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events).encode())


def _last_thaw() -> float:
    """``beat_asgi``'s last thaw (its hourly full walk), if that module is loaded."""
    module = sys.modules.get("lms_core.learning.beat_asgi")
    return float(getattr(module, "_last_thaw", 0.0))


def stall_log_for(config: Any) -> StallLog | None:
    """The worker's stall log if ``LMS_BEAT_STALL_LOG`` names a directory, else ``None``."""
    directory = str(config.get("LMS_BEAT_STALL_LOG") or "")
    if not directory:
        return None
    return StallLog(Path(directory), refreeze=bool(config.get("LMS_BEAT_GC_REFREEZE")))
