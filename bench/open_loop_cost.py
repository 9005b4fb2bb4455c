#!/usr/bin/env python3
"""Issue 8, ingestion: what the open-loop generator itself costs, CPU per beat.

The ingest bench's generator (bench/open_loop.py) runs on the same two cores as the server it
measures, so its CPU per beat is taken from the server's. Here it drives a server that costs
next to nothing (a fixed 200 with a body of the real answer's size, one uvloop process with
asyncio ``Protocol``s, started by this script), so its own cost is read without PostgreSQL,
the app and their noise: ``drive`` with the bench's settings (a beat every ``--cadence`` s per
learner, each on its own loopback address, beats signed as the player signs them), its CPU
read over the measured window (``process_time``), per beat answered in it.

``--generator python c`` runs the Python generator (open_loop.drive, in this process) and the C
one (bench/open_loop_c.py: the program's processes, their CPU from ``/proc``) interleaved; each
line says the CPU split user/system.

``--against FILE`` runs another version of open_loop.py too (say the one before a change,
``git show REV:bench/open_loop.py > /tmp/open_loop_before.py``), interleaved with this one
round by round, so both see the same load::

    .venv/bin/python bench/open_loop_cost.py --rate 1000 2000 --duration 15 --rounds 2
    .venv/bin/python bench/open_loop_cost.py --rate 2000 --against /tmp/open_loop_before.py
    .venv/bin/python bench/open_loop_cost.py --rate 500 2000 --generator python c --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

import open_loop  # noqa: E402
import open_loop_c  # noqa: E402
from common import free_port, percentile, step  # noqa: E402

#: The real beat answer's size, about (the ASGI front's JSON: credit, coverage, verdict, check).
ANSWER_BODY = b'{"ok":true,"credited_ms":2000,"coverage":0.25,"verdict":"ok","check":null,"pad":"' + b"x" * 120 + b'"}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\ndate: Sun, 06 Dec 2026 00:00:00 GMT\r\nserver: uvicorn\r\n"
    b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(ANSWER_BODY) + ANSWER_BODY
)


class _Fixed(asyncio.Protocol):
    """Reads each request by its head and Content-Length; answers :data:`ANSWER`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            at = self.buf.find(b"Content-Length: ", 0, end)
            stop = end + 4 + int(self.buf[at + 16 : self.buf.find(b"\r\n", at)])
            if len(self.buf) < stop:
                return
            self.buf = self.buf[stop:]
            self.transport.write(ANSWER)


async def _serve(port: int) -> None:
    await asyncio.get_running_loop().create_server(_Fixed, "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    await asyncio.Event().wait()


def _load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"open_loop_{Path(path).stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _learners(module: ModuleType, rate: float, cadence: float) -> list[Any]:
    return [
        module.Learner(module.address(i), "session=" + "c" * 180, f"/learn/sessions/{i:032x}/beat", "t" * 91, "ab" * 32)
        for i in range(max(1, round(rate * cadence)))
    ]


def _line(rate: float, learners: int, load: float, n: int, user: float, system: float, tally: Any) -> str:
    values = sorted(v * 1000 for v in tally.latencies)
    return (
        f"rate {rate:g}/s, {learners} learners, load {load:.2f}: {n:,} beats answered in the window, "
        f"generator CPU {(user + system) * 1e6 / n:.1f} µs per beat (user {user * 1e6 / n:.1f} + system "
        f"{system * 1e6 / n:.1f}); p50 {percentile(values, 50):.1f} ms, "
        f"p99 {percentile(values, 99):.1f} ms from the schedule; errors {tally.errors}"
    )


def measure(module: ModuleType, port: int, rate: float, cadence: float, warmup: float, duration: float) -> str:
    """One run of ``module.drive``: its CPU per beat answered in the window, and its latencies."""
    learners = _learners(module, rate, cadence)
    marks: dict[str, Any] = {}

    def on_window(opening: bool) -> None:
        if opening:
            marks.update(cpu=os.times(), load=os.getloadavg()[0])
        else:
            marks["cpu"] = [b - a for a, b in zip(marks["cpu"][:2], os.times()[:2], strict=True)]

    run = getattr(module, "run", asyncio.run)  # a version before open_loop.run ran on asyncio's loop
    tally, window = run(module.drive(port, learners, rate, warmup, duration, on_window=on_window))
    n = max(1, tally.answered(window.opened, window.closed))
    return _line(rate, len(learners), marks["load"], n, *marks["cpu"], tally)


def measure_c(port: int, rate: float, cadence: float, warmup: float, duration: float) -> str:
    """One run of the C generator (bench/open_loop_c.py), one process: its CPU per beat in the window."""
    learners = _learners(open_loop, rate, cadence)
    marks: dict[str, float] = {}

    def on_window(opening: bool) -> None:
        if opening:
            marks["load"] = os.getloadavg()[0]

    tally, window, _cpu, (user, system) = open_loop_c.drive(port, learners, rate, warmup, duration, on_window=on_window)
    n = max(1, tally.answered(window.opened, window.closed))
    return _line(rate, len(learners), marks["load"], n, user, system, tally)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, nargs="+", default=[1000.0, 2000.0])
    parser.add_argument("--cadence", type=float, default=2.0, help="seconds between one learner's beats")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--against", metavar="FILE", help="another open_loop.py, run interleaved with this one")
    parser.add_argument(
        "--generator", nargs="+", choices=("python", "c"), default=["python"], help="generators, interleaved"
    )
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the fixed server
    args = parser.parse_args(argv)
    if args.serve:
        open_loop.run(_serve(args.serve))
        return 0
    versions: list[tuple[str, ModuleType | None]] = [
        ("this" if name == "python" else "c", open_loop if name == "python" else None) for name in args.generator
    ]
    versions += [(args.against, _load(args.against))] if args.against else []
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE)  # noqa: S603
    try:
        assert server.stdout is not None
        server.stdout.readline()
        for r in range(args.rounds):
            for rate in args.rate:
                for name, module in versions:
                    step(f"round {r + 1}, {name}, {rate:g} beats/s")
                    if module is None:
                        line = measure_c(port, rate, args.cadence, args.warmup, args.duration)
                    else:
                        line = measure(module, port, rate, args.cadence, args.warmup, args.duration)
                    print(f"{name}: {line}", flush=True)
    finally:
        server.kill()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
