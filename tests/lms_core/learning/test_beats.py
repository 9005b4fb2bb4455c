"""Heartbeats: what is credited, resume, completion, idempotency, bad input."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from lms_core.enrolments import services as enrolments
from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.learning import services
from lms_core.learning.assessment import Verdict
from lms_core.learning.models import LearningInterval, LessonProgress, PersonClock, ProgressStatus
from lms_core.pluginhost import hookimpl
from tests.factories import UserFactory

T0 = dt.datetime(2026, 5, 10, 1, 0, tzinfo=dt.UTC)


@pytest.fixture
def learner(kit, tree):
    user = UserFactory(org_unit=tree.village_a, full_name="李明")
    enrolments.enrol(user, kit.course)
    db.session.commit()
    return user


def open_session(user, lesson, at=T0):
    with time_machine.travel(at, tick=False):
        enrolment = services.enrolment_for(user, lesson.course_id)
        session = services.start_session(user, lesson, enrolment)
        db.session.commit()
    return session


def beat(session, user, at, **body):
    body.setdefault("event", "heartbeat")
    with time_machine.travel(at, tick=False):
        result = services.record_beat(session.id, user, body)
        db.session.commit()
    return result


def test_honest_viewing_is_credited_and_resumes(kit, learner):
    s = open_session(learner, kit.video)
    r = beat(s, learner, T0 + dt.timedelta(seconds=10), seq=1, segments=[[0, 10]], position=10)
    assert r.accepted and r.credited_ms == 10_000
    assert r.coverage_bp == 1000  # 10 s of a 100 s video
    progress = db.session.query(LessonProgress).filter_by(user_id=learner.id, lesson_id=kit.video.id).one()
    assert progress.position_ms == 10_000 and progress.status == ProgressStatus.IN_PROGRESS


def test_claim_beyond_server_time_is_cut_to_wall_clock(kit, learner):
    s = open_session(learner, kit.video)
    # 10 s of server time, but 60 s of media claimed (16x playback or a forged beat)
    r = beat(s, learner, T0 + dt.timedelta(seconds=10), seq=1, segments=[[0, 60]], position=60)
    assert r.credited_ms == 11_000  # 10 s + 1 s jitter tolerance
    assert r.verdict == "reduce"
    interval = db.session.query(LearningInterval).one()
    assert interval.claimed_ms == 60_000 and interval.credited_ms == 11_000
    assert interval.reasons[0]["by"] == "core"


def test_rewatching_the_same_minute_does_not_raise_coverage(kit, learner):
    s = open_session(learner, kit.video)
    for i in range(1, 4):
        r = beat(s, learner, T0 + dt.timedelta(seconds=10 * i), seq=i, segments=[[0, 10]], position=10)
    assert r.coverage_bp == 1000


def test_completion_needs_threshold_coverage_then_course_progresses(kit, learner):
    s = open_session(learner, kit.video)
    at = T0
    for i in range(1, 10):  # 90 s watched: below 95 %
        at += dt.timedelta(seconds=10)
        r = beat(s, learner, at, seq=i, segments=[[10 * (i - 1), 10 * i]], position=10 * i)
    assert not r.lesson_completed and r.coverage_bp == 9000
    at += dt.timedelta(seconds=10)
    r = beat(s, learner, at, seq=10, event="ended", segments=[[90, 100]], position=100)
    assert r.lesson_completed and r.coverage_bp == 10_000
    names = [e.name for e in db.session.query(Event).order_by(Event.id)]
    assert "lesson.completed" in names and "video.completed" in names and "study.interval_credited" in names
    done, total = services.course_counts(learner.id, kit.course.id)
    assert (done, total) == (1, 3)  # survey is optional


def test_skipping_ahead_does_not_complete(kit, learner):
    s = open_session(learner, kit.video)
    beat(
        s,
        learner,
        T0 + dt.timedelta(seconds=5),
        seq=1,
        event="seeked",
        segments=[[0, 5]],
        position=99,
        time_from=5,
        time_to=99,
    )
    r = beat(s, learner, T0 + dt.timedelta(seconds=6), seq=2, event="ended", segments=[[99, 100]], position=100)
    assert not r.lesson_completed
    assert r.coverage_bp == 600


def test_duplicate_seq_is_idempotent(kit, learner):
    s = open_session(learner, kit.video)
    beat(s, learner, T0 + dt.timedelta(seconds=10), seq=1, segments=[[0, 10]], position=10)
    again = beat(s, learner, T0 + dt.timedelta(seconds=11), seq=1, segments=[[0, 10]], position=10)
    assert again.duplicate and not again.accepted
    assert db.session.query(LearningInterval).count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"seq": 0},
        {"seq": "1"},
        {"seq": 1, "event": "teleport"},
        {"seq": 1, "segments": "0-10"},
        {"seq": 1, "segments": [[0, "x"]]},
        {"seq": 1, "position": -3},
        {"seq": 1, "segments": [[0, 1]] * 51},
        {"seq": True},
    ],
)
def test_malformed_beats_rejected_and_nothing_stored(kit, learner, body):
    s = open_session(learner, kit.video)
    with pytest.raises(services.BeatError):
        services.record_beat(s.id, learner, body)
    db.session.rollback()
    assert db.session.query(LearningInterval).count() == 0


def test_other_users_session_is_404(kit, learner, tree):
    s = open_session(learner, kit.video)
    intruder = UserFactory(org_unit=tree.village_a)
    db.session.commit()
    with pytest.raises(services.BeatError) as err:
        services.record_beat(s.id, intruder, {"seq": 1})
    assert err.value.status == 404


def test_terminated_session_refuses_beats(kit, learner):
    s = open_session(learner, kit.video)
    beat(s, learner, T0 + dt.timedelta(seconds=3), seq=1, event="terminate", segments=[[0, 3]], position=3)
    with pytest.raises(services.BeatError) as err:
        services.record_beat(s.id, learner, {"seq": 2})
    assert err.value.status == 409


def test_an_ended_session_is_409_also_before_the_persons_first_beat(kit, learner):
    # The beat's rows are read in one statement that needs the person's clock row; a person
    # with none yet (no beat ever) must still get the ended session's 409, not a 404.
    s = open_session(learner, kit.video)
    s.ended_at = T0 + dt.timedelta(seconds=1)
    db.session.commit()
    with pytest.raises(services.BeatError) as err:
        services.record_beat(s.id, learner, {"seq": 1})
    assert err.value.status == 409
    assert db.session.get(PersonClock, learner.id) is None


def test_document_reading_time_completes(kit, learner):
    s = open_session(learner, kit.document)
    at = T0
    for i in range(1, 4):
        at += dt.timedelta(seconds=10)
        r = beat(s, learner, at, seq=i, visible_ms=10_000)
    assert r.lesson_completed


def test_document_visible_time_capped_by_server_clock(kit, learner):
    s = open_session(learner, kit.document)
    r = beat(s, learner, T0 + dt.timedelta(seconds=5), seq=1, visible_ms=600_000)
    assert r.credited_ms == 6_000


class Strict:
    """A tracking plugin that voids everything while the tab is hidden."""

    @hookimpl
    def lms_assess_interval(self, claim):
        if claim.client.get("visibility") == "hidden":
            return Verdict("void", (), reason="tab hidden", code="R06")
        return None


class Hold:
    @hookimpl
    def lms_completion_verdict(self, user, lesson, progress):
        return False


@pytest.mark.app_config(LMS_PLUGIN_OBJECTS={"strict": Strict()})
def test_plugin_verdict_is_most_restrictive_and_recorded(kit, learner):
    s = open_session(learner, kit.video)
    r = beat(
        s,
        learner,
        T0 + dt.timedelta(seconds=10),
        seq=1,
        segments=[[0, 10]],
        position=10,
        client={"visibility": "hidden"},
    )
    assert r.credited_ms == 0 and r.verdict == "void"
    interval = db.session.query(LearningInterval).one()
    assert interval.reasons == [
        {"by": "strict", "verdict": "void", "code": "R06", "credited_ms": 0, "reason": "tab hidden"}
    ]


@pytest.mark.app_config(LMS_PLUGIN_OBJECTS={"hold": Hold()})
def test_completion_waits_for_plugin(kit, learner):
    s = open_session(learner, kit.document)
    at = T0
    for i in range(1, 5):
        at += dt.timedelta(seconds=10)
        r = beat(s, learner, at, seq=i, visible_ms=10_000)
    assert not r.lesson_completed


def test_year_hours_use_shanghai_calendar(kit, learner):
    # 2026-12-31 16:30 UTC is already 2027-01-01 in Beijing
    late = dt.datetime(2026, 12, 31, 16, 30, tzinfo=dt.UTC)
    s = open_session(learner, kit.video, at=late)
    beat(s, learner, late + dt.timedelta(seconds=10), seq=1, segments=[[0, 10]], position=10)
    assert services.credited_ms_in_year(learner.id, 2027) == 10_000
    assert services.credited_ms_in_year(learner.id, 2026) == 0


def test_daily_totals_match_the_ledger(kit, learner):
    from sqlalchemy import func

    from lms_core.learning.models import DailyTotal

    s = open_session(learner, kit.video)
    at = T0
    for i in range(1, 6):
        at += dt.timedelta(seconds=10)
        beat(s, learner, at, seq=i, segments=[[10 * (i - 1), 10 * i]], position=10 * i)
    ledger = db.session.query(func.sum(LearningInterval.credited_ms)).scalar()
    assert db.session.query(func.sum(DailyTotal.credited_ms)).scalar() == ledger == 50_000
    assert services.credited_ms_in_year(learner.id, 2026) == ledger
