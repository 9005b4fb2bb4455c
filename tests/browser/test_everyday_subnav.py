"""The admin section's links at 1280 px with every plugin enabled: all in view, none behind a scroll."""

from __future__ import annotations

from typing import Any

import pytest

from lms_core.accounts.models import Role
from lms_core.extensions import db
from tests.browser.helpers import expect, horizontal_overflow, sign_in
from tests.factories import UserFactory, grant

pytestmark = [
    pytest.mark.browser,
    pytest.mark.backends("postgresql"),
    pytest.mark.app_config(LMS_PLUGINS=["lrs", "anti_idle", "credit_bank"]),
]


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1280, "height": 800}])
def test_site_admin_sees_every_section_link(page: Any, tree: Any, tmp_path: Any, viewport: dict[str, int]) -> None:
    user = UserFactory(username="root", full_name="系统管理员", org_unit=tree.city)
    grant(user, Role.SITE_ADMIN, tree.city)
    db.session.commit()
    page.set_viewport_size(viewport)
    sign_in(page, "root")
    page.goto("/admin/orgs")
    nav = page.locator("nav.subnav")
    expect(nav.get_by_role("link", name="系统状态")).to_be_attached()
    assert horizontal_overflow(page) == 0
    if viewport["width"] >= 1280:
        # every link inside the viewport, without scrolling the strip (系统状态 is the last one)
        width = viewport["width"]
        for link in nav.get_by_role("link").all():
            box = link.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, link.inner_text()
        assert nav.evaluate("n => n.scrollWidth - n.clientWidth") == 0
    page.screenshot(path=str(tmp_path / f"admin-subnav-{viewport['width']}.png"), full_page=True)
