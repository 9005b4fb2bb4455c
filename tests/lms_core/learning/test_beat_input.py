"""Heartbeats with hostile numbers: 400 before anything is stored (issue 10, item 10)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.learning.models import LearningInterval, LearningSession
from tests.conftest import login
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course


@pytest.fixture
def beat_url(app, client, tree):
    kit = build_course(tree)
    UserFactory(username="liming", org_unit=tree.village_a)
    db.session.commit()
    login(client, "liming")
    client.post(f"/courses/{kit.course.id}/enrol")
    client.get(f"/learn/lessons/{kit.video.id}")
    return f"/learn/sessions/{db.session.query(LearningSession).one().id}/beat"


def _counts() -> tuple[int, int]:
    return (
        db.session.execute(select(func.count()).select_from(LearningInterval)).scalar_one(),
        db.session.execute(select(func.count()).select_from(Event)).scalar_one(),
    )


def _post_raw(client, url, text: str):
    return client.post(url, data=text, content_type="application/json")


@pytest.mark.parametrize(
    "body",
    [
        '{"seq": 1, "position": Infinity}',
        '{"seq": 1, "position": NaN}',
        '{"seq": 1, "position": -Infinity}',
        '{"seq": 1, "position": 1e308}',
        '{"seq": 1, "position": 1e400}',
        '{"seq": 1, "visible_ms": 1e308}',
        '{"seq": 1, "visible_ms": NaN}',
        '{"seq": 1180591620717411303424}',  # 2**70
        '{"seq": 1, "position": 1180591620717411303424}',
        '{"seq": 1, "segments": [[0, 1e308]]}',
        '{"seq": 1, "segments": [[NaN, 5]]}',
        '{"seq": 1, "segments": [[0, 1180591620717411303424]]}',
        '{"seq": 1, "event": "seeked", "time_from": 1e308}',
        '{"seq": 1, "event": "seeked", "time_to": Infinity}',
        '{"seq": 1, "client": {"rate": NaN}}',
        '{"seq": 1, "client": {"ua": "x\\u0000y"}}',
        '{"seq": 1, "client": {"ua": "\\ud800"}}',
        '{"seq": 1, "event": ["play"]}',
        '{"seq": 1, "client": ' + "[" * 3000 + "]" * 3000 + "}",
        "[" * 3000 + "]" * 3000,
    ],
)
def test_hostile_numbers_are_400_and_nothing_is_stored(client, beat_url, body):
    before = _counts()
    r = _post_raw(client, beat_url, body)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.is_json and r.get_json()["error"]
    assert _counts() == before
    # The session still takes an honest beat afterwards: nothing was half-recorded.
    ok = client.post(beat_url, json={"seq": 1, "event": "play", "segments": [], "position": 0})
    assert ok.status_code == 200 and ok.get_json()["accepted"] is True


def test_the_largest_accepted_values_are_stored(client, beat_url):
    from lms_core.learning.services import MAX_BEAT_SECONDS, MAX_SEQ

    r = client.post(
        beat_url,
        data=json.dumps(
            {"seq": MAX_SEQ, "event": "play", "position": MAX_BEAT_SECONDS, "segments": [[0, 1.5]], "visible_ms": 10}
        ),
        content_type="application/json",
    )
    assert r.status_code == 200 and r.get_json()["accepted"] is True
    assert db.session.execute(select(LearningInterval.seq)).scalar_one() == MAX_SEQ
