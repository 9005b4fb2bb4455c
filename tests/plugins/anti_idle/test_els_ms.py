"""Milliseconds of a span are counted in integers, the same online and in the recompute.

``els.ms`` went through float seconds and read 1,001 ms as 1,000 (1.001 * 1000 < 1001):
credit and deductions (the night minutes of R10d, the continuous run of R10c) came out up
to 1 ms short for such spans.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from plugins.anti_idle import day_rules, els
from tests.plugins.anti_idle import els_reference

US = dt.timedelta(microseconds=1)


def test_whole_milliseconds_are_not_read_one_short():
    for k in (1001, 1003, 2002, 4350, 10_001, 86_399_999):
        assert els.ms(dt.timedelta(milliseconds=k)) == k
        assert els._ms(k * 1000) == k


@given(st.integers(-(10**13), 10**13))
def test_ms_truncates_whole_microseconds_toward_zero(us):
    expected = abs(us) // 1000 * (1 if us >= 0 else -1)
    assert els.ms(us * US) == expected
    assert els._ms(us) == expected  # the online beat's and the recompute's counting
    assert els_reference.ms(us * US) == expected  # the frozen reference counts the same way


def test_a_night_deduction_counts_the_whole_span():
    day = dt.date(2026, 5, 10)
    start = dt.datetime(2026, 5, 10, 1, 0, tzinfo=els.SHANGHAI)
    span = (start, start + dt.timedelta(milliseconds=1001))
    assert day_rules._night_ms_of(day, [span]) == 1001
    assert day_rules._night_ms([span]) == {day: 1001}
