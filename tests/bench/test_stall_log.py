"""bench/stall_log.py: PostgreSQL's autovacuum and checkpoint log lines read back as runs in the
ingest window's seconds, and each slow second named with the runs that overlapped it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.bench.bench_modules import load

stall_log = load("stall_log")

T0 = dt.datetime(2026, 12, 7, 10, 0, 0, tzinfo=dt.UTC).timestamp()

LOG = """\
2026-12-07 10:00:01.000 UTC [99] LOG:  checkpoint starting: time
2026-12-07 10:00:05.500 UTC [123] LOG:  automatic vacuum of table "lms_bench.public.anti_idle_states": index scans: 0
\tpages: 0 removed, 500 remain, 500 scanned (100.00% of total)
\tsystem usage: CPU: user: 0.30 s, system: 0.02 s, elapsed: 0.80 s
2026-12-07 10:00:05.100 UTC [131] LOG:  duration: 62.000 ms  execute <unnamed>: UPDATE anti_idle_person_states
	SET day_tally = $1 WHERE id = $2
2026-12-07 10:00:05.100 UTC [131] DETAIL:  parameters: $1 = '{}', $2 = '7'
2026-12-07 10:00:12.000 UTC [124] LOG:  automatic analyze of table "lms_bench.public.learning_intervals"
\tsystem usage: CPU: user: 0.10 s, system: 0.00 s, elapsed: 0.20 s
2026-12-07 10:00:15.400 UTC [130] LOG:  duration: 120.500 ms  statement: COMMIT
2026-12-07 10:00:15.410 UTC [130] LOG:  duration: 51.000 ms  bind _pg3_0: SELECT 1
2026-12-07 10:00:20.000 UTC [99] LOG:  checkpoint complete: wrote 10 buffers (0.1%); write=1.0 s, total=19.0 s
2026-12-07 10:01:00.000 UTC [125] LOG:  automatic vacuum of table "lms_bench.public.person_clocks": index scans: 0
\tsystem usage: CPU: user: 0.01 s, system: 0.00 s, elapsed: 0.05 s
"""


def seconds(slow: set[int]) -> list[dict[str, float]]:
    return [
        {"second": k, "n": 2000, "p50_ms": 10, "p99_ms": 190 if k in slow else 40, "max_ms": 200} for k in range(-2, 30)
    ]


def test_runs_are_read_with_their_start_from_the_elapsed_time(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(LOG)
    runs = stall_log.runs(log)
    assert [(r["kind"], r["what"]) for r in runs] == [
        ("vacuum", "anti_idle_states"),
        ("statement", "UPDATE anti_idle_person_states SET day_tally = $1 WHERE id = $2"),
        ("analyze", "learning_intervals"),
        ("statement", "COMMIT"),
        ("statement", "SELECT 1"),  # the extended protocol's bind phase, timed apart
        ("checkpoint", "time"),
        ("vacuum", "person_clocks"),
    ]
    assert (runs[1]["start"] - T0, runs[1]["end"] - T0) == pytest.approx((5.038, 5.1))
    vacuum = runs[0]
    assert (vacuum["start"] - T0, vacuum["end"] - T0, vacuum["cpu_s"]) == pytest.approx((4.7, 5.5, 0.32))


def test_each_slow_second_names_the_runs_that_overlapped_it(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(LOG)
    text = stall_log.report(log, T0, seconds({5, 15, 25}))
    assert "background runs in seconds -2..30 of the window: 3" in text  # not the vacuum at +60 s
    assert "slow second 5 (p99 190 ms): vacuum anti_idle_states, checkpoint time" in text
    assert "slow second 15 (p99 190 ms): checkpoint time" in text
    assert "slow second 25 (p99 190 ms): no autovacuum or checkpoint in it or the second before" in text
    assert "slow seconds (p99 > 100 ms): 3 of 30" in text
    # PostgreSQL's statements over 20 ms (log_min_duration_statement), under each slow second.
    lines = text.splitlines()
    after = {
        k: lines[i + 1].strip() for i, line in enumerate(lines) for k in (5, 15, 25) if f"slow second {k} " in line
    }
    assert after[5] == (
        "PostgreSQL: 1 statements over 20 ms (0 COMMIT), the longest 62 ms ending at +5.10 s: "
        "UPDATE anti_idle_person_states SET day_tally = $1 WHERE id = $2"
    )
    assert after[15] == "PostgreSQL: 2 statements over 20 ms (1 COMMIT), the longest 120 ms ending at +15.40 s: COMMIT"
    assert after[25] == "PostgreSQL: no statement over 20 ms in it or the second before"


def test_a_log_in_another_time_zone_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(LOG.replace(" UTC ", " CST "))
    with pytest.raises(ValueError, match="CST"):
        stall_log.runs(log)


def _write_worker(directory: Path, pid: int, events: list[dict[str, object]]) -> None:
    import json

    directory.mkdir(exist_ok=True)
    lines = [json.dumps(e) for e in events]
    (directory / f"stalls-{pid}.jsonl").write_text("\n".join(lines) + '\n{"kind":"gc","t":')  # a cut last line


def test_each_slow_second_names_the_workers_events_in_it_and_the_workers_by_second(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(LOG)
    workers = tmp_path / "workers"
    second = {"kind": "second", "beats": 1000, "groups": 180, "writer_cpu_ms": 400.0, "gc_ms": 3.0, "gcs": 5}
    _write_worker(
        workers,
        11,
        [
            {
                "kind": "gc",
                "t": T0 + 15.30,
                "ms": 38.5,
                "gen": 2,
                "collected": 12,
                "refrozen": True,
                "thawed": False,
                "thread": "beat-group-commit-0",
            },
            {"kind": "loop", "t": T0 + 15.32, "late_ms": 41.0},
            {"kind": "gc", "t": T0 + 18.0, "ms": 1.0, "gen": 1, "collected": 0},  # in no slow second
            *({**second, "t": int(T0) + k} for k in range(0, 30)),
        ],
    )
    _write_worker(
        workers,
        12,
        [
            {"kind": "group", "t": T0 + 24.5, "ms": 83.0, "cpu_ms": 9.0, "beats": 7, "rounds": 2},
            {"kind": "group", "t": T0 + 24.7, "ms": 60.0, "cpu_ms": 6.0, "beats": 3, "rounds": 1},
            {**second, "t": int(T0) + 25, "beats": 40, "groups": 2, "writer_cpu_ms": 20.0},
        ],
    )
    text = stall_log.report(log, T0, seconds({15, 25}), workers_dir=workers)
    lines = text.splitlines()
    at15 = lines.index("      slow second 15 (p99 190 ms): checkpoint time")
    assert lines[at15 + 1].startswith("        PostgreSQL: 2 statements over 20 ms (1 COMMIT)")
    assert lines[at15 + 2] == (
        "        worker 11: gc gen 2 38.5 ms (12 collected refrozen, in beat-group-commit-0) at +15.30 s; "
        "loop late 1x (worst 41.0 ms late at +15.32 s)"
    )
    assert lines[at15 + 3] == "        worker 12: no collection >= gen 1, loop lag or slow group"
    at25 = lines.index("      slow second 25 (p99 190 ms): no autovacuum or checkpoint in it or the second before")
    assert lines[at25 + 2] == "        worker 11: no collection >= gen 1, loop lag or slow group"
    assert lines[at25 + 3] == (
        "        worker 12: 2 groups over 50 ms, writer CPU 15 of their 143 ms "
        "(the longest: group of 7 beats, 2 rounds 83.0 ms (writer CPU 9.0 ms) at +24.50 s)"
    )
    assert "+18.00 s" not in text
    by_second = lines[
        lines.index("    the workers by second (beats/groups, writer CPU ms, collections' wall ms):") + 1 :
    ]
    # The seconds around 15 and 25 only (the one before, the slow one's two, the one after).
    assert [line.split(":")[0].strip() for line in by_second] == [
        f"{k:+.2f} s" for k in (14, 15, 16, 17, 24, 25, 26, 27)
    ]
    assert "11 1000/180 cpu 400.0 gc 3.0  |  12 40/2 cpu 20.0 gc 3.0" in by_second[5]
    assert by_second[0].endswith("|  12 -")


def test_without_a_workers_directory_the_report_is_postgresqls_only(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(LOG)
    assert "worker" not in stall_log.report(log, T0, seconds({15}))
