"""Learner pages in Chromium: the quiz review after an attempt, editing one's survey answer."""

from __future__ import annotations

import re
from typing import Any

import pytest

from lms_core.extensions import db
from tests.browser.helpers import expect, horizontal_overflow, sign_in
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course

pytestmark = [pytest.mark.browser, pytest.mark.backends("postgresql"), pytest.mark.app_config(WTF_CSRF_ENABLED=True)]


@pytest.fixture
def kit(tree: Any) -> Any:
    from lms_core.enrolments import services as enrolments

    kit = build_course(tree)
    learner = UserFactory(username="liming", full_name="李明", org_unit=tree.village_a)
    enrolments.enrol(learner, kit.course)
    db.session.commit()
    return kit


def test_quiz_review_marks_the_wrong_answer(mobile_page: Any, kit: Any, tmp_path: Any) -> None:
    page = mobile_page
    sign_in(page, "liming")
    page.goto(f"/learn/lessons/{kit.quiz.id}")
    page.locator("fieldset", has_text="1+1=?").get_by_label("2").check()
    page.locator("fieldset", has_text="选出偶数").get_by_label("2").check()  # 4 missing: wrong
    page.locator("fieldset", has_text="地球是圆的").locator("input").first.check()
    page.locator("#submit-quiz").click()
    review = page.locator("#attempt-review")
    expect(review).to_be_visible()
    expect(review.locator(".review-line.wrong")).to_have_count(1)
    expect(review.locator(".review-line.wrong")).to_contain_text("选出偶数")
    expect(review.locator(".review-line.right")).to_have_count(2)
    expect(review.locator(".correct-answer")).to_have_count(0)  # this quiz does not reveal the right answers
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / "quiz-review-390.png"), full_page=True)


def test_survey_second_answer_edits_the_first(page: Any, kit: Any, tmp_path: Any) -> None:
    sign_in(page, "liming")
    page.goto(f"/learn/lessons/{kit.survey.id}")
    # A new survey starts with a 1-5 rating and an open question (tests/browser/test_everyday_survey.py edits them).
    questions = page.locator(".survey-question")
    expect(questions).to_have_count(2)
    questions.nth(0).locator(".scale-point").nth(3).click()
    questions.nth(1).locator("textarea").fill("很有收获")
    page.get_by_role("button", name="提交").click()
    expect(page.locator("#survey-mine")).to_contain_text("再次提交将修改这份回答")
    expect(page.locator(".survey-question").nth(1).locator("textarea")).to_have_value("很有收获")
    page.locator(".survey-question").nth(0).locator(".scale-point").nth(4).click()
    page.get_by_role("button", name="保存修改").click()
    expect(page.locator(".flash-success")).to_contain_text(re.compile(r"：4.*→ 5"))
    expect(page.locator(".survey-question").nth(1).locator("textarea")).to_have_value("很有收获")
    page.screenshot(path=str(tmp_path / "survey-1280.png"), full_page=True)


def test_catalogue_search_by_initials_on_a_phone(mobile_page: Any, kit: Any, tmp_path: Any) -> None:
    page = mobile_page
    sign_in(page, "liming")
    page.goto("/courses/")
    page.locator("input[name=q]").fill("xjpxsd")  # 习近平新时代…
    page.locator("input[name=q]").press("Enter")
    expect(page.locator("main")).to_contain_text("习近平新时代中国特色社会主义思想专题")
    page.locator("input[name=q]").fill("fazhi")
    page.locator("input[name=q]").press("Enter")
    expect(page.locator("main")).not_to_contain_text("习近平新时代中国特色社会主义思想专题")
    page.screenshot(path=str(tmp_path / "catalogue-390.png"), full_page=True)


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1280, "height": 800}])
def test_new_task_notice_and_learning_record(page: Any, tree: Any, tmp_path: Any, viewport: dict[str, int]) -> None:
    import datetime as dt

    from lms_core.accounts.models import Role
    from lms_core.enrolments import services as enrolments
    from tests.factories import grant

    kit = build_course(tree)
    admin = UserFactory(username="cadmin", org_unit=tree.county_a)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    UserFactory(username="wangfang", full_name="王芳", org_unit=tree.village_a)
    db.session.commit()
    assignment = enrolments.assign(
        admin, kit.course, tree.county_a, deadline=dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    )
    db.session.commit()
    enrolments.materialize(assignment.id)

    page.set_viewport_size(viewport)
    sign_in(page, "wangfang")
    notices = page.locator("#notices")
    expect(notices).to_contain_text("调训任务：《习近平新时代中国特色社会主义思想专题》")
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / f"dashboard-notice-{viewport['width']}.png"), full_page=True)
    notices.get_by_role("button", name="知道了").click()
    expect(page.locator("#notices")).to_have_count(0)
    page.locator("#record-link").click()
    expect(page.locator("h1")).to_have_text("学习档案")
    expect(page.locator("#record-total")).to_contain_text("认定学时 0.00 小时")
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / f"record-{viewport['width']}.png"), full_page=True)
