#!/usr/bin/env python3
"""Benchmark of issue 12: reports, dashboards, the log browser's queries and the annual report.

Steps (each prints progress):

1. a throwaway PostgreSQL cluster (``tests/pgcluster.py``, fsync on) and
   ``flask db upgrade heads`` with the ``lrs``, ``anti_idle`` and ``credit_bank`` plugins;
2. seed: 5,000 org units and 100,000 learners (``seed_large``), then 10,000,000
   heartbeat intervals, 1,000,000 LRS statements, 1,000,000 domain events and the
   plugins' verdicts and balances (``reports_seed``: ``generate_series`` inside
   PostgreSQL and ``COPY``), ``VACUUM (ANALYZE)``;
3. gunicorn on 127.0.0.1 (``LMS_INLINE_JOBS=0``);
4. for each page, ``--clients`` signed-in clients for ``--duration`` seconds: the
   leaders' dashboard of the city and of a county, the hours report, the event log
   filtered by unit and month and by person, a person's learning record and LRS
   statements; p50/p95/p99 per page (target: p95 <= 200 ms);
5. a filtered export streamed from the event log (a county's year, about 100,000
   rows): seconds and the serving worker's peak RSS sampled every 20 ms, against
   the same export of one township (flat memory: the peak must not grow with rows;
   target <= 10 s);
6. ``flask lms report annual`` for the city: seconds (target <= 60 s).

    .venv/bin/python bench/reports_bench.py                       # the recorded run
    .venv/bin/python bench/reports_bench.py --users 20000 --intervals 1000000 --statements 100000 --events 100000

Exit status 0 when every target is met.
"""

# ruff: noqa: S608 - the SQL below embeds unit codes read back from the benchmark's own seeded database.
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO)]

import common  # noqa: E402 - bench/ is a folder of scripts, not a package
import dashboard_bench as db_bench  # noqa: E402
import load  # noqa: E402
import reports_seed  # noqa: E402
import seed_large  # noqa: E402

from tests import pgcluster  # noqa: E402

TARGET_P95_MS = 200
TARGET_EXPORT_S = 10
TARGET_ANNUAL_S = 60
YEAR = 2026
PLATFORM = "http://bench.example"


def step(message: str) -> None:
    print(f"== {message}", file=sys.stderr, flush=True)


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakRss:
    """Samples the RSS of gunicorn's workers every 20 ms; ``peak`` is the largest seen."""

    def __init__(self, master: int) -> None:
        self.master, self.peak, self._stop = master, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in common.children(self.master):
                self.peak = max(self.peak, rss_kib(pid))
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join()


def export(base: str, client: load.Client, path: str, master: int, cluster: Any) -> dict[str, float]:
    """Stream one export to the end; seconds, rows, the workers' peak RSS during it, and the
    CPU seconds it took in the app's workers and in PostgreSQL (steadier than wall time
    on a loaded machine)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items())}
    baseline = max((rss_kib(pid) for pid in common.children(master)), default=0)
    app_cpu, pg_cpu = common.tree_cpu_seconds(master), common.postgres_cpu_seconds(cluster)
    started = time.monotonic()
    with PeakRss(master) as peak:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}")
        size = lines = 0
        first_byte = None
        while chunk := response.read(65536):
            if first_byte is None:
                first_byte = time.monotonic() - started
            size += len(chunk)
            lines += chunk.count(b"\n")
    seconds = time.monotonic() - started
    app_cpu, pg_cpu = common.tree_cpu_seconds(master) - app_cpu, common.postgres_cpu_seconds(cluster) - pg_cpu
    conn.close()
    return {
        "seconds": round(seconds, 2),
        "app_cpu_s": round(app_cpu, 2),
        "pg_cpu_s": round(pg_cpu, 2),
        "loadavg": os.getloadavg(),
        "first_byte_s": round(first_byte or seconds, 3),
        "rows": lines - 1,
        "mb": round(size / 1e6, 1),
        "rss_baseline_mb": round(baseline / 1024, 1),
        "rss_peak_mb": round(peak.peak / 1024, 1),
    }


def plain(url: str) -> str:
    """The libpq form of a SQLAlchemy URL."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def psql_one(url: str, sql: str) -> Any:
    import psycopg

    with psycopg.connect(plain(url)) as conn:
        return conn.execute(sql).fetchone()


