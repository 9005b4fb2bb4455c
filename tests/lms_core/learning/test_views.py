"""The learner's and the instructor's pages over HTTP."""

from __future__ import annotations

import re

import pytest

from lms_core.accounts.models import Role
from lms_core.courses.models import Course, Lesson
from lms_core.enrolments.models import Enrolment
from lms_core.extensions import db
from lms_core.learning.models import LearningSession
from lms_core.quizzes.models import Attempt
from tests.conftest import login
from tests.factories import UserFactory, grant


@pytest.fixture
def learner(kit, tree):
    user = UserFactory(username="liming", org_unit=tree.village_a, full_name="李明")
    db.session.commit()
    return user


def test_catalogue_and_enrol_flow(client, kit, learner):
    login(client, "liming")
    page = client.get("/courses/?q=新时代").get_data(as_text=True)
    assert kit.course.title in page
    detail = client.get(f"/courses/{kit.course.id}")
    assert detail.status_code == 200 and 'id="enrol"' in detail.get_data(as_text=True)
    assert client.get(f"/learn/lessons/{kit.video.id}").status_code == 302  # not enrolled yet
    assert client.post(f"/courses/{kit.course.id}/enrol").status_code == 302
    assert db.session.query(Enrolment).filter_by(user_id=learner.id).count() == 1
    dash = client.get("/dashboard").get_data(as_text=True)
    assert kit.course.title in dash


def test_video_lesson_page_creates_session_and_signed_url(client, kit, learner):
    login(client, "liming")
    client.post(f"/courses/{kit.course.id}/enrol")
    page = client.get(f"/learn/lessons/{kit.video.id}").get_data(as_text=True)
    session = db.session.query(LearningSession).filter_by(user_id=learner.id).one()
    assert f'data-session="{session.id}"' in page
    assert re.search(r'<video id="player"[^>]+src="/media/', page)
    assert "playsinline" in page and "player.js" in page


def test_beat_endpoint_json_and_errors(client, kit, learner):
    login(client, "liming")
    client.post(f"/courses/{kit.course.id}/enrol")
    client.get(f"/learn/lessons/{kit.video.id}")
    sid = db.session.query(LearningSession).one().id
    r = client.post(f"/learn/sessions/{sid}/beat", json={"seq": 1, "event": "play", "segments": [], "position": 0})
    assert r.status_code == 200 and r.get_json()["accepted"] is True
    bad = client.post(f"/learn/sessions/{sid}/beat", json={"seq": "x"})
    assert bad.status_code == 400 and "序号" in bad.get_json()["error"]
    assert client.post(f"/learn/sessions/{sid}/beat", data="not json").status_code == 400
    assert client.post("/learn/sessions/nope/beat", json={"seq": 2}).status_code == 404


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_beat_requires_csrf_token(client, kit, learner):
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/login", data={"username": "liming", "password": "Passw0rd!", "csrf_token": token})
    enrol = client.get(f"/courses/{kit.course.id}").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', enrol).group(1)
    client.post(f"/courses/{kit.course.id}/enrol", data={"csrf_token": token})
    client.get(f"/learn/lessons/{kit.video.id}")
    sid = db.session.query(LearningSession).one().id
    assert client.post(f"/learn/sessions/{sid}/beat", json={"seq": 1}).status_code == 400
    ok = client.post(f"/learn/sessions/{sid}/beat", json={"seq": 1}, headers={"X-CSRFToken": token})
    assert ok.status_code == 200


def test_quiz_page_and_submission(client, kit, learner):
    login(client, "liming")
    client.post(f"/courses/{kit.course.id}/enrol")
    page = client.get(f"/learn/lessons/{kit.quiz.id}").get_data(as_text=True)
    attempt = db.session.query(Attempt).one()
    assert "1+1=?" in page and "correct" not in page
    from lms_core.quizzes.models import Question

    form = {}
    for qid in attempt.question_order:
        q = db.session.get(Question, qid)
        form[f"q_{qid}"] = [str(i) for i in q.correct]
    r = client.post(f"/learn/lessons/{kit.quiz.id}/quiz/{attempt.id}", data=form, follow_redirects=True)
    assert r.status_code == 200
    db.session.expire_all()
    assert db.session.get(Attempt, attempt.id).passed


