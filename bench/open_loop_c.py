"""Issue 8, ingestion: the open-loop generator in C (bench/open_loop_c/gen.c), driven from Python.

The ingest bench's generator shares the machine's two cores with the server it measures, so
its CPU per beat is taken from the server's (bench/open_loop.py's asyncio one: ~0.06 ms a beat,
about 7 % of the machine at 2,000 beats/s). :func:`drive` here is ``open_loop.drive_split``
with the sending and reading done by a small C program (epoll, non-blocking sockets): Python
still draws the schedule (``open_loop.schedule``, the same seeds), builds and signs every beat's
request (``open_loop.Client``), and builds the same :class:`open_loop.Tally` from what the
program wrote back (each beat's answer time and status); the program only connects, sends on
time, queues a beat due while its learner's last is unanswered, and cuts the answers from the
stream by their status line and ``Content-Length``. Latency runs from the scheduled time as in
Python (CLOCK_MONOTONIC is ``time.perf_counter`` on Linux).

The program is compiled at bench time with ``gcc`` into a temporary directory (:func:`build`),
never committed. No seams: a bench whose learners react to the answers (``on_answer``,
``Client.post``, ``Client.replace``: the video learners) stays on the Python generator.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import random
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import open_loop

SOURCE = Path(__file__).resolve().parent / "open_loop_c" / "gen.c"
#: The failure kinds the program writes (a status of 0 and this code), by the name the Python
#: generator counts them under (the exception's).
KINDS = {
    1: "ConnectionRefusedError",
    2: "ConnectionResetError",
    3: "BrokenPipeError",
    4: "TimeoutError",
    5: "OSError",
    6: "IncompleteReadError",
    7: "ValueError",
    8: "ConnectionAbortedError",
}


def build() -> Path | None:
    """The program compiled (once per source version, in the temporary directory); None without gcc."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        return None
    source = SOURCE.read_bytes()
    where = Path(tempfile.gettempdir()) / f"lms-open-loop-c-{os.getuid()}"
    binary = where / f"gen-{hashlib.sha256(source).hexdigest()[:16]}"
    if not binary.exists():
        where.mkdir(mode=0o700, exist_ok=True)
        partial = binary.with_suffix(f".{os.getpid()}")
        subprocess.run([gcc, "-O2", "-o", str(partial), str(SOURCE)], check=True)  # noqa: S603
        partial.replace(binary)
    return binary


def available() -> bool:
    return shutil.which("gcc") is not None or shutil.which("cc") is not None


def _cpu(pid: int) -> tuple[float, float]:
    """A process's user and system CPU seconds (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _input(
    port: int,
    learners: Sequence[open_loop.Learner],
    plan: Sequence[tuple[float, int, int]],
    visible_ms: int,
    span: float,
    drain: float,
    content: open_loop.BeatContent,
) -> bytes:
    """The program's input: each learner's request head, each beat's signed tail, in plan order."""
    clients = [open_loop.Client(i, port, learner, None) for i, learner in enumerate(learners)]  # type: ignore[arg-type]
    parts = [b"OLC1", struct.pack("<3I2d", len(clients), port, len(plan), span, drain)]
    for client in clients:
        parts.append(struct.pack("<2I", int(ipaddress.IPv4Address(client.learner.address)), len(client.head)))
        parts.append(client.head)
    beat = struct.Struct("<d2I")
    for due, i, seq in plan:
        client = clients[i]
        body = client.sign(content(i, seq, visible_ms))
        tail = b"Content-Length: %d\r\n\r\n" % len(body) + body  # after client.head: Client.request's bytes
        parts.append(beat.pack(due, i, len(tail)))
        parts.append(tail)
    return b"".join(parts)


def _results(path: Path) -> tuple[list[tuple[float, bytes]], int, float, dict[int, bytes]]:
    """Each beat's (answer time or -1, status), connections opened, the drain's end, samples."""
    data = path.read_bytes()
    if data[:4] != b"OLR1":
        raise RuntimeError("the C generator wrote no results")
    beats, connections, samples, drain_end = struct.unpack_from("<3Id", data, 4)
    at = 4 + 12 + 8
    out = []
    for answered, status in struct.iter_unpack("<d4s", data[at : at + 12 * beats]):
        out.append((answered, status[:3] if status[0] else KINDS.get(status[1], "OSError").encode()))
    at += 12 * beats
    bodies = {}
    for _ in range(samples):
        beat, length = struct.unpack_from("<2I", data, at)
        bodies[beat] = data[at + 8 : at + 8 + length]
        at += 8 + length
    return out, connections, drain_end, bodies


