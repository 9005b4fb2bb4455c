"""The transfer API's lean path in one process, without HTTP: CPU per request, app and PostgreSQL.

``--threads`` threads call the app's WSGI entry (``transfer_fast.LeanTransfers`` in front of
Flask) with ready-made requests from a Bearer token that the view already allowed, so every
measured request takes the lean path and the group commit; each transfer credits one of
``--users`` counted accounts. Prints the process's CPU per request (request threads and the
writer), PostgreSQL's, and requests/s. With ``--profile FILE`` the writer and request
threads are profiled in their own CPU time (``time.thread_time``) and the stats written to
FILE. gunicorn's own cost is the difference with ``credit_bench.py --only-http``.

    nice .venv/bin/python bench/credit_api_inprocess.py --threads 8 --requests 3000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

import common  # noqa: E402
import credit_bench  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--profile", metavar="FILE")
    args = parser.parse_args(argv)
    cluster = common.start_postgres()
    try:
        url = cluster.create_database("credit_api")
        common.upgrade(common.app_env(url, "credit_bank"))
        token = credit_bench._site_token(url)
        app = credit_bench.make_app(url)
        from plugins.credit_bank import group_commit
        from plugins.credit_bank import ledger as L

        statuses: list[str] = []

        def call(key: str, user: int) -> None:
            body = json.dumps(
                {
                    "id": L.transfer_id(key),
                    "code": "course_complete",
                    "effective_date": f"{credit_bench.YEAR}-05-01",
                    "amount": 5,
                    "debit_account": "WL_XS/issuer/1/0",
                    "credit_account": f"WL_XS/counted/{user}/{credit_bench.YEAR}",
                    "user_id": user,
                }
            ).encode()
            environ = {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": "/api/v1/credit/transfers",
                "SCRIPT_NAME": "",
                "QUERY_STRING": "",
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "80",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "REMOTE_ADDR": "127.0.0.1",
                "CONTENT_TYPE": "application/json",
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_AUTHORIZATION": f"Bearer {token}",
                "wsgi.input": io.BytesIO(body),
                "wsgi.errors": sys.stderr,
                "wsgi.url_scheme": "http",
                "wsgi.version": (1, 0),
                "wsgi.multithread": True,
                "wsgi.multiprocess": False,
                "wsgi.run_once": False,
            }
            b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))

        # The view allows the token (fills the cache); every account exists before measuring.
        for u in range(1, args.users + 1):
            call(f"warm:{u}", u)
        group_commit.stop(app)
        profiles: list[cProfile.Profile] = []
        if args.profile:

            def start(*_: Any) -> None:
                prof = cProfile.Profile(time.thread_time)
                profiles.append(prof)
                prof.enable()

            threading.setprofile(start)
        per_thread = args.requests // args.threads

        def run(t: int) -> None:
            for i in range(per_thread):
                call(f"run:{t}:{i}", 1 + (t * 7919 + i) % args.users)

        threads = [threading.Thread(target=run, args=(t,)) for t in range(args.threads)]
        cpu0, pg0, t0 = time.process_time(), common.postgres_cpu_seconds(cluster), time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        n = per_thread * args.threads
        cpu, pg, wall = time.process_time() - cpu0, common.postgres_cpu_seconds(cluster) - pg0, time.perf_counter() - t0
        group_commit.stop(app)
        threading.setprofile(None)  # type: ignore[arg-type]
        if profiles:
            stats = pstats.Stats(profiles[0])
            for prof in profiles[1:]:
                stats.add(prof)
            stats.dump_stats(args.profile)
        bad = [s for s in statuses if not s.startswith("201")]
        out = {
            "threads": args.threads,
            "requests": n,
            "app_cpu_us_per_request": round(cpu / n * 1e6, 1),
            "postgres_cpu_us_per_request": round(pg / n * 1e6, 1),
            "per_second": round(n / wall),
            "not_201": len(bad),
            "load_average": os.getloadavg(),
        }
        print(json.dumps(out))
        return 1 if bad else 0
    finally:
        common.stop_postgres(cluster)


if __name__ == "__main__":
    raise SystemExit(main())
