"""The person's running state for the next beat: one row read and one row written per beat.

A beat used to rebuild its prior from the previous stored beats (of its session, of the
person on its lesson, of the person) and re-read the day verdict. All of that is
per person and changes only with the person's own beats, which the core serialises
(its clock lock), so it lives in one compact row, ``anti_idle_person_states``: read by
one Core SELECT and written by one ``INSERT … ON CONFLICT DO UPDATE``.

The read takes no lock of its own: the beat holds the person's clock, and every other
writer of the row (``forget_days``, ``verdicts.assess_day``, ``verdicts.settle``) takes the
clock before writing it, so no one changes the row between a beat's read and its write.

The row is a cache of what the stored beats say, never evidence:

* sessions and lessons are kept for the most recent few; one not kept (or a person
  whose row does not exist yet, e.g. right after the upgrade) is read from its last
  stored beat, exactly as before (``services.previous_rows``);
* the day's online tally (``day_tally``) is NULL whenever the day verdict row holds
  everything (after ``verdicts.assess_day`` or a recompute wrote it); the next beat
  then starts from that row again.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Date, Integer, Table, bindparam, insert, select, tuple_, update

from lms_core.extensions import db
from lms_core.learning import beat_group, beat_tx
from lms_core.learning.services import lock_clocks
from plugins.anti_idle import els, state_pg
from plugins.anti_idle.inputs import CHECK_LOOKBACK, Owed, person_check_inputs, prior_from, with_reach
from plugins.anti_idle.models import Beat, PersonState
from plugins.anti_idle.policy import policy_version_statement

#: Sessions and lessons kept in the row (the most recently used); others are read from
#: their last stored beat, so this bounds the row, not what a beat may know.
SESSIONS_KEPT = 8
LESSONS_KEPT = 16

_TABLE = cast(Table, PersonState.__table__)
_COLUMNS = tuple(_TABLE.c)


@dataclass
class State:
    """One person's row in memory (``exists`` False: no row yet)."""

    user_id: int
    exists: bool = False
    day: dt.date | None = None
    day_credited_ms: int = 0
    focus_session: str | None = None
    focus_until: dt.datetime | None = None
    sessions: dict[str, list[Any]] = field(default_factory=dict)
    lessons: dict[str, int] = field(default_factory=dict)
    tally_day: dt.date | None = None
    day_tally: dict[str, Any] | None = None


def _dialect() -> str:
    return beat_tx.dialect_name()


@functools.cache
def _select_statement() -> Any:
    """The row, with the version of the policy in force for the beat's course as one more
    column (one round trip, not two; ``policy.in_force`` turns it into the parameters)."""
    in_force = policy_version_statement().scalar_subquery().label("policy_version")
    return select(*_COLUMNS, in_force).where(_TABLE.c.user_id == bindparam("user_id", type_=Integer))


