"""Report pages and their CSV/XLSX exports (thin: parse, query, render)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms_core.authz import require
from lms_core.bounded import int_arg
from lms_core.reports import queries
from lms_core.reports.charts import rollup_label
from lms_core.reports.tables import download

bp = Blueprint("reports", __name__, url_prefix="/reports")

#: What the ``fmt`` URL part may be: the page itself, or an export of the same table.
FORMATS = ("html", "csv", "xlsx")


@bp.before_request
@login_required
def _report_viewers_only() -> None:
    require(current_user, queries.CAPABILITY)


def _viewer() -> Any:
    return current_user._get_current_object()


def _rollup_stamp() -> dt.datetime | None:
    """The hours rollup's stamp, after queueing its rebuild if it is too old.

    When a rebuild was queued, it is committed before the figures are read: with inline
    jobs (development, tests) the rebuild has then already run; with a worker, the page
    shows the older snapshot and says how old it is. A fresh stamp needs no commit (a
    commit would also expire the viewer, whom the page then loads again).
    """
    from lms_core.db import utcnow
    from lms_core.jobs.services import commit
    from lms_core.reports import monthly

    max_age = current_app.config["LMS_REPORT_ROLLUP_MAX_AGE"]
    stamp = monthly.keep_fresh(max_age)
    if stamp is None or (utcnow() - stamp).total_seconds() > max_age:
        commit()  # a rebuild was queued (with inline jobs it has run now): read its stamp
        stamp = monthly.refreshed_at()
    return stamp


def _fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        abort(404)
    return fmt


@bp.route("/")
def index() -> Any:
    return render_template(
        "reports/index.html", assignments=queries.assignment_list(_viewer()), year=dt.datetime.now(dt.UTC).year
    )


def _assignment(assignment_id: int) -> Any:
    assignment = queries.find_assignment(_viewer(), assignment_id)
    if assignment is None:
        abort(404)
    return assignment


@bp.route("/assignments/<int:assignment_id>", defaults={"fmt": "html"})
@bp.route("/assignments/<int:assignment_id>.<fmt>")
def assignment(assignment_id: int, fmt: str) -> Any:
    fmt = _fmt(fmt)
    report = queries.AssignmentReport(_viewer(), _assignment(assignment_id), dt.datetime.now(dt.UTC))
    table = report.summary()
    if fmt != "html":
        return download(table, fmt, f"assignment-{assignment_id}", _("Training progress"))
    return render_template("reports/assignment.html", report=report, table=table)


@bp.route("/assignments/<int:assignment_id>/people", defaults={"fmt": "html"})
@bp.route("/assignments/<int:assignment_id>/people.<fmt>")
def people(assignment_id: int, fmt: str) -> Any:
    fmt = _fmt(fmt)
    assignment = _assignment(assignment_id)
    try:
        report = queries.AssignmentReport(
            _viewer(),
            assignment,
            dt.datetime.now(dt.UTC),
            unit_id=int_arg("unit"),
            subtree_id=int_arg("subtree"),
            band=request.args.get("band") or None,
            status=request.args.get("status") or None,
        )
    except queries.ReportError as exc:
        abort(400, str(exc))
    table = report.people()
    if fmt != "html":
        return download(table, fmt, f"assignment-{assignment_id}-people", _("People"))
    return render_template(
        "reports/people.html", report=report, table=table, statuses=queries.STATUS_LABELS, bands=queries.BAND_LABELS
    )


@bp.route("/hours", defaults={"fmt": "html"})
@bp.route("/hours.<fmt>")
def hours(fmt: str) -> Any:
    fmt = _fmt(fmt)
    viewer = _viewer()
    year = int_arg("year", dt.datetime.now(dt.UTC).year, minimum=0, maximum=9999)
    code = request.args.get("org", "").strip()[:64]
    try:
        root = queries.scope_unit(viewer, code) if code else None
        report = queries.HoursReport(viewer, year or 0, root)
    except queries.ReportError as exc:
        abort(400, str(exc))
    except LookupError:
        abort(403)
    as_of = _rollup_stamp()
    table = report.table()
    if fmt != "html":
        return download(table, fmt, f"hours-{report.year}", _("Study hours"))
    return render_template("reports/hours.html", report=report, table=table, code=code, as_of_label=rollup_label(as_of))


def _chart_scope() -> Any:
    """Year and root unit from the query string; 400/403 in Chinese on bad input."""
    from lms_core.reports.charts import ChartScope, default_root

    viewer = _viewer()
    year = int_arg("year", dt.datetime.now(queries.SHANGHAI).year, minimum=0, maximum=9999) or 0
    if not 2000 <= year <= 2100:
        abort(400, _("Choose a year between 2000 and 2100."))
    code = request.args.get("org", "").strip()[:64]
    try:
        root = queries.scope_unit(viewer, code) if code else default_root(viewer)
    except queries.ReportError as exc:
        abort(400, str(exc))
    except LookupError:
        abort(403)
    return ChartScope(viewer, year, root, as_of=_rollup_stamp())


@bp.route("/dashboard")
def dashboard() -> Any:
    """Leaders' charts (ECharts, data in JSON script tags), each with its table as the text alternative."""
    from lms_core.reports.charts import all_charts

    scope = _chart_scope()
    return render_template("reports/dashboard.html", scope=scope, charts=all_charts(scope))


@bp.route("/annual", defaults={"fmt": "html"})
@bp.route("/annual.<fmt>")
def annual(fmt: str) -> Any:
    """The annual quality report of a year and subtree: the page, or the same report as a PDF."""
    from lms_core.reports import annual as annual_report

    if fmt not in ("html", "pdf"):
        abort(404)
    report = annual_report.build(_chart_scope())
    if fmt == "pdf":
        from lms_core.reports.annual_pdf import render

        root = report.scope.root.code if report.scope.root is not None else "all"
        response = Response(render(report), mimetype="application/pdf")
        response.headers["Content-Disposition"] = f"attachment; filename=annual-report-{root}-{report.scope.year}.pdf"
        return response
    return render_template("reports/annual.html", report=report)
