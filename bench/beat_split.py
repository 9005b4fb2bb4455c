#!/usr/bin/env python3
"""Where one heartbeat's CPU goes in the core, part by part (issue 8, ingestion).

Runs ``anti_idle_bench.bench_beat`` (signed beats of a document lesson through the app's
WSGI stack and the lean front, plugin on, PostgreSQL in a throwaway cluster) with the beat
path's functions wrapped in a CPU-time counter (``time.process_time``: steady under load,
unlike wall time), and prints the CPU per beat of each part: the front's checks, the hook,
``record_beat`` and what it calls, the plugin's ``lms_assess_interval`` (its state read,
rules, day tally and write), the transaction and the answer. Far lighter than cProfile (which inflates every call about
x3), so the figures add up to the measured CPU per beat; "own" rows are a part less the
wrapped parts inside it.

    .venv/bin/python bench/beat_split.py                 # about 1 minute
    .venv/bin/python bench/beat_split.py --beats 600 --rounds 3
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

import anti_idle_bench  # noqa: E402 - bench/ is a folder of scripts, not a package
import common  # noqa: E402
import seed_large  # noqa: E402

_cpu: collections.Counter[str] = collections.Counter()
_calls: collections.Counter[str] = collections.Counter()


def _wrap(owner: Any, name: str, label: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            _cpu[label] += time.process_time() - started
            _calls[label] += 1

    setattr(owner, name, timed)


RECORD = "front: record (one beat in its transaction)"


#: (label, parent label or None, owner, attribute): parents are wrapped around children.
def _parts() -> list[tuple[str, str | None, Any, str]]:
    from lms_core.jobs import services as jobs
    from lms_core.learning import beat_front, beat_rows, services
    from plugins.anti_idle import els, state, verdicts
    from plugins.anti_idle import services as anti_idle

    plugin = "      plugin: lms_assess_interval"
    online = "        record_online (the day's tally)"

    return [
        ("front: the checks (take: path, cookie, CSRF, identifier)", None, beat_front.LeanBeats, "take"),
        (RECORD, None, beat_front, "record"),
        (
            "  principal_for (cached sign-in)",
            RECORD,
            beat_front,
            "principal_for",
        ),
        ("  record_beat", RECORD, services, "record_beat"),
        ("    _parse_beat", "  record_beat", services, "_parse_beat"),
        ("    _beat_state (beat_rows.read: BEGIN + locked read)", "  record_beat", services, "_beat_state"),
        ("    _assess (core rule + hook call)", "  record_beat", services, "_assess"),
        (plugin, "    _assess (core rule + hook call)", anti_idle, "assess_interval"),
        ("        state.load_for_beat (state row, policy, checks)", plugin, state, "load_for_beat"),
        ("        els.assess (the rules)", plugin, els, "assess"),
        (online, plugin, anti_idle, "record_online"),
        ("          verdicts.fold (day rows through the ORM)", online, verdicts, "fold"),
        ("          verdicts._publish (event every 5 min of credit)", online, verdicts, "_publish"),
        ("        state.save (raw beat + state upsert)", plugin, state, "save"),
        ("    emit (event log rows: ORM object, flush, dispatch job)", "  record_beat", services, "emit"),
        ("    beat_rows.write (one statement)", "  record_beat", beat_rows, "write"),
        ("    _beat_completion", "  record_beat", services, "_beat_completion"),
        ("transaction: jobs.commit (ORM commit, COMMIT)", None, jobs, "commit"),
        ("answer: answer_parts (JSON bytes, headers)", None, beat_front, "answer_parts"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beats", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of --beats; each signs in a new learner")
    args = parser.parse_args(argv)
    cluster = common.start_postgres(shared_preload_libraries="pg_stat_statements")
    try:
        url = cluster.create_database("lms_bench")
        import psycopg

        with psycopg.connect(anti_idle_bench.plain(url), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        common.upgrade(common.app_env(url, "anti_idle"))
        seed_large.seed(url, users=200, units=200)
        seed_large.seed_study(url, courses=1, assigned=1)
        seed_large.settle(url)
        parts = _parts()
        for label, _parent, owner, name in parts:
            _wrap(owner, name, label)
        for round_ in range(1, args.rounds + 1):
            _cpu.clear()
            _calls.clear()
            with contextlib.redirect_stdout(io.StringIO()):
                measured = anti_idle_bench.bench_beat(url, args.beats, user=f"bench{round_ * 5:06d}")
            beats = _calls[RECORD]
            total = float(measured["cpu_ms_per_beat"])  # type: ignore[arg-type]
            print(
                f"round {round_}: {beats} beats through the lean front, CPU {total:.2f} ms per beat "
                f"(this process), {measured['statements_per_beat']} statements per beat; "
                f"load average {os.getloadavg()[0]:.1f}"
            )
            inner: collections.Counter[str] = collections.Counter()
            for label, parent, _owner, _name in parts:
                if parent is not None:
                    inner[parent] += _cpu[label]
            wrapped = 0.0
            for label, parent, _owner, _name in parts:
                per = _cpu[label] * 1e6 / max(beats, 1)
                own = (_cpu[label] - inner[label]) * 1e6 / max(beats, 1)
                note = f"  (own {own:6.0f})" if inner[label] else ""
                print(f"    {label:60s} {per:7.0f} µs{note}")
                if parent is None:
                    wrapped += _cpu[label]
            rest = total * 1000 - wrapped * 1e6 / max(beats, 1)
            print(f"    {'rest: test client, WSGI call, app context, teardown':60s} {rest:7.0f} µs")
    finally:
        common.stop_postgres(cluster)
    return 0


if __name__ == "__main__":
    sys.exit(main())
