"""Site admin pages in Chromium: the system status page, and the LRS clients' buttons at 1280 px."""

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
    pytest.mark.app_config(WTF_CSRF_ENABLED=True, LMS_PLUGINS=["lrs"]),
]


#: How many lines an element's text takes (one client rect per line box).
LINES = "el => { const r = document.createRange(); r.selectNodeContents(el); return r.getClientRects().length; }"


@pytest.fixture
def root(tree: Any) -> Any:
    user = UserFactory(username="root", full_name="系统管理员", org_unit=tree.city)
    grant(user, Role.SITE_ADMIN, tree.city)
    db.session.commit()
    return user


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1280, "height": 800}])
def test_status_page(page: Any, root: Any, tmp_path: Any, viewport: dict[str, int]) -> None:
    page.set_viewport_size(viewport)
    sign_in(page, "root")
    page.goto("/admin/orgs")
    page.get_by_role("link", name="系统状态").click()
    expect(page.locator("h1")).to_have_text("系统状态")
    expect(page.locator("#status-database")).to_contain_text("PostgreSQL")
    expect(page.locator("#status-plugins")).to_contain_text("lrs")
    expect(page.locator("#status-migrations")).to_contain_text("已是最新")
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / f"status-{viewport['width']}.png"), full_page=True)


def test_lrs_client_buttons_fit_at_1280(page: Any, root: Any, tmp_path: Any) -> None:
    from lrs.clients import create_client

    create_client("省干部网络学院课程平台数据对接（正式环境）", ["statements/write", "statements/read", "state"])
    db.session.commit()
    sign_in(page, "root")
    page.goto("/admin/lrs/clients")
    row = page.locator("tbody tr").first
    card = page.locator("section.card").first.bounding_box()
    for button in row.locator("button").all():
        box = button.bounding_box()
        assert box is not None and card is not None
        assert box["x"] + box["width"] <= card["x"] + card["width"], button.inner_text()
    assert (
        int(
            page.evaluate(
                "document.querySelector('.table-wrap').scrollWidth - document.querySelector('.table-wrap').clientWidth"
            )
        )
        == 0
    )
    page.screenshot(path=str(tmp_path / "lrs-clients-1280.png"), full_page=True)


def test_limited_client_on_a_phone_shows_its_secret_without_scrolling(page: Any, root: Any, tmp_path: Any) -> None:
    """A client with one scope is created at 390 px; the secret shown once fits, the buttons read on one line."""
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, "root")
    page.goto("/admin/lrs/clients")
    page.locator("input[name=name]").fill("省干部网络学院（只读）")
    page.get_by_label("读取全部学习记录").check()
    page.get_by_role("button", name="创建", exact=True).click()
    expect(page.locator(".notice.success")).to_contain_text("密钥")
    row = page.locator("tbody tr", has_text="省干部网络学院（只读）")
    expect(row).to_contain_text("读取全部学习记录")
    assert horizontal_overflow(page) == 0
    for button in row.locator("button").all():  # one line box per label: 重新生成密钥 stood one character per line
        assert button.evaluate(LINES) == 1, button.inner_text()
    page.screenshot(path=str(tmp_path / "lrs-client-created-390.png"), full_page=True)
