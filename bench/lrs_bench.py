"""Benchmark the LRS on PostgreSQL behind gunicorn (issue 4 targets).

By default it starts everything itself: a throwaway PostgreSQL cluster from the
machine's binaries (``tests/pgcluster.py``, fsync on), the migrations, a client
credential and gunicorn serving ``lrs:create_app()``; then it runs the scenarios
and stops what it started. ``--url/--key/--secret`` aim it at a running LRS.

Scenarios (each prints progress and a result line):

* ``batch``: POST batches of 100, ``--batch-clients`` concurrent clients (4);
* ``single``: POST single statements, ``--single-clients`` concurrent clients (8);
* ``load``: bulk-load statements until ``--stored`` are stored (1,000,000), through
  the LRS service layer in several processes (same validation, same tables);
* ``query``: one client at a time, ``limit=100``: GET by agent, verb, activity,
  and with related_activities / related_agents; p50/p95/max per kind.

Clients are separate processes using keep-alive ``http.client`` connections, and
request bodies are serialised before the clock starts, so the client costs as
little CPU as possible on this shared 2-core machine.

Usage::

    .venv/bin/python bench/lrs_bench.py                      # everything, 1M stored
    .venv/bin/python bench/lrs_bench.py --stored 200000 --scenarios batch,single,load,query
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import common  # noqa: E402 - bench/ is a folder of scripts, not a package

VERBS = [
    f"http://adlnet.gov/expapi/verbs/{v}"
    for v in (
        "experienced",
        "attempted",
        "completed",
        "passed",
        "failed",
        "answered",
        "attended",
        "launched",
        "initialized",
        "terminated",
    )
]
N_AGENTS, N_COURSES, N_LESSONS = 20000, 200, 4000
HOME = "https://gbwl.example.gov.cn"


def make_statement(rng: random.Random) -> dict[str, Any]:
    """A realistic statement: account actor, Chinese names, course/lesson context, result."""
    a = rng.randrange(N_AGENTS)
    lesson = rng.randrange(N_LESSONS)
    course = lesson % N_COURSES
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "actor": {
            "objectType": "Agent",
            "name": f"学员{a:05d}",
            "account": {"homePage": HOME, "name": f"cadre{a:05d}"},
        },
        "verb": {"id": rng.choice(VERBS), "display": {"zh-CN": "学习", "en-US": "studied"}},
        "object": {
            "objectType": "Activity",
            "id": f"http://gbwl.example.gov.cn/lesson/{lesson}",
            "definition": {"name": {"zh-CN": f"第{lesson}课"}, "type": "http://adlnet.gov/expapi/activities/lesson"},
        },
        "result": {
            "completion": rng.random() < 0.5,
            "duration": f"PT{rng.randrange(60, 3600)}S",
            "score": {"scaled": round(rng.random(), 2)},
        },
        "context": {
            "registration": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "platform": "干部网络学院",
            "contextActivities": {"parent": [{"id": f"http://gbwl.example.gov.cn/course/{course}"}]},
            "instructor": {"account": {"homePage": HOME, "name": f"teacher{course:03d}"}},
        },
        "timestamp": "2026-11-28T08:00:00.000+08:00",
    }


# HTTP client ---------------------------------------------------------------------------


class Conn:
    def __init__(self, url: str, key: str, secret: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.base = parts.hostname or "127.0.0.1", parts.port or 80, parts.path.rstrip("/")
        token = base64.b64encode(f"{key}:{secret}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "X-Experience-API-Version": "1.0.3"}
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                self.conn.request(method, self.base + path, body=body, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = self._connect()
                if attempt:
                    raise
        raise AssertionError("unreachable")


def _post_worker(args: tuple[str, str, str, int, int, int, Any]) -> tuple[int, int, float, list[float]]:
    url, key, secret, seed, requests, per_request, counter = args
    rng = random.Random(seed)
    bodies = []
    for _ in range(requests):
        batch = [make_statement(rng) for _ in range(per_request)]
        bodies.append(json.dumps(batch if per_request > 1 else batch[0], ensure_ascii=False).encode())
    conn = Conn(url, key, secret)
    ok = errors = 0
    latencies = []
    start = time.perf_counter()
    for body in bodies:
        t0 = time.perf_counter()
        status, _ = conn.request("POST", "/statements", body)
        latencies.append(time.perf_counter() - t0)
        if status == 200:
            ok += per_request
        else:
            errors += 1
        with counter.get_lock():
            counter.value += per_request
    return ok, errors, time.perf_counter() - start, latencies


_SERVER_ROOTS: list[int] = []  # gunicorn master and postmaster pids, when this script started them


def server_cpu_seconds() -> list[float] | None:
    """CPU time used so far by each server root and its children: [gunicorn, PostgreSQL]."""
    if not _SERVER_ROOTS:
        return None
    return [common.tree_cpu_seconds(root) for root in _SERVER_ROOTS]


def run_posts(url: str, key: str, secret: str, clients: int, requests: int, per_request: int, label: str) -> dict:
    counter = mp.Value("l", 0)
    total = clients * requests * per_request
    print(f"[{label}] {clients} clients x {requests} requests x {per_request} statements", flush=True)
    cpu0 = server_cpu_seconds()
    with mp.Pool(clients, initializer=_init_counter, initargs=(counter,)) as pool:
        t0 = time.perf_counter()
        job = pool.map_async(
            _post_worker_entry,
            [(url, key, secret, random.randrange(1 << 30), requests, per_request) for _ in range(clients)],
        )
        while not job.ready():
            job.wait(2)
            done = counter.value
            print(f"  {done:>9,}/{total:,} statements  {done / (time.perf_counter() - t0):8.0f}/s", flush=True)
        results = job.get()
        wall = time.perf_counter() - t0
    ok = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    lat = sorted(x for r in results for x in r[3])
    out = {
        "scenario": label,
        "clients": clients,
        "statements": ok,
        "errors": errors,
        "seconds": round(wall, 2),
        "statements_per_s": round(ok / wall),
        "p50_ms": round(lat[len(lat) // 2] * 1000, 1),
        "p95_ms": round(lat[int(len(lat) * 0.95)] * 1000, 1),
    }
    cpu1 = server_cpu_seconds()
    if cpu0 is not None and cpu1 is not None and ok:
        # Less load-dependent: server CPU per statement; 2 idle cores give 2 / this statements/s.
        gunicorn_cpu, pg_cpu = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
        out["gunicorn_cpu_ms_per_statement"] = round(gunicorn_cpu * 1000 / ok, 3)
        out["postgres_cpu_ms_per_statement"] = round(pg_cpu * 1000 / ok, 3)
        out["cpu_bound_statements_per_s_on_2_idle_cores"] = round(2 / ((gunicorn_cpu + pg_cpu) / ok))
    print(f"[{label}] {json.dumps(out)}", flush=True)
    return out


_counter: Any = None


def _init_counter(counter: Any) -> None:
    global _counter
    _counter = counter


def _post_worker_entry(args: Any) -> Any:
    return _post_worker((*args[:6], _counter))


# Bulk loader ----------------------------------------------------------------------------


def _load_worker(args: tuple[str, int, int, int]) -> int:
    """Store ``count`` statements through the service layer, in batches of 1,000."""
    db_url, seed, count, client_id = args
    from lms_core import create_app
    from lms_core.extensions import db
    from lrs import statements as st

    app = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "LMS_PLUGINS": ["lrs"], "SECRET_KEY": "bench"})
    rng = random.Random(seed)
    caller = st.Caller(
        client_id,
        {"objectType": "Agent", "name": "bulk loader", "account": {"homePage": HOME, "name": "bulk"}},
        frozenset({"all"}),
    )
    done = 0
    with app.app_context():
        while done < count:
            n = min(1000, count - done)
            st.store([make_statement(rng) for _ in range(n)], caller)
            done += n
            with _counter.get_lock():
                _counter.value += n
        db.engine.dispose()
    return done


def bulk_load(db_url: str, target: int, processes: int) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM lrs_statements")).scalar_one()
    engine.dispose()
    missing = target - have
    print(f"[load] {have:,} stored, loading {max(missing, 0):,} more with {processes} processes", flush=True)
    if missing <= 0:
        return
    counter = mp.Value("l", 0)
    per = missing // processes
    shares = [per] * processes
    shares[0] += missing - per * processes
    with mp.Pool(processes, initializer=_init_counter, initargs=(counter,)) as pool:
        t0 = time.perf_counter()
        job = pool.map_async(_load_worker, [(db_url, random.randrange(1 << 30), n, 0) for n in shares])
        while not job.ready():
            job.wait(10)
            done = counter.value
            rate = done / (time.perf_counter() - t0)
            eta = (missing - done) / rate if rate else 0
            print(f"  {have + done:>10,}/{target:,} stored  {rate:7.0f}/s  eta {eta:5.0f} s", flush=True)
        job.get()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


# Queries ----------------------------------------------------------------------------------


def run_queries(url: str, key: str, secret: str, n: int) -> list[dict]:
    conn = Conn(url, key, secret)
    rng = random.Random(7)
    kinds = {
        "agent": lambda: {
            "agent": json.dumps({"account": {"homePage": HOME, "name": f"cadre{rng.randrange(N_AGENTS):05d}"}})
        },
        "verb": lambda: {"verb": rng.choice(VERBS)},
        "activity": lambda: {"activity": f"http://gbwl.example.gov.cn/lesson/{rng.randrange(N_LESSONS)}"},
        "related_activities": lambda: {
            "activity": f"http://gbwl.example.gov.cn/course/{rng.randrange(N_COURSES)}",
            "related_activities": "true",
        },
        "related_agents": lambda: {
            "agent": json.dumps({"account": {"homePage": HOME, "name": f"teacher{rng.randrange(N_COURSES):03d}"}}),
            "related_agents": "true",
        },
        "agent+verb": lambda: {
            "agent": json.dumps({"account": {"homePage": HOME, "name": f"cadre{rng.randrange(N_AGENTS):05d}"}}),
            "verb": rng.choice(VERBS),
        },
    }
    out = []
    # Warm-up (not measured): every gunicorn worker creates its app and connections on
    # its first requests; the figures are for a running server.
    for make in kinds.values():
        for _ in range(10):
            conn.request("GET", "/statements?" + urllib.parse.urlencode({**make(), "limit": "100"}))
    for kind, make in kinds.items():
        times, counts, errors = [], [], 0
        for i in range(n):
            params = {**make(), "limit": "100"}
            t0 = time.perf_counter()
            status, body = conn.request("GET", "/statements?" + urllib.parse.urlencode(params))
            times.append(time.perf_counter() - t0)
            if status != 200:
                errors += 1
            else:
                counts.append(len(json.loads(body)["statements"]))
            if (i + 1) % 100 == 0:
                print(f"  [query {kind}] {i + 1}/{n}", flush=True)
        times.sort()
        res = {
            "query": kind,
            "n": n,
            "errors": errors,
            "p50_ms": round(times[n // 2] * 1000, 1),
            "p95_ms": round(times[int(n * 0.95)] * 1000, 1),
            "max_ms": round(times[-1] * 1000, 1),
            "mean_results": round(statistics.mean(counts), 1) if counts else 0,
        }
        print(f"[query] {json.dumps(res)}", flush=True)
        out.append(res)
    return out


# Orchestration -----------------------------------------------------------------------------


def start_stack(
    workers: int, threads: int, port: int, worker_class: str
) -> tuple[Any, str, subprocess.Popen, str, str]:
    from tests import pgcluster

    print("[setup] starting PostgreSQL (fsync on)", flush=True)
    cluster = pgcluster.start(
        extra_conf={
            "max_connections": "200",
            "shared_buffers": "1GB",
            "work_mem": "16MB",
            "checkpoint_timeout": "15min",
            "max_wal_size": "4GB",
        }
    )
    db_url = cluster.create_database("lrs_bench")
    env = {
        **os.environ,
        "FLASK_APP": "lrs",
        "LMS_DATABASE_URL": db_url,
        "LMS_PLUGINS": "lrs",
        "LMS_SECRET_KEY": "bench-secret",
    }
    print("[setup] migrating", flush=True)
    subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade", "heads"], env=env, check=True, cwd=REPO, capture_output=True
    )
    out = subprocess.run(
        [sys.executable, "-m", "flask", "lms", "lrs", "client", "create", "--name", "bench", "--scopes", "all"],
        env=env,
        check=True,
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout
    key = out.split("key: ")[1].split()[0]
    secret = out.split("secret: ")[1].split()[0]
    print(f"[setup] gunicorn: {worker_class} {workers} workers x {threads} threads on 127.0.0.1:{port}", flush=True)
    gunicorn = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:lrs.gunicorn_conf",
            "-k",
            worker_class,
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "lrs:create_app()",
        ],
        env=env,
        cwd=REPO,
    )
    _SERVER_ROOTS.append(gunicorn.pid)
    _SERVER_ROOTS.append(int((cluster.datadir / "postmaster.pid").read_text().split()[0]))
    for _ in range(100):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/xapi/about")
            if c.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.2)
    return cluster, db_url, gunicorn, key, secret


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url")
    p.add_argument("--key")
    p.add_argument("--secret")
    p.add_argument("--db-url", help="database of --url, needed by the bulk loader")
    p.add_argument("--scenarios", default="batch,single,load,query")
    p.add_argument("--stored", type=int, default=1_000_000)
    p.add_argument("--batch-clients", type=int, default=4)
    p.add_argument("--batches", type=int, default=100, help="batches of 100 per client")
    p.add_argument("--single-clients", type=int, default=8)
    p.add_argument("--singles", type=int, default=400, help="single statements per client")
    p.add_argument("--queries", type=int, default=200, help="queries per kind")
    p.add_argument("--load-processes", type=int, default=2)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--worker-class", default="gthread", choices=("gthread", "sync"))
    p.add_argument("--port", type=int, default=8799)
    p.add_argument("--keep", action="store_true", help="leave the started stack running")
    args = p.parse_args()
    scenarios = args.scenarios.split(",")
    cluster = gunicorn = None
    if args.url:
        url, key, secret, db_url = args.url, args.key, args.secret, args.db_url
    else:
        cluster, db_url, gunicorn, key, secret = start_stack(args.workers, args.threads, args.port, args.worker_class)
        url = f"http://127.0.0.1:{args.port}/xapi"
        print(f"[setup] LRS {url} key {key} secret {secret} db {db_url}", flush=True)
    results: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores",
        "load_average_at_start": os.getloadavg(),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    try:
        if "batch" in scenarios:
            results["batch"] = run_posts(url, key, secret, args.batch_clients, args.batches, 100, "batch")
        if "single" in scenarios:
            results["single"] = run_posts(url, key, secret, args.single_clients, args.singles, 1, "single")
        if "load" in scenarios:
            bulk_load(db_url, args.stored, args.load_processes)
        if "query" in scenarios:
            results["query"] = run_queries(url, key, secret, args.queries)
    finally:
        print(json.dumps(results, indent=2, ensure_ascii=False), flush=True)
        if not args.keep:
            if gunicorn is not None:
                gunicorn.send_signal(signal.SIGTERM)
                gunicorn.wait(30)
            if cluster is not None:
                import shutil

                cluster.stop()
                shutil.rmtree(cluster.datadir.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
