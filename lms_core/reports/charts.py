"""Dashboard charts: figures aggregated in SQL, drawn by ECharts on the page and by fpdf2 in the PDF.

A :class:`Chart` is plain data: categories, one or more series and a sentence that
says what it shows. The same object gives the ECharts option (a JSON script tag the
static ``dashboard.js`` reads: no inline script under the CSP), the table shown under
it as the text alternative, and the bars or lines of the annual report's PDF.

Core charts live here; plugins add theirs through ``lms_report_charts`` (the credit
bank's hours against requirements, anti-idle's deductions by rule), so the core does
not import them. Every query is restricted to the viewer's scope in SQL and to the
chosen root unit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import ARRAY, Integer, and_, any_, bindparam, func, select

from lms_core.accounts.models import User
from lms_core.authz import effective_assignments, scope_condition
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit
from lms_core.reports.models import SubtreeEnrolments, SubtreeHeads, SubtreeMonth
from lms_core.reports.tables import MS_PER_HOUR, Table

CAPABILITY = "reports.view"
#: Chart kinds ``dashboard.js`` and the PDF know: vertical bars, horizontal bars, lines.
KINDS = ("bar", "hbar", "line")
#: The worst-rated courses shown (at least this many answers each).
WORST_COURSES = 10
MIN_ANSWERS = 1


@dataclass
class Series:
    name: str
    values: list[float]


@dataclass
class Chart:
    """One chart and its text alternative."""

    key: str
    title: str
    kind: str
    #: Header of the category column of the table (e.g. 单位, 月份).
    category_label: str
    categories: list[str]
    series: list[Series]
    #: What a value measures (axis name): 学时, %, 分.
    unit: str
    #: One or two sentences saying what the chart shows (read by screen readers, printed in the PDF).
    summary: str
    order: int = 100
    #: Extra table columns beyond the series (e.g. the number of answers), per category.
    extra_headers: list[str] = field(default_factory=list)
    extra: list[list[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(self.kind)

    @property
    def empty(self) -> bool:
        return not self.categories

    def table(self) -> Table:
        """The figures as a table: one row per category, one column per series."""
        table = Table([self.category_label, *(s.name for s in self.series), *self.extra_headers])
        for i, category in enumerate(self.categories):
            extra = self.extra[i] if i < len(self.extra) else []
            table.rows.append([category, *(_fmt(s.values[i]) for s in self.series), *extra])
        return table

    def option(self) -> dict[str, Any]:
        """The data ``dashboard.js`` turns into an ECharts option (no functions: JSON only)."""
        return {
            "kind": self.kind,
            "unit": self.unit,
            "categories": self.categories,
            "series": [{"name": s.name, "values": s.values} for s in self.series],
        }


def rollup_label(moment: dt.datetime | None) -> str:
    from lms_core.i18n import SHANGHAI

    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if moment else ""


def _fmt(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def hours_of(ms: int | None) -> float:
    return round(int(ms or 0) / MS_PER_HOUR, 2)


def percent(part: int | float, whole: int | float) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


@dataclass
class ChartScope:
    """Who looks, at which year and which part of the tree."""

    viewer: User
    year: int
    root: OrgUnit | None
    #: When the rollups the charts read were built (the oldest stamp, shown with them; None: never).
    as_of: dt.datetime | None = None
    _groups: list[Any] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def as_of_label(self) -> str:
        """The rollup's stamp in Beijing time, as pages and the PDF show it."""
        return rollup_label(self.as_of)

    def units_condition(self, path_column: Any) -> Any:
        """The viewer's scope and the root's subtree, on an ``OrgUnit.path`` column."""
        cond = scope_condition(self.viewer, CAPABILITY, path_column)
        if self.root is not None:
            cond = and_(cond, path_column.startswith(self.root.path, autoescape=True))
        return cond

    @property
    def year_start(self) -> dt.date:
        return dt.date(self.year, 1, 1)

    @property
    def year_end(self) -> dt.date:
        return dt.date(self.year + 1, 1, 1)

    def group_units(self) -> list[Any]:
        """The units compared, as rows (id, code, name, path): the root's children, or the root alone.

        With no root (a site admin's whole tree), the top units. Only units in the viewer's
        scope (in SQL): the charts then read these units' per-subtree rollup rows by key,
        and a scope is a set of whole subtrees, so each compared unit's figure is in scope.
        """
        stmt: Any = select(OrgUnit.id, OrgUnit.code, OrgUnit.name, OrgUnit.path)
        stmt = stmt.where(self.units_condition(OrgUnit.path))
        if self.root is None:
            return list(db.session.execute(stmt.where(OrgUnit.parent_id.is_(None))))
        children: list[Any] = list(db.session.execute(stmt.where(OrgUnit.parent_id == self.root.id)))
        if children:
            return children
        return list(db.session.execute(stmt.where(OrgUnit.id == self.root.id)))

    def group_finder(self) -> tuple[list[Any], Callable[[str], int | None]]:
        """The compared units and a function from a unit's path to the id of its group (None: none)."""
        if self._groups is None:  # asked by several charts of one page
            self._groups = self.group_units()
        groups = self._groups
        by_path = {g[3]: g[0] for g in groups}
        depth = len(_path_parts(groups[0][3])) if groups else 0

        def group_of(path: str) -> int | None:
            return by_path.get("/" + "/".join(_path_parts(path)[:depth]) + "/")

        return groups, group_of

    def subtrees(self, unit_id: Any, *columns: Any) -> Any:
        """``SELECT unit_id, *columns`` of a per-subtree rollup, for the compared units only.

        The rollups hold each unit's whole subtree already summed (by the refresh,
        :func:`lms_core.reports.figures.summed_up`), so a city's comparison reads one row
        per county (and per key) by its primary key. The compared units were chosen in
        the viewer's scope (:meth:`group_units`), so no join to ``org_units`` is needed:
        with one, PostgreSQL hashed the city's 5,000 units for 49 rows.
        """
        groups, _group_of = self.group_finder()
        return select(unit_id, *columns).where(among(unit_id, [g[0] for g in groups]))

    def per_group(self, stmt: Any) -> tuple[list[Any], dict[int, list[int]]]:
        """Run a :meth:`subtrees` statement (a row per compared unit): (compared units, group id -> figures as ints)."""
        groups, _group_of = self.group_finder()
        sums = {int(gid): [int(v or 0) for v in figures] for gid, *figures in db.session.execute(stmt)}
        return groups, sums


