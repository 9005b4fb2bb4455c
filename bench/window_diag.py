"""Where an open-loop window's CPU goes, by process kind, thread and statement (issue 8, cadence).

``anti_idle_bench.py --only ingest`` with ``BENCH_DIAG=1`` takes a :func:`snapshot` as its
measured window opens and another as it closes, and prints :func:`report` of the two: the
PostgreSQL cluster's CPU per beat by process kind (backends, autovacuum, checkpointer, WAL
writer...; the ended processes as one figure), the WAL written (records, full-page images,
bytes per beat), the tables' updates (HOT or not) and vacuums, each statement's mean time,
rows and buffers per call, and each gunicorn worker's CPU per beat by thread (the event loop,
the writer). All reads are short (``/proc`` and the statistics views), as the window's
callback must be.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from common import children

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(path: Path) -> tuple[str, list[str]] | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    name, rest = text.split(" (", 1)[1].rsplit(")", 1)
    return name, rest.split()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _kind(cmd: str) -> str:
    # "postgres: postgres lms_bench 127.0.0.1(5303) idle" -> "backend"; "postgres: walwriter" -> "walwriter"
    if not cmd.startswith("postgres:"):
        return "other"
    words = cmd.split()
    if len(words) >= 4 and ("(" in words[3] or words[3] == "[local]"):
        return "backend"
    return " ".join(words[1:3]) if words[1] == "autovacuum" else words[1]


def _pg_processes(postmaster: int) -> dict[str, float]:
    out: dict[str, float] = {}
    own = _stat(Path(f"/proc/{postmaster}/stat"))
    if own is not None:
        fields = own[1]
        out["ended (backends, autovacuum workers)"] = sum(int(f) for f in fields[11:13]) / _TICK
        out["postmaster"] = sum(int(f) for f in fields[9:11]) / _TICK
    for pid in children(postmaster):
        got = _stat(Path(f"/proc/{pid}/stat"))
        if got is None:
            continue
        kind = _kind(_cmdline(pid))
        out[kind] = out.get(kind, 0.0) + sum(int(f) for f in got[1][11:13]) / _TICK
    return out


def _threads(server: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for worker in children(server):
        for task in Path(f"/proc/{worker}/task").glob("*"):
            got = _stat(task / "stat")
            if got is None:
                continue
            name = "event loop (main thread)" if task.name == str(worker) else got[0]
            out[name] = out.get(name, 0.0) + sum(int(f) for f in got[1][11:13]) / _TICK
    return out


_STATEMENTS = (
    "SELECT query, calls, total_exec_time + total_plan_time, rows, shared_blks_hit + shared_blks_read, "
    "shared_blks_dirtied, wal_fpi FROM pg_stat_statements WHERE dbid = "
    "(SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 3 DESC"
)
_TABLES = (
    "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, autovacuum_count, autoanalyze_count, n_live_tup "
    "FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd > 0"
)
_WAL = "SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal"


def snapshot(url: str, postmaster: int, server: int) -> dict[str, Any]:
    """What :func:`report` compares: the processes' CPU and the statistics views, now."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        wal = conn.execute(_WAL).fetchone()
        tables = {r[0]: r[1:] for r in conn.execute(_TABLES).fetchall()}
        statements = conn.execute(_STATEMENTS).fetchall() if _has_statements(conn) else []
    return {
        "pg": _pg_processes(postmaster),
        "threads": _threads(server),
        "wal": wal,
        "tables": tables,
        "statements": statements,
    }


def _has_statements(conn: Any) -> bool:
    return bool(conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone())


def report(before: dict[str, Any], after: dict[str, Any], beats: int, top: int = 10) -> str:
    """The window's CPU per beat by process kind and thread, WAL, tables and statements (text)."""
    n = max(1, beats)
    lines = [f"    window diagnosis ({beats:,} beats):"]
    pg = {k: after["pg"].get(k, 0.0) - before["pg"].get(k, 0.0) for k in after["pg"]}
    lines.append(
        "      PostgreSQL CPU per beat by process: "
        + ", ".join(f"{k} {v * 1000 / n:.3f} ms" for k, v in sorted(pg.items(), key=lambda kv: -kv[1]) if v > 0)
    )
    th = {k: after["threads"].get(k, 0.0) - before["threads"].get(k, 0.0) for k in after["threads"]}
    lines.append(
        "      gunicorn workers' CPU per beat by thread: "
        + ", ".join(f"{k} {v * 1000 / n:.3f} ms" for k, v in sorted(th.items(), key=lambda kv: -kv[1]) if v > 0)
    )
    if before["wal"] and after["wal"]:
        rec, fpi, size = (float(a) - float(b) for a, b in zip(after["wal"], before["wal"], strict=True))
        lines.append(
            f"      WAL per beat: {rec / n:.2f} records, {fpi / n:.3f} full-page images, {size / n:,.0f} bytes"
        )
    for name, row in sorted(after["tables"].items()):
        old = before["tables"].get(name, (0, 0, 0, 0, 0, 0))
        ins, upd, hot, av, aa = (int(a) - int(b) for a, b in zip(row[:5], old[:5], strict=True))
        if ins or upd or av or aa:
            lines.append(
                f"      {name}: {ins / n:.2f} inserts, {upd / n:.2f} updates ({hot / max(1, upd):.0%} HOT) per beat; "
                f"autovacuum {av}, autoanalyze {aa} in the window; {row[5]:,} live rows"
            )
    old_statements = {r[0]: r for r in before["statements"]}
    moved = []
    for query, calls, ms, rows, blks, dirtied, fpi in after["statements"]:
        b = old_statements.get(query, (query, 0, 0.0, 0, 0, 0, 0))
        dc = int(calls) - int(b[1])
        if dc <= 0:
            continue
        moved.append(
            (
                float(ms) - float(b[2]),
                dc,
                (int(rows) - int(b[3])) / dc,
                (int(blks) - int(b[4])) / dc,
                (int(dirtied) - int(b[5])) / dc,
                (int(fpi) - int(b[6])) / dc,
                " ".join(query.split())[:80],
            )
        )
    moved.sort(reverse=True)
    lines.append("      statements (µs per beat, calls per beat, µs per call, rows, buffers, dirtied, FPIs per call):")
    for ms, calls, rows, blks, dirtied, fpi, text in moved[:top]:
        lines.append(
            f"      {ms * 1000 / n:8.1f} {calls / n:5.2f} {ms * 1000 / calls:8.1f} {rows:6.1f} {blks:7.1f} "
            f"{dirtied:6.2f} {fpi:6.2f}  {text}"
        )
    return "\n".join(lines)
