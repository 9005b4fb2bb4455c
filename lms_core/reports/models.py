"""Report rollups: study hours per unit, rank band and Beijing month, refreshed from the daily totals.

Dashboards and the hours report read these few thousand rows instead of folding
hundreds of thousands of ``learning_daily_totals`` rows on every page load. They
are *derived*, never evidence: :func:`lms_core.reports.monthly.refresh` rebuilds
them from the daily totals in one transaction and stamps the time it read them,
which every page using them shows ("数据截至 ...").

Why a refreshed snapshot rather than an upsert in each heartbeat's transaction: a
per-unit row would be locked by every beat of everyone in that unit, serialising
the ingestion path (issue 8 wants 2,000 beats/s), and a person moving to another
unit would have to move their past months too. A snapshot taken in one transaction
is equal to the recomputation from its source at its stamped time, which the
tests check on both databases.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from lms_core.accounts.models import RankBand
from lms_core.db import Base, UTCDateTime, str_enum


class UnitMonth(Base):
    """Credited study of the people of one unit and rank band in one Beijing calendar month."""

    __tablename__ = "report_unit_months"

    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    #: The first day of the month (Beijing calendar, like ``learning_daily_totals.day``).
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    rank_band: Mapped[RankBand] = mapped_column(str_enum(RankBand, 32), primary_key=True)
    credited_ms: Mapped[int] = mapped_column(BigInteger)
    #: People with credited study that month. Additive over units and bands (a person has
    #: one unit and one band), not over months.
    learners: Mapped[int]

    def __repr__(self) -> str:
        return f"<UnitMonth unit={self.org_unit_id} month={self.month} band={self.rank_band}>"


class Rollup(Base):
    """When a rollup was last rebuilt: the time its source was read (shown on every page using it)."""

    __tablename__ = "report_rollups"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    refreshed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: Rows written by that refresh, and how long it took (for the operator).
    rows: Mapped[int]
    duration_ms: Mapped[int]

    def __repr__(self) -> str:
        return f"<Rollup {self.name} at {self.refreshed_at}>"


class SubtreeHeads(Base):
    """Active people at or under one unit (the dashboards' head counts), as of the rollup's stamp.

    Summed up the tree by the refresh (each person counts in their unit and every unit
    above it), so a chart comparing a city's counties reads one row per county where
    summing per-unit rows through the closure hashed every unit of the city per page.
    """

    __tablename__ = "report_subtree_heads"

    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    active: Mapped[int]

    def __repr__(self) -> str:
        return f"<SubtreeHeads unit={self.unit_id}>"


class SubtreeEnrolments(Base):
    """Course enrolments made in one Beijing calendar year by the people at or under one unit."""

    __tablename__ = "report_subtree_enrolments"

    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    #: The Beijing calendar year of ``enrolments.enrolled_at``.
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    enrolments: Mapped[int]
    #: Of those, the ones completed (at any time up to the stamp).
    completed: Mapped[int]

    def __repr__(self) -> str:
        return f"<SubtreeEnrolments unit={self.unit_id} year={self.year}>"


class UnitAncestor(Base):
    """Each unit and every unit above it, itself included (a closure of the org tree at the rollups' stamp).

    Charts compare the root's children: joining a per-unit rollup here and keeping
    the compared units as ``ancestor_id`` sums each one's subtree in SQL with a hash
    join, where ``unit.path LIKE group.path || '%'`` matched a pattern per pair.
    """

    __tablename__ = "report_unit_ancestors"

    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    ancestor_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)

    def __repr__(self) -> str:
        return f"<UnitAncestor {self.unit_id} under {self.ancestor_id}>"


class SubtreeMonth(Base):
    """Credited study of everyone in a unit's *subtree* in one Beijing month: the hours rollup summed upwards.

    The monthly trend of a city and the unit comparison read a dozen of these rows,
    where summing ``report_unit_months`` read every unit's (about 100,000 for a city).
    """

    __tablename__ = "report_subtree_months"

    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    credited_ms: Mapped[int] = mapped_column(BigInteger)
    #: People with credited study that month (additive over units: a person has one unit).
    learners: Mapped[int]

    def __repr__(self) -> str:
        return f"<SubtreeMonth unit={self.unit_id} month={self.month}>"


class UnitYear(Base):
    """Credited study of the people of one unit in one Beijing calendar year, one column per month.

    The hours report's rows, pivoted once by the refresh (from ``report_unit_months``, all
    rank bands summed): a county's page reads its 500 units' rows here, where pivoting the
    year's ``report_unit_months`` rows (9,500 for a county, 98,000 for the city) per page
    cost about 15 ms of PostgreSQL CPU. A unit has a row for a year when it has one in
    ``report_unit_months`` for a month of that year.
    """

    __tablename__ = "report_unit_years"

    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    #: Milliseconds credited in each Beijing month of the year (January to December).
    m01: Mapped[int] = mapped_column(BigInteger)
    m02: Mapped[int] = mapped_column(BigInteger)
    m03: Mapped[int] = mapped_column(BigInteger)
    m04: Mapped[int] = mapped_column(BigInteger)
    m05: Mapped[int] = mapped_column(BigInteger)
    m06: Mapped[int] = mapped_column(BigInteger)
    m07: Mapped[int] = mapped_column(BigInteger)
    m08: Mapped[int] = mapped_column(BigInteger)
    m09: Mapped[int] = mapped_column(BigInteger)
    m10: Mapped[int] = mapped_column(BigInteger)
    m11: Mapped[int] = mapped_column(BigInteger)
    m12: Mapped[int] = mapped_column(BigInteger)

    #: The month columns' names, January first.
    MONTHS = tuple(f"m{m:02d}" for m in range(1, 13))

    def __repr__(self) -> str:
        return f"<UnitYear unit={self.org_unit_id} year={self.year}>"
