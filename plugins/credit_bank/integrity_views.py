"""The ledger integrity page for auditors and site admins (issue 12, item 7).

A thin page over the credit bank's own services: the signed Merkle checkpoints of
``transcripts.log`` with ``consistency_with_latest`` for each earlier one, and the
journal replay of ``ledger.replay_check`` / ``replay.run_checks``. Nothing is
recomputed here. The journal is one site-wide log, so the page is for people whose
scope covers every top-level unit (site admins, city or province auditors at the root).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from lms_core.accounts.models import User
from lms_core.authz import can
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit
from plugins.credit_bank import labels

bp = Blueprint("credit_bank_integrity", __name__, url_prefix="/credit/integrity", template_folder="templates")

#: Earlier checkpoints checked against the latest on one page view (newest first).
RECENT = 20


def may_view(user: Any) -> bool:
    """Auditors and site admins whose scope covers the whole org tree (the journal is site-wide)."""
    # The roles first: the admin nav asks on every page, and most viewers stop here
    # without the roots' SELECT.
    if not can(user, "credit.view") or not (can(user, "site.manage") or can(user, "credit.reverse")):
        return False
    roots = db.session.execute(select(OrgUnit).where(OrgUnit.parent_id.is_(None))).scalars().all()
    return all(can(user, "credit.view", root) for root in roots)


@bp.before_request
@login_required
def _whole_tree_only() -> None:
    if not may_view(current_user):
        abort(403)


@bp.route("/")
def page() -> Any:
    from plugins.credit_bank.proofs import credential as cr
    from plugins.credit_bank.transcripts.log import consistency_with_latest, latest_checkpoint
    from plugins.credit_bank.transcripts.models import Checkpoint

    logs = []
    for name in (cr.JOURNAL_LOG, cr.CREDENTIAL_LOG):
        latest = latest_checkpoint(name)
        earlier = list(
            db.session.scalars(
                select(Checkpoint)
                .where(Checkpoint.log == name)
                .order_by(Checkpoint.size.desc(), Checkpoint.id.desc())
                .limit(RECENT + 1)
            )
        )
        checks = []
        for cp in earlier:
            if latest is not None and cp.id == latest.id:
                continue
            result = consistency_with_latest(cp.as_dict())
            checks.append((cp, None if result is None else result[0]))
        logs.append({"name": name, "latest": latest, "checks": checks[:RECENT]})
    replay = _replay() if request.args.get("replay") == "1" else None
    return render_template("credit_bank/integrity.html", logs=logs, replay=replay)


KIND_NAMES = {
    "counted": _l("Counted"),
    "overflow": _l("Recorded, not counted"),
    "issuer": _l("Issuer"),
    "expired": _l("Expired"),
}


@dataclass(frozen=True)
class MismatchRow:
    """A replay mismatch as an auditor reads it: whose account, which credit type, year and kind."""

    person: User | None
    owner_id: str
    ledger: str
    year: str
    kind: str
    negative: bool
    cached: tuple[int, int, int, int]
    replayed: tuple[int, int, int, int]


def describe(mismatches: list[Any]) -> list[MismatchRow]:
    """Name the person, ledger, year and account kind of each mismatch (one query for the people).

    ``ledger.replay_check`` names an account ``LEDGER/kind/owner/period``, with `` (negative)``
    when replayed debits exceed credits.
    """
    parsed = []
    for m in mismatches:
        ref, negative = m.account, m.account.endswith(" (negative)")
        if negative:
            ref = ref[: -len(" (negative)")]
        code, kind, owner, period = (ref.split("/") + ["", "", "", ""])[:4]
        parsed.append((m, code, kind, owner, period, negative))
    ids = {int(owner) for _m, _c, _k, owner, _p, _n in parsed if owner.isdigit()}
    people = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return [
        MismatchRow(
            person=people.get(int(owner)) if owner.isdigit() else None,
            owner_id=owner,
            ledger=labels.ledger_name(code),
            year=period if period.isdigit() and period != "0" else "",
            kind=str(KIND_NAMES.get(kind, kind)),
            negative=negative,
            cached=m.cached,
            replayed=m.replayed,
        )
        for m, code, kind, owner, period, negative in parsed
    ]


def _replay() -> dict[str, Any]:
    """The credit bank's own replay: balances from the journal, then every registered check."""
    from plugins.credit_bank import replay
    from plugins.credit_bank.ledger import replay_check

    checked, mismatches = replay_check()
    lines: list[str] = []
    problems = replay.run_checks(lines.append)
    return {"checked": checked, "mismatches": describe(mismatches), "ok": problems == 0, "lines": lines}
