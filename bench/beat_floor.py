#!/usr/bin/env python3
"""Issue 8, ingestion: the floor of a beat endpoint on this machine, next to the real one.

What do the same load generator, the same HTTP servers and the same PostgreSQL reach when
the app does the least a durable beat endpoint must do? Four endpoints, each under gunicorn
gthread (``--workers`` x ``--threads``) and under uvicorn workers (``--workers``), with the
ingest bench's load generator and request shape (``anti_idle_bench._drive``: signed-in
learners on keep-alive HTTP/1.1, each beat signed as the player signs it, back to back):

a) ``trivial``: 200 with a fixed small JSON, body read, nothing else (no app, no database);
b) ``checks``: a) plus the real lean front's checks, with its own functions (signed cookie,
   CSRF, principal, strict JSON, the envelope HMAC hook, the body validation);
c) ``append``: b) plus a durable append of the raw beat to ``bench_floor_beats``, group
   committed (the beats waiting together: one multi-row INSERT and one COMMIT), each beat
   answered only after its COMMIT;
d) ``real``: the product's beat endpoint (anti-idle on: assessment, ledger, state), gthread
   through the lean WSGI front, uvicorn through the ASGI front with group commit.

The servers of a) to c) are ``bench/beat_floor_app.py``. Modes and servers are interleaved
(a, b, c, d, each on both servers, per client count and round) so they share the load.
For each run: beats/s, p50/p95/p99, and CPU per beat split gunicorn (master + workers) /
PostgreSQL (backends) / load generator, statements per beat and beats per COMMIT
(pg_stat_statements). The budget the target implies: 2 cores x 1,000 ms / 2,000 beats =
1.0 ms of CPU per beat, generator and PostgreSQL included.

Own throwaway PostgreSQL cluster (fsync and synchronous_commit on), nothing kept. The seeded
database is copied (``CREATE DATABASE … TEMPLATE``) for the floor servers and afresh for every
run of the real endpoint, so no run pays for an earlier run's beats::

    nice .venv/bin/python bench/beat_floor.py                      # 8 and 64 clients, ~10 min
    nice .venv/bin/python bench/beat_floor.py --clients 8 --duration 10 --modes trivial append
    nice .venv/bin/python bench/beat_floor.py --append copy --json /tmp/floor.json
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

import anti_idle_bench  # noqa: E402 - bench/ is a folder of scripts, not a package
import beat_floor_app  # noqa: E402
import common  # noqa: E402
import load  # noqa: E402
import seed_large  # noqa: E402
from common import percentile, postmaster_pid, step  # noqa: E402

MODES = ("trivial", "checks", "append", "real")
SERVERS = ("gthread", "uvicorn")
#: The seeded database every run starts from: the floor servers' (``lms_floor``) and each run of
#: the real endpoint (``lms_real_<n>``) are copies of it. Each real run gets a fresh copy: in one
#: shared database the real endpoint's later runs paid for the earlier runs' beats (R12 reads every
#: credited beat of the day from the learners' address, and all learners come from 127.0.0.1).
SEED_DB = "lms_seed"
#: Learner i is bench{i * 7}, as in the ingest bench's first run (spread over the seeded units).
STRIDE = 7
_END_SEED_SESSIONS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'lms_seed' AND pid <> pg_backend_pid()"
)
#: CPU per beat the target leaves: 2 cores for 1 s over 2,000 beats.
BUDGET_MS = 2 * 1000 / 2000


def start(env: dict[str, str], mode: str, server: str, args: argparse.Namespace) -> tuple[object, int]:
    """gunicorn serving ``mode`` with ``server``'s workers; (process, port)."""
    if mode == "real":
        app = "lms_core.learning.beat_asgi:create_app()" if server == "uvicorn" else "lms_core:create_app()"
        extra: list[str] = []
        ready = "/login"
    else:
        app = f"beat_floor_app:{'asgi' if server == 'uvicorn' else 'wsgi'}({mode!r})"
        extra = ["--pythonpath", str(BENCH_DIR)]
        ready = "/"
    if server == "uvicorn":
        return common.start_gunicorn(
            env,
            workers=args.workers,
            worker_class="uvicorn_worker.UvicornWorker",
            app=app,
            extra_args=extra,
            ready_path=ready,
        )
    return common.start_gunicorn(
        env,
        workers=args.workers,
        worker_class="gthread",
        threads=args.threads,
        app=app,
        extra_args=extra,
        ready_path=ready,
    )


