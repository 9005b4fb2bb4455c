"""The dashboards' other core rollups: head counts and enrolments per unit and rank band, and the tree's closure.

Like the hours rollup (:mod:`lms_core.reports.monthly`), these are derived rows,
rebuilt in one transaction from their sources by :func:`rebuild` and read by the
charts instead of the sources: the city dashboard used to count 100,000 people and
300,000 enrolments on every page load. A person counts under their *current* unit
and rank band, as in the hours rollup, so the charts of one page agree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, case, cast, delete, extract, func, insert, select, true

from lms_core.accounts.models import User, UserStatus
from lms_core.enrolments.models import Enrolment
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit
from lms_core.reports.models import SubtreeMonth, UnitAncestor, UnitEnrolments, UnitHeads, UnitMonth

HEADS = "unit_heads"
ENROLMENTS = "unit_enrolments"
ANCESTORS = "unit_ancestors"
SUBTREE_MONTHS = "subtree_months"
#: The rollups this module rebuilds, by the name their stamp is kept under.
NAMES = (HEADS, ENROLMENTS, ANCESTORS, SUBTREE_MONTHS)


def beijing_year(moment: Any) -> ColumnElement[Any]:
    """SQL for the Beijing calendar year of a UTC timestamp column, on PostgreSQL and SQLite."""
    if db.session.get_bind().dialect.name == "postgresql":
        return extract("year", func.timezone("Asia/Shanghai", moment))
    # SQLite keeps naive UTC text; China has had no daylight saving time since 1991.
    return extract("year", func.datetime(moment, "+8 hours"))


def recomputed_heads() -> Any:
    """(unit, band, active people): the rows of ``report_unit_heads`` computed from ``users``."""
    return (
        select(User.org_unit_id, User.rank_band, func.count())
        .where(User.status == UserStatus.ACTIVE)
        .group_by(User.org_unit_id, User.rank_band)
    )


def recomputed_enrolments() -> Any:
    """(unit, year, band, enrolments, completed): ``report_unit_enrolments`` computed from ``enrolments``."""
    year = beijing_year(Enrolment.enrolled_at)
    return (
        select(
            User.org_unit_id,
            year.label("year"),
            User.rank_band,
            func.count(),
            func.sum(case((Enrolment.completed_at.is_not(None), 1), else_=0)),
        )
        .join(User, User.id == Enrolment.user_id)
        .group_by(User.org_unit_id, year, User.rank_band)
    )


def ancestor_pairs() -> list[dict[str, int]]:
    """(unit, ancestor) for every unit and each unit on its path, itself included, from ``org_units.path``."""
    pairs = []
    for unit_id, path in db.session.execute(select(OrgUnit.id, OrgUnit.path)):
        pairs += [{"unit_id": unit_id, "ancestor_id": int(a)} for a in path.split("/") if a]
    return pairs


def recomputed_subtree_months() -> Any:
    """(unit, month, ms, learners) of each unit's subtree, from ``report_unit_months`` and the closure."""
    return (
        select(UnitAncestor.ancestor_id, UnitMonth.month, func.sum(UnitMonth.credited_ms), func.sum(UnitMonth.learners))
        .join(UnitAncestor, UnitAncestor.unit_id == UnitMonth.org_unit_id)
        .group_by(UnitAncestor.ancestor_id, UnitMonth.month)
    )


def _rebuild_ancestors() -> int:
    """Replace the closure; the number of pairs written."""
    db.session.execute(delete(UnitAncestor))
    if db.session.get_bind().dialect.name == "postgresql":
        # Split in SQL, one statement: 20,000 pairs sent row by row took 3.5 s (at load 17).
        step = func.unnest(func.string_to_array(OrgUnit.path, "/")).table_valued("part").render_derived().lateral()
        pairs = select(OrgUnit.id, cast(step.c.part, Integer)).join(step, true()).where(step.c.part != "")
        db.session.execute(insert(UnitAncestor).from_select(["unit_id", "ancestor_id"], pairs))
        return int(db.session.execute(select(func.count()).select_from(UnitAncestor)).scalar_one())
    found = ancestor_pairs()
    if found:
        db.session.execute(insert(UnitAncestor), found)
    return len(found)


def rebuild() -> dict[str, int]:
    """Replace the rollups from their sources (the caller's transaction); rows written per name."""
    ancestors = _rebuild_ancestors()
    db.session.execute(delete(UnitHeads))
    db.session.execute(insert(UnitHeads).from_select(["org_unit_id", "rank_band", "active"], recomputed_heads()))
    db.session.execute(delete(UnitEnrolments))
    db.session.execute(
        insert(UnitEnrolments).from_select(
            ["org_unit_id", "year", "rank_band", "enrolments", "completed"], recomputed_enrolments()
        )
    )
    # After the closure, and after the hours rollup (monthly.refresh rebuilds it first).
    db.session.execute(delete(SubtreeMonth))
    db.session.execute(
        insert(SubtreeMonth).from_select(["unit_id", "month", "credited_ms", "learners"], recomputed_subtree_months())
    )
    count = func.count()
    return {
        SUBTREE_MONTHS: db.session.execute(select(count).select_from(SubtreeMonth)).scalar_one(),
        ANCESTORS: ancestors,
        HEADS: db.session.execute(select(count).select_from(UnitHeads)).scalar_one(),
        ENROLMENTS: db.session.execute(select(count).select_from(UnitEnrolments)).scalar_one(),
    }
