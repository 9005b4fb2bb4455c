"""Beijing time for pages, with the locale's Babel patterns looked up once.

Flask-Babel's ``format_datetime`` finds the locale, the time zone and the locale's
patterns again for every value it formats (about 50 µs each): a log page of 200
rows spent 10-20 ms of its CPU there. Here the patterns are parsed once per locale
and format, and applied exactly as Babel's ``format_datetime`` / ``format_date``
apply them, so the text is the same (``tests/lms_core/test_dateformat.py`` compares
the two for every named format, in both interface languages).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from babel import Locale
from babel.dates import get_date_format, get_datetime_format, get_time_format, parse_pattern
from flask_babel import get_locale

from lms_core.i18n import SHANGHAI

#: Babel's named formats; anything else is a pattern such as ``yyyy-MM-dd``.
NAMED = ("full", "long", "medium", "short")


@lru_cache(maxsize=64)
def _datetime_patterns(locale_id: str, fmt: str) -> tuple[Locale, str | None, Any, Any]:
    """(locale, how date and time are joined, date pattern, time pattern); no join for a custom pattern."""
    locale = Locale.parse(locale_id)
    if fmt not in NAMED:
        return locale, None, parse_pattern(fmt), None
    named: Any = fmt  # one of NAMED (Babel's stubs want the literal type)
    joined = str(get_datetime_format(named, locale=locale)).replace("'", "")
    date_pattern = parse_pattern(get_date_format(named, locale=locale))
    return locale, joined, date_pattern, parse_pattern(get_time_format(named, locale=locale))


@lru_cache(maxsize=64)
def _date_pattern(locale_id: str, fmt: str) -> tuple[Locale, Any]:
    locale = Locale.parse(locale_id)
    named: Any = fmt
    return locale, parse_pattern(get_date_format(named, locale=locale) if fmt in NAMED else fmt)


def _locale_id() -> str:
    return str(get_locale() or "zh_Hans_CN")


def beijing(value: dt.datetime) -> dt.datetime:
    """A stored time in Beijing time (a naive value is UTC, as the database stores it)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(SHANGHAI)


def format_datetime(value: dt.datetime, fmt: str = "medium") -> str:
    """``flask_babel.format_datetime(value, fmt)``, in Beijing time and the request's locale."""
    locale, joined, date_p, time_p = _datetime_patterns(_locale_id(), fmt)
    local = beijing(value)
    if joined is None:
        return str(date_p.apply(local, locale))
    # As babel.dates.format_datetime: the time part from timetz() with the day as the
    # reference (zone names), the date part from the date.
    time_text = time_p.apply(local.timetz(), locale, reference_date=local.date())
    return joined.replace("{0}", time_text).replace("{1}", date_p.apply(local.date(), locale))


def format_date(value: dt.datetime | dt.date, fmt: str = "long") -> str:
    """``flask_babel.format_date(value, fmt)``: a time is first put in Beijing time."""
    locale, pattern = _date_pattern(_locale_id(), fmt)
    day = beijing(value).date() if isinstance(value, dt.datetime) else value
    return str(pattern.apply(day, locale))
