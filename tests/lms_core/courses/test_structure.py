"""Instructors edit, reorder and delete sections and lessons; a studied lesson is archived, its records kept."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lms_core.courses import services as courses
from lms_core.courses.models import Lesson, LessonKind, Section
from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.learning.models import LessonProgress
from tests.conftest import login
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course


@pytest.fixture
def teacher(app, tree, client):
    kit = build_course(tree)
    kit.author.username = "teacher"
    db.session.commit()
    login(client, "teacher")
    return kit, client


def _titles(course_id: int) -> list[str]:
    db.session.expire_all()
    rows = db.session.execute(
        select(Lesson.title)
        .where(Lesson.course_id == course_id, Lesson.archived_at.is_(None))
        .join(Section)
        .order_by(Section.position, Lesson.position)
    ).scalars()
    return list(rows)


def test_edit_and_reorder_lessons(teacher):
    kit, client = teacher
    assert _titles(kit.course.id) == ["视频课", "阅读材料", "随堂测验", "学情评估"]
    r = client.post(f"/teach/lessons/{kit.document.id}/move", data={"direction": "up"})
    assert r.status_code == 303
    assert _titles(kit.course.id) == ["阅读材料", "视频课", "随堂测验", "学情评估"]
    client.post(f"/teach/lessons/{kit.document.id}/move", data={"direction": "up"})  # already first: no change
    client.post(f"/teach/lessons/{kit.survey.id}/move", data={"direction": "down"})  # already last
    assert _titles(kit.course.id) == ["阅读材料", "视频课", "随堂测验", "学情评估"]
    assert client.post(f"/teach/lessons/{kit.survey.id}/move", data={"direction": "sideways"}).status_code == 400
    client.post(f"/teach/lessons/{kit.video.id}/edit", data={"title": "视频课（修订）"})
    db.session.expire_all()
    lesson = db.session.get(Lesson, kit.video.id)
    assert lesson.title == "视频课（修订）" and lesson.required is False
    r = client.post(f"/teach/lessons/{kit.video.id}/edit", data={"title": "  ", "required": "y"}, follow_redirects=True)
    assert "未修改" in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Lesson, kit.video.id).title == "视频课（修订）"


def test_sections_rename_reorder_and_delete_only_when_empty(teacher):
    kit, client = teacher
    second = courses.add_section(kit.author, kit.course, "第二讲")
    db.session.commit()
    client.post(f"/teach/sections/{second.id}/move", data={"direction": "up"})
    db.session.expire_all()
    assert [
        s.title for s in sorted(db.session.get(type(kit.course), kit.course.id).sections, key=lambda s: s.position)
    ] == ["第二讲", "第一讲"]
    client.post(f"/teach/sections/{second.id}/edit", data={"title": "第二讲 实践"})
    db.session.expire_all()
    assert db.session.get(Section, second.id).title == "第二讲 实践"
    first_id = kit.video.section_id
    r = client.post(f"/teach/sections/{first_id}/delete", follow_redirects=True)
    assert "只能删除空的章节" in r.get_data(as_text=True)
    assert db.session.get(Section, first_id) is not None
    second_id = second.id
    client.post(f"/teach/sections/{second_id}/delete")
    db.session.expire_all()
    assert db.session.get(Section, second_id) is None


def test_delete_without_records_deletes_after_confirmation(teacher):
    kit, client = teacher
    survey_id = kit.survey.id
    page = client.post(f"/teach/lessons/{survey_id}/delete")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="confirm"' in html and "尚无人学习" in html
    assert db.session.get(Lesson, survey_id) is not None
    r = client.post(f"/teach/lessons/{survey_id}/delete", data={"confirmed": "1"}, follow_redirects=True)
    assert "已删除" in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Lesson, survey_id) is None


def test_delete_with_progress_archives_and_keeps_records(teacher, tree, app):
    kit, client = teacher
    learner = UserFactory(username="liming", org_unit=tree.village_a)
    enrolments.enrol(learner, kit.course)
    db.session.commit()
    other = app.test_client()
    login(other, "liming")
    other.get(f"/learn/lessons/{kit.document.id}")  # opens the lesson: a session and progress row
    db.session.expire_all()
    records = db.session.execute(
        select(func.count()).select_from(LessonProgress).where(LessonProgress.lesson_id == kit.document.id)
    ).scalar_one()
    assert records == 1

    html = client.post(f"/teach/lessons/{kit.document.id}/delete").get_data(as_text=True)
    assert "将被归档" in html
    r = client.post(f"/teach/lessons/{kit.document.id}/delete", data={"confirmed": "1"}, follow_redirects=True)
    assert "已归档" in r.get_data(as_text=True)
    db.session.expire_all()
    lesson = db.session.get(Lesson, kit.document.id)
    assert lesson is not None and lesson.archived_at is not None and lesson.required is False
    assert (
        db.session.execute(
            select(func.count()).select_from(LessonProgress).where(LessonProgress.lesson_id == kit.document.id)
        ).scalar_one()
        == 1
    )
    # gone from the outline, the player and the author's list; named among the archived
    assert "阅读材料" not in other.get(f"/courses/{kit.course.id}").get_data(as_text=True)
    assert other.get(f"/learn/lessons/{kit.document.id}").status_code == 404
    teach = client.get(f"/teach/courses/{kit.course.id}").get_data(as_text=True)
    assert f'id="lesson-{kit.document.id}"' not in teach and "已归档" in teach


def test_learner_cannot_change_the_outline(app, tree, teacher):
    kit, _client = teacher
    UserFactory(username="liming", org_unit=tree.village_a)
    db.session.commit()
    learner = app.test_client()
    login(learner, "liming")
    for path, data in (
        (f"/teach/lessons/{kit.video.id}/move", {"direction": "down"}),
        (f"/teach/lessons/{kit.video.id}/edit", {"title": "x"}),
        (f"/teach/lessons/{kit.video.id}/delete", {"confirmed": "1"}),
        (f"/teach/sections/{kit.video.section_id}/delete", {}),
    ):
        assert learner.post(path, data=data).status_code == 403, path
    assert _titles(kit.course.id)[0] == "视频课"
    assert db.session.get(Lesson, kit.video.id).kind == LessonKind.VIDEO
