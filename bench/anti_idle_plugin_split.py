#!/usr/bin/env python3
"""The anti_idle plugin's CPU per beat inside group rounds, in process (issue 8, ingestion).

Signs ``--learners`` learners in (the app's real views, plugin on, PostgreSQL in a throwaway
cluster), then records their signed beats as the ASGI front's writer thread does
(``beat_batch.record_group``: one group of one beat per learner, in rounds of distinct
people, one COMMIT), ``--groups`` times, 10 s of frozen time apart. It prints the CPU
(``time.process_time``: steady under load) per beat of the whole group path and of the
plugin's parts (wrapped in CPU counters, as bench/beat_split.py does), and with
``--profile`` a cProfile of the group path sorted by own time.

    nice .venv/bin/python bench/anti_idle_plugin_split.py             # about 1 minute
    nice .venv/bin/python bench/anti_idle_plugin_split.py --profile
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

import anti_idle_bench  # noqa: E402 - bench/ is a folder of scripts, not a package
import common  # noqa: E402
import load  # noqa: E402
import seed_large  # noqa: E402

PLUGIN = "plugin: lms_assess_interval (all of it)"


def _parts() -> list[tuple[str, Any, str]]:
    """(label, owner, attribute): the plugin's per-beat work, as ``services.assess_interval`` calls it."""
    from plugins.anti_idle import els, state, state_pg, verdicts
    from plugins.anti_idle import services as anti_idle

    return [
        ("plugin: lms_beat_group_read (state_pg.prefetch)", state, "group_read"),
        (PLUGIN, anti_idle, "assess_interval"),
        ("  state.load_for_beat (take + unpack)", state, "load_for_beat"),
        ("  state.prior", state, "prior"),
        ("  services.beat_input", anti_idle, "beat_input"),
        ("  els.assess", els, "assess"),
        ("    els.row_from_input", els, "row_from_input"),
        ("    els.replay", els, "replay"),
        ("  services.beat_row", anti_idle, "beat_row"),
        ("  state.advance", state, "advance"),
        ("  verdicts.record_online", anti_idle, "record_online"),
        ("    Tally.from_json", verdicts.Tally, "from_json"),
        ("    Tally.add", verdicts.Tally, "add"),
        ("    verdicts.derive", verdicts, "derive"),
        ("    Tally.to_json", verdicts.Tally, "to_json"),
        ("    verdicts._moved", verdicts, "_moved"),
        ("    verdicts._plain_add (the sums on the JSON)", verdicts, "_plain_add"),
        ("    verdicts._day_tally", verdicts, "_day_tally"),
        ("    verdicts.fold", verdicts, "fold"),
        ("    verdicts._publish", verdicts, "_publish"),
        ("    verdicts._fold_kept (fold and publish in a round)", verdicts, "_fold_kept"),
        ("  state.save (kept in the round)", state, "save"),
        ("  checks.beat_check", anti_idle, "beat_check"),
        ("plugin: the round's write (state_pg._write_many)", state_pg, "_write_many"),
        ("plugin: the round's day folds (state_pg._write_folds)", state_pg, "_write_folds"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=16, help="beats per group (one per learner)")
    parser.add_argument("--groups", type=int, default=150, help="measured groups")
    parser.add_argument("--warmup", type=int, default=5, help="groups before measuring")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured groups (slower)")
    args = parser.parse_args(argv)
    cluster = common.start_postgres()
    try:
        url = cluster.create_database("lms_bench")
        common.upgrade(common.app_env(url, "anti_idle"))
        seed_large.seed(url, users=200, units=200)
        seed_large.seed_study(url, courses=1, assigned=1)
        seed_large.settle(url)
        run(url, args, cluster)
    finally:
        common.stop_postgres(cluster)
    return 0


def run(url: str, args: argparse.Namespace, cluster: Any) -> None:
    import cProfile
    import pstats
    from concurrent.futures import Future

    import psycopg
    import time_machine

    from lms_core.learning import beat_batch, beat_front

    app = anti_idle_bench._in_process_app(url)
    with psycopg.connect(anti_idle_bench.plain(url)) as conn:
        lesson_id = conn.execute("SELECT id FROM lessons ORDER BY id LIMIT 1").fetchone()[0]
        kind = conn.execute("SELECT kind FROM lessons WHERE id = %s", (lesson_id,)).fetchone()[0]
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    learners = []  # (test client, path, csrf, key, session id, user id, session version)
    with time_machine.travel(at, tick=False):
        for i in range(args.learners):
            name = f"bench{i * 7 + 3:06d}"
            client = app.test_client()
            token = load.CSRF_RE.search(client.get("/login").data)
            form = {"username": name, "password": seed_large.PASSWORD}
            if token:
                form["csrf_token"] = token.group(1).decode()
            assert client.post("/login", data=form).status_code in (302, 303)
            page = client.get(f"/learn/lessons/{lesson_id}").data
            path = anti_idle_bench.BEAT_URL_RE.search(page).group(1).decode()  # type: ignore[union-attr]
            csrf = anti_idle_bench.CSRF_META_RE.search(page).group(1).decode()  # type: ignore[union-attr]
            key = anti_idle_bench.BEAT_KEY_RE.search(page).group(1).decode()  # type: ignore[union-attr]
            with psycopg.connect(anti_idle_bench.plain(url)) as conn:
                found = conn.execute("SELECT id, session_version FROM users WHERE username = %s", (name,))
                uid, version = found.fetchone()
            learners.append((client, path, csrf, key, path.split("/")[-2], uid, version))

    def body(key: str, seq: int) -> bytes:
        raw = b'{"seq":%d,"event":"heartbeat","visible_ms":10000,"client":{"visibility":"visible"}}' % seq
        return anti_idle_bench.sign_with_key(key, raw)

    handed = [0]

    def group(seq: int) -> None:
        reqs = [
            beat_batch._Request(beat_front.Beat(sid, uid, ver, body(key, seq), "127.0.0.1"), Future())
            for _c, _p, _t, key, sid, uid, ver in learners
        ]
        with app.app_context():
            beat_batch.record_group(app, reqs)
        for (client, path, csrf, key, *_rest), req in zip(learners, reqs, strict=True):
            if req.future.result(timeout=0) is None:  # handed back: the view does it alone
                handed[0] += 1
                headers = {"X-CSRFToken": csrf}
                r = client.post(path, data=body(key, seq), content_type="application/json", headers=headers)
                assert r.status_code == 200, r.data

    seq = 0
    for _ in range(args.warmup):
        seq += 1
        at += dt.timedelta(seconds=10)
        with time_machine.travel(at, tick=False):
            group(seq)
    for label, owner, name in _parts():
        common.time_cpu(owner, name, label)
    handed[0] = 0
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    cpu = 0.0
    pg_cpu = common.postgres_cpu_seconds(cluster)
    for _ in range(args.groups):
        seq += 1
        at += dt.timedelta(seconds=10)
        with time_machine.travel(at, tick=False):
            started = time.process_time()
            if profiler:
                profiler.enable()
            group(seq)
            if profiler:
                profiler.disable()
            cpu += time.process_time() - started
    pg_cpu = common.postgres_cpu_seconds(cluster) - pg_cpu
    beats = args.groups * args.learners
    print(
        f"{beats} beats of a {kind} lesson in {args.groups} groups of {args.learners} (beat_batch.record_group, "
        f"plugin on, PostgreSQL): CPU {cpu * 1e3 / beats:.3f} ms per beat in this process "
        f"+ PostgreSQL {pg_cpu * 1e3 / beats:.3f} ms (its processes' CPU, 10 ms ticks); "
        f"{handed[0]} handed to the view; "
        f"load average {os.getloadavg()[0]:.2f}{' (cProfile on: inflated)' if profiler else ''}"
    )
    for label, _owner, _name in _parts():
        print(
            f"    {label:52s} {common.CPU_SPENT[label] * 1e6 / beats:7.0f} µs per beat  ({common.CALLS[label]} calls)"
        )
    if profiler:
        dump = Path(tempfile.gettempdir()) / "anti_idle_plugin_split.prof"
        profiler.dump_stats(dump)
        print(f"    CPU profile (process_time) written to {dump}")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(45)


if __name__ == "__main__":
    sys.exit(main())
