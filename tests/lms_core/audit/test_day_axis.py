"""lms_core/audit/day.py build(): the time axis of a day picture (no database)."""

from __future__ import annotations

import datetime as dt

from lms_core.audit.day import DayLayer, Span, build, day_bounds

DAY = dt.date(2026, 5, 10)


def _axis(start_h: float, end_h: float) -> list[str]:
    day_start, _end = day_bounds(DAY)
    span = Span("会话 1", day_start + dt.timedelta(hours=start_h), day_start + dt.timedelta(hours=end_h), "session", "")
    return [label for _x, label in build(1, DAY, [DayLayer(spans=[span])]).ticks]


def test_the_axis_ends_at_24_00_not_at_the_next_days_00_00() -> None:
    assert _axis(9, 23.5) == ["09:00", "12:00", "15:00", "18:00", "21:00", "24:00"]


def test_whole_steps_never_run_past_midnight() -> None:
    """10:00-24:00 is 14 h, shown in 3 h steps: the axis starts at 09:00 rather than ending at 01:00."""
    assert _axis(10.5, 23.5) == ["09:00", "12:00", "15:00", "18:00", "21:00", "24:00"]


def test_a_morning_keeps_its_own_hours() -> None:
    assert _axis(9, 9.5) == ["09:00", "10:00"]
