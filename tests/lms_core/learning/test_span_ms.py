"""The core counts a span's milliseconds in integers: the beat's budget and its wall time.

``int(delta.total_seconds() * 1000)`` read 1.001 s as 1,000 ms (1.001 * 1000 < 1001; 741 of
the first 100,000 whole-millisecond spans), so the core's wall-clock budget for a beat came out
1 ms short for such spans.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lms_core.extensions import db
from lms_core.learning.assessment import IntervalClaim, span_ms
from lms_core.learning.models import LearningInterval
from plugins.anti_idle import els
from tests.lms_core.learning.test_beats import T0, beat, learner, open_session  # noqa: F401 (fixture)

US = dt.timedelta(microseconds=1)
#: Whole-millisecond spans that float seconds read 1 ms short.
SHORT_THROUGH_FLOAT = (1001, 1003, 2002, 4004, 16_002, 512_007)


def test_whole_milliseconds_are_not_read_one_short():
    for k in SHORT_THROUGH_FLOAT:
        assert int(dt.timedelta(milliseconds=k).total_seconds() * 1000) == k - 1  # the old reading
        assert span_ms(dt.timedelta(milliseconds=k)) == k


@given(st.integers(-(10**13), 10**13))
def test_span_ms_truncates_whole_microseconds_toward_zero(us):
    expected = abs(us) // 1000 * (1 if us >= 0 else -1)
    assert span_ms(us * US) == expected
    assert span_ms(us * US) == els.ms(us * US)  # the plugin's budget counts the same way


def test_a_claims_wall_time_is_whole_milliseconds():
    claim = IntervalClaim(
        user_id=1,
        lesson_id=1,
        session_id="s",
        seq=1,
        lesson_kind="video",
        event="heartbeat",
        wall_start=T0,
        wall_end=T0 + dt.timedelta(milliseconds=1001),
        claimed=((0, 5000),),
        position_ms=5000,
        media_duration_ms=100_000,
        bytes_served=None,
    )
    assert claim.wall_ms == 1001


@pytest.mark.parametrize("k", SHORT_THROUGH_FLOAT[:3])
def test_the_beats_budget_is_its_whole_span_and_the_tolerance(kit, learner, k):  # noqa: F811 (fixture)
    s = open_session(learner, kit.document)
    r = beat(s, learner, T0 + dt.timedelta(milliseconds=k), seq=1, visible_ms=k + 5000)
    assert r.credited_ms == k + 1000  # the span and the one-second tolerance, not a millisecond less
    interval = db.session.query(LearningInterval).one()
    assert interval.credited_ms == k + 1000 and interval.reasons[0]["wall_ms"] == k
