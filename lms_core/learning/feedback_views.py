"""The feedback report of a course's surveys, for its authors and for report viewers over its unit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from lms_core.authz import can
from lms_core.bounded import int_arg
from lms_core.courses.models import Course, Lesson
from lms_core.courses.services import can_edit
from lms_core.extensions import db
from lms_core.learning import feedback
from lms_core.reports.tables import download

bp = Blueprint("learning_feedback", __name__, url_prefix="/feedback")
FORMATS = ("html", "csv", "xlsx")


def may_read(user: Any, course: Course) -> bool:
    """The course's authors, and org admins and auditors whose units include the course's unit."""
    return can_edit(user, course) or can(user, "reports.view", course)


@bp.route("/")
@login_required
def index() -> Any:
    """Courses in the viewer's units by feedback score, worst first, for one year."""
    if not can(current_user, "reports.view"):
        abort(403)
    this_year = dt.datetime.now(dt.UTC).year
    year = int_arg("year", this_year, minimum=2000, maximum=2100) or this_year
    rows = feedback.course_feedback_scores(
        current_user._get_current_object(), dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    )
    return render_template("feedback/index.html", rows=rows, year=year, years=range(this_year, this_year - 6, -1))


@bp.route("/courses/<int:course_id>/<fmt>")
@login_required
def course(course_id: int, fmt: str) -> Any:
    if fmt not in FORMATS:
        abort(404)
    course = db.session.get(Course, course_id)
    if course is None:
        abort(404)
    if not may_read(current_user, course):
        abort(403)
    lesson = None
    lesson_id = int_arg("lesson", 0)
    if lesson_id:
        lesson = db.session.get(Lesson, lesson_id)
        if lesson is None or lesson.course_id != course.id:
            abort(404)
    reports = feedback.survey_report(course, lesson)
    table = feedback.report_table(reports)
    if fmt == "html":
        return render_template(
            "feedback/course.html",
            course=course,
            lesson=lesson,
            reports=reports,
            table=table,
            editable=can_edit(current_user, course),
        )
    return download(table, fmt, f"feedback-{course.code}", course.title)
