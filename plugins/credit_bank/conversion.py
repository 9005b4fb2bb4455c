"""The credit conversion page: conversion rules as a form, a preview, a new version on save.

Site admins edit the conversion part of the policy (how a completed online course, a
day of an offline class and caps become 学时, the conversions between credit types and
what happens at year end) without writing JSON. The form is parsed
into a policy document (requirements and year-end are kept from the version in force),
checked field by field with messages in Chinese, then by :func:`policy.validate`. The
preview computes what a chosen course or an offline claim of N days would earn under the
version in force and under the draft, with the per-item cap applied. Saving records a new
version (append-only); every later posting records the version it used.
"""

from __future__ import annotations

import datetime as dt
import re
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import select

from lms_core.extensions import db
from plugins.credit_bank import labels
from plugins.credit_bank import policy as P
from plugins.credit_bank.policy_forms import in_force_today, posted_text, save_form
from plugins.credit_bank.views import bp

KINDS = {
    "nominal": _l("The course's labelled hours (default)"),
    "tiered_minutes": _l("Tiers by the length of the course's required videos"),
    "fixed": _l("A fixed amount per course"),
    "study_time": _l("Verified study time (minutes per hour)"),
}
CAP_KINDS = {"per_year": _l("per year"), "per_day": _l("per day"), "per_item": _l("per item")}
TIER_ROWS = 6
CONV_ROWS = 5  #: rows for conversions between credit types shown at least (one more than in use, up to 20)
YEAR_END = {"expire": _l("Expire at year end"), "carry_forward": _l("Carry forward into the next year")}
_HOURS = re.compile(r"^\d{1,6}(\.\d{1,2})?$")


@dataclass
class Draft:
    """The form as typed (strings), its errors per field, and the document it makes."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    rules: dict[str, Any] | None = None


def _hours(raw: str, name: str, errors: dict[str, str], *, blank_ok: bool = False) -> int | None:
    """``"2.5"`` -> 250 (0.01 学时); a message in Chinese for anything else."""
    raw = raw.strip().replace("\x00", "")
    if raw == "":
        if not blank_ok:
            errors[name] = _("Enter an amount in hours, e.g. 1.5.")
        return None
    if not _HOURS.match(raw):
        errors[name] = _("Hours are a number with at most two decimals, e.g. 1.5.")
        return None
    whole, _dot, frac = raw.partition(".")
    centi = int(whole) * 100 + int((frac + "00")[:2])
    if centi > P.MAX_CENTI:
        errors[name] = _("At most %(max)s hours.", max=labels.hours(P.MAX_CENTI))
        return None
    return centi


def _int(raw: str, name: str, errors: dict[str, str], low: int, high: int) -> int | None:
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 7 or not low <= int(raw) <= high:
        errors[name] = _("A whole number from %(low)d to %(high)d.", low=low, high=high)
        return None
    return int(raw)


def form_values(rules: dict[str, Any]) -> dict[str, str]:
    """A policy document as the form's fields (hours as decimals)."""
    oc = rules["online_course"]
    v: dict[str, str] = {
        "kind": oc["kind"],
        "fixed": labels.hours(oc["centi"]) if oc["kind"] == "fixed" else "",
        "minutes_per_hour": str(oc.get("minutes_per_hour", 45)),
        "offline_day": labels.hours(int(rules["offline_day_centi"])),
    }
    tiers = oc.get("tiers") or ([[30, 100], [15, 50], [0, 25]] if oc["kind"] != "tiered_minutes" else [])
    for i in range(TIER_ROWS):
        mins, centi = tiers[i] if i < len(tiers) else ("", None)
        v[f"tier_min_{i}"] = str(mins)
        v[f"tier_hours_{i}"] = labels.hours(centi) if centi is not None else ""
    for code in labels.LEDGER_NAMES:
        cap = rules["caps"].get(code, {})
        for k in CAP_KINDS:
            v[f"cap_{code}_{k}"] = labels.hours(cap[k]) if cap.get(k) is not None else ""
    convs = rules["conversions"]
    for i in range(conv_rows(rules)):
        c = convs[i] if i < len(convs) else {}
        for k in ("from", "to", "num", "den"):
            v[f"conv_{k}_{i}"] = str(c.get(k, ""))
    v["year_end"] = rules["year_end"]["mode"]
    v["carry_cap"] = labels.hours(int(rules["year_end"].get("carry_cap_centi", 0)))
    return v


def conv_rows(rules: dict[str, Any]) -> int:
    """Rows of the conversions table: every rule in force shows (none is dropped on save) plus one blank."""
    return min(20, max(CONV_ROWS, len(rules["conversions"]) + 1))


