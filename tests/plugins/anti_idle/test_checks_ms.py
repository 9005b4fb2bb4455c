"""A check's times in whole milliseconds: the answer's server latency and the player's countdown.

Through float seconds a server latency of 1.001 s read as 1,000 ms, so an answer given exactly
at a floor such as 1,001 ms was recorded as faster than a person and flagged automated.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from lms_core.extensions import db
from plugins.anti_idle import checks, policy
from plugins.anti_idle.models import AttentionCheck
from tests.plugins.anti_idle.test_checks import FAST, T0, answer, kit, learner, open_session, play, poll  # noqa: F401

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])


@pytest.mark.parametrize("floor_ms", [1001, 2002, 4004])
def test_an_answer_at_the_human_floor_is_a_persons(kit, learner, floor_ms):  # noqa: F811 (fixtures)
    policy.new_version({**FAST, "human_latency_floor_ms": floor_ms}, course_id=kit.course.id, note="floor")
    db.session.commit()
    s = open_session(learner, kit.video)
    play(s, learner, 0, 30)
    check = poll(s, learner, 30.5)
    assert check.issued_at == T0 + dt.timedelta(seconds=30)
    judged = answer(check.token, learner, 30 + floor_ms / 1000, answer=check.expected, latency_ms=floor_ms)
    row = db.session.get(AttentionCheck, check.id)
    assert row.server_latency_ms == floor_ms
    assert judged.outcome == "passed"


@pytest.mark.parametrize("left_ms", [1001, 4004, 16_002])
def test_the_countdown_is_the_whole_time_left(kit, learner, left_ms):  # noqa: F811 (fixtures)
    s = open_session(learner, kit.video)
    play(s, learner, 0, 30)
    check = poll(s, learner, 30.5)
    with time_machine.travel(check.due_at - dt.timedelta(milliseconds=left_ms), tick=False):
        assert checks.client_view(check)["due_in_ms"] == left_ms
