"""The beat path's plugin statements on PostgreSQL: prepared on the raw psycopg connection.

Through SQLAlchemy each statement of the beat path cost more CPU (cache key, parameter
and result processing) than PostgreSQL spends running it (docs/anti_idle.md, "Heartbeat
ingestion"), and the plugin sent four per beat. Here they are two, sent on the session's
connection (so in the beat's transaction) and prepared once per connection by psycopg,
as ``lms_core.learning.beat_rows`` does for the core's rows:

* **read** (:func:`load`): the person's state row (unlocked: ``state.forget_days``), the version of the
  policy in force for the beat's course, and the person's checks in the rules' window
  (the same predicate as ``inputs._checks_statement``), as one array per column;
* **write** (:func:`save`): the raw beat's INSERT as a data-modifying CTE in front of the
  state row's upsert (PostgreSQL runs the CTE whether or not it is read).

``state.py`` decides what is read and written; SQLite (tests, development) runs the
same reads and writes as Core statements there.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import time
from typing import Any, cast

import msgspec
import psycopg
from psycopg.types.string import TextLoader
from sqlalchemy import Table

from lms_core.learning import beat_group, beat_rows, pg_arrays
from lms_core.learning.beat_rows import json_text
from plugins.anti_idle import els, models
from plugins.anti_idle.inputs import CLOCK_STEP_MARGIN, LastCheck, Owed

#: The state row's JSON columns.
_STATE_JSON = frozenset({"sessions", "lessons", "day_tally"})

_LOAD = (
    "SELECT st.day, st.day_credited_ms, st.focus_session, st.focus_until, st.sessions, st.lessons, st.tally_day, "
    "st.day_tally, "
    # policy.policy_version_statement: the course's newest override before the newest site-wide version,
    # as two maxima (the site-wide one is not per row: PostgreSQL computes it once per statement, an
    # InitPlan), not a sort of the policies per row
    "coalesce((SELECT max(p.id) FROM anti_idle_policies AS p WHERE p.course_id = %(course_id)s), "
    "(SELECT max(p.id) FROM anti_idle_policies AS p WHERE p.course_id IS NULL)), "
    "ck.session_id, ck.issued_at, ck.due_at, ck.answered_at, ck.outcome, ck.trusted, ck.latency_ms "
    "FROM anti_idle_person_states AS st CROSS JOIN LATERAL ("
    # The seven arrays in id order from one ordered subquery: an aggregate's own ORDER BY set up a
    # sort per aggregate for every person (PostgreSQL 15), seven a row, checks or none; a plain
    # aggregate over an ordered subquery of one table takes its rows in that order.
    "SELECT array_agg(c.session_id) AS session_id, array_agg(c.issued_at) AS issued_at, "
    "array_agg(c.due_at) AS due_at, array_agg(c.answered_at) AS answered_at, "
    "array_agg(c.outcome) AS outcome, array_agg(c.trusted) AS trusted, array_agg(c.latency_ms) AS latency_ms "
    "FROM (SELECT c.session_id, c.issued_at, c.due_at, c.answered_at, c.outcome, c.trusted, c.latency_ms "
    # inputs._checks_statement's predicate: any check whose overdue span can reach the beat
    "FROM anti_idle_checks AS c WHERE c.user_id = st.user_id AND c.issued_at <= %(until)s "
    "AND (c.due_at >= %(since)s OR c.answered_at IS NULL OR c.answered_at >= %(since)s) ORDER BY c.id) AS c) AS ck "
    "WHERE st.user_id = %(user_id)s"
)

#: On a video beat, also what ``checks.beat_check`` asks: the person's last check and the
#: playing time since its reference (``checks._playing_ms_since(remember=False)``: the
#: memo's sum when it has the same reference, plus the ledger intervals after it; not
#: summed while a check is open, when nothing more can be owed).
_LOAD_VIDEO = _LOAD.replace(
    " FROM anti_idle_person_states AS st ",
    ", lc.outcome, lc.issued_at, lc.answered_at, "
    "CASE WHEN mc.valid THEN cc.played_ms ELSE 0 END + coalesce(pl.added, 0) "
    "FROM anti_idle_person_states AS st ",
).replace(
    " WHERE st.user_id = %(user_id)s",
    " LEFT JOIN LATERAL (SELECT c.outcome, c.issued_at, c.answered_at, coalesce(c.answered_at, c.issued_at) AS ref "
    "FROM anti_idle_checks AS c WHERE c.user_id = st.user_id ORDER BY c.id DESC LIMIT 1) AS lc ON true "
    "LEFT JOIN anti_idle_check_clocks AS cc ON cc.user_id = st.user_id "
    "CROSS JOIN LATERAL (SELECT cc.user_id IS NOT NULL AND cc.reference_at IS NOT DISTINCT FROM lc.ref AS valid) AS mc "
    "LEFT JOIN LATERAL (SELECT sum(i.claimed_ms) AS added FROM learning_intervals AS i "
    "WHERE lc.outcome IS DISTINCT FROM 'pending' AND i.user_id = st.user_id "
    "AND i.id > CASE WHEN mc.valid THEN cc.through_id ELSE 0 END "
    "AND i.wall_end > coalesce(lc.ref, '-infinity') "
    "AND i.wall_end >= CASE WHEN mc.valid THEN coalesce(cc.through_wall_end - %(margin)s, '-infinity') "
    "ELSE '-infinity' END) AS pl ON true"
    " WHERE st.user_id = %(user_id)s",
)

_UPSERT = (
    "INSERT INTO anti_idle_person_states (user_id, day, day_credited_ms, focus_session, focus_until, sessions, "
    "lessons, tally_day, day_tally) VALUES (%(user_id)s, %(day)s, %(day_credited_ms)s, %(focus_session)s, "
    "%(focus_until)s, %(sessions)s, %(lessons)s, %(tally_day)s, %(day_tally)s) ON CONFLICT (user_id) DO UPDATE SET "
    "day = excluded.day, day_credited_ms = excluded.day_credited_ms, focus_session = excluded.focus_session, "
    "focus_until = excluded.focus_until, sessions = excluded.sessions, lessons = excluded.lessons, "
    "tally_day = excluded.tally_day, day_tally = excluded.day_tally"
)

#: The raw beat's JSON columns (``services.beat_row``'s keys are the column names).
_BEAT_JSON = frozenset({"claimed", "client", "credited", "cuts", "flags", "session_covered"})


def execute(
    sql: str, params: dict[str, Any], *, fetch: bool = False, names: tuple[str, ...] | None = None
) -> tuple[Any, ...] | None:
    """One statement on the session's connection (its transaction), prepared by psycopg;
    the first row if ``fetch`` (the only door to the database here: tests count through it).

    On the core's kept cursor (``beat_rows.cursor``): a new cursor per statement set up its
    adapters and its result columns' loaders again on every beat. ``names``: ``sql`` has
    PostgreSQL's own placeholders (``$1``, ... of :func:`_numbered`), given ``params`` in
    that order, on a kept :class:`psycopg.RawCursor`."""
    batch = beat_group.active()
    if batch is not None:
        batch.flush_for(sql)  # a round's kept writes first (a no-op for the batch's own statement)
    if names is None:
        cur = beat_rows.cursor()
        cur.execute(sql, params, prepare=True)
    else:
        cur = _raw_cursor()
        cur.execute(sql, [params[name] for name in names], prepare=True)
    return cur.fetchone() if fetch else None


def rows(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """:func:`execute`'s statement, all its rows (a read of many people, e.g. a round's holds)."""
    batch = beat_group.active()
    if batch is not None:
        batch.flush_for(sql)
    cur = beat_rows.cursor()
    cur.execute(sql, params, prepare=True)
    return list(cur.fetchall())


#: Where the raw cursor is kept: in the pool's record of the connection, as ``beat_rows.cursor``'s.
_RAW_CURSOR = "lms_anti_idle_raw_cursor"


def _raw_cursor() -> Any:
    """The session connection's :class:`psycopg.RawCursor`, kept per connection (``beat_rows.cursor``)."""
    return beat_rows.kept_cursor(_RAW_CURSOR, psycopg.RawCursor)


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql``'s ``%(name)s`` placeholders as PostgreSQL's ``$1``, ``$2``, ... (a name used twice
    keeps its number), and the names in their numbers' order (:func:`execute`'s ``names``).

    psycopg turns a statement's named placeholders into numbered ones on each execution, and
    keeps the result only for a statement of at most 4096 bytes and 50 parameters
    (``psycopg._queries.MAX_CACHED_STATEMENT_LENGTH``); a longer one is parsed again every time.
    The round's write with the raw beats is 4.4 kB: its parse (a regular expression over the
    text, then a part per placeholder) cost ~0.6 ms per write at load 10, most of
    :func:`_write_many`'s Python (docs/benchmarks.md, "the person state's round trip")."""
    numbers: dict[str, int] = {}

    def number(found: re.Match[str]) -> str:
        return f"${numbers.setdefault(found[1], len(numbers) + 1)}"

    return _PLACEHOLDER.sub(number, sql), tuple(numbers)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """As ``lms_core.db.UTCDateTime`` hands them back (psycopg answers in the session's zone)."""
    return None if value is None else value.astimezone(dt.UTC)


