"""Which of PostgreSQL's background work fell in the slow seconds of an ingest window.

At 20,000 learners the heartbeat's p99 is set by a few stalls of ~0.2 s a window
(docs/benchmarks.md): a window without one meets p99 <= 100 ms, one with one does not. The
candidates inside PostgreSQL are autovacuum (it visits the beat's tables about once a minute,
0.2-1.3 s of a core each time, on a machine with two) and checkpoints. ``BENCH_STALLS=1`` on
``anti_idle_bench.py --only ingest`` starts the cluster with :data:`CONF` (each autovacuum and
checkpoint logged with its timing) and, after each window, prints every such run that
overlapped the window, in the window's seconds, beside the seconds whose p99 was over the
target.

Log lines are PostgreSQL's own (``log_line_prefix`` with the time in milliseconds). An
autovacuum's line is written as it *ends* and carries its ``elapsed`` time; a checkpoint logs
its start and its end.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path

#: The cluster's extra settings: every autovacuum and analyze logged, with the checkpoints.
CONF = {
    "log_autovacuum_min_duration": "0",
    "log_checkpoints": "on",
    "log_line_prefix": "'%m [%p] '",
    "log_min_messages": "log",
    "log_timezone": "'UTC'",
}

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (\w+) \[(\d+)\] (\w+):\s+(.*)$")
_AUTO = re.compile(r'automatic (vacuum|analyze) of table "[^."]+\.(?:[^."]+\.)?([^"]+)"')
_ELAPSED = re.compile(r"elapsed: ([\d.]+) s")
_CPU = re.compile(r"CPU: user: ([\d.]+) s, system: ([\d.]+) s")


def _when(stamp: str, zone: str) -> float:
    """The log line's time as a Unix time (the cluster logs in UTC unless told otherwise)."""
    if zone not in ("UTC", "GMT"):
        raise ValueError(f"the cluster's log_timezone is {zone}, not UTC")
    return dt.datetime.strptime(stamp + " +0000", "%Y-%m-%d %H:%M:%S.%f %z").timestamp()


def runs(log: Path) -> list[dict[str, object]]:
    """The log's autovacuum and analyze runs and checkpoints: ``kind``, ``what``, ``start``,
    ``end`` (Unix times), ``cpu_s`` where logged. A run's lines may continue on the next lines
    (a DETAIL-less multi-line message): they are joined until the next stamped line."""
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


def report(log: Path, window_start: float, seconds: Sequence[dict[str, float]], target_ms: float = 100) -> str:
    """The runs that overlapped the measured seconds (``seconds``: ``open_loop.per_second``,
    0 = the window's start at Unix time ``window_start``), and each slow second with the runs
    that overlapped it."""
    if not seconds:
        return "    stalls: no seconds measured"
    first, last = min(r["second"] for r in seconds), max(r["second"] for r in seconds) + 1
    lo, hi = window_start + first, window_start + last
    near = [r for r in runs(log) if float(r["end"]) >= lo and float(r["start"]) <= hi]  # type: ignore[arg-type]
    lines = [f"    PostgreSQL's background runs in seconds {first:.0f}..{last:.0f} of the window: {len(near)}"]
    for r in near:
        start, end = float(r["start"]) - window_start, float(r["end"]) - window_start  # type: ignore[arg-type]
        cpu = f", CPU {r['cpu_s']} s" if r["cpu_s"] is not None else ""
        lines.append(f"      {r['kind']} {r['what']}: {start:+.1f} s .. {end:+.1f} s{cpu}")
    slow = [r for r in seconds if r["second"] >= 0 and r["p99_ms"] > target_ms]
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
    measured = [r for r in seconds if r["second"] >= 0]
    lines.append(f"    slow seconds (p99 > {target_ms:g} ms): {len(slow)} of {len(measured)}")
    return "\n".join(lines)
