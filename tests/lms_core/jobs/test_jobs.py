"""Background jobs: backoff, maximum attempts, the worker command, concurrent claiming."""

from __future__ import annotations

import datetime as dt
import threading
from functools import partial

import pytest
import time_machine
from sqlalchemy import func, select

from lms_core.extensions import db
from lms_core.jobs import services as jobs
from lms_core.jobs.models import Job, JobStatus
from tests.lms_core.apps import together
from tests.plugins.hookprobe import HookProbe

START = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


@pytest.fixture
def probe():
    return HookProbe()


@pytest.fixture
def app_settings(probe):
    return {"LMS_PLUGIN_OBJECTS": {"hookprobe": probe}, "LMS_INLINE_JOBS": False, "LMS_JOB_MAX_ATTEMPTS": 3}


def _job(job_id: int) -> Job:
    db.session.expire_all()
    return db.session.get(Job, job_id)


def test_backoff_doubles_and_is_capped():
    assert [jobs.backoff(n).total_seconds() for n in range(1, 6)] == [5, 10, 20, 40, 80]
    assert jobs.backoff(30) == dt.timedelta(hours=1)


def test_failed_job_is_retried_with_backoff_then_gives_up(app, probe):
    with time_machine.travel(START, tick=False) as clock:
        job = jobs.enqueue("hookprobe.echo", {"fail": True})
        db.session.commit()
        assert jobs.work(once=True) == 1
        failed = _job(job.id)
        assert (failed.status, failed.attempts) == (JobStatus.QUEUED, 1)
        assert failed.run_after == START + dt.timedelta(seconds=5)
        assert "hookprobe job asked to fail" in failed.last_error
        assert jobs.work(once=True) == 0  # not due yet
        clock.shift(dt.timedelta(seconds=5))
        assert jobs.work(once=True) == 1
        assert _job(job.id).run_after == START + dt.timedelta(seconds=5 + 10)
        clock.shift(dt.timedelta(seconds=10))
        assert jobs.work(once=True) == 1
        final = _job(job.id)
        assert (final.status, final.attempts, final.locked_by) == (JobStatus.FAILED, 3, None)
        clock.shift(dt.timedelta(days=1))
        assert jobs.work(once=True) == 0  # failed jobs stay put
        runner = app.test_cli_runner()
        assert "hookprobe.echo\tfailed\t1" in runner.invoke(args=["lms", "jobs", "status"]).output
        result = runner.invoke(args=["lms", "jobs", "retry"])
        assert "requeued 1 job(s)" in result.output
        assert (_job(job.id).status, _job(job.id).attempts) == (JobStatus.QUEUED, 0)
    assert probe.jobs == []


def test_worker_command_runs_queued_jobs_once(app, probe):
    for n in range(3):
        jobs.enqueue("hookprobe.echo", {"n": n})
    jobs.enqueue("no.such.kind", {})
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["lms", "worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "4 job(s) run" in result.output and "no.such.kind: failed" in result.output
    assert [p["n"] for p in probe.jobs] == [0, 1, 2]
    statuses = dict(db.session.execute(select(Job.kind, Job.status).where(Job.kind == "no.such.kind")).all())
    assert statuses == {"no.such.kind": JobStatus.QUEUED}
    unknown = db.session.execute(select(Job).filter_by(kind="no.such.kind")).scalar_one()
    assert "no handler" in unknown.last_error


def test_jobs_become_visible_only_when_the_transaction_commits(app, probe):
    jobs.enqueue("hookprobe.echo", {"n": 1})
    db.session.rollback()
    assert jobs.work(once=True) == 0 and probe.jobs == []


def test_stale_running_job_is_taken_again(app, probe):
    with time_machine.travel(START, tick=False) as clock:
        job = jobs.enqueue("hookprobe.echo", {"n": 7})
        db.session.commit()
        claimed = jobs.claim_next("dead-worker")
        assert claimed.id == job.id and jobs.claim_next("other") is None  # held by the first
        clock.shift(jobs.STALE_LOCK + dt.timedelta(seconds=1))
        assert jobs.work(once=True) == 1
    assert probe.jobs == [{"n": 7}] and _job(job.id).status == JobStatus.DONE


@pytest.mark.app_config(LMS_INLINE_JOBS=True)
def test_inline_jobs_run_after_commit_and_failures_do_not_raise(app, probe):
    jobs.enqueue("hookprobe.echo", {"n": 1})
    jobs.enqueue("hookprobe.echo", {"fail": True})
    jobs.commit()  # must not raise
    assert probe.jobs == [{"n": 1}]
    states = sorted((j.status, j.attempts) for j in db.session.execute(select(Job)).scalars())
    assert states == [(JobStatus.DONE, 1), (JobStatus.QUEUED, 1)]


def test_concurrent_workers_never_run_a_job_twice(app, probe):
    """Four workers, each with its own connection, drain one queue.

    PostgreSQL claims with ``FOR UPDATE SKIP LOCKED``; SQLite with a
    compare-and-set update. Without either, jobs run several times (checked).
    """
    total, workers = 120, 4
    for n in range(total):
        jobs.enqueue("hookprobe.echo", {"n": n})
    db.session.commit()
    start = threading.Barrier(workers)

    def worker(index: int) -> None:
        start.wait()
        while (job := jobs.claim_next(f"worker-{index}")) is not None:
            jobs.run_job(job)

    errors = together(app, *(partial(worker, i) for i in range(workers)), timeout=120)
    assert not errors, errors
    ran = [p["n"] for p in probe.jobs]
    assert sorted(ran) == list(range(total))  # every job ran, none twice
    db.session.expire_all()
    assert (
        db.session.execute(
            select(func.count()).select_from(Job).where(Job.status == JobStatus.DONE, Job.attempts == 1)
        ).scalar_one()
        == total
    )
