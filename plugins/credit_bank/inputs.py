"""Domain events that become credit (``lms_handle_event``), each idempotent on its key.

* ``course.completed``: the course's labelled 学时 (``nominal_hours_centi``) to 网络培训学时,
  converted by the policy in force on the completion day, keyed on the event id.
* ``anti_idle.day_assessed`` / ``anti_idle.day_reviewed`` (when the anti-idle plugin runs
  and the policy converts study *time*, ``online_course.kind = "study_time"``): a day's held
  seconds become a hold (审核中) that the review posts or voids.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from lms_core.db import utcnow
from lms_core.extensions import db
from plugins.credit_bank import ledger as L
from plugins.credit_bank import policy as P
from plugins.credit_bank import services as S
from plugins.credit_bank.models import Transfer, TransferCode


def handle(event: Any) -> None:
    handler = HANDLERS.get(event.name)
    if handler is not None:
        handler(event)


def _course_minutes(course_id: int) -> int | None:
    """Length of the course's required video lessons, for tiered minute rules."""
    from lms_core.courses.models import Lesson
    from lms_core.media.models import MediaFile

    total = db.session.execute(
        select(func.sum(MediaFile.duration_ms))
        .join(Lesson, Lesson.media_id == MediaFile.id)
        .where(Lesson.course_id == course_id, Lesson.required.is_(True))
    ).scalar_one()
    return None if not total else int(total) // 60_000


def on_course_completed(event: Any) -> None:
    if event.actor_id is None or event.course_id is None:
        return
    day = S.local_date(event.created_at)
    pol = P.in_force(day)
    rules = P.rules_of(pol)
    if rules["online_course"]["kind"] == "study_time":
        return
    nominal = int(event.payload.get("nominal_hours_centi") or 0)
    minutes = _course_minutes(event.course_id) if rules["online_course"]["kind"] == "tiered_minutes" else None
    amount = P.online_course_amount(rules, nominal, minutes)
    from lms_core.courses.models import Course

    course = db.session.get(Course, event.course_id)
    S.earn(
        key=f"event:{event.id}",
        user_id=event.actor_id,
        ledger="WL_XS",
        amount=amount,
        day=day,
        code=TransferCode.COURSE_COMPLETE.value,
        policy_version=pol.version,
        actor_id=event.actor_id,
        evidence_ref=f"course:{event.course_id}",
        memo=course.title[:200] if course else None,
    )


def _seconds_to_centi(rules: dict[str, Any], seconds: int) -> int:
    mph = int(rules["online_course"].get("minutes_per_hour", 45))
    return seconds * 100 // (mph * 60)


def on_day_assessed(event: Any) -> None:
    """A held day becomes a hold of the day's held time; credited time is posted.

    A re-assessment (``flask lms anti-idle recompute``, an appeal) publishes the day again. When
    its held time differs from the open hold, the hold is resized: the open hold is voided and
    a new one placed for the new amount, both in one transaction and both explained on the
    statement (``resize:<old>:<new>``). Nothing is updated: the journal only grows.
    """
    p = event.payload
    try:
        user_id, day = int(p["user_id"]), dt.date.fromisoformat(str(p["day"]))
    except (KeyError, TypeError, ValueError):
        return
    pol = P.in_force(day)
    rules = P.rules_of(pol)
    if rules["online_course"]["kind"] != "study_time":
        return  # credit follows course completion; the anti-idle plugin holds completion itself
    credited = _seconds_to_centi(rules, int(p.get("credited_seconds") or 0))
    held = _seconds_to_centi(rules, int(p.get("held_seconds") or 0))
    _post_study_day(user_id, day, credited, pol.version)
    _hold_study_day(user_id, day, held, pol.version, event.id)


def held_key(user_id: int, day: dt.date, revision: int = 0) -> str:
    """The business key of a day's hold; each resize places the next revision."""
    base = f"day:{user_id}:{day.isoformat()}:held"
    return base if revision == 0 else f"{base}:{revision}"


@dataclass(frozen=True)
class DayHold:
    revision: int
    amount: int  #: counted + overflow legs (centi)
    open: bool  #: neither posted, voided nor lapsed
    event_id: int | None  #: the assessment that placed it


def current_hold(user_id: int, day: dt.date) -> DayHold | None:
    """The day's latest hold revision (``None`` if the day was never held)."""
    found: DayHold | None = None
    revision = 0
    while revision < 1000:  # a day is re-assessed a handful of times; the bound guards a loop
        key = held_key(user_id, day, revision)
        ids = (L.transfer_id(key), L.transfer_id(key + ":overflow"))
        legs = list(db.session.execute(select(Transfer).where(Transfer.id.in_(ids))).scalars())
        if not legs:
            break
        resolved = db.session.execute(
            select(Transfer.id).where(Transfer.pending_id.in_([t.id for t in legs])).limit(1)
        ).first()
        lapsed = any(t.timeout_at is not None and t.timeout_at <= utcnow() for t in legs)
        ref = legs[0].evidence_ref or ""
        found = DayHold(
            revision=revision,
            amount=sum(t.amount for t in legs),
            open=resolved is None and not lapsed,
            event_id=int(ref[6:]) if ref.startswith("event:") and ref[6:].isdigit() else None,
        )
        revision += 1
    return found