@functools.cache
def _upsert_statement(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(_TABLE)
    return stmt.on_conflict_do_update(
        index_elements=["user_id"], set_={c.key: stmt.excluded[c.key] for c in _COLUMNS if c.key != "user_id"}
    )


@functools.cache
def _forget_statement() -> Any:
    return (
        update(_TABLE)
        .where(_TABLE.c.user_id == bindparam("u", type_=Integer), _TABLE.c.tally_day == bindparam("d", type_=Date))
        .values(tally_day=None, day_tally=None)
    )


def load_unlocked(user_id: int) -> State:
    """The person's row for reading only (pages, the study API)."""
    return load(user_id)[0]


def load(user_id: int, course_id: int | None = None) -> tuple[State, int | None]:
    """The person's row, or an empty state when there is none, and the version of the policy
    in force for ``course_id`` (None: none stored, or no row).

    Never locked: a caller that writes the row back holds the person's clock (a beat, or
    ``lms_core.learning.services.lock_clocks``), which every writer of the row takes first.
    On the session's connection: no autoflush of the core's pending changes here.
    """
    row = db.session.connection().execute(_select_statement(), {"user_id": user_id, "course_id": course_id}).first()
    if row is None:
        return State(user_id), None
    return _state_of(user_id, row[1:9]), row.policy_version


def _state_of(user_id: int, row: Any) -> State:
    """A state from the row's columns after ``user_id``, in the table's order."""
    day, day_credited_ms, focus_session, focus_until, sessions, lessons, tally_day, day_tally = row
    # Every field given, so filled without the dataclass's ``__init__`` (a call of ten keyword
    # arguments on every beat); the same object (``test_hook_shortcuts.py``).
    person = object.__new__(State)
    person.__dict__.update(
        user_id=user_id,
        exists=True,
        day=day,
        day_credited_ms=day_credited_ms,
        focus_session=focus_session,
        focus_until=focus_until,
        # ``state_pg.take`` gives them as kept here already (decoded, or the objects it kept).
        sessions=sessions if type(sessions) is dict else {entry[0]: entry[1:] for entry in sessions or ()},
        lessons=lessons if type(lessons) is dict else {str(lesson): ms for lesson, ms in lessons or ()},
        tally_day=tally_day,
        day_tally=day_tally,
    )
    return person


@dataclass
class BeatRead:
    """What a beat reads of the plugin's rows: the person's state, the policy
    version in force for the course (None: none stored, or no state row), the person's
    checks in the rules' window (``inputs.person_check_inputs``)."""

    state: State
    policy_version: int | None
    checks: list[els.CheckInput]
    #: What ``checks.beat_check`` asks, if the read brought it (video beats on PostgreSQL).
    owed: Owed | None = None


def load_for_beat(
    user_id: int, course_id: int, since: dt.datetime, until: dt.datetime, *, video: bool = False
) -> BeatRead:
    """``load`` and ``inputs.person_check_inputs`` as one statement on PostgreSQL.

    Each statement through SQLAlchemy cost about as much CPU as the rules themselves, so on
    PostgreSQL the state row, the policy version and the checks come back in one prepared
    statement on the raw connection (``state_pg``); SQLite (tests, development) keeps the
    two Core statements. A person without a row (first beat) reads the checks apart.
    ``video``: also what ``checks.beat_check`` asks (PostgreSQL; else it asks itself).
    """
    if _dialect() == "postgresql":
        batch = beat_group.active()
        found = None if batch is None else state_pg.take(batch, user_id, course_id, since, until, video=video)
        if found is None:
            found = state_pg.load(user_id, course_id, since, until, video=video)
        if found is not None:
            row, version, checks, owed = found
            # What the beats say of a lapsed check's window (R07 offline): a statement of
            # its own only when a check is past due unanswered, as on SQLite.
            return BeatRead(_state_of(user_id, row), version, with_reach(user_id, checks, until), owed)
        return BeatRead(State(user_id), None, person_check_inputs(user_id, since, until))
    person, version = load(user_id, course_id)
    return BeatRead(person, version, person_check_inputs(user_id, since, until))


def group_read(batch: beat_group.Batch, people: list[tuple[int, int, bool]]) -> None:
    """``lms_beat_group_read`` for a round's judged beats ``(user id, course id, video)``: the state
    rows, policy versions and checks in one read (``state_pg.prefetch``), taken by
    :func:`load_for_beat`."""
    from lms_core.db import utcnow

    if people and _dialect() == "postgresql":
        state_pg.prefetch(batch, people, utcnow() - CHECK_LOOKBACK)


def save(state: State, beat: dict[str, Any] | None = None) -> None:
    """Write the row back (one upsert; the first beat of a person creates it).

    ``beat``: the column values of a raw beat to append in the same statement (one
    round trip on PostgreSQL: a data-modifying CTE; two Core statements on SQLite).
    """
    assert state.day is not None
    values = _values(state)
    if _dialect() == "postgresql":
        batch = beat_group.active()
        if batch is not None:
            # written with the round's others (beat_group); the objects kept once written
            objects = (state.sessions, state.lessons, state.day_tally)
            state_pg.keep(batch, values, beat, objects, exists=state.exists)
        else:
            state_pg.save(values, beat)
    else:
        conn = db.session.connection()
        if beat is not None:
            conn.execute(_beat_insert(), beat)
        conn.execute(_upsert_statement("sqlite"), values)
    state.exists = True


def insert_beat(beat: dict[str, Any]) -> None:
    """Append one raw beat by itself (a Core INSERT on the session's connection: no ORM
    object, no unit-of-work pass over its 30 columns, no autoflush)."""
    if _dialect() == "postgresql":
        state_pg.insert_beat(beat)
    else:
        db.session.connection().execute(_beat_insert(), beat)


@functools.cache
def _beat_insert() -> Any:
    return insert(cast(Table, Beat.__table__))


def _values(state: State) -> dict[str, Any]:
    return {
        "user_id": state.user_id,
        "day": state.day,
        "day_credited_ms": state.day_credited_ms,
        "focus_session": state.focus_session,
        "focus_until": state.focus_until,
        # Lists, least recent first: JSONB keeps no key order.
        "sessions": [[sid, *entry] for sid, entry in state.sessions.items()],
        "lessons": [[int(lesson), ms] for lesson, ms in state.lessons.items()],
        "tally_day": state.tally_day if state.day_tally is not None else None,
        "day_tally": state.day_tally,
    }


def forget_day(user_id: int, day: dt.date) -> None:
    """The day verdict row of (person, day) was rewritten from the beats: drop the row's
    online tally of that day, so the next beat starts from the day verdict again.

    The caller holds the person's clock (``verdicts.assess_day`` takes it first), as every
    writer of the row does: a beat reads it unlocked (:func:`forget_days`)."""
    state_pg.forget(user_id)
    db.session.connection().execute(_forget_statement(), {"u": user_id, "d": day})


def forget_days(days: Iterable[tuple[int, dt.date]]) -> None:
    """``forget_day`` for many (person, day) pairs in one statement (the bulk recompute), the
    people's clocks locked first.

    A beat reads the state row without a lock (behind its clock lock) and writes it back:
    were the row changed between the two, the beat would write back the tally this drops.
    Call it before the transaction writes the people's day verdicts (or anything else their
    beats write after taking their clocks): the clocks are then the first locks it takes.
    """
    pairs = sorted(set(days))
    lock_clocks(user_id for user_id, _day in pairs)
    for user_id, _day in pairs:
        state_pg.forget(user_id)
    if pairs:
        db.session.connection().execute(
            update(_TABLE)
            .where(tuple_(_TABLE.c.user_id, _TABLE.c.tally_day).in_(pairs))
            .values(tally_day=None, day_tally=None)
        )


# --- the prior a beat is judged from ------------------------------------------------------


def prior(state: State, session_id: str, lesson_id: int, day: dt.date, previous_seq: int, fetch: Any) -> els.Prior:
    """The running state before a beat, equal to ``inputs.prior_from`` over the stored rows.

    ``fetch()`` reads (session row, lesson row, person's row) from the stored beats
    (``services.previous_rows``); it is called only when the row cannot answer: no row
    yet, a session not kept that the core has seen beats of (``previous_seq`` > 0), or
    a lesson not kept.
    """
    if not state.exists:
        session_row, lesson_row, person_row = fetch()
        return prior_from(session_row, lesson_row, person_row, day)
    entry = state.sessions.get(session_id)
    lesson_ms = state.lessons.get(str(lesson_id))
    session_row = None
    if (entry is None and previous_seq > 0) or lesson_ms is None:
        session_row, lesson_row, _person_row = fetch()
        lesson_ms = lesson_row.lesson_credited_ms if lesson_row is not None and lesson_ms is None else lesson_ms
    same_day = state.day == day
    if entry is not None:
        # The session's running state from the row, in one Prior (the common beat).
        hidden_us, event, seq, claim_end, claimed_ms, covered = entry
        return els.new(
            els.Prior,
            hidden_since=els.at_us(hidden_us) if hidden_us is not None else None,
            last_event=event,
            last_seq=seq,
            last_claim_end=claim_end,
            session_claimed_ms=claimed_ms,
            session_covered=tuple([(int(a), int(b)) for a, b in covered]),
            lesson_credited_ms=int(lesson_ms or 0),
            day_credited_ms=state.day_credited_ms if same_day else 0,
            focus_session=state.focus_session if same_day else None,
            focus_until=state.focus_until if same_day else None,
        )
    base = prior_from(session_row, None, None, day)
    return els.Prior(
        hidden_since=base.hidden_since,
        last_event=base.last_event,
        last_seq=base.last_seq,
        last_claim_end=base.last_claim_end,
        session_claimed_ms=base.session_claimed_ms,
        session_covered=base.session_covered,
        lesson_credited_ms=int(lesson_ms or 0),
        day_credited_ms=state.day_credited_ms if same_day else 0,
        focus_session=state.focus_session if same_day else None,
        focus_until=state.focus_until if same_day else None,
    )


def advance(state: State, beat: els.BeatInput, after: els.Prior, day: dt.date) -> None:
    """Take this beat's running state (``Outcome.after``) into the row, most recent last."""
    state.day = day
    state.day_credited_ms = after.day_credited_ms
    state.focus_session = after.focus_session
    state.focus_until = after.focus_until
    sessions = state.sessions
    sessions.pop(beat.session_id, None)
    sessions[beat.session_id] = [
        els.us_of(after.hidden_since) if after.hidden_since is not None else None,
        after.last_event,
        after.last_seq,
        after.last_claim_end,
        after.session_claimed_ms,
        [list(s) for s in after.session_covered],
    ]
    while len(sessions) > SESSIONS_KEPT:
        sessions.pop(next(iter(sessions)))
    lessons = state.lessons
    key = str(beat.lesson_id)
    lessons.pop(key, None)
    lessons[key] = after.lesson_credited_ms
    while len(lessons) > LESSONS_KEPT:
        lessons.pop(next(iter(lessons)))
