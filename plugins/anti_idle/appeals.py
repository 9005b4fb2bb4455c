"""Learners see their evidence lines and appeal; org-scoped auditors review holds and appeals.

The auditor's post or void of a held day goes through ``verdicts.review_day`` (the
credit path owns what a decision does to credit and completion); this module adds
the checks and messages a person sees, the appeal rows, and the scoped lists.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, literal_column, or_, select, union

from lms_core.accounts.models import User
from lms_core.authz import can, scope_condition
from lms_core.db import utcnow
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit
from lms_core.reports.charts import among
from plugins.anti_idle.events import APPEAL_DECIDED, APPEAL_FILED
from plugins.anti_idle.models import DEDUCTED, HELD, VOID, Appeal, DayVerdict, Evidence

#: Verdicts a learner may appeal: time was taken away or is waiting for an auditor.
APPEALABLE = (DEDUCTED, HELD, VOID)
REASON_MIN, REASON_MAX = 5, 2000
#: Rows per list page.
PAGE = 50
APPEAL_NAMES = {"open": _l("Waiting for review"), "upheld": _l("Upheld"), "rejected": _l("Rejected")}


class AppealError(ValueError):
    """A request that cannot be honoured; ``status`` is the HTTP status, the message is translated."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def clean_reason(raw: Any) -> str:
    text = (raw if isinstance(raw, str) else "").replace("\x00", "").strip()
    if len(text) < REASON_MIN:
        raise AppealError(_("Please give a reason of at least %(n)d characters.", n=REASON_MIN))
    if len(text) > REASON_MAX:
        raise AppealError(_("The reason may be at most %(n)d characters.", n=REASON_MAX))
    return text


def recent_days(user_id: int, *, limit: int = 30) -> list[DayVerdict]:
    return list(
        db.session.execute(
            select(DayVerdict).where(DayVerdict.user_id == user_id).order_by(DayVerdict.day.desc()).limit(limit)
        ).scalars()
    )


def lines_for(
    user_id: int, *, lesson_id: int | None = None, day_ids: list[int] | None = None, limit: int = 200
) -> list[Evidence]:
    stmt = select(Evidence).where(Evidence.user_id == user_id)
    if lesson_id is not None:
        stmt = stmt.where(Evidence.lesson_id == lesson_id)
    if day_ids is not None:
        stmt = stmt.where(Evidence.day_verdict_id.in_(day_ids))
    return list(
        db.session.execute(stmt.order_by(Evidence.span_start.desc(), Evidence.id.desc()).limit(limit)).scalars()
    )


def appeals_of(user_id: int) -> dict[int, Appeal]:
    """The latest appeal per day verdict of a person."""
    rows = db.session.execute(select(Appeal).where(Appeal.user_id == user_id).order_by(Appeal.id)).scalars()
    return {a.day_verdict_id: a for a in rows}


def file_appeal(user: User, day_verdict_id: int, reason: Any, evidence_id: Any = None) -> Appeal:
    """A learner appeals one of their own days (optionally one line of it); does not commit.

    Raises:
        AppealError: 404 for a day that is not theirs, 409 if it cannot be appealed
            (nothing taken, or an appeal is already open), 400 for a bad reason.
    """
    day = db.session.get(DayVerdict, day_verdict_id)
    if day is None or day.user_id != user.id:
        raise AppealError(_("No such study day."), 404)
    if day.verdict not in APPEALABLE:
        raise AppealError(_("Nothing was deducted or held on this day, so there is nothing to appeal."), 409)
    if (
        db.session.execute(select(Appeal.id).where(Appeal.day_verdict_id == day.id, Appeal.status == "open")).first()
        is not None
    ):
        raise AppealError(_("An appeal for this day is already waiting for review."), 409)
    text = clean_reason(reason)
    line_id: int | None = None
    if evidence_id not in (None, ""):
        line = (
            db.session.get(Evidence, int(evidence_id))
            if str(evidence_id).isdigit() and len(str(evidence_id)) < 12
            else None
        )
        if line is None or line.day_verdict_id != day.id:
            raise AppealError(_("That line does not belong to this day."), 400)
        line_id = line.id
    appeal = Appeal(user_id=user.id, day_verdict_id=day.id, evidence_id=line_id, reason=text, status="open")
    db.session.add(appeal)
    db.session.flush()
    emit(
        APPEAL_FILED,
        actor=user,
        object_type=Appeal.__tablename__,
        object_id=appeal.id,
        payload={"appeal_id": appeal.id, "day": day.day.isoformat(), "verdict": day.verdict, "evidence_id": line_id},
    )
    return appeal


