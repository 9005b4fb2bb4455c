#!/usr/bin/env python3
"""Issue 8, ingestion: what the open-loop generator itself costs, CPU per beat.

The ingest bench's generator (bench/open_loop.py) runs on the same two cores as the server it
measures, so its CPU per beat is taken from the server's. Here it drives a server that costs
next to nothing (a fixed 200 with a body of the real answer's size, one uvloop process with
asyncio ``Protocol``s, started by this script), so its own cost is read without PostgreSQL,
the app and their noise: ``drive`` with the bench's settings (a beat every ``--cadence`` s per
learner, each on its own loopback address, beats signed as the player signs them), its CPU
read over the measured window (``process_time``), per beat answered in it.

``--against FILE`` runs another version of open_loop.py too (say the one before a change,
``git show REV:bench/open_loop.py > /tmp/open_loop_before.py``), interleaved with this one
round by round, so both see the same load::

    .venv/bin/python bench/open_loop_cost.py --rate 1000 2000 --duration 15 --rounds 2
    .venv/bin/python bench/open_loop_cost.py --rate 2000 --against /tmp/open_loop_before.py
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

import open_loop  # noqa: E402
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


def measure(module: ModuleType, port: int, rate: float, cadence: float, warmup: float, duration: float) -> str:
    """One run of ``module.drive``: its CPU per beat answered in the window, and its latencies."""
    learners = [
        module.Learner(module.address(i), "session=" + "c" * 180, f"/learn/sessions/{i:032x}/beat", "t" * 91, "ab" * 32)
        for i in range(max(1, round(rate * cadence)))
    ]
    marks: dict[str, float] = {}

    def on_window(opening: bool) -> None:
        if opening:
            marks.update(cpu=time.process_time(), load=os.getloadavg()[0])
        else:
            marks["cpu"] = time.process_time() - marks["cpu"]

    run = getattr(module, "run", asyncio.run)  # a version before open_loop.run ran on asyncio's loop
    tally, window = run(module.drive(port, learners, rate, warmup, duration, on_window=on_window))
    n = max(1, tally.answered(window.opened, window.closed))
    values = sorted(v * 1000 for v in tally.latencies)
    return (
        f"rate {rate:g}/s, {len(learners)} learners, load {marks['load']:.2f}: {n:,} beats answered in the window, "
        f"generator CPU {marks['cpu'] * 1e6 / n:.1f} µs per beat; p50 {percentile(values, 50):.1f} ms, "
        f"p99 {percentile(values, 99):.1f} ms from the schedule; errors {tally.errors}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, nargs="+", default=[1000.0, 2000.0])
    parser.add_argument("--cadence", type=float, default=2.0, help="seconds between one learner's beats")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--against", metavar="FILE", help="another open_loop.py, run interleaved with this one")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the fixed server
    args = parser.parse_args(argv)
    if args.serve:
        open_loop.run(_serve(args.serve))
        return 0
    versions = [("this", open_loop)] + ([(args.against, _load(args.against))] if args.against else [])
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE)  # noqa: S603
    try:
        assert server.stdout is not None
        server.stdout.readline()
        for r in range(args.rounds):
            for rate in args.rate:
                for name, module in versions:
                    step(f"round {r + 1}, {name}, {rate:g} beats/s")
                    print(
                        f"{name}: {measure(module, port, rate, args.cadence, args.warmup, args.duration)}", flush=True
                    )
    finally:
        server.kill()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
