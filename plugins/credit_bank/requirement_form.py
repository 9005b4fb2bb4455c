"""The requirement rules as a form: rank band, window, amount, credit types, 党员/书记, promotion.

Site admins edit the ``requirements`` part of the policy (policy.py) field by field instead of
as JSON: one row per requirement, with Chinese labels and checks per field, the typed input
kept on an error, a preview (the draft in words, and what it means for one named cadre under
the version in force and under the draft), and a new version on save (append-only; every
later posting and progress figure uses the version in force on its date). The rest of the
document (conversion, caps, year end) is kept from the version in force. The JSON of every
version stays on ``/credit/policy`` for export and import.

Row fields: name (required for a requirement the bank has no name for), rank bands, window
(each calendar year / a plan cycle of N years from a start year, with an optional yearly
share for the dashboard / within N years of a promotion), amount, credit types (学时 types,
or 学分 alone), 党员 only, position keywords (e.g. 书记: the 基层党组织书记 rule), the
requirement it replaces for those it applies to (书记 56 replaces 党员 32), and "remove".
"""

from __future__ import annotations

import re
import uuid
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import select

from lms_core.accounts.models import User
from lms_core.extensions import db
from plugins.credit_bank import labels, queries
from plugins.credit_bank import policy as P
from plugins.credit_bank.conversion import _hours, _int
from plugins.credit_bank.models import CREDIT_UNIT_LEDGERS
from plugins.credit_bank.policy_forms import in_force_today, posted_text, save_form
from plugins.credit_bank.views import bp

WINDOW_NAMES = {
    "calendar_year": _l("Each calendar year"),
    "plan_cycle": _l("A plan cycle of several years"),
    "after_promotion": _l("Within some years after a promotion"),
}
FIELDS: tuple[str, ...] = ("key", "name", "band", "window", "years", "cycle_start", "amount", "share")
FIELDS += ("ledger", "party", "keywords", "supersedes", "remove")
LIST_FIELDS = ("band", "ledger")  #: checkboxes: kept as comma-joined codes
MAX_ROWS = 50
_KEYWORD_SPLIT = re.compile(r"[,，、;；\s]+")


@dataclass
class Draft:
    """The form as typed (strings per field), its errors, and the policy document it makes."""

    values: dict[str, str]
    rows: int
    errors: dict[str, str] = field(default_factory=dict)
    rules: dict[str, Any] | None = None


def row_count(rules: dict[str, Any]) -> int:
    """Every requirement in force shows, plus two blank rows to add one."""
    return min(MAX_ROWS, len(rules["requirements"]) + 2)


def form_values(rules: dict[str, Any]) -> dict[str, str]:
    """A policy's requirements as the form's fields (amounts as decimals)."""
    v: dict[str, str] = {}
    reqs = rules["requirements"]
    for i in range(row_count(rules)):
        r = reqs[i] if i < len(reqs) else None
        if r is None:
            v |= {f"req_{f}_{i}": "" for f in FIELDS}
            v[f"req_band_{i}"] = ",".join(P.RANK_BANDS)
            v[f"req_window_{i}"] = "calendar_year"
            continue
        v[f"req_key_{i}"] = r["key"]
        v[f"req_name_{i}"] = str(r.get("name", ""))
        v[f"req_band_{i}"] = ",".join(r.get("rank_bands", P.RANK_BANDS))
        v[f"req_window_{i}"] = r["window"]
        v[f"req_years_{i}"] = str(r.get("years", 5 if r["window"] == "plan_cycle" else 1))
        v[f"req_cycle_start_{i}"] = str(r.get("cycle_start", 2023)) if r["window"] == "plan_cycle" else ""
        v[f"req_amount_{i}"] = labels.hours(int(r["amount_centi"]))
        share = r.get("annual_share_centi")
        v[f"req_share_{i}"] = labels.hours(int(share)) if share is not None else ""
        v[f"req_ledger_{i}"] = ",".join(r["ledgers"])
        v[f"req_party_{i}"] = "1" if r.get("party_member") else ""
        v[f"req_keywords_{i}"] = "、".join(r.get("position_keywords", []))
        v[f"req_supersedes_{i}"] = (r.get("supersedes") or [""])[0]
        v[f"req_remove_{i}"] = ""
    return v


def read_form(form: Any, rows: int) -> dict[str, str]:
    """The posted fields as strings (checkbox lists comma-joined), cut to sane lengths."""
    v: dict[str, str] = {}
    for i in range(rows):
        for f in FIELDS:
            name = f"req_{f}_{i}"
            if f in LIST_FIELDS:
                v[name] = ",".join(str(x)[:32] for x in form.getlist(name)[:10])
            else:
                v[name] = str(form.get(name, "")).replace("\x00", "")[: 100 if f in ("name", "keywords") else 40]
    return v


def _row_is_blank(v: dict[str, str], i: int) -> bool:
    return not (v[f"req_key_{i}"] or v[f"req_name_{i}"].strip() or v[f"req_amount_{i}"].strip())