def _conversions(values: dict[str, str], e: dict[str, str], rows: int) -> list[dict[str, Any]]:
    """The rows of conversions between credit types; a blank row is skipped."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for i in range(rows):
        row = {k: values[f"conv_{k}_{i}"].strip() for k in ("from", "to", "num", "den")}
        if not any(row.values()):
            continue
        src, dst = row["from"], row["to"]
        if src not in labels.hour_ledger_names():  # 学分 never convert back into 学时
            e[f"conv_from_{i}"] = _("Choose the credit type the hours leave.")
        if dst not in labels.LEDGER_NAMES:
            e[f"conv_to_{i}"] = _("Choose the credit type the hours arrive in.")
        elif src == dst:
            e[f"conv_to_{i}"] = _("A conversion goes to a different credit type.")
        elif (src, dst) in seen:
            e[f"conv_to_{i}"] = _("This conversion is already listed above.")
        num = _int(row["num"], f"conv_num_{i}", e, 1, 1000)
        den = _int(row["den"], f"conv_den_{i}", e, 1, 1000)
        if not any(k.startswith("conv_") and k.endswith(f"_{i}") for k in e):
            seen.add((src, dst))
            out.append({"from": src, "to": dst, "num": num, "den": den})
    return out


def parse(form: Any, base: dict[str, Any]) -> Draft:
    """The posted form as a policy document built on ``base`` (the version in force)."""
    names = ["kind", "fixed", "minutes_per_hour", "offline_day"]
    names += [f"tier_{w}_{i}" for i in range(TIER_ROWS) for w in ("min", "hours")]
    names += [f"cap_{c}_{k}" for c in labels.LEDGER_NAMES for k in CAP_KINDS]
    names += [f"conv_{k}_{i}" for i in range(conv_rows(base)) for k in ("from", "to", "num", "den")]
    names += ["year_end", "carry_cap"]
    values = {n: str(form.get(n, ""))[:32] for n in names}
    d = Draft(values)
    e = d.errors
    kind = values["kind"]
    oc: dict[str, Any]
    if kind == "nominal":
        oc = {"kind": "nominal"}
    elif kind == "fixed":
        oc = {"kind": "fixed", "centi": _hours(values["fixed"], "fixed", e)}
    elif kind == "study_time":
        oc = {"kind": "study_time", "minutes_per_hour": _int(values["minutes_per_hour"], "minutes_per_hour", e, 1, 600)}
    elif kind == "tiered_minutes":
        tiers: list[list[int]] = []
        for i in range(TIER_ROWS):
            m, h = values[f"tier_min_{i}"].strip(), values[f"tier_hours_{i}"].strip()
            if not m and not h:
                continue
            mins = _int(m, f"tier_min_{i}", e, 0, 100_000)
            centi = _hours(h, f"tier_hours_{i}", e)
            if mins is not None and centi is not None:
                if tiers and mins >= tiers[-1][0]:
                    e[f"tier_min_{i}"] = _("List the tiers from the longest to the shortest course.")
                tiers.append([mins, centi])
        if not tiers and not any(k.startswith("tier_") for k in e):
            e["tier_min_0"] = _("Give at least one tier.")
        oc = {"kind": "tiered_minutes", "tiers": tiers}
    else:
        e["kind"] = _("Choose how a completed online course is converted.")
        oc = {"kind": "nominal"}
    offline = _hours(values["offline_day"], "offline_day", e)
    caps: dict[str, dict[str, int]] = {}
    for code in labels.LEDGER_NAMES:
        for k in CAP_KINDS:
            got = _hours(values[f"cap_{code}_{k}"], f"cap_{code}_{k}", e, blank_ok=True)
            if got is not None:
                caps.setdefault(code, {})[k] = got
    conversions = _conversions(values, e, conv_rows(base))
    if values["year_end"] not in YEAR_END:
        e["year_end"] = _("Choose what happens to the hours at year end.")
    carry = _hours(values["carry_cap"], "carry_cap", e, blank_ok=True) or 0
    if e:
        return d
    doc = deepcopy(base)
    doc.update(
        {
            "online_course": oc,
            "offline_day_centi": offline,
            "caps": caps,
            "conversions": conversions,
            "year_end": {"mode": values["year_end"], "carry_cap_centi": carry},
        }
    )
    try:
        d.rules = P.validate(doc)
    except P.PolicyError as exc:  # a combination the fields alone did not catch
        e["form"] = str(exc)
    return d


@dataclass
class Preview:
    label: str
    detail: str
    current: int
    draft: int
    draft_counted: int  #: after the draft's per-item cap


def _per_item(rules: dict[str, Any], ledger: str, amount: int) -> int:
    cap = P.cap_of(rules, ledger)["per_item"]
    return amount if cap is None else min(amount, cap)


def _converted(rules: dict[str, Any], src: str, dst: str, amount: int) -> int:
    """What ``amount`` of ``src`` becomes in ``dst`` under the rules (0 if not allowed)."""
    for c in rules["conversions"]:
        if c["from"] == src and c["to"] == dst:
            return amount * int(c["num"]) // int(c["den"])  # rounded down, as the ledger posts it
    return 0


def preview(
    current: dict[str, Any],
    draft: dict[str, Any],
    course_id: int | None,
    days: int | None,
    convert: int | None = None,
) -> list[Preview]:
    from lms_core.courses.models import Course
    from plugins.credit_bank.inputs import _course_minutes

    out = []
    if course_id is not None:
        course = db.session.get(Course, course_id)
        if course is not None:
            minutes = _course_minutes(course.id)

            def amount(rules: dict[str, Any]) -> int:
                if rules["online_course"]["kind"] == "study_time":
                    return 0  # credited per verified study day, not per course
                return P.online_course_amount(rules, course.nominal_hours_centi, minutes)

            detail = _(
                "Labelled %(h)s hours; required videos %(m)s minutes.",
                h=labels.hours(course.nominal_hours_centi),
                m=minutes if minutes is not None else "—",
            )
            if draft["online_course"]["kind"] == "study_time":
                detail += " " + _(
                    "Under this rule a course earns nothing on completion: each verified study day earns its time."
                )
            d = amount(draft)
            out.append(Preview(course.title, detail, amount(current), d, _per_item(draft, "WL_XS", d)))
    if days is not None:
        d = P.offline_amount(draft, days)
        out.append(
            Preview(
                _("An offline class of %(n)d days", n=days),
                _("Classroom training hours, at the rate per day."),
                P.offline_amount(current, days),
                d,
                _per_item(draft, "JZ_XS", d),
            )
        )
    if convert is not None:
        for c in draft["conversions"]:
            src, dst = c["from"], c["to"]
            d = _converted(draft, src, dst, convert)
            out.append(
                Preview(
                    _(
                        "%(h)s hours of %(f)s converted to %(t)s",
                        h=labels.hours(convert),
                        f=labels.ledger_name(src),
                        t=labels.ledger_name(dst),
                    ),
                    _(
                        "At %(n)d/%(d)d, rounded down; 0 now means the conversion is not allowed today.",
                        n=c["num"],
                        d=c["den"],
                    ),
                    _converted(current, src, dst, convert),
                    d,
                    d,  # a conversion is not capped: it moves hours already counted
                )
            )
    return out


@bp.route("/policy/conversion", methods=["GET", "POST"])
@login_required
def conversion_page() -> Any:
    """Site admins: the conversion rules as a form, a preview, and a new version on save."""
    today, current, base = in_force_today()
    status = 200
    draft = Draft(form_values(base), rules=base)
    ctx: dict[str, Any] = {"course_id": None, "days": None, "previews": [], "effective_from": "", "note": ""}
    convert: int | None = None
    if request.method == "POST":
        draft = parse(request.form, base)
        ctx["effective_from"] = posted_text("effective_from", 10)
        ctx["note"] = posted_text("note", 500)
        raw_course = (request.form.get("course_id") or "").strip()
        ctx["course_id"] = int(raw_course) if raw_course.isdigit() and len(raw_course) < 10 else None
        raw_days = (request.form.get("days") or "").strip()
        if raw_days:
            ctx["days"] = _int(raw_days, "days", draft.errors, 1, 366)
        convert_raw = posted_text("convert_amount", 12)
        draft.values["convert_amount"] = convert_raw  # kept in the form on an error
        if convert_raw.strip():
            convert = _hours(convert_raw, "convert_amount", draft.errors)
        if draft.errors:
            status = 400
        elif request.form.get("action") == "save":
            assert draft.rules is not None
            row = save_form(
                draft.rules,
                draft.errors,
                changed="conversion",
                default_note=_("Conversion rules"),
                render=lambda: _render(today, current, base, draft, ctx),
            )
            if row is None:
                status = 400
            else:
                flash(_("Policy version %(v)d saved.", v=row.version), "success")
                return redirect(url_for("credit_bank.conversion_page"))
        if draft.rules is not None and not draft.errors:
            ctx["previews"] = preview(base, draft.rules, ctx["course_id"], ctx["days"], convert)
    return _render(today, current, base, draft, ctx), status


def _render(today: dt.date, current: Any, base: dict[str, Any], draft: Draft, ctx: dict[str, Any]) -> str:
    from lms_core.courses.models import Course

    courses = list(
        db.session.execute(
            select(Course.id, Course.code, Course.title)
            .where(Course.published.is_(True))
            .order_by(Course.code)
            .limit(300)
        )
    )
    return render_template(
        "credit_bank/conversion.html",
        current=current,
        draft=draft,
        kinds=KINDS,
        cap_kinds=CAP_KINDS,
        tier_rows=TIER_ROWS,
        conv_rows=conv_rows(base),
        year_end_modes=YEAR_END,
        courses=courses,
        today=today,
        **ctx,
    )
