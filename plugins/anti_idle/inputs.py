"""What the rules read besides the beat itself: Beijing day bounds, the person's checks, the running prior.

A leaf below ``services`` (the online path), ``verdicts`` (the day), ``day_rules`` and
``recompute``, which all need them: kept here so none of those imports another in a circle.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Integer, bindparam, exists, func, or_, select, type_coerce
from sqlalchemy.orm import undefer

from lms_core.db import UTCDateTime
from lms_core.extensions import db
from plugins.anti_idle import els, rejudge
from plugins.anti_idle.models import CHECK_PASSED, AttentionCheck, Beat


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """UTC bounds of a Beijing calendar day."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=els.SHANGHAI).astimezone(dt.UTC)
    return start, start + dt.timedelta(days=1)


#: Checks older than this no longer matter, unless still unanswered.
CHECK_LOOKBACK = dt.timedelta(days=2)

#: How far back of the check clock memo's last interval a sum still looks for new ones:
#: intervals of one person are stored one at a time under their clock row, so a later one
#: has a later ``wall_end``, unless the server's clock stepped back; this margin absorbs
#: such a step (``checks._playing_ms_since``).
CLOCK_STEP_MARGIN = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class LastCheck:
    """What the check schedule reads of the person's latest check (``checks.owed_after_ms``)."""

    outcome: str
    issued_at: dt.datetime
    answered_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Owed:
    """What ``checks.beat_check`` reads, when the beat's read brought it along: the
    person's latest check (None: never one) and the playing time since its reference
    (unsummed, 0, while that check is open)."""

    last: LastCheck | None
    played_ms: int


def person_checks(user_id: int, since: dt.datetime, until: dt.datetime) -> Sequence[AttentionCheck]:
    """The person's checks issued up to ``until``: due or answered since ``since``, or still pending.

    Any check whose overdue span can reach a beat of the window is among them, online
    and in a recompute alike (the recompute's ``since`` is earlier, never later).
    """
    params = {"user_id": user_id, "since": since, "until": until}
    stmt = _checks_statement().options(undefer(AttentionCheck.silent), undefer(AttentionCheck.reached_at))
    return db.session.execute(stmt, params).scalars().all()


@functools.cache
def _checks_statement() -> Any:
    """Built once per process (see ``lms_core.learning.services``: building costs more than running)."""
    since, until = bindparam("since", type_=UTCDateTime()), bindparam("until", type_=UTCDateTime())
    return (
        select(AttentionCheck)
        .where(
            AttentionCheck.user_id == bindparam("user_id", type_=Integer),
            AttentionCheck.issued_at <= until,
            or_(
                AttentionCheck.due_at >= since,
                AttentionCheck.answered_at.is_(None),
                AttentionCheck.answered_at >= since,
            ),
        )
        .order_by(AttentionCheck.id)
    )


def person_check_inputs(user_id: int, since: dt.datetime, until: dt.datetime) -> list[els.CheckInput]:
    """``check_inputs(person_checks(...))`` without ORM objects: the beat path's form."""
    params = {"user_id": user_id, "since": since, "until": until}
    rows = db.session.connection().execute(_check_inputs_statement(), params)
    return with_reach(user_id, [els.CheckInput(*row) for row in rows], until)


@functools.cache
def _check_inputs_statement() -> Any:
    c = AttentionCheck
    columns = (c.session_id, c.issued_at, c.due_at, c.answered_at, c.outcome, c.trusted, c.latency_ms)
    return _checks_statement().with_only_columns(*columns)


def with_reach(user_id: int, checks: list[els.CheckInput], until: dt.datetime) -> list[els.CheckInput]:
    """The beat path's checks with what the person's beats say of their window (``silent``,
    ``reached_at``: ``AttentionCheck``'s column properties, same predicates), read for the
    checks past due by ``until`` and not validly answered by then, one statement each
    (usually none: an honest beat's checks were answered in time, and nothing is read)."""
    out = checks
    for k, c in enumerate(checks):
        if c.due_at < until and (c.outcome != CHECK_PASSED or c.answered_at is None or c.answered_at > c.due_at):
            params = {"user_id": user_id, "issued": c.issued_at, "due": c.due_at}
            silent, reached_at = db.session.connection().execute(_reach_statement(), params).one()
            if silent and reached_at is None:
                # This beat is the first since the check fell due offline: its new window
                # starts now, and may end with no beat to judge the day again (R07o).
                rejudge.schedule(user_id, els.beijing_day(until), until + (c.due_at - c.issued_at))
            if out is checks:
                out = list(checks)
            out[k] = dataclasses.replace(c, silent=bool(silent), reached_at=reached_at)
    return out


@functools.cache
def _reach_statement() -> Any:
    b = Beat
    user_id = bindparam("user_id", type_=Integer)
    issued, due = bindparam("issued", type_=UTCDateTime()), bindparam("due", type_=UTCDateTime())
    during = exists().where(b.user_id == user_id, b.received_at > issued, b.received_at <= due)
    first_after = select(func.min(b.received_at)).where(b.user_id == user_id, b.received_at > due)
    return select(type_coerce(~during, Boolean()), type_coerce(first_after.scalar_subquery(), UTCDateTime()))


def check_inputs(rows: Sequence[AttentionCheck]) -> list[els.CheckInput]:
    return [
        els.CheckInput(
            session_id=c.session_id,
            issued_at=c.issued_at,
            due_at=c.due_at,
            answered_at=c.answered_at,
            outcome=c.outcome,
            trusted=c.trusted,
            latency_ms=c.latency_ms,
            silent=bool(c.silent),
            reached_at=c.reached_at,
        )
        for c in rows
    ]


def prior_from(session_row: Any, lesson_row: Any, day_row: Any, day: dt.date) -> els.Prior:
    """The running state before a beat, from the previous rows of its session, lesson and person.

    The rows are ``Beat`` objects or rows of ``STATE_COLUMNS`` (same attribute names).
    """
    same_day = day_row is not None and els.beijing_day(day_row.received_at) == day
    return els.Prior(
        hidden_since=session_row.hidden_since if session_row else None,
        last_event=session_row.event if session_row else None,
        last_seq=session_row.seq if session_row else None,
        last_claim_end=session_row.last_claim_end if session_row else None,
        session_claimed_ms=session_row.session_claimed_ms if session_row else 0,
        session_covered=tuple((int(a), int(b)) for a, b in session_row.session_covered) if session_row else (),
        lesson_credited_ms=lesson_row.lesson_credited_ms if lesson_row else 0,
        day_credited_ms=day_row.day_credited_ms if same_day and day_row else 0,
        # The focused stream (R04f) is the person's, like the day's credit: from their last beat.
        focus_session=day_row.focus_session if same_day and day_row else None,
        focus_until=day_row.focus_until if same_day and day_row else None,
    )


#: The running state a beat row carries (what the next beat's prior is read from).
STATE_COLUMNS = (
    Beat.id,
    Beat.seq,
    Beat.received_at,
    Beat.event,
    Beat.hidden_since,
    Beat.last_claim_end,
    Beat.session_claimed_ms,
    Beat.session_covered,
    Beat.lesson_credited_ms,
    Beat.day_credited_ms,
    Beat.focus_session,
    Beat.focus_until,
)
