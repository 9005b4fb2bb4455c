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

``--group PEOPLE``: the ASGI front's path instead, in process and without HTTP: groups of
PEOPLE beats of PEOPLE different learners (15: what the writer takes at 64 clients) handed
to ``beat_batch.record_group`` as the writer thread does (an app context per group), each
learner's beats ``--every`` server seconds apart (10, the player's cadence; the ingest bench's
back-to-back beats are about 0.06 s apart; each beat's ``visible_ms`` says as much),
``--sets`` groups of other learners in turn. It
prints the CPU per beat of each part (the round's read, core and plugin; each beat's record,
with ``record_beat``'s own Python before and after the hook; the round's write; the COMMIT;
the answer) and PostgreSQL's CPU per beat (the cluster's processes)::

    .venv/bin/python bench/beat_split.py --group 15                 # about 1 minute
    .venv/bin/python bench/beat_split.py --group 15 --every 0       # real time, as the ingest bench's beats
    .venv/bin/python bench/beat_split.py --group 15 --profile       # cProfile instead of the split
    .venv/bin/python bench/beat_split.py --group 15 --wal-records   # and every WAL record, by table and index

``--every S`` (S > 0) freezes server time (``time_machine``), which makes each ``datetime.now``
dearer than in production (about 14 µs a call under it, 1.7 without); ``--every 0`` runs in real time: each
learner's beats come a set's turn apart (about 60 ms with 4 sets of 15, the ingest bench's
regime at 64 clients), so each earns little (the first beats earn the time since the lesson
page opened: after slow sign-ins some learners complete inside the window).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import functools
import io
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
import seed_large  # noqa: E402

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


# --- the group path (the ASGI front's writer): beat_batch.record_group, in process ----------

GROUP = "group: record_group (one transaction, answers after the COMMIT)"
BEAT = "  per beat: beat_front.record"
RECORD_BEAT = "    services.record_beat"
ASSESS = "      _assess (core rule, hook dispatch, intersecting)"
#: ``record_beat``'s own Python, cut at its call of ``_assess``: before the hook and after it.
OWN_BEFORE = "      record_beat's own, before the hook (the claim, the budget)"
OWN_AFTER = "      record_beat's own, after the hook (progress, events, values to write)"
COMPLETION = "      _beat_completion"
FACTS = "        _completion_facts (the course's check, one read)"


class _Clock:
    """Nested CPU-time counters: each call's own time is its time less its wrapped callees'."""

    def __init__(self) -> None:
        self.cpu: collections.Counter[str] = collections.Counter()
        self.own: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()
        self.stack: list[list[float]] = []  # per open call: [started, callees' time]
        self.labels: list[str] = []
        self.on = True  # off while a handed beat goes through the view (not the group path)
        self.handed_cpu = 0.0

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        clock = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not clock.on:
                return original(*args, **kwargs)
            frame = [time.process_time(), 0.0]
            clock.stack.append(frame)
            clock.labels.append(label)
            if label == ASSESS:
                clock._split_record_beat(frame[0])
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.process_time() - frame[0]
                clock.stack.pop()
                clock.labels.pop()
                if clock.stack:
                    clock.stack[-1][1] += spent
                clock.cpu[label] += spent
                clock.own[label] += spent - frame[1]
                clock.calls[label] += 1
                if label == RECORD_BEAT:
                    clock.own[OWN_AFTER] += spent - frame[1] - clock.own.pop("_before", 0.0)

        setattr(owner, name, timed)

    def _split_record_beat(self, now: float) -> None:
        """At ``_assess``'s start: record_beat's own time so far is its part before the hook."""
        if len(self.stack) >= 2 and self.labels[-2] == RECORD_BEAT:
            started, callees = self.stack[-2]
            before = now - started - callees
            self.own[OWN_BEFORE] += before
            self.own["_before"] = before


