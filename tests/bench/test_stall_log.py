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
2026-12-07 10:00:12.000 UTC [124] LOG:  automatic analyze of table "lms_bench.public.learning_intervals"
\tsystem usage: CPU: user: 0.10 s, system: 0.00 s, elapsed: 0.20 s
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
        ("analyze", "learning_intervals"),
        ("checkpoint", "time"),
        ("vacuum", "person_clocks"),
    ]
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


def test_a_log_in_another_time_zone_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(LOG.replace(" UTC ", " CST "))
    with pytest.raises(ValueError, match="CST"):
        stall_log.runs(log)
