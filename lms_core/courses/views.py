"""Catalogue, course page, enrolment and assignment (调训)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms_core.accounts.models import RankBand
from lms_core.authz import AccessDenied, can
from lms_core.courses import services
from lms_core.courses.models import Course
from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.jobs.services import commit
from lms_core.learning import course_page
from lms_core.learning.models import ProgressStatus
from lms_core.orgs.services import by_code

bp = Blueprint("courses", __name__, url_prefix="/courses")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def visible_course_or_404(course_id: int) -> Course:
    return visible_or_404(db.session.get(Course, course_id))


def visible_or_404(course: Course | None) -> Course:
    """Unpublished courses exist only for their authors (404, not 403: no probing)."""
    if course is None or (not course.published and not services.can_edit(current_user, course)):
        abort(404)
    return course


@bp.route("/")
@login_required
def catalogue() -> Any:
    req = request.args.get("required")
    query = services.CatalogueQuery(
        text=(request.args.get("q") or "").strip()[:100],
        topic_id=request.args.get("topic", type=int),
        required={"1": True, "0": False}.get(req or ""),
        instructor=(request.args.get("instructor") or "").strip()[:50],
        page=max(request.args.get("page", 1, type=int), 1),
        viewer_id=current_user.id)
    courses, total = query.run()
    return render_template("courses/catalogue.html", courses=courses, total=total, query=query,
                           topics=services.topics())


@bp.route("/<int:course_id>")
@login_required
def detail(course_id: int) -> Any:
    head = course_page.course_head(course_id, current_user)
    course = visible_or_404(head.course if head else None)
    outline, marks = course_page.outline_with_marks(course.id, current_user.id)
    # The same definition as learning.services.course_counts, from rows already loaded.
    required = [lesson for _section, lessons in outline for lesson in lessons if lesson.required]
    done = sum(1 for lesson in required
               if (mark := marks.get(lesson.id)) is not None and mark.status == ProgressStatus.COMPLETED)
    return render_template("courses/detail.html", course=course, enrolment=head.enrolment if head else None,
                           outline=outline, instructors=head.instructors if head else "", progress=marks,
                           done=done, total=len(required), can_edit=services.can_edit(current_user, course),
                           can_assign=can(current_user, "course.assign"))


@bp.route("/<int:course_id>/enrol", methods=["POST"])
@login_required
def enrol(course_id: int) -> Any:
    course = visible_course_or_404(course_id)
    try:
        enrolments.enrol(current_user, course)
    except (enrolments.EnrolmentError, AccessDenied) as exc:
        db.session.rollback()
        flash(_("Could not enrol: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("courses.detail", course_id=course.id)), 303
    commit()
    flash(_("You are enrolled in %(title)s.", title=course.title), "success")
    return redirect(url_for("courses.detail", course_id=course.id))


@bp.route("/<int:course_id>/assign", methods=["GET", "POST"])
@login_required
def assign(course_id: int) -> Any:
    course = visible_course_or_404(course_id)
    if not can(current_user, "course.assign"):
        abort(403)
    errors: list[str] = []
    if request.method == "POST":
        unit = by_code((request.form.get("org_code") or "").strip())
        band_raw = request.form.get("rank_band") or ""
        try:
            day = dt.date.fromisoformat(request.form.get("deadline") or "")
            deadline = dt.datetime.combine(day, dt.time(23, 59), tzinfo=SHANGHAI).astimezone(dt.UTC)
        except ValueError:
            deadline = None
            errors.append(_("Please give the deadline as a date (YYYY-MM-DD)."))
        if unit is None:
            errors.append(_("Unknown org unit code."))
        band = None
        if band_raw:
            try:
                band = RankBand(band_raw)
            except ValueError:
                errors.append(_("Unknown rank band."))
        if not errors and unit is not None and deadline is not None:
            if not can(current_user, "course.assign", unit):
                abort(403)
            try:
                enrolments.assign(current_user, course, unit, deadline=deadline, rank_band=band,
                                  note=request.form.get("note") or "")
            except enrolments.EnrolmentError as exc:
                db.session.rollback()
                errors.append(str(exc))
            else:
                commit()
                flash(_("Assigned %(title)s to %(unit)s.", title=course.title, unit=unit.name), "success")
                return redirect(url_for("courses.detail", course_id=course.id))
    return render_template("courses/assign.html", course=course, errors=errors,
                           rank_bands=list(RankBand)), 400 if errors else 200
