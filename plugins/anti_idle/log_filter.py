"""The learning-log browser's rule filter: study sessions during which a rule left evidence.

An evidence line names a person and a span of time, not a session (a day rule such
as "four hours without a break" spans several), so a session matches when one of
its person's lines of the chosen rule overlaps the session's time. Variants of a
rule that have no name of their own (R10c, R07h ...) are found under their rule.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, func

from lms_core.pluginhost.answers import RuleFilter
from plugins.anti_idle.evidence import RULES
from plugins.anti_idle.models import Evidence
from plugins.anti_idle.report_charts import RULE_NAMES, rule_name


def codes_under(code: str) -> list[str]:
    """The evidence rule codes shown under ``code``'s name (itself and its unnamed variants)."""
    name = rule_name(code)
    return sorted({code} | {c for c in RULES if c not in RULE_NAMES and rule_name(c) == name})


def sessions_with_rule(code: str, session: Any) -> Any:
    """SQL: ``session`` overlaps an evidence line of rule ``code`` (or a variant) of its person."""
    end = func.coalesce(session.ended_at, session.last_beat_at, session.started_at)
    return exists().where(
        Evidence.user_id == session.user_id,
        Evidence.rule.in_(codes_under(code)),
        Evidence.span_start <= end,
        Evidence.span_end >= session.started_at,
    )


def rule_filter() -> RuleFilter:
    choices = tuple((code, str(name)) for code, name in RULE_NAMES.items())
    return RuleFilter(choices=choices, sessions=sessions_with_rule)
