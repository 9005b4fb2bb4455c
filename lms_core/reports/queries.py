"""调训 and hours reports, scoped in SQL to the viewer's units.

Every query adds ``scope_condition(viewer, "reports.view", <learner's unit path>)``,
so a county admin looking at a city-wide 调训 receives only the county's people:
rows outside the scope are never fetched, not merely hidden.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Select, and_, case, exists, func, literal, or_, select, true

from lms_core.accounts.models import RankBand, User, UserStatus
from lms_core.authz import effective_assignments, scope_condition
from lms_core.courses.models import Course
from lms_core.enrolments.models import Assignment, Enrolment
from lms_core.extensions import db
from lms_core.i18n import SHANGHAI as SHANGHAI  # re-exported: modules here read it from this one
from lms_core.learning.models import LessonProgress, ProgressStatus
from lms_core.orgs.models import OrgUnit
from lms_core.reports.models import UnitYear
from lms_core.reports.rollup import Leaf, fill, roll_up, visible_ancestors
from lms_core.reports.tables import Table, hundredths

CAPABILITY = "reports.view"

#: A learner's state in one 调训, as the drill-down filters and shows it.
STATUSES = ("not_started", "in_progress", "completed", "overdue")
STATUS_LABELS = {
    "not_started": _l("Not started"),
    "in_progress": _l("In progress"),
    "completed": _l("Completed"),
    "overdue": _l("Overdue"),
}
BAND_LABELS = {
    RankBand.COUNTY_AND_ABOVE: _l("County-level and above"),
    RankBand.TOWNSHIP: _l("Township-level"),
    RankBand.GENERAL: _l("General cadre"),
}


class ReportError(ValueError):
    """Bad filter input; the message is shown to the user (translated)."""


def band_label(band: str | None) -> str:
    return str(BAND_LABELS[RankBand(band)]) if band else ""


def visible_assignments(viewer: User) -> ColumnElement[bool]:
    """Assignments whose reach overlaps the viewer's scope (a condition on the assignment's ``OrgUnit``).

    An assignment of a unit inside the scope, or of a unit above it (a city-wide
    调训 seen by a county admin, who then sees the county's part only).
    """
    inside = scope_condition(viewer, CAPABILITY, OrgUnit.path)
    holders = _holders()
    above = [literal(g.path).startswith(OrgUnit.path) for g in effective_assignments(viewer) if g.role in holders]
    return or_(inside, *above) if above else inside


def _holders() -> set[str]:
    from flask import current_app

    holders: set[str] = current_app.extensions["lms_capabilities"][CAPABILITY]
    return holders


def assignment_list(viewer: User, limit: int = 100) -> list[tuple[Assignment, Course, OrgUnit]]:
    stmt = (
        select(Assignment, Course, OrgUnit)
        .join(Course, Course.id == Assignment.course_id)
        .join(OrgUnit, OrgUnit.id == Assignment.org_unit_id)
        .where(visible_assignments(viewer))
        .order_by(Assignment.deadline.desc(), Assignment.id.desc())
        .limit(limit)
    )
    return [(a, c, u) for a, c, u in db.session.execute(stmt).all()]


def find_assignment(viewer: User, assignment_id: int) -> Assignment | None:
    """The assignment if the viewer may report on it; None otherwise (the page answers 404)."""
    stmt = (
        select(Assignment)
        .join(OrgUnit, OrgUnit.id == Assignment.org_unit_id)
        .where(Assignment.id == assignment_id, visible_assignments(viewer))
    )
    return db.session.execute(stmt).scalar_one_or_none()


@dataclass
class AssignmentReport:
    """One 调训's people in the viewer's scope: grouped by unit and rank band, or listed."""

    viewer: User
    assignment: Assignment
    now: dt.datetime
    #: Drill-down filters (the learner's own unit, band, state); None = all.
    unit_id: int | None = None
    band: str | None = None
    status: str | None = None
    #: A subtotal row's drill-down: everyone at or under this unit.
    subtree_id: int | None = None

    def __post_init__(self) -> None:
        if self.band is not None and self.band not in {b.value for b in RankBand}:
            raise ReportError(_("Unknown rank band."))
        if self.status is not None and self.status not in STATUSES:
            raise ReportError(_("Unknown status."))

    def people_statement(self) -> Select[Any]:
        """One row per person the 调训 reaches, with their state (the drill-down's query)."""
        a = self.assignment
        started_lesson = exists().where(
            LessonProgress.user_id == User.id,
            LessonProgress.course_id == a.course_id,
            LessonProgress.status != ProgressStatus.NOT_STARTED,
        )
        completed = Enrolment.completed_at.is_not(None)
        started = or_(completed, started_lesson)
        past_deadline = a.deadline <= self.now
        state = case(
            (completed, "completed"), (literal(past_deadline), "overdue"), (started, "in_progress"), else_="not_started"
        )
        stmt = (
            select(
                User.id.label("user_id"),
                User.full_name,
                User.username,
                OrgUnit.id.label("unit_id"),
                OrgUnit.name.label("unit_name"),
                OrgUnit.code.label("unit_code"),
                User.rank_band,
                Enrolment.completed_at,
                case((started, 1), else_=0).label("started"),
                state.label("state"),
            )
            .join(OrgUnit, OrgUnit.id == User.org_unit_id)
            .outerjoin(Enrolment, and_(Enrolment.user_id == User.id, Enrolment.course_id == a.course_id))
            .where(
                OrgUnit.path.startswith(a.org_unit.path, autoescape=True),
                User.status == UserStatus.ACTIVE,
                scope_condition(self.viewer, CAPABILITY, OrgUnit.path),
            )
        )
        if a.rank_band is not None:
            stmt = stmt.where(User.rank_band == a.rank_band)
        if self.unit_id is not None:
            stmt = stmt.where(OrgUnit.id == self.unit_id)
        if self.subtree_id is not None:
            # Paths hold only digits and slashes: no LIKE wildcard to escape.
            under = select(OrgUnit.path).where(OrgUnit.id == self.subtree_id).scalar_subquery()
            stmt = stmt.where(OrgUnit.path.startswith(under))
        if self.band is not None:
            stmt = stmt.where(User.rank_band == RankBand(self.band))
        return stmt

    def summary(self) -> Table:
        """Reached, started, completed and overdue per (learner's unit, rank band), rolled up.

        Units above the rows (in the viewer's scope, at or under the assigned unit) get a
        subtotal over all ranks; the table ends with the total.
        """
        people = self.people_statement().add_columns(OrgUnit.path.label("unit_path")).subquery()
        stmt = (
            select(
                people.c.unit_id,
                people.c.unit_code,
                people.c.unit_name,
                people.c.unit_path,
                people.c.rank_band,
                func.count(),
                func.sum(people.c.started),
                func.sum(case((people.c.state == "completed", 1), else_=0)),
                func.sum(case((people.c.state == "overdue", 1), else_=0)),
            )
            .group_by(people.c.unit_id, people.c.unit_code, people.c.unit_name, people.c.unit_path, people.c.rank_band)
            .order_by(people.c.unit_code, people.c.rank_band)
        )
        table = Table(
            [
                _("Org unit"),
                _("Unit code"),
                _("Rank band"),
                _("People reached"),
                _("People started"),
                _("People completed"),
                _("People overdue"),
                _("Completion rate"),
            ]
        )
        leaves = [
            Leaf(
                unit_id,
                code,
                name,
                path,
                [band_label(band)],
                [int(reached), int(started or 0), int(completed or 0), int(overdue or 0)],
                {"unit": unit_id, "band": str(band)},
            )
            for unit_id, code, name, path, band, reached, started, completed, overdue in db.session.execute(stmt).all()
        ]
        # The people's query kept only units in scope and under the assigned unit.
        ancestors = visible_ancestors(
            self.viewer, CAPABILITY, leaves, self.assignment.org_unit.path, leaves_in_scope=True
        )
        fill(table, roll_up(leaves, ancestors, [_("All ranks")]), _with_rate)
        return table

    def people(self, limit: int = 5000) -> Table:
        """The drill-down: the people behind a summary row, with their state."""
        people = self.people_statement().subquery()
        stmt = select(people)
        if self.status is not None:
            stmt = stmt.where(people.c.state == self.status)
        stmt = stmt.order_by(people.c.unit_code, people.c.full_name, people.c.user_id).limit(limit)
        table = Table(
            [
                _("Full name"),
                _("Username"),
                _("Org unit"),
                _("Rank band"),
                _("Status"),
                _("Completed at (Beijing time)"),
            ]
        )
        for row in db.session.execute(stmt).mappings():
            done = row["completed_at"]
            table.rows.append(
                [
                    row["full_name"],
                    row["username"],
                    row["unit_name"],
                    band_label(row["rank_band"]),
                    str(STATUS_LABELS[row["state"]]),
                    _beijing(done),
                ]
            )
            # The day it was completed links to that day as a picture (the page checks scope again).
            day = done.astimezone(SHANGHAI).date().isoformat() if done else None
            table.keys.append({"user": row["user_id"], "day": day})
        return table


def _with_rate(numbers: list[int]) -> list[Any]:
    reached, _started, completed, _overdue = numbers
    return [*numbers, f"{100 * completed / reached:.1f}%" if reached else ""]


def _beijing(value: dt.datetime | None) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if value else ""


@dataclass
class HoursReport:
    """Credited study hours per learner's unit and Beijing month of one year.

    Read from the hours rollup pivoted by month (``report_unit_years``, rebuilt from the
    daily totals, which are kept in step with the one interval ledger), so these figures
    equal every learner's own page as of the rollup's stamp, shown with the table.
    """

    viewer: User
    year: int
    root: OrgUnit | None = None

    def __post_init__(self) -> None:
        if not 2000 <= self.year <= 2100:
            raise ReportError(_("Choose a year between 2000 and 2100."))

    def statement(self) -> Any:
        """One row per unit: id, code, name, path, then the hours of months 1 to 12 (ms).

        Read from ``report_unit_years``, where the refresh pivoted the months: a county's
        500 units are 500 rows, where summing the year's rows of ``report_unit_months`` per
        page (one ``sum(CASE ...)`` per month over 9,500 rows) cost most of the page's
        PostgreSQL time. A unit has a row when it has credited study in the year.
        """
        unit = (OrgUnit.id, OrgUnit.code, OrgUnit.name, OrgUnit.path)
        return (
            select(*unit, *(getattr(UnitYear, m) for m in UnitYear.MONTHS))
            .join(OrgUnit, OrgUnit.id == UnitYear.org_unit_id)
            .where(
                UnitYear.year == self.year,
                scope_condition(self.viewer, CAPABILITY, OrgUnit.path),
                OrgUnit.path.startswith(self.root.path, autoescape=True) if self.root else true(),
            )
        )

    def table(self) -> Table:
        """One row per unit with hours in the year, parent units' subtotals and the total."""
        months = [_("Month %(n)d", n=m) for m in range(1, 13)]
        # The 13 figures are integer hundredths of an hour (see Table.in_hundredths).
        table = Table([_("Org unit"), _("Unit code"), *months, _("Total hours")], in_hundredths=range(2, 15))
        leaves = sorted(
            (
                Leaf(unit_id, code, name, path, [], by_month, {"unit": unit_id})
                for unit_id, code, name, path, *by_month in db.session.execute(self.statement())
            ),
            key=lambda leaf: leaf.code,
        )
        # The statement kept only units in scope and under the root.
        root = self.root.path if self.root else None
        ancestors = visible_ancestors(self.viewer, CAPABILITY, leaves, root, leaves_in_scope=True)
        fill(table, roll_up(leaves, ancestors, []), lambda ms: hundredths([*ms, sum(ms)]))
        return table


def scope_unit(viewer: User, code: str) -> OrgUnit:
    """The unit of ``code`` if it lies in the viewer's scope (ReportError / LookupError otherwise)."""
    # PostgreSQL refuses a NUL in a text parameter: such a code can match no unit anyway.
    unit = (
        None
        if not code.isprintable()
        else db.session.execute(select(OrgUnit).where(OrgUnit.code == code)).scalar_one_or_none()
    )
    if unit is None:
        raise ReportError(_("No org unit has the code %(code)s.", code=code))
    allowed = db.session.execute(
        select(OrgUnit.id).where(OrgUnit.id == unit.id, scope_condition(viewer, CAPABILITY, OrgUnit.path))
    ).scalar_one_or_none()
    if allowed is None:
        raise LookupError(code)
    return unit
