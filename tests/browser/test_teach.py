"""Instructor's course page in a real browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lms_core.accounts.models import Role, User
from lms_core.courses import services as courses
from lms_core.courses.models import Course, Topic
from lms_core.extensions import db
from tests.browser.helpers import expect, sign_in
from tests.factories import UserFactory, grant

pytestmark = [pytest.mark.browser, pytest.mark.backends("postgresql"), pytest.mark.app_config(WTF_CSRF_ENABLED=True)]


@pytest.fixture
def teacher(tree: Any) -> User:
    user = UserFactory(username="teacher", org_unit=tree.city, full_name="党校讲师")
    grant(user, Role.INSTRUCTOR, tree.city)
    db.session.commit()
    return user


def test_saving_a_course_unchanged_keeps_its_topic(page: Any, teacher: User, tmp_path: Path) -> None:
    course = courses.create_course(
        teacher, code="T-01", title="法治政府建设", topic="法治建设", nominal_hours_centi=150, required=True
    )
    db.session.commit()
    topic_id = course.topic_id
    sign_in(page, "teacher")
    page.goto(f"/teach/courses/{course.id}")
    topic = page.locator("input[name=topic]")
    expect(topic).to_have_value("法治建设")
    for _ in range(2):  # twice: the bug made a chain of "<Topic id=N>" topics
        page.locator("form:has(input[name=topic]) button.primary").click()
        expect(page.locator(".flash-success")).to_be_visible()
        expect(topic).to_have_value("法治建设")
    page.screenshot(path=str(tmp_path / "teach-course.png"), full_page=True)

    db.session.expire_all()
    saved = db.session.get(Course, course.id)
    assert saved is not None and saved.topic_id == topic_id
    assert saved.required is True and saved.nominal_hours_centi == 150
    assert [t.name for t in db.session.query(Topic).order_by(Topic.id)] == ["法治建设"]
    # and the learners' catalogue filter offers only the real topic
    page.goto("/courses/")
    options = page.locator("select[name=topic] option").all_inner_texts()
    assert "法治建设" in options and not [o for o in options if "Topic" in o]
