"""The report rollups: rebuild them, read their age, keep them fresh.

The hours rollup (:class:`~lms_core.reports.models.UnitMonth`) is built here, and
from it the hours report's rows (:class:`~lms_core.reports.models.UnitYear`); the
head counts and enrolments in :mod:`lms_core.reports.figures`; plugins add theirs
through ``lms_report_rollups`` (e.g. anti-idle's verdicts per unit and year).

``refresh`` replaces every row of all of them with the recomputation from their
sources (the hours from ``learning_daily_totals``), each person under their
*current* unit and rank band, in the caller's transaction
(``service_call`` or the job runner commits), so readers see either the old
snapshot or the new one, never a mixture. The stamp is taken before the source is
read: everything committed by then is counted.

Pages that read the rollups show their (oldest) stamp and, when it is older than
``LMS_REPORT_ROLLUP_MAX_AGE`` seconds, queue one refresh job (``flask lms worker``
runs it; ``flask lms report refresh`` runs it at once, e.g. from cron).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Integer,
    Select,
    case,
    cast,
    delete,
    extract,
    func,
    insert,
    select,
    text,
)

from lms_core.accounts.models import User
from lms_core.db import utcnow
from lms_core.extensions import db
from lms_core.learning.models import DailyTotal
from lms_core.reports.models import Rollup, UnitMonth, UnitYear

NAME = "unit_months"
#: The stamp name of the hours report's rows (``report_unit_years``).
YEARS = "unit_years"
#: The job kind that rebuilds the rollup.
REFRESH_JOB = "reports.refresh_rollup"


def month_of(day: Any) -> ColumnElement[Any]:
    """SQL for the first day of ``day``'s month, on PostgreSQL and SQLite alike."""
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc("month", day), Date)
    return func.date(day, "start of month")


def recomputed() -> Any:
    """The rollup's rows computed from the source: (unit, month, band, ms, learners)."""
    month = month_of(DailyTotal.day)
    return (
        select(
            User.org_unit_id,
            month.label("month"),
            User.rank_band,
            func.sum(DailyTotal.credited_ms),
            func.count(func.distinct(DailyTotal.user_id)),
        )
        .join(User, User.id == DailyTotal.user_id)
        .group_by(User.org_unit_id, month, User.rank_band)
    )


def recomputed_years() -> Any:
    """The hours report's rows from the hours rollup: (unit, year, ms of months 1 to 12), bands summed.

    Pivoted here once per refresh rather than by every page. The sums are cast to bigint:
    PostgreSQL's sum(bigint) is numeric. A month without rows sums the CASE's 0.
    """
    month = cast(extract("month", UnitMonth.month), Integer)
    year = cast(extract("year", UnitMonth.month), Integer)
    per_month = [cast(func.sum(case((month == m, UnitMonth.credited_ms), else_=0)), BigInteger) for m in range(1, 13)]
    return select(UnitMonth.org_unit_id, year, *per_month).group_by(UnitMonth.org_unit_id, year)


def rollups() -> list[tuple[str, Callable[[], int]]]:
    """Every other rollup the pages read: the core's head counts and enrolments, then the plugins'."""
    from lms_core.pluginhost import get_plugin_manager

    found: list[tuple[str, Callable[[], int]]] = []
    for answer in get_plugin_manager().hook.lms_report_rollups():
        found.extend(answer or [])
    return found


def names() -> list[str]:
    """The stamp names of every rollup a report page may read."""
    from lms_core.reports import figures

    return [NAME, YEARS, *figures.NAMES, *(name for name, _rebuild in rollups())]


def refresh() -> Rollup:
    """Rebuild every report rollup (in the current transaction; the caller commits).

    Returns the hours rollup's stamp row; the others get the same ``refreshed_at``.
    """
    from lms_core.reports import figures

    began = time.monotonic()
    stamp = utcnow()
    if db.session.get_bind().dialect.name == "postgresql":
        # One refresh at a time; a second one waits and then rebuilds from a later snapshot.
        db.session.execute(select(func.pg_advisory_xact_lock(0x52_45_50_4F_52_54)))
        # The stamp must not be later than the snapshot the INSERTs read: take both now.
        stamp = db.session.execute(select(func.now())).scalar_one()
    db.session.execute(delete(UnitMonth))
    columns = ["org_unit_id", "month", "rank_band", "credited_ms", "learners"]
    db.session.execute(insert(UnitMonth).from_select(columns, recomputed()))
    # Counted, not rowcount: psycopg reports -1 for INSERT ... SELECT through SQLAlchemy.
    rows = db.session.execute(select(func.count()).select_from(UnitMonth)).scalar_one()
    state = _stamp(NAME, stamp, int(rows or 0), began)
    # After the hours rollup, which it pivots.
    years = figures.replace(UnitYear, ["org_unit_id", "year", *UnitYear.MONTHS], recomputed_years())
    _stamp(YEARS, stamp, years, began)
    for name, count in figures.rebuild().items():
        _stamp(name, stamp, count, began)
    for name, rebuild in rollups():
        _stamp(name, stamp, int(rebuild() or 0), began)
    state.duration_ms = round(1000 * (time.monotonic() - began))
    db.session.flush()
    return state


def _stamp(name: str, stamp: dt.datetime, rows: int, began: float) -> Rollup:
    state = db.session.get(Rollup, name)
    if state is None:
        state = Rollup(name=name, refreshed_at=stamp, rows=0, duration_ms=0)
        db.session.add(state)
    state.refreshed_at, state.rows = stamp, rows
    # Time since the refresh began (the hours rollup's row gets the whole rebuild's at the end).
    state.duration_ms = round(1000 * (time.monotonic() - began))
    return state


def refreshed_at() -> dt.datetime | None:
    """When the rollups' sources were last read: the oldest stamp (None: one was never built)."""
    wanted = names()
    oldest, found = db.session.execute(
        select(func.min(Rollup.refreshed_at), func.count()).where(Rollup.name.in_(wanted))
    ).one()
    if found < len(wanted) or oldest is None:
        return None
    if oldest.tzinfo is None:  # SQLite's min() returns the stored text, not the typed column
        oldest = dt.datetime.fromisoformat(str(oldest)).replace(tzinfo=dt.UTC)
    return oldest


def refresh_job(_payload: dict[str, Any]) -> None:
    """Job handler: rebuild the rollup (the job runner commits)."""
    refresh()


def waiting_refresh() -> Select[int]:
    """The id of a rebuild that is queued or running, if any.

    The status condition is written as in ix_jobs_waiting_kind (not as bound values) so
    PostgreSQL uses that small partial index rather than reading every queued job.
    """
    from lms_core.jobs.models import WAITING_WHERE, Job

    return select(Job.id).where(Job.kind == REFRESH_JOB, text(WAITING_WHERE)).limit(1)


def keep_fresh(max_age: float) -> dt.datetime | None:
    """The rollup's stamp; queue a refresh when it is missing or older than ``max_age`` seconds.

    At most one refresh job waits at a time. Returns the stamp the page shows.
    """
    from lms_core.jobs.services import enqueue

    stamp = refreshed_at()
    if stamp is not None and (utcnow() - stamp).total_seconds() <= max_age:
        return stamp
    if db.session.execute(waiting_refresh()).scalar_one_or_none() is None:
        enqueue(REFRESH_JOB)
    return stamp
