"""A beat sent again after its session ended: the answer of any duplicate, on every path.

The player's queue hand-over (the next lesson page re-sends a gone page's queue, its
``terminate`` included, when the answer was lost with the page) and any client's retry after
a lost answer send a beat the server already stored. If the session ended in between, that
beat used to get a 409 (the "ended" check came before the "duplicate" one). It must get the
answer of any repeat or replay (acknowledged as a duplicate, nothing credited; a replay kept as
evidence, the session's own ``terminate`` again not: the player re-sends it after nearly every
page), while a *new* beat of an ended session still gets its 409. Checked on the service
(the general and the straight path), the lean WSGI front and the ASGI front against the
Flask view, and the group path (round by round on PostgreSQL) against one by one, on both
databases.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import time_machine

from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.learning import services
from lms_core.learning.models import LearningInterval, LearningSession, LessonProgress, PersonClock, RefusedBeat
from plugins.anti_idle.models import Beat
from tests.lms_core.learning.test_beat_asgi import asgi_request, people, signed
from tests.lms_core.learning.test_beat_front import Player, beats, rows
from tests.lms_core.learning.test_beat_group import assert_same_rows, chunks_of, play
from tests.lms_core.learning.test_beats import T0 as T1
from tests.lms_core.learning.test_beats import beat, learner, open_session  # noqa: F401 - ``learner`` is a fixture

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)


def after_the_end() -> list[tuple[dt.datetime, dict[str, Any]]]:
    """After ``beats()``' terminate (seq 16): the terminate again (the hand-over), the last
    heartbeat again (a replay of a stored beat), then a new beat (seq 17): refused, 409."""
    played = beats()
    at = played[-1][0]
    terminate, last_heartbeat = played[-1][1], played[-2][1]
    assert terminate["event"] == "terminate" and terminate["seq"] == 16 and last_heartbeat["seq"] == 15
    return [
        (at + dt.timedelta(seconds=2), terminate),
        (at + dt.timedelta(seconds=3), last_heartbeat),
        (at + dt.timedelta(seconds=4), {"event": "heartbeat", "seq": 17, "segments": [[65, 70]], "position": 70}),
    ]


#: The answers to ``after_the_end()``: two duplicates, then the ended session's 409.
AFTER_THE_END = [(200, True), (200, True), (409, None)]


def _status_and_duplicate(status: int, content: bytes) -> tuple[int, bool | None]:
    return status, json.loads(content).get("duplicate") if status == 200 else None


def _refusals(session_id: str) -> list[tuple[int, str]]:
    db.session.expire_all()
    refused = db.session.query(RefusedBeat).filter_by(session_id=session_id).order_by(RefusedBeat.id)
    return [(r.seq, r.reason) for r in refused]


# -- the service --------------------------------------------------------------------------


def _progress_and_clock(user: Any) -> tuple[int, int, dt.datetime]:
    progress = db.session.query(LessonProgress).filter_by(user_id=user.id).one()
    clock = db.session.get(PersonClock, user.id)
    assert clock is not None
    return progress.coverage_bp, progress.position_ms, clock.credited_until


@pytest.mark.app_config(LMS_PLUGINS=[])  # the core alone (test_beats.py's setting)
def test_a_stored_beat_of_an_ended_session_is_a_duplicate_and_a_new_one_is_409(kit, learner):  # noqa: F811
    s = open_session(learner, kit.video)
    beat(s, learner, T1 + dt.timedelta(seconds=10), seq=1, segments=[[0, 10]], position=10)
    beat(s, learner, T1 + dt.timedelta(seconds=13), seq=2, event="terminate", segments=[[10, 13]], position=13)
    db.session.expire_all()
    ledger = [(i.seq, i.credited_ms) for i in db.session.query(LearningInterval).order_by(LearningInterval.seq)]
    stored = _progress_and_clock(learner)

    # The terminate again (its answer was lost), then an earlier beat again: both duplicates.
    again = beat(s, learner, T1 + dt.timedelta(seconds=20), seq=2, event="terminate", segments=[[10, 13]], position=13)
    older = beat(s, learner, T1 + dt.timedelta(seconds=21), seq=1, segments=[[0, 10]], position=10)
    for result in (again, older):
        assert result.duplicate and not result.accepted and result.credited_ms == 0
        assert (result.coverage_bp, result.position_ms) == (1300, 13_000)  # the stored outcome
    # A new beat of the ended session: still refused.
    with time_machine.travel(T1 + dt.timedelta(seconds=22), tick=False), pytest.raises(services.BeatError) as err:
        services.record_beat(s.id, learner, {"seq": 3, "event": "heartbeat", "segments": [[13, 20]], "position": 20})
    assert err.value.status == 409
    db.session.rollback()

    db.session.expire_all()
    assert [(i.seq, i.credited_ms) for i in db.session.query(LearningInterval).order_by(LearningInterval.seq)] == ledger
    assert _progress_and_clock(learner) == stored
    # The replay is kept as evidence, like any duplicate; the terminate again is the player's
    # hand-over after nearly every page (its answer cannot be waited for): not kept, no event.
    assert _refusals(s.id) == [(1, "replay")]
    refused = db.session.query(Event).filter_by(name="learning.beat_refused", object_id=s.id)
    assert [e.payload["seq"] for e in refused] == [1]


@pytest.mark.app_config(LMS_PLUGINS=[])
def test_the_straight_path_answers_a_stored_beat_of_an_ended_session_as_a_duplicate(kit, learner, monkeypatch):  # noqa: F811
    straight: list[int] = []
    original = services._record_straight
    monkeypatch.setattr(services, "_record_straight", lambda *a, **k: straight.append(a[2]) or original(*a, **k))
    s = open_session(learner, kit.document)
    beat(s, learner, T1 + dt.timedelta(seconds=10), seq=1, visible_ms=10_000)
    beat(s, learner, T1 + dt.timedelta(seconds=20), seq=2, visible_ms=10_000)
    beat(s, learner, T1 + dt.timedelta(seconds=21), seq=3, event="terminate", visible_ms=1_000)
    assert straight == [1, 2]
    # A steady heartbeat's shape (the straight path's), already stored: a duplicate.
    again = beat(s, learner, T1 + dt.timedelta(seconds=30), seq=2, visible_ms=10_000)
    assert again.duplicate and not again.accepted and again.credited_ms == 0
    # The same shape, new: the ended session's 409, before the straight path records anything.
    with time_machine.travel(T1 + dt.timedelta(seconds=31), tick=False), pytest.raises(services.BeatError) as err:
        services.record_beat(s.id, learner, {"seq": 4, "visible_ms": 10_000})
    assert err.value.status == 409
    db.session.rollback()
    assert straight == [1, 2]
    assert _refusals(s.id) == [(2, "replay")]
    assert db.session.query(LearningInterval).filter_by(session_id=s.id).count() == 3


# -- the fronts against the view ------------------------------------------------------------


def test_the_lean_front_answers_what_the_view_answers_after_the_end(app, kit, tree):
    a, b = people(app, kit, tree, 2)
    lean, view = Player(app, kit, a, lean=True), Player(app, kit, b, lean=False)
    answers = []
    for at, body in beats() + after_the_end():
        x, y = lean.post(at, body), view.post(at, body)
        assert (x.status_code, x.data) == (y.status_code, y.data), body
        assert sorted(x.headers.items()) == sorted(y.headers.items())
        answers.append(_status_and_duplicate(x.status_code, x.data))
    assert answers[-3:] == AFTER_THE_END
    _assert_same(lean, view)


def test_the_asgi_front_answers_what_the_view_answers_after_the_end(app, kit, tree, asgi):
    a, b = people(app, kit, tree, 2)
    lean, view = Player(app, kit, a, lean=True), Player(app, kit, b, lean=False)
    answers = []
    for at, body in beats() + after_the_end():
        with time_machine.travel(at, tick=False):
            status, _headers, content = asgi_request(asgi, lean, "POST", lean.path, signed(lean, body))
        reference = view.post(at, body)
        assert (status, content) == (reference.status_code, reference.data), body
        answers.append(_status_and_duplicate(status, content))
    assert answers[-3:] == AFTER_THE_END
    _assert_same(lean, view)


def _assert_same(lean: Player, view: Player) -> None:
    db.session.expire_all()
    for model in (LearningInterval, RefusedBeat, Beat):
        assert rows(model, lean.session_id) == rows(model, view.session_id), model.__name__
    sessions = [rows(LearningSession, s, where=LearningSession.id == s) for s in (lean.session_id, view.session_id)]
    assert sessions[0] == sessions[1] and sessions[0][0]["ended_at"] is not None
    assert sessions[0][0]["last_seq"] == 16
    assert _refusals(lean.session_id) == [(13, "repeat"), (15, "replay")]


# -- the group path against one by one ------------------------------------------------------


def test_a_group_answers_and_stores_what_one_by_one_does_after_the_end(app, kit, tree):
    users = people(app, kit, tree, 6)
    grouped = [Player(app, kit, u, lean=True) for u in users[:3]]
    alone = [Player(app, kit, u, lean=False) for u in users[3:]]
    played = beats() + after_the_end()
    # The last group holds the terminate, its retry, the replay and the new beat of each person
    # (the hand-over's race: a retry in the same transaction as the beat it repeats), one
    # round each; the new beat's 409 is handed to the view, as any refusal is.
    chunks = chunks_of(played)
    assert chunks[-1][-4:] == played[-4:]
    play(app, grouped, alone, chunks)
    assert_same_rows(grouped, alone)
    for p in grouped:
        assert _refusals(p.session_id) == [(13, "repeat"), (15, "replay")]
    # The retry of a stored beat on its own group, after the end (no view needed for it).
    at, body = after_the_end()[0]
    at += dt.timedelta(seconds=10)
    assert play(app, grouped, alone, [[(at, body)]]) == 0
    assert_same_rows(grouped, alone)
