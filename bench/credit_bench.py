"""Credit bank benchmark (issue 9): batch posting, single transfers from 8 clients, queries, replay.

Runs against a throwaway PostgreSQL cluster (``tests/pgcluster.py``, fsync on), migrated with
the ``credit_bank`` branch:

1. **batch posting**: ``ledger.submit`` with batches of ``--batch`` independent transfers (one
   commit per batch) into ``--users`` counted accounts;
2. **single transfers**: ``--clients`` processes, each calling ``ledger.submit`` with one transfer
   per commit for ``--duration`` seconds, a share of them (``--hot-share``) on 3 hot accounts;
   transfers/s and latency percentiles of each call (the service API, not HTTP);
3. **journal seeding** to ``--stored`` rows by ``INSERT ... SELECT`` (setup, not measured), then
   **balance and progress** queries (``queries.year_summary`` + ``queries.progress``) for random
   cadres, p50/p95/p99;
4. **replay**: ``ledger.replay_check`` over the whole journal, with the cache compared.

Prints the figures and a JSON summary (``--json FILE``). Keep the defaults on a shared machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO)]

from tests import pgcluster  # noqa: E402

SECRET = "bench-secret-not-for-production"  # noqa: S105
YEAR = 2026


def step(msg: str) -> None:
    print(f"== {msg}", file=sys.stderr, flush=True)


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
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


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


def batch_posting(url: str, total: int, batch: int, users: int) -> dict[str, float]:
    from lms_core.extensions import db
    from plugins.credit_bank import ledger as L

    app = make_app(url)
    rng = random.Random(1)
    with app.app_context():
        L.submit([[spec("warm", 1, 1)]])
        started = time.perf_counter()
        done = 0
        while done < total:
            n = min(batch, total - done)
            groups = [[spec(f"batch:{done + i}", rng.randrange(1, users + 1), rng.randint(1, 400))] for i in range(n)]
            res = L.submit(groups)
            assert all(r == [L.CREATED] for r in res)
            done += n
            print(f"   batch posting: {done:,}/{total:,}", file=sys.stderr, end="\r")
        elapsed = time.perf_counter() - started
        db.engine.dispose()
    print(file=sys.stderr)
    return {"transfers": total, "seconds": round(elapsed, 2), "per_second": round(total / elapsed)}


def _single_client(args: tuple[str, int, float, int, float]) -> list[float]:
    url, client, duration, users, hot_share = args
    from lms_core.extensions import db
    from plugins.credit_bank import ledger as L

    app = make_app(url)
    rng = random.Random(100 + client)
    lat: list[float] = []
    with app.app_context():
        L.submit([[spec(f"single-warm:{client}", 1, 1)]])
        end = time.perf_counter() + duration
        i = 0
        while time.perf_counter() < end:
            user = rng.randrange(1, 4) if rng.random() < hot_share else rng.randrange(4, users + 1)
            s = spec(f"single:{client}:{i}", user, rng.randint(1, 400))
            t0 = time.perf_counter()
            res = L.submit([[s]])
            lat.append(time.perf_counter() - t0)
            assert res == [[L.CREATED]], res
            i += 1
        db.engine.dispose()
    return lat


def single_transfers(url: str, clients: int, duration: float, users: int, hot_share: float) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(clients) as pool:
        started = time.perf_counter()
        results = pool.map(_single_client, [(url, c, duration, users, hot_share) for c in range(clients)])
        wall = time.perf_counter() - started
    lat = [x for r in results for x in r]
    # Throughput over the measured window (each client ran ``duration``; start-up excluded).
    return {
        "clients": clients,
        "transfers": len(lat),
        "per_second": round(len(lat) / duration),
        "p50_ms": round(pct(lat, 50) * 1000, 2),
        "p95_ms": round(pct(lat, 95) * 1000, 2),
        "p99_ms": round(pct(lat, 99) * 1000, 2),
        "max_ms": round(max(lat) * 1000, 2),
        "wall_with_startup_s": round(wall, 1),
    }


def seed_journal(url: str, stored: int, users: int) -> dict[str, float]:
    """Bring the journal to ``stored`` rows with consistent account caches (setup)."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    with psycopg.connect(plain, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM credit_transfers").fetchone()[0]  # type: ignore[index]
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
        chunk = 250_000
        start = have
        while start < stored:
            n = min(chunk, stored - start)
            conn.execute(
                "INSERT INTO credit_transfers (id, ledger_id, debit_account_id, credit_account_id, amount, flags, "
                "code, effective_date, user_id, body_hash, recorded_at) "
                "SELECT md5('seed' || g)::uuid::text, 1, %s, a.id, 100 + g %% 400, 0, 'course_complete', "
                "date '2026-01-01' + (g %% 300)::int, a.owner_id, md5(g::text) || md5(g::text), now() "
                "FROM generate_series(%s::bigint, %s::bigint) g JOIN credit_accounts a "
                "ON a.kind = 'counted' AND a.ledger_id = 1 AND a.period = %s AND a.owner_id = (g %% %s) + 1",
                (issuer, start + 1, start + n, YEAR, users),
            )
            start += n
            print(f"   seeding journal: {start:,}/{stored:,}", file=sys.stderr, end="\r")
        print(file=sys.stderr)
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


