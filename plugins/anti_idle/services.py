"""The online credit path: judge each heartbeat inside its transaction and keep the raw beat.

Called from ``lms_assess_interval``. It reads the running state from the previous
stored beats, asks :func:`plugins.anti_idle.els.assess`, appends the raw beat with
the decision to ``anti_idle_beats`` and answers the core with the credited ranges.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Integer, String, bindparam, or_, select

from lms_core.extensions import db
from lms_core.learning import segments as segs
from lms_core.learning.assessment import CREDIT, REDUCE, VOID, IntervalClaim, Verdict
from plugins.anti_idle import els, envelope, state
from plugins.anti_idle.checks import beat_check
from plugins.anti_idle.inputs import CHECK_LOOKBACK, STATE_COLUMNS
from plugins.anti_idle.models import Beat
from plugins.anti_idle.policy import current_policy, in_force
from plugins.anti_idle.verdicts import record_online

#: Rules whose firing voids the interval rather than reducing it.
CRITICAL = frozenset({"R03", "R03e", "R14"})
#: Lesson kinds the credit path judges (quizzes and surveys earn no time).
JUDGED_KINDS = frozenset({"video", "document"})


def _latest_ids(user_id: Any, session_id: Any, lesson_id: Any) -> Any:
    """The ids of the latest beat of the session, of the person on the lesson, and of the person."""
    session_q = select(Beat.id).where(Beat.session_id == session_id).order_by(Beat.seq.desc()).limit(1)
    lesson_q = (
        select(Beat.id).where(Beat.user_id == user_id, Beat.lesson_id == lesson_id).order_by(Beat.id.desc()).limit(1)
    )
    day_q = select(Beat.id).where(Beat.user_id == user_id).order_by(Beat.received_at.desc(), Beat.id.desc()).limit(1)
    return select(
        session_q.scalar_subquery().label("s"),
        lesson_q.scalar_subquery().label("l"),
        day_q.scalar_subquery().label("d"),
    )


def previous_rows(user_id: int, session_id: str, lesson_id: int) -> tuple[Any, Any, Any]:
    """(session row, lesson row, person's latest row) before a new beat, in one statement."""
    params = {"user_id": user_id, "session_id": session_id, "lesson_id": lesson_id}
    rows = db.session.execute(_previous_rows_statement(), params).all()
    by_id = {r.id: r for r in rows}
    if not rows:
        return None, None, None
    first = rows[0]
    return by_id.get(first.s), by_id.get(first.l), by_id.get(first.d)


@functools.cache
def _previous_rows_statement() -> Any:
    ids = _latest_ids(
        bindparam("user_id", type_=Integer),
        bindparam("session_id", type_=String),
        bindparam("lesson_id", type_=Integer),
    ).subquery()
    return select(*STATE_COLUMNS, ids.c.s, ids.c.l, ids.c.d).join(
        ids, or_(Beat.id == ids.c.s, Beat.id == ids.c.l, Beat.id == ids.c.d)
    )


def _credit(credited: tuple[segs.Segment, ...], credited_ms: int, answer: dict[str, Any] | None) -> Verdict:
    """``Verdict(CREDIT, credited, reason="", code="", credited_ms=credited_ms, answer=answer)``
    without the frozen ``__init__`` and its check of the label (``CREDIT``: a valid one), as
    ``IntervalClaim.of`` builds a claim: nearly every beat's answer."""
    verdict = object.__new__(Verdict)
    verdict.__dict__.update(
        verdict=CREDIT, credited=credited, reason="", code="", credited_ms=credited_ms, answer=answer
    )
    return verdict


def beat_input(claim: IntervalClaim) -> els.BeatInput:
    assert claim.credit_from is not None and claim.session_started_at is not None
    # The server's stamps over whatever the client put under the same names: the envelope
    # verdict, and the core's last seq before this beat (R03q, els.row_of). ``stamp``
    # gives a new dict, so this beat's own.
    client = envelope.stamp(claim.client)
    client["seq_prev"] = claim.previous_seq
    return els.new(
        els.BeatInput,
        session_id=claim.session_id,
        lesson_id=claim.lesson_id,
        lesson_kind=claim.lesson_kind,
        event=claim.event,
        seq=claim.seq,
        wall_start=claim.wall_start,
        received_at=claim.wall_end,
        launched_at=claim.session_started_at,
        credit_from=claim.credit_from,
        claimed=tuple(claim.claimed),
        duration_ms=claim.media_duration_ms,
        bytes_served=claim.bytes_served,
        media_size=claim.media_size,
        client=client,
    )


def beat_row(
    user_id: int,
    beat: els.BeatInput,
    outcome: els.Outcome,
    policy_version: int,
    visible_ms: int,
    position_ms: int,
) -> dict[str, Any]:
    """The raw beat's column values (a plain dict: no ORM object on the beat path).

    ``client`` is the beat's own (``beat_input``'s, made for this beat by ``envelope.stamp``),
    not a copy: nothing changes either after the beat is judged. The ranges (``claimed``,
    ``credited``, ``session_covered``) and ``flags`` are the beat's and the outcome's own
    tuples, not lists copied from them: nothing changes them either, and every writer of the
    row gives a tuple the JSON of the list (msgspec on PostgreSQL, ``json.dumps`` on SQLite),
    as every reader of the row (``verdicts.record_online``, ``Tally.add``) takes either."""
    after = outcome.after
    return {
        "user_id": user_id,
        "session_id": beat.session_id,
        "lesson_id": beat.lesson_id,
        "seq": beat.seq,
        "lesson_kind": beat.lesson_kind,
        "event": beat.event,
        "received_at": beat.received_at,
        "wall_start": beat.wall_start,
        "launched_at": beat.launched_at,
        "claimed": beat.claimed,
        "position_ms": position_ms,
        "media_duration_ms": beat.duration_ms,
        "bytes_served": beat.bytes_served,
        "media_size": beat.media_size,
        "visible_ms": visible_ms,
        "client": beat.client,
        "credit_start": outcome.credit_start,
        "credit_end": outcome.credit_end,
        "credited": outcome.credited,
        "credited_ms": outcome.credited_ms,
        "cuts": outcome.cuts,
        "flags": outcome.flags,
        "policy_version": policy_version,
        "hidden_since": after.hidden_since,
        "last_claim_end": after.last_claim_end,
        "session_claimed_ms": after.session_claimed_ms,
        "session_covered": after.session_covered,
        "lesson_credited_ms": after.lesson_credited_ms,
        "day_credited_ms": after.day_credited_ms,
        "focus_session": after.focus_session,
        "focus_until": after.focus_until,
    }


def assess_interval(claim: IntervalClaim) -> Verdict | None:
    """Judge one heartbeat (inside the heartbeat's transaction) and append its raw beat.

    The running state comes from the person's state row (``state.py``: one locked read,
    one upsert), not from the previous beats; the day's tally is kept there too and
    folded into the day verdict when it matters (``verdicts.record_online``).
    """
    if claim.lesson_kind not in JUDGED_KINDS or claim.credit_from is None or claim.course_id is None:
        return None
    day = els.beijing_day(claim.wall_end)
    video = claim.lesson_kind == "video"
    since = claim.wall_end - CHECK_LOOKBACK
    read = state.load_for_beat(claim.user_id, claim.course_id, since, claim.wall_end, video=video)
    person = read.state
    policy = in_force(read.policy_version) if person.exists else current_policy(claim.course_id)
    prior = state.prior(
        person,
        claim.session_id,
        claim.lesson_id,
        day,
        claim.previous_seq or 0,
        lambda: previous_rows(claim.user_id, claim.session_id, claim.lesson_id),
    )
    beat = beat_input(claim)
    outcome = els.assess(beat, prior, policy.els_params, read.checks)
    row = beat_row(claim.user_id, beat, outcome, policy.version, claim.visible_ms, claim.position_ms)
    state.advance(person, beat, outcome.after, day)
    # The raw beat goes out with the state row's upsert (one statement on PostgreSQL),
    # unless the day is replayed first: the replay must find it stored.
    pending: list[dict[str, Any]] = [row]

    def store_beat() -> None:
        if pending:
            state.insert_beat(pending.pop())

    record_online(row, policy, person, before_replay=store_beat, checks=read.checks, day=day)
    state.save(person, pending[0] if pending else None)
    claimed_ms = segs.total(claim.claimed)
    answer = None
    if video:
        # Checks follow the media claimed, also when no player asks for them (a script);
        # the answer tells the player when there is one to ask for (never which).
        check = beat_check(
            claim.session_id, claim.user_id, claim.lesson_id, claimed_ms, policy, claim.wall_end, read.owed
        )
        answer = {"check": check} if check else None
    if not outcome.cuts and outcome.credited_ms >= claimed_ms:
        return _credit(outcome.credited, outcome.credited_ms, answer)
    label = VOID if (CRITICAL & set(outcome.cuts) or "R07b" in outcome.flags) and not outcome.credited_ms else REDUCE
    reason = "; ".join(f"{rule} {amount} ms" for rule, amount in sorted(outcome.cuts.items()))
    return Verdict(
        label,
        outcome.credited,
        reason=reason,
        code=",".join(sorted(outcome.cuts)),
        credited_ms=outcome.credited_ms,
        answer=answer,
    )
