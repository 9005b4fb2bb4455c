"""The anti-idle layer of a learner's day picture (``lms_day_picture``).

Drawn from the raw beats (hidden spans, pauses), the attention checks and their
answers, the day's verdict with its evidence lines and the auditors' decisions,
all on the lanes of the sessions the core drew.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import and_, or_, select

from lms_core.accounts.models import User
from lms_core.audit.day import DayLayer, Mark, Section, Span, day_bounds, hhmm
from lms_core.db import utcnow
from lms_core.extensions import db
from plugins.anti_idle.events import VERDICT_NAMES
from plugins.anti_idle.evidence import fmt_amount, render
from plugins.anti_idle.models import (
    CHECK_EXPIRED,
    CHECK_PASSED,
    CHECK_PENDING,
    AttentionCheck,
    Beat,
    DayVerdict,
    Evidence,
    Review,
)

#: Beats read for one day's picture (a long day at 15 s beats is ~6,000 per tab).
MAX_BEATS = 20_000
#: How long after its due time an unanswered check is drawn as stopping credit.
UNANSWERED_DRAWN = dt.timedelta(hours=1)
CHECK_OUTCOMES = {
    "pending": "check-pending",
    "passed": "check-passed",
    "wrong": "check-failed",
    "expired": "check-failed",
    "automated": "check-failed",
}


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _beat_spans(user_id: int, day: dt.date, lanes: dict[str, str]) -> list[Span]:
    start, end = day_bounds(day)
    beats = db.session.execute(
        select(Beat.session_id, Beat.event, Beat.received_at, Beat.wall_start, Beat.hidden_since, Beat.claimed)
        .where(Beat.user_id == user_id, Beat.received_at >= start, Beat.received_at < end)
        .order_by(Beat.session_id, Beat.received_at, Beat.id)
        .limit(MAX_BEATS)
    ).all()
    spans: list[Span] = []
    by_session: dict[str, list[Any]] = {}
    for b in beats:
        by_session.setdefault(b.session_id, []).append(b)
    for session_id, rows in by_session.items():
        lane = lanes.get(session_id)
        if lane is None:
            continue
        hidden_from: dt.datetime | None = None
        paused_at: dt.datetime | None = None
        for b in rows:
            received = _aware(b.received_at)
            assert received is not None
            since = _aware(b.hidden_since)
            if since is not None and hidden_from is None:
                hidden_from = since
            elif since is None and hidden_from is not None:
                spans.append(Span(lane, hidden_from, received, "hidden", ""))
                hidden_from = None
            if paused_at is not None and (b.event == "play" or b.claimed):
                spans.append(Span(lane, paused_at, _aware(b.wall_start) or received, "paused", ""))
                paused_at = None
            if b.event == "pause" and paused_at is None:
                paused_at = received
        last = _aware(rows[-1].received_at)
        assert last is not None
        if hidden_from is not None:
            spans.append(Span(lane, hidden_from, last, "hidden", ""))
        if paused_at is not None and last > paused_at:
            spans.append(Span(lane, paused_at, last, "paused", ""))
    return spans


def _checks(user_id: int, day: dt.date, lanes: dict[str, str]) -> tuple[list[Mark], list[Span]]:
    start, end = day_bounds(day)
    now = utcnow()
    marks: list[Mark] = []
    spans: list[Span] = []
    for c in db.session.execute(
        select(AttentionCheck)
        .where(
            AttentionCheck.user_id == user_id,
            AttentionCheck.issued_at < end,
            or_(
                AttentionCheck.due_at >= start,
                # A check of the previous day still owed at midnight stops credit into this
                # one (R07): drawn too, clipped at the day's start. (Its own day bounds the
                # index range: an answer owed for more than a day is that day's story.)
                and_(
                    AttentionCheck.due_at >= start - dt.timedelta(days=1),
                    or_(
                        AttentionCheck.answered_at > start,
                        and_(AttentionCheck.answered_at.is_(None), AttentionCheck.due_at > start - UNANSWERED_DRAWN),
                    ),
                ),
            ),
        )
        .order_by(AttentionCheck.issued_at)
    ).scalars():
        lane = lanes.get(c.session_id) or _("Attention checks")
        issued, due, answered = _aware(c.issued_at), _aware(c.due_at), _aware(c.answered_at)
        assert issued is not None and due is not None
        outcome = c.outcome
        if outcome == CHECK_PENDING and answered is None and due < now:
            # Nothing marks an unanswered check expired (the credit path reads its due time):
            # past it, it is missed, and stops credit like one answered too late.
            outcome = CHECK_EXPIRED
        late = answered is not None and answered > due
        # A right answer after the window did not pass the check: credit stopped at its due
        # time until that answer (R07), so it is drawn as missed, and says why.
        late_right = late and outcome == CHECK_PASSED
        kind = "check-failed" if late_right else CHECK_OUTCOMES.get(outcome, "check-pending")
        # The page names the kind (注意力检查已通过, …) in front of the text.
        if answered is not None:
            text = _(
                "Shown at %(at)s, answered at %(answered)s (%(outcome)s)",
                at=hhmm(issued, day),
                answered=hhmm(answered, day),
                outcome=_("correct, but after the time allowed") if late_right else _outcome_name(c.outcome),
            )
        else:
            text = _(
                "Shown at %(at)s, not answered (%(outcome)s)",
                at=hhmm(issued, day),
                outcome=_outcome_name(outcome),
            )
        marks.append(Mark(lane, issued, kind, text))
        if outcome != CHECK_PASSED and outcome != CHECK_PENDING or late:
            stop = answered or min(end, max(due, issued) + UNANSWERED_DRAWN)
            if stop > due:
                spans.append(Span(lane, due, stop, "check-failed", _("No credit while the check was unanswered")))
    return marks, spans


def _outcome_name(outcome: str) -> str:
    names = {
        "pending": _("waiting for an answer"),
        "passed": _("correct"),
        "wrong": _("wrong answer"),
        "expired": _("too late"),
        "automated": _("answered by a script"),
    }
    return names.get(outcome, outcome)


def _minutes(ms: int) -> str:
    return fmt_amount(ms)


def layer(person: User, day: dt.date, session_lanes: dict[str, str]) -> DayLayer:
    result = DayLayer()
    result.spans.extend(_beat_spans(person.id, day, session_lanes))
    marks, spans = _checks(person.id, day, session_lanes)
    result.marks.extend(marks)
    result.spans.extend(spans)
    verdict = db.session.execute(
        select(DayVerdict).where(DayVerdict.user_id == person.id, DayVerdict.day == day)
    ).scalar_one_or_none()
    if verdict is None:
        return result
    result.facts.append(_("Anti-idle verdict: %(v)s", v=VERDICT_NAMES.get(verdict.verdict, verdict.verdict)))
    result.facts.append(
        _("Reported %(t)s, credited %(c)s", t=_minutes(verdict.claimed_ms), c=_minutes(verdict.credited_ms))
    )
    if verdict.held_ms:
        result.facts.append(_("Held for audit: %(h)s", h=_minutes(verdict.held_ms)))
    if verdict.deducted_ms or verdict.void_ms:
        result.facts.append(_("Deducted: %(d)s", d=_minutes(verdict.deducted_ms + verdict.void_ms)))
    result.facts.append(_("Review score: %(s)d", s=verdict.review_score))
    lines = list(
        db.session.execute(
            select(Evidence).where(Evidence.day_verdict_id == verdict.id).order_by(Evidence.span_start, Evidence.id)
        ).scalars()
    )
    # The tally keeps no stream count; the parallel-stream (R04) lines name theirs.
    streams = max((int((e.params or {}).get("streams") or 0) for e in lines if e.rule == "R04"), default=0)
    if streams > 1:
        result.facts.append(_("Parallel streams at once: %(n)d", n=streams))
    result.sections.append(
        Section(
            key="evidence",
            title=_("Anti-idle evidence"),
            headers=[_("Span start"), _("Span end"), _("What happened"), _("Time affected")],
            rows=[
                [hhmm(_aware(e.span_start), day), hhmm(_aware(e.span_end), day), render(e), _minutes(e.amount_ms)]  # type: ignore[arg-type]
                for e in lines
            ],
            note=_("Each line is a rule that cut or flagged time; the ledger entries below are what they produced."),
        )
    )
    reviews = db.session.execute(
        select(Review, User.full_name)
        .outerjoin(User, User.id == Review.reviewer_id)
        .where(Review.day_verdict_id == verdict.id)
        .order_by(Review.id)
    ).all()
    if reviews:
        result.sections.append(
            Section(
                key="reviews",
                title=_("Auditors' decisions"),
                headers=[_("When"), _("Reviewer"), _("Decision"), _("Duration"), _("Reason")],
                rows=[
                    [
                        hhmm(_aware(r.created_at), day),  # type: ignore[arg-type]
                        name or "",
                        _("Posted") if r.decision == "post" else _("Voided"),
                        fmt_amount(r.seconds * 1000),
                        r.reason,
                    ]
                    for r, name in reviews
                ],
            )
        )
    return result
