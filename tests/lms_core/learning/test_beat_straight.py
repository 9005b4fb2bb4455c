"""The straight path of a steady-state beat (``services._record_straight``) against the general
path (``services._record_general``), its reference.

Two learners, each on a device of their own, play the same random sequence of beats at the
same frozen times through the writer's group path (``beat_batch.record_group``; a beat it
hands back goes to the view, as the ASGI front does): one with the straight path on, one
with it off (``services.STRAIGHT``). The sequences mix the steady heartbeat with what must
not be taken straight: duplicates, replays, gaps in ``seq``, beats with a position, segments,
a making time or other events, odd client signals (floats, nesting, non-ASCII), a float
``visible_ms``, nothing visible, long gaps, the Beijing day's end, the lesson's completion,
a new session, the video lesson. Every answer's bytes and every row of both learners (ledger,
raw and refused beats, sessions, progress, clock, day totals, anti-idle state, events) must
be the same but for the names of rows and people.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect

from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.learning import services
from lms_core.learning.models import (
    DailyTotal,
    LearningInterval,
    LearningSession,
    LessonProgress,
    PersonClock,
    RefusedBeat,
)
from lms_core.media.services import record_delivery
from plugins.anti_idle.models import Beat, PersonState
from tests.lms_core.learning.test_beat_asgi import people, run_group
from tests.lms_core.learning.test_beat_front import BEAT_URL, CSRF, CSRF_FIELD, KEY, Player, normalised
from tests.lms_core.learning.test_beat_group import without_row_ids
from tests.strategies import fuzz_examples

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)

#: Two minutes before midnight in Beijing: the sequences cross into the next day.
T0 = dt.datetime(2026, 5, 11, 15, 58, tzinfo=dt.UTC)
_ADDRESSES = itertools.count(1)


class Learner(Player):
    """A signed-in learner on a device (address) of their own, on the document or video lesson."""

    def __init__(self, app: Any, kit: Any, user: Any) -> None:  # noqa: D107 - Player's sign-in, on its own address
        self.app, self.user, self.lean, self.kit = app, user, True, kit
        address = next(_ADDRESSES)
        self.client = app.test_client()
        self.client.environ_base["REMOTE_ADDR"] = f"10.{address // 250}.{address % 250}.7"
        with time_machine.travel(T0 - dt.timedelta(minutes=5), tick=False):
            form = CSRF_FIELD.search(self.client.get("/login").data)
            assert form
            signed_in = self.client.post(
                "/login",
                data={"username": user.username, "password": "Passw0rd!", "csrf_token": form.group(1).decode()},
            )
            assert signed_in.status_code in (302, 303)
        self.sessions: list[str] = []

    def open(self, at: dt.datetime, lesson: Any) -> None:
        """Open a lesson page (a new learning session), as the player's page does."""
        with time_machine.travel(at, tick=False):
            page = self.client.get(f"/learn/lessons/{lesson.id}").data
        url, token, key = BEAT_URL.search(page), CSRF.search(page), KEY.search(page)
        assert url and token and key
        self.path, self.token, self.key = url.group(1).decode(), token.group(1).decode(), key.group(1).decode()
        self.session_id = self.path.split("/")[-2]
        self.sessions.append(self.session_id)
        if lesson.media_id is not None and lesson.id == self.kit.video.id:
            record_delivery(self.session_id, self.user.id, lesson.media_id, 10**9)


