"""Pages and the JSON API of the credit bank (thin: parse, check, call a service, render)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms_core.accounts.models import User
from lms_core.accounts.token_principal import lean_token_read
from lms_core.authz import can, require
from lms_core.db import utcnow
from lms_core.extensions import db
from plugins.credit_bank import labels, queries
from plugins.credit_bank.services import SHANGHAI

bp = Blueprint("credit_bank", __name__, url_prefix="/credit", template_folder="templates")
api_bp = Blueprint("credit_bank_api", __name__, url_prefix="/api/v1")


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"credit_labels": labels, "hours": labels.hours}


def this_year() -> int:
    return utcnow().astimezone(SHANGHAI).year


def parse_year(raw: str | None) -> int:
    if raw in (None, ""):
        return this_year()
    if not raw.isdigit() or not 2000 <= int(raw) <= 2100:
        abort(400, description=_("The year must be between 2000 and 2100."))
    return int(raw)


def parse_date(raw: str | None) -> dt.date | None:
    if raw in (None, ""):
        return None
    try:
        value = dt.date.fromisoformat(raw)
    except (TypeError, ValueError):
        abort(400, description=_("The date must look like 2025-06-30."))
    if not dt.date(2000, 1, 1) <= value <= dt.date(2100, 12, 31):
        abort(400, description=_("The date must be between 2000 and 2100."))
    return value


#: What the JSON API can answer (``?parts=``, comma-separated; default: all of them).
API_PARTS = ("balances", "progress", "statement")


def parse_parts(raw: str | None) -> set[str]:
    if raw in (None, ""):
        return set(API_PARTS)
    parts = {p.strip() for p in raw.split(",") if p.strip()}
    if not parts or not parts <= set(API_PARTS):
        abort(400, description=_("parts must list some of: balances, progress, statement."))
    return parts


def credit_view(user: User, year: int, as_of: dt.date | None, lines: bool = True) -> dict[str, Any]:
    """Everything the page and the API show for one person and year: balances and progress
    from one statement (:func:`queries.read`), the statement's lines (``lines``) from a second."""
    reading = queries.read(user.id, as_of, policy_on=queries.policy_day(year, as_of))
    fig = reading.figures
    balances = []
    for code in labels.LEDGER_NAMES:
        f = fig.get((code, year))
        balances.append(
            {
                "ledger": code,
                "name": labels.ledger_name(code),
                "unit": labels.unit_code(code),
                "posted": f.earned_for_year if f else 0,
                "balance": f.posted if f else 0,
                "pending": f.pending if f else 0,
                "overflow": f.overflow if f else 0,
            }
        )
    rows = queries.statement(user.id, year, as_of, accounts=reading.accounts) if lines else []
    return {"balances": balances, "progress": queries.progress(user, year, as_of, reading=reading), "lines": rows}


def _log_statement_view(user: User, year: int, as_of: dt.date | None) -> None:
    """An admin looking at someone's credit statement is a view of their record (谁查看了我的学习记录).

    Committed before the answer is built, like the core's record views, so the log row
    stays even if rendering fails; looking at one's own statement is not logged.
    """
    from lms_core.audit.viewlog import log_view
    from lms_core.jobs.services import commit

    # The detail is data shown as is (year, and the "as of" date when one was asked).
    detail = str(year) + (f" · {as_of.isoformat()}" if as_of else "")
    log_view(current_user, user, "credit", detail)
    commit()


def _user_in_scope(user_id: int, capability: str) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    require(current_user, capability, user)
    return user


@bp.route("/")
@login_required
def mine() -> Any:
    year = parse_year(request.args.get("year"))
    as_of = parse_date(request.args.get("as_of"))
    return render_template(
        "credit_bank/mine.html",
        person=current_user,
        year=year,
        as_of=as_of,
        admin_view=False,
        **credit_view(current_user, year, as_of),
    )


@bp.route("/users/<int:user_id>")
@login_required
def person(user_id: int) -> Any:
    user = _user_in_scope(user_id, "credit.view")
    year = parse_year(request.args.get("year"))
    as_of = parse_date(request.args.get("as_of"))
    _log_statement_view(user, year, as_of)
    return render_template(
        "credit_bank/mine.html",
        person=user,
        year=year,
        as_of=as_of,
        admin_view=True,
        can_reverse=can(current_user, "credit.reverse", user),
        can_transcripts=can(current_user, "credit.transcripts", user),
        can_ranks=can(current_user, "credit.ranks", user),
        can_convert=can(current_user, "credit.import", user),
        **credit_view(user, year, as_of),
    )