def test_authoring_flow_over_http(client, tree, app):
    author = UserFactory(username="author", org_unit=tree.city)
    grant(author, Role.INSTRUCTOR, tree.city)
    db.session.commit()
    login(client, "author")
    r = client.post("/teach/courses", data={"code": "T9", "title": "新课程", "hours": "1.5", "topic": "党史"})
    course = db.session.query(Course).filter_by(code="T9").one()
    assert r.status_code == 302 and course.nominal_hours_centi == 150
    client.post(f"/teach/courses/{course.id}/sections", data={"title": "第一节"})
    db.session.expire_all()
    section_id = db.session.get(Course, course.id).sections[0].id
    r = client.post(
        f"/teach/sections/{section_id}/lessons",
        data={"title": "测验", "kind": "quiz", "required": "y", "passing_score_pct": "60", "max_attempts": "0"},
    )
    lesson = db.session.query(Lesson).filter_by(course_id=course.id).one()
    r = client.post(
        f"/teach/lessons/{lesson.id}/questions",
        data={"kind": "single", "text": "问题", "options": "甲\n乙", "correct": "2", "points": "1"},
    )
    assert r.status_code == 302
    bad = client.post(
        f"/teach/lessons/{lesson.id}/questions",
        data={"kind": "single", "text": "问题", "options": "甲\n乙", "correct": "5", "points": "1"},
    )
    assert bad.status_code == 400
    assert client.post(f"/teach/courses/{course.id}/publish", data={"published": "1"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Course, course.id).published


def test_video_lesson_without_file_rejected(client, tree, app):
    author = UserFactory(username="author2", org_unit=tree.city)
    grant(author, Role.INSTRUCTOR, tree.city)
    db.session.commit()
    login(client, "author2")
    client.post("/teach/courses", data={"code": "T8", "title": "课", "hours": "1"})
    course = db.session.query(Course).filter_by(code="T8").one()
    client.post(f"/teach/courses/{course.id}/sections", data={"title": "一"})
    db.session.expire_all()
    sid = db.session.get(Course, course.id).sections[0].id
    r = client.post(f"/teach/sections/{sid}/lessons", data={"title": "视频", "kind": "video"})
    assert r.status_code == 303
    assert db.session.query(Lesson).count() == 0


def test_learner_cannot_open_teach_pages(client, kit, learner):
    login(client, "liming")
    assert client.get("/teach/").status_code == 403
    assert client.get(f"/teach/courses/{kit.course.id}").status_code == 403


def test_assign_form_validation(client, kit, tree):
    admin = UserFactory(username="cadmin", org_unit=tree.county_a)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    login(client, "cadmin")
    url = f"/courses/{kit.course.id}/assign"
    assert client.post(url, data={"org_code": "nope", "deadline": "x"}).status_code == 400
    outside = client.post(
        f"/courses/{kit.course.id}/assign", data={"org_code": tree.county_b.code, "deadline": "2099-01-01"}
    )
    assert outside.status_code == 400 and "青山县" in outside.get_data(as_text=True)
    ok = client.post(url, data={"org_code": tree.county_a.code, "deadline": "2099-01-01"})
    assert ok.status_code == 303


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_lesson_upload_form_still_checks_csrf(client, tree, app):
    author = UserFactory(username="author3", org_unit=tree.city)
    grant(author, Role.INSTRUCTOR, tree.city)
    from lms_core.courses import services as courses

    course = courses.create_course(author, code="T7", title="课")
    section = courses.add_section(author, course, "一")
    db.session.commit()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/login", data={"username": "author3", "password": "Passw0rd!", "csrf_token": token})
    r = client.post(f"/teach/sections/{section.id}/lessons", data={"title": "测验", "kind": "quiz"})
    assert r.status_code == 303  # refused: the form's own CSRF check failed
    assert db.session.query(Lesson).count() == 0
    page = client.get(f"/teach/courses/{course.id}").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    ok = client.post(
        f"/teach/sections/{section.id}/lessons", data={"title": "测验", "kind": "quiz", "csrf_token": token}
    )
    assert ok.status_code == 302
    assert db.session.query(Lesson).count() == 1
