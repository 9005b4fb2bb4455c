"""Learners see their evidence lines and appeal; county auditors review only their county."""

from __future__ import annotations

import datetime as dt

import pytest

from lms_core.accounts.models import Role
from lms_core.events.models import Event
from lms_core.extensions import db
from plugins.anti_idle.evidence import render
from plugins.anti_idle.models import Appeal, DayVerdict, Evidence, Review
from tests.conftest import login
from tests.factories import UserFactory, grant

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])
DAY = dt.date(2026, 5, 10)
R05 = (
    "%(start)s–%(end)s the lesson played in a hidden or minimised window beyond the %(grace)s-second grace, "
    "%(amount)s deducted (R05)"
)


@pytest.fixture
def learner(tree, kit):
    user = UserFactory(username="liming", org_unit=tree.village_a, full_name="李明")
    db.session.commit()
    return user


def switch(client, username: str) -> None:
    client.post("/logout")
    login(client, username)


def make_day(user, verdict: str, *, day=DAY, lesson=None, held_ms=0, deducted_ms=0) -> DayVerdict:
    row = DayVerdict(
        user_id=user.id,
        day=day,
        verdict=verdict,
        claimed_ms=3_600_000,
        credited_ms=3_600_000 - held_ms - deducted_ms,
        held_ms=held_ms,
        deducted_ms=deducted_ms,
        review_score=60 if verdict == "held" else 0,
        rules=["R05"],
        policy_version=0,
        review_state="pending" if verdict == "held" else "none",
    )
    db.session.add(row)
    db.session.flush()
    start = dt.datetime.combine(day, dt.time(6, 2), tzinfo=dt.UTC)  # 14:02 in Beijing
    db.session.add(
        Evidence(
            day_verdict_id=row.id,
            user_id=user.id,
            day=day,
            lesson_id=lesson.id if lesson else None,
            rule="R05",
            action="deduct",
            severity="low",
            span_start=start,
            span_end=start + dt.timedelta(minutes=29),
            amount_ms=28 * 60_000,
            threshold={"grace": 60},
            message=R05,
            params={"grace": 60},
            beat_ids=[1, 2, 3],
        )
    )
    db.session.commit()
    return row


def test_learner_sees_own_lines_in_chinese_on_dashboard_lesson_and_own_page(client, kit, learner, tree):
    day = make_day(learner, "deducted", lesson=kit.video, deducted_ms=28 * 60_000)
    other = UserFactory(username="other", org_unit=tree.village_a)
    db.session.commit()
    make_day(other, "held", day=DAY - dt.timedelta(days=1), held_ms=60_000)
    login(client, "liming")
    line = db.session.query(Evidence).filter_by(day_verdict_id=day.id).one()
    with app_locale(client):
        text = render(line)
    # Translated, in Beijing time, with the rule in words rather than its internal code.
    assert "14:02–14:31" in text and "扣减 28 分钟" in text and "R05" not in text
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert 'id="panel-anti-idle"' in dashboard and text in dashboard
    client.post(f"/courses/{kit.course.id}/enrol")
    lesson = client.get(f"/learn/lessons/{kit.video.id}").get_data(as_text=True)
    assert text in lesson
    mine = client.get("/anti-idle/my").get_data(as_text=True)
    assert text in mine and "申诉" in mine and DAY.isoformat() in mine
    assert (DAY - dt.timedelta(days=1)).isoformat() not in mine, "never another person's day"


class app_locale:  # noqa: N801 - a tiny context manager, used like a function
    """Render in the request locale the client would get (Chinese by default)."""

    def __init__(self, client):
        self.ctx = client.application.test_request_context("/")

    def __enter__(self):
        self.ctx.push()

    def __exit__(self, *exc):
        self.ctx.pop()


def test_learner_appeals_a_deduction_with_a_reason(client, kit, learner):
    day = make_day(learner, "deducted", deducted_ms=28 * 60_000)
    login(client, "liming")
    r = client.post(f"/anti-idle/days/{day.id}/appeal", data={"reason": "当时在用双屏，视频一直在播放"})
    assert r.status_code == 303
    appeal = db.session.query(Appeal).one()
    assert appeal.status == "open" and appeal.reason == "当时在用双屏，视频一直在播放"
    assert db.session.query(Event).filter_by(name="anti_idle.appeal_filed").count() == 1
    again = client.post(f"/anti-idle/days/{day.id}/appeal", data={"reason": "再次申诉一下这个"})
    assert again.status_code == 409 and "已有申诉" in again.get_data(as_text=True)
    assert db.session.query(Appeal).count() == 1


@pytest.mark.parametrize(
    ("reason", "message"), [("", "至少"), ("短", "至少"), ("\x00\x00\x00", "至少"), ("长" * 2001, "最多")]
)
def test_bad_reasons_get_a_chinese_400(client, kit, learner, reason, message):
    day = make_day(learner, "held", held_ms=60_000)
    login(client, "liming")
    r = client.post(f"/anti-idle/days/{day.id}/appeal", data={"reason": reason})
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    assert db.session.query(Appeal).count() == 0


