"""With the plugin on, a beat's budget is its whole span in milliseconds, online and in the recompute.

The core's budget and the plugin's full-path budget went through float seconds (16.002 s read
as 16,001 ms), while the plugin's fast path and its frozen reference counted in integers: the
ledger credited 1 ms less than the span and its one-second tolerance.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.lms_core.learning.fixtures import build_course
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0, make_learner

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])


@pytest.mark.parametrize("k", [16_002, 32_013])
def test_a_beat_earns_its_whole_span_and_the_tolerance(app, tree, k):
    learner = make_learner(tree, build_course(tree))
    tab = learner.open(deliver=LECTURE_BYTES)
    r = learner.beat(tab, T0 + dt.timedelta(milliseconds=k), [[0, (k + 2000) / 1000]])
    assert r.credited_ms == k + 1000
    assert learner.credited_s() * 1000 == k + 1000
    assert learner.recompute().credited_ms == k + 1000  # the recompute agrees with the online beat