def load(
    user_id: int, course_id: int, since: dt.datetime, until: dt.datetime, *, video: bool = False
) -> tuple[tuple[Any, ...], int | None, list[els.CheckInput], Owed | None] | None:
    """(state columns, policy version in force, checks, what ``beat_check`` asks if
    ``video``), the row unlocked (the beat holds the clock); None: no row."""
    params: dict[str, Any] = {"user_id": user_id, "course_id": course_id, "since": since, "until": until}
    if video:
        params["margin"] = CLOCK_STEP_MARGIN
    found = execute(_LOAD_VIDEO if video else _LOAD, params, fetch=True)
    if found is None:
        return None
    # The read's predicate is the beat's own window, so _unpack's filter keeps every check.
    return _unpack(found, since, until, video)


@functools.cache
def _save(columns: tuple[str, ...]) -> str:
    """The upsert, behind the beat's INSERT when ``columns`` (the beat's) are given."""
    if not columns:
        return _UPSERT
    values = ", ".join(f"%(b_{name})s" for name in columns)
    # The names are the beat row's keys (``services.beat_row``), never input; values are bound.
    return f"WITH b AS (INSERT INTO anti_idle_beats ({', '.join(columns)}) VALUES ({values})) {_UPSERT}"  # noqa: S608


def _beat_params(beat: dict[str, Any]) -> dict[str, Any]:
    return {f"b_{k}": json_text(v) if k in _BEAT_JSON else v for k, v in beat.items()}


