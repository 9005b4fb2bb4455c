#!/usr/bin/env python3
"""The beat fast path's event loop on real sockets, by keep-alive connections (issue 8, loop).

A server process runs one uvloop loop with ``beat_http.BeatHttpProtocol`` (or a variant) on a
listening socket, as one gunicorn worker's loop does, with the checks and the writer stubbed
as in ``bench/beat_http_micro.py`` (a fixed signed session; a future settled at once with a
fixed answer): what it spends is the HTTP layer's and the loop's own, the sockets included.
This process opens ``--connections`` keep-alive connections to it and sends the same raw beat
on them in turn at ``--rate`` beats/s (connection ``k % N`` at ``k / rate``: each beats every
``N / rate`` s), and reads the server's CPU (``/proc/<pid>/stat``) over a window after a
warm-up. 10,000 connections at 1,000 beats/s is one worker's share of the issue's 20,000
learners at 10 s (2,000/s on two workers); 2,000 connections, of 4,000 learners at 2 s.

Runs alternate the variants at each connection count (A, B, then B, A, as the load drifts):

    nice -n 19 .venv/bin/python bench/beat_http_sockets.py --connections 2000,10000 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop  # noqa: E402

#: The protocol variants: "fast" (beat_http's, the keep-alive timer armed once), "eager" (the
#: fast path with uvicorn's keep-alive timer, bench/beat_http_eager.py), "uvicorn" (its own).
KINDS = {
    "fast": "lms_core.learning.beat_http:BeatHttpProtocol",
    "eager": "bench.beat_http_eager:EagerProtocol",
    "uvicorn": "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol",
}
TICK = os.sysconf("SC_CLK_TCK")


def serve(kind: str, keep_alive: int) -> None:
    """The server process: one loop, the protocol ``kind``, its port on stdout."""
    import importlib

    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from bench import beat_http_micro
    from lms_core.learning import beat_asgi

    module, name = KINDS[kind].split(":")
    protocol_class = getattr(importlib.import_module(module), name)
    beats = beat_http_micro.front()
    beat_asgi.tune_gc(beats.app.config)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    config = Config(
        beats, http=protocol_class, lifespan="off", log_config=None, access_log=False, timeout_keep_alive=keep_alive
    )
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Sun, 06 Dec 2026 13:00:00 GMT"), *config.encoded_headers]
    server = loop.run_until_complete(
        loop.create_server(lambda: protocol_class(config, state, {}, loop), "127.0.0.1", 0, backlog=4096)
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:  # noqa: PTH123 - a procfs file read in one go
        kb = next(line.split()[1] for line in status if line.startswith("VmRSS:"))
    return int(kb) / 1024


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:  # noqa: PTH123 - a procfs file read in one go
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class _Conn(asyncio.Protocol):
    def __init__(self, seen: list[int]) -> None:
        self.seen = seen
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.seen[0] += data.count(b"HTTP/1.1 200 ")

    def connection_lost(self, exc: Exception | None) -> None:
        self.seen[1] += 1


async def drive(port: int, pid: int, n: int, rate: float, warmup: float, window: float) -> dict[str, float]:
    """``n`` connections, one beat each in turn at ``rate``/s; the server's CPU over the window."""
    from bench.beat_http_micro import request

    loop = asyncio.get_running_loop()
    raw = request()
    seen = [0, 0]  # answers, connections lost
    conns: list[_Conn] = []
    pending = list(range(n))

    async def opener() -> None:
        while pending:
            pending.pop()
            _t, conn = await loop.create_connection(lambda: _Conn(seen), "127.0.0.1", port)
            conns.append(conn)

    await asyncio.gather(*(opener() for _ in range(64)))
    await asyncio.sleep(1.0)  # every connection accepted
    t0 = time.perf_counter()
    k = 0
    done = loop.create_future()
    end = t0 + warmup + window

    def tick() -> None:
        nonlocal k
        now = time.perf_counter()
        while t0 + k / rate <= now:
            conns[k % n].transport.write(raw)
            k += 1
        if now < end:
            loop.call_later(0.001, tick)
        else:
            done.set_result(None)

    tick()
    await asyncio.sleep(warmup)
    before = cpu_seconds(pid), time.process_time(), seen[0], time.perf_counter()
    await asyncio.sleep(window)
    after = cpu_seconds(pid), time.process_time(), seen[0], time.perf_counter()
    await done
    answered = after[2] - before[2]
    for conn in conns:
        conn.transport.close()
    return {
        "rate": answered / (after[3] - before[3]),
        "server_us": (after[0] - before[0]) * 1e6 / max(1, answered),
        "client_us": (after[1] - before[1]) * 1e6 / max(1, answered),
        "lost": seen[1],
        "rss_mb": rss_mb(pid),
    }


def one(kind: str, n: int, args: argparse.Namespace) -> dict[str, float]:
    server = subprocess.Popen(  # noqa: S603 - this script, as the server
        [sys.executable, __file__, "--serve", kind, "--keep-alive", str(args.keep_alive)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(drive(port, server.pid, n, args.rate, args.warmup, args.window))
    finally:
        server.terminate()
        server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--serve", choices=sorted(KINDS), help=argparse.SUPPRESS)
    parser.add_argument("--keep-alive", type=int, default=30)
    parser.add_argument("--connections", default="2000,10000")
    parser.add_argument("--kinds", default="eager,fast")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--warmup", type=float, default=12.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.keep_alive)
        return 0
    results: dict[str, list[dict[str, float]]] = {}
    for r in range(args.rounds):
        for n in [int(c) for c in args.connections.split(",")]:
            kinds = args.kinds.split(",")
            for kind in kinds if r % 2 == 0 else kinds[::-1]:  # A, B then B, A: the load drifts
                load = os.getloadavg()[0]
                got = one(kind, n, args)
                results.setdefault(f"{kind} x{n}", []).append(got)
                print(
                    f"  round {r + 1} {kind:8s} x{n:<6d} load {load:5.2f}: {got['rate']:6.0f} beats/s answered, "
                    f"server {got['server_us']:6.1f} µs CPU per beat, client {got['client_us']:6.1f} µs; "
                    f"{got['lost']:.0f} connections closed by the server; server RSS {got['rss_mb']:.0f} MB",
                    flush=True,
                )
    for key, runs in results.items():
        server = sorted(run["server_us"] for run in runs)
        client = sorted(run["client_us"] for run in runs)
        print(
            f"{key:16s} server {', '.join(f'{v:.1f}' for v in server)} µs per beat; "
            f"client {', '.join(f'{v:.1f}' for v in client)}"
        )
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
