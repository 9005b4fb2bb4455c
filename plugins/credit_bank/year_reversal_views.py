"""Reversing a person-year for 代学代考: request, pending list, second auditor's decision (thin views)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms_core.authz import require
from lms_core.unit_of_work import service_call
from plugins.credit_bank import year_reversals as yr
from plugins.credit_bank.labels import hours

bp = Blueprint("credit_bank_reversals", __name__, url_prefix="/credit/reversals", template_folder="templates")


@bp.before_request
@login_required
def _reversers_only() -> None:
    require(current_user, "credit.reverse")


def _page(*, error: str | None = None, status: int = 200, form: dict[str, str] | None = None) -> Any:
    items = yr.pending(current_user)
    previews = {r.event.id: yr.preview(r.person.id, r.year) for r in items}
    form = form or {
        "username": (request.args.get("username") or "")[:64],
        "year": (request.args.get("year") or "")[:4],
        "reason": "",
    }
    return render_template(
        "credit_bank/year_reversals.html",
        items=items,
        previews=previews,
        hours=hours,
        error=error,
        form=form,
        me=current_user.id,
    ), status


@bp.route("/")
def index() -> Any:
    """Pending person-year reversals in scope, and the form that starts one."""
    return _page()


@bp.route("/", methods=["POST"])
def start() -> Any:
    form = {k: (request.form.get(k) or "")[:4000] for k in ("username", "year", "reason")}
    with service_call(on_error=lambda exc: _page(error=str(exc), form=form), errors=(yr.ReversalError,)):
        yr.request(current_user, form["username"], form["year"], form["reason"])
    flash(_("The reversal is waiting for a second auditor's confirmation."), "success")
    return redirect(url_for("credit_bank_reversals.index"), 303)


@bp.route("/<int:request_id>", methods=["POST"])
def decide(request_id: int) -> Any:
    with service_call(on_error=lambda exc: _page(error=str(exc)), errors=(yr.ReversalError,)):
        outcome, centi = yr.decide(
            current_user, request_id, request.form.get("decision"), (request.form.get("reason") or "")[:4000]
        )
    if outcome == "confirmed":
        flash(_("Confirmed: %(h)s hours of the year were reversed.", h=hours(centi)), "success")
    else:
        flash(_("The reversal was declined."), "success")
    return redirect(url_for("credit_bank_reversals.index"), 303)


def review_item_link(context: dict[str, Any]) -> str | None:
    """In the anti-idle review queue: start the reversal of this person's year (auditors who may)."""
    from markupsafe import Markup, escape

    from lms_core.authz import can

    person, day = context.get("person"), context.get("day")
    if person is None or day is None or not can(current_user, "credit.reverse", person):
        return None
    url = url_for("credit_bank_reversals.index", username=person.username, year=day.day.year)
    return Markup(' · <a href="{}#reversal-new">{}</a>').format(url, escape(_("Reverse this person's year (代学代考)")))
