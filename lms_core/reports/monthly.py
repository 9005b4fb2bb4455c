"""The hours rollup (:class:`~lms_core.reports.models.UnitMonth`): rebuild, read its age, keep it fresh.

``refresh`` replaces every row with the recomputation from ``learning_daily_totals``
joined to each person's *current* unit and rank band, in the caller's transaction
(``service_call`` or the job runner commits), so readers see either the old
snapshot or the new one, never a mixture. The stamp is taken before the source is
read: everything committed by then is counted.

Pages that read the rollup show its stamp and, when it is older than
``LMS_REPORT_ROLLUP_MAX_AGE`` seconds, queue one refresh job (``flask lms worker``
runs it; ``flask lms report refresh`` runs it at once, e.g. from cron).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import ColumnElement, Date, cast, delete, func, insert, select

from lms_core.accounts.models import User
from lms_core.db import utcnow
from lms_core.extensions import db
from lms_core.learning.models import DailyTotal
from lms_core.reports.models import Rollup, UnitMonth

NAME = "unit_months"
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


def refresh() -> Rollup:
    """Rebuild the rollup from the daily totals (in the current transaction; the caller commits)."""
    began = time.monotonic()
    stamp = utcnow()
    if db.session.get_bind().dialect.name == "postgresql":
        # One refresh at a time; a second one waits and then rebuilds from a later snapshot.
        db.session.execute(select(func.pg_advisory_xact_lock(0x52_45_50_4F_52_54)))
        # The stamp must not be later than the snapshot the INSERT reads: take both now.
        stamp = db.session.execute(select(func.now())).scalar_one()
    db.session.execute(delete(UnitMonth))
    columns = ["org_unit_id", "month", "rank_band", "credited_ms", "learners"]
    db.session.execute(insert(UnitMonth).from_select(columns, recomputed()))
    # Counted, not rowcount: psycopg reports -1 for INSERT ... SELECT through SQLAlchemy.
    rows = db.session.execute(select(func.count()).select_from(UnitMonth)).scalar_one()
    state = db.session.get(Rollup, NAME)
    if state is None:
        state = Rollup(name=NAME, refreshed_at=stamp, rows=0, duration_ms=0)
        db.session.add(state)
    state.refreshed_at = stamp
    state.rows = int(rows or 0)
    state.duration_ms = round(1000 * (time.monotonic() - began))
    db.session.flush()
    return state


def refreshed_at() -> dt.datetime | None:
    """When the rollup's source was last read (None: never built)."""
    return db.session.execute(select(Rollup.refreshed_at).where(Rollup.name == NAME)).scalar_one_or_none()


def refresh_job(_payload: dict[str, Any]) -> None:
    """Job handler: rebuild the rollup (the job runner commits)."""
    refresh()


def keep_fresh(max_age: float) -> dt.datetime | None:
    """The rollup's stamp; queue a refresh when it is missing or older than ``max_age`` seconds.

    At most one refresh job waits at a time. Returns the stamp the page shows.
    """
    from lms_core.jobs.models import Job, JobStatus
    from lms_core.jobs.services import enqueue

    stamp = refreshed_at()
    if stamp is not None and (utcnow() - stamp).total_seconds() <= max_age:
        return stamp
    waiting = db.session.execute(
        select(Job.id).where(Job.kind == REFRESH_JOB, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])).limit(1)
    ).scalar_one_or_none()
    if waiting is None:
        enqueue(REFRESH_JOB)
    return stamp
