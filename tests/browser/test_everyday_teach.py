"""Authoring pages in Chromium: the course form's fields look alike; 发布 says 已发布."""

from __future__ import annotations

from typing import Any

import pytest

from lms_core.extensions import db
from tests.browser.test_ui import expect, horizontal_overflow, sign_in
from tests.lms_core.learning.fixtures import build_course

pytestmark = [pytest.mark.browser, pytest.mark.backends("postgresql"),
              pytest.mark.app_config(WTF_CSRF_ENABLED=True)]

STYLE = "el => { const s = getComputedStyle(el); return [s.borderTopWidth, s.borderRadius, s.paddingLeft, s.width]; }"


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1280, "height": 800}])
def test_hours_field_is_styled_like_the_title_and_publish_says_published(page: Any, tree: Any, tmp_path: Any,
                                                                         viewport: dict[str, int]) -> None:
    kit = build_course(tree, publish=False)
    kit.author.username = "author"
    db.session.commit()
    page.set_viewport_size(viewport)
    sign_in(page, "author")
    page.goto(f"/teach/courses/{kit.course.id}")
    hours = page.locator("input[name=hours]")
    title = page.locator("input[name=title]").first  # the course form comes first
    assert hours.evaluate(STYLE) == title.evaluate(STYLE)
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / f"teach-course-{viewport['width']}.png"), full_page=True)
    page.locator("#publish").click()
    expect(page.locator(".flash-success")).to_contain_text("已发布")
    expect(page.locator(".flash-success")).not_to_contain_text("已保存")
