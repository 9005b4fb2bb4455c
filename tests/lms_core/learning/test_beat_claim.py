"""What a beat's read gives the plugins and the events: the claim, the bytes served, the registration.

The beat's locked read leaves the enrolment out (its registration is read only by the beats
whose events carry it) and reads the bytes served only for a lesson with media; the claim is
built by ``IntervalClaim.of``. These check that the plugins and the events see what they saw.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.learning import services
from lms_core.learning.assessment import IntervalClaim
from lms_core.media import services as media
from lms_core.pluginhost import hookimpl
from tests.lms_core.learning.test_beats import T0, beat, learner, open_session  # noqa: F401 (fixture)

S = dt.timedelta(seconds=1)


class Keep:
    """Keeps every claim the assessment hook is given, and judges nothing."""

    def __init__(self) -> None:
        self.claims: list[IntervalClaim] = []

    @hookimpl
    def lms_assess_interval(self, claim):
        self.claims.append(claim)


KEEP = Keep()


@pytest.fixture
def kept():
    KEEP.claims.clear()
    return KEEP.claims


@pytest.mark.app_config(LMS_PLUGIN_OBJECTS={"keep": KEEP})
def test_a_video_beats_claim_has_the_sessions_bytes_served(kit, learner, kept):  # noqa: F811 (fixture)
    s = open_session(learner, kit.video)
    media.record_delivery(s.id, learner.id, kit.video.media_id, 1500)
    media.record_delivery(s.id, learner.id, kit.video.media_id, 700)
    beat(s, learner, T0 + 10 * S, seq=1, segments=[[0, 10]], position=10)
    (claim,) = kept
    assert claim.bytes_served == 2200
    assert claim.media_size == kit.video.media.size_bytes
    assert claim.media_duration_ms == kit.video.media.duration_ms
    assert claim.lesson_kind == "video" and type(claim.lesson_kind) is str
    assert claim.course_id == kit.course.id and claim.previous_seq == 0


@pytest.mark.app_config(LMS_PLUGIN_OBJECTS={"keep": KEEP})
def test_a_documents_claim_has_its_files_bytes_served_and_none_without_a_file(kit, learner, kept):  # noqa: F811
    s = open_session(learner, kit.document)
    media.record_delivery(s.id, learner.id, kit.document.media_id, 300)
    beat(s, learner, T0 + 10 * S, seq=1, visible_ms=10_000)
    size = kit.document.media.size_bytes
    kit.document.media_id = None  # a lesson without a file: nothing served is read
    db.session.commit()
    beat(s, learner, T0 + 20 * S, seq=2, visible_ms=10_000)
    with_file, without = kept
    assert (with_file.bytes_served, with_file.media_size) == (300, size)
    assert (without.bytes_served, without.media_size, without.media_duration_ms) == (None, None, None)
    assert without.lesson_kind == "document" and without.claimed == ((0, 10_000),)


def test_video_events_and_the_end_carry_the_enrolments_registration(kit, learner):  # noqa: F811 (fixture)
    registration = services.enrolment_for(learner, kit.course.id).registration
    s = open_session(learner, kit.video)
    beat(s, learner, T0 + 10 * S, seq=1, event="play", segments=[[0, 10]], position=10)
    beat(s, learner, T0 + 20 * S, seq=2, segments=[[10, 20]], position=20)
    beat(s, learner, T0 + 30 * S, seq=3, event="pause", segments=[[20, 30]], position=30)
    beat(s, learner, T0 + 31 * S, seq=4, event="terminate", position=30)
    names = ("video.played", "video.paused", "lesson.terminated")
    events = db.session.query(Event).filter(Event.name.in_(names)).order_by(Event.id).all()
    assert [e.name for e in events] == list(names)
    for e in events:
        assert e.payload["registration"] == registration
        assert e.payload["session_id"] == s.id and e.payload["lesson_id"] == kit.video.id


def _values() -> dict[str, object]:
    at = dt.datetime(2026, 5, 10, 1, 0, tzinfo=dt.UTC)
    return {
        "user_id": 1,
        "lesson_id": 2,
        "session_id": "s",
        "seq": 3,
        "lesson_kind": "video",
        "event": "heartbeat",
        "wall_start": at,
        "wall_end": at + 10 * S,
        "claimed": ((0, 10_000),),
        "position_ms": 10_000,
        "media_duration_ms": 60_000,
        "bytes_served": 4096,
        "client": {"visibility": "visible"},
        "visible_ms": 10_000,
        "credit_from": at,
        "session_started_at": at,
        "media_size": 8192,
        "course_id": 4,
        "previous_seq": 2,
    }


def test_of_builds_the_claim_init_builds():
    values = _values()
    assert set(values) == {f.name for f in dataclasses.fields(IntervalClaim)}
    fast, slow = IntervalClaim.of(**values), IntervalClaim(**values)
    assert fast == slow
    assert vars(fast) == vars(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.seq = 4  # type: ignore[misc]


def test_of_with_a_name_missing_or_unknown_is_refused_as_init_refuses_it():
    values = _values()
    del values["previous_seq"]
    assert IntervalClaim.of(**values) == IntervalClaim(**values)  # a default: as __init__ has it
    values["previous_sequence"] = 2
    with pytest.raises(TypeError):
        IntervalClaim.of(**values)
    del values["previous_sequence"], values["seq"]
    with pytest.raises(TypeError):
        IntervalClaim.of(**values)
