"""Catalogue, course page, enrolment and assignment (调训)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from lms_core.accounts.models import RankBand
from lms_core.authz import AccessDenied, can, scope_condition, scope_roots
from lms_core.bounded import int_arg, page_arg
from lms_core.courses import services
from lms_core.courses.models import Course
from lms_core.enrolments import reach
from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.i18n import SHANGHAI
from lms_core.learning import course_page
from lms_core.learning.models import ProgressStatus
from lms_core.orgs.models import OrgUnit
from lms_core.orgs.services import by_code
from lms_core.unit_of_work import service_call

bp = Blueprint("courses", __name__, url_prefix="/courses")


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
        topic_id=int_arg("topic"),
        required={"1": True, "0": False}.get(req or ""),
        instructor=(request.args.get("instructor") or "").strip()[:50],
        page=page_arg(),
        viewer_id=current_user.id,
    )
    courses, total = query.run()
    return render_template(
        "courses/catalogue.html", courses=courses, total=total, query=query, topics=services.topics()
    )


@bp.route("/<int:course_id>")
@login_required
def detail(course_id: int) -> Any:
    head = course_page.course_head(course_id, current_user)
    course = visible_or_404(head.course if head else None)
    outline, marks = course_page.outline_with_marks(course.id, current_user.id)
    # The same definition as learning.services.course_counts, from rows already loaded.
    required = [lesson for _section, lessons in outline for lesson in lessons if lesson.required]
    done = sum(
        1
        for lesson in required
        if (mark := marks.get(lesson.id)) is not None and mark.status == ProgressStatus.COMPLETED
    )
    return render_template(
        "courses/detail.html",
        course=course,
        enrolment=head.enrolment if head else None,
        outline=outline,
        instructors=head.instructors if head else "",
        progress=marks,
        done=done,
        total=len(required),
        can_edit=services.can_edit(current_user, course),
        can_assign=can(current_user, "course.assign"),
    )


@bp.route("/<int:course_id>/enrol", methods=["POST"])
@login_required
def enrol(course_id: int) -> Any:
    course = visible_course_or_404(course_id)
    back = url_for("courses.detail", course_id=course.id)
    with service_call(lambda: redirect(back, 303), message=_l("Could not enrol: %(reason)s"), errors=(AccessDenied,)):
        enrolments.enrol(current_user, course)
    flash(_("You are enrolled in %(title)s.", title=course.title), "success")
    return redirect(url_for("courses.detail", course_id=course.id))


@bp.route("/<int:course_id>/assign", methods=["GET", "POST"])
@login_required
def assign(course_id: int) -> Any:
    """调训: pick units from the tree, preview the head count, send; the course's assignments below."""
    course = visible_course_or_404(course_id)
    if not can(current_user, "course.assign"):
        abort(403)
    problems = SimpleNamespace(errors=[])  # every problem, listed at once above the form
    errors: list[str] = problems.errors
    form = request.form
    unit = _picked_unit(form) if request.method == "POST" else None
    preview = None
    if request.method == "POST":
        # Every field is checked and every problem listed at once; a preview needs only unit and band.
        if unit is None:
            errors.append(_("Please choose an org unit from the tree."))
        elif not can(current_user, "course.assign", unit):
            errors.append(
                _(
                    "%(unit)s is outside the area you administer: you can assign training only to units in your area.",
                    unit=unit.name,
                )
            )
            unit = None
        band = None
        if form.get("rank_band"):
            try:
                band = RankBand(form.get("rank_band", ""))
            except ValueError:
                errors.append(_("Unknown rank band."))
        if unit is not None and not errors:
            preview = reach.reach(unit, band)
        deadline = None
        try:
            day = dt.date.fromisoformat(form.get("deadline") or "")
            deadline = dt.datetime.combine(day, dt.time(23, 59), tzinfo=SHANGHAI).astimezone(dt.UTC)
        except ValueError:
            if not form.get("preview"):
                errors.append(_("Please give the deadline as a date (YYYY-MM-DD)."))
        if not form.get("preview") and not errors and unit is not None and deadline is not None:
            picked = unit
            with service_call(lambda: _assign_page(course, problems.errors, preview, picked), field=problems):
                enrolments.assign(
                    current_user, course, unit, deadline=deadline, rank_band=band, note=form.get("note") or ""
                )
            flash(
                _(
                    "Assigned %(title)s to %(unit)s: it reaches %(n)d people.",
                    title=course.title,
                    unit=unit.name,
                    n=preview or 0,
                ),
                "success",
            )
            return redirect(url_for("courses.assign", course_id=course.id), 303)
    return _assign_page(course, errors, preview, unit), 400 if errors else 200


def _assign_page(course: Course, errors: list[str], preview: int | None, unit: OrgUnit | None) -> str:
    """The form as typed (``request.form``), the problems, the unit tree and the course's assignments."""
    roots = scope_roots(current_user, "course.assign")
    under_id = int_arg("under")
    under = db.session.get(OrgUnit, under_id) if under_id else None
    if under is not None and can(current_user, "course.assign", under):
        roots = [under]
    return render_template(
        "courses/assign.html",
        course=course,
        errors=errors,
        rank_bands=list(RankBand),
        preview=preview,
        tree=reach.unit_tree(roots),
        picked=unit,
        form=request.form,
        under=under,
        lines=reach.assignment_lines(course, scope_condition(current_user, "course.assign", OrgUnit.path)),
    )


def _picked_unit(form: Any) -> OrgUnit | None:
    """The unit chosen in the tree (``org_unit_id``), or typed as a code by older clients."""
    raw = form.get("org_unit_id") or ""
    if raw.isdigit() and len(raw) < 12:
        return db.session.get(OrgUnit, int(raw))
    code = (form.get("org_code") or "").strip()
    return by_code(code) if code else None