# ---- auditors ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuedDay:
    """A waiting day, as the queue shows it: the columns it needs, not the whole row
    (whose JSON columns, tally and rules, the page never shows)."""

    id: int
    user_id: int
    day: dt.date
    verdict: str
    review_state: str
    review_score: int
    claimed_ms: int
    credited_ms: int
    held_ms: int


@dataclass(frozen=True, slots=True)
class QueuedPerson:
    """The person of a waiting day. ``org_unit`` is what ``authz.can`` reads for scope
    (plugins decide per item, e.g. the credit bank's reversal link)."""

    id: int
    username: str
    full_name: str
    org_unit: OrgUnit


@dataclass(frozen=True, slots=True)
class QueuedAppeal:
    status: str
    reason: str


@dataclass(frozen=True, slots=True)
class ShownLine:
    """An evidence line as lists show it (``evidence.render`` reads these fields)."""

    id: int
    day_verdict_id: int
    day: dt.date
    message: str
    params: dict[str, Any]
    span_start: dt.datetime
    span_end: dt.datetime
    amount_ms: int


@dataclass(frozen=True, slots=True)
class ReviewItem:
    day: QueuedDay
    person: QueuedPerson
    appeal: QueuedAppeal | None
    #: The person's unit name and the day's evidence lines (newest first, at most
    #: ``LINES_SHOWN``), read for the whole page at once.
    unit_name: str = ""
    lines: tuple[ShownLine, ...] = ()


#: Evidence lines shown per day in the review queue (as ``lines_for``'s limit).
LINES_SHOWN = 200


def lines_by_day(day_ids: list[int], *, limit: int = LINES_SHOWN) -> dict[int, list[ShownLine]]:
    """The evidence lines of several days in one query, newest first per day, at most ``limit`` each.

    Only the columns a line's sentence needs: the beat ids (up to 500 per line) and the
    threshold stay in the database.
    """
    if not day_ids:
        return {}
    rank = (
        func.row_number()
        .over(partition_by=Evidence.day_verdict_id, order_by=(Evidence.span_start.desc(), Evidence.id.desc()))
        .label("rank")
    )
    ranked = select(Evidence.id, rank).where(among(Evidence.day_verdict_id, day_ids)).subquery()
    stmt = (
        select(
            Evidence.id,
            Evidence.day_verdict_id,
            Evidence.day,
            Evidence.message,
            Evidence.params,
            Evidence.span_start,
            Evidence.span_end,
            Evidence.amount_ms,
        )
        .join(ranked, ranked.c.id == Evidence.id)
        .where(ranked.c.rank <= limit)
        .order_by(Evidence.day_verdict_id, Evidence.span_start.desc(), Evidence.id.desc())
    )
    found: dict[int, list[ShownLine]] = {}
    for row in db.session.execute(stmt):
        found.setdefault(row[1], []).append(ShownLine(*row))
    return found


def _scoped_people(auditor: User) -> Any:
    """Ids of the people in the auditor's ``anti_idle.review`` scope (SQL)."""
    return (
        select(User.id)
        .join(OrgUnit, OrgUnit.id == User.org_unit_id)
        .where(scope_condition(auditor, "anti_idle.review", OrgUnit.path))
    )


#: A held day no auditor has decided yet: the predicate of the partial index
#: ix_anti_idle_day_verdicts_review_queue, with literal values (bound ones would not
#: prove the index's predicate in a generic plan of a prepared statement).
HELD_WAITING = and_(
    DayVerdict.verdict == literal_column(f"'{HELD}'"),
    DayVerdict.review_state.not_in([literal_column("'posted'"), literal_column("'voided'")]),
)

#: What the review queue shows: everything waiting, held days only, or open appeals only.
QUEUE_KINDS = ("all", "held", "appeals")


