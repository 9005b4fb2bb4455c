"""The heartbeat's own rows, read and written without ORM objects.

A beat reads its session (with lesson, media, bytes served), the lesson's
progress row and the person's clock, and writes back the session, the progress, the
clock, one ledger interval and the day's total. Through the ORM that was eight
statements and most of a beat's CPU (building objects, the identity map, the unit of
work; bench/anti_idle_bench.py --profile). Here it is one locked read and one write:

* **read** (:func:`read`): one ``SELECT … FOR NO KEY UPDATE OF s, p, c`` joining the session's
  lesson, media, progress and clock (not its enrolment: the registration is read only by the
  few beats whose events carry it, ``services.record_beat``); the locks are the same rows as
  before, taken in the same order (session, progress, clock), so one person's beats stay
  serialised and two people's never wait for each other. It joins the progress and clock
  rows *inner*: a first beat of a person finds no clock row, the caller creates the missing
  rows and reads again. ``NO KEY UPDATE``, not ``UPDATE``: a beat changes no key, and the
  stronger lock also blocks the foreign keys' ``FOR KEY SHARE`` on the session row, so the
  player's check poll (the person's clock held, then an attention check inserted that
  references the session) and a beat (session locked, waiting for the clock) deadlocked.
* **write** (:func:`write`): on PostgreSQL one statement, the four changes as data-
  modifying CTEs around the interval INSERT, prepared once per connection; on SQLite the
  same changes as Core statements in a row (SQLite serialises writers anyway).

The values are the ones the ORM path wrote; ``record_beat`` still decides them.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, select, update
from sqlalchemy.dialects import sqlite

from lms_core.courses.models import Lesson
from lms_core.db import utcnow
from lms_core.extensions import db
from lms_core.learning import beat_group, beat_tx, pg_arrays
from lms_core.learning.models import DailyTotal, LearningInterval, LearningSession, LessonProgress, PersonClock
from lms_core.media.models import MediaDelivery, MediaFile


@dataclass(slots=True)
class BeatState:
    """What one beat reads, as it stood when the rows were locked."""

    session_id: str
    user_id: int
    lesson_id: int
    enrolment_id: int
    started_at: dt.datetime
    last_beat_at: dt.datetime
    last_seq: int
    budget_from: dt.datetime | None
    ended_at: dt.datetime | None
    unreported_ms: int
    course_id: int
    kind: str
    completion_threshold_pct: int
    min_read_seconds: int
    media_id: int | None
    duration_ms: int | None
    size_bytes: int | None
    progress_id: int
    position_ms: int
    credited_segments: list[list[int]]
    coverage_bp: int
    read_ms: int
    status: str
    credited_until: dt.datetime
    bytes_served: int


_PG_COLUMNS = (
    "SELECT s.id, s.user_id, s.lesson_id, s.enrolment_id, s.started_at, s.last_beat_at, s.last_seq, s.budget_from, "
    "s.ended_at, s.unreported_ms, l.course_id, l.kind, l.completion_threshold_pct, l.min_read_seconds, l.media_id, "
    "m.duration_ms, m.size_bytes, p.id, p.position_ms, p.credited_segments, p.coverage_bp, "
    "p.read_ms, p.status, c.credited_until, "
    # The bytes served are read only for a lesson with media (the only beats that use them).
    "CASE WHEN l.media_id IS NULL THEN 0 ELSE "
    "(SELECT coalesce(sum(d.bytes_served), 0)::bigint FROM media_deliveries AS d WHERE d.session_key = s.id) END "
)
_PG_JOINS = (
    "JOIN lessons AS l ON l.id = s.lesson_id LEFT JOIN media_files AS m ON m.id = l.media_id "
    "JOIN lesson_progress AS p ON p.user_id = s.user_id AND p.lesson_id = s.lesson_id "
    "JOIN learning_person_clocks AS c ON c.user_id = s.user_id "
)
_PG_READ = (
    _PG_COLUMNS
    + "FROM learning_sessions AS s "
    + _PG_JOINS
    + "WHERE s.id = %(session_id)s AND s.user_id = %(user_id)s FOR NO KEY UPDATE OF s, p, c"
)
#: The number of :class:`BeatState`'s columns in ``_PG_COLUMNS`` (a round's read has the sign-in's after them).
_STATE_WIDTH = len(fields(BeatState))
#: A round's read (``beat_group``): every beat's rows in one statement, locked person by
#: person in id order (the order group commit takes people in), so two rounds cannot deadlock.
#: With each person's sign-in (``_PG_USERS``' columns, not locked: ``principal.warm``'s read),
#: which was a statement of its own a round.
_PG_READ_MANY = (
    _PG_COLUMNS
    + ", u.id, u.org_unit_id, u.locale, u.session_version, u.status, u.must_change_password "
    + "FROM unnest(%(session_ids)s::text[], %(user_ids)s::bigint[]) AS k(session_id, user_id) "
    "JOIN learning_sessions AS s ON s.id = k.session_id AND s.user_id = k.user_id "
    "JOIN users AS u ON u.id = s.user_id " + _PG_JOINS + "ORDER BY s.user_id, s.id FOR NO KEY UPDATE OF s, p, c"
)


@functools.cache
def _sqlite_read() -> Any:
    s, p, c = LearningSession, LessonProgress, PersonClock
    served = case(
        (Lesson.media_id.is_(None), 0),
        else_=select(func.coalesce(func.sum(MediaDelivery.bytes_served), 0))
        .where(MediaDelivery.session_key == s.id)
        .scalar_subquery(),
    )
    return (
        select(
            s.id,
            s.user_id,
            s.lesson_id,
            s.enrolment_id,
            s.started_at,
            s.last_beat_at,
            s.last_seq,
            s.budget_from,
            s.ended_at,
            s.unreported_ms,
            Lesson.course_id,
            Lesson.kind,
            Lesson.completion_threshold_pct,
            Lesson.min_read_seconds,
            Lesson.media_id,
            MediaFile.duration_ms,
            MediaFile.size_bytes,
            p.id,
            p.position_ms,
            p.credited_segments,
            p.coverage_bp,
            p.read_ms,
            p.status,
            c.credited_until,
            served,
        )
        .join(Lesson, Lesson.id == s.lesson_id)
        .outerjoin(MediaFile, MediaFile.id == Lesson.media_id)
        .join(p, (p.user_id == s.user_id) & (p.lesson_id == s.lesson_id))
        .join(c, c.user_id == s.user_id)
        .where(s.id == bindparam("session_id"), s.user_id == bindparam("user_id"))
    )


def is_pg() -> bool:
    return beat_tx.is_pg()


#: Where the beat's cursor is kept: in the pool's record of the connection (its ``info``
#: lives as long as the pooled connection).
_CURSOR = "lms_beat_cursor"


def cursor() -> Any:
    """The session connection's psycopg cursor for the beat's statements, kept per connection.

    A new cursor per statement built its adapters again and looked up the loaders of every
    result column on each beat (about a quarter of the read's client CPU in a loop of reads);
    a kept cursor has them already. One connection serves one request at a time, so its
    cursor does too, and each statement is fetched before the next one runs. Also the
    anti-idle plugin's beat statements (``plugins/anti_idle/state_pg.py``)."""
    return kept_cursor(_CURSOR, lambda raw: raw.cursor())


def kept_cursor(key: str, make: Callable[[Any], Any]) -> Any:
    """The session connection's cursor kept under ``key`` in the pool's record of the
    connection, made by ``make(psycopg connection)`` once per connection (again if the
    connection was replaced or the cursor closed)."""
    fairy = beat_tx.connection().connection
    raw = fairy.driver_connection
    assert raw is not None
    cur = fairy.info.get(key)
    if cur is None or cur.connection is not raw or cur.closed:
        cur = fairy.info[key] = make(raw)
    return cur


def json_text(value: Any) -> str:
    """A JSON column's value as a statement parameter: the JSON text, sent untyped, so
    PostgreSQL takes it as the column's ``jsonb`` (a prepared statement's parameter gets
    the type of the column it goes into). psycopg's ``Jsonb`` wrapper did the same
    ``json.dumps`` behind a Python dumper per value, about a dozen values per beat; the text
    is msgspec's (``beat_group.json_text``): 0.4-1.4 µs a value against 6-13 µs for ``json.dumps``
    (the beat's segments, reasons and client; one process, load ~10)."""
    return beat_group.json_text(value)


def _pg(sql: str, params: dict[str, Any], *, fetch: bool = True) -> list[tuple[Any, ...]]:
    """One statement on the session's connection (its transaction), prepared by psycopg.

    SQLAlchemy's execution (cache key, parameter processing, result rows) cost more CPU
    than PostgreSQL spends on these statements (as in ``credit_bank.ledger._pg_rows``).
    ``fetch=False`` for a statement that returns nothing: even asking builds the result's
    column descriptions."""
    cur = cursor()
    batch = beat_group.active()
    if batch is not None:
        batch.flush_for(sql)  # the round's kept writes first (a no-op for the batch's own statements)
    cur.execute(sql, params, prepare=True)
    return list(cur.fetchall()) if fetch else []


def _pg_state(row: Any) -> BeatState:
    r = list(row[:_STATE_WIDTH])
    for i in (4, 5, 7, 8, 23):
        # In UTC, converted only when not already: the app's sessions run in UTC
        # (``db.install_utc_sessions``), so psycopg's values carry ``datetime.UTC`` and this
        # is five comparisons a beat, not five calls.
        value = r[i]
        if value is not None and value.tzinfo is not dt.UTC:
            r[i] = value.astimezone(dt.UTC)
    r[24] = int(r[24])  # sum() of a bigint is a numeric on PostgreSQL
    return BeatState(*r)


def read(session_id: str, user_id: int) -> BeatState | None:
    """The beat's rows, locked; ``None`` when the session is not this user's or a row is missing."""
    params = {"session_id": session_id, "user_id": user_id}
    if is_pg():
        batch = beat_group.active()
        if batch is not None:
            # Read (and locked) by the round's prefetch; taken once: a second read (a first
            # beat's rows just created) reads again.
            found = batch.read.get(_NAME, {}).pop((session_id, user_id), None)
            if found is not None:
                return cast(BeatState, found)
        rows = _pg(_PG_READ, params)
        return _pg_state(rows[0]) if rows else None
    conn = db.session.connection()
    _sqlite_write_lock(conn)
    row = conn.execute(_sqlite_read(), params).first()
    if row is None:
        return None
    r = list(row)
    r[11], r[22] = str(getattr(r[11], "value", r[11])), str(getattr(r[22], "value", r[22]))
    r[24] = int(r[24])
    return BeatState(*r)


def _sqlite_write_lock(conn: Any) -> None:
    """SQLite's stand-in for the rows' lock: the database's write lock, taken before the read.

    SQLite has no row locks, and Python's sqlite3 module opens its transaction only at the
    first write, so two beats of one person in two of the server's threads (two tabs, or a beat
    and its retry) both read the rows before either wrote them: each spent the person's budget
    (four tabs earned 23 s in 10 s) or the second's interval broke the ledger's
    ``(session_id, seq)`` key (a 500). ``BEGIN IMMEDIATE`` makes the read part of a transaction
    that holds the write lock, so the second beat reads what the first committed, as
    PostgreSQL's ``FOR NO KEY UPDATE`` makes it wait. It waits up to the connection's busy
    timeout; a transaction that has written already holds the lock."""
    dbapi = conn.connection.dbapi_connection
    if dbapi is not None and not dbapi.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


#: The sign-ins a round reads (``principal.warm``): ``accounts.principal._statement``'s columns.
_PG_USERS = (
    "SELECT id, org_unit_id, locale, session_version, status, must_change_password FROM users "
    "WHERE id = ANY(%(user_ids)s::bigint[])"
)


def users(user_ids: list[int]) -> list[tuple[Any, ...]]:
    """The rows ``principal.warm`` keeps (PostgreSQL): those the round's read brought
    (:func:`prefetch`, its people's), the others by one prepared statement. Nearly every beat's
    sign-in has expired by its next beat (kept 5 s, a beat every 10 s), so the round's read
    carrying them saves a statement a round; a person the read did not find (a first beat)
    is read here as before."""
    batch = beat_group.active()
    brought: dict[int, tuple[Any, ...]] | None = batch.read.get(_USERS) if batch is not None else None
    if not brought:
        return _pg(_PG_USERS, {"user_ids": pg_arrays.literal(user_ids)})
    found = [brought[user_id] for user_id in user_ids if user_id in brought]
    rest = [user_id for user_id in user_ids if user_id not in brought]
    return found + _pg(_PG_USERS, {"user_ids": pg_arrays.literal(rest)}) if rest else found


#: The core's name in a round's batch (``beat_group.Batch``).
_NAME = "core"
#: Where a round's read keeps its people's sign-in rows (:func:`users`), by user id.
_USERS = "core.users"


def prefetch(batch: beat_group.Batch, keys: list[tuple[str, int]]) -> dict[tuple[str, int], BeatState]:
    """A round's rows (PostgreSQL): every ``(session id, user id)``'s rows in one locked read,
    kept in ``batch`` for :func:`read`; a key not found (not this user's, a first beat) is
    left out and read by the beat itself."""
    # Array literals (``pg_arrays``), cast in the statement: psycopg's list dumper is Python, a
    # dumper call and a regular expression search per element (three lists of a round's size a
    # round, with ``users``; docs/benchmarks.md, "the writer's Python per beat").
    params = {
        "session_ids": pg_arrays.literal([k[0] for k in keys]),
        "user_ids": pg_arrays.literal([k[1] for k in keys]),
    }
    rows = _pg(_PG_READ_MANY, params)
    states = {(st.session_id, st.user_id): st for st in map(_pg_state, rows)}
    batch.read[_NAME] = dict(states)
    batch.read[_USERS] = {row[_STATE_WIDTH]: row[_STATE_WIDTH:] for row in rows}
    return states


@dataclass(slots=True)
class BeatWrite:
    """What one accepted beat writes (the values ``record_beat`` decided)."""

    state: BeatState
    now: dt.datetime
    seq: int
    budget_from: dt.datetime
    claimed_total_ms: int
    credited_ms: int
    unreported_ms: int
    ended_at: dt.datetime | None
    #: The progress columns that changed (``credited_segments``, ``coverage_bp``, ``read_ms``,
    #: ``position_ms``; ``status`` and ``completed_at`` when the beat completes the lesson);
    #: empty: no UPDATE, as the ORM wrote none.
    progress: dict[str, Any]
    credited_until: dt.datetime | None
    day: dt.date
    interval: dict[str, Any]


_INTERVAL_COLUMNS = (
    "session_id",
    "user_id",
    "lesson_id",
    "seq",
    "wall_start",
    "wall_end",
    "claimed_segments",
    "credited_segments",
    "claimed_ms",
    "credited_ms",
    "verdict",
    "reasons",
    "client",
    "created_at",
)
_JSON_INTERVAL = frozenset({"claimed_segments", "credited_segments", "reasons", "client"})
#: The progress columns a beat may change; the last two when it completes the lesson
#: (``services._beat_completion``).
_PROGRESS_ORDER = ("credited_segments", "coverage_bp", "read_ms", "position_ms", "status", "completed_at")


@functools.cache
def _pg_write(progress: tuple[str, ...], clock: bool, daily: bool) -> str:
    """The write as one statement: the changes as CTEs around the interval INSERT.

    PostgreSQL runs every data-modifying CTE to completion whether or not it is read."""
    parts = [
        "s AS (UPDATE learning_sessions SET last_seq = %(seq)s, last_beat_at = %(now)s, budget_from = %(budget_from)s, "
        "claimed_ms = claimed_ms + %(claimed_total_ms)s, credited_ms = credited_ms + %(credited_ms)s, "
        "unreported_ms = %(unreported_ms)s, ended_at = coalesce(%(ended_at)s, ended_at) WHERE id = %(session_id)s)"
    ]
    if progress:
        sets = ", ".join(f"{name} = %(p_{name})s" for name in progress)
        # The names are this module's constants; every value is a bound parameter.
        parts.append(f"p AS (UPDATE lesson_progress SET {sets}, updated_at = %(p_updated_at)s WHERE id = %(p_id)s)")  # noqa: S608
    if clock:
        parts.append(
            "c AS (UPDATE learning_person_clocks SET credited_until = %(credited_until)s WHERE user_id = %(user_id)s)"
        )
    if daily:
        parts.append(
            "d AS (INSERT INTO learning_daily_totals (user_id, day, credited_ms) "
            "VALUES (%(user_id)s, %(day)s, %(credited_ms)s) ON CONFLICT (user_id, day) "
            "DO UPDATE SET credited_ms = learning_daily_totals.credited_ms + excluded.credited_ms)"
        )
    columns = ", ".join(_INTERVAL_COLUMNS)
    values = ", ".join(f"%(i_{c})s" for c in _INTERVAL_COLUMNS)
    return f"WITH {', '.join(parts)} INSERT INTO learning_intervals ({columns}) VALUES ({values})"  # noqa: S608


def write(w: BeatWrite) -> None:
    """Apply one accepted beat: session, progress, clock, ledger interval, day total."""
    st = w.state
    pg = is_pg()
    if pg:
        batch = beat_group.active()
        if batch is not None:
            # Kept for the round's write, as the rows it writes (``_write_many``).
            batch.add(_NAME, _write_many, _round_rows(w, utcnow()), _TABLES, first=True)
            _expire_loaded(st)
            return
    progress = tuple(name for name in _PROGRESS_ORDER if name in w.progress)
    clock = w.credited_until is not None
    daily = w.credited_ms > 0
    params: dict[str, Any] = {
        "session_id": st.session_id,
        "user_id": st.user_id,
        "seq": w.seq,
        "now": w.now,
        "budget_from": w.budget_from,
        "claimed_total_ms": w.claimed_total_ms,
        "credited_ms": w.credited_ms,
        "unreported_ms": w.unreported_ms,
        "ended_at": w.ended_at,
        "credited_until": w.credited_until,
        "day": w.day,
        "p_id": st.progress_id,
        "p_updated_at": utcnow(),
    }
    if pg:
        for name in progress:
            value = w.progress[name]
            params[f"p_{name}"] = json_text(value) if name == "credited_segments" else value
        for name in _INTERVAL_COLUMNS:
            value = w.interval[name]
            params[f"i_{name}"] = json_text(value) if name in _JSON_INTERVAL else value
        _pg(_pg_write(progress, clock, daily), params, fetch=False)
    else:
        _sqlite_write(w, params, progress, clock, daily)
    _expire_loaded(st)


#: A round's columns, per table: sessions, progress (the columns a beat may change come as NULL
#: when it did not), clocks, day totals (in the order of ``_write_many``'s tuples).
_S_COLUMNS = (
    "id",
    "last_seq",
    "last_beat_at",
    "budget_from",
    "claimed_ms",
    "credited_ms",
    "unreported_ms",
    "ended_at",
)
_P_COLUMNS = ("id", "updated_at", *_PROGRESS_ORDER)
_C_COLUMNS = ("user_id", "credited_until")
_D_COLUMNS = ("user_id", "day", "credited_ms")


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


#: The round's rows of each table, one parameter per column (``pg_arrays``).
_S_ROWS = pg_arrays.Rows(_table(LearningSession), "s", _S_COLUMNS)
_P_ROWS = pg_arrays.Rows(_table(LessonProgress), "p", _P_COLUMNS)
#: Columns that repeat another table's in a steady round (every beat of it has a clock, a day and an
#: interval row, in the sessions' order; what a straight beat writes): sent once, when the texts are
#: the same (``pg_arrays.Rows.same``; docs/benchmarks.md, "columns a round repeats"). Not the clock's
#: ``credited_until`` (the session's ``budget_from`` in only 18 of 72 rounds of ``bench/round_bytes.py``).
_C_ROWS = pg_arrays.Rows(_table(PersonClock), "c", _C_COLUMNS)
_D_ROWS = pg_arrays.Rows(
    _table(DailyTotal), "d", _D_COLUMNS, same={"user_id": "c_user_id", "credited_ms": "s_credited_ms"}
)
_I_ROWS = pg_arrays.Rows(
    _table(LearningInterval),
    "i",
    _INTERVAL_COLUMNS,
    same={
        "session_id": "s_id",
        "seq": "s_last_seq",
        "wall_end": "s_last_beat_at",
        "claimed_ms": "s_claimed_ms",
        "credited_ms": "s_credited_ms",
    },
)

_columns = ", ".join(_INTERVAL_COLUMNS)
#: A round's writes (``beat_group``) as one statement: each table's rows as one parameter per
#: column (``pg_arrays.Rows``). A round has one beat per person, so no row is changed twice by
#: one statement (which PostgreSQL refuses). The table and column names are this module's
#: constants; every value is a bound parameter.
_PG_WRITE_MANY = (
    "WITH s AS (UPDATE learning_sessions AS t SET last_seq = v.last_seq, last_beat_at = v.last_beat_at, "  # noqa: S608
    "budget_from = v.budget_from, claimed_ms = t.claimed_ms + v.claimed_ms, "
    "credited_ms = t.credited_ms + v.credited_ms, unreported_ms = v.unreported_ms, "
    f"ended_at = coalesce(v.ended_at, t.ended_at) FROM {_S_ROWS.sql} WHERE t.id = v.id), "
    # A column the beat did not change comes as NULL (kept: none of the first four is nullable, and a
    # completion only ever sets ``completed_at``).
    "p AS (UPDATE lesson_progress AS t SET credited_segments = coalesce(v.credited_segments, t.credited_segments), "
    "coverage_bp = coalesce(v.coverage_bp, t.coverage_bp), read_ms = coalesce(v.read_ms, t.read_ms), "
    "position_ms = coalesce(v.position_ms, t.position_ms), status = coalesce(v.status, t.status), "
    f"completed_at = coalesce(v.completed_at, t.completed_at), updated_at = v.updated_at FROM {_P_ROWS.sql} "
    "WHERE t.id = v.id), "
    f"c AS (UPDATE learning_person_clocks AS t SET credited_until = v.credited_until FROM {_C_ROWS.sql} "
    "WHERE t.user_id = v.user_id), "
    "d AS (INSERT INTO learning_daily_totals (user_id, day, credited_ms) SELECT v.user_id, v.day, v.credited_ms "
    f"FROM {_D_ROWS.sql} WHERE true "
    "ON CONFLICT (user_id, day) DO UPDATE SET credited_ms = learning_daily_totals.credited_ms + excluded.credited_ms) "
    f"INSERT INTO learning_intervals ({_columns}) SELECT {_columns} FROM {_I_ROWS.sql} ORDER BY v.ord"
)


#: The rows whose repeated columns a round's write may take from another table's (``_write_many``).
_SHARING = (_D_ROWS, _I_ROWS)


@functools.cache
def _pg_write_many(shared: tuple[bool, ...]) -> str:
    """:data:`_PG_WRITE_MANY` with the rows of :data:`_SHARING` whose ``shared`` is true taking their
    repeated columns from the parameters they repeat (``pg_arrays.Rows.sql_shared``)."""
    sql = _PG_WRITE_MANY
    for rows, on in zip(_SHARING, shared, strict=True):
        if on:
            sql = sql.replace(rows.sql, rows.sql_shared)
    return sql


#: The tables the round's write changes.
_TABLES = (
    "learning_sessions",
    "lesson_progress",
    "learning_person_clocks",
    "learning_daily_totals",
    "learning_intervals",
)


#: One beat's rows for the round's write: its session row, then its progress, clock and day
#: rows (``None``: none), then its interval row (in ``_INTERVAL_COLUMNS`` order).
RoundRows = tuple[
    tuple[Any, ...], tuple[Any, ...] | None, tuple[Any, ...] | None, tuple[Any, ...] | None, tuple[Any, ...]
]
_interval_row = operator.itemgetter(*_INTERVAL_COLUMNS)


def _round_rows(w: BeatWrite, updated_at: dt.datetime) -> RoundRows:
    """A beat's values (:func:`write`) as the rows of the round's write; ``updated_at``: the time
    the write was kept (the progress row's)."""
    st = w.state
    changed = w.progress
    return (
        (st.session_id, w.seq, w.now, w.budget_from, w.claimed_total_ms, w.credited_ms, w.unreported_ms, w.ended_at),
        (st.progress_id, updated_at, *(changed.get(n) for n in _PROGRESS_ORDER)) if changed else None,
        (st.user_id, w.credited_until) if w.credited_until is not None else None,
        (st.user_id, w.day, w.credited_ms) if w.credited_ms > 0 else None,
        _interval_row(w.interval),
    )


def write_straight(
    st: BeatState,
    now: dt.datetime,
    seq: int,
    budget_from: dt.datetime,
    claimed_total_ms: int,
    credited_ms: int,
    unreported_ms: int,
    progress: dict[str, Any],
    credited_until: dt.datetime | None,
    day: dt.date,
    interval: tuple[Any, ...],
) -> None:
    """:func:`write` for ``services._record_straight`` (no session end): the same rows, kept for
    a round's write as its tuples without a :class:`BeatWrite` or the interval's dict; alone
    (no round, or SQLite), through :func:`write`."""
    if is_pg():
        batch = beat_group.active()
        if batch is not None:
            rows: RoundRows = (
                (st.session_id, seq, now, budget_from, claimed_total_ms, credited_ms, unreported_ms, None),
                _straight_progress(st.progress_id, progress) if progress else None,
                (st.user_id, credited_until) if credited_until is not None else None,
                (st.user_id, day, credited_ms) if credited_ms > 0 else None,
                interval,
            )
            batch.add(_NAME, _write_many, rows, _TABLES, first=True)
            _expire_loaded(st)
            return
    write(
        BeatWrite(
            st,
            now,
            seq,
            budget_from,
            claimed_total_ms,
            credited_ms,
            unreported_ms,
            None,
            progress,
            credited_until,
            day,
            dict(zip(_INTERVAL_COLUMNS, interval, strict=True)),
        )
    )


def _straight_progress(progress_id: int, progress: dict[str, Any]) -> tuple[Any, ...]:
    """A straight beat's progress row for the round's write (``_P_COLUMNS``' order): ``read_ms``
    (the steady state), with the completion's ``status`` and ``completed_at`` when it completes.
    Spelled out rather than a generator over ``_PROGRESS_ORDER`` (a generator frame and six
    ``dict.get`` calls a beat); any other column changed takes the generator.
    ``test_beat_straight`` compares the rows with the general path's."""
    get = progress.get
    if progress.keys() <= _STRAIGHT_PROGRESS:
        return (progress_id, utcnow(), None, None, get("read_ms"), None, get("status"), get("completed_at"))
    return (progress_id, utcnow(), *(get(n) for n in _PROGRESS_ORDER))


#: The progress columns a straight beat changes (:func:`_straight_progress`).
_STRAIGHT_PROGRESS = frozenset({"read_ms", "status", "completed_at"})


def _write_many(items: list[RoundRows]) -> None:
    """The round's kept writes (each beat's rows, :func:`_round_rows`) in one statement, with the
    values one by one would write."""
    sessions: list[tuple[Any, ...]] = []
    progress_rows: list[tuple[Any, ...]] = []
    clocks: list[tuple[Any, ...]] = []
    days: list[tuple[Any, ...]] = []
    intervals: list[tuple[Any, ...]] = []
    for session, progress, clock, day, interval in items:
        sessions.append(session)
        if progress is not None:
            progress_rows.append(progress)
        if clock is not None:
            clocks.append(clock)
        if day is not None:
            days.append(day)
        intervals.append(interval)
    params = {**_S_ROWS.params(sessions), **_P_ROWS.params(progress_rows), **_C_ROWS.params(clocks)}
    shared = []
    for rows, values in zip(_SHARING, (days, intervals), strict=True):
        own = rows.params(values)
        shared.append(rows.shared(own, params))
        params.update(own)
    _pg(_pg_write_many(tuple(shared)), params, fetch=False)


def _sqlite_write(w: BeatWrite, params: dict[str, Any], progress: tuple[str, ...], clock: bool, daily: bool) -> None:
    conn = db.session.connection()
    bound = {f"b_{k}": v for k, v in params.items()}
    conn.execute(_sqlite_session_update(), bound)
    if progress:
        conn.execute(_sqlite_progress_update(progress), {**bound, **{f"b_p_{n}": w.progress[n] for n in progress}})
    if clock:
        conn.execute(_sqlite_clock_update(), bound)
    conn.execute(_table(LearningInterval).insert(), w.interval)
    if daily:
        conn.execute(_sqlite_daily_upsert(), bound)


def _bind(name: str, table: Table, column: str) -> Any:
    # Prefixed: a bound name may not be a column name of the statement it sets.
    return bindparam(f"b_{name}", type_=table.c[column].type)


@functools.cache
def _sqlite_session_update() -> Any:
    t = _table(LearningSession)
    return (
        update(t)
        .where(t.c.id == _bind("session_id", t, "id"))
        .values(
            last_seq=_bind("seq", t, "last_seq"),
            last_beat_at=_bind("now", t, "last_beat_at"),
            budget_from=_bind("budget_from", t, "budget_from"),
            claimed_ms=t.c.claimed_ms + _bind("claimed_total_ms", t, "claimed_ms"),
            credited_ms=t.c.credited_ms + _bind("credited_ms", t, "credited_ms"),
            unreported_ms=_bind("unreported_ms", t, "unreported_ms"),
            ended_at=func.coalesce(_bind("ended_at", t, "ended_at"), t.c.ended_at),
        )
    )


@functools.cache
def _sqlite_progress_update(progress: tuple[str, ...]) -> Any:
    t = _table(LessonProgress)
    values = {name: _bind(f"p_{name}", t, name) for name in progress}
    return (
        update(t)
        .where(t.c.id == _bind("p_id", t, "id"))
        .values(**values, updated_at=_bind("p_updated_at", t, "updated_at"))
    )


@functools.cache
def _sqlite_clock_update() -> Any:
    t = _table(PersonClock)
    return (
        update(t)
        .where(t.c.user_id == _bind("user_id", t, "user_id"))
        .values(credited_until=_bind("credited_until", t, "credited_until"))
    )


@functools.cache
def _sqlite_daily_upsert() -> Any:
    t = _table(DailyTotal)
    stmt = sqlite.insert(t).values(
        user_id=_bind("user_id", t, "user_id"),
        day=_bind("day", t, "day"),
        credited_ms=_bind("credited_ms", t, "credited_ms"),
    )
    return stmt.on_conflict_do_update(
        index_elements=["user_id", "day"], set_={"credited_ms": t.c.credited_ms + stmt.excluded.credited_ms}
    )


def _expire_loaded(st: BeatState) -> None:
    """ORM objects of these rows already loaded in this session (a test, a demo) are stale now."""
    session = beat_tx.session()
    identity = session.identity_map
    if not len(identity):
        return
    for key in (
        (LearningSession, (st.session_id,), None),
        (LessonProgress, (st.progress_id,), None),
        (PersonClock, (st.user_id,), None),
    ):
        obj = identity.get(key)
        if obj is not None:
            session.expire(obj)
