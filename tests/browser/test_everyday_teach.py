"""Authoring pages in Chromium: the course form's fields look alike; 发布 says 已发布."""

from __future__ import annotations

from typing import Any

import pytest

from lms_core.extensions import db
from tests.browser.helpers import expect, horizontal_overflow, sign_in
from tests.lms_core.learning.fixtures import build_course

pytestmark = [pytest.mark.browser, pytest.mark.backends("postgresql"), pytest.mark.app_config(WTF_CSRF_ENABLED=True)]

STYLE = "el => { const s = getComputedStyle(el); return [s.borderTopWidth, s.borderRadius, s.paddingLeft, s.width]; }"


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1280, "height": 800}])
def test_hours_field_is_styled_like_the_title_and_publish_says_published(
    page: Any, tree: Any, tmp_path: Any, viewport: dict[str, int]
) -> None:
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


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1280, "height": 800}])
def test_author_reorders_edits_and_archives_a_studied_lesson(
    page: Any, tree: Any, tmp_path: Any, viewport: dict[str, int]
) -> None:
    from lms_core.enrolments import services as enrolments
    from lms_core.learning.models import LessonProgress
    from tests.factories import UserFactory

    kit = build_course(tree)
    kit.author.username = "author"
    learner = UserFactory(username="liming", org_unit=tree.village_a)
    enrolment = enrolments.enrol(learner, kit.course)
    db.session.add(LessonProgress(user_id=learner.id, lesson_id=kit.document.id, course_id=kit.course.id))
    db.session.commit()
    assert enrolment is not None

    page.set_viewport_size(viewport)
    sign_in(page, "author")
    page.goto(f"/teach/courses/{kit.course.id}")
    lessons = page.locator(".outline-lessons > li")
    expect(lessons.first).to_contain_text("视频课")
    page.locator(f"#lesson-{kit.document.id}").get_by_role("button", name="上移").click()
    expect(page.locator(".outline-lessons > li").first).to_contain_text("阅读材料")
    video = page.locator(f"#lesson-{kit.video.id}")
    video.locator("summary", has_text="编辑").click()
    video.get_by_label("课时名称").fill("视频课（第二版）")
    video.get_by_role("button", name="保存").click()
    expect(page.locator(f"#lesson-{kit.video.id}")).to_contain_text("视频课（第二版）")
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / f"outline-{viewport['width']}.png"), full_page=True)

    page.locator(f"#lesson-{kit.document.id}").get_by_role("button", name="删除").click()
    expect(page.locator("#confirm")).to_contain_text("将被归档")
    page.locator("#confirm").get_by_role("button", name="归档").click()
    expect(page.locator(".flash-success")).to_contain_text("已归档")
    expect(page.locator(f"#lesson-{kit.document.id}")).to_have_count(0)
    expect(page.locator(".archived-lessons")).to_contain_text("阅读材料")


def test_author_adds_a_lesson_from_the_library(mobile_page: Any, tree: Any, tmp_path: Any) -> None:
    kit = build_course(tree)
    kit.author.username = "author"
    db.session.commit()
    page = mobile_page
    sign_in(page, "author")
    page.goto(f"/teach/courses/{kit.course.id}")
    section = page.locator(f"#section-{kit.video.section_id}")
    section.locator("summary", has_text="添加课时").click()
    form = section.locator("form[enctype]")
    form.locator("input[name=title]").fill("复用的视频课")
    form.locator("select[name=kind]").select_option("video")
    form.locator("select[name=library_media]").select_option(str(kit.media.id))
    page.screenshot(path=str(tmp_path / "add-from-library-390.png"), full_page=True)
    form.get_by_role("button", name="添加课时").click()
    expect(page.locator(".outline-lessons")).to_contain_text("复用的视频课")


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1280, "height": 800}])
def test_author_reorders_quiz_questions(page: Any, tree: Any, tmp_path: Any, viewport: dict[str, int]) -> None:
    """↑/↓ on the quiz's questions, as on the survey's; the first ↑ and the last ↓ are disabled."""
    from lms_core.quizzes import services as quizzes

    kit = build_course(tree)
    kit.author.username = "author"
    db.session.commit()
    page.set_viewport_size(viewport)
    sign_in(page, "author")
    page.goto(f"/teach/lessons/{kit.quiz.id}/questions")
    items = page.locator(".quiz-editor > li")
    expect(items).to_have_count(3)
    expect(items.first.get_by_role("button", name="上移")).to_be_disabled()
    expect(items.last.get_by_role("button", name="下移")).to_be_disabled()
    items.filter(has_text="地球是圆的").get_by_role("button", name="上移").click()
    expect(page.locator(".quiz-editor > li").nth(1)).to_contain_text("地球是圆的")
    page.locator(".quiz-editor > li").filter(has_text="地球是圆的").get_by_role("button", name="上移").click()
    expect(page.locator(".quiz-editor > li").first).to_contain_text("地球是圆的")
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / f"quiz-order-{viewport['width']}.png"), full_page=True)
    db.session.expire_all()
    assert [q.text for q in quizzes.questions(kit.quiz)] == ["地球是圆的", "1+1=?", "选出偶数"]
