"""Credit bank benchmark (issue 9): batch posting, the transfer API from 8 clients, queries, replay.

Runs against a throwaway PostgreSQL cluster (``common.start_postgres``, fsync and synchronous
commit on; its data directory is deleted at the end), migrated with the ``credit_bank``
branch. Each figure is printed with its target:

1. **batch posting**: ``ledger.create_transfers`` with batches of ``--batch`` independent
   transfers (one transaction each) into ``--users`` counted accounts; transfers/s, SQL
   statements per transfer, client and server CPU per transfer;
2. **single transfers over HTTP**: gunicorn (``--workers`` x ``--threads``, gthread) serving
   ``POST /api/v1/credit/transfers`` with a Bearer token; ``--clients`` lean client processes
   (a plain socket, keep-alive, one transfer per request), started together on a barrier,
   ``--warmup`` seconds unmeasured then ``--duration`` seconds measured, a share
   (``--hot-share``) on 3 hot accounts; transfers/s, latency percentiles as the client sees
   them, and the CPU of gunicorn and PostgreSQL per transfer over the measured window. The
   server (``common.start_gunicorn``: TCP_NODELAY) posts through its group commit;
3. **Merkle log** of the journal seeded to ``--merkle-rows`` rows: logging (``sync_journal``,
   for information), then the log check of ``credit replay`` (rows re-hashed, stored nodes
   recomputed, checkpoint roots checked) in rows/s, and 200 inclusion proofs from stored nodes;
4. **replay** of the journal seeded to ``--replay-rows`` rows (``ledger.replay_check``, then
   the daily snapshots' check), wall time and CPU;
5. **balance and progress** queries (``queries.read``, then ``year_summary`` and ``progress``
   from it, as the credit page does) for random cadres with the journal seeded to ``--stored``
   rows, today and as of ``--as-of`` (from the daily snapshots), balance and progress alone,
   and the JSON API (``parts=balances,progress``, today and as of; the whole answer with the
   year's statement): p50/p95/p99, SQL statements, CPU per answer in the app and PostgreSQL.

``--keep DIR`` keeps the seeded cluster: the first run seeds ``--stored`` rows and builds the
snapshots (about 12 minutes), later runs only start it and measure the queries (about 2).

Seeding is setup, not measured, and does not go through the service: ``INSERT ... SELECT
FROM generate_series`` in one session with ``session_replication_role = replica`` (the
journal's FK and same-ledger triggers skipped; the rows are consistent by construction), then
the account sums set from one aggregate pass, so replay finds no mismatch.

Prints the figures and a JSON summary (``--json FILE``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO)]

import common  # noqa: E402
from common import SECRET, step  # noqa: E402

YEAR = 2026


def make_app(url: str) -> Any:
    from lms_core import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": SECRET,
            "LMS_PLUGINS": ["credit_bank"],
            "LMS_XAPI_ENABLED": False,
            "LMS_INLINE_JOBS": False,
        }
    )


def pct(values: list[float], p: float) -> float:
    return common.percentile(sorted(values), p)


def spec(key: str, user: int, amount: int) -> Any:
    from plugins.credit_bank import ledger as L

    return L.TransferSpec(
        id=L.transfer_id(key),
        code="course_complete",
        effective_date=dt.date(YEAR, 5, 1),
        amount=amount,
        debit=L.issuer("WL_XS"),
        credit=L.counted("WL_XS", user, YEAR),
        user_id=user,
    )


#: CPU seconds of the cluster, reaped backends included (bench/common).
pg_cpu_seconds = common.postgres_cpu_seconds


def batch_posting(url: str, cluster: Any, total: int, batch: int, users: int) -> dict[str, Any]:
    import psycopg

    from lms_core.extensions import db
    from plugins.credit_bank import ledger as L

    app = make_app(url)
    rng = random.Random(1)
    with app.app_context():
        # Accounts exist already in production; create them first so the figure is posting only.
        L.create_transfers([spec(f"open:{u}", u, 1) for u in range(1, users + 1)])
        # Counted at the driver (the ledger sends its statements on the raw psycopg connection,
        # past SQLAlchemy's events); the commits are counted too.
        statements = [0]
        original_execute, original_commit = psycopg.Cursor.execute, psycopg.Connection.commit

        def execute(self: Any, *a: Any, **kw: Any) -> Any:
            statements[0] += 1
            return original_execute(self, *a, **kw)

        def commit(self: Any) -> None:
            statements[0] += 1
            original_commit(self)

        psycopg.Cursor.execute, psycopg.Connection.commit = execute, commit  # type: ignore[method-assign]
        # The requests are built first (a client's work, not the ledger's).
        batches = [
            [
                spec(f"batch:{k + i}", rng.randrange(1, users + 1), rng.randint(1, 400))
                for i in range(min(batch, total - k))
            ]
            for k in range(0, total, batch)
        ]
        cpu0, pg0 = time.process_time(), pg_cpu_seconds(cluster)
        started = time.perf_counter()
        done = 0
        for items in batches:
            n = len(items)
            res = L.create_transfers(items)
            assert all(r.result == L.OK for r in res), res[:3]
            done += n
            print(f"   batch posting: {done:,}/{total:,}", file=sys.stderr, end="\r")
        elapsed = time.perf_counter() - started
        cpu, pg = time.process_time() - cpu0, pg_cpu_seconds(cluster) - pg0
        psycopg.Cursor.execute, psycopg.Connection.commit = original_execute, original_commit  # type: ignore[method-assign]
        db.engine.dispose()
    print(file=sys.stderr)
    return {
        "transfers": total,
        "batch": batch,
        "seconds": round(elapsed, 2),
        "per_second": round(total / elapsed),
        "statements_per_transfer": round(statements[0] / total, 4),
        "statements_per_batch": round(statements[0] / -(-total // batch), 1),
        "client_cpu_us_per_transfer": round(cpu / total * 1e6, 1),
        "server_cpu_us_per_transfer": round(pg / total * 1e6, 1),
        "cpu_us_per_transfer": round((cpu + pg) / total * 1e6, 1),
        # One poster waits for each batch's commit: client and server CPU add up, one core's
        # worth at a time. The rate on an idle machine is at most this (a CPU-bound estimate).
        "cpu_bound_per_second": round(total / (cpu + pg)),
        "load_average": os.getloadavg(),
    }


def _http_client(args: tuple[int, str, int, float, int, float, float, Any]) -> tuple[list[float], float]:
    """One lean client: one keep-alive connection, one transfer per request. Once every
    client and the parent have reached ``barrier`` (spawning and imports take seconds on a
    loaded machine), it posts for ``warmup`` seconds unmeasured (each server thread's first
    requests fill SQLAlchemy's and Babel's caches), then measures for ``duration`` seconds.
    Returns the measured latencies and the client's own CPU seconds over the measured part.

    HTTP/1.1 over a plain socket: the request written in one ``sendall``, the answer read up
    to its ``Content-Length``. The load generator shares the 2 cores with the server and
    PostgreSQL; ``http.client`` cost it 0.39-0.41 ms of CPU per request, this about a third."""
    import socket

    from plugins.credit_bank import ledger as L

    port, token, client, duration, users, hot_share, warmup, barrier = args
    rng = random.Random(100 + client)
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = (
        f"POST /api/v1/credit/transfers HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: "
    ).encode()
    lat: list[float] = []
    barrier.wait()  # all clients start together
    start_at = time.time() + warmup
    end = time.perf_counter() + warmup + duration
    i = 0
    cpu0: float | None = None
    while time.perf_counter() < end:
        user = rng.randrange(1, 4) if rng.random() < hot_share else rng.randrange(4, users + 1)
        body = json.dumps(
            {
                "id": L.transfer_id(f"http:{client}:{i}"),
                "code": "course_complete",
                "effective_date": f"{YEAR}-05-01",
                "amount": rng.randint(1, 400),
                "debit_account": "WL_XS/issuer/1/0",
                "credit_account": f"WL_XS/counted/{user}/{YEAR}",
                "user_id": user,
            }
        ).encode()
        t0 = time.perf_counter()
        sock.sendall(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status, payload = _read_answer(sock)
        if time.time() >= start_at:
            lat.append(time.perf_counter() - t0)
            if cpu0 is None:
                cpu0 = time.process_time()
        assert status == 201, (status, payload[:300])
        i += 1
    cpu = time.process_time() - (cpu0 or 0.0) if cpu0 is not None else 0.0
    sock.close()
    return lat, cpu


def _read_answer(sock: Any) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 answer with a Content-Length (what the API sends)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = (x.partition(b":") for x in lines[1:])
    length = next(int(v) for k, _, v in fields if k.strip().lower() == b"content-length")
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        body += chunk
    return int(lines[0].split()[1]), body


def start_uwsgi(env: dict[str, str], *, workers: int, threads: int) -> tuple[Any, int]:
    """uWSGI serving the app over HTTP/1.1 with keep-alive (``--http11-socket``), requests
    parsed in C; ``workers`` processes of ``threads`` threads, each loading the app after the
    fork (``--lazy-apps``: the group commit's writer thread and the database pool are per
    process)."""
    import subprocess

    port = common.free_port()
    cmd = [str(common.BIN / "uwsgi"), "--http11-socket", f"127.0.0.1:{port}", "--tcp-nodelay"]
    cmd += ["--master", "--processes", str(workers), "--threads", str(threads), "--lazy-apps"]
    cmd += ["--enable-threads", "--die-on-term", "--disable-logging", "--need-app", "--buffer-size", "16384"]
    cmd += ["--so-keepalive", "--wsgi-file", str(BENCH_DIR / "credit_wsgi.py"), "--chdir", str(REPO)]
    common.step(" ".join(cmd[1:]))
    proc = subprocess.Popen(cmd, env=dict(env), cwd=REPO, stdout=subprocess.DEVNULL)  # noqa: S603 - our venv's uwsgi
    try:
        common.wait_for_http(port, proc)
    except BaseException:
        common.stop_server(proc)
        raise
    return proc, port


def _site_token(url: str) -> str:
    """A site admin with a read-write token granted the transfer scope (setup)."""
    from lms_core.accounts import services as accounts
    from lms_core.accounts.models import Role, TokenScope
    from lms_core.extensions import db
    from lms_core.orgs.models import OrgKind
    from lms_core.orgs.services import create_unit
    from plugins.credit_bank.models import SCOPE_TRANSFERS, TokenScopeGrant

    app = make_app(url)
    with app.app_context():
        unit = create_unit(code="bench", name="bench", kind=OrgKind.CITY, parent=None, emit_event=False)
        user = accounts.create_user(username="bench_admin", full_name="bench", org_unit=unit, password="Bench-pass-1")
        accounts.grant_role(None, user, Role.SITE_ADMIN, unit)
        token, plain = accounts.create_token(user, "bench", scope=TokenScope.READ_WRITE)
        db.session.add(TokenScopeGrant(token_id=token.id, scope=SCOPE_TRANSFERS))
        db.session.commit()
        db.engine.dispose()
    return plain


def http_transfers(
    url: str,
    cluster: Any,
    clients: int,
    duration: float,
    users: int,
    hot_share: float,
    workers: int,
    threads: int,
    warmup: float = 3.0,
    profile: str | None = None,
    server_kind: str = "gunicorn",
) -> dict[str, Any]:

    token = _site_token(url)
    env = common.app_env(url, "credit_bank", LMS_XAPI_ENABLED="0")
    # lrs/gunicorn_conf.py (common's default) sets TCP_NODELAY: without it a keep-alive
    # client waits for Nagle + delayed ACK (~40 ms) on every answer.
    config = "python:lrs.gunicorn_conf"
    if profile:  # cProfile in every worker thread, SQL statements counted (credit_profile_conf.py)
        Path(profile).mkdir(parents=True, exist_ok=True)
        env["CREDIT_BENCH_PROFILE"] = str(Path(profile).resolve())
        config = str(BENCH_DIR / "credit_profile_conf.py")
    if server_kind == "uwsgi":
        server, port = start_uwsgi(env, workers=workers, threads=threads)
    else:
        server, port = common.start_gunicorn(
            env, workers=workers, worker_class="gthread", threads=threads, config=config
        )
    try:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Manager() as manager, ctx.Pool(clients) as pool:
            barrier = manager.Barrier(clients + 1)
            job = pool.map_async(
                _http_client,
                [(port, token, c, duration, users, hot_share, warmup, barrier) for c in range(clients)],
                chunksize=1,
            )
            barrier.wait(timeout=300)
            time.sleep(warmup)
            cpu0, pg0 = common.tree_cpu_seconds(server.pid), pg_cpu_seconds(cluster)
            time.sleep(duration)
            cpu, pg = common.tree_cpu_seconds(server.pid) - cpu0, pg_cpu_seconds(cluster) - pg0
            results = job.get()
    finally:
        common.stop_server(server)
    lat = [x for r, _cpu in results for x in r]
    client_cpu = sum(c for _r, c in results)
    out = {
        "clients": clients,
        "server": f"{server_kind} {workers} workers x {threads} threads",
        "transfers": len(lat),
        "per_second": round(len(lat) / duration),
        "p50_ms": round(pct(lat, 50) * 1000, 2),
        "p95_ms": round(pct(lat, 95) * 1000, 2),
        "p99_ms": round(pct(lat, 99) * 1000, 2),
        "max_ms": round(max(lat) * 1000, 2),
        "app_cpu_us_per_transfer": round(cpu / len(lat) * 1e6, 1),
        "server_cpu_us_per_transfer": round(pg / len(lat) * 1e6, 1),
        "load_generator_cpu_us_per_transfer": round(client_cpu / len(lat) * 1e6, 1),
        "load_average": os.getloadavg(),
    }
    if profile:  # the workers wrote their counts on exit (stop_server waited for them)
        counts = [json.loads(p.read_text()) for p in Path(profile).glob("worker-*.json")]
        served = sum(c["requests"] for c in counts)
        out["profile"] = profile
        out["sql_statements_per_request"] = round(sum(c["statements"] for c in counts) / max(served, 1), 2)
    return out


#: Secondary indexes of the journal dropped while seeding and built again after (building
#: an index over 10,000,000 rows once is far cheaper than 10,000,000 random insertions).
SEED_INDEXES = {
    "ix_credit_transfers_user_date": "CREATE INDEX ix_credit_transfers_user_date ON credit_transfers "
    "(user_id, effective_date)",
    "ix_credit_transfers_debit": "CREATE INDEX ix_credit_transfers_debit ON credit_transfers (debit_account_id, seq)",
    "ix_credit_transfers_credit": "CREATE INDEX ix_credit_transfers_credit ON credit_transfers "
    "(credit_account_id, seq)",
}


def seed_journal(url: str, stored: int, users: int) -> dict[str, float]:
    """Bring the journal to ``stored`` rows with consistent account caches (setup).

    Each row is recorded at 10:00 Beijing time on its effective date, as if posted that day:
    as-of-date queries then see part of the journal. Row ``g`` goes to cadre ``g % users`` on
    day ``(g // users) % 300`` of 2026, so each cadre's lines spread over the 300 days (the daily
    snapshots get a row per cadre and day, as a busy real journal would)."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    with psycopg.connect(plain, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM credit_transfers").fetchone()[0]  # type: ignore[index]
        if have >= stored:
            return {"rows": have, "seconds": 0.0}
        conn.execute(
            "INSERT INTO credit_accounts (ledger_id, kind, owner_id, period, flags, debits_posted, "
            "credits_posted, debits_pending, credits_pending, created_at) "
            "SELECT 1, 'counted', g, %s, 1, 0, 0, 0, 0, now() FROM generate_series(1, %s::bigint) g "
            "ON CONFLICT DO NOTHING",
            (YEAR, users),
        )
        issuer = conn.execute(
            "SELECT id FROM credit_accounts WHERE kind = 'issuer' AND ledger_id = 1 AND owner_id = 1"
        ).fetchone()[0]  # type: ignore[index]
        big = stored - have > 2_000_000
        if big:
            for name in SEED_INDEXES:
                conn.execute(f"DROP INDEX {name}")
            conn.execute("ALTER TABLE credit_transfers DROP CONSTRAINT uq_credit_transfers_id")
        # Setup only: skip the journal's same-ledger trigger (the rows below name existing
        # accounts of ledger 1 by construction).
        conn.execute("SET session_replication_role = replica")
        chunk = 500_000
        start = have
        while start < stored:
            n = min(chunk, stored - start)
            conn.execute(
                "INSERT INTO credit_transfers (id, ledger_id, debit_account_id, credit_account_id, amount, flags, "
                "code, effective_date, user_id, body_hash, recorded_at) "
                "SELECT md5('seed' || g)::uuid::text, 1, %s, a.id, 100 + g %% 400, 0, 'course_complete', "
                "date '2026-01-01' + ((g / %s) %% 300)::int, a.owner_id, md5(g::text) || md5(g::text), "
                "(date '2026-01-01' + ((g / %s) %% 300)::int + time '02:00') AT TIME ZONE 'UTC' "
                "FROM generate_series(%s::bigint, %s::bigint) g JOIN credit_accounts a "
                "ON a.kind = 'counted' AND a.ledger_id = 1 AND a.period = %s AND a.owner_id = (g %% %s) + 1",
                (issuer, users, users, start + 1, start + n, YEAR, users),
            )
            start += n
            print(f"   seeding journal: {start:,}/{stored:,}", file=sys.stderr, end="\r")
        print(file=sys.stderr)
        conn.execute("SET session_replication_role = origin")
        if big:
            print("   building the journal's indexes again", file=sys.stderr)
            conn.execute("ALTER TABLE credit_transfers ADD CONSTRAINT uq_credit_transfers_id UNIQUE (id)")
            for sql in SEED_INDEXES.values():
                conn.execute(sql)
        # One aggregate pass over the journal (a correlated sum per account is planned badly).
        conn.execute(
            "UPDATE credit_accounts a SET credits_posted = s.c FROM ("
            "SELECT credit_account_id AS id, sum(amount) AS c FROM credit_transfers WHERE flags & 5 = 0 "
            "GROUP BY credit_account_id) s WHERE a.id = s.id AND a.kind = 'counted'"
        )
        conn.execute("VACUUM (ANALYZE) credit_transfers")
        conn.execute("VACUUM (ANALYZE) credit_accounts")
        conn.execute("CHECKPOINT")
        rows = conn.execute("SELECT count(*) FROM credit_transfers").fetchone()[0]  # type: ignore[index]
    return {"rows": rows, "seconds": round(time.perf_counter() - started, 1)}


