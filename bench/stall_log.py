"""Which of PostgreSQL's background work fell in the slow seconds of an ingest window.

At 20,000 learners the heartbeat's p99 is set by a few stalls of ~0.2 s a window
(docs/benchmarks.md): a window without one meets p99 <= 100 ms, one with one does not. The
candidates inside PostgreSQL are autovacuum (it visits the beat's tables about once a minute,
0.2-1.3 s of a core each time, on a machine with two) and checkpoints. ``BENCH_STALLS=1`` on
``anti_idle_bench.py --only ingest`` starts the cluster with :data:`CONF` (each autovacuum and
checkpoint logged with its timing) and, after each window, prints every such run that
overlapped the window, in the window's seconds, beside the seconds whose p99 was over the
target.

With ``BENCH_STALLS=1`` the bench also sets ``LMS_BEAT_STALL_LOG`` for its servers
(lms_core/learning/beat_stalls.py: each worker's full collections, event-loop lag, slow writer
groups and per-second counts, as JSON lines): :func:`report` given that directory prints each
slow second's worker events beside PostgreSQL's, and a per-second view of each worker (beats,
groups, the writer's CPU, the collections' wall time) for the slow seconds and their neighbours.

Log lines are PostgreSQL's own (``log_line_prefix`` with the time in milliseconds). An
autovacuum's line is written as it *ends* and carries its ``elapsed`` time; a checkpoint logs
its start and its end.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from pathlib import Path

#: PostgreSQL logs every statement that took longer than this inside it (ms).
STATEMENT_MS = 20

#: The cluster's extra settings: every autovacuum and analyze logged, with the checkpoints.
CONF = {
    "log_autovacuum_min_duration": "0",
    # Every statement (the COMMIT's WAL flush included) that took over STATEMENT_MS inside
    # PostgreSQL: a slow writer group (> 50 ms, a round's 4-5 statements) with none of them had
    # no one statement that took a good part of it in PostgreSQL.
    "log_min_duration_statement": str(STATEMENT_MS),
    "log_checkpoints": "on",
    "log_line_prefix": "'%m [%p] '",
    "log_min_messages": "log",
    "log_timezone": "'UTC'",
}

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (\w+) \[(\d+)\] (\w+):\s+(.*)$")
_AUTO = re.compile(r'automatic (vacuum|analyze) of table "[^."]+\.(?:[^."]+\.)?([^"]+)"')
_DURATION = re.compile(r"^duration: ([\d.]+) ms\s+(?:statement|(?:parse|bind|execute) [^:]*): (.*)$", re.S)
_ELAPSED = re.compile(r"elapsed: ([\d.]+) s")
_CPU = re.compile(r"CPU: user: ([\d.]+) s, system: ([\d.]+) s")


def _when(stamp: str, zone: str) -> float:
    """The log line's time as a Unix time (the cluster logs in UTC unless told otherwise)."""
    if zone not in ("UTC", "GMT"):
        raise ValueError(f"the cluster's log_timezone is {zone}, not UTC")
    return dt.datetime.strptime(stamp + " +0000", "%Y-%m-%d %H:%M:%S.%f %z").timestamp()


def runs(log: Path) -> list[dict[str, object]]:
    """The log's autovacuum and analyze runs, checkpoints and statements over STATEMENT_MS: ``kind``,
    ``what``, ``start``, ``end`` (Unix times), ``cpu_s`` where logged (``ms`` for a statement).
    A run's lines may continue on the next lines (a DETAIL-less multi-line message): they are
    joined until the next stamped line."""
    entries: list[tuple[float, str]] = []
    for line in log.read_text(errors="replace").splitlines():
        m = _STAMP.match(line)
        if m:
            entries.append((_when(m.group(1), m.group(2)), m.group(5)))
        elif entries:
            entries[-1] = (entries[-1][0], entries[-1][1] + " " + line.strip())
    out: list[dict[str, object]] = []
    started: float | None = None
    reason = ""
    for at, text in entries:
        slow = _DURATION.match(text)
        if slow:
            ms = float(slow.group(1))
            what = " ".join(slow.group(2).split())[:80]
            out.append({"kind": "statement", "what": what, "start": at - ms / 1000, "end": at, "cpu_s": None, "ms": ms})
            continue
        auto = _AUTO.search(text)
        if auto:
            elapsed = _ELAPSED.search(text)
            cpu = _CPU.search(text)
            seconds = float(elapsed.group(1)) if elapsed else 0.0
            out.append(
                {
                    "kind": auto.group(1),
                    "what": auto.group(2),
                    "start": at - seconds,
                    "end": at,
                    "cpu_s": round(float(cpu.group(1)) + float(cpu.group(2)), 2) if cpu else None,
                }
            )
        elif text.startswith("checkpoint starting"):
            started, reason = at, text.split(":", 1)[-1].strip()
        elif text.startswith("checkpoint complete") and started is not None:
            out.append(_checkpoint(reason, started, at))
            started = None
    if started is not None:
        out.append(_checkpoint(reason + " (not complete)", started, float("inf")))
    return out