def _hold_study_day(user_id: int, day: dt.date, held: int, version: int, event_id: int) -> None:
    cur = current_hold(user_id, day)
    if cur is None:
        if held:
            S.earn(
                key=held_key(user_id, day),
                user_id=user_id,
                ledger="WL_XS",
                amount=held,
                day=day,
                code=TransferCode.STUDY_TIME.value,
                policy_version=version,
                evidence_ref=f"event:{event_id}",
                pending=True,
            )
        return
    if not cur.open or cur.amount == held:
        # Reviewed days keep the reviewer's decision; an unchanged figure changes nothing.
        return
    if cur.event_id is not None and event_id <= cur.event_id:
        return  # an older assessment replayed after a newer one: the newer one stands
    memo = f"resize:{cur.amount}:{held}"
    status = S.resolve(key=held_key(user_id, day, cur.revision), post=False, memo=memo, commit=False)
    if status not in (L.CREATED, L.EXISTS):
        db.session.rollback()
        return
    if held:
        result = S.earn(
            key=held_key(user_id, day, cur.revision + 1),
            user_id=user_id,
            ledger="WL_XS",
            amount=held,
            day=day,
            code=TransferCode.STUDY_TIME.value,
            policy_version=version,
            evidence_ref=f"event:{event_id}",
            memo=memo,
            pending=True,
            commit=False,
        )
        if result.status not in (L.CREATED, L.EXISTS):
            db.session.rollback()  # void and new hold go together or not at all
            return
    db.session.commit()


STUDY_DAY = "study-day"


def _post_study_day(user_id: int, day: dt.date, target: int, version: int) -> None:
    """Bring the day's posted study-time credit up to ``target`` (a re-assessment or a new
    interval raises it; the key carries the target, so a replay posts nothing twice)."""
    t = L.TRANSFERS
    posted = int(
        db.session.execute(
            select(func.coalesce(func.sum(t.c.amount), 0)).where(
                t.c.user_id == user_id,
                t.c.effective_date == day,
                t.c.evidence_ref == STUDY_DAY,
                t.c.flags.op("&")(7) == 0,
            )
        ).scalar_one()
    )  # posted lines only (linked legs included)
    if target > posted:
        S.earn(
            key=f"day:{user_id}:{day.isoformat()}:credited:{target}",
            user_id=user_id,
            ledger="WL_XS",
            amount=target - posted,
            day=day,
            code=TransferCode.STUDY_TIME.value,
            policy_version=version,
            evidence_ref=STUDY_DAY,
        )


def on_interval_credited(event: Any) -> None:
    """Without the anti-idle plugin, all credited time is posted (study-time policies only)."""
    from lms_core.pluginhost import get_plugin_manager

    if event.actor_id is None or get_plugin_manager().has_plugin("anti_idle"):
        return
    day = S.local_date(event.created_at)
    pol = P.in_force(day)
    rules = P.rules_of(pol)
    if rules["online_course"]["kind"] != "study_time":
        return
    from lms_core.learning.models import DailyTotal

    total = db.session.get(DailyTotal, (event.actor_id, day))
    if total is not None:
        _post_study_day(event.actor_id, day, _seconds_to_centi(rules, total.credited_ms // 1000), pol.version)


def on_day_reviewed(event: Any) -> None:
    p = event.payload
    try:
        user_id, day = int(p["user_id"]), dt.date.fromisoformat(str(p["day"]))
    except (KeyError, TypeError, ValueError):
        return
    rules = P.rules_of(P.in_force(day))
    post = p.get("decision") == "post"
    amount = _seconds_to_centi(rules, int(p.get("seconds") or 0)) if post else None
    cur = current_hold(user_id, day)
    S.resolve(
        key=held_key(user_id, day, cur.revision if cur is not None else 0),
        post=post,
        amount=amount,
        actor_id=p.get("reviewer_id"),
        memo=str(p.get("reason") or "")[:500] or None,
    )


def on_user_updated(event: Any) -> None:
    from plugins.credit_bank import ranks

    ranks.on_user_updated(event)


def on_users_imported(event: Any) -> None:
    from plugins.credit_bank import ranks

    ranks.on_users_imported(event)


HANDLERS = {
    "user.updated": on_user_updated,
    "users.imported": on_users_imported,
    "course.completed": on_course_completed,
    "study.interval_credited": on_interval_credited,
    "anti_idle.day_assessed": on_day_assessed,
    "anti_idle.day_reviewed": on_day_reviewed,
}


def replay_key_exists(key: str) -> bool:
    return (
        db.session.execute(select(L.TRANSFERS.c.id).where(L.TRANSFERS.c.id == L.transfer_id(key))).first() is not None
    )
