"""Anti-idle's dashboard chart: the share of claimed time each rule deducted, voided or held, in scope."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from lms_core.accounts.models import RankBand, Role
from lms_core.extensions import db
from plugins.anti_idle.models import DayVerdict, Evidence
from plugins.anti_idle.report_charts import rule_name
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.lms_core.reports.test_reports import screen_rows

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])
HOUR = 3_600_000


def _day(user, day, claimed, held, lines):
    verdict = DayVerdict(
        user_id=user.id, day=day, verdict="held" if held else "deducted", claimed_ms=claimed, held_ms=held
    )
    db.session.add(verdict)
    db.session.flush()
    start = dt.datetime.combine(day, dt.time(2), dt.UTC)
    for rule, action, ms in lines:
        db.session.add(
            Evidence(
                day_verdict_id=verdict.id,
                user_id=user.id,
                day=day,
                rule=rule,
                action=action,
                span_start=start,
                span_end=start + dt.timedelta(minutes=30),
                amount_ms=ms,
                message="x",
            )
        )


@pytest.fixture
def days(app, tree):
    admin = UserFactory(username="nl_admin", org_unit=tree.county_a, rank_band=RankBand.COUNTY_AND_ABOVE)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    near = UserFactory(org_unit=tree.village_a)
    far = UserFactory(org_unit=tree.town_b)
    db.session.flush()
    _day(
        near,
        dt.date(2026, 3, 2),
        4 * HOUR,
        HOUR,
        [("R01", "deduct", HOUR // 2), ("HOLD", "hold", HOUR), ("R11", "score", 0)],
    )
    _day(near, dt.date(2026, 3, 3), 4 * HOUR, 0, [("R07b", "void", HOUR), ("R99", "deduct", HOUR // 4)])
    _day(near, dt.date(2025, 3, 3), 4 * HOUR, 0, [("R01", "deduct", 4 * HOUR)])  # another year
    _day(far, dt.date(2026, 3, 2), 2 * HOUR, 0, [("R05", "deduct", HOUR)])  # another county
    db.session.commit()


def test_shares_by_rule_in_scope(client, days):
    login(client, "nl_admin")
    page = client.get("/reports/dashboard?year=2026").get_data(as_text=True)
    raw = re.search(r'<script type="application/json" id="chart-anti_idle-data">(.*?)</script>', page, re.S)
    data = json.loads(raw.group(1))
    # 8 h claimed in the county; ordered by the time each rule took; no rule codes shown
    assert data["categories"] == ["整日暂挂待审", "自动作答在线确认", "倍速播放过快", "其他规则"]
    deducted, void, held = (s["values"] for s in data["series"])
    assert deducted == [0, 0, 6.2, 3.1] and void == [0, 12.5, 0, 0] and held == [12.5, 0, 0, 0]
    assert "播放页面不可见" not in page  # the other county's R05
    assert screen_rows(page, "chart-anti_idle-table")[0] == ["整日暂挂待审", "0.00", "0.00", "12.50", "1.00"]
    assert "8.00" in page and "1.00 学时暂挂" in page


def test_rule_names_have_no_codes():
    assert rule_name("R10c") == rule_name("R10")
    assert not re.search(r"R\d", rule_name("R42"))


def test_the_share_taken_never_passes_the_time_claimed(client, app, tree):
    # Two rules voiding the same hour: the lines add up to 200 %, the day lost 100 %.
    admin = UserFactory(username="nl_admin", org_unit=tree.county_a, rank_band=RankBand.COUNTY_AND_ABOVE)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    near = UserFactory(org_unit=tree.village_a)
    db.session.flush()
    _day(near, dt.date(2026, 3, 2), HOUR, 0, [("R07b", "void", HOUR), ("R03", "void", HOUR)])
    db.session.query(DayVerdict).filter_by(user_id=near.id).update({"void_ms": HOUR, "verdict": "void"})
    db.session.commit()
    login(client, "nl_admin")
    page = client.get("/reports/dashboard?year=2026").get_data(as_text=True)
    assert "其中 100.0% 被防挂机规则扣减、作废或暂挂" in page
