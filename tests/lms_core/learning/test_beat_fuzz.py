"""Fuzzed heartbeats: never a 5xx, and a refused beat writes nothing (issue 10, item 12)."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.learning.models import LearningInterval, LearningSession, LessonProgress
from tests.conftest import login
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course
from tests.strategies import HOSTILE_VALUES, fuzz_examples, to_json, with_value_at

FIELDS = ("seq", "event", "position", "segments", "visible_ms", "client", "time_from", "time_to")
FUZZ = settings(
    max_examples=fuzz_examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _written() -> tuple[int, ...]:
    db.session.expire_all()
    return tuple(
        db.session.execute(select(func.count()).select_from(t)).scalar_one()
        for t in (LearningInterval, Event, LessonProgress)
    )


@FUZZ
@given(data=st.data())
def test_fuzzed_heartbeats_are_never_5xx(app, client, tree, data):
    if not hasattr(app, "_fuzz_beat_url"):  # set up once per app, not per example
        kit = build_course(tree)
        UserFactory(username="liming", org_unit=tree.village_a)
        db.session.commit()
        login(client, "liming")
        client.post(f"/courses/{kit.course.id}/enrol")
        client.get(f"/learn/lessons/{kit.video.id}")
        app._fuzz_beat_url = f"/learn/sessions/{db.session.query(LearningSession).one().id}/beat"
        app._fuzz_seq = itertools.count(1)
    seq = next(app._fuzz_seq)
    base = {"seq": seq, "event": "play", "position": 1, "segments": [[0, 1]], "visible_ms": 0}
    if data.draw(st.booleans()):
        body = with_value_at(base, (data.draw(st.sampled_from(FIELDS)),), data.draw(HOSTILE_VALUES))
    else:
        body = data.draw(HOSTILE_VALUES)
    before = _written()
    r = client.post(app._fuzz_beat_url, data=to_json(body), content_type="application/json")
    assert r.status_code < 500, r.get_data(as_text=True)[:300]
    assert r.is_json
    if r.status_code != 200:
        assert _written() == before
