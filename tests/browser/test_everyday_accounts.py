"""Everyday account pages in Chromium: 上次登录, initial passwords, import, confirmations."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from lms_core.extensions import db
from tests.browser.test_ui import expect, sign_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.backends("postgresql"),
              pytest.mark.app_config(WTF_CSRF_ENABLED=True)]


def test_dashboard_shows_the_sign_in_before_this_one(page: Any, tree: Any, tmp_path: Any) -> None:
    user = UserFactory(username="liming", full_name="李明", org_unit=tree.village_a)
    user.last_login_at = dt.datetime(2026, 3, 1, 1, 5, tzinfo=dt.UTC)  # 09:05 in Shanghai
    db.session.commit()
    sign_in(page, "liming")
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    line = page.locator("#previous-sign-in")
    expect(line).to_contain_text("上次登录")
    expect(line).to_contain_text("2026年3月1日")
    expect(line).to_contain_text("09:05")
    page.screenshot(path=str(tmp_path / "dashboard-1280.png"), full_page=True)