def save(values: dict[str, Any], beat: dict[str, Any] | None) -> None:
    """The state row's upsert, with the raw beat's INSERT in the same statement if given."""
    forget(values["user_id"])  # written here, not kept: the next read decodes it
    params = {k: json_text(v) if k in _STATE_JSON and v is not None else v for k, v in values.items()}
    columns: tuple[str, ...] = ()
    if beat is not None:
        params.update(_beat_params(beat))
        columns = tuple(beat)
    execute(_save(columns), params)


@functools.cache
def _insert(columns: tuple[str, ...]) -> str:
    values = ", ".join(f"%(b_{name})s" for name in columns)
    return f"INSERT INTO anti_idle_beats ({', '.join(columns)}) VALUES ({values})"  # noqa: S608


def insert_beat(beat: dict[str, Any]) -> None:
    """The raw beat by itself (a day about to be replayed must find it stored)."""
    execute(_insert(tuple(beat)), _beat_params(beat))


# -- a round of a beat group (``lms_core/learning/beat_group``): one read, one write ----------

#: The plugin's name in a round's batch.
_NAME = "anti_idle"

#: The read of :func:`load` (its video form, which also brings what ``beat_check`` asks)
#: for every person of a round: their state rows, unlocked (the round read before it holds
#: their clocks; no order needed), each with the policy version in force for their beat's course. The
#: checks' window is the widest of the round's (``until`` open); each beat keeps its own
#: (:func:`take`, the same predicate in Python). What ``beat_check`` asks is summed for a
#: video beat only (``k.video``): a document beat never reads it, and for a person without
#: a check clock the sum runs over every ledger interval they have, growing all day.
_LOAD_MANY = (
    _LOAD_VIDEO.replace(
        "CASE WHEN mc.valid THEN cc.played_ms ELSE 0 END + coalesce(pl.added, 0) ",
        "CASE WHEN mc.valid THEN cc.played_ms ELSE 0 END + coalesce(pl.added, 0), st.user_id, st.xmin::text::bigint ",
    )
    .replace("p.course_id = %(course_id)s", "p.course_id = k.course_id")
    .replace(
        " FROM anti_idle_person_states AS st ",
        " FROM unnest(%(user_ids)s::bigint[], %(course_ids)s::bigint[], %(videos)s::boolean[]) "
        "AS k(user_id, course_id, video) JOIN anti_idle_person_states AS st ON st.user_id = k.user_id ",
    )
    .replace(
        "WHERE lc.outcome IS DISTINCT FROM 'pending' AND", "WHERE k.video AND lc.outcome IS DISTINCT FROM 'pending' AND"
    )
    # A document beat's row never reads the last check or the check clock (_unpack, video
    # only): not looked up for it.
    .replace(
        "FROM anti_idle_checks AS c WHERE c.user_id = st.user_id ORDER BY c.id DESC LIMIT 1",
        "FROM anti_idle_checks AS c WHERE k.video AND c.user_id = st.user_id ORDER BY c.id DESC LIMIT 1",
    )
    .replace("AS cc ON cc.user_id = st.user_id", "AS cc ON k.video AND cc.user_id = st.user_id")
    .replace(" WHERE st.user_id = %(user_id)s", "")
)
assert (
    "= k.course_id" in _LOAD_MANY
    and "unnest(" in _LOAD_MANY
    and "WHERE st.user_id" not in _LOAD_MANY
    and "st.xmin::text::bigint" in _LOAD_MANY
    and _LOAD_MANY.count("k.video AND") == 3
)  # every replace took
#: The round's checks window reaches this much further back than any of its beats' (a
#: server clock stepping back between the read and a beat must not lose a check).
_WINDOW_MARGIN = CLOCK_STEP_MARGIN
_FAR = dt.datetime.max.replace(tzinfo=dt.UTC)


