#!/usr/bin/env python3
"""The beat path's cyclic garbage, by type and by who made it (issue 8, cycles).

A worker's young collections at the issue's scale each freed ~17,000-19,400 unreachable
objects every 3-7 s (~1,000 beats/s a worker: ~4-6 objects of cyclic garbage a beat), in one
batch of ~100 ms with the GIL held. Objects in a reference cycle are freed by the collector
only, so this runs steady beats with the collector off and ``gc.DEBUG_SAVEALL`` on, then one
``gc.collect()``: what it found unreachable (``gc.garbage``) is counted by type, and a sample
is traced to where it was allocated (``tracemalloc``).

``--cost``: instead, the collector on (``--gen0`` as the worker's ``LMS_BEAT_GC_GEN0``, start-up
heap frozen as ``tune_gc`` does), rounds of ``--groups`` groups alternating the tree's
``beat_tx.connection`` (``new``) and the one that kept the transaction strongly (``old``: the
cycle), each collection timed by a ``gc.callbacks`` hook (thread CPU): collections per
generation, the longest, and the collector's CPU per beat.

``--path group``: groups of beats of different learners handed to ``beat_batch.record_group``
as the writer thread does (an app context per group; plugin on; PostgreSQL in a throwaway
cluster, or SQLite with ``--db sqlite``: its one-by-one path). ``--path http``: raw beat
requests through the ASGI front's HTTP protocol (``beat_http.BeatHttpProtocol``, or uvicorn's
``HttpToolsProtocol`` with ``--protocol uvicorn``) on a fake transport, the writer stubbed
(bench/beat_http_micro.py's set-up).

    .venv/bin/python bench/gc_garbage.py --path group --groups 40 --people 6
    .venv/bin/python bench/gc_garbage.py --path http --beats 2000
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import sys
import tracemalloc
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

REPO = str(BENCH_DIR.parent)


def _where(obj: Any, depth: int) -> str:
    """The innermost frames of ``obj``'s allocation that are the project's or a library's (not the stdlib's)."""
    tb = tracemalloc.get_object_traceback(obj)
    if tb is None:
        return "?"
    frames = list(reversed(list(tb)))  # tracemalloc lists the oldest frame first
    out = []
    for frame in frames:
        name = frame.filename
        short = name.replace(REPO + "/", "").split("site-packages/")[-1]
        out.append(f"{short}:{frame.lineno}")
        if len(out) >= depth:
            break
    return " < ".join(out)


def report(garbage: list[Any], beats: int, depth: int, sample: int) -> None:
    by_type = collections.Counter(type(o).__qualname__ for o in garbage)
    print(f"unreachable objects: {len(garbage)} for {beats} beats ({len(garbage) / max(1, beats):.2f} a beat)")
    for name, n in by_type.most_common(25):
        print(f"  {n:7d}  {n / max(1, beats):6.2f}/beat  {name}")
    where = collections.Counter()
    for obj in garbage[:: max(1, len(garbage) // sample)] if garbage else []:
        where[f"{type(obj).__qualname__} @ {_where(obj, depth)}"] += 1
    print(f"a sample of {sum(where.values())}, by allocation site (innermost first):")
    for site, n in where.most_common(30):
        print(f"  {n:5d}  {site}")


def _collect_garbage(run: Any, beats: int, depth: int, sample: int) -> int:
    gc.collect()
    gc.garbage.clear()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    tracemalloc.start(depth + 8)
    try:
        run()
        found = gc.collect()
    finally:
        gc.set_debug(0)
        gc.enable()
    garbage = list(gc.garbage)
    gc.garbage.clear()
    report(garbage, beats, depth, sample)
    tracemalloc.stop()
    del garbage
    gc.collect()
    return found


def group_path(args: argparse.Namespace) -> int:
    from concurrent.futures import Future

    import anti_idle_bench
    import beat_split
    import common
    import seed_large

    from lms_core.learning import beat_batch, beat_front
    from plugins.anti_idle.envelope import sign_with_key

    cluster = common.start_postgres()
    try:
        url = cluster.create_database("lms_gc")
        common.upgrade(common.app_env(url, "anti_idle"))
        seed_large.seed(url, users=max(200, 3 * args.people * args.sets + 2), units=200)
        seed_large.seed_study(url, courses=1, assigned=1)
        seed_large.settle(url)
        app = anti_idle_bench._in_process_app(url)
        names = [f"bench{1 + i * 3:06d}" for i in range(args.people * args.sets)]
        learners = beat_split._learners(app, url, names)
        seqs = [0] * len(learners)

        def run_group(g: int) -> None:
            members = range((g % args.sets) * args.people, (g % args.sets + 1) * args.people)
            requests = []
            for i in members:
                seqs[i] += 1
                body = b'{"seq":%d,"event":"heartbeat","visible_ms":%d,"client":{"visibility":"visible"}}' % (
                    seqs[i],
                    10_000,
                )
                _client, _path, _headers, key, uid, version, session_id = learners[i]
                beat = beat_front.Beat(session_id, uid, version, sign_with_key(key, body), "127.0.0.1")
                requests.append(beat_batch._Request(beat, Future()))
            with app.app_context():
                beat_batch.record_group(app, requests)
            handed = sum(1 for r in requests if r.future.result() is None)
            assert handed == 0, f"{handed} beats handed to the view"

        for g in range(args.warmup * args.sets):
            run_group(g)
        start = args.warmup * args.sets
        if args.cost:
            return _cost(args, run_group, start)

        def run() -> None:
            for g in range(start, start + args.groups):
                run_group(g)

        _collect_garbage(run, args.groups * args.people, args.depth, args.sample)
        return 0
    finally:
        common.stop_postgres(cluster)


def _old_connection() -> Any:
    """``beat_tx.connection`` before issue 8's cycles fix: the transaction kept strongly in the
    session's ``info`` (a cycle through the transaction's ``session``)."""
    from lms_core.learning import beat_tx

    session = beat_tx._session()
    kept = session.info.get(beat_tx._CONNECTION)
    transaction = session.get_transaction()
    if kept is not None and transaction is not None and kept[0] is transaction:
        return kept[1]
    conn = session.connection()
    session.info[beat_tx._CONNECTION] = (session.get_transaction(), conn)
    return conn


def _cost(args: argparse.Namespace, run_group: Any, start: int) -> int:
    import os
    import time

    from lms_core.learning import beat_tx

    new_connection = beat_tx.connection
    variants = {"new": new_connection, "old": _old_connection}
    timing: dict[str, Any] = {"log": []}

    def hook(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            timing["t"] = time.thread_time()
        else:
            spent = time.thread_time() - timing["t"]
            timing["log"].append((info["generation"], spent, info["collected"]))

    gc.collect()
    gc.freeze()  # as the worker's tune_gc: the start-up heap out of the collector's reach
    first, second, third = gc.get_threshold()
    gc.set_threshold(args.gen0, second, third)
    gc.callbacks.append(hook)
    results: dict[str, list[Any]] = {name: [] for name in variants}
    g = start
    print(f"load average {os.getloadavg()[0]:.2f}; gen0 threshold {args.gen0}")
    try:
        for _ in range(args.rounds):
            for name, fn in variants.items():
                beat_tx.connection = fn
                gc.collect()  # each variant's round starts with empty young generations
                timing["log"] = []
                for _i in range(args.groups):
                    run_group(g)
                    g += 1
                log = timing["log"]
                beats = args.groups * args.people
                total = sum(spent for _gen, spent, _n in log)
                by_gen = collections.Counter(gen for gen, _s, _n in log)
                longest = max((spent for _g, spent, _n in log), default=0.0)
                collected = sum(n for _g, _s, n in log)
                results[name].append((total * 1e6 / beats, longest * 1e3, dict(by_gen), collected / beats))
                print(
                    f"  {name}: {beats} beats, collections {dict(sorted(by_gen.items()))}, longest "
                    f"{longest * 1e3:.1f} ms, collector CPU {total * 1e6 / beats:.1f} µs a beat, "
                    f"collected {collected / beats:.2f} objects a beat"
                )
    finally:
        beat_tx.connection = new_connection
        gc.callbacks.remove(hook)
        gc.set_threshold(first, second, third)
        gc.unfreeze()
    for name, rows in results.items():
        per = sorted(r[0] for r in rows)
        print(
            f"{name}: collector CPU per beat median {per[len(per) // 2]:.1f} µs "
            f"({', '.join(f'{r[0]:.1f}' for r in rows)}); longest collection "
            f"{max(r[1] for r in rows):.1f} ms"
        )
    return 0


def http_path(args: argparse.Namespace) -> int:
    import beat_http_micro
    import uvloop
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from lms_core.learning import beat_asgi, beat_http

    beats = beat_http_micro.front(args.checks)
    beat_asgi.tune_gc(beats.app.config)
    loop = uvloop.new_event_loop() if args.loop == "uvloop" else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    cls = HttpToolsProtocol if args.protocol == "uvicorn" else beat_http.BeatHttpProtocol
    beat_http_micro.run(loop, cls, beats, 200, args.connections)  # warm

    def run() -> None:
        beat_http_micro.run(loop, cls, beats, args.beats, args.connections)

    _collect_garbage(run, args.beats, args.depth, args.sample)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", choices=["group", "http"], default="group")
    parser.add_argument("--groups", type=int, default=40, help="group: measured groups")
    parser.add_argument("--people", type=int, default=6, help="group: beats (learners) a group")
    parser.add_argument("--sets", type=int, default=4, help="group: sets of learners taking turns")
    parser.add_argument("--warmup", type=int, default=2, help="group: warm-up groups per set")
    parser.add_argument("--beats", type=int, default=2000, help="http: measured beats")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--protocol", choices=["fast", "uvicorn"], default="fast")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--checks", choices=["stub", "real"], default="real")
    parser.add_argument("--cost", action="store_true", help="group: the collector's time, new against old, A/B")
    parser.add_argument("--gen0", type=int, default=20_000, help="--cost: the young generation's threshold")
    parser.add_argument("--rounds", type=int, default=3, help="--cost: rounds of new and old")
    parser.add_argument("--depth", type=int, default=4, help="frames shown of an allocation")
    parser.add_argument("--sample", type=int, default=400, help="objects traced to their allocation")
    args = parser.parse_args(argv)
    return group_path(args) if args.path == "group" else http_path(args)


if __name__ == "__main__":
    raise SystemExit(main())
