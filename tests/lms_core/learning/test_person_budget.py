"""The wall-clock budget belongs to the person: tabs, devices, lessons and bursts earn real time once.

These hold with no plugin enabled (the core's own rule); the anti-idle plugin adds
its rules on top.
"""

from __future__ import annotations

import datetime as dt
import threading
from functools import partial

import pytest
import time_machine
from sqlalchemy import func

from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.learning import services
from lms_core.learning.assessment import Verdict
from lms_core.learning.models import LearningInterval, LessonProgress
from lms_core.pluginhost import hookimpl
from tests.factories import UserFactory
from tests.lms_core.apps import together
from tests.lms_core.learning.test_beats import T0, beat, open_session

S = dt.timedelta(seconds=1)


@pytest.fixture
def learner(kit, tree):
    user = UserFactory(org_unit=tree.village_a, full_name="王芳")
    enrolments.enrol(user, kit.course)
    db.session.commit()
    return user


def credited(user) -> int:
    return int(
        db.session.query(func.coalesce(func.sum(LearningInterval.credited_ms), 0))
        .filter(LearningInterval.user_id == user.id)
        .scalar()
    )


def test_six_tabs_of_one_lesson_earn_real_time_once(kit, learner):
    tabs = [open_session(learner, kit.video) for _ in range(6)]
    # each tab claims its own 5 s slice every 5 s, for 30 s
    for step in range(1, 7):
        for n, tab in enumerate(tabs):
            at = T0 + step * 5 * S + n * dt.timedelta(milliseconds=10)
            beat(tab, learner, at, seq=step, segments=[[5 * (step - 1) + n * 5, 5 * step + n * 5]], position=5 * step)
    elapsed_ms = 30_000 + 50
    assert credited(learner) <= elapsed_ms + 1000


def test_a_second_device_overlapping_is_not_credited_twice(kit, learner):
    phone, pc = open_session(learner, kit.video), open_session(learner, kit.video, at=T0 + 3 * S)
    beat(phone, learner, T0 + 10 * S, seq=1, segments=[[0, 10]], position=10)
    # the PC took over at 3 s and claims 3..10 of real time too (7 s overlap)
    beat(pc, learner, T0 + 10 * S, seq=1, segments=[[10, 17]], position=17)
    assert credited(learner) <= 10_000 + 1000  # the overlap earns at most the one-second tolerance
    beat(pc, learner, T0 + 20 * S, seq=2, segments=[[17, 27]], position=27)
    assert 20_000 - 1000 <= credited(learner) <= 20_000 + 1000  # after the handoff the PC earns in full


def test_two_lessons_at_once_earn_once(kit, learner):
    video, doc = open_session(learner, kit.video), open_session(learner, kit.document)
    for i in range(1, 7):
        beat(video, learner, T0 + 10 * i * S, seq=i, segments=[[10 * (i - 1), 10 * i]], position=10 * i)
        beat(doc, learner, T0 + 10 * i * S, seq=i, visible_ms=10_000)
    assert credited(learner) <= 60_000 + 1000
    read = db.session.query(LessonProgress).filter_by(user_id=learner.id, lesson_id=kit.document.id).one().read_ms
    assert read <= 1000


def test_document_in_six_tabs_reads_real_time_once(kit, learner):
    tabs = [open_session(learner, kit.document) for _ in range(6)]
    for step in range(1, 4):
        for tab in tabs:
            beat(tab, learner, T0 + 2 * step * S, seq=step, visible_ms=2000)
    assert credited(learner) <= 6000 + 1000
    done, _ = services.course_counts(learner.id, kit.course.id)
    assert done == 0  # 30 s of reading are required; 6 s of real time cannot complete it


def test_a_burst_of_beats_earns_the_tolerance_once(kit, learner):
    s = open_session(learner, kit.video)
    beat(s, learner, T0 + 10 * S, seq=1, segments=[[0, 10]], position=10)
    for i in range(12):  # 12 beats within ~1 s, each claiming a fresh second
        at = T0 + 10 * S + dt.timedelta(milliseconds=90 * (i + 1))
        beat(s, learner, at, seq=2 + i, segments=[[10 + i, 11 + i]], position=11 + i)
    assert credited(learner) <= 10_000 + 1080 + 1000


def test_pausing_one_tab_leaves_time_to_the_tab_that_plays(kit, learner):
    paused, playing = open_session(learner, kit.video), open_session(learner, kit.video)
    for i in range(1, 7):
        beat(paused, learner, T0 + (10 * i - 5) * S, seq=i, event="heartbeat", position=0)  # nothing claimed
        beat(playing, learner, T0 + 10 * i * S, seq=i, segments=[[10 * (i - 1), 10 * i]], position=10 * i)
    assert credited(learner) == 60_000


