"""The site admin creates a limited LRS client in a real browser (issue 11, item 17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lms_core.accounts.models import Role
from lms_core.extensions import db
from tests.browser.helpers import expect, horizontal_overflow, sign_in
from tests.factories import UserFactory, grant

pytestmark = [
    pytest.mark.browser,
    pytest.mark.backends("postgresql"),
    pytest.mark.app_config(WTF_CSRF_ENABLED=True, LMS_PLUGINS=["lrs"]),
]


@pytest.fixture
def site_admin(tree: Any) -> None:
    admin = UserFactory(username="root", full_name="系统管理员", org_unit=tree.city)
    grant(admin, Role.SITE_ADMIN, tree.city)
    db.session.commit()


def test_limited_client_is_created_with_one_scope(page: Any, site_admin: None, tmp_path: Path) -> None:
    from lrs.models import LrsClient

    sign_in(page, "root")
    page.goto("/admin/lrs/clients")
    boxes = page.locator("input[name=scopes]")
    expect(boxes).to_have_count(8)
    # No checkbox is individually required: the browser would refuse a limited client.
    assert page.locator("input[name=scopes][required]").count() == 0
    # Scopes are described in Chinese, not as the spec's codes.
    expect(page.get_by_label("只写入学习记录（语句）")).to_be_visible()
    page.screenshot(path=str(tmp_path / "lrs-clients-1280.png"), full_page=True)

    page.locator("input[name=name]").fill("学习平台")
    page.get_by_label("只写入学习记录（语句）").check()
    page.locator("form:has(input[name=scopes]) button.primary").click()
    expect(page.locator(".flash-success")).to_be_visible()
    client = db.session.execute(select(LrsClient).where(LrsClient.name == "学习平台")).scalar_one()
    assert client.scopes == ["statements/write"]
    expect(page.locator("table")).to_contain_text("只写入学习记录（语句）")

    # None ticked: the server says so, in Chinese, and keeps the name typed.
    page.locator("input[name=name]").fill("空权限")
    page.locator("form:has(input[name=scopes]) button.primary").click()
    expect(page.locator(".field.has-error")).to_contain_text("请至少选择一项权限")
    expect(page.locator("input[name=name]")).to_have_value("空权限")


def test_client_form_fits_a_phone(mobile_page: Any, site_admin: None, tmp_path: Path) -> None:
    sign_in(mobile_page, "root")
    mobile_page.goto("/admin/lrs/clients")
    expect(mobile_page.locator("input[name=scopes]").first).to_be_visible()
    mobile_page.screenshot(path=str(tmp_path / "lrs-clients-390.png"), full_page=True)
    assert horizontal_overflow(mobile_page) == 0