def build_snapshots(url: str, cluster: Any) -> dict[str, float]:
    """Build the daily balance snapshots of the seeded journal from scratch (timed: the first
    build over a whole journal). The seed back-dates ``recorded_at``, which the service never
    does, so snapshots built before a seed are dropped first (TRUNCATE: setup only)."""
    from lms_core.extensions import db
    from plugins.credit_bank import snapshots

    app = make_app(url)
    with app.app_context():
        db.session.execute(db.text("TRUNCATE credit_balance_days, credit_balance_builds"))
        db.session.commit()
        c0, pg0, t0 = time.process_time(), pg_cpu_seconds(cluster), time.perf_counter()
        rows = snapshots.build()
        db.session.commit()
        elapsed, pg = time.perf_counter() - t0, pg_cpu_seconds(cluster) - pg0
        cpu = time.process_time() - c0
        db.session.execute(db.text("ANALYZE credit_balance_days"))
        db.session.commit()
        db.engine.dispose()
    return {"rows": rows, "seconds": round(elapsed, 1), "app_cpu_s": round(cpu, 2), "server_cpu_s": round(pg, 1)}


def queries_bench(
    url: str, users: int, n: int, as_of: dt.date | None = None, cluster: Any = None, kind: str = "balance+progress"
) -> dict[str, Any]:
    """``n`` answers for random cadres (after 50 unmeasured): wall time percentiles, SQL
    statements, and CPU per answer in this process and (``cluster``) in PostgreSQL.

    ``kind``: ``balance`` (the figures and the year's summary, as the dashboard asks),
    ``progress`` (the requirements' progress), ``balance+progress`` (both from one reading, as
    the credit page and the API do, ``views.credit_view``)."""
    from sqlalchemy import event

    from lms_core.extensions import db
    from plugins.credit_bank import policy, queries

    app = make_app(url)
    rng = random.Random(7)
    lat: list[float] = []
    statements = [0]
    with app.app_context():
        # A deployment has its policy: store the default once (each measured call rolls back).
        policy.ensure_default()
        db.session.commit()
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1))
        cpu = pg = 0.0
        for i in range(n + 50):
            if i == 50:  # the warm-up is over
                statements[0] = 0
                cpu0, pg0 = time.process_time(), pg_cpu_seconds(cluster) if cluster else 0.0
            uid = rng.randrange(4, users + 1)
            person = SimpleNamespace(id=uid, rank_band="township", party_member=True, position="科员")
            t0 = time.perf_counter()
            reading = queries.read(uid, as_of, policy_on=queries.policy_day(YEAR, as_of))
            if kind != "progress":
                queries.year_summary(uid, YEAR, as_of, fig=reading.figures)
            if kind != "balance":
                queries.progress(person, YEAR, as_of, reading=reading)
            elapsed = time.perf_counter() - t0
            db.session.rollback()
            if i >= 50:
                lat.append(elapsed)
        cpu = time.process_time() - cpu0
        pg = pg_cpu_seconds(cluster) - pg0 if cluster else 0.0
        db.engine.dispose()
    out = {
        "kind": kind,
        "as_of": as_of.isoformat() if as_of else "today",
        "queries": n,
        "statements_per_query": round(statements[0] / n, 2),
        "client_cpu_ms_per_query": round(cpu / n * 1000, 3),
        "p50_ms": round(pct(lat, 50) * 1000, 2),
        "p95_ms": round(pct(lat, 95) * 1000, 2),
        "p99_ms": round(pct(lat, 99) * 1000, 2),
        "mean_ms": round(statistics.mean(lat) * 1000, 2),
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }
    if cluster:
        out["server_cpu_ms_per_query"] = round(pg / n * 1000, 3)
    return out