@bp.route("/users/<int:user_id>/reverse", methods=["POST"])
@login_required
def reverse(user_id: int) -> Any:
    """An auditor reverses a credit (代学代考 found), keeping the reason."""
    from plugins.credit_bank import services
    from plugins.credit_bank.models import Transfer

    user = _user_in_scope(user_id, "credit.reverse")
    tid = (request.form.get("transfer_id") or "")[:36]
    reason = (request.form.get("reason") or "").replace("\x00", "").strip()[:1000]
    t = db.session.execute(
        db.select(Transfer).where(Transfer.id == tid, Transfer.user_id == user.id)
    ).scalar_one_or_none()
    if t is None:
        abort(404)
    if not reason:
        flash(_("A reason is required."), "error")
        return redirect(url_for("credit_bank.person", user_id=user.id, year=t.effective_date.year))
    results = services.reverse(transfer_id=tid, reason=reason, actor_id=current_user.id)
    bad = [r for r in results if r not in ("created", "exists", "linked_event_failed")]
    if bad:
        flash(labels.error_text(bad[0]), "error")
    else:
        from lms_core.events.services import emit

        emit(
            "credit.reversed",
            actor=current_user,
            object_type="credit_transfers",
            object_id=tid,
            org_unit_id=user.org_unit_id,
            payload={"user_id": user.id, "reason": reason},
        )
        db.session.commit()
        flash(_("The credit was reversed. The reason is kept with the entry."), "success")
    return redirect(url_for("credit_bank.person", user_id=user.id, year=t.effective_date.year))


# --------------------------------------------------------------------------- JSON API


def _api_payload(user: User) -> dict[str, Any]:
    year = parse_year(request.args.get("year"))
    as_of = parse_date(request.args.get("as_of"))
    parts = parse_parts(request.args.get("parts"))
    view = credit_view(user, year, as_of, lines="statement" in parts)
    code_names: dict[str, str] = {}  # one translation per code, not per line
    out = {
        "user": {"id": user.id, "username": user.username, "full_name": user.full_name},
        "year": year,
        "as_of": as_of.isoformat() if as_of else None,
        # Amounts are integers in 0.01 学时, except on the 学分 ledger (XF): each balance and
        # statement line names its own unit.
        "unit": "0.01 学时",
        "balances": view["balances"],
        "progress": [
            {
                "key": p.key,
                "name": labels.requirement_name(p.key),
                "ledgers": p.ledgers,
                "required": p.required,
                "earned": p.earned,
                "met": p.met,
                "window_start": p.window_start.isoformat(),
                "deadline": p.deadline.isoformat(),
                "window": p.window,
                "overdue": p.overdue,
                "promoted_to": p.promoted_to,
            }
            for p in view["progress"]
        ],
        "statement": [
            {
                "seq": ln.seq,
                "id": ln.id,
                "date": ln.date.isoformat(),
                "ledger": ln.ledger,
                "unit": labels.unit_code(ln.ledger),
                "account": ln.kind,
                "code": ln.code,
                "description": code_names.get(ln.code) or code_names.setdefault(ln.code, labels.code_name(ln.code)),
                "amount": ln.amount,
                "status": ln.status,
                "balance": ln.balance,
                "memo": ln.memo,
                "explanation": labels.memo_text(ln.memo),
                "resolution": labels.memo_text(ln.resolution_memo),
                "policy_version": ln.policy_version,
                "reverses": ln.reverses_id,
                "reversed_by": ln.reversed_by,
                "evidence": ln.evidence_ref,
                "recorded_at": ln.recorded_at.isoformat(),
            }
            for ln in view["lines"]
        ],
    }
    return {k: v for k, v in out.items() if k not in API_PARTS or k in parts}


@api_bp.route("/me/credits")
@lean_token_read
@login_required
def api_me() -> Any:
    return jsonify(_api_payload(current_user))


@api_bp.route("/users/<int:user_id>/credits")
@lean_token_read
@login_required
def api_user(user_id: int) -> Any:
    user = _user_in_scope(user_id, "credit.view")
    _log_statement_view(user, parse_year(request.args.get("year")), parse_date(request.args.get("as_of")))
    return jsonify(_api_payload(user))
