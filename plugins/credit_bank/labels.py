"""Human names (through the catalogue) for the bank's codes: nothing internal on a page."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

LEDGER_NAMES: dict[str, Any] = {
    "WL_XS": _l("Online training hours"),
    "JZ_XS": _l("Classroom training hours"),
    "DY_XS": _l("Party member study hours"),
    "ZJ_XS": _l("Professional continuing education hours"),
    "XF": _l("Credit bank credits"),
}

#: The unit of each ledger's amounts (0.01 of it): 学时, except the 学分 ledger.
UNITS: dict[str, Any] = {"hours": _l("hours"), "credits": _l("credits (学分)")}

CODE_NAMES: dict[str, Any] = {
    "course_complete": _l("Online course completed"),
    "study_time": _l("Online study time"),
    "offline_class": _l("Offline class"),
    "import": _l("Class roster"),
    "fixed": _l("Fixed credit"),
    "cap_overflow": _l("Over the cap (recorded, not counted)"),
    "carry_forward": _l("Carried forward at year end"),
    "expiry": _l("Expired at year end"),
    "reversal": _l("Reversal"),
    "adjustment": _l("Adjustment"),
    "conversion_out": _l("Converted to another credit type"),
    "conversion_in": _l("Converted from another credit type"),
}

STATUS_NAMES: dict[str, Any] = {
    "posted": _l("Posted"),
    "pending": _l("Under review"),
    "voided": _l("Cancelled"),
    "expired": _l("Lapsed"),
}

REQUIREMENT_NAMES: dict[str, Any] = {
    "annual_township": _l("Yearly training (township level and below): 90 hours"),
    "cycle_county": _l("Five-year training (county level and above): 550 hours"),
    "online_annual": _l("Online training each year: 50 hours"),
    "party_member": _l("Party member study each year: 32 hours"),
    "party_secretary": _l("Grassroots Party secretary study each year: 56 hours"),
    "promotion": _l("Training within a year of promotion"),
}

#: The audited events the bank records (the event log shows these names).
EVENT_NAMES: dict[str, Any] = {
    "credit.claim_submitted": _l("Offline training claim submitted"),
    "credit.claim_approved": _l("Offline training claim approved"),
    "credit.claim_rejected": _l("Offline training claim rejected"),
    "credit.roster_imported": _l("Class roster imported"),
    "credit.policy_added": _l("Credit policy version added"),
    "credit.reversed": _l("Credit reversed"),
    "credit.year_reversal_requested": _l("Reversal of a year's credit requested (代学代考)"),
    "credit.year_reversal_confirmed": _l("Reversal of a year's credit confirmed by a second auditor"),
    "credit.year_reversal_declined": _l("Reversal of a year's credit declined by a second auditor"),
    "credit.transcript_issued": _l("Transcript issued"),
    "credit.transcript_revoked": _l("Transcript revoked"),
    "credit.rank_changed": _l("Rank change recorded"),
    "credit.converted": _l("Credit converted between credit types"),
}

#: The bank's tables that events name as their object.
OBJECT_NAMES: dict[str, Any] = {
    "credit_year_reversal": _l("Request to reverse a year's credit"),
    "credit_transfers": _l("Credit entry"),
    "credit_policies": _l("Credit policy version"),
    "credit_claims": _l("Offline training claim"),
    "credit_credentials": _l("Transcript"),
    "credit_rank_changes": _l("Rank change"),
}

CLAIM_STATUS: dict[str, Any] = {
    "submitted": _l("Under review"),
    "approved": _l("Approved"),
    "rejected": _l("Rejected"),
}

#: Refusals a person can meet, in words they understand.
ERRORS: dict[str, Any] = {
    "exceeds_credits": _l("The balance is not enough for this."),
    "reason_required": _l("A reason is required."),
    "reversal_exceeds_original": _l("This credit has already been reversed."),
    "reversed_transfer_not_found": _l("That credit entry does not exist or cannot be reversed."),
    "account_closed": _l("That year is closed; corrections go to the current year."),
    "pending_expired": _l("The review period has lapsed."),
    "pending_transfer_already_posted": _l("This item was already approved."),
    "pending_transfer_already_voided": _l("This item was already rejected."),
}


def ledger_name(code: str) -> str:
    return str(LEDGER_NAMES.get(code, code))


def is_credit_unit(code: str) -> bool:
    """Whether a ledger counts 学分 (not 学时)."""
    from plugins.credit_bank.models import CREDIT_UNIT_LEDGERS

    return code in CREDIT_UNIT_LEDGERS


def unit_name(code: str) -> str:
    """The unit a ledger's amounts are shown in: 学时, or 学分 for the credit ledger."""
    return str(UNITS["credits" if is_credit_unit(code) else "hours"])