def parse(form: Any, base: dict[str, Any]) -> Draft:
    """The posted form as a policy document built on ``base`` (the version in force)."""
    rows = row_count(base)
    d = Draft(read_form(form, rows), rows)
    v, e = d.values, d.errors
    out: list[dict[str, Any]] = []
    rows_of: dict[str, int] = {}
    for i in range(rows):
        if v[f"req_remove_{i}"] or _row_is_blank(v, i):
            continue
        key = v[f"req_key_{i}"].strip()
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", key) or key in rows_of:
            key = f"custom_{uuid.uuid4().hex[:8]}"
            v[f"req_key_{i}"] = key  # kept in the form: a preview then a save name it once
        r = _row(v, e, i, key)
        rows_of[key] = i
        out.append(r)
    for r in out:  # what a row replaces must be another row that stays
        i = rows_of[r["key"]]
        target = v[f"req_supersedes_{i}"]
        if target and (target not in rows_of or target == r["key"]):
            e[f"req_supersedes_{i}"] = _("Choose another requirement of this form that stays.")
        elif target:
            r["supersedes"] = [target]
    if not out and not e:
        e["form"] = _("Keep at least one requirement.")
    if e:
        return d
    doc = deepcopy(base)
    doc["requirements"] = out
    try:
        d.rules = P.validate(doc)
    except P.PolicyError as exc:  # a combination the fields alone did not catch
        e["form"] = str(exc)
    return d


def _row(v: dict[str, str], e: dict[str, str], i: int, key: str) -> dict[str, Any]:
    """One requirement from row ``i``'s fields; errors per field into ``e``."""
    r: dict[str, Any] = {"key": key}
    name = " ".join(v[f"req_name_{i}"].split())
    if key in labels.REQUIREMENT_NAMES:
        pass  # the bank's own wording (translated); the form shows it, not a field
    elif name:
        r["name"] = name
    else:
        e[f"req_name_{i}"] = _("Give the requirement a name, e.g. 专技人员继续教育.")
    window = v[f"req_window_{i}"]
    if window not in WINDOW_NAMES:
        e[f"req_window_{i}"] = _("Choose the window of the requirement.")
    r["window"] = window
    amount = _hours(v[f"req_amount_{i}"], f"req_amount_{i}", e)
    if amount == 0:
        e[f"req_amount_{i}"] = _("Enter an amount above zero.")
    r["amount_centi"] = amount
    ledgers = [c for c in labels.LEDGER_NAMES if c in v[f"req_ledger_{i}"].split(",")]
    if not ledgers:
        e[f"req_ledger_{i}"] = _("Tick at least one credit type that counts toward it.")
    elif set(ledgers) & CREDIT_UNIT_LEDGERS and set(ledgers) - CREDIT_UNIT_LEDGERS:
        e[f"req_ledger_{i}"] = _("学分 are counted on their own: tick 学分 alone, or 学时 types only.")
    r["ledgers"] = ledgers
    bands = [b for b in P.RANK_BANDS if b in v[f"req_band_{i}"].split(",")]
    if not bands:
        e[f"req_band_{i}"] = _("Tick at least one rank band it applies to.")
    elif len(bands) < len(P.RANK_BANDS):
        r["rank_bands"] = bands
    if window in ("plan_cycle", "after_promotion"):
        years = _int(v[f"req_years_{i}"], f"req_years_{i}", e, 1, 10)
        r["years"] = years
        if window == "plan_cycle":
            r["cycle_start"] = _int(v[f"req_cycle_start_{i}"], f"req_cycle_start_{i}", e, 2000, 2100)
            share = _hours(v[f"req_share_{i}"], f"req_share_{i}", e, blank_ok=True)
            if share is not None and amount is not None and share > amount:
                e[f"req_share_{i}"] = _("The yearly share cannot be more than the whole amount.")
            elif share is not None:
                r["annual_share_centi"] = share
    if v[f"req_party_{i}"]:
        r["party_member"] = True
    words = [w for w in _KEYWORD_SPLIT.split(v[f"req_keywords_{i}"]) if w]
    if len(words) > 10 or any(len(w) > 20 for w in words):
        e[f"req_keywords_{i}"] = _("At most 10 words of at most 20 characters each.")
    elif words:
        r["position_keywords"] = words
    return r


# --------------------------------------------------------------------------- preview


@dataclass
class Summary:
    """One requirement of the draft in words."""

    key: str
    name: str
    who: str
    window: str
    amount: str
    ledgers: str
    changed: bool  #: new, or different from the version in force


@dataclass
class PersonRow:
    key: str
    name: str
    now: queries.Progress | None
    draft: queries.Progress | None


def requirement_title(r: dict[str, Any]) -> str:
    return str(r.get("name") or labels.requirement_name(r["key"]))


