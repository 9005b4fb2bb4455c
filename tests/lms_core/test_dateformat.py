"""``lms_core.dateformat`` writes exactly what Flask-Babel writes, in Beijing time.

The page filters ``localdt`` / ``localdate`` use it instead of Flask-Babel's functions
because it looks the locale's patterns up once (a 200-row page spent 10-20 ms of CPU in
the look-ups); the text must not change for that.
"""

from __future__ import annotations

import datetime as dt

import flask_babel
import pytest
from flask import Flask

from lms_core import dateformat
from lms_core.i18n import LOCALE_COOKIE, SUPPORTED_LOCALES
from lms_core.templating import localdate, localdt

pytestmark = pytest.mark.backends("sqlite")  # no database involved: one backend is enough

MOMENTS = [
    dt.datetime(2026, 3, 1, 5, 6, 7, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 31, 16, 0, 0, tzinfo=dt.UTC),  # midnight in Beijing: the next day there
    dt.datetime(2026, 12, 31, 15, 59, 59, 999999, tzinfo=dt.UTC),
    dt.datetime(2024, 2, 29, 23, 30),  # noqa: DTZ001 - naive: stored UTC
    dt.datetime(1988, 6, 1, 12, 0, tzinfo=dt.UTC),  # China kept summer time then
    dt.datetime(2026, 7, 4, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
]
DATE_FORMATS = ["short", "medium", "long", "full", "yyyy-MM-dd", "yyyy年M月d日 EEEE"]
FORMATS = [*DATE_FORMATS, "HH:mm", "yyyy-MM-dd HH:mm:ss"]


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_same_text_as_flask_babel(app: Flask, locale: str) -> None:
    with app.test_request_context("/", headers={"Cookie": f"{LOCALE_COOKIE}={locale}"}):
        assert str(flask_babel.get_locale()) == locale
        for moment in MOMENTS:
            for fmt in FORMATS:
                babel_text = flask_babel.format_datetime(moment, fmt)
                assert dateformat.format_datetime(moment, fmt) == babel_text, (moment, fmt)
                assert localdt(moment, fmt) == babel_text
            for fmt in DATE_FORMATS:
                assert dateformat.format_date(moment, fmt) == flask_babel.format_date(moment, fmt), (moment, fmt)
                assert localdate(moment.date(), fmt) == flask_babel.format_date(moment.date(), fmt)


def test_times_are_beijing_times(app: Flask) -> None:
    with app.test_request_context("/"):
        late = dt.datetime(2026, 12, 31, 16, 30, tzinfo=dt.UTC)
        assert localdt(late, "yyyy-MM-dd HH:mm") == "2027-01-01 00:30"
        assert localdate(late, "yyyy-MM-dd") == "2027-01-01"
        assert localdt(late) == "2027年1月1日 00:30:00"
        assert localdt("2026-12-31T16:30:00Z", "HH:mm") == "00:30"
