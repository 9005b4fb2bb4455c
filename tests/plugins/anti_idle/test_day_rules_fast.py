"""The day rules' shortcuts for the bulk recompute give what their plain forms give."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.anti_idle import day_rules

T0 = dt.datetime(2026, 5, 9, 12, 0, tzinfo=dt.UTC)  # 20:00 in Beijing

spans_st = st.lists(
    st.tuples(st.integers(0, 3 * 86_400_000_000), st.integers(0, 30 * 3_600_000_000)).map(
        lambda t: (T0 + dt.timedelta(microseconds=t[0]), T0 + dt.timedelta(microseconds=t[0] + t[1]))
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(spans_st, st.integers(0, 3))
def test_night_ms_of_one_day_equals_the_per_day_map(spans, offset):
    day = (T0 + dt.timedelta(hours=8)).date() + dt.timedelta(days=offset)
    assert day_rules._night_ms_of(day, spans) == day_rules._night_ms(spans).get(day, 0)