def summaries(current: dict[str, Any], draft: dict[str, Any]) -> list[Summary]:
    before = {r["key"]: r for r in current["requirements"]}
    out = []
    for r in draft["requirements"]:
        bands = r.get("rank_bands", P.RANK_BANDS)
        who = [labels.band_name(b) for b in bands] if len(bands) < len(P.RANK_BANDS) else [_("Every rank band")]
        if r.get("party_member"):
            who.append(_("Party members only"))
        if r.get("position_keywords"):
            who.append(_("Position containing %(w)s", w="、".join(r["position_keywords"])))
        if r.get("supersedes"):
            names = [requirement_title(x) for x in draft["requirements"] if x["key"] in r["supersedes"]]
            who.append(_("Replaces %(n)s for them", n="、".join(names)))
        if r["window"] == "calendar_year":
            window = _("Each calendar year")
        elif r["window"] == "plan_cycle":
            window = _("%(n)d years from %(y)d", n=r.get("years", 5), y=r.get("cycle_start", 2023))
            if r.get("annual_share_centi") is not None:
                window += " · " + _("%(h)s a year on the dashboard", h=labels.hours(r["annual_share_centi"]))
        else:
            window = _("Within %(n)d year(s) after a promotion", n=r.get("years", 1))
        unit = labels.unit_name(r["ledgers"][0])
        out.append(
            Summary(
                r["key"],
                requirement_title(r),
                "；".join(str(w) for w in who),
                str(window),
                f"{labels.hours(int(r['amount_centi']))} {unit}",
                "、".join(labels.ledger_name(c) for c in r["ledgers"]),
                before.get(r["key"]) != r,
            )
        )
    return out


def for_person(user: User, year: int, current: dict[str, Any], draft: dict[str, Any]) -> list[PersonRow]:
    """What the version in force and the draft ask of one cadre in ``year``, with their progress."""
    now = {p.key: p for p in queries.progress(user, year, rules=current)}
    new = {p.key: p for p in queries.progress(user, year, rules=draft)}
    names = {r["key"]: requirement_title(r) for r in current["requirements"] + draft["requirements"]}
    keys = list(dict.fromkeys([*now, *new]))
    return [PersonRow(k, names.get(k, k), now.get(k), new.get(k)) for k in keys]


def _person(raw: str) -> User | None:
    raw = raw.strip()[:64]
    if not raw:
        return None
    return db.session.execute(select(User).where(User.username == raw)).scalar_one_or_none()


# --------------------------------------------------------------------------- page


@bp.route("/policy/requirements", methods=["GET", "POST"])
@login_required
def requirements_page() -> Any:
    """Site admins: the requirement rules as a form, a preview, and a new version on save."""
    today, current, base = in_force_today()
    draft = Draft(form_values(base), row_count(base), rules=base)
    ctx: dict[str, Any] = {"effective_from": "", "note": "", "person_name": "", "person_rows": None}
    status = 200
    if request.method == "POST":
        draft = parse(request.form, base)
        ctx["effective_from"] = posted_text("effective_from", 10)
        ctx["note"] = posted_text("note", 500)
        ctx["person_name"] = posted_text("person", 64)
        if ctx["person_name"].strip():
            person = _person(ctx["person_name"])
            if person is None:
                draft.errors["person"] = _("No one has this user name.")
            elif draft.rules is not None and not draft.errors:
                ctx["person_rows"] = for_person(person, today.year, base, draft.rules)
                ctx["person"] = person
        if draft.errors:
            status = 400
        elif request.form.get("action") == "save":
            assert draft.rules is not None
            row = save_form(
                draft.rules,
                draft.errors,
                changed="requirements",
                default_note=_("Requirement rules"),
                render=lambda: _render(current, base, draft, ctx),
            )
            if row is None:
                status = 400
            else:
                flash(_("Policy version %(v)d saved.", v=row.version), "success")
                return redirect(url_for("credit_bank.requirements_page"), 303)
    return _render(current, base, draft, ctx), status


def _render(current: Any, base: dict[str, Any], draft: Draft, ctx: dict[str, Any]) -> str:
    shown = draft.rules if draft.rules is not None and not draft.errors else None
    return render_template(
        "credit_bank/requirement_rules.html",
        current=current,
        draft=draft,
        windows=WINDOW_NAMES,
        bands={b: labels.band_name(b) for b in P.RANK_BANDS},
        known_names=labels.REQUIREMENT_NAMES,
        summaries=summaries(base, shown) if shown is not None else [],
        choices=_supersede_choices(draft),
        # rows with a wrong field open (the others stay folded: a long form on a phone)
        error_rows={int(k.rsplit("_", 1)[1]) for k in draft.errors if k.startswith("req_")},
        **ctx,
    )


def _supersede_choices(draft: Draft) -> list[tuple[str, str]]:
    """(key, name) of every named row, for "replaces"."""
    out = []
    for i in range(draft.rows):
        key = draft.values.get(f"req_key_{i}", "")
        if key:
            name = draft.values.get(f"req_name_{i}", "").strip() or labels.requirement_name(key)
            out.append((key, name))
    return out
