"""The leaders' dashboard in Chromium: ECharts draws every chart under the CSP, at 390 and 1280 px."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from lms_core.accounts.models import RankBand, Role
from lms_core.extensions import db
from lms_core.learning.models import DailyTotal
from tests.browser.fixtures import csp_violations
from tests.browser.test_ui import horizontal_overflow, sign_in
from tests.factories import UserFactory, grant

pytestmark = [pytest.mark.browser, pytest.mark.backends("postgresql"), pytest.mark.app_config(WTF_CSRF_ENABLED=True)]


@pytest.fixture
def leaders(tree: Any) -> None:
    admin = UserFactory(username="zzb", org_unit=tree.city, rank_band=RankBand.COUNTY_AND_ABOVE)
    grant(admin, Role.ORG_ADMIN, tree.city)
    for unit, ms in ((tree.town_a, 5_400_000), (tree.town_b, 1_800_000)):
        learner = UserFactory(org_unit=unit)
        db.session.flush()
        db.session.add(DailyTotal(user_id=learner.id, day=dt.date(2026, 3, 2), credited_ms=ms))
    db.session.commit()


@pytest.mark.parametrize("fixture", ["page", "mobile_page"])
def test_every_chart_is_drawn_without_csp_violation(request: Any, leaders: None, fixture: str) -> None:
    page = request.getfixturevalue(fixture)
    sign_in(page, "zzb")
    page.goto("/reports/dashboard?year=2026")
    containers = page.locator("[data-chart]")
    assert containers.count() >= 2  # the monthly trend and the unit comparison have data
    page.wait_for_function(
        "document.querySelectorAll('[data-chart]').length === document.querySelectorAll('[data-drawn]').length"
    )
    # ECharts drew into each container (a canvas of the container's width)
    widths = page.eval_on_selector_all("[data-chart] canvas", "els => els.map(e => e.getBoundingClientRect().width)")
    assert len(widths) == containers.count() and min(widths) > 200
    assert horizontal_overflow(page) == 0
    page.locator("#chart-units summary").click()
    assert page.locator("#chart-units-table").is_visible()
    assert "南岭县" in page.locator("#chart-units-table").inner_text()
    assert csp_violations(page) == []
