"""Anti-idle's dashboard chart: the share of claimed study time deducted, voided or held, by rule.

Aggregated in SQL over the units in the viewer's scope and the chosen year: the time
claimed comes from the day verdicts, the time each rule took from the evidence lines
(``amount_ms`` by rule and action). Both are read from per-subtree, per-year rollups
(``anti_idle_subtree_years``, ``anti_idle_subtree_rule_years``: each unit with
everything under it, summed by the refresh) rebuilt with the core's report rollups
through ``lms_report_rollups``: summing every person's verdicts and evidence of a city
took seconds per page, and summing every unit's row still 8 ms of PostgreSQL. Rules are
named in words (no rule codes on a Chinese page); a rule this table does not know yet is counted under "other rules".
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import extract, func, select

from lms_core.accounts.models import User
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit
from lms_core.reports.charts import Chart, ChartScope, Series, hours_of, percent
from lms_core.reports.figures import replace, summed_up
from plugins.anti_idle.models import DayVerdict, Evidence, SubtreeRuleYear, SubtreeYear

#: Short names of the rules (docs/anti_idle.md), for chart axes and tables.
RULE_NAMES: dict[str, Any] = {
    "R01": _l("Playback too fast"),
    "R02": _l("Skipped content"),
    "R03": _l("Forged or replayed progress"),
    "R04": _l("Several lessons at once"),
    "R05": _l("Player hidden"),
    "R06": _l("Silent playback"),
    "R07": _l("Attention check missed"),
    "R07b": _l("Automated check answer"),
    "R08": _l("No real input"),
    "R09": _l("Machine-like timing"),
    "R10": _l("Lesson cap"),
    "R10a": _l("Daily cap"),
    "R11": _l("Automation tool"),
    "R12": _l("Shared device"),
    "R13": _l("Tampered client"),
    "R14": _l("Media not delivered"),
    "R15": _l("In-video quiz abuse"),
    "R16": _l("Irregular playback"),
    "R17": _l("Cherry-picked content"),
    #: A day held as a whole (its review score reached the threshold), not one rule.
    "HOLD": _l("Day held for review"),
}
#: Evidence actions that take time away, in the order of the chart's series.
ACTIONS = ("deduct", "void", "hold")


def rule_name(rule: str) -> str:
    name = RULE_NAMES.get(rule)
    if name is None and rule[:3] in RULE_NAMES:  # e.g. R10c: a variant of R10
        name = RULE_NAMES[rule[:3]]
    return str(name) if name is not None else _("Other rules")


#: The rollups' stamp names (``lms_report_rollups``).
ROLLUPS = ("anti_idle_subtree_years", "anti_idle_subtree_rule_years")


def recomputed_years() -> Any:
    """(unit, year, claimed, held, deducted + void) at or under each unit: ``anti_idle_subtree_years``."""
    year = extract("year", DayVerdict.day)
    per_unit = (
        select(
            User.org_unit_id,
            year.label("year"),
            func.sum(DayVerdict.claimed_ms).label("claimed"),
            func.sum(DayVerdict.held_ms).label("held"),
            func.sum(DayVerdict.deducted_ms + DayVerdict.void_ms).label("cut"),
        )
        .join(User, User.id == DayVerdict.user_id)
        .group_by(User.org_unit_id, year)
    )
    return summed_up(per_unit, keys=1)


def recomputed_rules() -> Any:
    """(unit, year, rule, action, ms) at or under each unit: ``anti_idle_subtree_rule_years`` from the evidence."""
    year = extract("year", Evidence.day)
    per_unit = (
        select(User.org_unit_id, year.label("year"), Evidence.rule, Evidence.action, func.sum(Evidence.amount_ms))
        .join(User, User.id == Evidence.user_id)
        .where(Evidence.action.in_(ACTIONS))
        .group_by(User.org_unit_id, year, Evidence.rule, Evidence.action)
    )
    return summed_up(per_unit, keys=3)


def rebuild_years() -> int:
    """Replace ``anti_idle_subtree_years`` from the verdicts (the caller's transaction); rows written."""
    return replace(SubtreeYear, ["unit_id", "year", "claimed_ms", "held_ms", "cut_ms"], recomputed_years())


def rebuild_rules() -> int:
    """Replace ``anti_idle_subtree_rule_years`` from the evidence lines; rows written."""
    return replace(SubtreeRuleYear, ["unit_id", "year", "rule", "action", "amount_ms"], recomputed_rules())


def rollups() -> list[tuple[str, Any]]:
    return list(zip(ROLLUPS, (rebuild_years, rebuild_rules), strict=True))


def time_taken_by_rule(scope: ChartScope) -> Chart:
    """Read from the rollups (as of the dashboard's stamp): the root's subtree row, or each top unit's.

    The root lies in the viewer's scope and a scope is a set of whole subtrees, so the
    root's subtree figure is all in scope; the scope condition on the subtree's unit
    still guards in SQL (as the core's monthly trend does).
    """
    tops = [scope.root.id] if scope.root is not None else [g[0] for g in scope.group_finder()[0]]
    in_scope = (OrgUnit.id.in_(tops), scope.units_condition(OrgUnit.path))
    claimed = db.session.execute(
        select(func.sum(SubtreeYear.claimed_ms), func.sum(SubtreeYear.held_ms), func.sum(SubtreeYear.cut_ms))
        .join(OrgUnit, OrgUnit.id == SubtreeYear.unit_id)
        .where(*in_scope, SubtreeYear.year == scope.year)
    ).one()
    claimed_ms, held_ms, cut_ms = (int(v or 0) for v in claimed)
    stmt = (
        select(SubtreeRuleYear.rule, SubtreeRuleYear.action, func.sum(SubtreeRuleYear.amount_ms))
        .join(OrgUnit, OrgUnit.id == SubtreeRuleYear.unit_id)
        .where(*in_scope, SubtreeRuleYear.year == scope.year)
        .group_by(SubtreeRuleYear.rule, SubtreeRuleYear.action)
    )
    by_name: dict[str, dict[str, int]] = {}
    for rule, action, ms in db.session.execute(stmt):
        per = by_name.setdefault(rule_name(rule), dict.fromkeys(ACTIONS, 0))
        per[action] += int(ms or 0)
    names = sorted(by_name, key=lambda n: -sum(by_name[n].values()))
    labels = {"deduct": _("Deducted"), "void": _("Void"), "hold": _("Held for review")}
    series = [Series(labels[a], [percent(by_name[n][a], claimed_ms) for n in names]) for a in ACTIONS]
    # The share taken comes from the day verdicts (credited + held + deducted + void = claimed),
    # not from the evidence lines: two rules can cut the same seconds, so the lines' sum can
    # pass 100 % (the demo showed 108.8 %); each rule's bar is its own lines' share.
    taken = held_ms + cut_ms
    summary = (
        _(
            "Of %(claimed)s hours of study claimed this year, %(share)s%% was deducted, voided or held by "
            "the anti-idle rules; %(held)s hours are held for an auditor's review.",
            claimed=f"{hours_of(claimed_ms):.2f}",
            share=percent(taken, claimed_ms),
            held=f"{hours_of(held_ms):.2f}",
        )
        if claimed_ms
        else _("No study time was assessed this year.")
    )
    return Chart(
        "anti_idle",
        _("Share of study time deducted or held, by rule"),
        "hbar",
        _("Rule"),
        names,
        series,
        "%",
        summary,
        order=30,
        extra_headers=[_("Hours taken")],
        extra=[[f"{hours_of(sum(by_name[n].values())):.2f}"] for n in names],
    )


def charts(scope: ChartScope) -> list[Chart]:
    return [time_taken_by_rule(scope)]
