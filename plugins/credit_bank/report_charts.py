"""The credit bank's dashboard chart: posted hours against the yearly requirement, by unit and rank band.

Sums come from SQL: the posted counted balances of the year (plus what a year-end close
moved out), and the people grouped by unit, band, party membership and the position
keywords the policy looks for, whose yearly target (``annual_target``) is computed once per
distinct group rather than once per person. Cadres with a rank history (promotions) are
few and are taken one by one, under the band they held on the year's reference date.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from types import SimpleNamespace
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import exists, func, select

from lms_core.accounts.models import User, UserStatus
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit
from lms_core.reports.charts import Chart, ChartScope, Series, percent
from lms_core.reports.queries import band_label
from plugins.credit_bank import policy as P
from plugins.credit_bank import ranks
from plugins.credit_bank.models import Account, AccountKind, Transfer
from plugins.credit_bank.queries import annual_target, reference_date
from plugins.credit_bank.ranks import History, RankChange
from plugins.credit_bank.services import CLOSE_CODES


def _keywords(year: int) -> list[str]:
    rules = P.rules_of(P.in_force(dt.date(year, 12, 31)))
    return sorted({w for r in rules["requirements"] for w in r.get("position_keywords") or []})


def hours_against_required(scope: ChartScope) -> Chart:
    group, keep = scope.groups()
    in_group = OrgUnit.path.startswith(group.path)
    changed = exists().where(RankChange.user_id == User.id)
    base = (
        select(group.id)
        .select_from(group)
        .join(OrgUnit, in_group)
        .join(User, User.org_unit_id == OrgUnit.id)
        .where(keep, User.status == UserStatus.ACTIVE, scope.units_condition(OrgUnit.path))
    )
    # Cadres without a rank history hold their current band all year: counted in groups.
    # The few with one are looked up one by one (their band on the year's reference date).
    people = (
        base.with_only_columns(
            group.id, group.code, group.name, User.rank_band, User.party_member, User.position, func.count(User.id)
        )
        .where(~changed)
        .group_by(group.id, group.code, group.name, User.rank_band, User.party_member, User.position)
    )
    movers = base.with_only_columns(group.id, group.code, group.name, User).where(changed)
    counted = (Account.owner_id == User.id, Account.kind == AccountKind.COUNTED.value, Account.period == scope.year)
    posted = (
        base.with_only_columns(
            User.id, group.id, User.rank_band, func.sum(Account.credits_posted - Account.debits_posted)
        )
        .join(Account, counted[0])
        .where(*counted[1:])
        .group_by(User.id, group.id, User.rank_band)
    )
    closed = (
        base.with_only_columns(User.id, group.id, User.rank_band, func.sum(Transfer.amount))
        .join(Account, counted[0])
        .join(Transfer, Transfer.debit_account_id == Account.id)
        .where(*counted[1:], Transfer.code.in_(CLOSE_CODES))
        .group_by(User.id, group.id, User.rank_band)
    )
    words = _keywords(scope.year)

    @cache
    def target(band: str, party: bool, matched: tuple[str, ...]) -> int:
        plain = SimpleNamespace(id=0, rank_band=band, party_member=party, position=" ".join(matched))
        return annual_target(plain, scope.year, hist=History(band, []))

    rows: dict[tuple[str, str], dict[str, Any]] = {}
    names: dict[int, tuple[str, str]] = {}

    def add(gid: int, code: str, name: str, band: str, n: int, required: int) -> None:
        names[gid] = (code, name)
        row = rows.setdefault((code, band), {"name": name, "band": band, "people": 0, "required": 0, "earned": 0})
        row["people"] += n
        row["required"] += required

    for gid, code, name, band, party, position, n in db.session.execute(people):
        band = getattr(band, "value", band)
        matched = tuple(w for w in words if w in (position or ""))
        add(gid, code, name, band, int(n), int(n) * target(band, bool(party), matched))
    mover_rows = list(db.session.execute(movers))
    histories = ranks.histories([r[3] for r in mover_rows])
    band_of: dict[int, str] = {}
    day = reference_date(scope.year, None)
    for gid, code, name, user in mover_rows:
        hist = histories[user.id]
        band_of[user.id] = hist.band_on(day)
        add(gid, code, name, band_of[user.id], 1, annual_target(user, scope.year, hist=hist))
    for stmt in (posted, closed):
        for uid, gid, band, amount in db.session.execute(stmt):
            key = (names[gid][0], band_of.get(uid, getattr(band, "value", band))) if gid in names else None
            if key in rows:
                rows[key]["earned"] += int(amount or 0)
    ordered = [rows[k] for k in sorted(rows, key=lambda k: (k[0], P.RANK_BANDS.index(k[1])))]
    categories = [f"{r['name']} · {band_label(r['band'])}" for r in ordered]
    earned = [round(r["earned"] / 100, 2) for r in ordered]
    required = [round(r["required"] / 100, 2) for r in ordered]
    total_e, total_r = sum(r["earned"] for r in ordered), sum(r["required"] for r in ordered)
    summary = (
        _(
            "Posted credit hours against the yearly requirement of the cadres in each unit and rank band: "
            "%(earned)s of %(required)s hours in all (%(rate)s%%).",
            earned=f"{total_e / 100:.2f}",
            required=f"{total_r / 100:.2f}",
            rate=percent(total_e, total_r),
        )
        if ordered
        else _("No cadres in these units.")
    )
    return Chart(
        "credit",
        _("Credit hours earned against required"),
        "hbar",
        _("Org unit and rank band"),
        categories,
        [Series(_("Earned hours"), earned), Series(_("Required hours"), required)],
        _("Hours"),
        summary,
        order=10,
        extra_headers=[_("Cadres"), _("Share earned")],
        extra=[[r["people"], f"{percent(r['earned'], r['required'])}%"] for r in ordered],
    )


def charts(scope: ChartScope) -> list[Chart]:
    return [hours_against_required(scope)]