def prefetch(batch: Any, people: list[tuple[int, int, bool]], since: dt.datetime) -> None:
    """Read the state rows of a round's ``(user id, course id, video)`` (one per
    person) and keep them in ``batch`` for :func:`take`; a person without a row is left out
    (their beat reads for itself, as a first beat does)."""
    user_ids, course_ids, videos = zip(*people, strict=True)
    # Array literals (msgspec's JSON, ``pg_arrays``), cast in the statement: psycopg's list
    # dumper is a Python call per element.
    params = {
        "user_ids": pg_arrays.literal(user_ids),
        "course_ids": pg_arrays.literal(course_ids),
        "videos": pg_arrays.literal(videos),
        "since": since - _WINDOW_MARGIN,
        "until": _FAR,
        "margin": CLOCK_STEP_MARGIN,
    }
    cur = _read_cursor()
    cur.execute(_LOAD_MANY, params, prepare=True)
    rows = cur.fetchall()
    kinds = {user_id: (course_id, video) for user_id, course_id, video in people}
    batch.read[_NAME] = {row[20]: (*kinds[row[20]], row) for row in rows}


#: Where the round read's cursor is kept (``beat_rows.cursor``'s way): its own, as its JSON
#: columns come back as text.
_READ_CURSOR = "lms_anti_idle_read_cursor"


def _read_cursor() -> Any:
    """The session connection's cursor for :func:`prefetch`, kept per connection: its ``json``
    columns are loaded as their text (psycopg's C text loader), :func:`take` parses them. The
    JSON loader psycopg calls per value is Python (a method, a check of the buffer's type,
    then the ``loads`` function); a cursor per round also set its loaders up again."""
    return beat_rows.kept_cursor(_READ_CURSOR, _text_json_cursor)


def _text_json_cursor(raw: Any) -> Any:
    cur = raw.cursor()
    cur.adapters.register_loader("json", TextLoader)
    return cur


#: msgspec's JSON decoder (C) for the round's JSON columns (state sessions, lessons, day
#: tally): ``json.loads`` took ~45 µs per beat for the three, this ~10 (load 9).
_DECODE = msgspec.json.Decoder().decode


def _json_loads(data: str | None) -> Any:
    """A JSON column's text as ``json.loads`` (psycopg's default) gives it (SQL NULL: None):
    JSON that msgspec refuses (a lone surrogate, a number beyond a float) goes to ``json.loads``."""
    if data is None:
        return None
    try:
        return _DECODE(data)
    except msgspec.DecodeError:
        return json.loads(data)


