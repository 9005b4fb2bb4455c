"""The person's state row (plugins/anti_idle/state.py): one read and one write per beat.

What must not change with it: the online decisions equal the replay from the raw
beats (also when the row is lost or no longer keeps a session or lesson), the day
verdict equals its recompute once folded, and ``GET /api/v1/me/study`` says exactly
what will count before the day verdict row is brought up to date.
"""

from __future__ import annotations

import datetime as dt
import threading
from functools import partial

import pytest
import time_machine
from sqlalchemy import delete, event, func, select

from lms_core.extensions import db
from lms_core.learning import services as learning
from lms_core.learning.models import LearningInterval
from plugins.anti_idle import envelope, state, state_pg
from plugins.anti_idle.models import Beat, DayLesson, DayVerdict, PersonState
from plugins.anti_idle.study import lesson_study
from plugins.anti_idle.verdicts import replay_day, settle
from tests.lms_core.apps import together
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0, S, other_learner

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])
DAY = dt.date(2026, 5, 10)


def _ledger_ms(user_id: int, lesson_id: int) -> int:
    return int(
        db.session.execute(
            select(func.coalesce(func.sum(LearningInterval.credited_ms), 0)).where(
                LearningInterval.user_id == user_id, LearningInterval.lesson_id == lesson_id
            )
        ).scalar_one()
    )


def test_the_study_api_counts_beats_not_yet_folded_into_the_day(me):
    tab = me.open(at=T0, deliver=LECTURE_BYTES)
    me.play(tab, T0, 60)  # the first beat creates the day; the next ones stay in the state row
    online = state.load_unlocked(me.user.id)
    assert online.tally_day == DAY and online.day_tally is not None and online.day_tally["dirty"]
    row = db.session.execute(
        select(DayLesson).where(DayLesson.user_id == me.user.id, DayLesson.lesson_id == me.lecture.id)
    ).scalar_one()
    ledger = _ledger_ms(me.user.id, me.lecture.id)
    assert row.credited_ms < ledger  # the day row lags behind the ledger ...

    before = lesson_study(me.user.id, me.lecture.id)
    assert before["days"][0]["credited_seconds"] == ledger / 1000  # ... the API does not
    assert before["credited_seconds"] == ledger / 1000
    settle(me.user.id)
    db.session.commit()
    db.session.expire_all()
    assert lesson_study(me.user.id, me.lecture.id) == before
    assert state.load_unlocked(me.user.id).day_tally["dirty"] is False


def test_an_honest_beat_mid_day_touches_no_day_row(app, me, monkeypatch):
    tab = me.open(at=T0, deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 30)
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):  # noqa: ANN001, ANN002
        seen.append(statement)

    raw = state_pg.execute

    def count_raw(sql, params, **kw):  # noqa: ANN001, ANN003
        seen.append(sql)  # the PostgreSQL path's statements, sent on the raw connection
        return raw(sql, params, **kw)

    monkeypatch.setattr(state_pg, "execute", count_raw)
    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        me.beat(tab, at + 10 * S, [[30, 40]])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    plugin = [s for s in seen if "anti_idle" in s]
    assert not [s for s in plugin if "anti_idle_day_" in s], plugin
    assert sum("anti_idle_person_states" in s for s in plugin) == 2  # one read, one write
    assert sum("anti_idle_beats" in s for s in plugin) == 1  # the raw beat, nothing read back
    # The checks in the rules' window; on SQLite with the schedule's issuing off (conftest.py)
    # also the person's last check: whether one is due, for the answer's ``check`` (on
    # PostgreSQL the state read brings it).
    pg = db.engine.dialect.name == "postgresql"
    assert sum("anti_idle_checks" in s for s in plugin) == (1 if pg else 2), plugin
    if db.engine.dialect.name == "postgresql":
        # The checks ride on the state read, the raw beat on the state's upsert.
        assert len(plugin) == 2, plugin


def test_a_lost_state_row_is_rebuilt_from_the_beats(me):
    tab = me.open(at=T0, deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 60)
    db.session.execute(delete(PersonState).where(PersonState.user_id == me.user.id))
    db.session.commit()
    other = me.open(at=at, deliver=LECTURE_BYTES)
    at = me.play(tab, at, 40)
    me.play(other, at, 40, from_pos=0)
    me.recompute()  # every online decision equals the replay; the day equals its recompute


def test_sessions_and_lessons_beyond_the_row_are_read_from_their_beats(me):
    at = T0
    tabs = []
    for _ in range(state.SESSIONS_KEPT + 3):
        tab = me.open(at=at, deliver=LECTURE_BYTES)
        at = me.play(tab, at, 20, from_pos=0)
        tabs.append(tab)
    doc = me.open(me.document, at=at)
    me.beat(doc, at + 10 * S, None, visible_ms=10_000)
    at += 20 * S
    assert tabs[0].session.id not in state.load_unlocked(me.user.id).sessions  # no longer kept
    at = me.play(tabs[0], at, 20)
    assert tabs[0].session.id in state.load_unlocked(me.user.id).sessions
    v = me.recompute()
    assert v.claimed_ms > 0
    assert replay_day(me.user.id, DAY).mismatches == []


@pytest.mark.backends("postgresql")
def test_concurrent_beats_of_one_person_and_of_two_people_on_postgresql(app, me, tree, kit):
    """Two beats of one person at once are serialised (one credited stream, the row not lost);
    two people at once do not wait on each other's rows."""
    her = other_learner(tree, me)
    tabs = {
        "me-1": (me, me.open(at=T0, deliver=LECTURE_BYTES)),
        "me-2": (me, me.open(at=T0, deliver=LECTURE_BYTES)),
        "her": (her, her.open(at=T0, deliver=LECTURE_BYTES)),
    }
    barrier = threading.Barrier(len(tabs))

    def worker(name: str, step: int) -> None:
        from lms_core.accounts.models import User

        learner, tab = tabs[name]
        body = {
            "seq": step,
            "event": "heartbeat",
            "segments": [[10 * (step - 1), 10 * step]],
            "position": 10 * step,
            "client": {"visibility": "visible", "rate": 1, "muted": False},
        }
        user = db.session.get(User, learner.user.id)
        barrier.wait(timeout=30)
        with envelope.signed(tab.session.id, body):
            learning.record_beat(tab.session.id, user, body)
        db.session.commit()

    for step in (1, 2, 3):
        with time_machine.travel(T0 + 10 * step * S, tick=False):
            assert together(app, *(partial(worker, name, step) for name in tabs)) == []
    db.session.expire_all()
    for learner, sessions in ((me, ("me-1", "me-2")), (her, ("her",))):
        beats = db.session.execute(select(func.count()).where(Beat.user_id == learner.user.id)).scalar_one()
        assert beats == 3 * len(sessions)
        row = state.load_unlocked(learner.user.id)
        assert {tabs[n][1].session.id for n in sessions} <= set(row.sessions)
        assert row.day_tally is not None and row.day_tally["tally"]["beats"] == 3 * len(sessions)
        assert replay_day(learner.user.id, DAY).mismatches == []
        learner.recompute()
    # One person, two tabs: one stream (real time once), whichever beat came first.
    assert me.credited_s() <= 30 + 1
    assert db.session.query(DayVerdict).filter_by(user_id=her.user.id).one().credited_ms == 30_000
