"""Site admins edit the anti-idle policy, site-wide or for one course; each save is a new version."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from lms_core.authz import require
from lms_core.courses.models import Course
from lms_core.extensions import db
from lms_core.unit_of_work import service_call
from plugins.anti_idle import policy, policy_forms
from plugins.anti_idle.models import Policy
from plugins.anti_idle.views import bp

HISTORY = 20


def _course(raw: str | None) -> Course | None:
    """The course named by ``?course=`` (id or code); 404 for one that does not exist."""
    if not raw:
        return None
    raw = raw.strip()[:64]
    course = db.session.get(Course, int(raw)) if raw.isdigit() and len(raw) < 10 else None
    course = course or db.session.execute(select(Course).where(Course.code == raw)).scalar_one_or_none()
    if course is None:
        abort(404)
    return course


def _render(
    course: Course | None,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    note: str = "",
    status: int = 200,
) -> Any:
    course_id = course.id if course else None
    current = policy.current_policy(course_id)
    history = (
        db.session.execute(
            select(Policy)
            .where(Policy.course_id.is_(None) if course is None else Policy.course_id == course.id)
            .order_by(Policy.id.desc())
            .limit(HISTORY)
        )
        .scalars()
        .all()
    )
    overrides = (
        db.session.execute(
            select(Course)
            .where(Course.id.in_(select(Policy.course_id).where(Policy.course_id.is_not(None))))
            .order_by(Course.code)
        )
        .scalars()
        .all()
    )
    shown = values or {n: policy_forms.display(n, current[n]) for n in policy_forms.editable()}
    return render_template(
        "anti_idle/policy.html",
        course=course,
        current=current,
        history=history,
        overrides=overrides,
        names=policy_forms.editable(),
        param=policy_forms.param,
        values=shown,
        error=error,
        note=note,
        display=policy_forms.display,
    ), status


@bp.route("/policy", methods=["GET"])
@login_required
def policy_page() -> Any:
    require(current_user, "anti_idle.policy")
    return _render(_course(request.args.get("course")))


@bp.route("/policy", methods=["POST"])
@login_required
def policy_save() -> Any:
    require(current_user, "anti_idle.policy")
    course = _course(request.form.get("course"))
    values = {n: (request.form.get(n) or "")[:200] for n in policy_forms.editable()}
    note = (request.form.get("note") or "").replace("\x00", "")[:500]
    current = policy.current_policy(course.id if course else None)
    with service_call(
        on_error=lambda exc: _render(course, values=values, error=str(exc), note=note),
        errors=(policy_forms.PolicyInputError,),
    ):
        parsed = policy_forms.parse_changes(values)
        changes = {n: v for n, v in parsed.items() if v != current[n]}
        if not changes:
            raise policy_forms.PolicyInputError(_("Nothing changed: no new version was made."))
        version = policy_forms.save(changes, course_id=course.id if course else None, actor=current_user, note=note)
    flash(_("Saved as policy version %(v)d.", v=version.version), "success")
    return redirect(url_for("anti_idle.policy_page", course=course.id if course else None), 303)
