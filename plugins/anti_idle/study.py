"""What will count for one learner and lesson: the figures behind ``/api/v1/me/study``."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, func, or_, select

from lms_core.extensions import db
from lms_core.learning.models import LearningInterval, LessonProgress
from plugins.anti_idle import state
from plugins.anti_idle.evidence import render
from plugins.anti_idle.models import DEDUCTED, HELD, VOID, DayLesson, DayVerdict, Evidence

_SEVERITY = {"credited": 0, DEDUCTED: 1, HELD: 2, VOID: 3}


def lesson_study(user_id: int, lesson_id: int) -> dict[str, Any]:
    """Credited and held seconds, the worst day verdict, coverage, completion and evidence lines.

    Credited seconds come from the ledger (``learning_intervals``); the part earned on
    days held for audit and not yet posted is reported as held instead.
    """
    ledger_ms = int(
        db.session.execute(
            select(func.coalesce(func.sum(LearningInterval.credited_ms), 0)).where(
                LearningInterval.user_id == user_id, LearningInterval.lesson_id == lesson_id
            )
        ).scalar_one()
    )
    days = db.session.execute(
        select(DayVerdict, DayLesson)
        .join(DayLesson, DayLesson.day_verdict_id == DayVerdict.id)
        .where(DayLesson.user_id == user_id, DayLesson.lesson_id == lesson_id)
        .order_by(DayVerdict.day)
    ).all()
    days = _with_online_tally(user_id, lesson_id, days)
    held_ms = sum(dl.credited_ms for v, dl in days if v.verdict == HELD and v.review_state != "posted")
    voided_ms = sum(dl.credited_ms for v, dl in days if v.verdict == HELD and v.review_state == "voided")
    verdict = max((v.verdict for v, _dl in days), key=lambda x: _SEVERITY.get(x, 0), default="credited")
    progress = db.session.execute(
        select(LessonProgress).where(LessonProgress.user_id == user_id, LessonProgress.lesson_id == lesson_id)
    ).scalar_one_or_none()
    day_ids = [v.id for v, _dl in days]
    lines = (
        db.session.execute(
            select(Evidence)
            .where(
                Evidence.user_id == user_id,
                or_(
                    Evidence.lesson_id == lesson_id,
                    and_(Evidence.lesson_id.is_(None), Evidence.day_verdict_id.in_(day_ids)),
                ),
            )
            .order_by(Evidence.span_start, Evidence.id)
        )
        .scalars()
        .all()
    )
    return {
        "lesson_id": lesson_id,
        "credited_seconds": round(max(0, ledger_ms - held_ms) / 1000, 3),
        "held_seconds": round((held_ms - voided_ms) / 1000, 3),
        "verdict": verdict,
        "coverage": round((progress.coverage_bp if progress else 0) / 10000, 4),
        "completion": {
            "status": progress.status.value if progress else "not_started",
            "completed_at": progress.completed_at.isoformat() if progress and progress.completed_at else None,
            "held": any(v.verdict == HELD and v.review_state != "posted" for v, _dl in days),
        },
        "days": [
            {
                "day": v.day.isoformat(),
                "verdict": v.verdict,
                "review_state": v.review_state,
                "credited_seconds": dl.credited_ms / 1000,
                "claimed_seconds": dl.claimed_ms / 1000,
            }
            for v, dl in days
        ],
        "evidence": [
            {
                "id": e.id,
                "rule": e.rule,
                "action": e.action,
                "day": e.day.isoformat(),
                "start": e.span_start.isoformat(),
                "end": e.span_end.isoformat(),
                "seconds": e.amount_ms / 1000,
                "text": render(e),
                "beats": len(e.beat_ids),
            }
            for e in lines
        ],
    }


def _with_online_tally(user_id: int, lesson_id: int, days: Sequence[Any]) -> list[Any]:
    """The day rows, with the figures of the person's online tally not yet folded into them
    (``verdicts.record_online`` writes the day rows only when it matters; the state row
    holds the rest). Rows are not changed: the figures are read into plain copies."""
    person = state.load_unlocked(user_id)
    online = person.day_tally
    if online is None or not online.get("dirty") or person.tally_day is None:
        return list(days)
    figures = online["lessons"].get(str(lesson_id))
    out = []
    for v, dl in days:
        if v.day == person.tally_day and figures is not None:
            claimed, credited, _deducted = figures
            dl = SimpleNamespace(claimed_ms=claimed, credited_ms=credited)
        out.append((v, dl))
    return out
