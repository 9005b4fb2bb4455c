"""The credit bank's dashboard chart: posted hours against the yearly requirement, by unit and rank band.

Sums come from SQL: the posted counted balances of the year (plus what a year-end close
moved out), and the people grouped by unit, band, party membership and position, whose
yearly target (``annual_target``) is computed once per distinct group rather than once
per person. Both are read from per-subtree rollups (``credit_bank_subtree_people``,
``credit_bank_subtree_earned``: each unit with everything under it, summed by the
refresh) rebuilt with the core's report rollups through ``lms_report_rollups``:
grouping 100,000 cadres and their accounts took seconds per page, and summing per-unit
rows through the tree's closure still cost a city's page 28 ms of PostgreSQL. Cadres with
a rank history (promotions) are few and are taken live, one by one, under the band they
held on the year's reference date.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from types import SimpleNamespace
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import and_, exists, func, select, union_all

from lms_core.accounts.models import User, UserStatus
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit
from lms_core.reports.charts import Chart, ChartScope, Series, percent
from lms_core.reports.figures import replace, summed_up
from lms_core.reports.queries import band_label
from plugins.credit_bank import policy as P
from plugins.credit_bank import ranks
from plugins.credit_bank.models import (
    CREDIT_UNIT_LEDGER_IDS,
    Account,
    AccountKind,
    SubtreeEarned,
    SubtreePeople,
    Transfer,
)
from plugins.credit_bank.queries import annual_target, reference_date
from plugins.credit_bank.ranks import History, RankChange
from plugins.credit_bank.services import CLOSE_CODES


def _keywords(rules: dict[str, Any]) -> list[str]:
    return sorted({w for r in rules["requirements"] for w in r.get("position_keywords") or []})


#: The rollups' stamp names (``lms_report_rollups``).
ROLLUPS = ("credit_bank_subtree_people", "credit_bank_subtree_earned")


def _steady() -> Any:
    """Active cadres with no rank history: the people the rollups hold (the others are few and live)."""
    return and_(User.status == UserStatus.ACTIVE, ~exists().where(RankChange.user_id == User.id))


def recomputed_people() -> Any:
    """(unit, band, party, position, people) at or under each unit: ``credit_bank_subtree_people`` from ``users``."""
    position = func.coalesce(User.position, "").label("position")
    per_unit = (
        select(User.org_unit_id, User.rank_band, User.party_member, position, func.count().label("n"))
        .where(_steady())
        .group_by(User.org_unit_id, User.rank_band, User.party_member, position)
    )
    return summed_up(per_unit, keys=3)


def recomputed_earned() -> Any:
    """(unit, year, band, centi) at or under each unit: ``credit_bank_subtree_earned`` from the counted accounts.

    Plus what a year-end close moved out of them.
    """
    counted = (Account.owner_id == User.id, Account.kind == AccountKind.COUNTED.value)
    hours = Account.ledger_id.not_in(CREDIT_UNIT_LEDGER_IDS)  # 学时 only: 学分 are another unit
    posted = (
        select(User.org_unit_id, Account.period, User.rank_band, (Account.credits_posted - Account.debits_posted))
        .join(Account, counted[0])
        .where(counted[1], hours, _steady())
    )
    closed = (
        select(User.org_unit_id, Account.period, User.rank_band, Transfer.amount)
        .join(Account, counted[0])
        .join(Transfer, Transfer.debit_account_id == Account.id)
        .where(counted[1], hours, Transfer.code.in_(CLOSE_CODES), _steady())
    )
    both = union_all(posted, closed).subquery()
    unit, period, band, amount = both.c
    return summed_up(select(unit, period, band, func.sum(amount).label("earned")).group_by(unit, period, band), keys=2)


def rebuild_people() -> int:
    return replace(SubtreePeople, ["unit_id", "rank_band", "party_member", "position", "people"], recomputed_people())


def rebuild_earned() -> int:
    return replace(SubtreeEarned, ["unit_id", "period", "rank_band", "earned"], recomputed_earned())


def rollups() -> list[tuple[str, Any]]:
    return list(zip(ROLLUPS, (rebuild_people, rebuild_earned), strict=True))


def hours_against_required(scope: ChartScope) -> Chart:
    """Read from the compared units' subtree rollups (rows by primary key); cadres with a rank history live."""
    groups, group_of = scope.group_finder()
    group_names = {gid: (code, name) for gid, code, name, _path in groups}
    in_scope = scope.units_condition(OrgUnit.path)
    keys = (SubtreePeople.rank_band, SubtreePeople.party_member, SubtreePeople.position)
    people_stmt = scope.subtrees(SubtreePeople.unit_id, *keys, SubtreePeople.people)
    earned_stmt = scope.subtrees(SubtreeEarned.unit_id, SubtreeEarned.rank_band, SubtreeEarned.earned).where(
        SubtreeEarned.period == scope.year
    )
    # Driven from the (few) rank changes, not from every user.
    movers = (
        select(OrgUnit.path, User)
        .join(OrgUnit, OrgUnit.id == User.org_unit_id)
        .where(User.id.in_(select(RankChange.user_id)), User.status == UserStatus.ACTIVE, in_scope)
    )
    # The policy in force at the year's end, read once for every group's target.
    rules = P.rules_in_force(dt.date(scope.year, 12, 31))
    words = _keywords(rules)

    @cache
    def target(band: str, party: bool, matched: tuple[str, ...]) -> int:
        plain = SimpleNamespace(id=0, rank_band=band, party_member=party, position=" ".join(matched))
        return annual_target(plain, scope.year, hist=History(band, []), rules=rules)

    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def add(gid: int, band: str, n: int, required: int) -> None:
        code, name = group_names[gid]
        row = rows.setdefault((code, band), {"name": name, "band": band, "people": 0, "required": 0, "earned": 0})
        row["people"] += n
        row["required"] += required

    for gid, band, party, position, n in db.session.execute(people_stmt):
        matched = tuple(w for w in words if w in position)
        add(gid, band, int(n), int(n) * target(band, bool(party), matched))
    mover_rows: list[tuple[int, User]] = []
    for path, user in db.session.execute(movers):
        gid = group_of(path)
        if gid is not None:
            mover_rows.append((gid, user))
    histories = ranks.histories([user for _gid, user in mover_rows])
    day = reference_date(scope.year, None)
    mover_key: dict[int, tuple[str, str]] = {}
    for gid, user in mover_rows:
        hist = histories[user.id]
        band = hist.band_on(day)
        add(gid, band, 1, annual_target(user, scope.year, hist=hist, rules=rules))
        mover_key[user.id] = (group_names[gid][0], band)
    for gid, band, amount in db.session.execute(earned_stmt):
        key = (group_names[gid][0], band)
        if key in rows:
            rows[key]["earned"] += int(amount or 0)
    for uid, amount in _movers_earned(list(mover_key), scope.year):
        rows[mover_key[uid]]["earned"] += amount
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


def _movers_earned(ids: list[int], year: int) -> list[tuple[int, int]]:
    """(person, centi) posted to the counted accounts of ``year``, plus what a year-end close moved out."""
    if not ids:
        return []
    counted = (
        Account.owner_id.in_(ids),
        Account.kind == AccountKind.COUNTED.value,
        Account.period == year,
        Account.ledger_id.not_in(CREDIT_UNIT_LEDGER_IDS),  # 学时 only
    )
    posted = select(Account.owner_id, func.sum(Account.credits_posted - Account.debits_posted)).where(*counted)
    closed = (
        select(Account.owner_id, func.sum(Transfer.amount))
        .join(Transfer, Transfer.debit_account_id == Account.id)
        .where(*counted, Transfer.code.in_(CLOSE_CODES))
    )
    out: list[tuple[int, int]] = []
    for stmt in (posted, closed):
        out += [(int(uid), int(ms or 0)) for uid, ms in db.session.execute(stmt.group_by(Account.owner_id))]
    return out


def charts(scope: ChartScope) -> list[Chart]:
    return [hours_against_required(scope)]
