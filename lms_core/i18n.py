"""Language and time: the one time zone, and the human names of enum values.

Times are stored in UTC and shown in Beijing time; ``SHANGHAI`` is the only place
that zone is named (Babel's default time zone is set from ``TIMEZONE``).

Every enum a user can see (org unit kinds, ranks, roles, lesson kinds ...) gets its
human name here, through the catalogue, with :func:`enum_labels` next to the enum's
definition; templates show ``value|label``. A label registry that misses a member
fails at import, so a new member cannot reach a page as a raw code.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

#: The platform's time zone (China has one): every time a user sees is in it.
TIMEZONE = "Asia/Shanghai"
SHANGHAI = ZoneInfo(TIMEZONE)


def beijing_day(at: dt.datetime) -> dt.date:
    """``at.astimezone(SHANGHAI).date()``: for a UTC time inside the last day asked, that day.

    Two comparisons instead of a zone conversion: the heartbeat asks it several times a beat
    (the core's day total, the anti-idle plugin's day). Tests:
    tests/lms_core/learning/test_beijing_day.py and the plugin's test_hook_shortcuts.py."""
    global _LAST_DAY
    start, end, day = _LAST_DAY
    if at.tzinfo is dt.UTC and start <= at < end:
        return day
    day = at.astimezone(SHANGHAI).date()
    if at.tzinfo is dt.UTC and at >= _DAYS_KEPT_FROM:
        start = dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI).astimezone(dt.UTC)
        end = dt.datetime.combine(day + _ONE_DAY, dt.time(), tzinfo=SHANGHAI).astimezone(dt.UTC)
        # Kept only for a day of 24 hours that starts and ends on its own midnight (no zone
        # change inside it: the date is then ``day`` from ``start`` up to ``end``).
        if (
            end - start == _ONE_DAY
            and start <= at < end
            and start.astimezone(SHANGHAI).date() == day
            and (end - _ONE_US).astimezone(SHANGHAI).date() == day
        ):
            _LAST_DAY = (start, end, day)  # one tuple: read whole by any thread
    return day


_ONE_DAY = dt.timedelta(days=1)
_ONE_US = dt.timedelta(microseconds=1)
#: Beijing has kept one offset since 1991; days before that are never kept.
_DAYS_KEPT_FROM = dt.datetime(1992, 1, 1, tzinfo=dt.UTC)
#: ``beijing_day``'s last day kept: its UTC bounds ``[start, end)`` and its date.
_LAST_DAY: tuple[dt.datetime, dt.datetime, dt.date] = (_DAYS_KEPT_FROM, _DAYS_KEPT_FROM, dt.date(1992, 1, 1))
#: The interface languages, Chinese first (the default).
SUPPORTED_LOCALES = ("zh_Hans_CN", "en")
#: The cookie that holds an explicit choice of language.
LOCALE_COOKIE = "lms_lang"

_LABELS: dict[type[enum.Enum], Mapping[Any, Any]] = {}


def enum_labels(cls: type[enum.Enum], labels: Mapping[Any, Any]) -> None:
    """Register the human names (lazy strings) of every member of ``cls``."""
    missing = [m for m in cls if m not in labels]
    if missing:
        raise ValueError(f"{cls.__name__}: no label for {missing}")
    _LABELS[cls] = labels


def label(value: Any, cls: type[enum.Enum] | None = None) -> str:
    """The human name of an enum member (or of its raw value, given ``cls``), in the current language.

    Anything else is returned as text unchanged, so a template can apply ``|label``
    to a value that may be empty.
    """
    if value is None:
        return ""
    if cls is not None and not isinstance(value, cls):
        try:
            value = cls(value)
        except ValueError:
            return str(value)
    labels = _LABELS.get(type(value)) if isinstance(value, enum.Enum) else None
    if labels is None:
        return str(value)
    return str(labels[value])


def labels_of(cls: type[enum.Enum]) -> list[tuple[str, str]]:
    """``(value, human name)`` for every member: choices for a form's select."""
    return [(str(m.value), label(m)) for m in cls]
