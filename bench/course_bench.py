#!/usr/bin/env python3
"""Benchmark of issue 3: the course page and the catalogue search at city scale.

Steps (each prints progress):

1. a throwaway PostgreSQL cluster (``tests/pgcluster.py``, fsync on), migrated;
2. 100,000 users and 5,000 org units (``bench/seed_large.py``), 1,000 published
   courses of 5 lessons with 3 assigned to the whole city (300,000 enrolments);
3. 1,000,000 ``lesson_progress`` rows (``COPY``): every learner has progress on
   10 lessons, with a mix of statuses, coverage and credited segments;
4. gunicorn on 127.0.0.1 (``LMS_INLINE_JOBS=0``), 16 learners signed in;
5. ``GET /courses/<assigned course>`` (the heaviest course page: enrolled,
   progress per lesson, the course progress bar), then ``GET /courses/?q=...``
   (catalogue search with a title filter over 1,000 courses), each for a fixed
   duration, printing pages/s, p50/p95/p99 and CPU per page.

    .venv/bin/python bench/course_bench.py
    .venv/bin/python bench/course_bench.py --duration 10 --json /tmp/course.json

Target (issue 3): at least 300 pages/s with p95 at most 100 ms for both.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO)]

import common  # noqa: E402 - bench/ is a folder of scripts, not a package
import dashboard_bench  # noqa: E402
import seed_large  # noqa: E402
from common import step  # noqa: E402

SEARCH = "学习贯彻专题第1"  # matches 111 of the 1,000 bench course titles


def seed_progress(url: str, rows: int = 1_000_000) -> int:
    """``rows`` lesson_progress rows: each learner gets progress on the first lessons of the assigned courses
    and then of other courses, so the course pages the benchmark reads have realistic per-user data."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    rng = random.Random(3)
    with psycopg.connect(plain) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM users WHERE username LIKE 'bench0%' ORDER BY id")
        users = [r[0] for r in cur.fetchall()]
        cur.execute(
            "SELECT l.id, l.course_id FROM lessons l JOIN courses c ON c.id = l.course_id "
            "ORDER BY c.required DESC, c.id, l.position LIMIT 10"
        )
        lessons = cur.fetchall()
        per_user = max(1, rows // max(len(users), 1))
        lessons = lessons[:per_user]
        bar = seed_large.Progress("lesson progress", len(users) * len(lessons))
        now = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime())
        with cur.copy(
            "COPY lesson_progress (user_id, lesson_id, course_id, position_ms, credited_segments, "
            "coverage_bp, read_ms, status, completed_at, updated_at) FROM STDIN"
        ) as copy:
            for uid in users:
                for lesson_id, course_id in lessons:
                    done = rng.random() < 0.4
                    read_ms = 60_000 if done else rng.randrange(0, 60_000)
                    copy.write_row(
                        (
                            uid,
                            lesson_id,
                            course_id,
                            read_ms,
                            "[]",
                            0,
                            read_ms,
                            "completed" if done else "in_progress",
                            now if done else None,
                            now,
                        )
                    )
                    bar.step()
        conn.commit()
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("ANALYZE lesson_progress")
    return len(users) * len(lessons)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--units", type=int, default=5_000)
    parser.add_argument("--courses", type=int, default=1_000)
    parser.add_argument("--progress-rows", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help="gunicorn worker processes (as many as cores: see dashboard_bench.py)",
    )
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)

    cluster = common.start_postgres()
    server: subprocess.Popen[bytes] | None = None
    try:
        url = cluster.create_database("lms_bench")
        env = common.app_env(url)
        common.upgrade(env)
        started = time.monotonic()
        step(f"seeding {args.users:,} users, {args.units:,} units, {args.courses:,} courses")
        counts = seed_large.seed(url, users=args.users, units=args.units)
        counts.update(seed_large.seed_study(url, courses=args.courses, assigned=3))
        step(f"seeding {args.progress_rows:,} lesson progress rows")
        counts["lesson_progress"] = seed_progress(url, args.progress_rows)
        print(f"   {counts} in {time.monotonic() - started:.1f}s", file=sys.stderr)
        seed_large.settle(url)

        server, port = common.start_gunicorn(
            env, workers=args.workers, worker_class=args.worker_class, threads=args.threads
        )  # TCP_NODELAY, as in dashboard_bench
        base = f"http://127.0.0.1:{port}"
        clients = dashboard_bench.sign_in(base, users=args.users, clients=args.clients)
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            course_id = conn.execute("SELECT id FROM courses WHERE code = 'BC000'").fetchone()[0]  # type: ignore[index]
        meter = dashboard_bench.CpuMeter(server.pid, common.postmaster_pid(cluster))
        out: dict[str, object] = {"seeded": counts, "settings": {k: v for k, v in vars(args).items() if k != "json"}}
        step(f"GET /courses/{course_id} (course page) with {args.clients} clients")
        out["course_page"] = dashboard_bench.measure_page(
            clients,
            base,
            f"/courses/{course_id}",
            meter,
            duration=args.duration,
            warmup=args.warmup,
            expect=b'id="course-progress"',
        )
        step(f"GET /courses/?q={SEARCH} (catalogue search)")
        out["catalogue_search"] = dashboard_bench.measure_page(
            clients,
            base,
            f"/courses/?q={quote(SEARCH)}",
            meter,
            duration=args.duration,
            warmup=args.warmup,
            expect=b"course-card",
        )
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(out, fh, indent=2)
        return 0 if out["course_page"]["target_met"] and out["catalogue_search"]["target_met"] else 1  # type: ignore[index]
    finally:
        dashboard_bench.teardown(server, cluster)


if __name__ == "__main__":
    sys.exit(main())
