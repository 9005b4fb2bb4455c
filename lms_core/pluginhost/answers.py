"""Value types that plugins return from hooks.

Their own module so that ``hookspecs`` (which names them) and ``manager`` (which
loads the specs) do not import each other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DashboardPanel:
    """One panel on the dashboard, contributed by ``lms_dashboard_panels``."""

    key: str
    title: str
    html: str  # already escaped / rendered by the plugin
    order: int = 100


@dataclass(frozen=True)
class CreditSummary:
    """A year's credit from a credit plugin (``lms_credit_summary``), in 0.01 学时."""

    posted_centi: int
    pending_centi: int  #: 审核中
    overflow_centi: int  #: 记录但不计入
    required_centi: int
    detail_url: str | None = None


# lms_day_picture: one plugin's layer of a learner's day (drawn by lms_core/audit/day.py).


@dataclass
class Span:
    """Something that lasted: drawn as a bar on ``lane``.

    The page names the ``kind`` (its legend entry) before ``text`` in the table and in
    the bar's tooltip, so ``text`` holds only what the kind does not say (the figures,
    the times): empty when the kind says it all. Repeating the kind read as
    "课程页面打开：课程页面打开（…）".
    """

    lane: str
    start: dt.datetime
    end: dt.datetime
    kind: str
    text: str


@dataclass
class Mark:
    """Something that happened at one moment: drawn as a tick on ``lane``; ``text`` as a Span's."""

    lane: str
    at: dt.datetime
    kind: str
    text: str


@dataclass
class Section:
    """A table beside the picture (evidence lines, ledger entries): headers and text rows."""

    key: str
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class DayLayer:
    """What one plugin adds to the picture."""

    spans: list[Span] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    #: Short facts shown above the picture, e.g. "审核中 12 分钟".
    facts: list[str] = field(default_factory=list)


# lms_log_rule_filter: rules the learning-log browser can filter study sessions by.


@dataclass(frozen=True)
class RuleFilter:
    """A plugin's rules offered as a filter of the log browser's study sessions.

    ``choices`` are ``(code, name)`` pairs: the code goes in the URL, the name (in the
    reader's language, no internal code) in the picker. ``sessions(code, session)`` is a
    SQL condition on the ``LearningSession`` entity ``session``, true for the sessions
    during which rule ``code`` left an evidence line; the core adds it to its query, so
    scope, keyset paging and exports stay the core's.
    """

    choices: tuple[tuple[str, str], ...]
    sessions: Callable[[str, Any], Any]
