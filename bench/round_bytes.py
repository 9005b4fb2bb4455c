#!/usr/bin/env python3
"""The bytes a round's statements send, parameter by parameter, per beat (issue 8, wire).

Runs the group path in process (``beat_split.group_split``: rounds of ``--people`` learners at the
10 s cadence, plugin on, document lesson) on a throwaway cluster, wraps psycopg's ``Cursor.execute``
and ``RawCursor.execute`` and counts, for each of the rounds' four statements (the core's read and
write, the plugin's read and write), the bytes of each parameter as sent (text, UTF-8), then prints
them per beat. ``BENCH_TICK=1`` (``beat_split``): every ``utcnow`` call a distinct instant, as on a
running server (under the frozen time alone a round's beats share one)::

    BENCH_TICK=1 nice -n 19 .venv/bin/python bench/round_bytes.py --people 15 [--dump FILE]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

import beat_split  # noqa: E402 - bench/ is a folder of scripts, not a package
import common  # noqa: E402
import seed_large  # noqa: E402

#: The rounds' statements, by how their text starts.
KINDS = {
    "WITH s AS": "core write",
    "WITH b AS": "plugin write",
    "SELECT s.id": "core read",
    "SELECT st.day": "plugin read",
}


def _kind(sql: str) -> str | None:
    return next((name for start, name in KINDS.items() if sql.startswith(start)), None)


def _size(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bytes):
        return len(value)
    return len(str(value).encode())


def capture(url: str, pg_pid: int, people: int) -> dict[str, Any]:
    import psycopg

    bytes_by: dict[tuple[str, str], int] = collections.Counter()
    calls: dict[str, int] = collections.Counter()
    beats_by: dict[str, int] = collections.Counter()
    samples: dict[tuple[str, str], str] = {}
    last: dict[str, dict[str, Any]] = {}
    original = {cls: cls.execute for cls in (psycopg.Cursor, psycopg.RawCursor)}

    from plugins.anti_idle import state_pg

    plugin_execute = state_pg.execute
    numbered: dict[str, tuple[str, ...]] = {}

    def named_execute(sql: str, params: dict[str, Any], **kw: Any) -> Any:
        # The plugin's round write is numbered (``state_pg._numbered``): keep its names.
        if kw.get("names") is not None:
            numbered[sql] = kw["names"]
        return plugin_execute(sql, params, **kw)

    def wrap(cls: Any) -> Any:
        def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            kind = _kind(query) if isinstance(query, str) else None
            if kind is not None and params:
                items0 = params.items() if isinstance(params, dict) else ()
                arrays = [v for n, v in items0 if str(n).endswith(("_ord", "_ids")) and isinstance(v, str)]
                if isinstance(params, dict) and max((v.count(",") + 1 for v in arrays), default=1) != people:
                    kind = None  # a first beat's or a short round's statement: only the full rounds count
            if kind is not None and params:
                calls[kind] += 1
                if isinstance(params, dict):
                    items = list(params.items())
                else:
                    items = list(zip(numbered.get(query, range(1, len(params) + 1)), params, strict=True))
                last[kind] = {str(name): value for name, value in items}
                # The beats of this execution: its longest ``*_ord`` / ``*_ids`` array (one-beat reads: 1).
                arrays = [v for n, v in items if str(n).endswith(("_ord", "_ids")) and isinstance(v, str)]
                beats_by[kind] += max((v.count(",") + 1 for v in arrays if v != "{}"), default=1)
                for name, value in items:
                    bytes_by[kind, str(name)] += _size(value)
                    samples.setdefault((kind, str(name)), str(value)[:90])
            return original[cls](self, query, params, **kw)

        return execute

    state_pg.execute = named_execute  # type: ignore[assignment]
    for cls in original:
        cls.execute = wrap(cls)  # type: ignore[method-assign]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            beat_split.group_split(url, pg_pid, people, 4, 3, 1, False, 1, 10.0)
    finally:
        state_pg.execute = plugin_execute  # type: ignore[assignment]
        for cls, fn in original.items():
            cls.execute = fn  # type: ignore[method-assign]
    return {"beats": beats_by, "last": last, "bytes": bytes_by, "calls": calls, "samples": samples}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=15)
    parser.add_argument("--dump", help="write the last round's parameters of each statement to this JSON file")
    args = parser.parse_args(argv)
    cluster = common.start_postgres(shared_preload_libraries="pg_stat_statements")
    try:
        url = cluster.create_database("lms_bench")
        cluster.psql("CREATE EXTENSION pg_stat_statements", "lms_bench")
        common.upgrade(common.app_env(url, "anti_idle"))
        seed_large.seed(url, users=max(200, 3 * args.people * 4 + 2), units=200)
        seed_large.seed_study(url, courses=1, assigned=1)
        seed_large.settle(url)
        got = capture(url, common.postmaster_pid(cluster), args.people)
    finally:
        common.stop_postgres(cluster)
    if args.dump:
        Path(args.dump).write_text(json.dumps(got["last"], indent=1, default=str))
    print(f"rounds of {args.people}; statements {dict(got['calls'])}; bytes of each parameter a beat (a statement's")
    print("bytes over its executions, divided by the beats they carried):")
    for kind in KINDS.values():
        beats = got["beats"][kind] or 1
        rows = sorted(((n, b) for (k, n), b in got["bytes"].items() if k == kind), key=lambda r: -r[1])
        print(f"  {kind}: {sum(b for _, b in rows) / beats:.0f} B a beat ({got['beats'][kind]} beats)")
        for name, b in rows:
            print(f"      {name:22s} {b / beats:7.1f}   {got['samples'][kind, name]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