def _checkpoint(what: str, start: float, end: float) -> dict[str, object]:
    return {"kind": "checkpoint", "what": what, "start": start, "end": end, "cpu_s": None}


def worker_events(directory: Path) -> dict[int, list[dict[str, object]]]:
    """Each worker's stall-log events (``stalls-<pid>.jsonl``), by pid, in time order; a line cut
    short by a killed worker is skipped."""
    out: dict[int, list[dict[str, object]]] = {}
    for path in sorted(directory.glob("stalls-*.jsonl")):
        events = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        out[int(path.stem.split("-", 1)[1])] = sorted(events, key=lambda e: float(e["t"]))
    return out


def _event(e: dict[str, object], window_start: float) -> str:
    at = f"{float(e['t']) - window_start:+.2f} s"  # type: ignore[arg-type]
    if e["kind"] == "gc":
        freeze = (" refrozen" if e.get("refrozen") else "") + (" thawed" if e.get("thawed") else "")
        thread = f", in {e['thread']}" if e.get("thread") else ""
        return f"gc gen {e['gen']} {e['ms']} ms ({e['collected']} collected{freeze}{thread}) at {at}"
    if e["kind"] == "loop":
        return f"loop {e['late_ms']} ms late at {at}"
    if e["kind"] == "group":
        rounds = f", {e['rounds']} rounds" if "rounds" in e else ""
        return f"group of {e['beats']} beats{rounds} {e['ms']} ms (writer CPU {e['cpu_ms']} ms) at {at}"
    return f"{e['kind']} at {at}"


def _worker_lines(workers: dict[int, list[dict[str, object]]], window_start: float, a: float, indent: str) -> list[str]:
    """Each worker's rare events in window second ``a`` or the one before: every collection;
    the loop's lags (how many, the worst); the slow groups (how many, the longest, the writer's
    CPU in them against their wall time: a group that waited, or one that worked)."""
    lo, hi = window_start + a - 1, window_start + a + 1
    lines = []
    for pid, events in workers.items():
        near = [e for e in events if e["kind"] != "second" and lo <= float(e["t"]) < hi]  # type: ignore[arg-type]
        parts = [_event(e, window_start) for e in near if e["kind"] not in ("loop", "group")]
        loops = [e for e in near if e["kind"] == "loop"]
        if loops:
            worst = max(loops, key=lambda e: float(e["late_ms"]))  # type: ignore[arg-type]
            parts.append(f"loop late {len(loops)}x (worst {_event(worst, window_start).removeprefix('loop ')})")
        groups = [e for e in near if e["kind"] == "group"]
        if groups:
            longest = max(groups, key=lambda e: float(e["ms"]))  # type: ignore[arg-type]
            cpu = sum(float(e["cpu_ms"]) for e in groups)  # type: ignore[arg-type]
            wall = sum(float(e["ms"]) for e in groups)  # type: ignore[arg-type]
            parts.append(
                f"{len(groups)} groups over 50 ms, writer CPU {cpu:.0f} of their {wall:.0f} ms "
                f"(the longest: {_event(longest, window_start)})"
            )
        lines.append(
            f"{indent}worker {pid}: "
            + ("; ".join(parts) if parts else "no collection >= gen 1, loop lag or slow group")
        )
    return lines


