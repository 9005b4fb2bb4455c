"""Converting a cadre's counted hours from one credit type to another, by the policy's rules.

The policy in force lists the allowed conversions (``"conversions"``: from, to and a rate
``num/den``, see ``policy.py``); site admins change them by adding a policy version. An
admin in scope (``credit.import``, as for class rosters) opens ``/credit/users/<id>/convert``,
chooses a rule, a year and an amount, sees a preview (what leaves, what arrives, the rate and
the policy version), and confirms. The conversion is two linked transfers through the
conversion pools (``services.convert``): both or neither, rounded down in the bank's favour,
each recording the policy version and the rate. A counted account never goes below zero
(the ledger refuses).

学时 -> 学分 (the ``XF`` ledger) is such a rule. The converted 学时 are spent: they leave the
counted 学时 account (and so the year's 学时 figures). A per-year cap of the target type
(``caps[to]["per_year"]``, e.g. Nankang's 50 学分 a year) refuses a conversion that would
pass it. The preview carries an idempotency key: pressing "Convert" twice (or a resent form)
posts once. An auditor reverses a conversion from the statement (both legs, with the reason).
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms_core.accounts.models import User
from lms_core.authz import require
from lms_core.db import utcnow
from lms_core.extensions import db
from plugins.credit_bank import labels, queries
from plugins.credit_bank import policy as P
from plugins.credit_bank.conversion import _hours
from plugins.credit_bank.services import local_date
from plugins.credit_bank.views import bp


class ConversionError(ValueError):
    """A refused conversion; the message is for the user (translated)."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a conversion would do (the preview), or did."""

    rule: dict[str, Any]
    year: int
    amount: int  #: centi, leaving the ``from`` type
    out: int  #: centi, arriving in the ``to`` type
    policy_version: int
    available: int  #: counted balance of ``from`` in that year
    key: str = ""  #: idempotency key: the same preview converts once


def policy_in_force() -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    """The version in force today, its caps per credit type, and its conversions."""
    row = P.in_force(local_date(utcnow()))
    doc = P.rules_of(row)
    return row.version, doc["caps"], list(doc["conversions"])


def _key(raw: Any) -> str:
    """The idempotency key a preview handed out (a UUID), or a fresh one."""
    try:
        return str(uuid.UUID(str(raw or "")[:36]))
    except ValueError:
        return str(uuid.uuid4())


def counted(user: User, year: int) -> dict[str, int]:
    """Counted posted balance per credit type in ``year`` (what can be converted)."""
    fig = queries.figures(user.id)
    return {code: (fig[(code, year)].posted if (code, year) in fig else 0) for code in labels.LEDGER_NAMES}


def plan(user: User, form: Any) -> tuple[Plan | None, dict[str, str]]:
    """Parse the form into a :class:`Plan`; errors per field, in Chinese."""
    errors: dict[str, str] = {}
    version, caps, rules = policy_in_force()
    raw_rule = str(form.get("rule", "")).strip()
    rule = rules[int(raw_rule)] if raw_rule.isdigit() and int(raw_rule) < len(rules) else None
    if rule is None:
        errors["rule"] = _("Choose one of the conversions the policy allows.")
    this_year = local_date(utcnow()).year
    raw_year = str(form.get("year", "")).strip()
    year = int(raw_year) if raw_year.isdigit() and len(raw_year) == 4 else None
    if year is None or not 2000 <= year <= this_year:
        errors["year"] = _("Give a year between 2000 and %(y)d.", y=this_year)
    amount = _hours(str(form.get("amount", ""))[:32], "amount", errors)
    if amount == 0:
        errors["amount"] = _("Enter an amount above zero.")
    if errors or rule is None or year is None or amount is None:
        return None, errors
    available = counted(user, year)[rule["from"]]
    if amount > available:
        errors["amount"] = _(
            "Only %(h)s hours of %(type)s are counted in %(y)d.",
            h=labels.hours(available),
            type=labels.ledger_name(rule["from"]),
            y=year,
        )
    out = amount * int(rule["num"]) // int(rule["den"])
    if out <= 0 and "amount" not in errors:
        errors["amount"] = _("At this rate the amount converts to nothing; enter more.")
    cap = caps.get(rule["to"], {}).get("per_year")
    if cap is not None and "amount" not in errors:
        fig = queries.figures(user.id).get((rule["to"], year))
        room = max(0, cap - (fig.earned_for_year if fig else 0))
        if out > room:
            errors["amount"] = _(
                "The policy allows at most %(cap)s %(unit)s of %(type)s a year; %(room)s more can be added in %(y)d.",
                cap=labels.hours(cap),
                unit=labels.unit_name(rule["to"]),
                type=labels.ledger_name(rule["to"]),
                room=labels.hours(room),
                y=year,
            )
    return Plan(rule, year, amount, out, version, available, _key(form.get("key"))), errors