def unit_code(code: str) -> str:
    """The unit for machines (the JSON API): amounts are integers in 0.01 of it."""
    return "0.01 学分" if is_credit_unit(code) else "0.01 学时"


def hour_ledger_names() -> dict[str, Any]:
    """The 学时 credit types (offline claims and rosters post 学时, never 学分)."""
    return {c: n for c, n in LEDGER_NAMES.items() if not is_credit_unit(c)}


def code_name(code: str) -> str:
    return str(CODE_NAMES.get(code, code))


def band_name(band: str | None) -> str:
    from plugins.credit_bank.ranks import band_name as name

    return name(band)


def requirement_name(key: str) -> str:
    """A requirement's name: the bank's own wording for the default rules, else the name a
    site admin gave it in the requirement form (from the version in force, read once per
    request), never the internal key."""
    if key in REQUIREMENT_NAMES:
        return str(REQUIREMENT_NAMES[key])
    return _policy_names().get(key) or str(_l("Requirement %(key)s", key=key))


def _policy_names() -> dict[str, str]:
    from flask import g

    names = g.get("credit_requirement_names")
    if names is None:
        from lms_core.db import utcnow
        from plugins.credit_bank import policy as P
        from plugins.credit_bank.services import local_date

        rules = P.rules_of(P.in_force(local_date(utcnow())))
        names = {str(r["key"]): str(r["name"]) for r in rules["requirements"] if r.get("name")}
        g.credit_requirement_names = names
    return dict(names)


def error_text(code: str) -> str:
    from flask_babel import gettext as _

    return str(ERRORS.get(code) or _("The operation was refused (%(code)s).", code=code))


def memo_text(memo: str | None) -> str:
    """A journal memo as a sentence: the bank's own markers are translated, people's words kept."""
    if not memo:
        return ""  # most lines: before the import below (a statement asks once per line)
    from flask_babel import gettext as _

    if memo == "cap_reached":
        return str(_("Above a cap of the policy: recorded, not counted."))
    if memo == "pending_timed_out":
        return str(_("Not reviewed in time: the hold lapsed."))
    parts = memo.split(":")
    if len(parts) == 3 and parts[0] == "resize" and parts[1].isdigit() and parts[2].isdigit():
        old, new = int(parts[1]), int(parts[2])
        if new == 0:
            return str(
                _(
                    "Re-assessed: none of this day's study time is held any more, "
                    "so the %(old)s hours under review were withdrawn.",
                    old=hours(old),
                )
            )
        return str(
            _(
                "Re-assessed: the day's study time under review changed from %(old)s to %(new)s hours; "
                "the earlier hold was withdrawn and replaced.",
                old=hours(old),
                new=hours(new),
            )
        )
    return memo


def hours(centi: int | None) -> str:
    """0.01 学时 as a figure with two decimals: 200 -> "2.00"."""
    if centi is None:
        return ""
    sign = "-" if centi < 0 else ""
    centi = abs(centi)
    return f"{sign}{centi // 100}.{centi % 100:02d}"
