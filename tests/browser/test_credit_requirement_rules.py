"""A site admin edits the requirement rules as a form in Chromium, at 390 and 1280 px wide."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

from lms_core.accounts.models import RankBand, Role
from lms_core.extensions import db
from tests.browser.helpers import expect, horizontal_overflow, sign_in
from tests.factories import UserFactory, grant

pytestmark = [
    pytest.mark.browser,
    pytest.mark.backends("postgresql"),
    pytest.mark.app_config(WTF_CSRF_ENABLED=True, LMS_PLUGINS=["credit_bank"]),
]


@pytest.mark.parametrize("size", ["mobile", "desktop"])
def test_site_admin_previews_and_saves_requirement_rules(
    request: pytest.FixtureRequest, tree: Any, tmp_path: Path, size: str
) -> None:
    """A wrong amount is named in Chinese next to its field with the input kept; the preview
    says the draft in words and what it asks of one cadre; saving makes a new version that the
    cadre's progress then uses."""
    from lms_core.db import utcnow
    from plugins.credit_bank import policy as P
    from plugins.credit_bank import queries
    from plugins.credit_bank.models import Policy
    from plugins.credit_bank.services import local_date
    from tests.plugins.credit_bank.helpers import grant_credit

    page = request.getfixturevalue("mobile_page" if size == "mobile" else "page")
    shots = Path(os.environ.get("LMS_SCREENSHOT_DIR") or tmp_path)
    site = UserFactory(username="site_admin", org_unit=tree.city)
    grant(site, Role.SITE_ADMIN, tree.city)
    cadre = UserFactory(username="liming", full_name="李明", org_unit=tree.village_a, rank_band=RankBand.TOWNSHIP)
    db.session.commit()
    today = local_date(utcnow())
    grant_credit(cadre.id, 9000, "wl-rules", day=dt.date(today.year, 1, 2))
    P.ensure_default()
    db.session.commit()
    i = next(n for n, r in enumerate(P.DEFAULT_RULES["requirements"]) if r["key"] == "annual_township")

    sign_in(page, "site_admin")
    page.goto("/credit/policy")
    page.locator("#requirements-form-link").click()
    expect(page.locator("h1")).to_have_text("学时要求规则")
    page.locator(f"#requirement-{i} > summary").click()  # each requirement is folded until opened
    amount = page.locator(f"#req_amount_{i}")
    expect(amount).to_have_value("90.00")
    amount.fill("九十")
    page.locator("#preview-button").click()
    expect(page.locator(f"#error-req_amount_{i}")).to_contain_text("最多两位小数")
    expect(page.locator(f"#req_amount_{i}")).to_have_value("九十")  # the row with the error is open
    expect(page.locator(f"#requirement-{i} summary .badge")).to_have_text("待更正")
    page.locator(f"#req_amount_{i}").fill("100")
    page.locator("#person").fill("liming")
    page.locator("#preview-button").click()
    expect(page.locator("#preview tr.changed")).to_contain_text("100.00 学时")
    row = page.locator("#person-preview tr[data-key=annual_township]")
    expect(row.locator("td.now")).to_contain_text("90.00 / 90.00")
    expect(row.locator("td.draft")).to_have_text("90.00 / 100.00")
    page.screenshot(path=str(shots / f"requirement-rules-preview-{size}.png"), full_page=True)
    assert horizontal_overflow(page) == 0
    for table in ("#preview", "#person-preview"):  # long cells wrap: no sideways scroll inside the frame
        frame = page.locator(table).locator("xpath=..")
        assert frame.evaluate("f => f.scrollWidth - f.clientWidth") == 0, table
    page.locator("#effective_from").fill(f"{today.year}-01-01")
    page.locator("#save-button").click()
    expect(page.locator(".flash")).to_contain_text("已保存")
    db.session.expire_all()
    assert db.session.query(Policy).count() == 2
    got = {p.key: (p.required, p.met) for p in queries.progress(cadre, today.year)}
    assert got["annual_township"] == (10000, False)
