"""``services.beijing_day`` keeps the last day asked (its UTC bounds) and answers from it:
the answer must stay the zone's for any time, in any order, around midnights and before 1992
(when Beijing still had summer time)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from lms_core.i18n import SHANGHAI
from lms_core.learning import services


@given(
    ats=st.lists(
        st.one_of(
            st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)),  # noqa: DTZ001
            # around Beijing's midnights (16:00 UTC) of a few days, where the kept day ends
            st.builds(
                lambda d, us: dt.datetime(2026, 12, 1, 16) + dt.timedelta(days=d, microseconds=us),  # noqa: DTZ001
                st.integers(-2, 2),
                st.integers(-2_000_000, 2_000_000),
            ),
            # the summer times of 1986-1991
            st.datetimes(min_value=dt.datetime(1986, 1, 1), max_value=dt.datetime(1992, 1, 1)),  # noqa: DTZ001
        ).map(lambda at: at.replace(tzinfo=dt.UTC)),
        min_size=1,
        max_size=6,
    )
)
def test_beijing_day_is_the_zones(ats: list[dt.datetime]) -> None:
    for at in ats:  # in turn: each may be answered from the day the one before kept
        assert services.beijing_day(at) == at.astimezone(SHANGHAI).date()
    other = ats[0].astimezone(dt.timezone(dt.timedelta(hours=-5)))  # aware, not UTC: the zone's way
    assert services.beijing_day(other) == other.astimezone(SHANGHAI).date()


def test_a_kept_day_ends_at_beijing_midnight() -> None:
    midnight = dt.datetime(2026, 12, 7, 16, tzinfo=dt.UTC)  # 2026-12-08 00:00 in Beijing
    assert services.beijing_day(midnight - dt.timedelta(hours=1)) == dt.date(2026, 12, 7)
    assert services.beijing_day(midnight - dt.timedelta(microseconds=1)) == dt.date(2026, 12, 7)
    assert services.beijing_day(midnight) == dt.date(2026, 12, 8)
    assert services.beijing_day(midnight - dt.timedelta(microseconds=1)) == dt.date(2026, 12, 7)
