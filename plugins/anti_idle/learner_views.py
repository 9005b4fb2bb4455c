"""Learners' own evidence lines and appeals; auditors' review list of holds and appeals."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms_core.authz import require
from lms_core.extensions import db
from lms_core.unit_of_work import service_call
from plugins.anti_idle import appeals, review_page
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

    def refused(exc: Exception) -> Any:
        if getattr(exc, "status", None) == 404:  # not the learner's day: no form to give back
            return _my_page(error=str(exc))
        return _my_page(error=str(exc), day_id=day_verdict_id, reason=reason)

    with service_call(on_error=refused, errors=(appeals.AppealError,)):
        appeals.file_appeal(current_user, day_verdict_id, reason, request.form.get("evidence_id"))
    flash(_("Your appeal has been sent to the auditors."), "success")
    return redirect(url_for("anti_idle.my_study"), 303)


def _review_page(*, error: str | None = None, status: int = 200) -> Any:
    """The review queue: what waits in the auditor's scope, most suspicious first."""
    from sqlalchemy import select

    from lms_core.audit.queries import units_in_scope
    from lms_core.orgs.models import OrgUnit

    after = None
    try:
        after = appeals.parse_cursor((request.args.get("after") or "")[:64])
    except appeals.AppealError as exc:
        error, status = str(exc), exc.status
    kind = request.args.get("kind", "all")
    kind = kind if kind in appeals.QUEUE_KINDS else "all"
    org = (request.args.get("org") or "")[:64].strip()
    unit = None
    if org:
        unit = (
            db.session.execute(select(OrgUnit).where(OrgUnit.code == org)).scalar_one_or_none()
            if org.isprintable()
            else None
        )
        if unit is None:
            error, status = _("Unknown org unit code %(code)s.", code=org), 400
    items, next_cursor = (
        appeals.review_list(current_user, after=after, kind=kind, org_path=unit.path if unit else None)
        if not (org and unit is None) and status < 400
        else ([], None)
    )
    if items:
        from lms_core.audit.viewlog import log_views
        from lms_core.jobs.services import commit
        from lms_core.unit_of_work import keep_loaded

        # Each item shows a person's evidence: a look at their record (issue 12, part 8).
        # One line per person and page, naming the days shown, so their list stays
        # readable; all of the page's lines in one INSERT.
        days: dict[int, list[str]] = {}
        for item in items:
            days.setdefault(item.person.id, []).append(item.day.day.isoformat())
        log_views(current_user, {person_id: "、".join(sorted(shown)) for person_id, shown in days.items()}, "review")
        with keep_loaded():  # the items' units stay loaded (plugins' scope checks read their paths)
            commit()
    args = {"kind": kind, "org": org}
    return render_template(
        "anti_idle/review.html",
        cards=review_page.cards(items, args),
        after=after,
        next_cursor=next_cursor,
        error=error,
        kind=kind,
        org=org,
        args=args,
        units=units_in_scope(current_user, "anti_idle.review"),
    ), status


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
    with service_call(on_error=lambda exc: _review_page(error=str(exc)), errors=(appeals.AppealError,)):
        outcome = appeals.decide(
            current_user, day_verdict_id, request.form.get("decision"), (request.form.get("reason") or "")[:4000]
        )
    flash(
        {
            "posted": _("The held time was posted."),
            "voided": _("The held time was voided."),
            "upheld": _("The appeal was upheld."),
            "rejected": _("The appeal was rejected."),
        }[outcome],
        "success",
    )
    back: dict[str, Any] = {k: v for k in ("kind", "org") if (v := (request.args.get(k) or "")[:64])}
    return redirect(url_for("anti_idle.review", **back), 303)