# -- the decoded state of the rows this process wrote last -----------------------------------
#
# A person's beats come ~10 s apart, nearly always to the same worker (their keep-alive
# connection), and between two of them nobody else writes their state row. Decoding the
# row's three JSON columns on every beat (sessions, lessons and the ~800-byte day tally)
# gave back, nearly always, the very objects this process had just written. So the round's
# write returns each state row's new ``xmin`` (the id of the transaction, or subtransaction,
# that wrote that row version), and the objects written are kept under it, by user; the
# round's read returns the row's ``xmin`` too, and a person whose row still has the kept
# ``xmin`` takes the kept objects instead of decoding the text.
#
# Why that is exact: a row version's ``xmin`` is the transaction that wrote it, and a
# transaction id is never given twice. Any other writer (the other worker, a recompute, an
# admin's tool, a restart's first beat) writes a new version with another ``xmin``; a
# rolled-back round leaves the previous version, whose ``xmin`` is not the kept one. The one
# writer the ``xmin`` cannot tell apart is a later write *in the same transaction*: every
# other write of the state row in this process (``save``, ``state.forget_day(s)``) drops
# the person's kept objects. An entry is taken (removed) by the beat that uses it, which
# then changes those objects in place (``state.advance``, ``verdicts.record_online``): a
# beat that fails before its write leaves nothing behind. ``xmin`` is 32 bits: no entry
# lives longer than :data:`_KEPT_FOR` seconds, so none can live long enough for the counter
# to come round (2**32 transactions), and the memory stays bounded.
#
# Two generations, not one map dropped whole every :data:`_KEPT_FOR` seconds: that drop freed
# every person's objects at once (10,000 people a worker at the scale: ~106 M
# instructions, ~28 ms of the writer with the GIL held, in both workers at about the same
# moment, both having started together), then for a cadence every beat decoded its row again
# (+52 k instructions a beat). Now the written objects go to the young map; every half of
# :data:`_KEPT_FOR` the young map becomes the old one and the old one is dropped. A person
# who beats takes their entry from either map and the write puts it in the young one, so
# what a turn drops is only the people who wrote nothing for half of ``_KEPT_FOR``: those
# who stopped (docs/benchmarks.md, "(issue 8, periodic)").

_Kept = dict[int, tuple[int, dict[str, list[Any]], dict[str, int], dict[str, Any] | None]]
#: user id -> (the row's ``xmin`` as written, sessions, lessons, day tally: ``state.State``'s
#: objects): the young generation, where each write puts what it wrote...
_KEPT: _Kept = {}
#: ... and the old one, what was written in the half-period before (taken from as well).
_KEPT_OLD: _Kept = {}
#: How long kept objects may live at most (seconds; each generation lives half of it), and how many at most.
_KEPT_FOR = 600.0
_KEPT_MAX = 50_000  # ~2-3 kB of objects each: at most ~150 MB a worker
#: When the young generation began (:func:`time.monotonic`; a module attribute so tests can move it).
_kept_since = [time.monotonic()]
clock = time.monotonic


def forget(user_id: int) -> None:
    """Drop the kept objects of a person whose state row is written some other way."""
    _KEPT.pop(user_id, None)
    _KEPT_OLD.pop(user_id, None)


def forget_all() -> None:
    """Drop every kept object (tests; a process that may have missed a write)."""
    _KEPT.clear()
    _KEPT_OLD.clear()
    _kept_since[0] = clock()


def _turn(now: float) -> None:
    """The young generation becomes the old one; the old one, what nobody took from it for
    half of :data:`_KEPT_FOR`, is dropped."""
    global _KEPT, _KEPT_OLD  # noqa: PLW0603 - the process's kept objects are one
    _KEPT_OLD = _KEPT
    _KEPT = {}
    _kept_since[0] = now


def _keep_written(rows: list[tuple[int, int]], objects: dict[int, Any]) -> None:
    """Keep the objects just written under each row's new ``xmin`` (the write's RETURNING)."""
    now = clock()
    if now - _kept_since[0] > _KEPT_FOR / 2 or len(_KEPT) + len(_KEPT_OLD) + len(rows) > _KEPT_MAX:
        _turn(now)
        if len(_KEPT_OLD) + len(rows) > _KEPT_MAX:
            _KEPT_OLD.clear()
    for user_id, xmin in rows:
        kept = objects.get(user_id)
        if kept is not None:
            _KEPT[user_id] = (xmin, *kept)
        else:
            forget(user_id)


def take(
    batch: Any, user_id: int, course_id: int, since: dt.datetime, until: dt.datetime, *, video: bool
) -> tuple[tuple[Any, ...], int | None, list[els.CheckInput], Owed | None] | None:
    """What :func:`load` would answer, from the round's read (``None``: not read there, or for
    another course, or without what a video beat asks: the caller reads itself). Taken once.

    The JSON columns come as ``state.State`` keeps them (sessions and lessons as dicts):
    the objects this process wrote last if the row is still that version, else decoded."""
    found = batch.read.get(_NAME, {}).pop(user_id, None)
    if found is None or found[0] != course_id or (video and not found[1]):
        return None
    row = found[2]
    kept = _KEPT.pop(user_id, None)
    if kept is None:
        kept = _KEPT_OLD.pop(user_id, None)
    if kept is not None and kept[0] == row[21]:
        return _unpack(row, since, until, video, kept=kept)
    return _unpack(row, since, until, video, texts=True)


