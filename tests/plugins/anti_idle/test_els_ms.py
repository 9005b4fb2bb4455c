"""Milliseconds of a span are counted in integers, the same online and in the recompute.

``els.ms`` went through float seconds and read 1,001 ms as 1,000 (1.001 * 1000 < 1001):
credit and deductions (the night minutes of R10d, the continuous run of R10c) came out up
to 1 ms short for such spans.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugins.anti_idle import day_rules, els
from plugins.anti_idle.policy import DEFAULTS
from tests.plugins.anti_idle import els_reference
from tests.plugins.anti_idle import test_els_equivalence as eq

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


def _judge(module, k: int, *, clock=None, client=None, kind="video"):
    """One beat received ``k`` ms after its wall start, claiming 2 s more than that."""
    beat = dict(
        session_id="s0",
        lesson_id=0,
        lesson_kind=kind,
        event="heartbeat",
        seq=1,
        wall_start=eq.T0,
        received_at=eq.T0 + dt.timedelta(milliseconds=k),
        launched_at=eq.T0 - dt.timedelta(hours=1),
        claimed=((0, k + 2000),),
        duration_ms=3_600_000,
        bytes_served=3_600_000,
        media_size=3_600_000,
        client=client or {},
    )
    (out,) = eq.chain(module, [beat], dict(DEFAULTS), [], clock)
    return out.credited_ms, dict(out.cuts)


#: Whole-millisecond spans that float seconds (``int(us / 1e6 * 1000)``) read 1 ms short.
SHORT_THROUGH_FLOAT = (16_002, 512_007)


@pytest.mark.parametrize("k", SHORT_THROUGH_FLOAT)
def test_the_judgements_own_spans_count_whole_milliseconds(k):
    """The full path's budget, R04's overlap, R05's hidden and R08's idle excess counted
    through float seconds (1 ms short: 1 ms less credit, or 1 ms more past the grace); the
    frozen reference and the fast path's ``wall_ms`` count in integers."""
    later = eq.T0 + dt.timedelta(milliseconds=k)
    cases = {
        "budget": ((k + 1000, {}), {}),
        "R04": ((30_000 + 1000, {"R04": k}), {"k": k + 30_000, "clock": later}),
        "R05": ((60_000, {"R05": k}), {"k": k + 60_000, "client": {"visibility": "hidden"}}),
    }
    for name, (expected, how) in cases.items():
        args = {"k": k, **how}
        assert _judge(els, **args) == expected, name
        assert _judge(els_reference, **args) == expected, name
    # R08 (documents with no trusted input) came after the reference was frozen.
    idle = {"presence": {"idle_ms": 600_000 + k}}
    assert _judge(els, k + 60_000, client=idle, kind="document") == (60_000, {"R08": k})
