"""Where a beat's time goes on the ASGI front: timestamps along its path, off by default.

Why: the p99 of an answered beat (210 ms at 1,000 beats/s, docs/benchmarks.md) is a wait
somewhere between the socket and the answer, not CPU in one function, so a profile does not
show it. With ``LMS_BEAT_TRACE`` set to a directory, each worker notes for every beat the ASGI
front took: received on the event loop, checked, queued for the writer, its group's start,
its COMMIT, its answer handed back to the loop and written; and its group's number and size.
Beats the view answered (handed on) get their received and written times only. The worker
also notes Python's garbage collections (``gc.callbacks``: the generation, start and end,
the CPU time it took)
and the event loop's own lateness (a probe that asks to wake every
:data:`PROBE_SECONDS` and notes when it woke more than :data:`LATE_SECONDS` late).

Every time is ``time.perf_counter()``: CLOCK_MONOTONIC on Linux, the same clock in every
process of the machine, so ``bench/beat_tail.py`` joins these lines with the load generator's
own times per beat (the session in the path and the beat's ``seq``).

Lines are kept in memory and written to ``beat-trace-<pid>.tsv`` in that directory by the
writer thread every :data:`FLUSH_LINES` lines (not on the event loop) and at shutdown. Off,
the path pays one attribute test per beat.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Lines kept before the writer thread appends them to the worker's file.
FLUSH_LINES = 4000
#: The loop probe asks to wake this often (seconds)...
PROBE_SECONDS = 0.005
#: ...and notes a wake-up later than this (seconds) as the loop being late.
LATE_SECONDS = 0.010
_SEQ = re.compile(rb'"seq"\s*:\s*(\d+)')


@dataclass(slots=True)
class Marks:
    """One beat's times (``perf_counter``); 0.0: not reached (a beat handed to the view)."""

    recv: float
    checked: float = 0.0
    queued: float = 0.0
    group_start: float = 0.0
    committed: float = 0.0
    settled: float = 0.0
    group: int = 0
    size: int = 0


@dataclass
class Tracer:
    """One worker's trace: lines in memory, appended to its file by the writer thread."""

    directory: Path
    #: A deque: the loop appends while the writer thread takes (both atomic in CPython).
    lines: deque[str] = field(default_factory=deque)
    groups: int = 0
    _gc_start: float = 0.0
    _gc_cpu: float = 0.0
    #: Each group's writer-thread CPU time at its start (by number), until its end.
    _group_cpu: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _probe: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        gc.callbacks.append(self._gc)

    # --- on the event loop -----------------------------------------------------------
    def beat(self, session_id: str, body: bytes, marks: Marks, sent: float, outcome: str) -> None:
        """Note a beat once its answer is written (``outcome``: ``group`` or ``view``)."""
        if self._probe is None:
            self._probe = asyncio.get_running_loop().create_task(self._watch_loop())
        found = _SEQ.search(body)
        m = marks
        self.lines.append(
            f"beat\t{os.getpid()}\t{session_id}\t{found.group(1).decode() if found else ''}\t{outcome}\t"
            f"{m.recv:.6f}\t{m.checked:.6f}\t{m.queued:.6f}\t{m.group_start:.6f}\t{m.committed:.6f}\t"
            f"{m.settled:.6f}\t{sent:.6f}\t{m.group}\t{m.size}"
        )

    async def _watch_loop(self) -> None:
        """Note each time the loop woke this task much later than asked (it was busy, or the
        process did not hold the GIL or the CPU)."""
        while True:
            asked = time.perf_counter() + PROBE_SECONDS
            await asyncio.sleep(PROBE_SECONDS)
            late = time.perf_counter() - asked
            if late > LATE_SECONDS:
                self.lines.append(f"loop\t{os.getpid()}\t{asked:.6f}\t{late:.6f}")

    # --- on the writer thread --------------------------------------------------------
    def group_taken(self, marks: list[Marks | None], started: float) -> int:
        """Number the writer's group and stamp its beats' start; returns the group's number."""
        self.groups += 1
        self._group_cpu[self.groups] = time.thread_time()  # this writer thread's CPU, read again at the end
        for m in marks:
            if m is not None:
                m.group_start, m.group, m.size = started, self.groups, len(marks)
        return self.groups

    def group_done(self, marks: list[Marks | None], number: int, started: float) -> None:
        """Stamp the group's COMMIT (or its end, for beats it handed to the view)."""
        done, cpu = time.perf_counter(), time.thread_time()
        for m in marks:
            if m is not None:
                m.committed = done
        # The writer's CPU in the group (its own and its collections); the rest of the wall
        # time it waited: for PostgreSQL (statements, the COMMIT's flush), the GIL, or a core.
        cpu -= self._group_cpu.pop(number, cpu)
        self.lines.append(f"group\t{os.getpid()}\t{number}\t{len(marks)}\t{started:.6f}\t{done:.6f}\t{cpu:.6f}")
        if len(self.lines) >= FLUSH_LINES:
            self.flush()

    # --- anywhere --------------------------------------------------------------------
    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        # The collecting thread's CPU time too: on a busy machine the wall time of a collection
        # is mostly waiting for a core, its CPU time is what it costs on a quiet one.
        now, cpu = time.perf_counter(), time.thread_time()
        if phase == "start":
            self._gc_start, self._gc_cpu = now, cpu
        else:
            self.lines.append(
                f"gc\t{os.getpid()}\t{info.get('generation')}\t{self._gc_start:.6f}\t{now:.6f}\t"
                f"{info.get('collected')}\t{cpu - self._gc_cpu:.6f}"
            )

    def flush(self) -> None:
        """Append the kept lines to this process's file."""
        with self._lock:
            lines = [self.lines.popleft() for _ in range(len(self.lines))]
            if lines:
                with (self.directory / f"beat-trace-{os.getpid()}.tsv").open("a", encoding="utf-8") as out:
                    out.write("\n".join(lines) + "\n")

    def close(self) -> None:
        """Stop the probe and the gc notes, write what is left (the worker's shutdown)."""
        if self._probe is not None:
            self._probe.cancel()
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._gc)
        self.flush()


def tracer_for(config: Any) -> Tracer | None:
    """The app's tracer if ``LMS_BEAT_TRACE`` names a directory, else ``None``."""
    directory = str(config.get("LMS_BEAT_TRACE") or "")
    return Tracer(Path(directory)) if directory else None