#: A review queue cursor: the last item's review score, day and id (``90~2026-05-11~345``).
_CURSOR = re.compile(r"^(-?\d{1,9})~(\d{4}-\d{2}-\d{2})~(\d{1,18})$")


def parse_cursor(raw: str) -> tuple[int, dt.date, int] | None:
    """A cursor the queue produced (None for ''); ``AppealError`` 400 for anything else."""
    if not raw:
        return None
    m = _CURSOR.match(raw)
    try:
        day = dt.date.fromisoformat(m.group(2)) if m else None
    except ValueError:
        day = None
    if m is None or day is None:
        raise AppealError(_("This page link is not valid; start again from the first page."), 400)
    return int(m.group(1)), day, int(m.group(3))


def cursor_of(day: DayVerdict | QueuedDay) -> str:
    return f"{day.review_score}~{day.day.isoformat()}~{day.id}"


def review_list(
    auditor: User,
    *,
    after: tuple[int, dt.date, int] | None = None,
    kind: str = "all",
    org_path: str | None = None,
) -> tuple[list[ReviewItem], str | None]:
    """Held days not yet decided, and days with an open appeal, of people in scope.

    Highest review score first (the most suspicious day is looked at first), then
    the oldest. ``org_path`` narrows to one unit's subtree (inside the scope, which
    is applied in SQL whatever the filter says); ``kind`` to held days or appeals.
    Keyset pages: ``after`` is the previous page's last (score, day, id); returns the
    page and the cursor of the next one (None: this is the last).
    """
    order = (DayVerdict.review_score.desc(), DayVerdict.day, DayVerdict.id)
    people = _scoped_people(auditor)
    if org_path:
        people = people.where(OrgUnit.path.startswith(org_path, autoescape=True))

    def waiting(condition: Any) -> Any:
        """The first PAGE + 1 ids of one kind of waiting day, in queue order, in scope."""
        stmt = select(DayVerdict.id).where(condition, DayVerdict.user_id.in_(people))
        if after is not None:
            score, day, last_id = after
            stmt = stmt.where(
                or_(
                    DayVerdict.review_score < score,
                    and_(
                        DayVerdict.review_score == score,
                        or_(DayVerdict.day > day, and_(DayVerdict.day == day, DayVerdict.id > last_id)),
                    ),
                )
            )
        return stmt.order_by(*order).limit(PAGE + 1)

    # Each kind is its own bounded, ordered query: held days from the partial index
    # ix_anti_idle_day_verdicts_review_queue (its predicate is HELD_WAITING, written
    # with literals so PostgreSQL can match it in a prepared statement too), appealed
    # days from the open appeals. Together in one OR, PostgreSQL walked every verdict
    # of every day when fewer than a page were waiting.
    parts = []
    if kind in ("all", "held"):
        parts.append(waiting(HELD_WAITING))
    if kind in ("all", "appeals"):
        parts.append(waiting(DayVerdict.id.in_(select(Appeal.day_verdict_id).where(Appeal.status == "open"))))
    # Each part in its own subquery: SQLite allows ORDER BY and LIMIT there only.
    ids = union(*(select(part.subquery().c.id) for part in parts)).subquery()
    # The columns shown, not whole rows: a User brings its roles (a second SELECT) and
    # a day its JSON; reading 50 of each was a fifth of the page's CPU.
    stmt = (
        select(
            DayVerdict.id,
            DayVerdict.user_id,
            DayVerdict.day,
            DayVerdict.verdict,
            DayVerdict.review_state,
            DayVerdict.review_score,
            DayVerdict.claimed_ms,
            DayVerdict.credited_ms,
            DayVerdict.held_ms,
            User.username,
            User.full_name,
            OrgUnit,
        )
        .join(User, User.id == DayVerdict.user_id)
        .join(OrgUnit, OrgUnit.id == User.org_unit_id)
        .where(DayVerdict.id.in_(select(ids.c.id)))
    )
    rows = db.session.execute(stmt.order_by(*order).limit(PAGE + 1)).all()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    # What each item shows, for the whole page in one query each (not one per item).
    day_ids = [r[0] for r in rows]
    appeals: dict[int, QueuedAppeal] = {}
    if rows:
        for day_id, status, text in db.session.execute(
            select(Appeal.day_verdict_id, Appeal.status, Appeal.reason)
            .where(among(Appeal.day_verdict_id, day_ids))
            .order_by(Appeal.id)
        ):
            appeals[day_id] = QueuedAppeal(status, text)  # the latest appeal of the day
    lines = lines_by_day(day_ids)
    items = []
    for *day_columns, username, full_name, unit in rows:
        day = QueuedDay(*day_columns)
        items.append(
            ReviewItem(
                day,
                QueuedPerson(day.user_id, username, full_name, unit),
                appeals.get(day.id),
                unit.name,
                tuple(lines.get(day.id, ())),
            )
        )
    last = items[-1].day if more and items else None
    return items, (cursor_of(last) if last is not None else None)