def among(column: Any, ids: list[int]) -> Any:
    """``column IN ids``; on PostgreSQL ``column = ANY(:ids)``, one array parameter.

    ``IN`` binds, casts and renders each id on its own: for a city's 49 counties in five
    statements that was more Python per page than PostgreSQL spent answering them.
    (A subquery naming the compared units instead let the planner scan whole tables.)
    """
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(Integer)))
    return column.in_(ids)


def default_root(viewer: User) -> OrgUnit | None:
    """The unit a viewer's dashboard opens on: the broadest unit they may report on."""
    from flask import current_app

    holders = current_app.extensions["lms_capabilities"][CAPABILITY]
    grants = [g for g in effective_assignments(viewer) if g.role in holders]
    if not grants or any(g.role == "site_admin" for g in grants):
        roots = db.session.execute(select(OrgUnit).where(OrgUnit.parent_id.is_(None)).order_by(OrgUnit.code)).scalars()
        first = list(roots)
        return first[0] if len(first) == 1 else None
    path = min((g.path for g in grants), key=len)
    return db.session.execute(select(OrgUnit).where(OrgUnit.path == path)).scalar_one_or_none()


def _path_parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def monthly_trend(scope: ChartScope) -> Chart:
    """Hours and learners per month of the root's subtree (or of every top unit's), from ``report_subtree_months``.

    The root always lies in the viewer's scope (``_chart_scope`` refuses others), and a
    scope is a set of whole subtrees, so the root's subtree total is the scope's figure;
    the scope condition on the root itself still guards against any other case.
    """
    month = func.extract("month", SubtreeMonth.month)
    tops = [scope.root.id] if scope.root is not None else [g[0] for g in scope.group_finder()[0]]
    stmt = (
        select(month, func.sum(SubtreeMonth.credited_ms), func.sum(SubtreeMonth.learners))
        .join(OrgUnit, OrgUnit.id == SubtreeMonth.unit_id)
        .where(
            SubtreeMonth.unit_id.in_(tops),
            SubtreeMonth.month >= scope.year_start,
            SubtreeMonth.month < scope.year_end,
            scope.units_condition(OrgUnit.path),
        )
        .group_by(month)
    )
    by_month = {int(m): (int(ms or 0), int(n)) for m, ms, n in db.session.execute(stmt)}
    values = [hours_of(by_month.get(m, (0, 0))[0]) for m in range(1, 13)]
    learners = [[by_month.get(m, (0, 0))[1]] for m in range(1, 13)]
    best = max(range(12), key=lambda i: values[i]) if any(values) else None
    summary = (
        _(
            "Credited study hours per Beijing calendar month: %(total)s hours in the year, most in month %(m)d.",
            total=_fmt(sum(values)),
            m=best + 1,
        )
        if best is not None
        else _("No study time was credited in this year.")
    )
    return Chart(
        "monthly",
        _("Monthly trend of study hours"),
        "line",
        _("Month"),
        [_("Month %(n)d", n=m) for m in range(1, 13)],
        [Series(_("Credited hours"), values)],
        _("Hours"),
        summary,
        order=40,
        extra_headers=[_("Learners")],
        extra=learners,
    )