def api_cadres(url: str, count: int, users: int) -> list[tuple[int, str]]:
    """``count`` cadres of the seeded journal as platform users with a read-only API token each
    (setup: the seed names cadres by number, so users are made until their ids cover them)."""
    from sqlalchemy import func

    from lms_core.accounts import services as accounts
    from lms_core.accounts.models import TokenScope, User
    from lms_core.extensions import db
    from lms_core.orgs.models import OrgKind, OrgUnit
    from lms_core.orgs.services import create_unit

    app = make_app(url)
    out = []
    with app.app_context():
        unit = db.session.execute(db.select(OrgUnit).where(OrgUnit.code == "bench")).scalar_one_or_none()
        if unit is None:
            unit = create_unit(code="bench", name="bench", kind=OrgKind.CITY, parent=None, emit_event=False)
        have = db.session.execute(db.select(func.count()).select_from(User)).scalar_one()
        for k in range(have, count):
            accounts.create_user(username=f"cadre{k:05d}", full_name="干部", org_unit=unit, password=None)
        db.session.commit()
        for user in db.session.execute(db.select(User).order_by(User.id).limit(count)).scalars():
            if 4 <= user.id <= users:
                _token, plain = accounts.create_token(user, "bench", scope=TokenScope.READ)
                out.append((user.id, plain))
        db.session.commit()
        db.engine.dispose()
    return out