def day_for_review(auditor: User, day_verdict_id: int) -> DayVerdict:
    """A day the auditor may review; 404 outside their scope (existence is not revealed)."""
    day = db.session.get(DayVerdict, day_verdict_id)
    person = db.session.get(User, day.user_id) if day else None
    if day is None or person is None or not can(auditor, "anti_idle.review", person):
        raise AppealError(_("No such study day."), 404)
    return day


def decide(auditor: User, day_verdict_id: int, decision: Any, reason: Any) -> str:
    """Post or void a held day, or uphold or reject an appeal, with a reason; does not commit.

    For a held day ``decision`` is ``post`` or ``void`` and goes through
    ``verdicts.review_day``; an open appeal on it is closed with the same reason
    (upheld if posted, rejected if voided). For an appealed day that is not held
    (a deduction) ``decision`` is ``uphold`` or ``reject``: the decision and reason
    are recorded on the appeal; restoring deducted time is a policy change and a
    recompute, not a per-person override.

    Returns the outcome recorded. Raises ``AppealError`` with a translated message.
    """
    from plugins.anti_idle.verdicts import ReviewError, review_day

    day = day_for_review(auditor, day_verdict_id)
    text = clean_reason(reason)
    appeal = db.session.execute(
        select(Appeal)
        .where(Appeal.day_verdict_id == day.id, Appeal.status == "open")
        .order_by(Appeal.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    held_open = day.verdict == HELD and day.review_state not in ("posted", "voided")
    if held_open:
        if decision not in ("post", "void"):
            raise AppealError(_("Choose whether to post or void the held time."))
        try:
            review_day(day, str(decision), auditor, text, appeal=appeal)
        except ReviewError:
            raise AppealError(_("This day can no longer be reviewed."), 409) from None
        outcome = "posted" if decision == "post" else "voided"
        if appeal is not None:
            _close(appeal, auditor, "upheld" if decision == "post" else "rejected", text)
        return outcome
    if appeal is None:
        raise AppealError(_("This day has nothing waiting for review."), 409)
    if decision not in ("uphold", "reject"):
        raise AppealError(_("Choose whether to uphold or reject the appeal."))
    status = "upheld" if decision == "uphold" else "rejected"
    _close(appeal, auditor, status, text)
    return status


def _close(appeal: Appeal, auditor: User, status: str, reason: str) -> None:
    appeal.status = status
    appeal.decided_at = utcnow()
    appeal.decided_by_id = auditor.id
    appeal.decision_reason = reason
    emit(
        APPEAL_DECIDED,
        actor=auditor,
        object_type=Appeal.__tablename__,
        object_id=appeal.id,
        org_unit_id=_org_of(appeal.user_id),
        payload={"appeal_id": appeal.id, "user_id": appeal.user_id, "status": status, "reason": reason},
    )


def _org_of(user_id: int) -> int | None:
    person = db.session.get(User, user_id)
    return person.org_unit_id if person else None


def template_context() -> dict[str, Any]:
    """What the plugin's evidence templates need, wherever they are rendered."""
    from plugins.anti_idle.events import VERDICT_NAMES
    from plugins.anti_idle.evidence import render

    return {"render": render, "verdict_names": VERDICT_NAMES, "appeal_names": APPEAL_NAMES}