def _unpack(
    found: tuple[Any, ...],
    since: dt.datetime,
    until: dt.datetime,
    video: bool,
    *,
    texts: bool = False,
    kept: tuple[Any, ...] | None = None,
) -> tuple[tuple[Any, ...], int | None, list[els.CheckInput], Owed | None]:
    """``texts``: the JSON columns are their text (:func:`prefetch`'s read), parsed here into
    ``state.State``'s dicts; ``kept``: the row is the version this process wrote, whose
    objects these are (:data:`_KEPT`), the text is not read."""
    state = list(found[:8])
    state[3] = _utc(state[3])
    if kept is not None:
        state[4], state[5], state[7] = kept[1], kept[2], kept[3]
    elif texts:
        sessions, lessons = _json_loads(state[4]), _json_loads(state[5])
        state[4] = {entry[0]: entry[1:] for entry in sessions or ()}
        state[5] = {str(lesson): ms for lesson, ms in lessons or ()}
        state[7] = _json_loads(state[7])
    sessions, issued, due, answered, outcomes, trusted, latency = found[9:16]
    checks = []
    for i, session_id in enumerate(sessions or ()):
        issued_at, due_at, answered_at = issued[i].astimezone(dt.UTC), due[i].astimezone(dt.UTC), _utc(answered[i])
        # inputs._checks_statement's predicate for this beat's window (the read's was wider)
        if issued_at > until or not (due_at >= since or answered_at is None or answered_at >= since):
            continue
        checks.append(els.CheckInput(session_id, issued_at, due_at, answered_at, outcomes[i], trusted[i], latency[i]))
    owed = None
    if video:
        outcome, issued_at, answered_at, played = found[16:20]
        last = None if outcome is None else LastCheck(outcome, issued_at.astimezone(dt.UTC), _utc(answered_at))
        owed = Owed(last, int(played))
    return tuple(state), found[8], checks, owed


_STATE_COLUMNS = (
    "user_id",
    "day",
    "day_credited_ms",
    "focus_session",
    "focus_until",
    "sessions",
    "lessons",
    "tally_day",
    "day_tally",
)


#: The round's state rows, one parameter per column (``pg_arrays``).
_STATE_ROWS = pg_arrays.Rows(cast(Table, models.PersonState.__table__), "s", _STATE_COLUMNS)


#: The raw beat's columns that repeat its person's state row in a steady round (the row as this beat
#: left it, one beat a person): sent once when the texts are the same (``pg_arrays.Rows.same``). Not
#: ``credit_start`` (the beat's ``wall_start`` in only 3 of 12 rounds of ``bench/round_bytes.py``).
_BEAT_SAME = {  # column: the state rows' parameter it repeats
    "user_id": "s_user_id",
    "day_credited_ms": "s_day_credited_ms",
    "focus_session": "s_focus_session",
    "focus_until": "s_focus_until",
}


@functools.cache
def _beat_rows(columns: tuple[str, ...]) -> pg_arrays.Rows:
    """The round's raw beats of these columns (the beat row's keys, ``services.beat_row``)."""
    same = {c: param for c, param in _BEAT_SAME.items() if c in columns and param[2:] in columns}
    return pg_arrays.Rows(cast(Table, models.Beat.__table__), "b", columns, same=same)


@functools.cache
def _save_many(
    beat_columns: tuple[str, ...], existing: bool = False, shared: bool = False
) -> tuple[str, tuple[str, ...]]:
    """The round's raw beats and state rows in one statement (each column of their rows one
    parameter, ``pg_arrays``); one state row per person. Numbered (:func:`_numbered`)."""
    return _numbered(_save_many_sql(beat_columns, existing, shared))


def _save_many_sql(beat_columns: tuple[str, ...], existing: bool = False, shared: bool = False) -> str:
    """``existing``: every state row is one the round's read found (:func:`_write_many`), so a
    plain ``UPDATE``; otherwise the upsert. ``INSERT … ON CONFLICT DO UPDATE`` locks the row it
    finds before updating it (a ``Heap/LOCK`` WAL record a beat) since the round read no longer
    does (``state.forget_days``), and probes the key as an insert first; the ``UPDATE`` does
    neither. Both return each row's new version (the objects written are kept under it: :data:`_KEPT`).
    ``shared``: the beats' repeated columns taken from the parameters they repeat (``_BEAT_SAME``)."""
    state = ", ".join(_STATE_COLUMNS)
    if existing:
        sets = ", ".join(f"{name} = v.{name}" for name in _STATE_COLUMNS if name != "user_id")
        write = (
            f"UPDATE anti_idle_person_states AS t SET {sets} FROM {_STATE_ROWS.sql} "  # noqa: S608
            "WHERE t.user_id = v.user_id RETURNING t.user_id, t.xmin::text::bigint"
        )
    else:
        write = (
            f"INSERT INTO anti_idle_person_states ({state}) SELECT {state} FROM {_STATE_ROWS.sql} "  # noqa: S608
            "WHERE true " + _UPSERT[_UPSERT.index("ON CONFLICT") :] + " RETURNING user_id, xmin::text::bigint"
        )
    if not beat_columns:
        return write
    # The names are the beat row's keys (``services.beat_row``), never input.
    columns = ", ".join(beat_columns)
    rows = _beat_rows(beat_columns)
    return (
        f"WITH b AS (INSERT INTO anti_idle_beats ({columns}) SELECT {columns} "  # noqa: S608
        f"FROM {rows.sql_shared if shared else rows.sql} ORDER BY v.ord) {write}"
    )