def _group_parts() -> list[tuple[str, Any, str]]:
    from lms_core import jsonsafe
    from lms_core.jobs import services as jobs
    from lms_core.learning import beat_batch, beat_front, beat_group, beat_rows, services
    from plugins.anti_idle import envelope, state
    from plugins.anti_idle import services as anti_idle

    return [
        (GROUP, beat_batch, "record_group"),
        ("  round read (core's locked read, then the hook)", beat_batch, "_read_round"),
        ("    core: beat_rows.prefetch", beat_rows, "prefetch"),
        ("    plugin: lms_beat_group_read (state_pg.prefetch)", state, "group_read"),
        (BEAT, beat_front, "record"),
        ("    principal_for (cached sign-in)", beat_front, "principal_for"),
        ("    jsonsafe.loads (strict JSON reader)", jsonsafe, "loads"),
        ("    plugin: lms_beat_received (envelope HMAC)", envelope, "receive"),
        (RECORD_BEAT, services, "record_beat"),
        ("      _parse_beat", services, "_parse_beat"),
        ("      _beat_state (rows from the round's read)", services, "_beat_state"),
        (ASSESS, services, "_assess"),
        ("        plugin: lms_assess_interval (as one figure)", anti_idle, "assess_interval"),
        ("      emit (event log rows)", services, "emit"),
        ("      beat_rows.write (kept for the round's write)", beat_rows, "write"),
        (COMPLETION, services, "_beat_completion"),
        ("        _held (lms_completion_verdict: anti-idle's hold check)", services, "_held"),
        (FACTS, services, "_completion_facts"),
        ("        _complete_enrolment (a course completed)", services, "_complete_enrolment"),
        ("  round write: Batch.flush (one statement per side)", beat_group.Batch, "flush"),
        ("    core: beat_rows._write_many", beat_rows, "_write_many"),
        ("    plugin: state_pg._write_many", state.state_pg, "_write_many"),
        ("  transaction end: jobs.commit (ORM commit, COMMIT)", jobs, "commit"),
        ("  answer: beat_batch.answer_parts", beat_batch, "answer_parts"),
    ]


def _learners(
    app: Any, url: str, names: list[str], lesson_kind: str = "document"
) -> list[tuple[Any, str, dict[str, str], bytes, int, int, str]]:
    """Sign each learner in and open the first lesson of ``lesson_kind``, as the player's page does:
    ``(test client, beat path, CSRF header, beat key, user id, session version, session id)``.

    A video lesson's sessions are given the whole lecture as delivered (one ``media_deliveries``
    row each, as if the player had fetched it all): the steady state of a learner whose player
    buffers ahead, so that the beats' media claims are within what was served (R14)."""
    import psycopg

    from plugins.anti_idle import envelope

    with psycopg.connect(anti_idle_bench.plain(url)) as conn:
        lesson_id, media_id = conn.execute(
            "SELECT id, media_id FROM lessons WHERE kind = %s ORDER BY id LIMIT 1", (lesson_kind,)
        ).fetchone()
        who = dict(
            (name, (uid, version))
            for name, uid, version in conn.execute(
                "SELECT username, id, session_version FROM users WHERE username = ANY(%s)", (names,)
            ).fetchall()
        )
    out = []
    for name in names:
        client = app.test_client()
        page = client.get("/login").data
        token = anti_idle_bench.load.CSRF_RE.search(page)
        form = {"username": name, "password": seed_large.PASSWORD}
        if token:
            form["csrf_token"] = token.group(1).decode()
        assert client.post("/login", data=form).status_code in (302, 303)
        page = client.get(f"/learn/lessons/{lesson_id}").data
        beat_url = anti_idle_bench.BEAT_URL_RE.search(page)
        csrf = anti_idle_bench.CSRF_META_RE.search(page)
        assert beat_url and csrf, "lesson page without a beat URL"
        path = beat_url.group(1).decode()
        session_id = path.split("/")[-2]
        with app.app_context():
            key = envelope.session_key(session_id)
        uid, version = who[name]
        out.append((client, path, {"X-CSRFToken": csrf.group(1).decode()}, key, uid, version, session_id))
    if media_id is not None:
        with psycopg.connect(anti_idle_bench.plain(url)) as conn:
            conn.execute(
                "INSERT INTO media_deliveries (session_key, user_id, media_id, bytes_served, requests, first_at, "
                "last_at) SELECT s, u, m.id, m.size_bytes, 1, now(), now() FROM media_files m, "
                "unnest(%s::text[], %s::int[]) AS l(s, u) WHERE m.id = %s",
                ([learner[6] for learner in out], [learner[4] for learner in out], media_id),
            )
    return out


