"""Reversing a whole person-year of credit for 代学代考, with a second auditor's confirmation.

One auditor requests it with a reason; a *different* auditor whose scope covers the
person confirms (the ledger then reverses every posted credit of that year, each
line keeping the reason) or declines it. The requester can never confirm their
own request. Requests and decisions are events in the append-only event log, so
both auditors, their reasons and the time are recorded; the reversals are journal
lines (``reverses_id``), never edits. Pending holds of that year are left to the
review queue (they are not credit yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import String, cast, select

from lms_core.accounts.models import User
from lms_core.authz import can, scope_condition
from lms_core.db import utcnow
from lms_core.events.models import Event
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.i18n import SHANGHAI
from lms_core.orgs.models import OrgUnit

REQUESTED = "credit.year_reversal_requested"
CONFIRMED = "credit.year_reversal_confirmed"
DECLINED = "credit.year_reversal_declined"
#: Decisions name the request as their object.
REQUEST_OBJECT = "credit_year_reversal"
REASON_MIN, REASON_MAX = 5, 1000
#: Pending requests listed at once.
LISTED = 200


class ReversalError(ValueError):
    """A request that cannot be honoured; ``status`` is the HTTP status, the message is translated."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Request:
    event: Event
    person: User
    requester: str
    year: int
    reason: str


def _reason(raw: Any) -> str:
    text = (raw if isinstance(raw, str) else "").replace("\x00", "").strip()
    if len(text) < REASON_MIN:
        raise ReversalError(_("Please give a reason of at least %(n)d characters.", n=REASON_MIN))
    if len(text) > REASON_MAX:
        raise ReversalError(_("The reason may be at most %(n)d characters.", n=REASON_MAX))
    return text


def _year(raw: Any) -> int:
    text = str(raw or "").strip()
    current = utcnow().astimezone(SHANGHAI).year
    if not (text.isascii() and text.isdigit() and len(text) == 4 and 2000 <= int(text) <= current):
        raise ReversalError(_("Give a year between 2000 and %(y)d.", y=current))
    return int(text)


def _person(auditor: Any, username: Any) -> User:
    name = (username if isinstance(username, str) else "").strip()[:64]
    person = (
        db.session.execute(select(User).where(User.username == name)).scalar_one_or_none()
        if name and name.isprintable()
        else None
    )
    if person is None or not can(auditor, "credit.reverse", person):
        raise ReversalError(_("No such person in your units."), 404)
    return person


def _lock(person_id: int) -> None:
    """Serialise requests and decisions about one person (row lock on PostgreSQL)."""
    db.session.execute(select(User.id).where(User.id == person_id).with_for_update())


def _open_request(person_id: int, year: int) -> Event | None:
    for event in db.session.execute(
        select(Event)
        .where(Event.name == REQUESTED, Event.object_type == User.__tablename__, Event.object_id == str(person_id))
        .order_by(Event.id.desc())
    ).scalars():
        if int((event.payload or {}).get("year", 0)) == year and not _decided({event.id}):
            return event
    return None


def _decided(request_ids: set[int]) -> set[int]:
    if not request_ids:
        return set()
    rows = db.session.execute(
        select(Event.object_id).where(
            Event.name.in_((CONFIRMED, DECLINED)),
            Event.object_type == REQUEST_OBJECT,
            Event.object_id.in_([str(i) for i in request_ids]),
        )
    ).scalars()
    return {int(r) for r in rows if r is not None}


def request(auditor: Any, username: Any, year: Any, reason: Any) -> Event:
    """The first auditor asks for a person-year to be reversed; does not commit."""
    person = _person(auditor, username)
    the_year = _year(year)
    text = _reason(reason)
    _lock(person.id)
    if _open_request(person.id, the_year) is not None:
        raise ReversalError(_("A reversal of this year is already waiting for a second auditor."), 409)
    return emit(
        REQUESTED,
        actor=auditor,
        object_type=User.__tablename__,
        object_id=person.id,
        org_unit_id=person.org_unit_id,  # scoped by the person's unit, as the person is what it is about
        payload={"user_id": person.id, "year": the_year, "reason": text},
    )