def api_bench(
    url: str, users: int, n: int, as_of: dt.date | None = None, cluster: Any = None, parts: str | None = None
) -> dict[str, Any]:
    """``GET /api/v1/me/credits?year=…[&as_of=…][&parts=…]`` in this process (the Flask app
    behind a test client, no HTTP server: what the view costs, token check included), Bearer
    tokens of 100 cadres, ``n`` requests after 50 unmeasured. Without ``parts`` the answer
    carries the balances, the progress and the year's statement (every line of the cadre's
    year: about 1,000 in the seeded journal)."""
    from sqlalchemy import event

    from lms_core.extensions import db
    from plugins.credit_bank import policy

    cadres = api_cadres(url, 104, users)
    app = make_app(url)
    with app.app_context():
        policy.ensure_default()
        db.session.commit()
    client = app.test_client()
    rng = random.Random(11)
    lat: list[float] = []
    lines = [0]
    statements = [0]
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1))
    query = f"?year={YEAR}" + (f"&as_of={as_of.isoformat()}" if as_of else "") + (f"&parts={parts}" if parts else "")
    for i in range(n + 50):
        if i == 50:
            statements[0] = 0
            cpu0, pg0 = time.process_time(), pg_cpu_seconds(cluster) if cluster else 0.0
        _uid, token = rng.choice(cadres)
        t0 = time.perf_counter()
        r = client.get("/api/v1/me/credits" + query, headers={"Authorization": f"Bearer {token}"})
        body = r.get_data()
        elapsed = time.perf_counter() - t0
        assert r.status_code == 200, (r.status_code, body[:300])
        if i >= 50:
            lat.append(elapsed)
            lines[0] += len(json.loads(body).get("statement", []))
    cpu = time.process_time() - cpu0
    pg = pg_cpu_seconds(cluster) - pg0 if cluster else 0.0
    with app.app_context():
        db.engine.dispose()
    out = {
        "kind": "api" + (f" parts={parts}" if parts else ""),
        "as_of": as_of.isoformat() if as_of else "today",
        "requests": n,
        "statement_lines_per_answer": round(lines[0] / n),
        "statements_per_request": round(statements[0] / n, 2),
        "client_cpu_ms_per_request": round(cpu / n * 1000, 3),
        "p50_ms": round(pct(lat, 50) * 1000, 2),
        "p95_ms": round(pct(lat, 95) * 1000, 2),
        "p99_ms": round(pct(lat, 99) * 1000, 2),
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }
    if cluster:
        out["server_cpu_ms_per_request"] = round(pg / n * 1000, 3)
    return out