def queries_bench(url: str, users: int, n: int) -> dict[str, float]:
    from lms_core.extensions import db
    from plugins.credit_bank import queries

    app = make_app(url)
    rng = random.Random(7)
    lat: list[float] = []
    with app.app_context():
        for i in range(n + 50):
            uid = rng.randrange(4, users + 1)
            person = SimpleNamespace(id=uid, rank_band="township", party_member=True, position="科员")
            t0 = time.perf_counter()
            queries.year_summary(uid, YEAR)
            queries.progress(person, YEAR)
            elapsed = time.perf_counter() - t0
            db.session.rollback()
            if i >= 50:  # warm-up
                lat.append(elapsed)
        db.engine.dispose()
    return {
        "queries": n,
        "p50_ms": round(pct(lat, 50) * 1000, 2),
        "p95_ms": round(pct(lat, 95) * 1000, 2),
        "p99_ms": round(pct(lat, 99) * 1000, 2),
        "mean_ms": round(statistics.mean(lat) * 1000, 2),
    }


def replay_bench(url: str) -> dict[str, float]:
    from lms_core.extensions import db
    from plugins.credit_bank import ledger as L

    app = make_app(url)
    with app.app_context():
        rows = db.session.execute(db.text("SELECT count(*) FROM credit_transfers")).scalar_one()
        t0 = time.perf_counter()
        checked, mismatches = L.replay_check(progress=lambda k: None)
        elapsed = time.perf_counter() - t0
        db.engine.dispose()
    return {"transfers": rows, "accounts": checked, "mismatches": len(mismatches), "seconds": round(elapsed, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--batch-total", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--hot-share", type=float, default=0.2)
    parser.add_argument("--stored", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument(
        "--only-stored", action="store_true", help="skip the posting parts: seed, then queries and replay"
    )
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)

    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    step("starting a throwaway PostgreSQL cluster (fsync on)")
    cluster = pgcluster.start()
    out: dict[str, Any] = {"settings": vars(args), "machine": {"cpus": os.cpu_count()}}
    try:
        url = cluster.create_database("credit_bench")
        env = dict(
            os.environ, FLASK_APP="lms_core", LMS_DATABASE_URL=url, LMS_SECRET_KEY=SECRET, LMS_PLUGINS="credit_bank"
        )
        step("flask db upgrade heads")
        subprocess.run(
            [str(Path(sys.executable).parent / "flask"), "db", "upgrade", "heads"],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        if not args.only_stored:
            step(f"batch posting: {args.batch_total:,} transfers in batches of {args.batch:,}")
            out["batch_posting"] = batch_posting(url, args.batch_total, args.batch, args.users)
            print(f"   {out['batch_posting']}", file=sys.stderr)
            step(
                f"single transfers: {args.clients} client processes for {args.duration:.0f} s, "
                f"{args.hot_share:.0%} on 3 hot accounts"
            )
            out["single_transfers"] = single_transfers(url, args.clients, args.duration, args.users, args.hot_share)
            print(f"   {out['single_transfers']}", file=sys.stderr)
        else:  # the issuer account the seed debits
            from plugins.credit_bank import ledger as L

            app = make_app(url)
            with app.app_context():
                L.submit([[spec("warm", 1, 1)]])
        step(f"seeding the journal to {args.stored:,} rows (setup)")
        out["seed"] = seed_journal(url, args.stored, args.users)
        print(f"   {out['seed']}", file=sys.stderr)
        step(f"balance + progress for {args.queries} random cadres")
        out["queries"] = queries_bench(url, args.users, args.queries)
        print(f"   {out['queries']}", file=sys.stderr)
        step("replay of the whole journal")
        out["replay"] = replay_bench(url)
        print(f"   {out['replay']}", file=sys.stderr)
    finally:
        cluster.stop()
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
