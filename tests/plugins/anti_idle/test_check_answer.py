"""A video beat's answer says when an attention check waits for the person (``check``), never which.

The player's script asks for the check (``POST /anti-idle/sessions/<id>/check``) only when
the answer says so (and when a page opens), not after every beat. The field is the same on
every path that answers a beat: the Flask view, the lean WSGI front and the ASGI front's
group commit (``beat_front.answer``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import time_machine

from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.learning import services as learning
from plugins.anti_idle import checks, policy
from plugins.anti_idle.models import AttentionCheck
from tests.factories import UserFactory
from tests.lms_core.learning.test_beat_asgi import by_view_if_handed, run_group
from tests.lms_core.learning.test_beat_front import T0, Player
from tests.plugins.anti_idle.test_checks import FAST  # a check after every 30 s of playing, 20 s to answer

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)
#: The core's fields of a beat's answer; the plugin adds ``check`` and nothing else.
CORE = {
    "accepted",
    "duplicate",
    "credited_ms",
    "coverage",
    "position",
    "lesson_completed",
    "course_completed",
    "verdict",
}


def heartbeat(seq: int, t: int) -> tuple[dt.datetime, dict[str, Any]]:
    """The beat of 1x viewing that claims media second ``t - 10`` to ``t``, sent at ``T0 + t``."""
    client = {"visibility": "visible", "rate": 1, "muted": False}
    body = {"seq": seq, "event": "heartbeat", "segments": [[t - 10, t]], "position": t, "client": client}
    return T0 + dt.timedelta(seconds=t), body


def players(app: Any, kit: Any, tree: Any, follow: int = 1) -> list[Player]:
    policy.new_version({**FAST, "checks_follow_claims": follow}, course_id=kit.course.id, note="test course")
    users = [UserFactory(org_unit=tree.village_a, full_name=name) for name in ("李明", "王芳", "张伟")]
    for user in users:
        enrolments.enrol(user, kit.course)
    db.session.commit()
    # The Flask view, the lean WSGI front, the ASGI front's group (below: ``run_group``).
    return [
        Player(app, kit, users[0], lean=False),
        Player(app, kit, users[1], lean=True),
        Player(app, kit, users[2], lean=True),
    ]


def beat(app: Any, path: int, player: Player, at: dt.datetime, body: dict[str, Any]) -> dict[str, Any]:
    """The beat's answer on path 0 (the view), 1 (the lean front) or 2 (the group writer)."""
    if path < 2:
        response = player.post(at, body)
        assert response.status_code == 200, response.data
        return response.get_json()
    with time_machine.travel(at, tick=False):
        (answer,) = by_view_if_handed([(player, body)], run_group(app, [(player, body)]), at)
    assert answer is not None and answer[0] == 200
    return json.loads(answer[2])


def answer_check(user: Any, at_s: float) -> None:
    row = checks.open_check(user.id)
    assert row is not None
    body = {"answer": row.expected, "trusted": True, "latency_ms": 2500, "input_mode": "pointer"}
    with time_machine.travel(T0 + dt.timedelta(seconds=at_s), tick=False):
        assert checks.answer_check(row.token, user, body).outcome == "passed"
        db.session.commit()


def test_every_path_answers_that_a_check_waits_from_the_beat_that_issues_it(app, kit, tree):
    trio = players(app, kit, tree)
    said: list[list[str | None]] = [[], [], []]
    for seq, t in enumerate(range(10, 51, 10), start=1):
        at, body = heartbeat(seq, t)
        for path, player in enumerate(trio):
            answer = beat(app, path, player, at, body)
            assert set(answer) <= CORE | {"check"}, answer  # never the token, the prompt or the options
            said[path].append(answer.get("check"))
    # Owed at the 30th second played: issued by that beat, open until answered.
    assert said == [[None, None, "open", "open", "open"]] * 3
    for player in trio:
        (row,) = db.session.query(AttentionCheck).filter_by(user_id=player.user.id).all()
        assert row.issued_at == T0 + dt.timedelta(seconds=30)
        answer_check(player.user, 52)
    at, body = heartbeat(6, 60)
    for path, player in enumerate(trio):
        assert "check" not in beat(app, path, player, at, body)  # answered: the next is 30 s of play away


def test_due_when_the_policy_leaves_issuing_to_the_players_ask(app, kit, tree):
    """``checks_follow_claims`` off: the beat issues nothing, says the check is due, and the
    player's ask reveals it (the ask needs the person to be playing: the beat just said so)."""
    view, lean, group = players(app, kit, tree, follow=0)
    said = []
    for seq, t in enumerate(range(10, 31, 10), start=1):
        said.append(beat(app, 1, lean, *heartbeat(seq, t)).get("check"))
    assert said == [None, None, "due"]
    assert db.session.query(AttentionCheck).count() == 0
    with time_machine.travel(T0 + dt.timedelta(seconds=30.5), tick=False):
        asked = lean.client.post(
            f"/anti-idle/sessions/{lean.session_id}/check", json={}, headers={"X-CSRFToken": lean.token}
        )
    assert asked.status_code == 200 and asked.get_json()["check"]["token"]
    assert beat(app, 1, lean, *heartbeat(4, 40)).get("check") == "open"


def test_a_beat_claiming_nothing_or_a_document_beat_says_nothing(app, kit, tree):
    view, lean, group = players(app, kit, tree)
    for seq, t in enumerate(range(10, 31, 10), start=1):
        beat(app, 1, lean, *heartbeat(seq, t))
    assert checks.open_check(lean.user.id) is not None
    # A pause claiming nothing reaches no plugin: no field (the next playing beat says it).
    paused = {"seq": 4, "event": "pause", "position": 30}
    assert "check" not in beat(app, 1, lean, T0 + dt.timedelta(seconds=31), paused)
    # Reading a document: no checks.
    session = learning.start_session(view.user, kit.document, learning.enrolment_for(view.user, kit.course.id))
    db.session.commit()
    for seq, t in enumerate(range(10, 61, 10), start=1):
        with time_machine.travel(T0 + dt.timedelta(seconds=t), tick=False):
            result = learning.record_beat(session.id, view.user, {"seq": seq, "visible_ms": 10_000})
            db.session.commit()
        assert result.accepted and result.answer is None
