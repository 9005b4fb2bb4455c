#!/usr/bin/env python3
"""Where a report page's time goes: SQL, Python and the template, per page and per chart.

Runs in-process against a seeded database (``bench/reports_bench.py --keep DIR``
leaves one): the app is built as gunicorn would build it, a site admin and a county
admin sign in through the test client, and each page is fetched ``--rounds`` times
after one warm-up. For every request it sums the time spent inside the database
driver (SQLAlchemy cursor events), inside template rendering (Flask's
``before_render_template`` / ``template_rendered`` signals) and the rest (Python:
the views, the chart code, the roll-up). Then each dashboard chart is built on its
own, with the same split, so the slow one is named.

    .venv/bin/python bench/reports_profile.py --url postgresql+psycopg://postgres@/lms_reports_bench?host=/tmp/reports-bench/sock&port=PORT

Prints wall and process CPU per request (median of the rounds), so a figure taken
on a busy machine can be read against one taken on a quiet one.
"""

# ruff: noqa: S608 - the only SQL built here reads the benchmark's own seeded codes.
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO)]

import common  # noqa: E402 - bench/ is a folder of scripts, not a package
import seed_large  # noqa: E402

YEAR = 2026
MARCH = f"from={YEAR}-03-01&to={YEAR}-03-31"


class Meter:
    """Seconds inside the database driver and inside template rendering, and statements run."""

    def __init__(self, app: Any, engine: Any) -> None:
        from flask import before_render_template, template_rendered
        from sqlalchemy import event

        self.sql = self.template = 0.0
        self.statements = 0
        #: (SQL, parameters) of every statement since ``reset``, for ``--explain``.
        self.seen: list[tuple[str, Any]] = []
        self._sql_began: list[float] = []
        self._tpl_began: list[float] = []

        @event.listens_for(engine, "before_cursor_execute")
        def _before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_a: Any) -> None:
            self.seen.append((statement, parameters))
            self._sql_began.append(time.perf_counter())

        @event.listens_for(engine, "after_cursor_execute")
        def _after(*_a: Any, **_k: Any) -> None:
            self.sql += time.perf_counter() - self._sql_began.pop()
            self.statements += 1

        def _tpl_before(*_a: Any, **_k: Any) -> None:
            self._tpl_began.append(time.perf_counter())

        def _tpl_after(*_a: Any, **_k: Any) -> None:
            # Nested templates (includes, imports) are rendered inside the outer one.
            began = self._tpl_began.pop()
            if not self._tpl_began:
                self.template += time.perf_counter() - began

        before_render_template.connect(_tpl_before, app, weak=False)
        template_rendered.connect(_tpl_after, app, weak=False)

    def reset(self) -> None:
        self.sql = self.template = 0.0
        self.statements = 0
        self.seen = []


def line(label: str, row: dict[str, float]) -> str:
    figures = " ".join(f"{row[k]:>8}" for k in ("wall_ms", "cpu_ms", "sql_ms", "template_ms", "python_ms"))
    return f"{label:42} {figures} {row['statements']:>6}"