def lock_person(person_id: int) -> None:
    """Serialise saves for one cadre (row lock on PostgreSQL; SQLite writes one at a time).

    The yearly cap is checked against the figures read after the lock, so a second admin
    converting for the same cadre at the same moment sees the first one's conversion."""
    db.session.execute(db.select(User.id).where(User.id == person_id).with_for_update())


def already_made(user: User, raw_key: Any) -> int | None:
    """The year of the conversion a preview's key already made for ``user``, if any.

    Checked before the form: a resent form must not be refused for the balance its first
    sending spent."""
    from plugins.credit_bank import ledger as L
    from plugins.credit_bank.models import Transfer

    key = _key(raw_key)
    if key != str(raw_key or "")[:36]:
        return None
    done = db.session.execute(
        db.select(Transfer.effective_date).where(
            Transfer.id == L.transfer_id(f"convert:{key}:out"), Transfer.user_id == user.id
        )
    ).scalar_one_or_none()
    return done.year if done is not None else None


def carry_out(user: User, p: Plan, actor: Any) -> list[str]:
    """Post the two linked legs (does not commit); the ledger's answers."""
    from lms_core.events.services import emit
    from plugins.credit_bank import services

    results = services.convert(
        key=f"convert:{p.key or uuid.uuid4()}",
        user_id=user.id,
        year=p.year,
        from_ledger=p.rule["from"],
        to_ledger=p.rule["to"],
        amount=p.amount,
        num=int(p.rule["num"]),
        den=int(p.rule["den"]),
        actor_id=actor.id,
        policy_version=p.policy_version,
        commit=False,
    )
    if all(r == "created" for r in results):
        emit(
            "credit.converted",
            actor=actor,
            object_type=User.__tablename__,
            object_id=user.id,
            org_unit_id=user.org_unit_id,
            payload={
                "user_id": user.id,
                "year": p.year,
                "from": p.rule["from"],
                "to": p.rule["to"],
                "amount": p.amount,
                "out": p.out,
                "rate": f"{p.rule['num']}/{p.rule['den']}",
                "policy_version": p.policy_version,
            },
        )
    return results


@bp.route("/users/<int:user_id>/convert", methods=["GET", "POST"])
@login_required
def convert_page(user_id: int) -> Any:
    """An admin in scope converts a cadre's counted hours between credit types (preview, then save)."""
    from lms_core.jobs.services import commit

    user = db.session.get(User, user_id)
    if user is None:
        from flask import abort

        abort(404)
    require(current_user, "credit.import", user)
    version, _caps, rules = policy_in_force()
    form: dict[str, str] = {"year": str(local_date(utcnow()).year), "rule": "0", "amount": ""}
    preview: Plan | None = None
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if request.form.get("action") == "save":
            lock_person(user.id)
        done = already_made(user, request.form.get("key")) if request.form.get("action") == "save" else None
        if done is not None:  # the same preview sent again (a double click, a resent form)
            flash(_("This conversion was already made; nothing more was converted."), "info")
            return redirect(url_for("credit_bank.person", user_id=user.id, year=done), 303)
        form = {k: str(request.form.get(k, ""))[:32] for k in ("rule", "year", "amount")}
        preview, errors = plan(user, request.form)
        if errors:
            preview, status = None, 400
        elif request.form.get("action") == "save" and preview is not None:
            results = carry_out(user, preview, current_user)
            bad = [r for r in results if r != "created"]
            if results and all(r == "exists" for r in results):  # a concurrent resend was first
                db.session.rollback()
                flash(_("This conversion was already made; nothing more was converted."), "info")
                return redirect(url_for("credit_bank.person", user_id=user.id, year=preview.year), 303)
            if bad:
                db.session.rollback()
                errors["form"] = labels.error_text(bad[0])
                preview, status = None, 400
            else:
                commit()
                flash(
                    _(
                        "Converted %(a)s hours of %(f)s into %(b)s %(unit)s of %(t)s (policy version %(v)d).",
                        a=labels.hours(preview.amount),
                        f=labels.ledger_name(preview.rule["from"]),
                        b=labels.hours(preview.out),
                        unit=labels.unit_name(preview.rule["to"]),
                        t=labels.ledger_name(preview.rule["to"]),
                        v=preview.policy_version,
                    ),
                    "success",
                )
                return redirect(url_for("credit_bank.person", user_id=user.id, year=preview.year), 303)
    year = int(form["year"]) if form["year"].isdigit() and len(form["year"]) == 4 else local_date(utcnow()).year
    return render_template(
        "credit_bank/convert.html",
        person=user,
        rules=rules,
        version=version,
        balances=counted(user, year),
        year=year,
        form=form,
        errors=errors,
        preview=preview,
    ), status
