"""Anti-idle's report rollups (lms_report_rollups): equal to the verdicts and evidence they sum."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

import pytest
from sqlalchemy import select

from lms_core.accounts.models import User
from lms_core.extensions import db
from lms_core.reports import monthly
from lms_core.reports.models import Rollup
from plugins.anti_idle.models import DayVerdict, Evidence, SubtreeRuleYear, SubtreeYear
from plugins.anti_idle.report_charts import ACTIONS, ROLLUPS
from tests.factories import UserFactory
from tests.lms_core.reports.test_figures import up_the_tree
from tests.plugins.anti_idle.test_report_charts import HOUR, _day

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])


def years_from_source() -> dict[tuple[int, int], tuple[int, int, int]]:
    unit_of = {u.id: u.org_unit_id for u in db.session.scalars(select(User))}
    sums: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for v in db.session.scalars(select(DayVerdict)):
        for unit in up_the_tree(unit_of[v.user_id]):
            acc = sums[(unit, v.day.year)]
            acc[0] += v.claimed_ms
            acc[1] += v.held_ms
            acc[2] += v.deducted_ms + v.void_ms
    return {k: (a, b, c) for k, (a, b, c) in sums.items()}


def rules_from_source() -> dict[tuple[int, int, str, str], int]:
    unit_of = {u.id: u.org_unit_id for u in db.session.scalars(select(User))}
    sums: dict[tuple[int, int, str, str], int] = defaultdict(int)
    for e in db.session.scalars(select(Evidence).where(Evidence.action.in_(ACTIONS))):
        for unit in up_the_tree(unit_of[e.user_id]):
            sums[(unit, e.day.year, e.rule, e.action)] += e.amount_ms
    return dict(sums)


def in_rollups() -> tuple[dict, dict]:
    years = {(r.unit_id, r.year): (r.claimed_ms, r.held_ms, r.cut_ms) for r in db.session.scalars(select(SubtreeYear))}
    rules = {(r.unit_id, r.year, r.rule, r.action): r.amount_ms for r in db.session.scalars(select(SubtreeRuleYear))}
    return years, rules


@pytest.fixture
def verdicts(app, tree):
    rng = random.Random(8)
    units = [tree.village_a, tree.town_a, tree.town_b, tree.county_b]
    people = [UserFactory(org_unit=units[i % len(units)]) for i in range(8)]
    db.session.flush()
    choices = [("R01", "deduct"), ("R07b", "void"), ("HOLD", "hold"), ("R11", "score"), ("R05", "deduct")]
    for person in people:
        # Days on both sides of new year: the year is the Beijing day's (a Date column).
        for day in rng.sample(range(-20, 20), 4):
            held = rng.choice([0, HOUR])
            lines = [(*rng.choice(choices), rng.randrange(1, HOUR)) for _ in range(rng.randrange(0, 4))]
            lines = list({(r, a): (r, a, ms) for r, a, ms in lines}.values())
            _day(person, dt.date(2026, 1, 1) + dt.timedelta(days=day), rng.randrange(HOUR, 5 * HOUR), held, lines)
    db.session.commit()
    return people


def test_rollups_equal_the_recomputation(app, verdicts):
    monthly.refresh()
    db.session.commit()
    years, rules = years_from_source(), rules_from_source()
    assert {y for _u, y in years} == {2025, 2026} and len(rules) > 8
    assert in_rollups() == (years, rules)
    rows = {r.name: r.rows for r in db.session.scalars(select(Rollup))}
    assert (rows[ROLLUPS[0]], rows[ROLLUPS[1]]) == (len(years), len(rules))


def test_a_snapshot_until_rebuilt_then_the_mover_takes_their_days_along(app, verdicts, tree):
    monthly.refresh()
    db.session.commit()
    before = in_rollups()
    verdicts[0].org_unit_id = tree.city.id
    _day(verdicts[1], dt.date(2026, 6, 1), 2 * HOUR, 0, [("R01", "deduct", HOUR)])
    db.session.commit()
    assert in_rollups() == before
    monthly.refresh()
    db.session.commit()
    assert in_rollups() == (years_from_source(), rules_from_source()) != before


def test_no_stamp_until_the_plugin_rollups_are_built(app, verdicts):
    monthly.refresh()
    db.session.commit()
    assert monthly.refreshed_at() is not None
    db.session.delete(db.session.get(Rollup, ROLLUPS[1]))
    db.session.commit()
    assert monthly.refreshed_at() is None