def replay_bench(url: str, cluster: Any) -> dict[str, Any]:
    """``ledger.replay_check`` (every account's sums from the journal), then the snapshot check
    of ``credit replay`` when snapshots exist; wall time and CPU of both sides."""
    from lms_core.extensions import db
    from plugins.credit_bank import ledger as L
    from plugins.credit_bank import snapshots

    app = make_app(url)
    with app.app_context():
        rows = db.session.execute(db.text("SELECT count(*) FROM credit_transfers")).scalar_one()
        c0, pg0, t0 = time.process_time(), pg_cpu_seconds(cluster), time.perf_counter()
        checked, mismatches = L.replay_check(progress=lambda k: None)
        elapsed, pg = time.perf_counter() - t0, pg_cpu_seconds(cluster) - pg0
        cpu = time.process_time() - c0
        out: dict[str, Any] = {
            "transfers": rows,
            "accounts": checked,
            "mismatches": len(mismatches),
            "seconds": round(elapsed, 1),
            "app_cpu_s": round(cpu, 2),
            "server_cpu_s": round(pg, 1),
        }
        if snapshots.built_through() is not None:
            t0, pg0 = time.perf_counter(), pg_cpu_seconds(cluster)
            snap_rows, problems = snapshots.check()
            out["snapshot_check"] = {
                "rows": snap_rows,
                "problems": len(problems),
                "seconds": round(time.perf_counter() - t0, 1),
                "server_cpu_s": round(pg_cpu_seconds(cluster) - pg0, 1),
            }
        db.engine.dispose()
    return out