def _video_body(seq: int, every: float, first_ms: int) -> bytes:
    """Beat ``seq`` of a learner playing the lecture at 1x from the lesson page's opening, its
    first beat ``first_ms`` after it and one every ``every`` s of server time after that, as
    bench/video_learners.py's learners say it (the media played since the last beat)."""
    import video_learners

    end = first_ms + round((seq - 1) * every * 1000)
    return video_learners.beat_body(seq, max(0, end - round(every * 1000)), end)


def _print_credit(url: str, user_ids: list[int]) -> None:
    """What the plugin made of the learners' beats (all of them, warm-up included): beats, beats
    credited, and the rules that cut or flagged any, so a run shows its steady state."""
    import psycopg

    with psycopg.connect(anti_idle_bench.plain(url)) as conn:
        beats, credited_beats, credited = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE credited_ms > 0), coalesce(sum(credited_ms), 0) "
            "FROM anti_idle_beats WHERE user_id = ANY(%s)",
            (user_ids,),
        ).fetchone()
        rules = conn.execute(
            "SELECT r, count(*) FROM (SELECT jsonb_object_keys(cuts::jsonb) AS r FROM anti_idle_beats WHERE "
            "user_id = ANY(%s) UNION ALL SELECT jsonb_array_elements_text(flags::jsonb) FROM anti_idle_beats "
            "WHERE user_id = ANY(%s)) AS f GROUP BY r ORDER BY 2 DESC",
            (user_ids, user_ids),
        ).fetchall()
    print(
        f"    the learners' beats (warm-up too): {beats}, {credited_beats} credited, {credited} ms in all; "
        f"cut or flagged by: {dict(rules) or 'none'}"
    )


def _statement_times(url: str) -> list[tuple[int, float, str]]:
    """(calls, planning + execution ms, query) of the database's statements since the reset, dearest first."""
    import psycopg

    with psycopg.connect(anti_idle_bench.plain(url)) as conn:
        rows = conn.execute(
            "SELECT calls, total_plan_time + total_exec_time, query FROM pg_stat_statements WHERE dbid = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND query !~* '^\\s*(SELECT pg_stat_statements|SELECT calls)' ORDER BY 2 DESC LIMIT 12"
        ).fetchall()
    return [(int(calls), float(ms), " ".join(query.split())) for calls, ms, query in rows]


#: The tables a beat updates, whose share of HOT updates ``group_split`` prints.
_UPDATED = (
    "learning_sessions",
    "lesson_progress",
    "learning_person_clocks",
    "learning_daily_totals",
    "anti_idle_person_states",
)