def _write_many(items: list[tuple[Any, ...]]) -> None:
    """``items``: (the state row's values, the raw beat or None[, the ``state.State``'s objects
    written, to keep: :func:`keep`[, whether the row exists: the round's read found it]])."""
    beats = [item[1] for item in items if item[1] is not None]
    columns = _columns(beats)
    # A beat whose day was replayed saved its person's row before its own save: the last
    # values win, as the second upsert overwrote the first (all columns) one by one.
    states: dict[int, dict[str, Any]] = {}
    objects: dict[int, Any] = {}
    existing = True
    for item in items:
        user_id = item[0]["user_id"]
        states[user_id] = item[0]
        objects[user_id] = item[2] if len(item) > 2 else None
        existing = existing and len(item) > 3 and item[3]
    params = _STATE_ROWS.params_of(list(states.values()))
    shared = False
    if columns:
        rows = _beat_rows(columns)
        own = rows.params_of(beats)
        shared = rows.shared(own, params)  # the state rows' parameters (``_BEAT_SAME``)
        params.update(own)
    sql, names = _save_many(columns, existing, shared)
    execute(sql, params, names=names)
    written = _raw_cursor().fetchall()
    if len(written) != len(states):
        # A row the read found is gone (its person deleted meanwhile?): nothing of the round is
        # written (``beat_group.RoundFailed``); its beats are recorded again one by one.
        raise RuntimeError(f"{len(states) - len(written)} of the round's state rows were not found")
    _keep_written(written, objects)


def _columns(beats: list[dict[str, Any]]) -> tuple[str, ...]:
    """The raw beats' keys, in the order first seen: the first beat's when every other has the
    same keys (``services.beat_row``'s: nearly every round), without a dict of them per beat."""
    if not beats:
        return ()
    first = beats[0].keys()
    if all(beat.keys() == first for beat in beats):
        return tuple(first)
    seen: dict[str, None] = {}
    for beat in beats:
        seen.update(dict.fromkeys(beat))
    return tuple(seen)


def keep(
    batch: Any,
    values: dict[str, Any],
    beat: dict[str, Any] | None,
    objects: tuple[Any, ...] | None = None,
    *,
    exists: bool = False,
) -> None:
    """:func:`save` kept in the round's batch (written with the round's others). ``objects``:
    the ``state.State``'s sessions, lessons and day tally that ``values`` encode, kept once
    written (:data:`_KEPT`); nothing may change them after this. ``exists``: the row was read
    in this transaction (no one deletes it meanwhile: its writers hold the person's clock), so
    it is updated, not upserted, when every row of the round is such."""
    batch.add(_NAME, _write_many, (values, beat, objects, exists), ("anti_idle_beats", "anti_idle_person_states"))


# -- a round's day folds (``verdicts._fold_kept``): the day verdict and lesson rows in one statement --

