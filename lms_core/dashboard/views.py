"""Dashboard and the small JSON API about the current user."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from lms_core.authz import effective_assignments
from lms_core.i18n import SHANGHAI
from lms_core.pluginhost import get_plugin_manager

bp = Blueprint("dashboard", __name__)
ASSIGN_CHECK_KEY = "lms_assign_check"
ASSIGN_CHECK_SECONDS = 300


@bp.route("/")
def home() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    return redirect(url_for("accounts.login"))


@bp.route("/dashboard")
@login_required
def index() -> Any:
    panels = [p for answer in get_plugin_manager().hook.lms_dashboard_panels(user=current_user) for p in (answer or [])]
    panels.sort(key=lambda p: p.order)
    return render_template(
        "dashboard/index.html", panels=panels, grants=effective_assignments(current_user), **study_summary(current_user)
    )


def study_summary(user: Any) -> dict[str, Any]:
    """The learner's courses with progress, and the year's credited hours."""
    from lms_core.db import utcnow
    from lms_core.enrolments.services import course_lines, ensure_assigned
    from lms_core.extensions import db
    from lms_core.learning.services import credited_ms_in_year

    # Assignments reach existing learners through the materialise job; this catches
    # people who joined or moved since. Once per sign-in and then every few minutes,
    # not on every page view: it is the dashboard's costliest query.
    now = int(time.time())
    if now - int(session.get(ASSIGN_CHECK_KEY, 0)) >= ASSIGN_CHECK_SECONDS:
        session[ASSIGN_CHECK_KEY] = now
        if ensure_assigned(user):
            db.session.commit()
    year = utcnow().astimezone(SHANGHAI).year
    lines, year_ms = course_lines(user, year)
    # With a credit bank, "年度学时" is its posted balance (the same figure as the course
    # labels and the statement); without one, the year's credited viewing and reading.
    credit = get_plugin_manager().hook.lms_credit_summary(user=user, year=year)
    if credit is not None:
        return {
            "lines": lines,
            "year": year,
            "year_hours": credit.posted_centi / 100,
            "credit": credit,
            "year_required": credit.required_centi / 100,
        }
    if year_ms is None:  # no courses: no row carried the year's total
        year_ms = credited_ms_in_year(user.id, year)
    return {
        "lines": lines,
        "year": year,
        "year_hours": year_ms / 3_600_000,
        "credit": None,
        "year_required": current_app.config["LMS_YEARLY_REQUIRED_HOURS"],
    }


@bp.route("/api/v1/me")
@login_required
def me() -> Any:
    """Who the bearer of this session or token is (for machine clients)."""
    user = current_user
    return jsonify(
        {
            "id": user.id,
            "username": user.username,
            "full_name": user.full_name,
            "org_unit": {"code": user.org_unit.code, "name": user.org_unit.name},
            "rank_band": user.rank_band.value,
            "roles": [{"role": g.role, "scope": g.path} for g in effective_assignments(user)],
        }
    )


@bp.route("/dashboard/notices/<int:course_id>/read", methods=["POST"])
@login_required
def notice_read(course_id: int) -> Any:
    """Dismiss the notice of a new 调训 task."""
    from lms_core.enrolments.services import mark_notice_read
    from lms_core.jobs.services import commit

    if not mark_notice_read(current_user, course_id):
        abort(404)
    commit()
    return redirect(url_for("dashboard.index"))


@bp.route("/record")
@login_required
def record() -> Any:
    """学习档案: the learner's lessons, sessions and credited time of one year (earlier years one click away)."""
    from lms_core.db import utcnow
    from lms_core.learning.record import year_record

    current = utcnow().astimezone(SHANGHAI).year
    year = request.args.get("year", default=current, type=int)
    if year is None or not 2000 <= year <= current:
        abort(404)
    from lms_core.audit.viewlog import views_of

    return render_template(
        "dashboard/record.html",
        record=year_record(current_user.id, year, current),
        views=views_of(current_user.id),
    )


@bp.route("/record/days/<day>")
@login_required
def record_day(day: str) -> Any:
    """My own day as a picture (the same page the auditors see, without the admin menu)."""
    from lms_core.audit.views import parse_day, render_day

    return render_day(current_user._get_current_object(), parse_day(day), own=True)
