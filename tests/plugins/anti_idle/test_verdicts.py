"""Day verdicts, their events, the auditors' review, evidence in Chinese, the CLI and the study API."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from flask_babel import force_locale

from lms_core.accounts.models import Role, TokenScope
from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.learning.models import LessonProgress, ProgressStatus
from plugins.anti_idle.evidence import render
from plugins.anti_idle.models import DayVerdict, Evidence, Review
from plugins.anti_idle.verdicts import ReviewError, review_day
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0, S

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])
DAY = dt.date(2026, 5, 10)


def held_day(me):
    """A browser that admits webdriver replays a range (R11 + R16: score 55), then plays the short video."""
    bot = {"webdriver": True}
    lecture = me.open(deliver=LECTURE_BYTES)
    at = me.play(lecture, T0, 30, client=bot)
    for i in range(1, 5):
        me.beat(lecture, at + 10 * i * S, [[20, 30]], client=bot)
    at += 40 * S
    tab = me.open(me.short, at=at, deliver=1000)
    for i in range(1, 11):
        me.beat(tab, at + 10 * i * S, [[10 * (i - 1), 10 * i]], client=bot)
    return me.verdict()


def events(name):
    return [e.payload for e in db.session.query(Event).filter_by(name=name).order_by(Event.id)]


def test_day_assessed_event_has_the_contracted_payload(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 600)
    (payload,) = events("anti_idle.day_assessed")[-1:]
    assert set(payload) == {
        "user_id",
        "day",
        "verdict",
        "credited_seconds",
        "held_seconds",
        "deducted_seconds",
        "policy_version",
        "review_score",
    }
    assert payload["user_id"] == me.user.id and payload["day"] == "2026-05-10"
    assert payload["verdict"] == "credited" and payload["held_seconds"] == 0
    me.recompute()
    assert events("anti_idle.day_assessed")[-1]["credited_seconds"] == 600


def test_recompute_of_an_unchanged_day_publishes_nothing_new(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 120)
    me.recompute()
    count = len(events("anti_idle.day_assessed"))
    me.recompute()
    assert len(events("anti_idle.day_assessed")) == count


def test_a_held_day_holds_completion_until_an_auditor_posts_it(me, tree):
    v = held_day(me)
    assert v.verdict == "held" and v.review_score >= 50 and v.credited_ms == 0
    progress = db.session.query(LessonProgress).filter_by(user_id=me.user.id, lesson_id=me.short.id).one()
    assert progress.coverage_bp >= 9500 and progress.status != ProgressStatus.COMPLETED
    assert events("anti_idle.day_assessed")[-1]["verdict"] == "held"

    auditor = UserFactory(org_unit=tree.county_a)
    grant(auditor, Role.AUDITOR, tree.county_a)
    db.session.commit()
    with pytest.raises(ReviewError):
        review_day(v, "post", auditor, "  ")  # a reason is required
    with time_machine.travel(T0 + dt.timedelta(days=1), tick=False):
        review_day(v, "post", auditor, "本人到场核实，确为本人学习")
        db.session.commit()
    reviewed = events("anti_idle.day_reviewed")[-1]
    assert reviewed == {
        "user_id": me.user.id,
        "day": "2026-05-10",
        "decision": "post",
        "seconds": v.held_ms // 1000,
        "reviewer_id": auditor.id,
        "reason": "本人到场核实，确为本人学习",
    }
    db.session.refresh(progress)
    assert progress.status == ProgressStatus.COMPLETED
    with pytest.raises(ReviewError):
        review_day(v, "void", auditor, "again")  # decided once
    assert db.session.query(Review).count() == 1


def test_an_auditor_of_another_county_cannot_review(me, tree):
    v = held_day(me)
    stranger = UserFactory(org_unit=tree.county_b)
    grant(stranger, Role.AUDITOR, tree.county_b)
    db.session.commit()
    with pytest.raises(ReviewError):
        review_day(v, "void", stranger, "越权")


def test_evidence_lines_read_in_chinese_and_link_the_beats(me, app):
    tabs = [me.open(deliver=LECTURE_BYTES), me.open(me.short, deliver=1000)]
    for i in range(1, 61):  # 10 minutes of two lessons at once, from 09:00 Beijing
        me.beat(tabs[0], T0 + 10 * i * S, [[10 * (i - 1), 10 * i]])
        me.beat(
            tabs[1],
            T0 + 10 * i * S + dt.timedelta(milliseconds=300),
            [[(10 * (i - 1)) % 100, (10 * (i - 1)) % 100 + 10]],
            event="seeked",
        )
    me.recompute()
    line = db.session.query(Evidence).filter_by(rule="R04").one()
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        text = render(line)
    assert text.startswith("09:00–09:10 同时播放 2 个课程，按 1 路计入，扣减 ")
    # The Chinese sentence names the rule in words; its internal code is not shown to cadres.
    assert re.search(r"扣减 \d+ 分( \d+ 秒)?$", text), text
    assert line.rule == "R04"
    assert len(line.beat_ids) >= 60 and 580_000 <= line.amount_ms <= 600_000
    with app.test_request_context(), force_locale("en"):
        assert "2 lessons playing at once, counted as one" in render(line)


def test_cli_recompute_user_day_and_all_since(me, app):
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 300)
    db.session.query(DayVerdict).one()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["lms", "anti-idle", "recompute", "--user", me.user.username, "--day", "2026-05-10"])
    assert result.exit_code == 0, result.output
    assert "1 person-days: credited 1" in result.output
    result = runner.invoke(args=["lms", "anti-idle", "recompute", "--all", "--since", "2026-05-01"])
    assert result.exit_code == 0 and "credited 1" in result.output
    bad = runner.invoke(args=["lms", "anti-idle", "recompute", "--user", "x"])
    assert bad.exit_code != 0
    bad = runner.invoke(args=["lms", "anti-idle", "recompute", "--all", "--since", "5月1日"])
    assert bad.exit_code != 0 and "not a date" in bad.output


def test_study_api_reports_what_will_count(me, client):
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 120)
    login(client, me.user.username)
    body = client.get(f"/api/v1/me/study?lesson={me.lecture.id}").get_json()
    assert body["credited_seconds"] == 120 and body["held_seconds"] == 0
    assert body["verdict"] == "credited" and body["coverage"] == pytest.approx(120 / 3600, abs=1e-4)
    assert body["completion"] == {"status": "in_progress", "completed_at": None, "held": False}
    for bad in ("", "abc", "1e9", "9" * 40, "１"):
        r = client.get(f"/api/v1/me/study?lesson={bad}", headers={"Accept": "application/json"})
        assert r.status_code == 400
    assert client.get("/api/v1/me/study?lesson=999999").status_code == 404


def test_study_api_reports_held_seconds_with_a_bearer_token(me, client):
    from lms_core.accounts import services as accounts

    held_day(me)
    me.recompute()  # the nightly recompute brings every evidence line up to date
    _token, plain = accounts.create_token(me.user, "mobile", scope=TokenScope.READ)  # a read-only app
    db.session.commit()
    r = client.get(f"/api/v1/me/study?lesson={me.short.id}", headers={"Authorization": f"Bearer {plain}"})
    body = r.get_json()
    assert body["verdict"] == "held" and body["held_seconds"] == 100 and body["credited_seconds"] == 0
    assert body["completion"]["held"] is True
    rules = {e["rule"] for e in body["evidence"]}
    assert {"R11", "HOLD"} <= rules  # the lecture's R16 line is on the lecture
    assert all(e["text"] for e in body["evidence"])


def test_an_evidence_span_within_one_minute_shows_its_seconds(app):
    """'09:05–09:05' read as if nothing had lasted: within one minute the times carry seconds."""
    from plugins.anti_idle.evidence import RULES

    def line(start: dt.datetime, end: dt.datetime) -> Evidence:
        return Evidence(
            rule="R14", span_start=start, span_end=end, amount_ms=30_000, message=RULES["R14"].message, params={}
        )

    t = T0 + 5 * 60 * S  # 09:05 Beijing
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert render(line(t, t + 30 * S)).startswith("09:05:00–09:05:30 ")
        assert render(line(t, t + 90 * S)).startswith("09:05–09:06 ")