#: The round's folds: each day verdict row by id (``verdicts.fold``'s values; the policy version
#: never lowered, the row's day rule findings kept whole (the online tally's are cut,
#: ``verdicts._FINDING_KEYS``), its ``published`` kept unless the fold publishes), then its lesson rows:
#: those that exist updated where a figure changed (the ORM's flush updated only those), the
#: others inserted in the order the folds listed them (the ORM added them in that order). The
#: person's beats are serialised by the core's clock lock, so no other writer adds a lesson row
#: between the statement's snapshot and its INSERT.
_FOLD_MANY = (
    "WITH v AS (SELECT * FROM jsonb_to_recordset(%(v)s::jsonb) AS v(id bigint, verdict text, review_score integer, "
    "rules jsonb, credited_ms bigint, held_ms bigint, deducted_ms bigint, void_ms bigint, claimed_ms bigint, "
    "beats integer, policy_version integer, tally jsonb, publish boolean, published jsonb, computed_at timestamptz)), "
    "dv AS (UPDATE anti_idle_day_verdicts AS d SET verdict = v.verdict, review_score = v.review_score, "
    "rules = v.rules, credited_ms = v.credited_ms, held_ms = v.held_ms, deducted_ms = v.deducted_ms, "
    "void_ms = v.void_ms, claimed_ms = v.claimed_ms, beats = v.beats, "
    "policy_version = greatest(d.policy_version, v.policy_version), "
    "tally = (v.tally - 'published' - 'day_rules') || jsonb_build_object("
    "'day_rules', coalesce(d.tally -> 'day_rules', '{}'::jsonb), "
    "'published', CASE WHEN v.publish THEN v.published ELSE d.tally -> 'published' END), "
    "computed_at = v.computed_at FROM v WHERE d.id = v.id), "
    "l AS (SELECT * FROM ROWS FROM (jsonb_to_recordset(%(l)s::jsonb) AS (day_verdict_id bigint, user_id bigint, "
    "lesson_id bigint, claimed_ms bigint, credited_ms bigint, deducted_ms bigint)) WITH ORDINALITY "
    "AS l(day_verdict_id, user_id, lesson_id, claimed_ms, credited_ms, deducted_ms, n)), "
    "dl AS (UPDATE anti_idle_day_lessons AS x SET claimed_ms = l.claimed_ms, credited_ms = l.credited_ms, "
    "deducted_ms = l.deducted_ms FROM l WHERE x.day_verdict_id = l.day_verdict_id AND x.lesson_id = l.lesson_id "
    "AND (x.claimed_ms, x.credited_ms, x.deducted_ms) IS DISTINCT FROM (l.claimed_ms, l.credited_ms, l.deducted_ms)) "
    "INSERT INTO anti_idle_day_lessons (day_verdict_id, user_id, lesson_id, claimed_ms, credited_ms, deducted_ms) "
    "SELECT l.day_verdict_id, l.user_id, l.lesson_id, l.claimed_ms, l.credited_ms, l.deducted_ms FROM l "
    "WHERE NOT EXISTS (SELECT 1 FROM anti_idle_day_lessons AS x "
    "WHERE x.day_verdict_id = l.day_verdict_id AND x.lesson_id = l.lesson_id) ORDER BY l.n"
)

#: The round's batch name of the folds (flushed after the state rows: the writers' first-write order).
_FOLDS = "anti_idle.folds"


def keep_fold(verdict: dict[str, Any], lessons: list[dict[str, Any]]) -> None:
    """One fold's day verdict row (``verdicts._fold_kept``'s values) and lesson rows, kept in the
    round's batch (written by :func:`_write_folds`)."""
    batch = beat_group.active()
    assert batch is not None
    batch.add(_FOLDS, _write_folds, (verdict, lessons), ("anti_idle_day_verdicts", "anti_idle_day_lessons"))


def _write_folds(items: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
    """The round's folds in one statement. A round has one beat per person and a beat folds a
    day at most once, so each day verdict appears once; were one folded twice, its last values
    are written, with an earlier fold's publish, as the second ORM write over the first left it."""
    verdicts: dict[int, dict[str, Any]] = {}
    lessons: dict[tuple[int, int], dict[str, Any]] = {}
    for verdict, rows in items:
        earlier = verdicts.pop(verdict["id"], None)
        if earlier is not None and earlier["publish"] and not verdict["publish"]:
            verdict = {**verdict, "publish": True, "published": earlier["published"]}
        verdicts[verdict["id"]] = verdict
        for row in rows:
            lessons.setdefault((row["day_verdict_id"], row["lesson_id"]), row).update(row)
    params = {"v": beat_group.rows_json(list(verdicts.values())), "l": beat_group.rows_json(list(lessons.values()))}
    execute(_FOLD_MANY, params)


#: ``verdicts._org_of``'s read (the person's unit, which a published day's event names).
_ORG_OF = "SELECT org_unit_id FROM users WHERE id = %(user_id)s"


def org_unit_of(user_id: int) -> int | None:
    """The person's unit, read as ``verdicts._org_of`` reads it, by a prepared statement on the
    core's kept cursor: through the ORM session each publish in a round paid SQLAlchemy's
    execution and an autoflush (of the dispatch jobs the round's earlier events had queued),
    about as much CPU as the ORM fold it replaces."""
    found = execute(_ORG_OF, {"user_id": user_id}, fetch=True)
    return None if found is None else found[0]
