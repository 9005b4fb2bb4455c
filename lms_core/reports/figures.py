"""The dashboards' other core rollups: head counts and enrolments per unit and rank band.

Like the hours rollup (:mod:`lms_core.reports.monthly`), these are derived rows,
rebuilt in one transaction from their sources by :func:`rebuild` and read by the
charts instead of the sources: the city dashboard used to count 100,000 people and
300,000 enrolments on every page load. A person counts under their *current* unit
and rank band, as in the hours rollup, so the charts of one page agree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, delete, extract, func, insert, select

from lms_core.accounts.models import User, UserStatus
from lms_core.enrolments.models import Enrolment
from lms_core.extensions import db
from lms_core.reports.models import UnitEnrolments, UnitHeads

HEADS = "unit_heads"
ENROLMENTS = "unit_enrolments"
#: The rollups this module rebuilds, by the name their stamp is kept under.
NAMES = (HEADS, ENROLMENTS)


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


def rebuild() -> dict[str, int]:
    """Replace both rollups from their sources (the caller's transaction); rows written per name."""
    db.session.execute(delete(UnitHeads))
    db.session.execute(insert(UnitHeads).from_select(["org_unit_id", "rank_band", "active"], recomputed_heads()))
    db.session.execute(delete(UnitEnrolments))
    db.session.execute(
        insert(UnitEnrolments).from_select(
            ["org_unit_id", "year", "rank_band", "enrolments", "completed"], recomputed_enrolments()
        )
    )
    count = func.count()
    return {
        HEADS: db.session.execute(select(count).select_from(UnitHeads)).scalar_one(),
        ENROLMENTS: db.session.execute(select(count).select_from(UnitEnrolments)).scalar_one(),
    }
