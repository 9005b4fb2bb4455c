"""Learners' own evidence lines and appeals; auditors' review list of holds and appeals."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms_core.authz import require
from lms_core.extensions import db
from lms_core.jobs.services import commit
from plugins.anti_idle import appeals
from plugins.anti_idle.views import bp


@bp.context_processor
def _evidence_helpers() -> dict[str, Any]:
    return appeals.template_context()


def _my_page(*, error: str | None = None, day_id: int | None = None, reason: str = "", status: int = 200) -> Any:
    days = appeals.recent_days(current_user.id, limit=60)
    lines = appeals.lines_for(current_user.id, day_ids=[d.id for d in days])
    by_day: dict[int, list[Any]] = {}
    for line in lines:
        by_day.setdefault(line.day_verdict_id, []).append(line)
    return render_template(
        "anti_idle/my.html",
        days=days,
        by_day=by_day,
        appeals=appeals.appeals_of(current_user.id),
        appealable=appeals.APPEALABLE,
        error=error,
        error_day=day_id,
        reason=reason,
    ), status


@bp.route("/my")
@login_required
def my_study() -> Any:
    """My study days: verdicts, evidence lines and appeals."""
    return _my_page()


@bp.route("/days/<int:day_verdict_id>/appeal", methods=["POST"])
@login_required
def appeal(day_verdict_id: int) -> Any:
    reason = (request.form.get("reason") or "")[:4000]
    try:
        appeals.file_appeal(current_user, day_verdict_id, reason, request.form.get("evidence_id"))
    except appeals.AppealError as exc:
        db.session.rollback()
        if exc.status == 404:
            return _my_page(error=str(exc), status=404)
        return _my_page(error=str(exc), day_id=day_verdict_id, reason=reason, status=exc.status)
    commit()
    flash(_("Your appeal has been sent to the auditors."), "success")
    return redirect(url_for("anti_idle.my_study"), 303)


def _review_page(*, error: str | None = None, status: int = 200) -> Any:
    page = request.args.get("page", 1, type=int) or 1
    items = appeals.review_list(current_user, page=max(1, min(page, 10_000)))
    return render_template("anti_idle/review.html", items=items, page=page, size=appeals.PAGE, error=error), status


@bp.route("/review")
@login_required
def review() -> Any:
    """Held days and appeals of the people in the auditor's scope."""
    require(current_user, "anti_idle.review")
    return _review_page()


@bp.route("/review/days/<int:day_verdict_id>", methods=["POST"])
@login_required
def review_decide(day_verdict_id: int) -> Any:
    require(current_user, "anti_idle.review")
    try:
        outcome = appeals.decide(
            current_user, day_verdict_id, request.form.get("decision"), (request.form.get("reason") or "")[:4000]
        )
    except appeals.AppealError as exc:
        db.session.rollback()
        return _review_page(error=str(exc), status=exc.status)
    commit()
    flash(
        {
            "posted": _("The held time was posted."),
            "voided": _("The held time was voided."),
            "upheld": _("The appeal was upheld."),
            "rejected": _("The appeal was rejected."),
        }[outcome],
        "success",
    )
    return redirect(url_for("anti_idle.review"), 303)
