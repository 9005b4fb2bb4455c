"""The auditors' event-log query: one object for the page and the CSV export.

Scope is applied in SQL (``scope_condition``), so rows outside the auditor's
subtree are never fetched, and the export is exactly the filtered table.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Select, func, select

from lms_core import csv_export
from lms_core.accounts.models import User
from lms_core.authz import scope_condition
from lms_core.events.models import Event
from lms_core.events.names import event_label, object_label, readable_payload
from lms_core.extensions import db
from lms_core.i18n import SHANGHAI
from lms_core.orgs.models import OrgUnit

MAX_EXPORT_ROWS = 100_000


class QueryError(ValueError):
    pass


def _day(value: str, *, end: bool) -> dt.datetime | None:
    """A Beijing calendar day as a UTC bound (end: the next midnight)."""
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise QueryError(_("Invalid date %(value)s: use YYYY-MM-DD.", value=value)) from None
    if end:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI).astimezone(dt.UTC)


@dataclass
class EventLogQuery:
    viewer: Any
    name: str = ""  # prefix, e.g. "video." or "user.logged_in"
    username: str = ""
    org_code: str = ""
    #: A course's code: its events (enrolment, lessons, quizzes ...) carry its id.
    course_code: str = ""
    date_from: str = ""
    date_to: str = ""
    page: int = 1
    size: int = 50

    def statement(self) -> Select[Any]:
        actor = select(User).subquery()
        stmt = (
            select(Event, actor.c.username, actor.c.full_name, OrgUnit.name.label("unit_name"))
            .outerjoin(OrgUnit, OrgUnit.id == Event.org_unit_id)
            .outerjoin(actor, actor.c.id == Event.actor_id)
            .where(scope_condition(self.viewer, "events.view", OrgUnit.path))
        )
        if self.name:
            stmt = stmt.where(Event.name.startswith(self.name.strip(), autoescape=True))
        if self.username:
            stmt = stmt.where(actor.c.username == self.username.strip())
        if self.org_code:
            unit = db.session.execute(select(OrgUnit).filter_by(code=self.org_code.strip())).scalar_one_or_none()
            if unit is None:
                raise QueryError(_("Unknown org unit code %(code)s.", code=self.org_code))
            stmt = stmt.where(OrgUnit.path.startswith(unit.path, autoescape=True))
        if self.course_code:
            from lms_core.courses.models import Course

            code = self.course_code.strip()
            course_id = (
                db.session.execute(select(Course.id).where(Course.code == code)).scalar_one_or_none()
                if code.isprintable()
                else None
            )
            if course_id is None:
                raise QueryError(_("Unknown course code %(code)s.", code=code))
            stmt = stmt.where(Event.course_id == course_id)
        start, end = _day(self.date_from, end=False), _day(self.date_to, end=True)
        if start:
            stmt = stmt.where(Event.created_at >= start)
        if end:
            stmt = stmt.where(Event.created_at < end)
        return stmt

    def count(self) -> int:
        return int(db.session.execute(select(func.count()).select_from(self.statement().subquery())).scalar_one())

    def rows(self) -> list[Any]:
        stmt = self.statement().order_by(Event.id.desc()).limit(self.size).offset((max(self.page, 1) - 1) * self.size)
        return list(db.session.execute(stmt).all())

    def export_csv(self) -> Iterator[str]:
        """CSV with a UTF-8 BOM (Excel on Windows shows Chinese correctly), newest first."""
        yield csv_export.BOM
        buf = io.StringIO()
        writer = csv_export.writer(buf)
        writer.writerow(
            [
                _("No."),
                _("Time (Beijing)"),
                _("Event"),
                _("Event code"),
                _("Username"),
                _("Full name"),
                _("Org unit"),
                _("Object"),
                _("IP address"),
                _("Details"),
            ]
        )
        stmt = self.statement().order_by(Event.id.desc()).limit(MAX_EXPORT_ROWS)
        for event, username, full_name, unit_name in db.session.execute(stmt).yield_per(1000):
            local = event.created_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
            writer.writerow(
                [
                    event.id,
                    local,
                    event_label(event.name),
                    event.name,
                    username or "",
                    full_name or "",
                    unit_name or "",
                    object_label(event.object_type, event.object_id),
                    event.ip or "",
                    readable_payload(event.payload or {}),
                ]
            )
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
