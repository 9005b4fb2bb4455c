"""Policy as data: conversion rules, caps, requirements and year-end, versioned.

A policy version is a JSON document (validated here) with an effective date. The version
in force on a posting's effective date computes its amount, and the transfer records that
version. Site admins add versions (page or ``flask lms credit policy set``); versions are
never edited (the table is append-only at the database).

Document shape (every amount in 0.01 学时)::

    {
      "online_course": {"kind": "nominal"}                      # the course's labelled 学时
                     | {"kind": "tiered_minutes", "tiers": [[30, 100], [15, 50], [0, 25]]}
                     | {"kind": "fixed", "centi": 100}
                     | {"kind": "study_time", "minutes_per_hour": 45},   # credited study time
      "offline_day_centi": 600,                                  # per day of an offline class
      "caps": {"WL_XS": {"per_year": 12000, "per_day": 800, "per_item": 1000}, ...},
      "requirements": [ {key, name?, ledgers, amount_centi, window, rank_bands?, party_member?,
                         position_keywords?, supersedes?, years?, cycle_start?, annual_share_centi?} ],
      "year_end": {"mode": "expire" | "carry_forward", "carry_cap_centi": 0},
      "conversions": [{"from": "WL_XS", "to": "JZ_XS", "num": 1, "den": 2},
                      {"from": "WL_XS", "to": "XF", "num": 1, "den": 1}, ...]
    }

A conversion to ``XF`` turns counted 学时 into 学分 (学分银行学分, amounts in 0.01 学分), e.g.
Zhengzhou's 1 hour -> 1 学分: one rule per 学时 ledger that may convert, rounded down. A
``caps["XF"]["per_year"]`` limits the 学分 a cadre may gain in a year (Nankang: 50); a
conversion that would pass it is refused (``type_conversion.py``). 学分 never convert back.

``tiered_minutes`` tiers are ``[minimum minutes, centi]``, highest first: a course of 40
minutes earns the first tier whose minimum it reaches.
"""

from __future__ import annotations

import datetime as dt
import json
from copy import deepcopy
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import case, select

from lms_core.db import utcnow
from lms_core.extensions import db
from plugins.credit_bank.models import CREDIT_UNIT_LEDGERS, HOUR_LEDGERS, LEDGERS, Policy

LEDGER_CODES = tuple(c for _, c, _ in LEDGERS)
HOUR_CODES = HOUR_LEDGERS  #: the 学时 ledgers (offline claims, rosters, the yearly 学时)
RANK_BANDS = ("county_and_above", "township", "general")
WINDOWS = ("calendar_year", "plan_cycle", "after_promotion")
MAX_CENTI = 10_000_000  # 100,000 学时: anything above is a typo

#: Version 1, in force until a site admin adds another. Sources: 干部教育培训工作条例 (2023)
#: ch. 3 and common local practice (see /work/shared/design/credit_bank.md §1).
DEFAULT_RULES: dict[str, Any] = {
    "online_course": {"kind": "nominal"},
    "offline_day_centi": 600,
    "caps": {},
    "requirements": [
        {
            "key": "annual_township",
            "ledgers": ["WL_XS", "JZ_XS"],
            "amount_centi": 9000,
            "window": "calendar_year",
            "rank_bands": ["township", "general"],
        },
        {
            "key": "cycle_county",
            "ledgers": ["WL_XS", "JZ_XS"],
            "amount_centi": 55000,
            "window": "plan_cycle",
            "years": 5,
            "cycle_start": 2023,
            "rank_bands": ["county_and_above"],
            "annual_share_centi": 11000,
        },
        {"key": "online_annual", "ledgers": ["WL_XS"], "amount_centi": 5000, "window": "calendar_year"},
        {
            "key": "party_member",
            "ledgers": ["DY_XS"],
            "amount_centi": 3200,
            "window": "calendar_year",
            "party_member": True,
        },
        {
            "key": "party_secretary",
            "ledgers": ["DY_XS"],
            "amount_centi": 5600,
            "window": "calendar_year",
            "party_member": True,
            "position_keywords": ["书记"],
            "supersedes": ["party_member"],
        },
        {"key": "promotion", "ledgers": ["JZ_XS"], "amount_centi": 3000, "window": "after_promotion", "years": 1},
    ],
    "year_end": {"mode": "expire", "carry_cap_centi": 0},
    #: Conversions between credit types (``type_conversion.py``): counted hours of ``from``
    #: become ``to`` at ``num/den``, rounded down (in the bank's favour). None by default.
    "conversions": [],
}


class PolicyError(ValueError):
    """A policy document that does not validate; the message names the problem."""