def _write_stats(url: str) -> tuple[tuple[int, int], dict[str, tuple[int, int]]]:
    """(WAL records and bytes so far, each updated table's updates and HOT updates so far).

    The bytes are the WAL position's; the counts are what the backends have reported, which
    an idle backend does about a second after its last COMMIT (the caller waits for it)."""
    import psycopg

    with psycopg.connect(anti_idle_bench.plain(url), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        records, size = conn.execute(  # type: ignore[misc]
            "SELECT wal_records, pg_current_wal_lsn() - '0/0' FROM pg_stat_wal"
        ).fetchone()
        rows = conn.execute(
            "SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = ANY(%s)",
            [list(_UPDATED)],
        ).fetchall()
    return (int(records), int(size)), {name: (int(u), int(h)) for name, u, h in rows}


def _lsn(url: str) -> str:
    import psycopg

    with psycopg.connect(anti_idle_bench.plain(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")  # before the window: its own WAL is not counted
        return str(conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0])  # type: ignore[index]


def _wal_records(url: str, start: str, beats: int) -> None:
    """Every WAL record since ``start`` (``pg_walinspect``), per resource manager, record type and
    relation (the first block reference's: heap, index or TOAST), per beat: count, bytes, and the
    full-page images' bytes in them."""
    import psycopg

    with psycopg.connect(anti_idle_bench.plain(url), autocommit=True) as conn:
        # Up to the flushed WAL: PostgreSQL 15's pg_walinspect refuses an end past it ("cannot
        # accept future end LSN"), as the insert position is while a background write is unflushed.
        rows = conn.execute(
            "SELECT w.resource_manager, w.record_type, coalesce(c.relname, r.node::text, '-'), count(*), "
            "sum(w.record_length), sum(w.fpi_length) "
            "FROM pg_get_wal_records_info(%s::pg_lsn, pg_current_wal_flush_lsn()) AS w "
            "LEFT JOIN LATERAL (SELECT (regexp_match(w.block_ref, 'rel \\d+/\\d+/(\\d+)'))[1]::oid AS node) AS r "
            "ON true "
            "LEFT JOIN pg_class AS c ON c.relfilenode = r.node "
            "GROUP BY 1, 2, 3 ORDER BY 5 DESC",
            [start],
        ).fetchall()
    print("    WAL records per beat (pg_walinspect; resource manager, record type, relation): count, bytes, FPI bytes")
    for rmgr, kind, rel, n, size, fpi in rows:
        print(f"    {n / beats:7.2f} {float(size) / beats:8.0f} B {float(fpi) / beats:7.0f}  {rmgr}/{kind} {rel}")


def _ticking_utcnow() -> None:
    """``BENCH_TICK=1``: every ``lms_core.db.utcnow`` call (by any module holding it) answers the
    frozen time plus 7 µs more than the last call, so no two calls give the same instant, as a
    running server's clock does (a beat's time, its interval's ``created_at``, its progress row's
    ``updated_at`` are three instants). Under the frozen time alone they were one, and a round's
    beats all shared it: what repeats in a round's timestamps (``pg_arrays.Times``) would be
    overstated."""
    import itertools
    import sys

    from lms_core import db as lms_db

    frozen, ticks = lms_db.utcnow, itertools.count(1)

    def utcnow() -> dt.datetime:
        return frozen() + dt.timedelta(microseconds=7 * next(ticks))

    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", "")
        if name.startswith(("lms_core", "plugins")) and getattr(module, "utcnow", None) is frozen:
            module.utcnow = utcnow  # type: ignore[attr-defined]


def group_split(
    url: str,
    pg_pid: int,
    people: int,
    sets: int,
    cycles: int,
    warmup: int,
    profile: bool,
    first: int = 1,
    every: float = 10.0,
    wal_records: bool = False,
    lesson_kind: str = "document",
    media_dir: str | None = None,
) -> dict[str, float]:
    """Groups of ``people`` beats of ``people`` different learners (as the ASGI front's writer
    takes them at 64 clients), ``sets`` such groups of other learners in turn, each learner's
    beats 10 s apart in frozen server time; ``record_group`` called directly, in an app
    context per group as the writer does. Prints the CPU per beat of each part."""
    import cProfile
    import pstats
    from concurrent.futures import Future

    import time_machine

    from lms_core.learning import beat_batch, beat_front
    from plugins.anti_idle.envelope import sign_with_key

    app = anti_idle_bench._in_process_app(url)
    if media_dir:
        app.config["LMS_MEDIA_DIR"] = media_dir
    if every:
        from lms_core.accounts import principal

        # The sign-in cache's clock follows the frozen server time: at a 10 s cadence a
        # learner's entry (5 s) has expired at each beat, as in production.
        principal.clock = time.time
        if os.environ.get("BENCH_NO_WARM"):  # A/B: without the round's principal read
            principal.warm = lambda user_ids: None
    if os.environ.get("BENCH_TICK"):
        _ticking_utcnow()
    names = [f"bench{first + i * 3:06d}" for i in range(people * sets)]  # learners of no earlier round
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with time_machine.travel(at, tick=False):
        learners = _learners(app, url, names, lesson_kind)
    step = dt.timedelta(seconds=every / sets)
    visible_ms = round((every or 10.0) * 1000)  # what the page saw between two beats (the player's 10 s in real time)
    seqs = [0] * len(learners)
    handed = [0]
    clock = _Clock()

    def run_group(g: int) -> None:
        nonlocal at
        at += step
        members = range((g % sets) * people, (g % sets + 1) * people)
        requests = []
        for i in members:
            seqs[i] += 1
            if lesson_kind == "video":
                # The learner's first beat comes (its set's place + 1) steps after the page opened.
                first_ms = round((i // people + 1) * step.total_seconds() * 1000)
                body = _video_body(seqs[i], every or 10.0, first_ms)
            else:
                body = b'{"seq":%d,"event":"heartbeat","visible_ms":%d,"client":{"visibility":"visible"}}' % (
                    seqs[i],
                    visible_ms,
                )
            _client, _path, _headers, key, uid, version, session_id = learners[i]
            beat = beat_front.Beat(session_id, uid, version, sign_with_key(key, body), "127.0.0.1")
            requests.append((i, beat_batch._Request(beat, Future())))
        with time_machine.travel(at, tick=False) if every else contextlib.nullcontext():
            with app.app_context():
                beat_batch.record_group(app, [r for _i, r in requests])
            for i, req in requests:
                if req.future.result() is None:  # handed to the view, as the front does
                    handed[0] += 1
                    clock.on, started = False, time.process_time()
                    client, path, headers, _key, _uid, _version, _sid = learners[i]
                    r = client.post(path, data=req.beat.body, content_type="application/json", headers=headers)
                    assert r.status_code == 200, r.data
                    clock.on = True
                    clock.handed_cpu += time.process_time() - started

    for g in range(warmup * sets):
        run_group(g)
    if not profile:  # the counters would weigh on the profile's figures
        for label, owner, name in _group_parts():
            clock.wrap(owner, name, label)
        from lms_core.learning import services  # noqa: PLC0415

        if hasattr(services, "_assess_one"):  # the straight path's ``_assess`` (a tree that has it)
            clock.wrap(services, "_assess_one", ASSESS)
    handed[0], clock.handed_cpu = 0, 0.0
    profiler = cProfile.Profile(time.process_time) if profile else None
    anti_idle_bench.reset_statements(url)
    stats_before = _write_stats(url)
    lsn_before = _lsn(url) if wal_records else ""
    pg_before = common.tree_cpu_seconds(pg_pid)
    cpu = 0.0
    groups = cycles * sets
    for g in range(warmup * sets, (warmup + cycles) * sets):
        started = time.process_time()
        if profiler:
            profiler.enable()
        run_group(g)
        if profiler:
            profiler.disable()
        cpu += time.process_time() - started
    pg_cpu = common.tree_cpu_seconds(pg_pid) - pg_before
    # An idle backend reports its statistics a while after its last COMMIT (up to ~10 s): wait
    # until they count every beat's session update.
    ((wal0, wal_bytes0), tables0) = stats_before
    for _ in range(15):
        wal, tables = _write_stats(url)
        if tables["learning_sessions"][0] - tables0["learning_sessions"][0] >= groups * people:
            break
        time.sleep(1)
    beats = groups * people
    per = 1e6 / beats
    print(
        f"group path in process: {groups} groups of {people} beats of {people} learners ({sets} sets in turn, "
        f"{lesson_kind} lesson, plugin on, PostgreSQL): CPU {cpu * 1000 / beats:.3f} ms per beat in this process "
        f"+ PostgreSQL {pg_cpu * 1000 / beats:.3f} ms; {handed[0]} beats handed to the view "
        f"({clock.handed_cpu * 1000 / max(1, handed[0]):.1f} ms each, in the CPU per beat); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    if not profile:
        print(f"    {'part':66s} {'µs/beat':>8s} {'own':>7s}")
    for label, _owner, _name in _group_parts() if not profile else []:
        note = f"{clock.own[label] * per:7.0f}" if clock.own[label] != clock.cpu[label] else ""
        print(f"    {label:66s} {clock.cpu[label] * per:8.0f} {note}")
        if label == RECORD_BEAT:
            for split in (OWN_BEFORE, OWN_AFTER):
                print(f"    {split:66s} {clock.own[split] * per:8.0f}")
    rest = cpu - clock.cpu[GROUP] - clock.handed_cpu
    if not profile and clock.calls[FACTS]:
        # A completion reads its course's facts once: the lesson completions of the window.
        done = clock.calls[FACTS]
        print(
            f"    completions: {done} ({done / beats:.2f} per beat); _beat_completion "
            f"{clock.cpu[COMPLETION] * 1e6 / done:.0f} µs per completion (all its beats' calls)"
        )
    if not profile:
        print(f"    {'rest: app context per group, the beats built (not the handed ones)':66s} {rest * per:8.0f}")
    print("    PostgreSQL's time per beat by statement (pg_stat_statements: planning + execution, µs; calls per beat):")
    for calls, ms, text in _statement_times(url):
        print(f"    {ms * 1000 / beats:8.0f} µs {calls / beats:5.2f}  {text[:100]}")
    print(f"    WAL per beat: {(wal[0] - wal0) / beats:.1f} records, {(wal[1] - wal_bytes0) / beats:.0f} bytes")
    if wal_records:
        _wal_records(url, lsn_before, beats)
    hot = (
        f"{name} {100 * (tables[name][1] - tables0[name][1]) / max(1, tables[name][0] - tables0[name][0]):.0f} %"
        for name in _UPDATED
    )
    print(f"    HOT updates (heap-only: no new index entry): {', '.join(hot)}")
    _print_credit(url, [learner[4] for learner in learners])  # after the statements' and WAL's figures
    if profiler:
        dump = Path(tempfile.gettempdir()) / f"beat_group.{os.getpid()}.prof"
        profiler.dump_stats(dump)
        print(f"    CPU profile (process_time) written to {dump}")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(35)
    return {"cpu_ms_per_beat": cpu * 1000 / beats, "pg_cpu_ms_per_beat": pg_cpu * 1000 / beats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beats", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of --beats; each signs in a new learner")
    parser.add_argument(
        "--group",
        type=int,
        metavar="PEOPLE",
        help="the group path instead (beat_batch.record_group): groups of PEOPLE beats of PEOPLE learners",
    )
    parser.add_argument("--sets", type=int, default=4, help="--group: sets of learners taking turns")
    parser.add_argument("--cycles", type=int, default=40, help="--group: measured groups per set")
    parser.add_argument(
        "--every",
        type=float,
        default=10.0,
        help="--group: server seconds between one learner's beats (10: the player's; 0: real time)",
    )
    parser.add_argument("--profile", action="store_true", help="--group: cProfile the measured groups instead")
    parser.add_argument(
        "--wal-records",
        action="store_true",
        help="--group: every WAL record per beat by table and index (pg_walinspect)",
    )
    parser.add_argument(
        "--min-read",
        type=int,
        metavar="SECONDS",
        help="the document lessons' reading time to complete (the seed's 60 s: learners complete in the "
        "window; 3600: the steady state, nobody completes)",
    )
    parser.add_argument(
        "--courses-complete",
        action="store_true",
        help="only the learners' lesson required: its completion completes the course (the enrolment's "
        "UPDATE, the course.completed event)",
    )
    parser.add_argument(
        "--lesson-kind",
        choices=("document", "video"),
        default="document",
        help="--group: the learners' lesson (video: a real MP4 lecture, played at 1x, delivered whole)",
    )
    args = parser.parse_args(argv)
    cluster = common.start_postgres(shared_preload_libraries="pg_stat_statements")
    try:
        url = cluster.create_database("lms_bench")
        import psycopg

        with psycopg.connect(anti_idle_bench.plain(url), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        common.upgrade(common.app_env(url, "anti_idle"))
        seed_large.seed(url, users=max(200, 3 * (args.group or 0) * args.sets * args.rounds + 2), units=200)
        media_dir = None
        if args.lesson_kind == "video":
            media_dir = tempfile.mkdtemp(prefix="bench-media-")
            lecture = seed_large.make_lecture(
                anti_idle_bench.REPO / "instance" / "bench" / f"lecture-{anti_idle_bench.LECTURE_SECONDS}.mp4",
                anti_idle_bench.LECTURE_SECONDS,
            )
            seed_large.seed_study(url, courses=2, assigned=2, video=lecture, video_courses=1, media_dir=media_dir)
        else:
            seed_large.seed_study(url, courses=1, assigned=1)
        seed_large.settle(url)
        if args.min_read is not None:
            with psycopg.connect(anti_idle_bench.plain(url), autocommit=True) as conn:
                conn.execute("UPDATE lessons SET min_read_seconds = %s WHERE kind = 'document'", (args.min_read,))
        if args.courses_complete:
            with psycopg.connect(anti_idle_bench.plain(url), autocommit=True) as conn:
                conn.execute("UPDATE lessons SET required = (id = (SELECT min(id) FROM lessons))")
        if args.group:
            pg_pid = common.postmaster_pid(cluster)
            for round_ in range(args.rounds):
                first = 1 + round_ * args.group * args.sets * 3
                group_split(
                    url,
                    pg_pid,
                    args.group,
                    args.sets,
                    args.cycles,
                    2,
                    args.profile,
                    first,
                    args.every,
                    wal_records=args.wal_records,
                    lesson_kind=args.lesson_kind,
                    media_dir=media_dir,
                )
            return 0
        parts = _parts()
        clock = _Clock()
        for label, _parent, owner, name in parts:
            clock.wrap(owner, name, label)

        def measuring(opening: bool) -> None:
            # Count the timed beats only: the sign-in, the lesson page and the warm-up beats
            # (a day's first beat replays the day) call these parts too, and counted over
            # more beats than the CPU per beat they made "rest" negative (-200 µs).
            if opening:
                for counter in (clock.cpu, clock.own, clock.calls):
                    counter.clear()
            clock.on = opening

        for round_ in range(1, args.rounds + 1):
            with contextlib.redirect_stdout(io.StringIO()):
                measured = anti_idle_bench.bench_beat(
                    url, args.beats, user=f"bench{round_ * 5:06d}", on_measure=measuring
                )
            clock.on = True
            beats = clock.calls[RECORD]
            total = float(measured["cpu_ms_per_beat"])  # type: ignore[arg-type]
            print(
                f"round {round_}: {beats} beats through the lean front, CPU {total:.2f} ms per beat "
                f"(this process), {measured['statements_per_beat']} statements per beat; "
                f"load average {os.getloadavg()[0]:.1f}"
            )
            per = 1e6 / max(beats, 1)
            for label, _parent, _owner, _name in parts:
                note = f"  (own {clock.own[label] * per:6.0f})" if clock.own[label] != clock.cpu[label] else ""
                print(f"    {label:60s} {clock.cpu[label] * per:7.0f} µs{note}")
            # Each moment inside a wrapped part is some part's own time exactly once (nested
            # parts, and a part called from two places, e.g. ``emit`` by the plugin's
            # ``_publish`` and by ``record_beat``, are not counted twice).
            rest = total * 1000 - sum(clock.own.values()) * per
            print(f"    {'rest: test client, WSGI call, app context, teardown':60s} {rest:7.0f} µs")
    finally:
        common.stop_postgres(cluster)
    return 0


if __name__ == "__main__":
    sys.exit(main())