#: What one step does besides its beat: nothing (most), open a new session of the document, or
#: open the video lesson (a session of another kind).
_SWITCHES = st.sampled_from(["stay"] * 8 + ["new session", "video"])
_CLIENTS = st.sampled_from(
    [
        None,
        {"visibility": "visible"},
        {"visibility": "visible", "inputs": 3, "focused": True, "rate": 1, "x": None},
        {"visibility": "visible", "rate": 1.5},  # a float: the general path
        {"visibility": "hidden", "nested": {"a": 1}},  # nesting: the general path
        {"visibility": "可见"},  # not ASCII: the general path
        {"visibility": "vis\x00ible"},  # NUL: refused by the general path
        "visible",  # not an object: refused
        {  # the real player's: the anti-idle signals nested (checked by ``find_problem``)
            "visibility": "visible",
            "rate": 1,
            "muted": False,
            "presence": {"v": 1, "dt_ms": 10_000, "rate_min": None, "input": {"key": 2, "pointer": 0}},
            "webdriver": False,
        },
    ]
)
_EXTRAS = st.sampled_from(
    [
        {},
        {},
        {},
        {"position": 12},
        {"position": 0},
        {"position": 0.0},
        {"position": None},
        {"segments": [[0, 5]]},
        {"segments": []},
        {"segments": None},
        {"at": "made"},  # a making time (filled in with the beat's time less a lag)
        {"at": "made", "segments": [], "position": 0, "sig": "00ff"},  # the real player's body
        {"at": None},
        {"at": -1},
        {"event": "pause"},
        {"event": "hidden"},
        {"event": "terminate"},
        {"event": "heartbeat"},
        {"time_from": 1},
        {"unknown": 1},
    ]
)


@st.composite
def steps(draw: Any) -> dict[str, Any]:
    return {
        "gap_s": draw(st.sampled_from([0, 1, 3, 9, 10, 10, 10, 10, 11, 12, 20, 45, 130, 700, 3 * 3600])),
        "seq": draw(st.sampled_from(["next"] * 10 + ["same", "older", "skip"])),
        "visible_ms": draw(
            st.one_of(
                st.sampled_from([10_000, 10_000, 10_000, 9_500, 12_000, 30_000, 0, 1]),
                st.integers(0, 40_000),
                st.sampled_from([10_000.0, True, -1, 7 * 24 * 3600 * 1000 + 1, "10000"]),
            )
        ),
        "client": draw(_CLIENTS),
        "extra": draw(_EXTRAS),
        "switch": draw(_SWITCHES),
        "lag_h": draw(st.sampled_from([0, 1, 30])),
    }


def _body(step: dict[str, Any], seq: int, at: dt.datetime) -> dict[str, Any]:
    body: dict[str, Any] = {"seq": seq, "visible_ms": step["visible_ms"]}
    if step["client"] is not None:
        body["client"] = step["client"]
    for key, value in step["extra"].items():
        if value == "made":
            value = int((at - dt.timedelta(hours=step["lag_h"])).timestamp() * 1000)
        body[key] = value
    return body


def _person_rows(model: Any, user_id: int, sessions: list[str]) -> list[dict[str, Any]]:
    keys = list(inspect(model).primary_key)
    query = db.session.query(model).filter(model.user_id == user_id).order_by(*keys)
    return [_scrub(row, sessions) for row in query]


def _scrub(row: Any, sessions: list[str]) -> dict[str, Any]:
    """A row without the names of rows and people, each of the learner's sessions by its rank."""
    out = normalised(row, "")
    names = {s: f"S{i}" for i, s in enumerate(sessions)}

    def rename(value: Any) -> Any:
        if isinstance(value, str):
            return names.get(value, value)
        if isinstance(value, dict):
            return {k: rename(v) for k, v in value.items()}
        if isinstance(value, list):
            renamed = [rename(v) for v in value]
            if value and all(isinstance(v, str) and v in names for v in value):
                return sorted(renamed)  # a set of sessions (kept in the order of their random ids)
            return renamed
        return value

    return without_row_ids(rename(out))


def _everything(learner: Learner) -> dict[str, Any]:
    db.session.expire_all()
    sessions = learner.sessions
    found: dict[str, Any] = {}
    for model in (LearningInterval, Beat, RefusedBeat):
        column = model.session_id
        query = db.session.query(model).filter(column.in_(sessions)).order_by(model.id)
        found[model.__name__] = [_scrub(row, sessions) for row in query]
    opened = db.session.query(LearningSession).filter(LearningSession.id.in_(sessions))
    found["sessions"] = [
        {k: v for k, v in _scrub(row, sessions).items() if k != "ip"}
        for row in sorted(opened, key=lambda row: sessions.index(row.id))  # in the order opened
    ]
    for model in (LessonProgress, PersonClock, DailyTotal, PersonState):
        found[model.__name__] = _person_rows(model, learner.user.id, sessions)
    # Without the address (each learner is on a device of their own) the sign-in's events.
    events = (
        db.session.query(Event)
        .filter(Event.actor_id == learner.user.id, Event.created_at >= T0)  # after the sign-in (their names)
        .order_by(Event.id)
    )
    found["events"] = [
        {
            k: v
            for k, v in _scrub(row, sessions).items()
            if k != "ip" and (k, row.object_type) != ("object_id", "enrolments")
        }
        for row in events
    ]
    return found


