#!/usr/bin/env python3
"""The beat fast path's instructions per beat on the event loop thread, under callgrind (issue 8, loopw).

CPU time on this shared VM moves by ±10-15 % between runs, more than a cut of a few µs; the
number of instructions the loop's thread executes per beat does not. This runs
``bench/beat_http_micro.py``'s set-up (``beat_http.BeatHttpProtocol`` on fake transports, the
checks stubbed with a fixed signed session) under ``valgrind --tool=callgrind``, with
instrumentation switched on only once the app is built and warm, for two beat counts; the
difference of the loop thread's totals over the difference of beats is its instructions per
beat, start-up and warm-up cancelled. Two ways to answer a beat:

``stub``
    the micro bench's writer stub (an answer given at once, on the loop);
``writer``
    the real group writer (``beat_batch``: its queue, its thread, one call into the loop per
    group), its recording stubbed (each beat answered at once): rounds of one beat on each of
    ``--connections`` connections, fed together, then awaited. The writer's thread is counted
    apart (``--separate-threads``); only the loop's is printed.

``--checks real`` runs ``LeanBeats.take`` for real (a cookie and a CSRF token the app signed,
verified once and then found in the verified-session cache, as a player's later beats are)
instead of the micro bench's fixed signed session: ~21 k instructions a beat more.

``--trees`` takes checkouts (e.g. main and a branch) whose server code to count, each run
under that tree's ``.venv``:

    nice -n 19 .venv/bin/python bench/beat_http_instr.py --trees /work/main,. --mode writer

About 1-3 minutes per run on the shared machine (four runs per tree: two counts, in parallel).
Repeated runs of one tree differ by ±2-3 % (the collector's timing, the writer's groups).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def child(tree: str, beats: int, connections: int, go: str, mode: str, checks: str) -> None:
    """Under valgrind: build, warm, say ``ready``, wait for the go file, then run ``beats``.

    The server's code (``lms_core``) is the tree's; the harness (``bench/beat_http_micro.py``)
    is this checkout's, so trees without its newer options compare on the same harness."""
    sys.path.insert(0, tree)
    os.chdir(tree)
    import importlib.util

    import uvloop
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from lms_core.learning import beat_asgi, beat_batch, beat_http

    spec = importlib.util.spec_from_file_location("beat_http_micro", Path(__file__).with_name("beat_http_micro.py"))
    assert spec is not None and spec.loader is not None
    micro = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(micro)
    sys.path.remove(str(Path(__file__).resolve().parent.parent))  # (the harness put its root first)

    front = micro.front(checks)
    if mode == "writer":
        answer = front.record_soon(None, asyncio.new_event_loop()).result()  # the stub's fixed answer

        def record_group(_app: Any, requests: list[Any]) -> None:
            for req in requests:
                req.future.set_result(answer)

        beat_batch.record_group = record_group  # type: ignore[assignment]
        front.record_soon = lambda beat, loop, marks=None: beat_batch.waiter(front.app, beat, loop, marks)  # type: ignore[method-assign]
        if "record_then" in vars(front):
            del front.record_then  # the front's own: the writer calls back
    beat_asgi.tune_gc(front.app.config)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    if mode == "stub":
        micro.run(loop, beat_http.BeatHttpProtocol, front, connections, connections)  # warm
        print("ready", flush=True)
        while not Path(go).exists():
            time.sleep(0.02)
        micro.run(loop, beat_http.BeatHttpProtocol, front, beats, connections)
        return
    config = Config(front, http=beat_http.BeatHttpProtocol, lifespan="off", log_config=None, access_log=False)
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Sun, 06 Dec 2026 13:00:00 GMT"), *config.encoded_headers]
    answered: list[Any] = [0, None]  # answers written; (the count a round waits for, its future)

    class Counted(micro.Transport):  # type: ignore[name-defined, misc]
        """Counts whole answers and wakes the round at its last one: the round's wait costs the
        loop the same whatever the writer's pace (summing every transport's bytes on each poll
        cost ~20 k instructions a poll, and the polls' number followed the machine's load)."""

        def write(self, data: bytes) -> None:
            super().write(data)
            answered[0] += 1
            waiting = answered[1]
            if waiting is not None and answered[0] >= waiting[0]:
                answered[1] = None
                waiting[1].set_result(None)

    opened = []
    for i in range(connections):
        protocol = beat_http.BeatHttpProtocol(config, state, {}, loop)
        transport = Counted(10_000 + i)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        opened.append((protocol, transport))
    raw = micro.request()

    async def rounds(k: int) -> None:
        for _ in range(k):
            done = loop.create_future()
            answered[1] = (answered[0] + connections, done)
            for protocol, _t in opened:
                protocol.data_received(raw)
            await done

    loop.run_until_complete(rounds(2))  # warm
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.02)
    loop.run_until_complete(rounds(beats // connections))


def count(tree: str, beats: int, connections: int, mode: str, checks: str, work: Path) -> int:
    """The loop thread's instructions for a run of ``beats`` (with its start-up after ``ready``)."""
    tag = f"{Path(tree).resolve().name}.{mode}.{checks}.{beats}.{os.getpid()}"
    out, go, log = work / f"{tag}.callgrind", work / f"{tag}.go", work / f"{tag}.log"
    python = str(Path(tree) / ".venv" / "bin" / "python")
    with log.open("w") as sink:
        run = subprocess.Popen(  # noqa: S603
            [  # noqa: S607
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                "--separate-threads=yes",
                f"--callgrind-out-file={out}",
                python,
                __file__,
                "--child",
                tree,
                str(beats),
                str(connections),
                str(go),
                mode,
                checks,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        while "ready" not in log.read_text():
            if run.poll() is not None:
                raise RuntimeError(f"{tag}: {log.read_text()[-2000:]}")
            time.sleep(1)
        subprocess.run(["callgrind_control", "-i", "on", str(run.pid)], check=True, capture_output=True)  # noqa: S603, S607
        go.touch()
        run.wait()
    first = Path(f"{out}-01")  # the main thread: the event loop's
    for line in first.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"{tag}: no summary in {first}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument("--trees", default=".", help="checkouts to count, comma-separated")
    parser.add_argument("--mode", choices=["stub", "writer"], default="writer")
    parser.add_argument("--beats", default="400,1400", help="the two beat counts (multiples of --connections)")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument(
        "--checks",
        choices=["stub", "real"],
        default="stub",
        help="LeanBeats.take stubbed, or real (a signed cookie and CSRF token, found in the verified-session cache)",
    )
    args = parser.parse_args(argv)
    if args.child:
        tree, beats, connections, go, mode, checks = args.child
        child(tree, int(beats), int(connections), go, mode, checks)
        return 0
    low, high = (int(n) for n in args.beats.split(","))
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="beat_http_instr.") as work:
        from concurrent.futures import ThreadPoolExecutor

        trees = args.trees.split(",")
        with ThreadPoolExecutor(2 * len(trees)) as pool:
            runs = {
                (tree, n): pool.submit(count, tree, n, args.connections, args.mode, args.checks, Path(work))
                for tree in trees
                for n in (low, high)
            }
            for tree in trees:
                per = (runs[tree, high].result() - runs[tree, low].result()) / (high - low)
                what = f"{args.mode}, checks {args.checks}"
                print(f"{tree}: {per:,.0f} instructions per beat on the loop thread ({what})", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