def pending(auditor: Any) -> list[Request]:
    """Requests not yet confirmed or declined, about people in the auditor's scope, oldest first."""
    requester = select(User.id, User.full_name).subquery()
    rows = db.session.execute(
        select(Event, User, requester.c.full_name)
        .join(OrgUnit, OrgUnit.id == Event.org_unit_id)
        .join(User, Event.object_id == cast(User.id, String))
        .outerjoin(requester, requester.c.id == Event.actor_id)
        .where(
            Event.name == REQUESTED,
            Event.object_type == User.__tablename__,
            scope_condition(auditor, "credit.reverse", OrgUnit.path),
        )
        .order_by(Event.id)
        .limit(LISTED * 4)
    ).all()
    done = _decided({e.id for e, _p, _n in rows})
    return [
        Request(e, p, name or "", int(e.payload.get("year", 0)), str(e.payload.get("reason", "")))
        for e, p, name in rows
        if e.id not in done
    ][:LISTED]


def _year_lines(person_id: int, year: int) -> list[Any]:
    """Posted credit of the person's year not already reversed (what a full reversal takes back)."""
    from plugins.credit_bank.queries import statement

    return [
        line
        for line in statement(person_id, year)
        if line.status == "posted" and line.amount > 0 and line.code != "reversal" and not line.reversed_by
    ]


def preview(person_id: int, year: int) -> tuple[int, int]:
    """(lines, centi-学时) a confirmation would reverse now."""
    lines = _year_lines(person_id, year)
    return len(lines), sum(line.amount for line in lines)


def decide(auditor: Any, request_id: int, decision: Any, reason: Any) -> tuple[str, int]:
    """The second auditor confirms (reversing the year) or declines; does not commit.

    Returns the outcome and the centi-学时 reversed. Raises ``ReversalError``: 404 for
    a request outside the scope, 403 for the requester themselves, 409 if decided.
    """
    from plugins.credit_bank import services

    event = db.session.get(Event, request_id)
    person = None
    if event is not None and event.name == REQUESTED and str(event.object_id or "").isdigit():
        person = db.session.get(User, int(str(event.object_id)))
    if event is None or person is None or not can(auditor, "credit.reverse", person):
        raise ReversalError(_("No such reversal request."), 404)
    if decision not in ("confirm", "decline"):
        raise ReversalError(_("Choose whether to confirm or decline the reversal."))
    text = _reason(reason)
    if event.actor_id == auditor.id:
        raise ReversalError(_("A second auditor must decide: you asked for this reversal yourself."), 403)
    _lock(person.id)
    if _decided({event.id}):
        raise ReversalError(_("This reversal has already been decided."), 409)
    year = int(event.payload.get("year", 0))
    reversed_centi = 0
    lines = 0
    failed: list[str] = []
    if decision == "confirm":
        memo = _(
            "Substitute study (代学代考), year reversed: %(first)s; confirmed by a second auditor: %(second)s",
            first=event.payload.get("reason", ""),
            second=text,
        )
        for line in _year_lines(person.id, year):
            result = services.reverse(
                transfer_id=line.id, reason=memo, actor_id=auditor.id, key=f"year:{event.id}", commit=False
            )
            if all(r in ("created", "exists") for r in result):
                reversed_centi += line.amount
                lines += 1
            else:
                failed.append(line.id)
    emit(
        CONFIRMED if decision == "confirm" else DECLINED,
        actor=auditor,
        object_type=REQUEST_OBJECT,
        object_id=event.id,
        org_unit_id=person.org_unit_id,
        payload={
            "request_id": event.id,
            "user_id": person.id,
            "year": year,
            "requested_by": event.actor_id,
            "reason": text,
            "lines": lines,
            "centi": reversed_centi,
            "failed": failed[:100],
        },
    )
    return ("confirmed" if decision == "confirm" else "declined"), reversed_centi
