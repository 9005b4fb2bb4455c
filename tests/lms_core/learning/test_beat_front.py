"""The lean heartbeat front (learning/beat_front.py) against the Flask view, its reference.

Two learners play the same lesson with the same beats at the same (frozen) times: one
through the lean front, one through the view (``LMS_LEAN_BEAT`` off for its requests).
Their answers must be the same bytes with the same headers, and every stored row the
same but for ids; requests the lean front must not answer reach the view.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
import time_machine
from flask import request_started
from sqlalchemy import inspect

from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.learning.models import LearningInterval, LearningSession, LessonProgress, RefusedBeat
from lms_core.media.services import record_delivery
from plugins.anti_idle.envelope import sign_with_key
from plugins.anti_idle.models import Beat
from tests.factories import UserFactory

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)

T0 = dt.datetime(2026, 5, 11, 1, 0, tzinfo=dt.UTC)
BEAT_URL = re.compile(rb'data-beat-url="([^"]+)"')
CSRF = re.compile(rb'name="csrf-token" content="([^"]+)"')
CSRF_FIELD = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"')
KEY = re.compile(rb'data-beat-key="([0-9a-f]{64})"')
#: Columns that name the person or the row rather than what was stored.
NAMING = {"id", "user_id", "actor_id", "enrolment_id", "org_unit_id", "created_at", "updated_at", "registration"}


class Player:
    """One signed-in learner on the video lesson, beating as the player does."""

    def __init__(self, app: Any, kit: Any, user: Any, lean: bool) -> None:
        self.app, self.user, self.lean = app, user, lean
        self.client = app.test_client()
        with time_machine.travel(T0, tick=False):
            form = CSRF_FIELD.search(self.client.get("/login").data)
            assert form
            signed_in = self.client.post(
                "/login",
                data={"username": user.username, "password": "Passw0rd!", "csrf_token": form.group(1).decode()},
            )
            assert signed_in.status_code in (302, 303)
            page = self.client.get(f"/learn/lessons/{kit.video.id}").data
        url, token, key = BEAT_URL.search(page), CSRF.search(page), KEY.search(page)
        assert url and token and key
        self.path, self.token, self.key = url.group(1).decode(), token.group(1).decode(), key.group(1).decode()
        self.session_id = self.path.split("/")[-2]
        record_delivery(self.session_id, user.id, kit.video.media_id, 10**9)

    def post(self, at: dt.datetime, body: dict[str, Any], *, headers: dict[str, str] | None = None) -> Any:
        raw = sign_with_key(self.key, json.dumps(body, separators=(",", ":")).encode())
        self.app.config["LMS_LEAN_BEAT"] = self.lean
        try:
            with time_machine.travel(at, tick=False):
                return self.client.post(
                    self.path,
                    data=raw,
                    content_type="application/json",
                    headers={"X-CSRFToken": self.token} if headers is None else headers,
                )
        finally:
            self.app.config["LMS_LEAN_BEAT"] = True


@pytest.fixture
def pair(app, kit, tree):
    users = [UserFactory(org_unit=tree.village_a, full_name=name) for name in ("李明", "王芳")]
    from lms_core.enrolments import services as enrolments

    for user in users:
        enrolments.enrol(user, kit.course)
    db.session.commit()
    return Player(app, kit, users[0], lean=True), Player(app, kit, users[1], lean=False)


@pytest.fixture
def flask_requests(app):
    seen: list[str] = []

    def count(_sender: Any, **_extra: Any) -> None:
        seen.append("flask")

    request_started.connect(count, app)
    yield seen
    request_started.disconnect(count, app)


def beats() -> list[tuple[dt.datetime, dict[str, Any]]]:
    """Play, ten beats of 1x viewing, a seek, a pause, a repeat of the last seq, play, terminate."""
    out: list[tuple[dt.datetime, dict[str, Any]]] = [
        (T0 + dt.timedelta(seconds=1), {"seq": 1, "event": "play", "position": 0})
    ]
    client = {"visibility": "visible", "rate": 1, "muted": False}
    for i in range(1, 11):
        seg = [[10 * (i - 1), 10 * i]]
        out.append(
            (
                T0 + dt.timedelta(seconds=1 + 10 * i),
                {"seq": i + 1, "segments": seg, "position": 10 * i, "client": client},
            )
        )
    at = T0 + dt.timedelta(seconds=101)
    out += [
        (at + dt.timedelta(seconds=1), {"seq": 12, "event": "seeked", "position": 50, "time_from": 100, "time_to": 50}),
        (at + dt.timedelta(seconds=5), {"seq": 13, "event": "pause", "segments": [[50, 54]], "position": 54}),
        (at + dt.timedelta(seconds=6), {"seq": 13, "event": "pause", "segments": [[50, 54]], "position": 54}),
        (at + dt.timedelta(seconds=7), {"seq": 14, "event": "play", "position": 54}),
        (at + dt.timedelta(seconds=17), {"seq": 15, "segments": [[54, 64]], "position": 64, "client": client}),
        (at + dt.timedelta(seconds=18), {"seq": 16, "event": "terminate", "position": 65}),
    ]
    return [(t, {"event": "heartbeat", **b}) for t, b in out]


def rows(model: Any, session_id: str, *, where: Any = None) -> list[dict[str, Any]]:
    column = getattr(model, "session_id", None)
    query = db.session.query(model).filter(column == session_id if where is None else where).order_by(model.id)
    return [normalised(row, session_id) for row in query]


def normalised(row: Any, session_id: str) -> dict[str, Any]:
    def scrub(value: Any) -> Any:
        if value == session_id:
            return "S"
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items() if k not in NAMING}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return {c.key: scrub(getattr(row, c.key)) for c in inspect(type(row)).columns if c.key not in NAMING}


def without_ids(value: Any) -> Any:
    """A JSON answer without the row ids it links to (the evidence's beats)."""
    if isinstance(value, dict):
        return {
            k: without_ids(v) for k, v in value.items() if k != "id" and not k.endswith(("_id", "_ids", "beats_url"))
        }
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


def test_lean_and_view_answer_the_same_bytes_and_store_the_same_rows(app, kit, pair, flask_requests):
    lean, view = pair
    for at, body in beats():
        before = len(flask_requests)
        a = lean.post(at, body)
        assert len(flask_requests) == before, f"the lean front passed seq {body['seq']} to Flask"
        b = view.post(at, body)
        assert len(flask_requests) == before + 1
        assert (a.status_code, a.data) == (b.status_code, b.data), body
        assert sorted(a.headers.items()) == sorted(b.headers.items())
    assert json.loads(a.data)["accepted"] is True
    db.session.expire_all()
    for model in (LearningInterval, RefusedBeat, Beat):
        assert rows(model, lean.session_id) == rows(model, view.session_id), model.__name__
    assert len(rows(RefusedBeat, lean.session_id)) == 1  # the repeated seq 13
    sessions = [rows(LearningSession, s, where=LearningSession.id == s) for s in (lean.session_id, view.session_id)]
    assert sessions[0] == sessions[1] and sessions[0][0]["ended_at"] is not None
    progress = [rows(LessonProgress, "", where=(LessonProgress.user_id == p.user.id)) for p in (lean, view)]
    assert progress[0] == progress[1] and progress[0][0]["position_ms"] == 65_000
    events = [
        [
            (e.name, e.ip, normalised(e, p.session_id)["payload"])
            for e in db.session.query(Event).filter_by(actor_id=p.user.id).order_by(Event.id)
        ]
        for p in (lean, view)
    ]
    assert events[0] == events[1]
    names = [name for name, _ip, _payload in events[0]]
    assert {"video.played", "video.paused", "video.seeked", "lesson.terminated", "learning.beat_refused"} <= set(names)
    beat_events = {"video.played", "video.paused", "video.seeked", "lesson.terminated", "learning.beat_refused"}
    assert {ip for name, ip, _payload in events[0] if name in beat_events} == {"127.0.0.1"}
    # What will count reads back the same for both.
    with time_machine.travel(T0 + dt.timedelta(minutes=5), tick=False):  # the cookie's age is checked
        study = [p.client.get(f"/api/v1/me/study?lesson={kit.video.id}") for p in pair]
    assert study[0].status_code == 200
    assert [without_ids(r.get_json()) for r in study[0:1]] == [without_ids(study[1].get_json())]
    assert study[0].get_json()["credited_seconds"] > 0


def test_what_the_lean_front_does_not_answer_reaches_the_view(app, pair, flask_requests):
    lean, _view = pair
    at = T0 + dt.timedelta(seconds=10)
    ok = {"seq": 1, "event": "heartbeat", "position": 0}

    def through_flask(response: Any) -> Any:
        assert flask_requests, "answered by the lean front"
        flask_requests.clear()
        return response

    # No CSRF header, or a wrong one: the view's CSRF check answers.
    assert through_flask(lean.post(at, ok, headers={})).status_code == 400
    assert through_flask(lean.post(at, ok, headers={"X-CSRFToken": lean.token[:-2] + "xx"})).status_code == 400
    # A beat the service refuses (a bad seq): the view answers its error, nothing stored.
    bad = through_flask(lean.post(at, {"seq": "x"}))
    assert bad.status_code == 400 and bad.get_json()["error"]
    # A beat made before the late window: stored once (by the view), answered 422.
    made = int((at - dt.timedelta(hours=30)).timestamp() * 1000)
    late = through_flask(lean.post(at, {**ok, "at": made}))
    assert late.status_code == 422 and late.get_json()["refused"] == "late"
    assert db.session.query(RefusedBeat).filter_by(session_id=lean.session_id, reason="late").count() == 1
    # Another learner's session: the view's 404.
    with time_machine.travel(at, tick=False):
        other = lean.client.post(
            "/learn/sessions/" + "0" * 32 + "/beat",
            data=b'{"seq":1}',
            content_type="application/json",
            headers={"X-CSRFToken": lean.token},
        )
    assert through_flask(other).status_code == 404
    # And an ordinary beat is the lean front's.
    good = lean.post(at, ok)
    assert good.status_code == 200 and not flask_requests


def test_a_signed_out_or_revoked_sign_in_is_not_served(app, pair, flask_requests):
    lean, _view = pair
    at = T0 + dt.timedelta(seconds=10)
    from lms_core.accounts.principal import forget

    lean.user.session_version += 1  # a password change elsewhere
    db.session.commit()
    forget(lean.user.id)
    r = lean.post(at, {"seq": 1, "event": "heartbeat"})
    assert flask_requests and r.status_code in (401, 302)
    assert db.session.query(LearningInterval).filter_by(session_id=lean.session_id).count() == 0


@pytest.mark.parametrize(
    "user_id", ["7:3", "7", "7:3:1", "a:3", "7:", ":3", " 7 : 3 ", "1_0:2", "-1:0", "", "７:3", "7:3\n"]
)
def test_beat_of_reads_the_user_and_version_as_two_ints(user_id: str) -> None:
    """``beat_of`` takes ``_user_id`` as ``"<user>:<version>"`` read by ``int`` (what ``int``
    accepts, it accepts; anything else, the view judges): the same as unpacking
    ``int(part) for part in _user_id.split(":", 1)``, which it was."""
    from lms_core.learning import beat_front

    try:
        user, version = (int(part) for part in user_id.split(":", 1))
        expected: Any = (user, version)
    except ValueError:
        expected = None
    beat = beat_front.beat_of(("s" * 32, {"_user_id": user_id}), b"{}", {"REMOTE_ADDR": "10.0.0.1"})
    if expected is None:
        assert beat is None
    else:
        assert beat == beat_front.Beat("s" * 32, *expected, b"{}", "10.0.0.1")
        assert type(beat) is beat_front.Beat
        assert (beat.user_id, beat.version, beat.remote_addr) == (*expected, "10.0.0.1")
