"""The issue's browser test: a county auditor filters the county's held days, opens a learner's
day timeline, voids the held credit with a reason, and sees the ledger and the learner's
dashboard change. Screenshots (desktop and phone) go to the test's ``tmp_path``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from lms_core.accounts.models import Role
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.jobs.services import commit
from plugins.anti_idle.models import DayVerdict
from plugins.credit_bank import policy as P
from tests.browser.test_ui import expect, horizontal_overflow, sign_in
from tests.factories import UserFactory, grant
from tests.lms_core.learning.fixtures import build_course
from tests.plugins.anti_idle.harness import T0, S, make_learner
from tests.plugins.anti_idle.test_appeals import make_day

pytestmark = [
    pytest.mark.browser,
    pytest.mark.backends("postgresql"),
    pytest.mark.app_config(WTF_CSRF_ENABLED=True, LMS_PLUGINS=["anti_idle", "credit_bank"]),
]
DAY = dt.date(2026, 5, 10)


def _hold(user_id: int, held_s: int) -> None:
    """The day's held time becomes a pending credit hold (what the credit bank does on assessment)."""
    emit(
        "anti_idle.day_assessed",
        payload={
            "user_id": user_id,
            "day": DAY.isoformat(),
            "verdict": "held",
            "credited_seconds": 0,
            "held_seconds": held_s,
            "deducted_seconds": 0,
            "policy_version": 1,
            "review_score": 60,
        },
    )
    commit()


@pytest.fixture
def held(tree: Any) -> Any:
    P.add_version({"online_course": {"kind": "study_time", "minutes_per_hour": 45}}, dt.date(2026, 1, 1), None)
    kit = build_course(tree)
    me = make_learner(tree, kit, name="李明")
    me.user.username = "liming"
    auditor = UserFactory(username="audit_nl", org_unit=tree.county_a, full_name="南岭审核员")
    grant(auditor, Role.AUDITOR, tree.county_a)
    far = UserFactory(username="far", org_unit=tree.town_b, full_name="石岗学员")
    db.session.commit()
    tab = me.open(deliver=3_600_000)
    at = me.play(tab, T0, 600)
    me.play(tab, at + 60 * S, 300, client={"visibility": "hidden"})
    # The assessment held the day for audit (review score over the threshold).
    v = db.session.query(DayVerdict).filter_by(user_id=me.user.id, day=DAY).one()
    v.verdict, v.review_state, v.review_score = "held", "pending", 60
    v.held_ms, v.credited_ms = v.credited_ms + v.held_ms, 0
    db.session.commit()
    _hold(me.user.id, v.held_ms // 1000)
    make_day(far, "held", held_ms=60_000)
    return me, v


def test_auditor_voids_a_held_day_from_the_timeline(
    page: Any, mobile_page: Any, held: Any, tree: Any, tmp_path: Path
) -> None:
    me, verdict = held
    sign_in(mobile_page, "liming")
    mobile_page.goto("/")
    pending_before = mobile_page.locator("#year-pending").inner_text()
    assert float(pending_before) > 0

    sign_in(page, "audit_nl")
    page.goto("/anti-idle/review")
    page.locator("#f-org").select_option(tree.county_a.code)
    page.locator("#f-kind").select_option("held")
    page.locator("#review-filter button").click()
    item = page.locator(f"#review-{verdict.id}")
    expect(item).to_contain_text("李明")
    expect(page.locator("main")).not_to_contain_text("石岗学员")
    page.screenshot(path=str(tmp_path / "queue.png"), full_page=True)

    page.locator(f"#day-link-{verdict.id}").click()
    expect(page.locator("h1")).to_contain_text("李明")
    expect(page.locator("#day-lanes .k-credited").first).to_be_visible()
    expect(page.locator("#day-lanes .k-hidden").first).to_be_attached()
    expect(page.locator("#day-ledger")).to_contain_text("暂挂，待审核")
    page.screenshot(path=str(tmp_path / "day-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert horizontal_overflow(page) == 0
    # The title's date stays whole on a phone (it broke as "2026-05-" / "10").
    assert page.evaluate("document.querySelector('h1 .day-date').getClientRects().length") == 1
    page.screenshot(path=str(tmp_path / "day-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    page.go_back()
    item = page.locator(f"#review-{verdict.id}")
    item.locator("textarea[name=reason]").fill("后台挂机播放，证据充分，作废")
    item.locator("button[value=void]").click()
    expect(page.locator(".flash")).to_contain_text("暂缓的学时已作废")
    expect(page.locator(f"#review-{verdict.id}")).to_have_count(0)

    page.goto(f"/audit/users/{me.user.id}/days/{DAY.isoformat()}")
    expect(page.locator("#day-ledger")).to_contain_text("暂挂后已作废")
    expect(page.locator("#day-reviews")).to_contain_text("后台挂机播放，证据充分，作废")

    mobile_page.goto("/")
    expect(mobile_page.locator("#year-pending")).to_have_text("0.00")
    mobile_page.goto("/record")
    expect(mobile_page.locator("#record-views")).to_contain_text("南岭审核员")
    mobile_page.screenshot(path=str(tmp_path / "record-phone.png"), full_page=True)
    assert horizontal_overflow(mobile_page) == 0