class HalveReading:
    @hookimpl
    def lms_assess_interval(self, claim):
        if claim.lesson_kind != "document":
            return None
        ((start, end),) = claim.claimed
        return Verdict("reduce", ((start, start + (end - start) // 2),), reason="half", code="T01")


@pytest.mark.app_config(LMS_PLUGIN_OBJECTS={"halve": HalveReading()})
def test_reading_time_goes_through_the_assessment_hook(kit, learner):
    s = open_session(learner, kit.document)
    r = beat(s, learner, T0 + 10 * S, seq=1, visible_ms=10_000)
    assert r.credited_ms == 5000 and r.verdict == "reduce"
    interval = db.session.query(LearningInterval).one()
    assert interval.claimed_ms == 10_000 and interval.credited_ms == 5000
    assert interval.reasons[-1]["by"] == "halve"
    assert db.session.query(LessonProgress).filter_by(lesson_id=kit.document.id).one().read_ms == 5000


def test_concurrent_tabs_earn_real_time_once(app, kit, learner):
    """On both databases: SQLite has no row locks, so the beat's read takes the database's
    write lock (``BEGIN IMMEDIATE``) where PostgreSQL locks the person's rows."""
    tabs = [open_session(learner, kit.video) for _ in range(4)]
    user_id = learner.id

    def tab_worker(n: int) -> None:
        from lms_core.accounts.models import User

        for step in range(1, 6):
            user = db.session.get(User, user_id)
            services.record_beat(tabs[n].id, user, {"seq": step, "segments": [[0, 10]], "position": 10})
            db.session.commit()

    # At one instant, 10 s after launch, four tabs race five beats each claiming 10 s.
    with time_machine.travel(T0 + 10 * S, tick=False):
        assert together(app, *(partial(tab_worker, n) for n in range(4))) == []
    db.session.expire_all()
    assert credited(learner) <= 10_000 + 1000


@pytest.mark.backends("postgresql")
def test_a_beat_and_a_row_referencing_its_session_do_not_deadlock(app, kit, learner):
    """Another transaction of the person (the player's check poll) holds their clock row, then
    inserts a row that references the session (an attention check: the foreign key's ``FOR KEY
    SHARE`` on the session row). A beat arriving between the two locks its session and progress
    and waits for the clock. With ``FOR UPDATE`` on the session the two waited on each other
    (PostgreSQL's deadlock detector aborted one: a 500 on a beat, seen in
    bench/anti_idle_detection.py); the beat changes no key, so it takes ``FOR NO KEY UPDATE``."""
    from sqlalchemy import text

    from lms_core.accounts.models import User

    tab = open_session(learner, kit.document)
    beat(tab, learner, T0 + 10 * S, seq=1, position=0)  # the person's rows exist: the beat locks all three
    db.session.commit()
    user_id, session_id = learner.id, tab.id
    clock_held = threading.Event()

    def poll() -> None:
        services.person_clock(user_id)
        clock_held.set()
        waiting = 0
        for _ in range(200):  # until the beat waits for the clock
            db.session.execute(text("SELECT pg_stat_clear_snapshot()"))  # else one view per transaction
            waiting = db.session.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            ).scalar_one()
            if waiting:
                break
            threading.Event().wait(0.02)
        assert waiting, "the beat never waited for the clock"
        db.session.execute(text("SELECT 1 FROM learning_sessions WHERE id = :id FOR KEY SHARE"), {"id": session_id})
        db.session.commit()

    def beat_worker() -> None:
        clock_held.wait(10)
        user = db.session.get(User, user_id)
        services.record_beat(session_id, user, {"seq": 2, "position": 0})
        db.session.commit()

    with time_machine.travel(T0 + 20 * S, tick=False):
        assert together(app, poll, beat_worker) == []


def test_one_beat_sent_twice_at_once_is_stored_once(app, kit, learner, monkeypatch):
    """The player's beat and its retry (or the pagehide flush) of the same seq arrive together,
    in two threads of the server. The second reads the session only after the first has
    committed, and is answered as the repeat it is: before, on SQLite (the embedded default,
    ``make run``), it read the rows before the first wrote them, and its raw beat's INSERT broke
    the ledger's ``(session_id, seq)`` key: a 500 to the player."""
    from lms_core.accounts.models import User
    from lms_core.learning import beat_rows
    from lms_core.learning.models import LearningInterval

    tab = open_session(learner, kit.video)
    beat(tab, learner, T0 + 10 * S, seq=1, segments=[[0, 10]], position=10)  # the person's rows exist
    user_id, session_id = learner.id, tab.id
    first_read, second_reading = threading.Event(), threading.Event()
    read = beat_rows.read

    def interleaved(session: str, user: int):  # the first beat holds on after its read
        if first_read.is_set():
            second_reading.set()
            return read(session, user)
        state = read(session, user)
        first_read.set()
        second_reading.wait(10)
        threading.Event().wait(0.3)  # the second, unlocked, would read now
        return state

    monkeypatch.setattr(beat_rows, "read", interleaved)
    results = []

    def send() -> None:
        user = db.session.get(User, user_id)
        results.append(services.record_beat(session_id, user, {"seq": 2, "segments": [[10, 20]], "position": 20}))
        db.session.commit()

    def send_second() -> None:
        first_read.wait(10)
        send()

    with time_machine.travel(T0 + 20 * S, tick=False):
        assert together(app, send, send_second) == []
    assert sorted(r.duplicate for r in results) == [False, True]
    db.session.expire_all()
    assert db.session.query(LearningInterval).filter_by(session_id=session_id).count() == 2
    assert credited(learner) == 20_000