@dataclass
class Bench:
    """What every run shares: the cluster, the floor servers' database and learners, the lesson."""

    cluster: Any
    floor_url: str
    floor_env: dict[str, str]
    lesson_id: int
    floor_learners: list[tuple[str, str, str, str]]
    copies: itertools.count[int]

    def fresh_copy(self) -> str:
        """A new database copied from the seed (seconds, not a new seed)."""
        return copy_seed(self.cluster, f"lms_real_{next(self.copies)}")

    def drop(self, url: str) -> None:
        self.cluster.psql(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def copy_seed(cluster: Any, name: str) -> str:
    """``CREATE DATABASE name TEMPLATE lms_seed``; the seed must have no session, and autovacuum
    visits it after the bulk load, so its workers there are ended first (they come back later)."""
    for attempt in range(5):
        cluster.psql(_END_SEED_SESSIONS)
        try:
            cluster.psql(f'CREATE DATABASE "{name}" TEMPLATE "{SEED_DB}"')
            return str(cluster.url(name))
        except subprocess.CalledProcessError:
            if attempt == 4:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def floor_rows(url: str) -> int:
    import psycopg

    with psycopg.connect(anti_idle_bench.plain(url)) as conn:
        return int(conn.execute("SELECT count(*) FROM bench_floor_beats").fetchone()[0])


def check_real(url: str) -> None:
    """The real endpoint's beats were taken as the player's (signed, valid) and credited."""
    import psycopg

    with psycopg.connect(anti_idle_bench.plain(url)) as conn:
        envelopes = dict(
            conn.execute("SELECT client->>'envelope', count(*) FROM anti_idle_beats GROUP BY 1").fetchall()
        )
        credited = conn.execute("SELECT count(*) FROM anti_idle_beats WHERE credited_ms > 0").fetchone()[0]
    if envelopes.get("unsigned") or envelopes.get("bad") or not credited:
        raise SystemExit(f"the real endpoint's beats were not valid or not credited: {envelopes}, {credited} credited")


def run_one(bench: Bench, args: argparse.Namespace, mode: str, server: str, clients: int) -> dict[str, object]:
    if mode == "real":
        url = bench.fresh_copy()
        env = common.app_env(url, "anti_idle")
    else:
        url, env = bench.floor_url, bench.floor_env
    try:
        return measure(bench, args, mode, server, clients, url, env)
    finally:
        if mode == "real":
            bench.drop(url)


def measure(
    bench: Bench, args: argparse.Namespace, mode: str, server: str, clients: int, url: str, env: dict[str, str]
) -> dict[str, object]:
    # The previous run's rows get their vacuum and checkpoint now, not inside this run's window.
    seed_large.settle(url)
    proc, port = start(env, mode, server, args)
    try:
        if mode == "real":
            step(f"signing in {clients} learners and opening lesson {bench.lesson_id}")
            names = [f"bench{i * STRIDE:06d}" for i in range(clients)]
            learners = anti_idle_bench.sign_in_learners(f"http://127.0.0.1:{port}", bench.lesson_id, names)
        else:
            learners = bench.floor_learners[:clients]
        rows_before = floor_rows(url) if mode == "append" else 0
        latencies: list[float] = []
        errors = [0]
        load_before = os.getloadavg()[0]
        step(f"{mode} on {server}, {clients} clients: {args.warmup:g} s warm-up, {args.duration:g} s measured")
        pg_pid = postmaster_pid(bench.cluster)
        wall, server_cpu, pg_cpu, gen_cpu, ran, commits = asyncio.run(
            anti_idle_bench._drive(  # noqa: SLF001 - the ingest bench's own generator, the same requests
                port, learners, latencies, errors, args.warmup, args.duration, (proc.pid, pg_pid), url
            )
        )
        load_after = os.getloadavg()[0]
    finally:
        common.stop_server(proc)
    values = sorted(v * 1000 for v in latencies)
    n = max(1, len(values))
    if mode == "real":
        check_real(url)
    appended = floor_rows(url) - rows_before if mode == "append" else 0
    if mode == "append" and appended < len(values) - errors[0]:
        raise SystemExit(f"append: {len(values) - errors[0]} beats acknowledged but only {appended} rows stored")
    statements = sum(calls for calls, _q in ran)
    result: dict[str, object] = {
        "mode": mode,
        "server": server,
        "clients": clients,
        "beats": len(values),
        "errors": errors[0],
        "beats_per_s": round(len(values) / wall),
        "p50_ms": round(percentile(values, 50), 1),
        "p95_ms": round(percentile(values, 95), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "server_cpu_ms": round(server_cpu * 1000 / n, 3),
        "pg_cpu_ms": round(pg_cpu * 1000 / n, 3),
        "gen_cpu_ms": round(gen_cpu * 1000 / n, 3),
        "statements_per_beat": round(statements / n, 2),
        # Only where the endpoint commits (the count also sees the odd COMMIT of a cache refill).
        "beats_per_commit": round(n / commits, 1) if commits and mode in ("append", "real") else None,
        "load_before": round(load_before, 2),
        "load_after": round(load_after, 2),
    }
    total = server_cpu + pg_cpu + gen_cpu
    print(
        f"{mode:7} {server:7} {clients:3} clients: {result['beats_per_s']:>5} beats/s, p50 {result['p50_ms']} ms, "
        f"p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms, errors {errors[0]}; CPU per beat "
        f"{server_cpu * 1000 / n:.3f} server + {pg_cpu * 1000 / n:.3f} PostgreSQL + {gen_cpu * 1000 / n:.3f} "
        f"generator = {total * 1000 / n:.3f} ms; {result['statements_per_beat']} statements per beat, "
        f"{result['beats_per_commit']} beats per COMMIT; load average {load_before:.2f} -> {load_after:.2f}",
        flush=True,
    )
    return result


def summary(results: list[dict[str, object]]) -> None:
    """One table per client count (medians over rounds are left to the reader: rounds are listed)."""
    print(
        f"\nCPU budget at the target: {BUDGET_MS:.2f} ms per beat (2 cores, 2,000 beats/s), PostgreSQL and "
        "the load generator included. 'max/s' = 2,000 ms / CPU per beat: the rate the 2 cores could carry "
        "if nothing else ran and the CPU per beat stayed as measured."
    )
    header = (
        f"{'mode':8}{'server':9}{'clients':>8}{'beats/s':>9}{'p50':>8}{'p95':>8}{'p99':>8}"
        f"{'server':>9}{'PG':>8}{'gen':>8}{'total':>8}{'max/s':>8}{'stmt':>6}{'b/COMMIT':>9}{'load':>6}"
    )
    print(header + "\n" + "-" * len(header))
    for r in results:
        total = float(r["server_cpu_ms"]) + float(r["pg_cpu_ms"]) + float(r["gen_cpu_ms"])
        print(
            f"{r['mode']:8}{r['server']:9}{r['clients']:>8}{r['beats_per_s']:>9}{r['p50_ms']:>8}{r['p95_ms']:>8}"
            f"{r['p99_ms']:>8}{r['server_cpu_ms']:>9.3f}{r['pg_cpu_ms']:>8.3f}{r['gen_cpu_ms']:>8.3f}{total:>8.3f}"
            f"{2000 / total if total else 0:>8.0f}{r['statements_per_beat']:>6}{r['beats_per_commit'] or '-':>9}"
            f"{r['load_before']:>6}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 64], help="client counts, each a set of runs")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the interleaved set per client count")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker")
    parser.add_argument(
        "--append", choices=["insert", "copy"], default="insert", help="c): one unnest INSERT or one COPY per group"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the runs as JSON")
    args = parser.parse_args(argv)
    # A background job ignores SIGINT: stop it with SIGTERM, and the servers and cluster still go.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(
        f"beat floor: {os.cpu_count()} cores, speed probe {load.speed_probe()} ms (lower is faster), "
        f"load average {os.getloadavg()[0]:.2f}; append by {args.append}",
        flush=True,
    )
    results: list[dict[str, object]] = []
    cluster = common.start_postgres(shared_preload_libraries="pg_stat_statements")
    try:
        url = cluster.create_database(SEED_DB)
        import psycopg

        with psycopg.connect(anti_idle_bench.plain(url), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        env = common.app_env(url, "anti_idle")
        common.upgrade(env)
        most = max(args.clients)
        seed_large.seed(url, users=STRIDE * most + 1, units=200)
        seed_large.seed_study(url, courses=1, assigned=1)
        seed_large.settle(url)
        with psycopg.connect(anti_idle_bench.plain(url)) as conn:
            lesson_id = conn.execute("SELECT id FROM lessons ORDER BY id LIMIT 1").fetchone()[0]
        floor_url = copy_seed(cluster, "lms_floor")
        with psycopg.connect(anti_idle_bench.plain(floor_url), autocommit=True) as conn:
            conn.execute(beat_floor_app.TABLE_SQL)
        floor_env = common.app_env(floor_url, "anti_idle", BENCH_FLOOR_APPEND=args.append)
        # The floor servers' learners: signed in once through the real app on the floor's
        # database (the same secret key signs their cookies), their lesson opened as the
        # player's page does.
        proc, port = start(floor_env, "real", "gthread", args)
        try:
            step(f"signing in {most} learners for the floor servers")
            names = [f"bench{i * STRIDE:06d}" for i in range(most)]
            floor_learners = anti_idle_bench.sign_in_learners(f"http://127.0.0.1:{port}", lesson_id, names)
        finally:
            common.stop_server(proc)
        bench = Bench(cluster, floor_url, floor_env, lesson_id, floor_learners, itertools.count(1))
        for clients in args.clients:
            for _round in range(args.rounds):
                for mode in args.modes:
                    for server in args.servers:
                        results.append(run_one(bench, args, mode, server, clients))
    finally:
        common.stop_postgres(cluster)
    summary(results)
    print(f"speed probe {load.speed_probe()} ms, load average {os.getloadavg()[0]:.2f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
