"""The credit bank's report rollups (lms_report_rollups): equal to the cadres and accounts they sum, up the tree."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import select

from lms_core.accounts.models import RankBand, User, UserStatus
from lms_core.extensions import db
from lms_core.reports import monthly
from lms_core.reports.models import Rollup
from plugins.credit_bank import ranks
from plugins.credit_bank import services as S
from plugins.credit_bank.models import Account, AccountKind, SubtreeEarned, SubtreePeople, Transfer
from plugins.credit_bank.ranks import RankChange
from plugins.credit_bank.report_charts import ROLLUPS
from tests.lms_core.reports.test_figures import up_the_tree
from tests.plugins.credit_bank.test_requirement_report import people  # noqa: F401 - the shared fixture


def _steady() -> dict[int, User]:
    movers = set(db.session.scalars(select(RankChange.user_id)))
    return {
        u.id: u for u in db.session.scalars(select(User).where(User.status == UserStatus.ACTIVE)) if u.id not in movers
    }


def people_from_source() -> dict[tuple[int, str, bool, str], int]:
    counts: dict[tuple[int, str, bool, str], int] = defaultdict(int)
    for u in _steady().values():
        for unit in up_the_tree(u.org_unit_id):
            counts[(unit, RankBand(u.rank_band).value, bool(u.party_member), u.position or "")] += 1
    return dict(counts)


def earned_from_source() -> dict[tuple[int, int, str], int]:
    steady = _steady()
    sums: dict[tuple[int, int, str], int] = defaultdict(int)
    counted: dict[int, list[tuple[int, int, str]]] = {}
    for a in db.session.scalars(select(Account).where(Account.kind == AccountKind.COUNTED.value)):
        owner = steady.get(a.owner_id)
        if owner is not None:
            band = RankBand(owner.rank_band).value
            counted[a.id] = keys = [(unit, a.period, band) for unit in up_the_tree(owner.org_unit_id)]
            for key in keys:
                sums[key] += a.credits_posted - a.debits_posted
    for t in db.session.scalars(select(Transfer).where(Transfer.code.in_(S.CLOSE_CODES))):
        for key in counted.get(t.debit_account_id, []):
            sums[key] += t.amount
    return dict(sums)


def in_rollups() -> tuple[dict, dict]:
    heads = db.session.scalars(select(SubtreePeople))
    earned = db.session.scalars(select(SubtreeEarned))
    return (
        {(r.unit_id, r.rank_band, r.party_member, r.position): r.people for r in heads},
        {(r.unit_id, r.period, r.rank_band): r.earned for r in earned},
    )


def test_rollups_equal_the_recomputation(app, people, tree):  # noqa: F811
    people["late"].party_member, people["late"].position = True, "党委书记"
    people["far"].status = UserStatus.DISABLED
    S.close_year(2025)  # far's 2025 credit is moved out: counted back in as that year's earned
    ranks.record(people["track"], band="county_and_above", effective=dt.date(2026, 6, 1), actor=None)
    db.session.commit()
    monthly.refresh()
    db.session.commit()
    expected = people_from_source(), earned_from_source()
    assert len(expected[0]) >= 4 and len(expected[1]) >= 2
    assert people["track"].id not in _steady()  # a cadre with a rank history is taken live, not rolled up
    assert in_rollups() == expected
    rows = {r.name: r.rows for r in db.session.scalars(select(Rollup))}
    assert (rows[ROLLUPS[0]], rows[ROLLUPS[1]]) == (len(expected[0]), len(expected[1]))


def test_far_closed_year_counts_in_the_rollup(app, people):  # noqa: F811
    S.close_year(2025)
    db.session.commit()
    monthly.refresh()
    db.session.commit()
    far = people["far"]
    closes = db.session.scalars(select(Transfer).where(Transfer.code.in_(S.CLOSE_CODES))).all()
    assert closes  # the close moved far's 2025 credit out of the counted account
    assert in_rollups()[1][(far.org_unit_id, 2025, "general")] == 8000
    assert in_rollups() == (people_from_source(), earned_from_source())