TARGETS = {
    "batch_posting": ("per_second", ">=", 5000, "transfers/s"),
    "http_transfers": ("per_second", ">=", 1000, "transfers/s"),
    "http_transfers_p99": ("p99_ms", "<=", 50, "ms"),
    "queries": ("p95_ms", "<=", 10, "ms"),
    "queries_as_of": ("p95_ms", "<=", 10, "ms"),
    "queries_balance": ("p95_ms", "<=", 10, "ms"),
    "queries_progress": ("p95_ms", "<=", 10, "ms"),
    "api": ("p95_ms", "<=", 10, "ms"),
    "api_as_of": ("p95_ms", "<=", 10, "ms"),
    "replay": ("seconds", "<=", 60, "s"),
    "merkle": ("check_rows_per_second", ">=", 100_000, "rows/s"),
}


def verdict(out: dict[str, Any]) -> list[str]:
    lines = []
    for name, (key, op, target, unit) in TARGETS.items():
        part = out.get(name.removesuffix("_p99"))
        if not part:
            continue
        value = part[key]
        ok = value >= target if op == ">=" else value <= target
        lines.append(f"{name:22} {key:12} {value:>10} {unit:12} target {op} {target:<6} {'met' if ok else 'MISSED'}")
    return lines


def merkle_bench(url: str) -> dict[str, Any]:
    """Log the journal into the Merkle log (setup: ``sync_journal``, timed for information),
    sign a checkpoint, then time the log check of ``credit replay`` (every row re-hashed,
    every stored node recomputed, every checkpoint root checked) and one transcript's worth
    of inclusion proofs from stored nodes."""
    from lms_core.extensions import db
    from plugins.credit_bank.proofs import credential as cr
    from plugins.credit_bank.transcripts import log

    app = make_app(url)
    with app.app_context():
        t0 = time.perf_counter()
        logged = log.sync_journal(batch=10_000)
        sync_s = time.perf_counter() - t0
        log.checkpoint_now()
        n = log.size(cr.JOURNAL_LOG)
        c0, t0 = time.process_time(), time.perf_counter()
        problems = log.check_logs(lambda m: None)
        check_s, check_cpu = time.perf_counter() - t0, time.process_time() - c0
        rng = random.Random(3)
        idx = [rng.randrange(n) for _ in range(200)]
        t0 = time.perf_counter()
        paths = log.stored_tree(cr.JOURNAL_LOG).inclusion_proofs(idx)
        proofs_ms = (time.perf_counter() - t0) * 1000
        assert all(len(p) <= n.bit_length() for p in paths)
        db.engine.dispose()
    return {
        "rows": n,
        "logging_rows_per_second": round(logged / sync_s) if logged else None,
        "check_seconds": round(check_s, 1),
        "check_rows_per_second": round(n / check_s),
        "check_cpu_rows_per_second": round(n / check_cpu),
        "problems": problems,
        "inclusion_proofs_200_ms": round(proofs_ms, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--batch-total", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--hot-share", type=float, default=0.2)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured requests first")
    parser.add_argument("--replay-rows", type=int, default=1_000_000)
    parser.add_argument("--merkle-rows", type=int, default=100_000, help="journal rows logged for the Merkle check")
    parser.add_argument("--stored", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--only-stored", action="store_true", help="skip the posting parts: seed, replay, queries")
    parser.add_argument("--only-http", action="store_true", help="only the single transfers over HTTP")
    parser.add_argument("--only-batch", action="store_true", help="only the batch posting (with --only-http: both)")
    parser.add_argument(
        "--server", choices=("gunicorn", "uwsgi"), default="gunicorn", help="the HTTP server of the transfer API"
    )
    parser.add_argument("--profile", metavar="DIR", help="cProfile the gunicorn workers of the HTTP part into DIR")
    parser.add_argument("--as-of", default="2026-06-30", help="past date of the as-of queries (snapshots)")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="keep the cluster in DIR: the first run seeds the journal to --stored rows and builds the "
        "snapshots, later runs reuse them and only measure the queries (delete DIR when done)",
    )
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    out: dict[str, Any] = {
        "settings": vars(args),
        "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if args.keep:
        return kept_run(args, out, began)
    cluster = common.start_postgres()  # fsync and synchronous_commit on
    # The --only-* flags add up: --only-batch --only-http runs the two posting parts.
    only = args.only_stored or args.only_http or args.only_batch
    posting_only = only and not args.only_stored
    try:
        url = cluster.create_database("credit_bench")
        common.upgrade(common.app_env(url, "credit_bank"))
        if args.only_batch or not only:
            measured(
                out,
                "batch_posting",
                f"batch posting: {args.batch_total:,} transfers in batches of {args.batch:,}",
                lambda: batch_posting(url, cluster, args.batch_total, args.batch, args.users),
            )
        if args.only_http or not only:
            measured(
                out,
                "http_transfers",
                f"single transfers over HTTP: {args.clients} clients for {args.duration:.0f} s, "
                f"{args.hot_share:.0%} on 3 hot accounts",
                lambda: http_transfers(
                    url,
                    cluster,
                    args.clients,
                    args.duration,
                    args.users,
                    args.hot_share,
                    args.workers,
                    args.threads,
                    args.warmup,
                    args.profile,
                    args.server,
                ),
            )
        if args.only_stored:  # the issuer account the seed debits
            from plugins.credit_bank import ledger as L

            app = make_app(url)
            with app.app_context():
                L.submit([[spec("warm", 1, 1)]])
        if args.merkle_rows and not posting_only:
            step(f"seeding the journal to {args.merkle_rows:,} rows (setup)")
            seed_journal(url, args.merkle_rows, args.users)
            title = f"Merkle log of {args.merkle_rows:,} journal rows: logging, then the replay check"
            measured(out, "merkle", title, lambda: merkle_bench(url))
        if not posting_only:
            seed_with_snapshots(out, url, cluster, args.replay_rows, args.users, "_replay")
            measured(out, "replay", "replay of the whole journal", lambda: replay_bench(url, cluster))
            seed_with_snapshots(out, url, cluster, args.stored, args.users)
            measure_queries(args, url, cluster, out, out["seed"]["rows"])
    finally:
        common.stop_postgres(cluster)  # the data directory goes too
    return report(args, out, began)


def measured(out: dict[str, Any], key: str, title: str, run: Callable[[], Any]) -> None:
    """One part of the run: its progress line, then its figures kept in ``out[key]`` and shown."""
    step(title)
    out[key] = run()
    print(f"   {out[key]}", file=sys.stderr)


def seed_with_snapshots(out: dict[str, Any], url: str, cluster: Any, rows: int, users: int, suffix: str = "") -> None:
    """Seed the journal to ``rows`` rows, then build its daily balance snapshots (the first build
    is measured: ``out["snapshots" + suffix]``)."""
    measured(
        out, "seed" + suffix, f"seeding the journal to {rows:,} rows (setup)", lambda: seed_journal(url, rows, users)
    )
    title = "daily balance snapshots of the whole journal (first build)"
    measured(out, "snapshots" + suffix, title, lambda: build_snapshots(url, cluster))


def report(args: argparse.Namespace, out: dict[str, Any], began: float) -> int:
    out["machine"]["load_after"] = os.getloadavg()
    out["wall_seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(out, indent=2))
    for line in verdict(out):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


def measure_queries(args: argparse.Namespace, url: str, cluster: Any, out: dict[str, Any], stored: int) -> None:
    """Every kind of credit query with ``stored`` transfers in the journal: balance + progress
    today and as of ``--as-of`` (the credit page's pair), balance alone and progress alone, then
    the JSON API with ``parts=balances,progress`` (today and as of) and the whole answer."""
    as_of = dt.date.fromisoformat(args.as_of)
    runs: list[tuple[str, str, Any]] = [
        ("queries", "balance + progress today", lambda: queries_bench(url, args.users, args.queries, None, cluster)),
        (
            "queries_as_of",
            f"balance + progress as of {as_of} (daily snapshots)",
            lambda: queries_bench(url, args.users, args.queries, as_of, cluster),
        ),
        (
            "queries_balance",
            "balance alone today",
            lambda: queries_bench(url, args.users, args.queries, None, cluster, kind="balance"),
        ),
        (
            "queries_progress",
            "progress alone today",
            lambda: queries_bench(url, args.users, args.queries, None, cluster, kind="progress"),
        ),
        (
            "api",
            "GET /api/v1/me/credits?parts=balances,progress today",
            lambda: api_bench(url, args.users, args.queries, None, cluster, parts="balances,progress"),
        ),
        (
            "api_as_of",
            f"the same as of {as_of}",
            lambda: api_bench(url, args.users, args.queries, as_of, cluster, parts="balances,progress"),
        ),
        (
            "api_full",
            "GET /api/v1/me/credits, the whole answer (with the year's statement)",
            lambda: api_bench(url, args.users, max(args.queries // 5, 20), None, cluster),
        ),
    ]
    for key, label, run in runs:
        measured(out, key, f"{label}: {stored:,} transfers stored", lambda run=run: run() | {"stored": stored})


def kept_run(args: argparse.Namespace, out: dict[str, Any], began: float) -> int:
    """``--keep DIR``: the queries only, on a cluster seeded once and kept in DIR.

    The first run seeds the journal to ``--stored`` rows and builds the daily snapshots (about
    10 minutes for 10,000,000 on a quiet machine); later runs start the kept cluster (or use it
    as it runs), migrate it and measure the queries."""
    kept = Path(args.keep).resolve()
    cluster, state = common.open_kept(kept)
    try:
        url = cluster.url("credit_bench")
        if state == "new":
            url = cluster.create_database("credit_bench")
        common.upgrade(common.app_env(url, "credit_bank"))
        if state == "new":
            from plugins.credit_bank import ledger as L

            with make_app(url).app_context():  # the issuer account the seed debits
                L.submit([[spec("warm", 1, 1)]])
            seed_with_snapshots(out, url, cluster, args.stored, args.users)
            (kept / "seeded").write_text(json.dumps({"seed": out["seed"], "snapshots": out["snapshots"]}))
        stored = json.loads((kept / "seeded").read_text())["seed"]["rows"]
        measure_queries(args, url, cluster, out, stored)
    finally:
        if state == "running":
            step(f"leaving the cluster in {kept} running, as found")
        else:
            step(f"stopping PostgreSQL (the data stays in {kept})")
            cluster._run(common.pgcluster._bin("pg_ctl"), "-D", str(cluster.datadir), "-m", "fast", "stop")
    return report(args, out, began)


if __name__ == "__main__":
    raise SystemExit(main())
