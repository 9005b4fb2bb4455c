#!/usr/bin/env python3
"""Bulk study records for the reports benchmark (issue 12), on top of ``seed_large``.

After ``seed_large.seed`` (org tree, 100,000 users) and ``seed_large.seed_study``
(courses, every learner enrolled in the assigned ones) this writes, in PostgreSQL:

* ``learning_sessions`` and ``learning_intervals``: ``intervals`` heartbeat intervals
  of 30 s, 20 per session, sessions spread over the days of ``year`` and over every
  enrolment, generated *inside* PostgreSQL with ``INSERT ... SELECT generate_series``
  (no row crosses the network), in batches with progress;
* ``learning_daily_totals``: their per-day sums (``INSERT ... SELECT ... GROUP BY``),
  the same derived table the live heartbeat path keeps in step;
* ``event_log``: ``events`` domain events (``lesson.progressed`` and friends), one
  per session start and beat batch, spread over the year and the tree;
* ``lrs_statements`` + ``lrs_statement_keys``: ``statements`` xAPI statements about
  the learners, built in Python (the LRS's own ``statement_keys`` and ``key`` so the
  learner's statement page finds them) and loaded with ``COPY``;
* ``anti_idle_day_verdicts`` + ``anti_idle_evidence`` for about 5 % of the study
  days (a deduction by one of four rules), and ``credit_accounts`` holding each
  learner's posted online hours of the year (the balances the credit chart reads).

Everything is synthetic and deterministic (hashes of the row number), so two runs
seed the same rows.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
import time
import uuid
from collections.abc import Callable

SESSION_BEATS = 20
BEAT_MS = 30_000
#: Rules the seeded deductions are attributed to.
RULES = ("R01", "R04", "R05", "R07")


def _progress(label: str) -> Callable[[int, int, float], None]:
    def show(done: int, total: int, started: float) -> None:
        rate = done / max(time.monotonic() - started, 1e-6)
        print(f"\r   {label}: {done:,}/{total:,} ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)

    return show


def seed_intervals(conn: object, *, intervals: int, year: int, batch_sessions: int = 25_000) -> dict[str, int]:
    """Sessions and 30-s intervals, generated in PostgreSQL; then the per-day totals."""
    cur = conn.cursor()  # type: ignore[attr-defined]
    cur.execute(
        "CREATE TEMP TABLE bench_en AS SELECT (row_number() OVER (ORDER BY e.id) - 1)::bigint AS n, "
        "e.id, e.user_id, (SELECT min(l.id) FROM lessons l WHERE l.course_id = e.course_id) AS lesson_id "
        "FROM enrolments e"
    )
    cur.execute("CREATE UNIQUE INDEX ON bench_en (n)")
    cur.execute("SELECT count(*) FROM bench_en WHERE lesson_id IS NOT NULL")
    enrolments = int(cur.fetchone()[0])
    if not enrolments:
        raise RuntimeError("no enrolments with lessons: run seed_large.seed_study first")
    sessions = intervals // SESSION_BEATS
    start = dt.datetime(year, 1, 1, 1, tzinfo=dt.UTC)  # 09:00 Beijing on 1 January
    # Bulk-load practice: build the secondary index once at the end, not row by row (the ledger
    # has no lesson index since migration 0031ledgerfk).
    cur.execute("DROP INDEX ix_learning_intervals_user_id_wall_end")
    conn.commit()  # type: ignore[attr-defined]
    show = _progress("sessions + intervals")
    began = time.monotonic()
    for first in range(0, sessions, batch_sessions):
        last = min(first + batch_sessions, sessions)
        # Session g: enrolment g mod N, day (g * 7919) mod 360, minute (g * 31) mod 600 after 09:00 Beijing.
        cur.execute(
            "INSERT INTO learning_sessions (id, user_id, lesson_id, enrolment_id, started_at, last_beat_at, "
            " last_seq, claimed_ms, credited_ms, unreported_ms) "
            "SELECT substr(md5('s' || g), 1, 32), e.user_id, e.lesson_id, e.id, t, t + %(span)s * interval '1 ms', "
            " %(beats)s, %(span)s, %(span)s, 0 "
            "FROM generate_series(%(first)s::bigint, %(last)s - 1) g "
            "JOIN bench_en e ON e.n = g %% %(n)s "
            "CROSS JOIN LATERAL (SELECT %(start)s::timestamptz + ((g * 7919) %% 360) * interval '1 day' "
            " + ((g * 31) %% 600) * interval '1 minute' AS t) w",
            {
                "first": first,
                "last": last,
                "n": enrolments,
                "start": start,
                "beats": SESSION_BEATS,
                "span": SESSION_BEATS * BEAT_MS,
            },
        )
        cur.execute(
            "INSERT INTO learning_intervals (session_id, user_id, lesson_id, seq, wall_start, wall_end, "
            " claimed_segments, credited_segments, claimed_ms, credited_ms, verdict, reasons, client, created_at) "
            "SELECT s.id, s.user_id, s.lesson_id, k, s.started_at + (k - 1) * interval '30 s', "
            " s.started_at + k * interval '30 s', "
            " jsonb_build_array(jsonb_build_array((k - 1) * 30000, k * 30000)), "
            " jsonb_build_array(jsonb_build_array((k - 1) * 30000, k * 30000)), 30000, 30000, 'credit', "
            " '[]'::jsonb, '{}'::jsonb, s.started_at + k * interval '30 s' "
            "FROM learning_sessions s CROSS JOIN generate_series(1, %(beats)s) k "
            "WHERE s.id IN (SELECT substr(md5('s' || g), 1, 32) "
            " FROM generate_series(%(first)s::bigint, %(last)s - 1) g)",
            {"first": first, "last": last, "beats": SESSION_BEATS},
        )
        conn.commit()  # type: ignore[attr-defined]
        show(last * SESSION_BEATS, sessions * SESSION_BEATS, began)
    print("   rebuilding the intervals' secondary index", file=sys.stderr, flush=True)
    cur.execute("CREATE INDEX ix_learning_intervals_user_id_wall_end ON learning_intervals (user_id, wall_end)")
    conn.commit()  # type: ignore[attr-defined]
    print("   learning_daily_totals from the intervals", file=sys.stderr, flush=True)
    cur.execute(
        "INSERT INTO learning_daily_totals (user_id, day, credited_ms) "
        "SELECT user_id, (wall_start AT TIME ZONE 'Asia/Shanghai')::date, sum(credited_ms) "
        "FROM learning_intervals GROUP BY 1, 2"
    )
    days = cur.rowcount
    conn.commit()  # type: ignore[attr-defined]
    return {"sessions": sessions, "intervals": sessions * SESSION_BEATS, "daily_totals": days}


def seed_events(conn: object, *, events: int, year: int, batch: int = 200_000) -> dict[str, int]:
    """Domain events of the learners, spread over the year; each names the learner's unit (scope)."""
    cur = conn.cursor()  # type: ignore[attr-defined]
    cur.execute(
        "CREATE TEMP TABLE bench_u AS SELECT (row_number() OVER (ORDER BY id) - 1)::bigint AS n, id, org_unit_id "
        "FROM users WHERE username LIKE 'bench0%%'"
    )
    cur.execute("CREATE UNIQUE INDEX ON bench_u (n)")
    cur.execute("SELECT count(*) FROM bench_u")
    users = int(cur.fetchone()[0])
    start = dt.datetime(year, 1, 1, 1, tzinfo=dt.UTC)
    names = ["lesson.progressed", "lesson.completed", "course.enrolled", "quiz.attempted"]
    show = _progress("event_log")
    began = time.monotonic()
    for first in range(0, events, batch):
        last = min(first + batch, events)
        cur.execute(
            "INSERT INTO event_log (name, actor_id, org_unit_id, object_type, object_id, course_id, ip, payload, "
            " created_at) "
            "SELECT (%(names)s::text[])[1 + (g %% 4)], u.id, u.org_unit_id, 'lessons', (1 + g %% 100)::text, NULL, "
            " '10.0.' || (g %% 250) || '.' || (g %% 200), '{}'::jsonb, "
            " %(start)s::timestamptz + ((g * 104729) %% (360 * 86400)) * interval '1 s' "
            "FROM generate_series(%(first)s::bigint, %(last)s - 1) g JOIN bench_u u ON u.n = (g * 7) %% %(users)s",
            {"names": names, "start": start, "first": first, "last": last, "users": users},
        )
        conn.commit()  # type: ignore[attr-defined]
        show(last, events, began)
    return {"events": events}


