"""gunicorn settings for profiling the transfer API under ``credit_bench.py --profile DIR``.

Every thread of a worker (the request threads and the group-commit writer) gets its own
``cProfile.Profile`` on its first Python call (``threading.setprofile`` runs in each new
thread, and ``Profile.enable`` then replaces it for that thread), timed in the thread's CPU
time: on a loaded machine wall time is mostly waiting for a core. SQL statements sent
through psycopg (SQLAlchemy's and the raw ones) and requests served are counted. On exit
the worker writes ``DIR/worker-<pid>.pstats`` (all threads merged) and
``DIR/worker-<pid>.json``.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import threading
import time
from pathlib import Path
from typing import Any

from lrs.gunicorn_conf import when_ready  # noqa: F401 - TCP_NODELAY, as in the plain run

worker_class = "gthread"
_profiles: list[cProfile.Profile] = []
_counts = {"requests": 0, "statements": 0}


def _start(*_: Any) -> None:
    prof = cProfile.Profile(time.thread_time)
    _profiles.append(prof)
    prof.enable()  # replaces this hook for the thread


def post_fork(server: Any, worker: Any) -> None:
    import psycopg

    when_ready(server)
    # Counted at the driver: the group commit sends most statements on the raw connection,
    # past SQLAlchemy's events. A COPY counts as one; COMMIT is not counted.
    for name in ("execute", "copy"):
        original = getattr(psycopg.Cursor, name)

        def counted(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            _counts["statements"] += 1
            return _original(self, *args, **kwargs)

        setattr(psycopg.Cursor, name, counted)
    threading.setprofile(_start)


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    _counts["requests"] += 1


def worker_exit(server: Any, worker: Any) -> None:
    out = Path(os.environ["CREDIT_BENCH_PROFILE"])
    stats: pstats.Stats | None = None
    for prof in _profiles:
        prof.create_stats()
        if not getattr(prof, "stats", None):
            continue
        if stats is None:
            stats = pstats.Stats(prof)
        else:
            stats.add(prof)
    if stats is not None:
        stats.dump_stats(str(out / f"worker-{os.getpid()}.pstats"))
    (out / f"worker-{os.getpid()}.json").write_text(json.dumps(_counts))
