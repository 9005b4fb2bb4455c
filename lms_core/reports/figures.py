"""The dashboards' other core rollups: head counts and enrolments per subtree, and the tree's closure.

Like the hours rollup (:mod:`lms_core.reports.monthly`), these are derived rows,
rebuilt in one transaction from their sources by :func:`rebuild` and read by the
charts instead of the sources: the city dashboard used to count 100,000 people and
300,000 enrolments on every page load. A person counts under their *current* unit,
as in the hours rollup, so the charts of one page agree.

Each figure is stored per *subtree* (a unit with everything under it), summed up the
tree once here with :func:`summed_up`: the charts compare the root's children and read
one row per compared unit, where summing per-unit rows through the closure on every
page load cost the city dashboard about 20 ms of PostgreSQL CPU per rollup.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, case, cast, delete, extract, func, insert, select, text, true

from lms_core.accounts.models import User, UserStatus
from lms_core.enrolments.models import Enrolment
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit
from lms_core.reports.models import SubtreeEnrolments, SubtreeHeads, SubtreeMonth, UnitAncestor, UnitMonth

HEADS = "subtree_heads"
ENROLMENTS = "subtree_enrolments"
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


def summed_up(per_unit: Any, keys: int = 0) -> Any:
    """A per-unit statement's rows summed into every unit at or above each row's unit.

    ``per_unit`` selects (unit id, ``keys`` key columns, figures...); the result selects
    (ancestor id, the keys, the sum of each figure), one row per ancestor and keys, through
    ``report_unit_ancestors`` (which the refresh rebuilds first). Figures must be
    additive over units (counts of people, milliseconds): each person has one unit.
    """
    rows = per_unit.subquery()
    unit, *rest = rows.c
    key_columns, figures = rest[:keys], rest[keys:]
    return (
        select(UnitAncestor.ancestor_id, *key_columns, *(func.sum(c) for c in figures))
        .join(rows, unit == UnitAncestor.unit_id)
        .group_by(UnitAncestor.ancestor_id, *key_columns)
    )


def replace(model: Any, columns: list[str], rows: Any) -> int:
    """Replace every row of a rollup table with ``rows`` (one INSERT ... SELECT); the number written.

    On PostgreSQL the table is analysed in the same transaction (ANALYZE counts the rows
    this transaction wrote): the charts read a few rows by key, and with the statistics of
    the replaced rows, or none, the planner chose to scan the whole table.
    """
    db.session.execute(delete(model))
    db.session.execute(insert(model).from_select(columns, rows))
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text(f"ANALYZE {model.__tablename__}"))
    # Counted, not rowcount: psycopg reports -1 for INSERT ... SELECT through SQLAlchemy.
    return int(db.session.execute(select(func.count()).select_from(model)).scalar_one())


def recomputed_heads() -> Any:
    """(unit, active people at or under it): the rows of ``report_subtree_heads`` computed from ``users``."""
    per_unit = select(User.org_unit_id, func.count().label("n")).where(User.status == UserStatus.ACTIVE)
    return summed_up(per_unit.group_by(User.org_unit_id))


def recomputed_enrolments() -> Any:
    """(unit, year, enrolments, completed) at or under each unit: ``report_subtree_enrolments`` from ``enrolments``."""
    year = beijing_year(Enrolment.enrolled_at)
    per_unit = (
        select(
            User.org_unit_id,
            year.label("year"),
            func.count().label("n"),
            func.sum(case((Enrolment.completed_at.is_not(None), 1), else_=0)).label("done"),
        )
        .join(User, User.id == Enrolment.user_id)
        .group_by(User.org_unit_id, year)
    )
    return summed_up(per_unit, keys=1)


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
    # After the closure, and after the hours rollup (monthly.refresh rebuilds it first).
    return {
        SUBTREE_MONTHS: replace(
            SubtreeMonth, ["unit_id", "month", "credited_ms", "learners"], recomputed_subtree_months()
        ),
        ANCESTORS: ancestors,
        HEADS: replace(SubtreeHeads, ["unit_id", "active"], recomputed_heads()),
        ENROLMENTS: replace(SubtreeEnrolments, ["unit_id", "year", "enrolments", "completed"], recomputed_enrolments()),
    }