def measure(meter: Meter, call: Any, rounds: int) -> dict[str, float]:
    """Median wall, CPU, SQL, template and Python milliseconds of ``call()`` over ``rounds`` (one warm-up)."""
    call()
    samples = []
    for _ in range(rounds):
        meter.reset()
        w0, c0 = time.perf_counter(), time.process_time()
        call()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        samples.append((wall, cpu, meter.sql, meter.template, meter.statements))

    def med(i: int) -> float:
        return round(1000 * statistics.median(s[i] for s in samples), 1)

    wall, sql, tpl = med(0), med(2), med(3)
    return {
        "wall_ms": wall,
        "cpu_ms": med(1),
        "sql_ms": sql,
        "template_ms": tpl,
        "python_ms": round(wall - sql - tpl, 1),
        "statements": int(statistics.median(s[4] for s in samples)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the seeded database")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help="pages whose label contains this text")
    parser.add_argument("--no-refresh", action="store_true", help="do not rebuild the rollups first")
    parser.add_argument(
        "--explain", metavar="FILE", help="write EXPLAIN (ANALYZE, BUFFERS) of every statement of each page here"
    )
    parser.add_argument(
        "--cprofile",
        type=int,
        default=0,
        metavar="N",
        help="print cProfile's top N per page (CPU, --rounds calls)",
    )
    args = parser.parse_args(argv)

    os.environ.update(
        LMS_DATABASE_URL=args.url,
        LMS_SECRET_KEY=common.SECRET,
        LMS_PLUGINS="lrs,anti_idle,credit_bank",
        LMS_INLINE_JOBS="0",
        LMS_SESSION_COOKIE_SECURE="0",
        LMS_WTF_CSRF_ENABLED="0",
    )
    from lms_core import create_app
    from lms_core.extensions import db

    app = create_app()
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        from sqlalchemy import text

        if not args.no_refresh:
            from lms_core.reports import monthly

            began = time.monotonic()
            monthly.refresh()
            db.session.commit()
            print(f"rollups rebuilt in {time.monotonic() - began:.1f}s", file=sys.stderr)
        city = db.session.execute(text("SELECT code FROM org_units WHERE parent_id IS NULL ORDER BY id")).scalar()
        county = db.session.execute(
            text(
                "SELECT c.code FROM org_units c JOIN org_units p ON p.id = c.parent_id "
                "WHERE p.parent_id IS NULL AND c.kind = 'county' ORDER BY c.code LIMIT 1"
            )
        ).scalar()
        learner_id, learner = db.session.execute(
            text("SELECT id, username FROM users WHERE username = 'bench000123'")
        ).one()
        meter = Meter(app, db.engine)

    # The pages of bench/reports_bench.py, as the same users.
    pages = [
        # Next to nothing of its own: what every report page pays (sign-in, nav, base template).
        ("reports index, county (shared work)", "bench_county00", "/reports/"),
        ("dashboard, city (site admin)", "bench_admin", f"/reports/dashboard?year={YEAR}&org={city}"),
        ("dashboard, county (county admin)", "bench_county00", f"/reports/dashboard?year={YEAR}"),
        ("hours per unit and month, county", "bench_county00", f"/reports/hours?year={YEAR}"),
        ("event log: county, one month", "bench_county00", f"/audit/events?org={county}&{MARCH}"),
        ("event log: one person", "bench_admin", f"/audit/events?username={learner}"),
        ("a person's learning record", "bench_admin", f"/audit/users/{learner_id}/learning"),
        ("a person's LRS statements", "bench_admin", f"/lrs/learners/{learner_id}/statements"),
        ("study sessions: county, one month", "bench_county00", f"/audit/sessions?{MARCH}"),
        ("LRS statements: county", "bench_county00", "/lrs/statements"),
        ("review queue: county", "bench_county00", "/anti-idle/review"),
    ]
    print(f"load average before: {os.getloadavg()}")
    print(f"{'page':42} {'wall':>8} {'cpu':>8} {'sql':>8} {'tmpl':>8} {'python':>8} {'stmts':>6}")
    for label, user, path in pages:
        if args.only and args.only not in label:
            continue
        client = app.test_client()
        response = client.post("/login", data={"username": user, "password": seed_large.PASSWORD})
        if response.status_code not in (302, 303):
            raise SystemExit(f"login as {user} failed: {response.status_code}")

        def get(client: Any = client, path: str = path) -> None:
            response = client.get(path)
            if response.status_code != 200:
                raise SystemExit(f"{path}: HTTP {response.status_code}")

        row = measure(meter, get, args.rounds)
        print(line(label, row))
        if args.cprofile:
            import cProfile
            import pstats

            # CPU time, not wall: on a shared machine wall time is mostly waiting for a core.
            profiler = cProfile.Profile(time.process_time)
            for _ in range(args.rounds):
                profiler.runcall(get)
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(args.cprofile)
            stats.sort_stats("tottime").print_stats(args.cprofile)
        if args.explain:
            explain_page(app, meter, get, label, args.explain)
        if "dashboard" in label:
            charts_of(app, meter, user, path, args.rounds)
    print(f"load average after: {os.getloadavg()}")
    return 0


def explain_page(app: Any, meter: Meter, get: Any, label: str, path: str) -> None:
    """Fetch the page once more, then EXPLAIN (ANALYZE, BUFFERS) each SELECT it ran, appended to ``path``."""
    from lms_core.extensions import db

    meter.reset()
    get()
    selects = [(sql, params) for sql, params in meter.seen if sql.lstrip().upper().startswith("SELECT")]
    with app.app_context(), db.engine.connect() as conn, open(path, "a") as out:
        out.write(f"==== {label}: {len(selects)} SELECTs\n\n")
        for sql, params in selects:
            plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).scalars().all()
            out.write(sql + "\n\n" + "\n".join(plan) + "\n\n")
        conn.rollback()


def charts_of(app: Any, meter: Meter, username: str, path: str, rounds: int) -> None:
    """Each chart of the dashboard at ``path`` on its own (same scope as the page)."""
    from flask_login import login_user
    from sqlalchemy import select

    from lms_core.accounts.models import User
    from lms_core.extensions import db
    from lms_core.pluginhost import get_plugin_manager
    from lms_core.reports import charts as core

    with app.test_request_context(path):
        login_user(db.session.execute(select(User).where(User.username == username)).scalar_one())
        from lms_core.reports.views import _chart_scope

        scope = _chart_scope()
        builders: list[tuple[str, Any]] = [
            (name, lambda f=f: f(scope))
            for name, f in (
                ("completion", core.completion_rates),
                ("monthly", core.monthly_trend),
                ("units", core.unit_comparison),
                ("feedback", core.worst_feedback),
            )
        ]
        for impl in get_plugin_manager().hook.lms_report_charts.get_hookimpls():
            builders.append((f"plugin {impl.plugin_name}", lambda impl=impl: impl.function(scope=scope)))
        for name, build in builders:
            row = measure(meter, build, rounds)
            print(line(f"   chart {name}", row))


if __name__ == "__main__":
    sys.exit(main())