def explain(url: str, sql: str) -> str:
    import psycopg

    with psycopg.connect(plain(url)) as conn:
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql).fetchall()
    return "\n".join(r[0] for r in rows)


def explained_queries(city_code: str, county_code: str) -> list[tuple[str, str]]:
    """Hand-written equivalents of the heaviest report queries, for ``EXPLAIN (ANALYZE, BUFFERS)``."""
    city = f"(SELECT path FROM org_units WHERE code = '{city_code}')"
    county = f"(SELECT path FROM org_units WHERE code = '{county_code}')"
    return [
        (
            "dashboard: monthly trend of the city (learning_daily_totals)",
            "SELECT extract(month FROM d.day), sum(d.credited_ms), count(DISTINCT d.user_id) "
            "FROM learning_daily_totals d JOIN users u ON u.id = d.user_id JOIN org_units o ON o.id = u.org_unit_id "
            f"WHERE d.day >= '{YEAR}-01-01' AND d.day < '{YEAR + 1}-01-01' AND o.path LIKE {city} || '%' GROUP BY 1",
        ),
        (
            "dashboard: hours per cadre of each county",
            "SELECT g.id, sum(d.credited_ms) FROM org_units g JOIN org_units o ON o.path LIKE g.path || '%' "
            "JOIN users u ON u.org_unit_id = o.id JOIN learning_daily_totals d ON d.user_id = u.id "
            f"WHERE g.parent_id = (SELECT id FROM org_units WHERE code = '{city_code}') "
            f"AND d.day >= '{YEAR}-01-01' AND d.day < '{YEAR + 1}-01-01' GROUP BY g.id",
        ),
        (
            "dashboard: anti-idle time taken by rule in the city",
            "SELECT e.rule, e.action, sum(e.amount_ms) FROM anti_idle_evidence e WHERE e.user_id IN "
            f"(SELECT u.id FROM users u JOIN org_units o ON o.id = u.org_unit_id WHERE o.path LIKE {city} || '%') "
            f"AND e.day >= '{YEAR}-01-01' AND e.day < '{YEAR + 1}-01-01' GROUP BY 1, 2",
        ),
        (
            "event log: one county, one month, newest first (first page)",
            "SELECT e.* FROM event_log e JOIN org_units o ON o.id = e.org_unit_id "
            f"WHERE o.path LIKE {county} || '%' AND e.created_at >= '{YEAR}-02-28 16:00+00' "
            f"AND e.created_at < '{YEAR}-03-31 16:00+00' ORDER BY e.created_at DESC, e.id DESC LIMIT 50",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--units", type=int, default=5_000)
    parser.add_argument("--intervals", type=int, default=10_000_000)
    parser.add_argument("--statements", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per page")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--explain", metavar="FILE", help="write EXPLAIN ANALYZE of the main queries here")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="keep the seeded cluster in DIR (seeded once, reused by later runs; delete DIR when done)",
    )
    parser.add_argument("--seed-only", action="store_true", help="stop after seeding (with --keep)")
    parser.add_argument("--only", default="", help="measure only the pages whose label contains this text")
    parser.add_argument("--skip-annual", action="store_true")
    parser.add_argument("--skip-export", action="store_true")
    args = parser.parse_args(argv)

    kept = Path(args.keep) if args.keep else None
    reuse = kept is not None and (kept / "seeded").exists()
    running = reuse and (kept / "data" / "postmaster.pid").exists()  # type: ignore[operator]
    if running:
        # Already serving (e.g. shared with another engineer's runs): used as is, left running.
        step(f"using the kept cluster already running in {kept}")
        cluster = attach(kept)  # type: ignore[arg-type]
    elif reuse:
        step(f"restarting the kept cluster in {kept}")
        cluster = reopen(kept)  # type: ignore[arg-type]
    else:
        step("starting a PostgreSQL cluster" + (f" in {kept}" if kept else " (throwaway)"))
        if kept:
            kept.mkdir(parents=True, exist_ok=True)
        cluster = pgcluster.start(kept)
    results: dict[str, object] = {}
    try:
        url = cluster.url("lms_reports_bench") if reuse else cluster.create_database("lms_reports_bench")
        env = dict(
            os.environ,
            FLASK_APP="lms_core",
            LMS_DATABASE_URL=url,
            LMS_SECRET_KEY=common.SECRET,
            LMS_PLUGINS="lrs,anti_idle,credit_bank",
            LMS_INLINE_JOBS="0",
            LMS_SESSION_COOKIE_SECURE="0",
            LMS_PLATFORM_URL=PLATFORM,
        )
        bindir = Path(sys.executable).parent
        step("flask db upgrade heads")
        subprocess.run([str(bindir / "flask"), "db", "upgrade", "heads"], env=env, cwd=REPO, check=True)

        if not reuse:
            results["seeded"] = seed_all(args, url)
            if kept:
                (kept / "seeded").write_text(json.dumps(results["seeded"]))
        if args.seed_only:
            return 0
        # What a worker does every few minutes in production (lms_core/reports/monthly.py): timed.
        step("flask lms report refresh (the hours rollup)")
        began = time.monotonic()
        subprocess.run([str(bindir / "flask"), "lms", "report", "refresh"], env=env, cwd=REPO, check=True)
        results["rollup_refresh_s"] = round(time.monotonic() - began, 1)
        return measure(args, url, cluster, results, env, bindir)
    finally:
        if running:
            step(f"leaving the cluster in {kept} running, as found")
        elif kept:
            step(f"stopping PostgreSQL (the data stays in {kept})")
            # A clean shutdown (pgcluster's stop is immediate): the next start needs no recovery.
            cluster._run(pgcluster._bin("pg_ctl"), "-D", str(cluster.datadir), "-m", "fast", "-w", "stop", check=False)
        else:
            db_bench.teardown(None, cluster)


def reopen(base: Path) -> pgcluster.Cluster:
    """Start a cluster kept by an earlier ``--keep`` run (on a fresh free port)."""
    datadir = base / "data"
    with open(datadir / "postgresql.auto.conf", "a") as fh:
        port = common.free_port()
        fh.write(f"port = {port}\n")
    cluster = pgcluster.Cluster(datadir, base / "sock", port, os.geteuid() == 0)
    cluster._run(pgcluster._bin("pg_ctl"), "-D", str(datadir), "-l", str(base / "server.log"), "-w", "start")
    return cluster


def attach(base: Path) -> pgcluster.Cluster:
    """A kept cluster that is already running (its port read from postmaster.pid)."""
    datadir = base / "data"
    port = int((datadir / "postmaster.pid").read_text().splitlines()[3])
    return pgcluster.Cluster(datadir, base / "sock", port, os.geteuid() == 0)


def seed_all(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Every seeded table of the benchmark, then VACUUM (ANALYZE)."""
    seeded: dict[str, int] = {}
    started = time.monotonic()
    step(f"seeding {args.users:,} users and {args.units:,} org units")
    seeded.update(seed_large.seed(url, users=args.users, units=args.units))
    seeded.update(seed_large.seed_study(url, courses=20, assigned=3))
    import psycopg

    with psycopg.connect(plain(url)) as conn:
        step(f"seeding {args.intervals:,} heartbeat intervals (generate_series in PostgreSQL)")
        seeded.update(reports_seed.seed_intervals(conn, intervals=args.intervals, year=YEAR))
        step(f"seeding {args.events:,} domain events")
        seeded.update(reports_seed.seed_events(conn, events=args.events, year=YEAR))
        step(f"seeding {args.statements:,} LRS statements (COPY)")
        seeded.update(reports_seed.seed_statements(conn, statements=args.statements, year=YEAR, platform=PLATFORM))
        step("anti-idle verdicts and credit balances")
        seeded.update(reports_seed.seed_plugins(conn, year=YEAR))
    seed_s = round(time.monotonic() - started, 1)
    print(f"   seeded {seeded} in {seed_s}s", file=sys.stderr)
    step("VACUUM (ANALYZE)")
    seed_large.settle(url)
    return {**seeded, "seconds": seed_s}


def measure(
    args: argparse.Namespace, url: str, cluster: Any, results: dict[str, Any], env: dict[str, str], bindir: Path
) -> int:
    """Serve the seeded database with gunicorn and time the pages, the exports and the annual report."""
    ok = True
    server: subprocess.Popen[bytes] | None = None
    try:
        city_code = str(psql_one(url, "SELECT code FROM org_units WHERE parent_id IS NULL ORDER BY id LIMIT 1")[0])
        county = psql_one(
            url,
            "SELECT c.code, c.id FROM org_units c JOIN org_units p ON p.id = c.parent_id "
            "WHERE p.parent_id IS NULL AND c.kind = 'county' ORDER BY c.code LIMIT 1",
        )
        township = psql_one(
            url,
            f"SELECT code FROM org_units WHERE parent_id = {int(county[1])} AND kind = 'township' "
            "ORDER BY code LIMIT 1",
        )
        learner = psql_one(url, "SELECT id, username FROM users WHERE username = 'bench000123'")
        import psycopg

        with psycopg.connect(plain(url)) as conn:  # the review queue's rows (once per kept cluster)
            results["held_days"] = reports_seed.seed_held(conn)["held_days"]

        port = common.free_port()
        cmd = [
            str(bindir / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
            "--keep-alive",
            "30",
            "--timeout",
            "300",
            "-c",
            "python:lrs.gunicorn_conf",
            "lms_core:create_app()",
        ]
        step(" ".join(cmd[1:]))
        server = subprocess.Popen(cmd, env=env, cwd=REPO)  # noqa: S603 - our own venv's gunicorn
        master = server.pid
        common.wait_for_http(port, server)
        base = f"http://127.0.0.1:{port}"

        admin_clients = []
        for _ in range(args.clients):
            c = load.Client(base)
            c.login("bench_admin", seed_large.PASSWORD)
            admin_clients.append(c)
        county_clients = []
        for _ in range(args.clients):
            c = load.Client(base)
            c.login("bench_county00", seed_large.PASSWORD)
            county_clients.append(c)

        pages = [
            ("dashboard, city (site admin)", admin_clients, f"/reports/dashboard?year={YEAR}&org={city_code}"),
            ("dashboard, county (county admin)", county_clients, f"/reports/dashboard?year={YEAR}"),
            ("hours per unit and month, county", county_clients, f"/reports/hours?year={YEAR}"),
            (
                "event log: county, one month",
                county_clients,
                f"/audit/events?org={county[0]}&from={YEAR}-03-01&to={YEAR}-03-31",
            ),
            ("event log: one person", admin_clients, f"/audit/events?username={learner[1]}"),
            ("a person's learning record", admin_clients, f"/audit/users/{learner[0]}/learning"),
            ("a person's LRS statements", admin_clients, f"/lrs/learners/{learner[0]}/statements"),
            (
                "study sessions: county, one month",
                county_clients,
                f"/audit/sessions?from={YEAR}-03-01&to={YEAR}-03-31",
            ),
            ("LRS statements: county", county_clients, "/lrs/statements"),
            ("review queue: county", county_clients, "/anti-idle/review"),
        ]
        measured = {}
        for label, clients, path in pages:
            if args.only and args.only not in label:
                continue
            step(f"{label}: GET {path} with {len(clients)} clients for {args.duration:g}s")
            cpu: dict[str, float] = {}

            def cpu_mark(key: str, cpu: dict[str, float] = cpu) -> None:
                cpu[f"app_{key}"] = common.tree_cpu_seconds(master)
                cpu[f"pg_{key}"] = common.postgres_cpu_seconds(cluster)

            result = load.run(
                clients,
                path,
                duration=args.duration,
                warmup=args.warmup,
                expect_text=b'id="nav-toggle"',
                url=base + path,
                on_measure_start=lambda: cpu_mark("0"),
                on_measure_end=lambda: cpu_mark("1"),
            )
            print(load.report(result))
            # CPU per request (app workers; PostgreSQL, every backend of the cluster): steadier
            # than latency on a shared, loaded machine.
            n = max(result.requests, 1)
            app_cpu_ms = round(1000 * (cpu["app_1"] - cpu["app_0"]) / n, 1)
            pg_cpu_ms = round(1000 * (cpu["pg_1"] - cpu["pg_0"]) / n, 1)
            print(f"CPU per request: app {app_cpu_ms} ms, PostgreSQL {pg_cpu_ms} ms; load {os.getloadavg()}")
            good = result.errors == 0 and result.p95_ms <= TARGET_P95_MS
            ok &= good
            measured[label] = {
                "path": path,
                "requests": result.requests,
                "errors": result.errors,
                "p50_ms": result.p50_ms,
                "p95_ms": result.p95_ms,
                "p99_ms": result.p99_ms,
                "app_cpu_ms_per_request": app_cpu_ms,
                "pg_cpu_ms_per_request": pg_cpu_ms,
                "loadavg": os.getloadavg(),
                "target_met": good,
            }
        results["pages"] = measured

        exports: dict[str, Any] = {}
        for label, path in (
            ()
            if args.skip_export
            else (
                ("one township, the year", f"/audit/events.csv?org={township[0]}&from={YEAR}-01-01&to={YEAR}-12-31"),
                ("one county, the year", f"/audit/events.csv?org={county[0]}&from={YEAR}-01-01&to={YEAR}-12-31"),
            )
        ):
            step(f"export {label}: {path}")
            figures = export(base, admin_clients[0], path, server.pid, cluster)
            print(f"   {figures}", file=sys.stderr)
            exports[label] = figures
        if exports:
            big = exports["one county, the year"]
            flat = big["rss_peak_mb"] <= exports["one township, the year"]["rss_peak_mb"] + 20
            export_ok = big["seconds"] <= TARGET_EXPORT_S and flat
            ok &= export_ok
            results["exports"] = {**exports, "flat_memory": flat, "target_met": export_ok}
        if not args.skip_annual:
            ok &= annual(results, env, bindir, cluster, city_code)

        if args.explain:
            with open(args.explain, "w") as fh:
                for title, sql in explained_queries(city_code, county[0]):
                    fh.write(f"-- {title}\n{sql}\n\n{explain(url, sql)}\n\n")
            step(f"EXPLAIN ANALYZE written to {args.explain}")

        results["loadavg"] = os.getloadavg()
        print(json.dumps(results, indent=2, ensure_ascii=False))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False))
        return 0 if ok else 1
    finally:
        common.stop_server(server)


def annual(results: dict[str, Any], env: dict[str, str], bindir: Path, cluster: Any, city_code: str) -> bool:
    """``flask lms report annual`` of the city, timed: as it runs by default (from the rollups
    rebuilt at the start of this run, minutes ago, as the report page reads them), then with
    ``--refresh`` (rebuilding every rollup first). The target is judged on the first."""
    out = Path(cluster.datadir.parent) / "annual.pdf"
    figures: dict[str, Any] = {}
    for label, extra in (("seconds", []), ("seconds_with_refresh", ["--refresh"])):
        cmd = ["lms", "report", "annual", "--org", city_code, "--year", str(YEAR), "-o", str(out), *extra]
        step("flask " + " ".join(cmd))
        began, cpu = time.monotonic(), common.postgres_cpu_seconds(cluster)
        own = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([str(bindir / "flask"), *cmd], env=env, cwd=REPO, check=True)
        figures[label] = round(time.monotonic() - began, 1)
        done = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command's own CPU (waited for)
        figures[label.replace("seconds", "cli_cpu_s")] = round(
            done.ru_utime + done.ru_stime - own.ru_utime - own.ru_stime, 1
        )
        figures[label.replace("seconds", "pg_cpu_s")] = round(common.postgres_cpu_seconds(cluster) - cpu, 1)
        figures[label.replace("seconds", "loadavg")] = os.getloadavg()
        print(f"   annual report of the city{' ' + extra[0] if extra else ''}: {figures[label]}s", file=sys.stderr)
    annual_ok = figures["seconds"] <= TARGET_ANNUAL_S
    results["annual"] = {**figures, "pdf_kib": out.stat().st_size // 1024, "target_met": annual_ok}
    return annual_ok


if __name__ == "__main__":
    sys.exit(main())
