"""The straight beat's assessment (``services._assess_one``) against the general one (``_assess``).

``_assess_one`` keeps the credited ranges as one range while every plugin's verdict credits one
range; the general path normalises and intersects lists. Random budgets and plugin verdicts
(one range, none, several, inverted, negative, odd tuples, slow-playback ``credited_ms``,
answers) must give the same credited time, verdict, reasons and answer.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lms_core.learning import beat_tx, services
from lms_core.learning.assessment import _SEVERITY, IntervalClaim, Verdict

T0 = dt.datetime(2026, 5, 10, 8, 0, tzinfo=dt.UTC)

ms = st.integers(min_value=-2_000, max_value=40_000)
one_range = st.tuples(ms, ms)
ranges = st.one_of(
    st.tuples(one_range),  # the common case: one range
    st.just(()),
    st.lists(one_range, min_size=2, max_size=4).map(tuple),
    st.tuples(st.tuples(ms)),  # not a pair: skipped by ``segs.normalise``
)
verdicts = st.builds(
    Verdict,
    verdict=st.sampled_from(sorted(_SEVERITY)),
    credited=ranges,
    reason=st.sampled_from(["", "why"]),
    code=st.sampled_from(["", "R01"]),
    credited_ms=st.one_of(st.none(), st.integers(min_value=0, max_value=60_000)),
    answer=st.one_of(st.none(), st.fixed_dictionaries({"check": st.integers(0, 3)})),
)


def claim_of(claimed_ms: int, wall_ms: int) -> IntervalClaim:
    return IntervalClaim(
        user_id=1,
        lesson_id=2,
        session_id="s",
        seq=3,
        lesson_kind="document",
        event="heartbeat",
        wall_start=T0,
        wall_end=T0 + dt.timedelta(milliseconds=wall_ms),
        claimed=((0, claimed_ms),),
        position_ms=0,
        media_duration_ms=None,
        bytes_served=None,
        visible_ms=claimed_ms,
    )


def plugins_answering(answers: list[Verdict | None]) -> Any:
    """A plugin manager whose ``lms_assess_interval`` implementations answer ``answers`` in order."""
    impls = [
        SimpleNamespace(plugin_name=f"p{i}", function=lambda claim, answer=answer: answer)
        for i, answer in enumerate(answers)
    ]
    return SimpleNamespace(hook=SimpleNamespace(lms_assess_interval=SimpleNamespace(get_hookimpls=lambda: impls)))


@given(
    claimed_ms=st.integers(min_value=1, max_value=30_000),
    budget_ms=st.integers(min_value=-1_000, max_value=40_000),
    answers=st.lists(st.one_of(st.none(), verdicts), max_size=3),
)
def test_assess_one_is_assess_of_one_range(claimed_ms: int, budget_ms: int, answers: list[Verdict | None]) -> None:
    claim = claim_of(claimed_ms, wall_ms=max(budget_ms, 0))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(beat_tx, "plugin_manager", lambda: plugins_answering(answers))
        _ranges, credited_ms, label, reasons, answer = services._assess(claim, budget_ms)
        assert services._assess_one(claim, claimed_ms, budget_ms) == (credited_ms, label, reasons, answer)