def test_cannot_appeal_a_credited_day_or_someone_elses(client, kit, learner, tree):
    credited = make_day(learner, "credited")
    other = UserFactory(username="other", org_unit=tree.village_a)
    db.session.commit()
    theirs = make_day(other, "held", day=DAY - dt.timedelta(days=1), held_ms=60_000)
    login(client, "liming")
    assert client.post(f"/anti-idle/days/{credited.id}/appeal", data={"reason": "我想申诉这一天"}).status_code == 409
    assert client.post(f"/anti-idle/days/{theirs.id}/appeal", data={"reason": "我想申诉这一天"}).status_code == 404
    assert client.post("/anti-idle/days/99999999/appeal", data={"reason": "我想申诉这一天"}).status_code == 404
    assert db.session.query(Appeal).count() == 0


@pytest.fixture
def auditors(tree):
    a = UserFactory(username="audit_a", org_unit=tree.county_a, full_name="南岭审核员")
    grant(a, Role.AUDITOR, tree.county_a)
    b = UserFactory(username="audit_b", org_unit=tree.county_b, full_name="青山审核员")
    grant(b, Role.AUDITOR, tree.county_b)
    db.session.commit()
    return a, b


def test_review_list_is_scoped_to_the_auditors_county(client, kit, learner, auditors, tree):
    held = make_day(learner, "held", held_ms=30 * 60_000)
    elsewhere = UserFactory(username="far", org_unit=tree.town_b, full_name="石岗学员")
    db.session.commit()
    make_day(elsewhere, "held", held_ms=60_000)
    login(client, "audit_a")
    page = client.get("/anti-idle/review").get_data(as_text=True)
    assert "李明" in page and "石岗学员" not in page and f'id="review-{held.id}"' in page
    assert "待审核学时与申诉" in client.get("/admin/users").get_data(as_text=True)
    switch(client, "audit_b")
    page = client.get("/anti-idle/review").get_data(as_text=True)
    assert "李明" not in page and "石岗学员" in page
    r = client.post(f"/anti-idle/review/days/{held.id}", data={"decision": "post", "reason": "已核实为本人学习"})
    assert r.status_code == 404, "another county's day is not even revealed"
    assert db.session.query(Review).count() == 0


def test_auditor_posts_a_held_day_and_closes_its_appeal(client, kit, learner, auditors):
    held = make_day(learner, "held", held_ms=30 * 60_000)
    login(client, "liming")
    client.post(f"/anti-idle/days/{held.id}/appeal", data={"reason": "那天在党校集中学习"})
    switch(client, "audit_a")
    missing = client.post(f"/anti-idle/review/days/{held.id}", data={"decision": "post", "reason": ""})
    assert missing.status_code == 400 and "至少" in missing.get_data(as_text=True)
    wrong = client.post(f"/anti-idle/review/days/{held.id}", data={"decision": "uphold", "reason": "核实无误的记录"})
    assert wrong.status_code == 400
    assert db.session.query(Review).count() == 0
    r = client.post(f"/anti-idle/review/days/{held.id}", data={"decision": "post", "reason": "已核实为本人学习"})
    assert r.status_code == 303
    review = db.session.query(Review).one()
    assert review.decision == "post" and review.reason == "已核实为本人学习" and review.seconds == 1800
    db.session.expire_all()
    assert db.session.get(DayVerdict, held.id).review_state == "posted"
    appeal = db.session.query(Appeal).one()
    assert appeal.status == "upheld" and appeal.decision_reason == "已核实为本人学习"
    assert db.session.query(Event).filter_by(name="anti_idle.day_reviewed").count() == 1
    again = client.post(f"/anti-idle/review/days/{held.id}", data={"decision": "void", "reason": "改变主意了的"})
    assert again.status_code == 409
    assert f'id="review-{held.id}"' not in client.get("/anti-idle/review").get_data(as_text=True)


def test_auditor_voids_a_held_day(client, kit, learner, auditors):
    held = make_day(learner, "held", held_ms=30 * 60_000)
    login(client, "audit_a")
    r = client.post(f"/anti-idle/review/days/{held.id}", data={"decision": "void", "reason": "脚本代刷，证据充分"})
    assert r.status_code == 303
    db.session.expire_all()
    assert db.session.get(DayVerdict, held.id).review_state == "voided"
    assert db.session.query(Review).one().decision == "void"


def test_auditor_decides_an_appeal_against_a_deduction(client, kit, learner, auditors):
    day = make_day(learner, "deducted", deducted_ms=28 * 60_000)
    login(client, "liming")
    client.post(f"/anti-idle/days/{day.id}/appeal", data={"reason": "我一直在看，没有切换页面"})
    switch(client, "audit_a")
    page = client.get("/anti-idle/review").get_data(as_text=True)
    assert "我一直在看" in page and "驳回申诉" in page
    r = client.post(f"/anti-idle/review/days/{day.id}", data={"decision": "reject", "reason": "后台播放记录清楚"})
    assert r.status_code == 303
    appeal = db.session.query(Appeal).one()
    assert appeal.status == "rejected" and appeal.decided_by_id == auditors[0].id
    switch(client, "liming")
    mine = client.get("/anti-idle/my").get_data(as_text=True)
    assert "已驳回" in mine and "后台播放记录清楚" in mine


def test_learners_cannot_open_the_review_list(client, kit, learner):
    login(client, "liming")
    assert client.get("/anti-idle/review").status_code == 403