def _centi(value: Any, where: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CENTI:
        raise PolicyError(
            _("%(where)s: a whole number from 0 to %(max)d (in 0.01 学时) is required.", where=where, max=MAX_CENTI)
        )
    return value


def validate(rules: Any) -> dict[str, Any]:
    """Check a policy document; returns it normalised. Raises :class:`PolicyError`."""
    if not isinstance(rules, dict):
        raise PolicyError(_("The policy must be a JSON object."))
    unknown = set(rules) - set(DEFAULT_RULES)
    if unknown:
        raise PolicyError(_("Unknown keys: %(keys)s", keys=", ".join(sorted(map(str, unknown)))))
    out = deepcopy(DEFAULT_RULES)
    out.update(rules)
    oc = out["online_course"]
    if not isinstance(oc, dict) or oc.get("kind") not in ("nominal", "tiered_minutes", "fixed", "study_time"):
        raise PolicyError(_("online_course.kind must be nominal, tiered_minutes, fixed or study_time."))
    if oc["kind"] == "study_time":
        mph = oc.get("minutes_per_hour", 45)
        if isinstance(mph, bool) or not isinstance(mph, int) or not 1 <= mph <= 600:
            raise PolicyError(_("Minutes of study per hour must be between 1 and 600."))
    if oc["kind"] == "fixed":
        _centi(oc.get("centi"), _("The fixed amount"))
    if oc["kind"] == "tiered_minutes":
        tiers = oc.get("tiers")
        if not isinstance(tiers, list) or not tiers or len(tiers) > 20:
            raise PolicyError(_("The tiers must be a list of [minimum minutes, amount], at most 20."))
        last = None
        for t in tiers:
            if not (isinstance(t, list) and len(t) == 2):
                raise PolicyError(_("The tiers must be a list of [minimum minutes, amount], at most 20."))
            _centi(t[0], _("A tier's minimum minutes"))
            _centi(t[1], _("A tier's amount"))
            if last is not None and t[0] >= last:
                raise PolicyError(_("Tier minimum minutes must go down from one tier to the next."))
            last = t[0]
    _centi(out["offline_day_centi"], _("Hours per day of an offline class"))
    caps = out["caps"]
    if not isinstance(caps, dict) or set(caps) - set(LEDGER_CODES):
        raise PolicyError(_("Caps must be given per credit type."))
    for code, cap in caps.items():
        if not isinstance(cap, dict) or set(cap) - {"per_year", "per_day", "per_item"}:
            raise PolicyError(_("Caps of %(code)s: per year, per day and per item only.", code=code))
        for k, v in cap.items():
            _centi(v, _("The cap %(kind)s of %(code)s", kind=k, code=code), allow_none=True)
    reqs = out["requirements"]
    if not isinstance(reqs, list) or len(reqs) > 50:
        raise PolicyError(_("Requirements must be a list of at most 50."))
    keys = set()
    for r in reqs:
        if not isinstance(r, dict) or not isinstance(r.get("key"), str) or not r["key"] or r["key"] in keys:
            raise PolicyError(_("Each requirement needs its own key."))
        keys.add(r["key"])
        name = r.get("name")
        if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 100):
            raise PolicyError(_("Requirement %(key)s: the name is text of at most 100 characters.", key=r["key"]))
        if r.get("window") not in WINDOWS:
            raise PolicyError(
                _("Requirement %(key)s: the window must be one of %(w)s.", key=r["key"], w=", ".join(WINDOWS))
            )
        if not isinstance(r.get("ledgers"), list) or not r["ledgers"] or set(r["ledgers"]) - set(LEDGER_CODES):
            raise PolicyError(_("Requirement %(key)s: unknown credit type.", key=r["key"]))
        if set(r["ledgers"]) & CREDIT_UNIT_LEDGERS and set(r["ledgers"]) - CREDIT_UNIT_LEDGERS:
            # 学时 and 学分 are different units: a sum of both would mean nothing.
            raise PolicyError(_("Requirement %(key)s: 学分 cannot be added to 学时 in one requirement.", key=r["key"]))
        _centi(r.get("amount_centi"), _("The amount of requirement %(key)s", key=r["key"]))
        if set(r.get("rank_bands", RANK_BANDS)) - set(RANK_BANDS):
            raise PolicyError(_("Requirement %(key)s: unknown rank band.", key=r["key"]))
        years = r.get("years", 1)
        if isinstance(years, bool) or not isinstance(years, int) or not 1 <= years <= 10:
            raise PolicyError(_("Requirement %(key)s: the years must be between 1 and 10.", key=r["key"]))
        start = r.get("cycle_start", 2023)
        if isinstance(start, bool) or not isinstance(start, int) or not 2000 <= start <= 2100:
            raise PolicyError(_("Requirement %(key)s: the cycle start must be a year.", key=r["key"]))
    conversions = out["conversions"]
    if not isinstance(conversions, list) or len(conversions) > 20:
        raise PolicyError(_("Conversions between credit types must be a list of at most 20."))
    for c in conversions:
        if not isinstance(c, dict) or set(c) != {"from", "to", "num", "den"}:
            raise PolicyError(_("Each conversion between credit types needs from, to, num and den."))
        if c["from"] not in LEDGER_CODES or c["to"] not in LEDGER_CODES or c["from"] == c["to"]:
            raise PolicyError(_("A conversion goes from one known credit type to another."))
        if c["from"] in CREDIT_UNIT_LEDGERS:
            raise PolicyError(_("学分 are not converted back into 学时: a conversion starts from 学时."))
        for k in ("num", "den"):
            v = c[k]
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1000:
                raise PolicyError(_("A conversion rate is a fraction of whole numbers from 1 to 1000."))
    ye = out["year_end"]
    if not isinstance(ye, dict) or ye.get("mode") not in ("expire", "carry_forward"):
        raise PolicyError(_("year_end.mode must be expire or carry_forward."))
    _centi(ye.get("carry_cap_centi", 0), _("The carry-forward cap"))
    return out


