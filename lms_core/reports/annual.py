"""The annual quality report (干部教育培训质量报告) of one org subtree and year.

One :class:`AnnualReport` holds the key figures, the dashboard's charts (core and
plugins', ``lms_report_charts``) and a per-unit table. The HTML page renders it with
ECharts; :mod:`lms_core.reports.annual_pdf` draws the same charts with fpdf2
primitives for the PDF, so the page and the file show the same numbers.

Every figure is aggregated in SQL within the viewer's scope and the root's subtree;
``flask lms report annual`` builds it for a chosen user's scope (a site admin's by
default) and reports progress step by step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import case, func, select

from lms_core.accounts.models import User, UserStatus
from lms_core.enrolments.models import Assignment, Enrolment
from lms_core.extensions import db
from lms_core.learning.models import DailyTotal
from lms_core.orgs.models import OrgUnit
from lms_core.reports.charts import Chart, ChartScope, all_charts, hours_of, percent
from lms_core.reports.queries import SHANGHAI
from lms_core.reports.tables import Table

#: Steps reported to a progress callback (the CLI prints them).
STEPS = ("figures", "charts", "units")


@dataclass
class Figure:
    label: str
    value: str
    note: str = ""


@dataclass
class AnnualReport:
    scope: ChartScope
    generated_at: dt.datetime
    figures: list[Figure] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    units: Table | None = None

    @property
    def title(self) -> str:
        where = self.scope.root.name if self.scope.root is not None else _("All units")
        return _("%(unit)s %(year)d Cadre Education and Training Quality Report", unit=where, year=self.scope.year)

    @property
    def generated_label(self) -> str:
        return self.generated_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _utc_bounds(scope: ChartScope) -> tuple[dt.datetime, dt.datetime]:
    """The Beijing calendar year as UTC instants."""
    start = dt.datetime.combine(scope.year_start, dt.time(), SHANGHAI).astimezone(dt.UTC)
    end = dt.datetime.combine(scope.year_end, dt.time(), SHANGHAI).astimezone(dt.UTC)
    return start, end


def key_figures(scope: ChartScope) -> list[Figure]:
    in_units = scope.units_condition(OrgUnit.path)
    cadres = db.session.execute(
        select(func.count(User.id))
        .join(OrgUnit, OrgUnit.id == User.org_unit_id)
        .where(User.status == UserStatus.ACTIVE, in_units)
    ).scalar_one()
    studied = db.session.execute(
        select(func.count(func.distinct(DailyTotal.user_id)), func.sum(DailyTotal.credited_ms))
        .join(User, User.id == DailyTotal.user_id)
        .join(OrgUnit, OrgUnit.id == User.org_unit_id)
        .where(DailyTotal.day >= scope.year_start, DailyTotal.day < scope.year_end, in_units)
    ).one()
    learners, ms = int(studied[0] or 0), int(studied[1] or 0)
    start, end = _utc_bounds(scope)
    enrolled = db.session.execute(
        select(func.count(Enrolment.id), func.sum(case((Enrolment.completed_at.is_not(None), 1), else_=0)))
        .join(User, User.id == Enrolment.user_id)
        .join(OrgUnit, OrgUnit.id == User.org_unit_id)
        .where(Enrolment.enrolled_at >= start, Enrolment.enrolled_at < end, in_units)
    ).one()
    enrolments, completed = int(enrolled[0] or 0), int(enrolled[1] or 0)
    assignments = db.session.execute(
        select(func.count(Assignment.id))
        .join(OrgUnit, OrgUnit.id == Assignment.org_unit_id)
        .where(Assignment.deadline >= start, Assignment.deadline < end, in_units)
    ).scalar_one()
    hours = hours_of(ms)
    return [
        Figure(_("Active cadres"), str(cadres)),
        Figure(
            _("Cadres who studied online"), str(learners), _("%(rate)s%% of cadres", rate=percent(learners, cadres))
        ),
        Figure(_("Credited study hours"), f"{hours:.2f}"),
        Figure(_("Hours per cadre"), f"{hours / cadres:.2f}" if cadres else "0.00"),
        Figure(_("Course enrolments"), str(enrolments)),
        Figure(
            _("Enrolments completed"),
            str(completed),
            _("%(rate)s%% of enrolments", rate=percent(completed, enrolments)),
        ),
        Figure(_("Training assignments (调训) due this year"), str(assignments)),
    ]


def unit_table(charts: list[Chart]) -> Table:
    """Per compared unit: cadres, hours, hours per cadre and completion rate (from the charts' rows)."""
    by_key = {c.key: c for c in charts}
    units, completion = by_key.get("units"), by_key.get("completion")
    table = Table(
        [_("Org unit"), _("Active cadres"), _("Credited study hours"), _("Hours per cadre"), _("Completion rate")]
    )
    if units is None:
        return table
    rates: dict[str, Any] = {}
    if completion is not None:
        rates = {c: f"{v:.1f}%" for c, v in zip(completion.categories, completion.series[0].values, strict=True)}
    for i, name in enumerate(units.categories):
        people, total = units.extra[i]
        table.rows.append([name, people, total, f"{units.series[0].values[i]:.2f}", rates.get(name, "")])
    return table


def build(scope: ChartScope, progress: Callable[[str], None] | None = None) -> AnnualReport:
    report = AnnualReport(scope, dt.datetime.now(dt.UTC))
    step = progress or (lambda _name: None)
    step("figures")
    report.figures = key_figures(scope)
    step("charts")
    report.charts = [c for c in all_charts(scope)]
    step("units")
    report.units = unit_table(report.charts)
    return report