def unit_comparison(scope: ChartScope) -> Chart:
    """Credited hours per active person, per compared unit: the resource gap between districts.

    Head counts from each compared unit's ``report_subtree_heads`` row
    (:meth:`ChartScope.subtrees`); hours from its ``report_subtree_months``, summed in
    the same statement (one statement less per page: its binding and execution cost
    the app more than PostgreSQL's few primary-key reads).
    """
    studied = (
        select(func.sum(SubtreeMonth.credited_ms))
        .where(
            SubtreeMonth.unit_id == SubtreeHeads.unit_id,
            SubtreeMonth.month >= scope.year_start,
            SubtreeMonth.month < scope.year_end,
        )
        .scalar_subquery()
    )
    # Each compared unit's own subtree row (it lies in the scope; see monthly_trend).
    groups, figures = scope.per_group(scope.subtrees(SubtreeHeads.unit_id, SubtreeHeads.active, studied))
    ms_by = {gid: ms for gid, (_active, ms) in figures.items()}
    # Units with active people only (as the head count's inner join had it), by code.
    rows = sorted(
        ((gid, name, code, figures[gid][0]) for gid, code, name, _path in groups if figures.get(gid, [0])[0]),
        key=lambda r: r[2],
    )
    categories = [name for _gid, name, _code, _n in rows]
    per_head = [hours_of(int(ms_by.get(gid, 0) / n)) if n else 0.0 for gid, _name, _code, n in rows]
    totals = [[n, _fmt(hours_of(ms_by.get(gid, 0)))] for gid, _name, _code, n in rows]
    summary = _("Average credited hours per cadre in each unit this year.")
    if len(per_head) > 1 and max(per_head) > 0:
        hi, lo = max(range(len(rows)), key=per_head.__getitem__), min(range(len(rows)), key=per_head.__getitem__)
        summary += " " + _(
            "Highest: %(hi)s (%(hv)s hours); lowest: %(lo)s (%(lv)s hours).",
            hi=categories[hi],
            hv=_fmt(per_head[hi]),
            lo=categories[lo],
            lv=_fmt(per_head[lo]),
        )
    return Chart(
        "units",
        _("Comparison of units: hours per cadre"),
        "hbar",
        _("Org unit"),
        categories,
        [Series(_("Hours per cadre"), per_head)],
        _("Hours"),
        summary,
        order=50,
        extra_headers=[_("Active cadres"), _("Total hours")],
        extra=totals,
    )


def completion_rates(scope: ChartScope) -> Chart:
    """Of the enrolments made this (Beijing) year, the share completed, per compared unit.

    Read from each compared unit's ``report_subtree_enrolments`` row of the year.
    """
    stmt = scope.subtrees(SubtreeEnrolments.unit_id, SubtreeEnrolments.enrolments, SubtreeEnrolments.completed)
    stmt = stmt.where(SubtreeEnrolments.year == scope.year)
    groups, sums = scope.per_group(stmt)
    # Units with enrolments only (as the inner join over enrolments had it), by code.
    rows = sorted(
        ((name, code, sums[gid][0], sums[gid][1]) for gid, code, name, _path in groups if sums.get(gid, [0])[0]),
        key=lambda r: r[1],
    )
    categories = [r[0] for r in rows]
    rates = [percent(int(r[3] or 0), int(r[2])) for r in rows]
    total, completed = sum(int(r[2]) for r in rows), sum(int(r[3] or 0) for r in rows)
    summary = (
        _(
            "Of %(n)d course enrolments made this year, %(done)d are completed (%(rate)s%%).",
            n=total,
            done=completed,
            rate=percent(completed, total),
        )
        if total
        else _("Nobody enrolled in a course this year.")
    )
    return Chart(
        "completion",
        _("Completion rates of courses enrolled this year"),
        "bar",
        _("Org unit"),
        categories,
        [Series(_("Completion rate"), rates)],
        "%",
        summary,
        order=20,
        extra_headers=[_("Enrolments"), _("Completed")],
        extra=[[int(r[2]), int(r[3] or 0)] for r in rows],
    )


def worst_feedback(scope: ChartScope) -> Chart:
    """Courses owned in scope with the lowest mean rating (1–5) given this year (``course_feedback_scores``)."""
    from lms_core.learning.feedback import course_feedback_scores

    rows = course_feedback_scores(
        scope.viewer, scope.year_start, scope.year_end, root=scope.root, min_responses=MIN_ANSWERS, limit=WORST_COURSES
    )
    summary = (
        _(
            "The %(n)d courses with the lowest mean rating (1 to 5) this year; lowest: %(title)s.",
            n=len(rows),
            title=rows[0].title,
        )
        if rows
        else _("No course was rated this year.")
    )
    return Chart(
        "feedback",
        _("Courses with the worst feedback"),
        "hbar",
        _("Course"),
        [r.title for r in rows],
        [Series(_("Average rating"), [round(float(r.mean), 2) for r in rows])],
        _("Rating"),
        summary,
        order=60,
        extra_headers=[_("Owning unit"), _("People answering")],
        extra=[[r.unit, r.responses] for r in rows],
    )


def core_charts(scope: ChartScope) -> list[Chart]:
    return [completion_rates(scope), monthly_trend(scope), unit_comparison(scope), worst_feedback(scope)]


def all_charts(scope: ChartScope) -> list[Chart]:
    """The core's charts and every plugin's (``lms_report_charts``), in ``order``."""
    from lms_core.pluginhost import get_plugin_manager

    charts = core_charts(scope)
    for answer in get_plugin_manager().hook.lms_report_charts(scope=scope):
        charts.extend(answer or [])
    return sorted(charts, key=lambda c: (c.order, c.key))