def seed_statements(conn: object, *, statements: int, year: int, platform: str, batch: int = 50_000) -> dict[str, int]:
    """xAPI statements with their lookup keys, built with the LRS's own key functions, loaded by COPY."""
    from lrs import keys as K

    cur = conn.cursor()  # type: ignore[attr-defined]
    cur.execute("SELECT username FROM users WHERE username LIKE 'bench0%%' ORDER BY id")
    usernames = [r[0] for r in cur.fetchall()]
    cur.execute("SELECT coalesce(max(pk), 0) FROM lrs_statements")
    pk0 = int(cur.fetchone()[0])
    key_cache: dict[tuple[str, str], int] = {}

    def key(k: tuple[str, str]) -> int:
        value = key_cache.get(k)
        if value is None:
            value = key_cache[k] = K.key(*k)
        return value

    verbs = [
        "http://adlnet.gov/expapi/verbs/progressed",
        "http://adlnet.gov/expapi/verbs/completed",
        "http://adlnet.gov/expapi/verbs/attempted",
    ]
    authority = {"objectType": "Agent", "account": {"homePage": platform, "name": "bench-platform"}}
    start = dt.datetime(year, 1, 1, 1, tzinfo=dt.UTC)
    show = _progress("lrs_statements")
    began = time.monotonic()
    for first in range(0, statements, batch):
        last = min(first + batch, statements)
        rows, keys = io.StringIO(), io.StringIO()
        for g in range(first, last):
            pk = pk0 + g + 1
            when = start + dt.timedelta(seconds=(g * 104729) % (360 * 86400))
            stamp = when.isoformat().replace("+00:00", "Z")
            data = {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-statement-{g}")),
                "actor": {
                    "objectType": "Agent",
                    "account": {"homePage": platform, "name": usernames[(g * 7) % len(usernames)]},
                },
                "verb": {"id": verbs[g % 3]},
                "object": {"objectType": "Activity", "id": f"{platform}/xapi/activities/lesson/{1 + g % 100}"},
                "timestamp": stamp,
                "stored": stamp,
                "authority": authority,
                "version": "1.0.3",
            }
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            rows.write(f"{pk}\t{data['id']}\t{stamp}\tf\t\\N\tf\t{text.replace(chr(92), chr(92) * 2)}\n")
            for k in K.statement_keys(data):
                if k[0] in K.FILTER_KINDS or k[0] == "au":
                    keys.write(f"{key(k)}\t{pk}\n")
        with cur.copy(
            "COPY lrs_statements (pk, statement_id, stored, voided, client_id, has_attachments, data) FROM STDIN"
        ) as copy:
            copy.write(rows.getvalue())
        with cur.copy("COPY lrs_statement_keys (key, stmt_pk) FROM STDIN") as copy:
            copy.write(keys.getvalue())
        conn.commit()  # type: ignore[attr-defined]
        show(last, statements, began)
    cur.execute("SELECT setval(pg_get_serial_sequence('lrs_statements', 'pk'), (SELECT max(pk) FROM lrs_statements))")
    conn.commit()  # type: ignore[attr-defined]
    return {"statements": statements}


