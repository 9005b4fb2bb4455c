"""Who looked at a person's learning record: every such view is itself logged.

A view is a ``record.viewed`` row in the append-only event log (the database
refuses UPDATE and DELETE there), with the viewer as actor, the viewer's unit at
the time, the person as object and what was seen in the payload. The viewer's
roles are copied into the payload, so the person sees the role someone held when
they looked, even after it was revoked. Looking at one's own record is not logged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from lms_core.accounts.models import Role, User
from lms_core.events.models import Event
from lms_core.events.services import emit, emit_many
from lms_core.extensions import db
from lms_core.i18n import label
from lms_core.orgs.models import OrgUnit

VIEWED = "record.viewed"
#: What was looked at (``payload["what"]``) and its name for the person.
WHAT = {
    "day": _l("A day of study (timeline)"),
    "learning": _l("Learning record (heartbeats)"),
    "log": _l("Learning log filtered to you"),
    "export": _l("An export naming you"),
    "credit": _l("Credit statement"),
    "review": _l("A held day under review"),
    "lrs": _l("Learning record store statements"),
    "transcripts": _l("Transcripts"),
    "ranks": _l("Rank history"),
    "profile": _l("Personal details (user administration)"),
}
#: Rows shown on 学习档案.
SHOWN = 50


def log_view(viewer: Any, person: User | int, what: str, detail: str = "") -> None:
    """Record that ``viewer`` looked at ``person``'s record; does not commit.

    The caller commits (a GET that logs commits before it renders, so the log row
    is durable even if rendering fails afterwards).
    """
    person_id = person if isinstance(person, int) else person.id
    if viewer is None or getattr(viewer, "id", None) in (None, person_id):
        return
    emit(
        VIEWED,
        actor=viewer,
        object_type=User.__tablename__,
        object_id=person_id,
        payload={"what": what, "detail": detail[:200], "roles": _roles(viewer)},
    )


def log_views(viewer: Any, shown: Mapping[int, str], what: str) -> None:
    """``log_view`` for each person id in ``shown`` (with its detail), in two statements
    whatever their number (a list page that names many people); does not commit."""
    if viewer is None or getattr(viewer, "id", None) is None:
        return
    roles = _roles(viewer)
    items = [
        {
            "object_type": User.__tablename__,
            "object_id": person_id,
            "payload": {"what": what, "detail": detail[:200], "roles": roles},
        }
        for person_id, detail in shown.items()
        if person_id != viewer.id
    ]
    if items:
        emit_many(VIEWED, items, actor=viewer)


def _roles(viewer: Any) -> list[str]:
    """The viewer's roles when they looked, kept in the row (a role revoked later still shows)."""
    return sorted({str(a.role) for a in getattr(viewer, "roles", [])})


@dataclass(frozen=True)
class ViewLine:
    at: dt.datetime
    viewer: str
    roles: str
    unit: str
    what: str
    detail: str


def views_of(person_id: int, *, limit: int = SHOWN) -> list[ViewLine]:
    """The latest views of a person's record, newest first (what 学习档案 shows them)."""
    rows = db.session.execute(
        select(Event, User.full_name, OrgUnit.name)
        .outerjoin(User, User.id == Event.actor_id)
        .outerjoin(OrgUnit, OrgUnit.id == Event.org_unit_id)
        .where(Event.object_type == User.__tablename__, Event.object_id == str(person_id), Event.name == VIEWED)
        .order_by(Event.id.desc())
        .limit(limit)
    ).all()
    lines = []
    for event, full_name, unit in rows:
        p = event.payload or {}
        roles = [label(Role(r)) for r in p.get("roles", []) if r in Role._value2member_map_ and r != Role.LEARNER]
        what = WHAT.get(str(p.get("what")))
        lines.append(
            ViewLine(
                at=event.created_at,
                viewer=full_name or _("(deleted account)"),
                roles="、".join(roles) or label(Role.LEARNER),
                unit=unit or "",
                what=str(what) if what is not None else _("Other"),
                detail=str(p.get("detail") or ""),
            )
        )
    return lines