def ensure_default() -> None:
    """Record version 1 (the defaults) if no policy exists yet (in the caller's transaction)."""
    if db.session.execute(select(Policy.version).limit(1)).first() is None:
        from plugins.credit_bank.ledger import _insert_ignore

        db.session.execute(
            _insert_ignore(Policy.__table__),
            [
                {
                    "version": 1,
                    "effective_from": dt.date(2000, 1, 1),
                    "rules": DEFAULT_RULES,
                    "note": "default",
                    "created_by": None,
                    "created_at": utcnow(),
                }
            ],
        )


def in_force(on: dt.date) -> Policy:
    """The version in force on a date: the newest version whose effective date has come.

    The defaults are recorded (:func:`ensure_default`) only when no version is found: a found
    one proves a policy exists (a statement less for every balance query)."""
    row = db.session.execute(
        select(Policy)
        .where(Policy.effective_from <= on)
        .order_by(Policy.effective_from.desc(), Policy.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is None:  # no version yet, or every version starts later than ``on``: the oldest applies
        ensure_default()
        row = db.session.execute(select(Policy).order_by(Policy.version).limit(1)).scalar_one()
    return row


def rules_in_force(on: dt.date) -> dict[str, Any]:
    """The rules of the version in force on a date, for pages that only read: one statement, no write.

    The same choice as :func:`in_force` (the newest version whose date has come, else the
    oldest), made by one ORDER BY. With no version recorded yet the defaults are returned
    without recording them (version 1 would hold exactly these): :func:`in_force` then read,
    inserted and read again, on every dashboard view, and the insert was rolled back with
    the read-only page (issue 12)."""
    due = Policy.effective_from <= on
    row = db.session.execute(
        select(Policy.rules)
        .order_by(
            case((due, 0), else_=1),  # a version in force, if any, before the later ones
            case((due, Policy.effective_from)).desc().nulls_last(),  # the newest in force
            case((due, -Policy.version), else_=Policy.version),  # newest of a date; else the oldest
        )
        .limit(1)
    ).scalar_one_or_none()
    return validate(DEFAULT_RULES if row is None else row)


def rules_of(policy: Policy) -> dict[str, Any]:
    return validate(policy.rules)


def versions() -> list[Policy]:
    ensure_default()
    return list(db.session.execute(select(Policy).order_by(Policy.version.desc())).scalars())


def add_version(rules: Any, effective_from: dt.date, actor_id: int | None, note: str | None = None) -> Policy:
    """Validate and record a new version (commits). Raises :class:`PolicyError`."""
    if isinstance(rules, str):
        try:
            rules = json.loads(rules)
        except (ValueError, RecursionError) as exc:
            raise PolicyError(_("The policy is not valid JSON.")) from exc
    clean = validate(rules)
    if not dt.date(2000, 1, 1) <= effective_from <= dt.date(2100, 12, 31):
        raise PolicyError(_("The effective date must be between 2000 and 2100."))
    ensure_default()
    from sqlalchemy import func

    for _attempt in range(5):
        version = int(db.session.execute(select(func.max(Policy.version))).scalar_one() or 0) + 1
        row = Policy(
            version=version,
            effective_from=effective_from,
            rules=clean,
            note=(note or "")[:500] or None,
            created_by=actor_id,
            created_at=utcnow(),
        )
        db.session.add(row)
        try:
            db.session.commit()
            return row
        except Exception:  # a concurrent admin took the number: take the next one
            db.session.rollback()
    raise PolicyError(_("The policy could not be recorded; please try again."))


# --------------------------------------------------------------------------- conversion


def online_course_amount(rules: dict[str, Any], nominal_centi: int, minutes: int | None) -> int:
    """学时 (centi) a completed online course earns under the rules."""
    oc = rules["online_course"]
    if oc["kind"] == "fixed":
        return int(oc["centi"])
    if oc["kind"] == "tiered_minutes":
        m = minutes if minutes is not None else nominal_centi * 60 // 100
        for min_minutes, centi in oc["tiers"]:
            if m >= min_minutes:
                return int(centi)
        return 0
    return max(0, int(nominal_centi))


def offline_amount(rules: dict[str, Any], days: int) -> int:
    return int(rules["offline_day_centi"]) * max(0, days)


def cap_of(rules: dict[str, Any], ledger: str) -> dict[str, int | None]:
    cap = rules["caps"].get(ledger, {})
    return {"per_year": cap.get("per_year"), "per_day": cap.get("per_day"), "per_item": cap.get("per_item")}
