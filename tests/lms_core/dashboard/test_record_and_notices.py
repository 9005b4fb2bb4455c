"""学习档案 by year, dashboard notices of new 调训 tasks, and the token page hidden from learners."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from lms_core.accounts.models import Role
from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.learning.models import DailyTotal, LearningInterval, LearningSession
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.lms_core.learning.fixtures import build_course

NOW = dt.datetime(2026, 6, 1, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
def kit(app, tree):
    return build_course(tree)


def _study(user, lesson, enrolment, at: dt.datetime, credited_ms: int, sid: str) -> None:
    db.session.add(
        LearningSession(
            id=sid,
            user_id=user.id,
            lesson_id=lesson.id,
            enrolment_id=enrolment.id,
            started_at=at,
            last_beat_at=at,
            credited_ms=credited_ms,
        )
    )
    db.session.flush()  # the interval's foreign key needs the session row first
    db.session.add(
        LearningInterval(
            session_id=sid,
            user_id=user.id,
            lesson_id=lesson.id,
            seq=1,
            wall_start=at,
            wall_end=at + dt.timedelta(milliseconds=credited_ms),
            claimed_ms=credited_ms,
            credited_ms=credited_ms,
        )
    )
    day = (at + dt.timedelta(milliseconds=credited_ms)).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    db.session.add(DailyTotal(user_id=user.id, day=day, credited_ms=credited_ms))


def test_record_by_year_with_earlier_years_reachable(app, client, kit, tree):
    user = UserFactory(username="liming", org_unit=tree.village_a)
    enrolment = enrolments.enrol(user, kit.course)
    # 2025-12-31 23:30 Beijing is still 2025; 2026-01-01 00:30 Beijing is 2026 (though 2025 in UTC)
    _study(user, kit.video, enrolment, dt.datetime(2025, 12, 31, 15, 30, tzinfo=dt.UTC), 600_000, "a" * 32)
    _study(user, kit.video, enrolment, dt.datetime(2025, 12, 31, 16, 30, tzinfo=dt.UTC), 300_000, "b" * 32)
    _study(user, kit.document, enrolment, dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC), 120_000, "c" * 32)
    db.session.commit()
    with time_machine.travel(NOW, tick=False):
        login(client, "liming")
        html = client.get("/record").get_data(as_text=True)
        assert "学习档案" in html
        total = html.split('id="record-total">', 1)[1].split("</p>", 1)[0]
        assert "2026 年认定学时 0.12 小时，共学习 2 次" in total  # 300 s + 120 s = 0.1167 h
        lessons = html.split('id="record-lessons"', 1)[1].split("</section>", 1)[0]
        assert "视频课" in lessons and "5.0 分钟" in lessons and "阅读材料" in lessons and "2.0 分钟" in lessons
        assert 'href="/record?year=2025"' in html
        old = client.get("/record?year=2025").get_data(as_text=True)
        assert "2025 年认定学时 0.17 小时，共学习 1 次" in old and "10.0 分钟" in old
        assert client.get("/record?year=1999").status_code == 404
        assert client.get("/record?year=2027").status_code == 404
        assert client.get("/record?year=abc").status_code == 200
        assert 'id="record-link"' in client.get("/dashboard").get_data(as_text=True)


def test_new_assignment_shows_on_the_dashboard_until_read(app, client, kit, tree):
    admin = UserFactory(username="cadmin", org_unit=tree.county_a)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    UserFactory(username="liming", org_unit=tree.village_a)
    db.session.commit()
    first = enrolments.assign(
        admin, kit.course, tree.county_a, deadline=dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    )
    db.session.commit()
    enrolments.materialize(first.id)
    login(client, "liming")
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'id="notices"' in html and "调训任务：《习近平新时代中国特色社会主义思想专题》" in html
    assert client.post(f"/dashboard/notices/{kit.course.id}/read").status_code == 302
    assert 'id="notices"' not in client.get("/dashboard").get_data(as_text=True)
    # an earlier deadline from a new assignment is news again
    second = enrolments.assign(
        admin, kit.course, tree.village_a, deadline=dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    )
    db.session.commit()
    enrolments.materialize(second.id)
    assert 'id="notices"' in client.get("/dashboard").get_data(as_text=True)
    assert client.post("/dashboard/notices/999999/read").status_code == 404


def test_self_enrolment_is_not_a_notice(app, client, kit, tree):
    UserFactory(username="liming", org_unit=tree.village_a)
    db.session.commit()
    login(client, "liming")
    client.post(f"/courses/{kit.course.id}/enrol")
    assert 'id="notices"' not in client.get("/dashboard").get_data(as_text=True)
    assert client.post(f"/dashboard/notices/{kit.course.id}/read").status_code == 404


@pytest.mark.app_config(LMS_LEARNER_API_TOKENS=False)
def test_token_page_hidden_from_learners_by_default(app, client, tree):
    UserFactory(username="liming", org_unit=tree.village_a)
    teacher = UserFactory(username="teacher", org_unit=tree.city)
    grant(teacher, Role.INSTRUCTOR, tree.city)
    db.session.commit()
    login(client, "liming")
    assert client.get("/account/tokens").status_code == 404
    assert client.post("/account/tokens", data={"name": "x"}).status_code == 404
    assert "/account/tokens" not in client.get("/account/password").get_data(as_text=True)
    other = app.test_client()
    login(other, "teacher")
    assert other.get("/account/tokens").status_code == 200
    assert "/account/tokens" in other.get("/account/password").get_data(as_text=True)


@pytest.mark.app_config(LMS_LEARNER_API_TOKENS=True)
def test_site_setting_opens_the_token_page_to_learners(app, client, tree):
    UserFactory(username="liming", org_unit=tree.village_a)
    db.session.commit()
    login(client, "liming")
    assert client.get("/account/tokens").status_code == 200
