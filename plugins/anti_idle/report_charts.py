"""Anti-idle's dashboard chart: the share of claimed study time deducted, voided or held, by rule.

Aggregated in SQL over the units in the viewer's scope and the chosen year: the time
claimed comes from the day verdicts, the time each rule took from the evidence lines
(``amount_ms`` by rule and action). Both are read from per-unit, per-year rollups
(``anti_idle_unit_years``, ``anti_idle_unit_rule_years``) rebuilt with the core's
report rollups through ``lms_report_rollups``: summing every person's verdicts and
evidence of a city took seconds per page. Rules are named in words (no rule codes on a
Chinese page); a rule this table does not know yet is counted under "other rules".
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, extract, func, insert, select

from lms_core.accounts.models import User
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit
from lms_core.reports.charts import Chart, ChartScope, Series, hours_of, percent
from plugins.anti_idle.models import DayVerdict, Evidence, UnitRuleYear, UnitYear

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
ROLLUPS = ("anti_idle_unit_years", "anti_idle_unit_rule_years")


def recomputed_years() -> Any:
    """(unit, year, claimed, held, deducted + void): ``anti_idle_unit_years`` from the day verdicts."""
    year = extract("year", DayVerdict.day)
    return (
        select(
            User.org_unit_id,
            year.label("year"),
            func.sum(DayVerdict.claimed_ms),
            func.sum(DayVerdict.held_ms),
            func.sum(DayVerdict.deducted_ms + DayVerdict.void_ms),
        )
        .join(User, User.id == DayVerdict.user_id)
        .group_by(User.org_unit_id, year)
    )


def recomputed_rules() -> Any:
    """(unit, year, rule, action, ms): ``anti_idle_unit_rule_years`` from the evidence lines that take time."""
    year = extract("year", Evidence.day)
    return (
        select(User.org_unit_id, year.label("year"), Evidence.rule, Evidence.action, func.sum(Evidence.amount_ms))
        .join(User, User.id == Evidence.user_id)
        .where(Evidence.action.in_(ACTIONS))
        .group_by(User.org_unit_id, year, Evidence.rule, Evidence.action)
    )


def rebuild_years() -> int:
    """Replace ``anti_idle_unit_years`` from the verdicts (the caller's transaction); rows written."""
    db.session.execute(delete(UnitYear))
    columns = ["org_unit_id", "year", "claimed_ms", "held_ms", "cut_ms"]
    db.session.execute(insert(UnitYear).from_select(columns, recomputed_years()))
    return db.session.execute(select(func.count()).select_from(UnitYear)).scalar_one()


def rebuild_rules() -> int:
    """Replace ``anti_idle_unit_rule_years`` from the evidence lines; rows written."""
    db.session.execute(delete(UnitRuleYear))
    columns = ["org_unit_id", "year", "rule", "action", "amount_ms"]
    db.session.execute(insert(UnitRuleYear).from_select(columns, recomputed_rules()))
    return db.session.execute(select(func.count()).select_from(UnitRuleYear)).scalar_one()


def rollups() -> list[tuple[str, Any]]:
    return list(zip(ROLLUPS, (rebuild_years, rebuild_rules), strict=True))


def time_taken_by_rule(scope: ChartScope) -> Chart:
    """Read from the rollups (as of the dashboard's stamp), restricted to the scope's units in SQL."""
    in_scope = (OrgUnit.id == UnitYear.org_unit_id, scope.units_condition(OrgUnit.path))
    claimed = db.session.execute(
        select(func.sum(UnitYear.claimed_ms), func.sum(UnitYear.held_ms), func.sum(UnitYear.cut_ms)).where(
            *in_scope, UnitYear.year == scope.year
        )
    ).one()
    claimed_ms, held_ms, cut_ms = (int(v or 0) for v in claimed)
    stmt = (
        select(UnitRuleYear.rule, UnitRuleYear.action, func.sum(UnitRuleYear.amount_ms))
        .join(OrgUnit, OrgUnit.id == UnitRuleYear.org_unit_id)
        .where(scope.units_condition(OrgUnit.path), UnitRuleYear.year == scope.year)
        .group_by(UnitRuleYear.rule, UnitRuleYear.action)
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
