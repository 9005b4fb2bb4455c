"""Enqueue, claim and run background jobs.

Jobs are rows written in the business transaction (a transactional outbox), so a
job exists if and only if the change that asked for it committed. In development
and tests (``LMS_INLINE_JOBS``) the jobs a request created run right after its
commit, in the same process; in production ``flask lms worker`` processes claim
them, on PostgreSQL with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy import or_, select, text, update
from sqlalchemy.orm import Session

from lms_core.db import utcnow
from lms_core.extensions import db
from lms_core.jobs.models import Job, JobStatus
from lms_core.pg_arrays import str_array

log = logging.getLogger(__name__)

JobHandler = Callable[[dict[str, Any]], None]

#: A job whose worker died is taken again after this long.
STALE_LOCK = dt.timedelta(minutes=10)


def enqueue(
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    session: Session | None = None,
    run_after: dt.datetime | None = None,
) -> Job:
    """Add a job to the current transaction; it becomes visible when that commits."""
    target: Any = session or db.session
    job = Job(kind=kind, payload=payload or {}, run_after=run_after or utcnow())
    target.add(job)
    target.info.setdefault("lms_new_jobs", []).append(job)
    return job


#: ``enqueue_many`` on PostgreSQL: one statement whose text does not depend on the number of jobs.
_ENQUEUE_PG = text(
    "INSERT INTO jobs (kind, payload, status, attempts, run_after, created_at) "
    "SELECT CAST(:kind AS text), p, 'queued', 0, CAST(:now AS timestamptz), CAST(:now AS timestamptz) "
    "FROM unnest(CAST(:payloads AS jsonb[])) AS p RETURNING id"
)


def enqueue_many(kind: str, payloads: list[dict[str, Any]]) -> list[int]:
    """``enqueue`` for many jobs of one kind in one statement (on PostgreSQL); returns their ids.

    Written at once rather than added to the session, so they are visible to the
    transaction at once too; they run after its commit, as ``enqueue``'s do.
    """
    if not payloads:
        return []
    if db.session.get_bind().dialect.name != "postgresql":
        jobs = [enqueue(kind, payload) for payload in payloads]
        db.session.flush()
        return [job.id for job in jobs]
    params = {"kind": kind, "now": utcnow(), "payloads": str_array(json.dumps(p) for p in payloads)}
    ids = [int(i) for i in db.session.execute(_ENQUEUE_PG, params).scalars()]
    db.session.info.setdefault("lms_new_jobs", []).extend(ids)
    return ids


def handlers() -> dict[str, JobHandler]:
    """The job kinds this application executes (core plus plugins)."""
    registry: dict[str, JobHandler] = current_app.extensions["lms_job_handlers"]
    return registry


def backoff(attempts: int) -> dt.timedelta:
    """Delay before the next try: 5 s, 10 s, 20 s ... capped at one hour."""
    return dt.timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 3600))


def run_job(job: Job) -> bool:
    """Run one claimed job and record the outcome; True when it succeeded."""
    handler = handlers().get(job.kind)
    job_id = job.id
    payload = dict(job.payload)
    try:
        if handler is None:
            raise LookupError(f"no handler for job kind {job.kind!r}")
        handler(payload)
        db.session.commit()
    except Exception:
        db.session.rollback()
        error = traceback.format_exc(limit=20)
        log.warning("job %s (%s) failed", job_id, job.kind, exc_info=True)
        job = db.session.get(Job, job_id)  # type: ignore[assignment]
        job.attempts += 1
        job.last_error = error
        job.locked_by = None
        job.locked_at = None
        if job.attempts >= current_app.config["LMS_JOB_MAX_ATTEMPTS"]:
            job.status = JobStatus.FAILED
        else:
            job.status = JobStatus.QUEUED
            job.run_after = utcnow() + backoff(job.attempts)
        db.session.commit()
        return False
    job = db.session.get(Job, job_id)  # type: ignore[assignment]
    job.status = JobStatus.DONE
    job.attempts += 1
    job.finished_at = utcnow()
    job.locked_by = None
    db.session.commit()
    return True


def claim_next(worker_id: str, kinds: list[str] | None = None) -> Job | None:
    """Claim the oldest runnable job, or None; commits the claim.

    PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` hands each worker a different
    row. Elsewhere (SQLite in development, where ``flask lms worker`` may run next
    to the inline runner) the claim is a compare-and-set ``UPDATE ... WHERE`` the
    job is still runnable, so two workers never both take it; a worker that loses
    the race looks for the next job.
    """
    postgres = db.session.get_bind().dialect.name == "postgresql"
    for _attempt in range(100):
        now = utcnow()
        runnable = or_(
            (Job.status == JobStatus.QUEUED) & (Job.run_after <= now),
            (Job.status == JobStatus.RUNNING) & (Job.locked_at < now - STALE_LOCK),
        )
        stmt = select(Job.id).where(runnable).order_by(Job.id).limit(1)
        if kinds:
            stmt = stmt.where(Job.kind.in_(kinds))
        if postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        job_id = db.session.execute(stmt).scalar_one_or_none()
        if job_id is None:
            db.session.rollback()
            return None
        if not postgres:
            # End the read first: SQLite cannot upgrade a stale read to a write
            # ("database is locked"); the UPDATE below re-checks the row anyway.
            db.session.rollback()
        claimed = db.session.execute(
            update(Job)
            .where(Job.id == job_id, runnable)
            .values(status=JobStatus.RUNNING, locked_by=worker_id, locked_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if claimed.rowcount:  # type: ignore[attr-defined]
            return db.session.get(Job, job_id)
    return None


def run_inline_jobs() -> int:
    """Run the jobs the just-committed transaction created (``LMS_INLINE_JOBS``).

    Jobs that fail are left queued with their backoff, exactly as a worker would
    leave them; nothing raised reaches the request that caused them.
    """
    if not current_app.config["LMS_INLINE_JOBS"]:
        db.session.info.pop("lms_new_jobs", None)
        return 0
    ran = 0
    # Jobs may enqueue further jobs; loop until the chain ends.
    while pending := db.session.info.pop("lms_new_jobs", None):
        for job in pending:  # a Job added by ``enqueue``, or the id of one ``enqueue_many`` wrote
            job_id = job if isinstance(job, int) else job.id
            if job_id is None:
                continue
            claimed = db.session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
                .values(status=JobStatus.RUNNING, locked_by="inline", locked_at=utcnow())
            )
            db.session.commit()
            if claimed.rowcount:  # type: ignore[attr-defined]
                run_job(db.session.get(Job, job_id))  # type: ignore[arg-type]
                ran += 1
    return ran


def commit() -> None:
    """Commit the business transaction, then run its inline jobs if configured."""
    db.session.commit()
    run_inline_jobs()


def work(
    *,
    once: bool = False,
    idle_sleep: float = 1.0,
    max_jobs: int | None = None,
    on_job: Callable[[Job, bool], None] | None = None,
) -> int:
    """The worker loop behind ``flask lms worker``; returns the number of jobs run."""
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    done = 0
    while max_jobs is None or done < max_jobs:
        job = claim_next(worker_id)
        if job is None:
            if once:
                break
            time.sleep(idle_sleep)
            continue
        ok = run_job(job)
        done += 1
        if on_job:
            on_job(job, ok)
    return done
