"""Issue 8, ingestion latency: where the slow beats of the ASGI front spent their time.

Runs the ingest bench's open loop (``anti_idle_bench.py --only ingest --server uvicorn --rate R``:
the same cluster, seeding, minted sign-ins, primed first beats and generator) with
``LMS_BEAT_TRACE`` on, so each worker notes every beat's times along its path
(``lms_core/learning/beat_trace.py``), and joins them with the generator's own times for the
same beat (session and ``seq``). Every time is ``perf_counter`` (CLOCK_MONOTONIC, one clock for
all processes). A beat's latency from its scheduled time splits into:

* ``gen``: the generator handed the beat to its learner's connection late (its own loop behind);
* ``learner``: waiting for the learner's previous beat to be answered (one in flight, as the
  player sends them);
* ``in``: from then to the server's event loop taking the request (the generator writing it,
  the kernel, then the worker's loop busy or without the GIL);
* ``check``: the front's checks on the loop;
* ``queue``: waiting for the writer thread (its group before this one);
* ``group``: the beat's group being recorded, up to its COMMIT;
* ``wake``: the COMMIT done, until the loop ran the answer's callback;
* ``send``: the loop writing the answer;
* ``out``: until the generator read it.

Beats the view answered (handed on) are counted apart. Also reported: Python's gen-2 (and
all) collections in the workers, the loop probe's late wake-ups, and the groups' sizes.

Variants (``--variant NAME=KEY=VALUE,KEY=VALUE``, settings for the server's environment)
are run interleaved, ``--rounds`` times each, on the same cluster (each round with other
learners), so an A/B sees the same load.

    .venv/bin/python bench/beat_tail.py --rate 1000 --duration 30 --warmup 10 \\
        --variant base= --variant small=LMS_BEAT_GROUP_MAX=16
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO)]

import anti_idle_bench  # noqa: E402 - bench/ is a folder of scripts, not a package
import common  # noqa: E402
import open_loop  # noqa: E402
import seed_large  # noqa: E402
from common import percentile, postmaster_pid, step, tree_cpu_seconds  # noqa: E402

#: The stages of a grouped beat, in order (see the module's docstring).
STAGES = ("gen", "learner", "in", "check", "queue", "group", "wake", "send", "out")


class _Watch:
    """The generator's own times per beat, without changing it: when each beat fell due and was
    handed to its learner's connection (``Client.beat``, wrapped), and when its answer was read
    (``on_answer``, called right after)."""

    def __init__(self) -> None:
        self.due: dict[tuple[str, int], tuple[float, float]] = {}
        self.records: list[tuple[str, int, float, float, float]] = []
        self.original = open_loop.Client.beat
        watch = self

        def beat(client: Any, seq: int, scheduled: float) -> None:
            watch.due[(client.learner.path.split("/")[-2], seq)] = (scheduled, time.perf_counter())
            watch.original(client, seq, scheduled)

        open_loop.Client.beat = beat  # type: ignore[method-assign]

    def on_answer(self, client: Any, seq: int, _status: bytes, _body: bytes) -> None:
        key = (client.learner.path.split("/")[-2], seq)
        due = self.due.pop(key, None)
        if due is not None:
            self.records.append((key[0], seq, due[0], due[1], time.perf_counter()))

    def close(self) -> None:
        open_loop.Client.beat = self.original  # type: ignore[method-assign]


def _read_traces(directory: Path) -> tuple[dict[tuple[str, int], list[str]], list[list[str]], list[list[str]], list]:
    beats: dict[tuple[str, int], list[str]] = {}
    gcs, loops, groups = [], [], []
    for path in directory.glob("beat-trace-*.tsv"):
        for line in path.read_text().splitlines():
            f = line.split("\t")
            if f[0] == "beat" and f[3]:
                beats[(f[2], int(f[3]))] = f
            elif f[0] == "gc":
                gcs.append(f)
            elif f[0] == "loop":
                loops.append(f)
            elif f[0] == "group":
                groups.append(f)
    return beats, gcs, loops, groups


def _stages(gen: tuple[str, int, float, float, float], f: list[str], free: float) -> dict[str, float]:
    _s, _q, scheduled, started, done = gen
    recv, checked, queued, g0, committed, settled, sent = (float(x) for x in f[5:12])
    return {
        "gen": started - scheduled,
        "learner": max(0.0, free - started),
        "in": recv - max(started, free),
        "check": queued - recv,
        "queue": g0 - queued,
        "group": committed - g0,
        "wake": settled - committed,
        "send": sent - settled,
        "out": done - sent,
    }


def _overlaps(spans: list[tuple[float, float]], a: float, b: float) -> bool:
    return any(s < b and e > a for s, e in spans)


def attribute(records: list[tuple[str, int, float, float, float]], directory: Path) -> dict[str, Any]:
    """Join the generator's and the workers' times; the stages of all beats and of the slowest 1 %."""
    beats, gcs, loops, groups = _read_traces(directory)
    rows: list[tuple[float, str, dict[str, float], list[str]]] = []
    missing = 0
    # When each beat's learner was free to send it: its previous beat answered.
    previous: dict[tuple[str, int], float] = {}
    for rec in records:
        previous[(rec[0], rec[1] + 1)] = rec[4]
    for rec in records:
        free = previous.get((rec[0], rec[1]), 0.0)
        f = beats.get((rec[0], rec[1]))
        latency = rec[4] - rec[2]
        if f is None:
            missing += 1
            continue
        if f[4] == "group":
            rows.append((latency, "group", _stages(rec, f, free), f))
        else:
            rows.append((latency, "view", {"gen": rec[3] - rec[2], "in": float(f[5]) - max(rec[3], free)}, f))
    rows.sort(key=lambda r: r[0])
    if not rows:
        return {"beats": 0, "missing": missing}
    lat = [r[0] * 1000 for r in rows]
    p99 = percentile(lat, 99)
    slow = [r for r in rows if r[0] * 1000 >= p99]
    gc2 = [(float(g[3]), float(g[4])) for g in gcs if g[2] == "2"]
    late = [(float(lp[2]), float(lp[2]) + float(lp[3])) for lp in loops]

    def stage_ms(subset: list[Any], how: Any) -> dict[str, float]:
        out = {}
        for name in STAGES:
            values = [r[2][name] * 1000 for r in subset if name in r[2]]
            if values:
                out[name] = round(how(values), 2)
        return out

    def path_span(r: Any) -> tuple[float, float]:
        return float(r[3][5]), float(r[3][11])

    sizes = [int(g[3]) for g in groups]
    durations = sorted((float(g[5]) - float(g[4])) * 1000 for g in groups)
    # The writer's CPU in each group (traces since this field); the rest of its wall time it waited.
    timed = [(float(g[5]) - float(g[4]), float(g[6])) for g in groups if len(g) > 6]
    long_groups = [g for g in groups if len(g) > 6 and float(g[5]) - float(g[4]) > 0.05]
    return {
        "beats": len(rows),
        "missing": missing,
        "view": sum(r[1] == "view" for r in rows),
        "p50_ms": round(percentile(lat, 50), 1),
        "p95_ms": round(percentile(lat, 95), 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(lat[-1], 1),
        "median_stage_ms": stage_ms([r for r in rows if r[1] == "group"], statistics.median),
        "slow": len(slow),
        "slow_view": sum(r[1] == "view" for r in slow),
        "slow_mean_stage_ms": stage_ms([r for r in slow if r[1] == "group"], statistics.fmean),
        "slow_with_gc2": sum(_overlaps(gc2, *path_span(r)) for r in slow),
        "slow_with_late_loop": sum(_overlaps(late, *path_span(r)) for r in slow),
        "gc": {gen: len([g for g in gcs if g[2] == gen]) for gen in ("0", "1", "2")},
        "gc2_ms": [round((e - s) * 1000, 1) for s, e in gc2][:20],
        "gc2_cpu_ms": [round(float(g[6]) * 1000, 1) for g in gcs if g[2] == "2"][:20],
        "gc_ms_total": round(sum(float(g[4]) - float(g[3]) for g in gcs) * 1000, 1),
        "gc_cpu_ms_total": round(sum(float(g[6]) for g in gcs) * 1000, 1),
        "gc_cpu_ms_by_gen": {gen: round(sum(float(g[6]) for g in gcs if g[2] == gen) * 1000, 1) for gen in "012"},
        "traced_beats": sum(1 for _ in beats),
        "loop_late": len(late),
        "loop_late_ms_max": round(max((float(lp[3]) for lp in loops), default=0) * 1000, 1),
        "groups": len(groups),
        "group_size_mean": round(statistics.fmean(sizes), 1) if sizes else 0,
        "group_size_max": max(sizes, default=0),
        "group_ms_p50": round(percentile(durations, 50), 1) if durations else 0,
        "group_ms_p99": round(percentile(durations, 99), 1) if durations else 0,
        "group_ms_max": round(durations[-1], 1) if durations else 0,
        "group_wall_s": round(sum(w for w, _c in timed), 2),
        "group_cpu_s": round(sum(c for _w, c in timed), 2),
        "groups_over_50ms": len(long_groups),
        "groups_over_50ms_size_mean": round(statistics.fmean(int(g[3]) for g in long_groups), 1) if long_groups else 0,
        "groups_over_50ms_cpu_share": round(
            sum(float(g[6]) for g in long_groups) / max(1e-9, sum(float(g[5]) - float(g[4]) for g in long_groups)), 2
        ),
    }


class _WaitSampler:
    """PostgreSQL's backends of the bench database sampled every ``every`` seconds from
    ``pg_stat_activity`` (another connection): what each active one waits for. Counts of
    (state, wait_event_type, wait_event), so a server that falls behind with idle CPU shows
    whether its writers wait on a lock, the WAL's flush, the client or nothing."""

    def __init__(self, url: str, every: float = 0.01) -> None:
        import threading

        self.url, self.every = url, every
        self.counts: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        return {"samples": self.samples, "waits": dict(self.counts.most_common(15))}

    def _run(self) -> None:
        import psycopg

        sql = (
            "SELECT state, coalesce(wait_event_type, 'CPU'), coalesce(wait_event, '-') FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        with psycopg.connect(anti_idle_bench.plain(self.url), autocommit=True) as conn:
            while not self._stop.wait(self.every):
                self.samples += 1
                for state, kind, event in conn.execute(sql).fetchall():
                    self.counts[f"{state}/{kind}/{event}"] += 1


def run_round(
    url: str, env: dict[str, str], args: argparse.Namespace, pg_pid: int, lesson_id: int, offset: int, extra: dict
) -> dict[str, Any]:
    """One variant's run: its server, its learners, the open loop, the trace joined."""
    trace_dir = Path(tempfile.mkdtemp(prefix="beat-trace-"))
    extra = dict(extra)
    workers = int(extra.pop("WORKERS", args.workers))  # gunicorn's own settings, not the app's
    gunicorn_args = extra.pop("GUNICORN", "").split()
    server_env = {**env, **extra, "LMS_BEAT_TRACE": str(trace_dir)}
    if not args.trace:
        server_env.pop("LMS_BEAT_TRACE")
    server, port = common.start_gunicorn(
        server_env,
        workers=workers,
        extra_args=gunicorn_args,
        worker_class="uvicorn_worker.UvicornWorker",
        app="lms_core.learning.beat_asgi:create_app()",
    )
    marks: dict[str, float] = {}
    sampler = _WaitSampler(url)
    waits: dict[str, Any] = {}
    try:
        names = [f"bench{i * args.max_runs + offset:06d}" for i in range(args.learners)]
        minted = anti_idle_bench._mint(url, lesson_id, names)
        interval = args.learners / args.rate
        open_loop.run(open_loop.prime(port, minted, round(interval * 1000)))

        def on_window(opening: bool) -> None:
            if opening:
                marks.update(server=tree_cpu_seconds(server.pid), pg=anti_idle_bench._postgres_cpu(pg_pid))
                marks["load"] = os.getloadavg()[0]
                sampler.start()
            else:
                waits.update(sampler.stop())
                marks["server"] = tree_cpu_seconds(server.pid) - marks["server"]
                marks["pg"] = anti_idle_bench._postgres_cpu(pg_pid) - marks["pg"]

        watch = _Watch()
        try:
            tally, window = open_loop.run(
                open_loop.drive(
                    port,
                    minted,
                    args.rate,
                    args.warmup,
                    args.duration,
                    first_seq=2,
                    on_window=on_window,
                    on_answer=watch.on_answer,
                )
            )
        finally:
            watch.close()
    finally:
        common.stop_server(server)  # SIGTERM: the workers write the rest of their trace
    n = max(1, tally.answered(window.opened, window.closed))
    if not args.trace:
        values = sorted(v * 1000 for v in tally.latencies)
        return {
            "p50_ms": round(percentile(values, 50), 1),
            "p95_ms": round(percentile(values, 95), 1),
            "p99_ms": round(percentile(values, 99), 1),
            "max_ms": round(values[-1], 1) if values else 0,
            "errors": tally.errors,
            "achieved_per_s": round(tally.answered(window.start, window.end) / args.duration),
            "cpu_ms_per_beat": round((marks["server"] + marks["pg"]) * 1000 / n, 3),
            "load": round(marks["load"], 2),
            "generator_lag_ms": round((window.opened - window.start) * 1000),
            "pg_waits": waits,
        }
    result = attribute([r for r in watch.records if window.start <= r[2] < window.end], trace_dir)
    result.update(
        errors=tally.errors,
        achieved_per_s=round(tally.answered(window.start, window.end) / args.duration),
        cpu_ms_per_beat=round((marks["server"] + marks["pg"]) * 1000 / n, 3),
        load=round(marks["load"], 2),
        generator_lag_ms=round((window.opened - window.start) * 1000),
        trace_dir=str(trace_dir),
        pg_waits=waits,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--cadence", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of each variant, interleaved")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME=KEY=VALUE,KEY=VALUE (server settings; WORKERS=n: gunicorn's workers, "
        "GUNICORN='--backlog 4096': its other arguments)",
    )
    parser.add_argument(
        "--warm-wal", type=int, default=640, metavar="MB", help="WAL recycled first (0: a fresh cluster's)"
    )
    parser.add_argument("--max-runs", type=int, default=7, help="learners are seeded for this many runs")
    parser.add_argument(
        "--no-trace", dest="trace", action="store_false", help="latencies and CPU only, the workers not tracing"
    )
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    args.learners = round(args.rate * args.cadence)
    variants: list[tuple[str, dict[str, str]]] = []
    for spec in args.variant or ["base="]:
        name, _eq, settings = spec.partition("=")
        variants.append((name, dict(kv.split("=", 1) for kv in settings.split(",") if kv)))
    runs = args.rounds * len(variants)
    if runs > args.max_runs:
        parser.error(f"at most {args.max_runs} runs (each takes other learners: bench{{i*max_runs+k}}); --max-runs")
    cluster = common.start_recommended_postgres(shared_preload_libraries="pg_stat_statements")
    results: list[dict[str, Any]] = []
    try:
        url = cluster.create_database("lms_bench")
        env = common.app_env(url, "anti_idle")
        common.upgrade(env)
        seed_large.seed(url, users=args.learners * args.max_runs + 2, units=200)
        seed_large.seed_study(url, courses=1, assigned=1)
        seed_large.settle(url)
        import psycopg

        with psycopg.connect(anti_idle_bench.plain(url)) as conn:
            lesson_id = conn.execute("SELECT id FROM lessons ORDER BY id LIMIT 1").fetchone()[0]
        if args.warm_wal:
            seed_large.warm_wal(url, args.warm_wal)
        for k in range(runs):
            name, extra = variants[k % len(variants)]
            if args.warm_wal:  # the last run's WAL segments recycled for this one
                with psycopg.connect(anti_idle_bench.plain(url), autocommit=True) as conn:
                    conn.execute("CHECKPOINT")
            step(f"round {k // len(variants) + 1}, variant {name} {extra}: {args.rate:g} beats/s offered")
            result = {
                "variant": name,
                "settings": extra,
                **run_round(url, env, args, postmaster_pid(cluster), lesson_id, k, extra),
            }
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        common.stop_postgres(cluster)
    by_variant: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in results:
        by_variant[r["variant"]].append(r)
    for name, rs in by_variant.items():
        for r in rs:
            if "slow" not in r:  # --no-trace
                print(
                    f"{name}: p50/p95/p99 {r['p50_ms']}/{r['p95_ms']}/{r['p99_ms']} ms (max {r['max_ms']}), "
                    f"{r['achieved_per_s']}/s, errors {r['errors']}, CPU {r['cpu_ms_per_beat']} ms/beat, "
                    f"load {r['load']}"
                )
                continue
            print(
                f"{name}: p50/p95/p99 {r['p50_ms']}/{r['p95_ms']}/{r['p99_ms']} ms (max {r['max_ms']}), "
                f"{r['achieved_per_s']}/s, errors {r['errors']}, CPU {r['cpu_ms_per_beat']} ms/beat, load {r['load']}; "
                f"slowest 1 % ({r['slow']}, {r['slow_view']} by the view) mean stages {r['slow_mean_stage_ms']}; "
                f"median stages {r['median_stage_ms']}; slow beats with a gen-2 gc {r['slow_with_gc2']}, "
                f"with a late loop {r['slow_with_late_loop']}; gc {r['gc']} ({r['gc_ms_total']} ms wall, "
                f"{r['gc_cpu_ms_total']} ms CPU {r['gc_cpu_ms_by_gen']} over {r['traced_beats']} beats traced; "
                f"gen-2 wall {r['gc2_ms']}, CPU {r['gc2_cpu_ms']}); "
                f"loop late {r['loop_late']} times (max {r['loop_late_ms_max']} ms); groups "
                f"{r['groups']} of {r['group_size_mean']} (max {r['group_size_max']}), p50/p99/max "
                f"{r['group_ms_p50']}/{r['group_ms_p99']}/{r['group_ms_max']} ms; writer CPU "
                f"{r['group_cpu_s']} of {r['group_wall_s']} s in groups; groups over 50 ms {r['groups_over_50ms']} "
                f"(mean size {r['groups_over_50ms_size_mean']}, CPU share {r['groups_over_50ms_cpu_share']}); "
                f"PostgreSQL waits over {r['pg_waits'].get('samples')} samples {r['pg_waits'].get('waits')}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