def _per_second(
    workers: dict[int, list[dict[str, object]]], window_start: float, slow: Sequence[dict[str, float]]
) -> list[str]:
    """One line per Unix second near a slow second: each worker's beats/groups/writer CPU/gc."""
    wanted: set[int] = set()
    for s in slow:
        base = int(window_start + s["second"])
        wanted.update(range(base - 1, base + 3))  # the second before, the slow one's two, the one after
    by_second: dict[int, dict[int, dict[str, object]]] = {}
    for pid, events in workers.items():
        for e in events:
            if e["kind"] == "second" and int(e["t"]) in wanted:  # type: ignore[call-overload]
                by_second.setdefault(int(e["t"]), {})[pid] = e  # type: ignore[call-overload]
    lines = ["    the workers by second (beats/groups, writer CPU ms, collections' wall ms):"]
    for second in sorted(by_second):
        cells = []
        for pid in workers:
            e = by_second[second].get(pid)
            cells.append(
                f"{pid} {e['beats']}/{e['groups']} cpu {e['writer_cpu_ms']} gc {e['gc_ms']}" if e else f"{pid} -"
            )
        lines.append(f"      {second - window_start:+.2f} s: " + "  |  ".join(cells))
    return lines


def _statements(statements: Sequence[dict[str, object]], window_start: float, a: float) -> str:
    """PostgreSQL's statements over :data:`STATEMENT_MS` (``log_min_duration_statement``) that ran in window
    second ``a`` or the one before: how many, how many COMMITs, the longest."""
    lo, hi = window_start + a - 1, window_start + a + 1
    near = [r for r in statements if float(r["start"]) < hi and float(r["end"]) > lo]  # type: ignore[arg-type]
    if not near:
        return f"PostgreSQL: no statement over {STATEMENT_MS} ms in it or the second before"
    longest = max(near, key=lambda r: float(r["ms"]))  # type: ignore[arg-type]
    commits = sum(1 for r in near if str(r["what"]).upper().startswith("COMMIT"))
    return (
        f"PostgreSQL: {len(near)} statements over {STATEMENT_MS} ms ({commits} COMMIT), "
        f"the longest {longest['ms']:.0f} ms "
        f"ending at {float(longest['end']) - window_start:+.2f} s: {longest['what']}"  # type: ignore[arg-type]
    )


def report(
    log: Path,
    window_start: float,
    seconds: Sequence[dict[str, float]],
    target_ms: float = 100,
    workers_dir: Path | None = None,
) -> str:
    """The runs that overlapped the measured seconds (``seconds``: ``open_loop.per_second``,
    0 = the window's start at Unix time ``window_start``), and each slow second with the runs
    that overlapped it (and, given ``workers_dir``, each worker's rare events in it)."""
    if not seconds:
        return "    stalls: no seconds measured"
    first, last = min(r["second"] for r in seconds), max(r["second"] for r in seconds) + 1
    lo, hi = window_start + first, window_start + last
    found = [r for r in runs(log) if float(r["end"]) >= lo and float(r["start"]) <= hi]  # type: ignore[arg-type]
    near = [r for r in found if r["kind"] != "statement"]
    statements = [r for r in found if r["kind"] == "statement"]
    lines = [f"    PostgreSQL's background runs in seconds {first:.0f}..{last:.0f} of the window: {len(near)}"]
    for r in near:
        start, end = float(r["start"]) - window_start, float(r["end"]) - window_start  # type: ignore[arg-type]
        cpu = f", CPU {r['cpu_s']} s" if r["cpu_s"] is not None else ""
        lines.append(f"      {r['kind']} {r['what']}: {start:+.1f} s .. {end:+.1f} s{cpu}")
    if statements:
        longest = max(statements, key=lambda r: float(r["ms"]))  # type: ignore[arg-type]
        lines.append(
            f"    PostgreSQL's statements over {STATEMENT_MS} ms in them: {len(statements)}, "
            f"the longest {longest['ms']:.0f} ms"
        )
    slow = [r for r in seconds if r["second"] >= 0 and r["p99_ms"] > target_ms]
    workers = worker_events(workers_dir) if workers_dir is not None else {}
    for s in slow:
        a, b = s["second"], s["second"] + 1
        during = [
            f"{r['kind']} {r['what']}"
            for r in near
            if float(r["start"]) - window_start < b and float(r["end"]) - window_start > a - 1  # type: ignore[arg-type]
        ]
        lines.append(
            f"      slow second {a:.0f} (p99 {s['p99_ms']:.0f} ms): "
            + (", ".join(during) if during else "no autovacuum or checkpoint in it or the second before")
        )
        lines.append("        " + _statements(statements, window_start, a))
        if workers:
            lines += _worker_lines(workers, window_start, a, "        ")
    measured = [r for r in seconds if r["second"] >= 0]
    lines.append(f"    slow seconds (p99 > {target_ms:g} ms): {len(slow)} of {len(measured)}")
    if workers and slow:
        lines += _per_second(workers, window_start, slow)
    return "\n".join(lines)