def seed_plugins(conn: object, *, year: int) -> dict[str, int]:
    """Anti-idle verdicts with deductions for ~5 % of study days, and each learner's posted online hours."""
    cur = conn.cursor()  # type: ignore[attr-defined]
    cur.execute(
        "INSERT INTO anti_idle_day_verdicts (user_id, day, verdict, claimed_ms, credited_ms, held_ms, deducted_ms, "
        " void_ms, review_score, rules, tally, policy_version, beats, input_digest, review_state, computed_at) "
        "SELECT user_id, day, 'deducted', credited_ms + 300000, credited_ms, 0, 300000, 0, 0, "
        " jsonb_build_array((%(rules)s::text[])[1 + (user_id %% 4)]), '{}'::jsonb, 1, 0, '', 'none', now() "
        "FROM learning_daily_totals WHERE (user_id + extract(doy FROM day)::int) %% 20 = 0",
        {"rules": list(RULES)},
    )
    verdicts = cur.rowcount
    cur.execute(
        "INSERT INTO anti_idle_evidence (day_verdict_id, user_id, day, lesson_id, rule, action, severity, span_start, "
        " span_end, amount_ms, score, threshold, message, params, beat_ids, policy_version) "
        "SELECT v.id, v.user_id, v.day, NULL, v.rules->>0, 'deduct', 'medium', v.computed_at, v.computed_at, "
        " v.deducted_ms, 0, '{}'::jsonb, 'bench', '{}'::jsonb, '[]'::jsonb, 1 FROM anti_idle_day_verdicts v"
    )
    cur.execute(
        "INSERT INTO credit_accounts (ledger_id, kind, owner_id, period, flags, debits_posted, credits_posted, "
        " debits_pending, credits_pending, created_at) "
        "SELECT 1, 'counted', user_id, %(year)s, 0, 0, (sum(credited_ms) / 36000)::bigint, 0, 0, now() "
        "FROM learning_daily_totals GROUP BY user_id",
        {"year": year},
    )
    accounts = cur.rowcount
    conn.commit()  # type: ignore[attr-defined]
    return {"day_verdicts": verdicts, "credit_accounts": accounts}


def seed_held(conn: object, *, share: int = 50) -> dict[str, int]:
    """Hold one seeded deduction day in ``share`` for review (the review queue's rows).

    Idempotent: does nothing when held days exist. Scores spread over 40-99 so the
    queue's order (score, day, id) has ties and many distinct scores.
    """
    cur = conn.cursor()  # type: ignore[attr-defined]
    cur.execute("SELECT count(*) FROM anti_idle_day_verdicts WHERE verdict = 'held'")
    held = int(cur.fetchone()[0])
    if not held:
        cur.execute(
            "UPDATE anti_idle_day_verdicts SET verdict = 'held', held_ms = deducted_ms, deducted_ms = 0, "
            " review_state = 'pending', review_score = 40 + (id * 7) %% 60 WHERE id %% %(share)s = 0",
            {"share": share},
        )
        held = cur.rowcount
        conn.commit()  # type: ignore[attr-defined]
    return {"held_days": held}