def _answer(learner: Learner, at: dt.datetime, body: dict[str, Any], straight: bool, monkeypatch: Any) -> Any:
    """The group path's answer (status, body), or the view's for a beat the group hands back."""
    monkeypatch.setattr(services, "STRAIGHT", straight)
    with time_machine.travel(at, tick=False):
        [answer] = run_group(learner.app, [(learner, body)])
        if answer is None:
            response = learner.post(at, body)
            return response.status_code, response.data
    return answer[0], answer[2]


EQUAL = settings(
    max_examples=fuzz_examples(8),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@EQUAL
@given(played=st.lists(steps(), min_size=4, max_size=14))
def test_the_straight_path_stores_and_answers_what_the_general_path_does(app, kit, tree, monkeypatch, played):
    straight_user, general_user = people(app, kit, tree, 2)
    learners = {True: Learner(app, kit, straight_user), False: Learner(app, kit, general_user)}
    taken: list[bool] = []
    original = services._record_straight

    def counted(*args: Any, **kwargs: Any) -> Any:
        taken.append(services.STRAIGHT)
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "_record_straight", counted)
        _play(app, kit, learners, played, patch)
    assert _everything(learners[True]) == _everything(learners[False])
    assert False not in taken  # the switch forces the general path


def _play(app: Any, kit: Any, learners: dict[bool, Learner], played: list[dict[str, Any]], patch: Any) -> None:
    at = T0
    for learner in learners.values():
        learner.open(at, kit.document)
    seq = 0
    for step in played:
        at += dt.timedelta(seconds=step["gap_s"])
        if step["switch"] != "stay":
            lesson = kit.document if step["switch"] == "new session" else kit.video
            for learner in learners.values():
                learner.open(at, lesson)
            seq = 0
        if step["seq"] == "next" or seq == 0:
            seq += 1
        elif step["seq"] == "skip":
            seq += 3
        elif step["seq"] == "older":
            seq -= 1
        body = _body(step, seq, at)
        answers = [_answer(learners[way], at, body, way, patch) for way in (True, False)]
        assert answers[0] == answers[1], (step, body)


def test_the_steady_heartbeat_of_a_document_is_taken_straight(app, kit, tree, monkeypatch):
    """The sequences above compare; this says the straight path is the one that ran for the
    steady state's beat (and not for a beat it must leave to the general path)."""
    [user] = people(app, kit, tree, 1)
    learner = Learner(app, kit, user)
    learner.open(T0, kit.document)
    calls: list[int] = []
    original = services._record_straight
    monkeypatch.setattr(services, "_record_straight", lambda *a, **k: calls.append(a[2]) or original(*a, **k))
    client = {"visibility": "visible"}
    beats = [
        {"seq": 1, "visible_ms": 10_000, "client": client},  # straight
        {"seq": 2, "event": "heartbeat", "visible_ms": 10_000, "client": client},  # straight
        {"seq": 2, "visible_ms": 10_000, "client": client},  # a repeat: general
        {"seq": 3, "visible_ms": 10_000, "position": 5, "client": client},  # a position: general
        # The real player's body (no media ranges, position 0, its making time): straight.
        {"seq": 4, "visible_ms": 10_000, "segments": [], "position": 0, "at": 1_778_500_000_000, "client": client},
        {"seq": 5, "event": "pause", "visible_ms": 10_000},  # another event: general
        {"seq": 6, "visible_ms": 10_000.0},  # a float: general
        {"seq": 7, "visible_ms": 0},  # nothing visible: general
        {"seq": 10, "visible_ms": 10_000},  # a gap in seq: straight
    ]
    for i, body in enumerate(beats):
        status, _body_bytes = _answer(learner, T0 + dt.timedelta(seconds=10 * (i + 1)), body, True, monkeypatch)
        assert status == 200
    assert calls == [1, 2, 4, 10]