def drive(
    port: int,
    learners: Sequence[open_loop.Learner],
    rate: float,
    warmup: float,
    duration: float,
    *,
    processes: int = 1,
    first_seq: int = 1,
    on_window: Callable[[bool], None] | None = None,
    jitter: float = 0.1,
    seed: int = 8,
    first_seqs: Sequence[int] | None = None,
    content: open_loop.BeatContent | None = None,
    drain: float = open_loop.DRAIN_SECONDS,
) -> tuple[open_loop.Tally, open_loop.Window, float, tuple[float, float]]:
    """``open_loop.drive_split`` on the C program: ``processes`` of them, each with the learners
    ``k::processes``, the rate's share and the schedule ``open_loop.drive`` draws for them (seed
    ``seed + k``), on one schedule start. Blocking. Returns the merged tally, the window
    (``on_window`` is called here at its start and end), the programs' CPU seconds over the
    window and that CPU as (user, system)."""
    binary = build()
    if binary is None:
        raise RuntimeError("the C generator needs gcc")
    content = content or open_loop._default_content  # noqa: SLF001
    work = Path(tempfile.mkdtemp(prefix="lms-open-loop-c-"))
    procs, plans = [], []
    try:
        for k in range(processes):
            share = list(learners[k::processes])
            interval = len(learners) / rate
            plan = open_loop.schedule(
                len(share),
                interval,
                warmup + duration,
                jitter=jitter,
                first_seq=first_seq,
                rnd=random.Random(seed + k),  # noqa: S311 - a schedule's jitter, as open_loop.drive draws it
                first_seqs=None if first_seqs is None else list(first_seqs[k::processes]),
            )
            plans.append(plan)
            (work / f"in{k}").write_bytes(
                _input(port, share, plan, round(interval * 1000), warmup + duration, drain, content)
            )
            procs.append(
                subprocess.Popen(  # noqa: S603
                    [str(binary), str(work / f"in{k}"), str(work / f"out{k}")],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        connections = 0
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().split()
            if not line or line[0] != "ready":
                raise RuntimeError("a C generator process did not get ready")
            connections += int(line[1])
        accept_wait = asyncio.run(open_loop.accepted(port))
        t0 = time.perf_counter() + 0.5
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{t0!r}\n")
            proc.stdin.close()
        start, end = t0 + warmup, t0 + warmup + duration
        time.sleep(max(0.0, start - time.perf_counter()))
        opened = time.perf_counter()
        before = [_cpu(proc.pid) for proc in procs]
        if on_window:
            on_window(True)
        time.sleep(max(0.0, end - time.perf_counter()))
        closed = time.perf_counter()
        after = [_cpu(proc.pid) for proc in procs]
        if on_window:
            on_window(False)
        user = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
        system = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
        tally = open_loop.Tally(accept_wait=accept_wait)
        for proc, plan, k in zip(procs, plans, range(processes), strict=True):
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "done" or proc.wait() != 0:
                raise RuntimeError(f"a C generator process failed ({proc.returncode})")
            answers, opened_here, drain_end, bodies = _results(work / f"out{k}")
            tally.connections += opened_here
            _tally(tally, plan, answers, drain_end, bodies, t0, start, end)
        return tally, open_loop.Window(start, end, opened, closed), user + system, (user, system)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None and not pipe.closed:
                    pipe.close()
        shutil.rmtree(work, ignore_errors=True)


def _tally(
    tally: open_loop.Tally,
    plan: Sequence[tuple[float, int, int]],
    answers: Sequence[tuple[float, bytes]],
    drain_end: float,
    bodies: dict[int, bytes],
    t0: float,
    start: float,
    end: float,
) -> None:
    """The program's answers into ``tally`` as ``open_loop._Run.finished`` and ``drive``'s drain count them."""
    for b, ((due, _i, _seq), (answered, status)) in enumerate(zip(plan, answers, strict=True)):
        scheduled = t0 + due
        if scheduled >= start:
            tally.scheduled += 1
        if answered >= 0:
            tally.done.append(answered)
            tally.profile.append((due, answered - scheduled))
            if start <= scheduled < end:
                tally.latencies.append(answered - scheduled)
                if status != b"200":
                    tally.error(status.decode(), bodies.get(b, b""))
        else:  # unanswered at the drain: at what it had waited by then (a lower bound)
            tally.profile.append((due, drain_end - scheduled))
            if scheduled >= start:
                tally.latencies.append(drain_end - scheduled)
                tally.error("unanswered")
