"""The job queue table."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from lms_core.db import Base, UTCDateTime, bigint_pk, json_type, str_enum, utcnow
from lms_core.i18n import enum_labels


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # gave up after the maximum attempts; ``flask lms jobs retry`` requeues


enum_labels(
    JobStatus,
    {
        JobStatus.QUEUED: _l("Queued"),
        JobStatus.RUNNING: _l("Running"),
        JobStatus.DONE: _l("Done"),
        JobStatus.FAILED: _l("Failed"),
    },
)


# The jobs still waiting or being run: a small, steady set, while done and failed jobs
# accumulate. Queries that look for a waiting job of one kind repeat this condition
# word for word so PostgreSQL can use the partial index below (a bound IN list would
# not prove the index's predicate once the statement is prepared with a generic plan).
WAITING_WHERE = "status IN ('queued', 'running')"


class Job(Base):
    """One unit of background work.

    Workers claim rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
    any number of worker processes on any number of nodes share the queue without
    a broker and without two of them taking the same job.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    status: Mapped[JobStatus] = mapped_column(str_enum(JobStatus, 16), default=JobStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    run_after: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_jobs_status_run_after", "status", "run_after"),
        # Report pages ask for a waiting rollup rebuild on every view once the rollups
        # are stale; without it that read scanned every job ever queued (issue 12).
        Index(
            "ix_jobs_waiting_kind",
            "kind",
            postgresql_where=text(WAITING_WHERE),
            sqlite_where=text(WAITING_WHERE),
        ),
    )
