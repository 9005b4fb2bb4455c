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


def writer_stub(beats: Any, commit_ms: float) -> None:
    """``--writer``: beats go through the real group writer (``beat_batch.waiter``: its queue,
    its thread, one ``call_soon_threadsafe`` per group), whose recording is stubbed: each
    group's beats get the micro bench's fixed answer after ``commit_ms`` of sleep (the round and
    its COMMIT waiting on PostgreSQL), so beats gather into groups as in a worker."""
    from lms_core.learning import beat_batch

    answer = beats.record_soon(None, asyncio.new_event_loop()).result()  # the stub's fixed answer

    def record_group(_app: Any, requests: list[Any]) -> None:
        time.sleep(commit_ms / 1000)
        for req in requests:
            req.future.set_result(answer)

    beat_batch.record_group = record_group  # type: ignore[assignment]
    beats.record_soon = lambda beat, loop, marks=None: beat_batch.waiter(beats.app, beat, loop, marks)
    if "record_then" in vars(beats):
        del beats.record_then  # the front's own: the writer calls back


def serve(kind: str, keep_alive: int, commit_ms: float | None = None, tree: str | None = None) -> None:
    """The server process: one loop, the protocol ``kind``, its port on stdout (``tree``: the
    server's code from that checkout, e.g. main's, for an A/B of two trees)."""
    import importlib

    if tree:
        sys.path.insert(0, tree)

    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from bench import beat_http_micro
    from lms_core.learning import beat_asgi

    module, name = KINDS[kind].split(":")
    protocol_class = getattr(importlib.import_module(module), name)
    beats = beat_http_micro.front()
    if commit_ms is not None:
        writer_stub(beats, commit_ms)
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
    user, system = cpu_split(pid)
    return user + system


def cpu_split(pid: int, tid: int | None = None) -> tuple[float, float]:
    """User and kernel CPU seconds of a process (or one of its threads)."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with open(path) as stat:  # noqa: PTH123 - a procfs file read in one go
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def threads(pid: int) -> dict[int, str]:
    """The process's threads: id -> name."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as comm:  # noqa: PTH123 - a procfs file
            out[int(tid)] = comm.read().strip()
    return out


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


async def drive(
    port: int, pid: int, n: int, rate: float, warmup: float, window: float, strace: bool = False
) -> dict[str, float]:
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
    tids = threads(pid)
    split0 = {tid: cpu_split(pid, tid) for tid in tids}
    tracer = None
    if strace:
        # The syscalls of the server's threads over the window (counts only: strace slows them).
        tracer = subprocess.Popen(  # noqa: S603
            ["strace", "-c", "-f", "-p", str(pid), "-o", f"/tmp/beat_http_sockets.{pid}.strace"],  # noqa: S607, S108
            stderr=subprocess.DEVNULL,
        )
    before = cpu_seconds(pid), time.process_time(), seen[0], time.perf_counter()
    await asyncio.sleep(window)
    after = cpu_seconds(pid), time.process_time(), seen[0], time.perf_counter()
    split1 = {tid: cpu_split(pid, tid) for tid in tids}
    if tracer is not None:
        tracer.send_signal(2)
        tracer.wait()
    await done
    answered = after[2] - before[2]
    for conn in conns:
        conn.transport.close()
    per = 1e6 / max(1, after[2] - before[2])
    loop_user = (split1[pid][0] - split0[pid][0]) * per
    loop_sys = (split1[pid][1] - split0[pid][1]) * per
    others_user = sum(split1[t][0] - split0[t][0] for t in tids if t != pid) * per
    others_sys = sum(split1[t][1] - split0[t][1] for t in tids if t != pid) * per
    if tracer is not None:
        with open(f"/tmp/beat_http_sockets.{pid}.strace") as out:  # noqa: PTH123, S108
            print(f"  strace -c over the window ({after[2] - before[2]} answers):\n{out.read()}", flush=True)
    return {
        "loop_user_us": loop_user,
        "loop_sys_us": loop_sys,
        "others_user_us": others_user,
        "others_sys_us": others_sys,
        "rate": answered / (after[3] - before[3]),
        "server_us": (after[0] - before[0]) * 1e6 / max(1, answered),
        "client_us": (after[1] - before[1]) * 1e6 / max(1, answered),
        "lost": seen[1],
        "rss_mb": rss_mb(pid),
    }


def one(kind: str, n: int, args: argparse.Namespace, tree: str | None = None) -> dict[str, float]:
    server = subprocess.Popen(  # noqa: S603 - this script, as the server
        [
            sys.executable,
            __file__,
            "--serve",
            kind,
            "--keep-alive",
            str(args.keep_alive),
            *(["--writer", str(args.writer)] if args.writer is not None else []),
            *(["--tree", tree] if tree else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(drive(port, server.pid, n, args.rate, args.warmup, args.window, args.strace))
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
    parser.add_argument(
        "--writer",
        type=float,
        metavar="MS",
        help="beats through the real group writer thread, each group's recording a sleep of MS ms",
    )
    parser.add_argument("--strace", action="store_true", help="count the server's syscalls over the window (strace -c)")
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument(
        "--trees",
        help="A,B: checkouts whose server code to alternate (kind 'fast' of each), instead of --kinds",
    )
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.keep_alive, args.writer, args.tree)
        return 0
    results: dict[str, list[dict[str, float]]] = {}
    for r in range(args.rounds):
        for n in [int(c) for c in args.connections.split(",")]:
            kinds = args.trees.split(",") if args.trees else args.kinds.split(",")
            for kind in kinds if r % 2 == 0 else kinds[::-1]:  # A, B then B, A: the load drifts
                load = os.getloadavg()[0]
                got = one("fast", n, args, kind) if args.trees else one(kind, n, args)
                results.setdefault(f"{kind} x{n}", []).append(got)
                print(
                    f"  round {r + 1} {kind:8s} x{n:<6d} load {load:5.2f}: {got['rate']:6.0f} beats/s answered, "
                    f"server {got['server_us']:6.1f} µs CPU per beat (loop user {got['loop_user_us']:.1f} "
                    f"+ kernel {got['loop_sys_us']:.1f}, other threads {got['others_user_us']:.1f} "
                    f"+ {got['others_sys_us']:.1f}), client {got['client_us']:6.1f} µs; "
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
