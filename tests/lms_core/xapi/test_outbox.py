"""The outbox: one row per mapped event, idempotent; delivery in batches with backoff; the CLI."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from sqlalchemy import select

from lms_core.db import utcnow
from lms_core.enrolments import services as enrolments
from lms_core.events.services import dispatch, emit, open_failures
from lms_core.extensions import db
from lms_core.jobs.models import Job, JobStatus
from lms_core.jobs.services import commit, work
from lms_core.xapi import services
from lms_core.xapi.models import OutboxStatus, XapiOutbox
from lms_core.xapi.tincan_adapter import PlatformLRS
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course


@pytest.fixture
def kit(app, tree):
    kit = build_course(tree)
    learner = UserFactory(username="wangfang", full_name="王芳", org_unit=tree.village_a)
    enrolment = enrolments.enrol(learner, kit.course)
    db.session.commit()
    # The set-up's own events (course.enrolled...) stay queued: each test counts only its events.
    db.session.info.pop("lms_new_jobs", None)
    return kit, learner, enrolment


def completed(kit, n: int = 1) -> list[int]:
    """Emit ``n`` lesson.completed events and commit (inline jobs run); returns event ids."""
    k, learner, enrolment = kit
    ids = []
    for lesson in [k.video, k.document, k.quiz, k.survey, k.video, k.document][:n]:
        event = emit(
            "lesson.completed",
            actor=learner,
            object_type="lessons",
            object_id=lesson.id,
            course_id=k.course.id,
            payload={"lesson_id": lesson.id, "registration": enrolment.registration, "kind": lesson.kind.value},
        )
        ids.append(event.id)
    commit()
    return ids


def rows() -> list[XapiOutbox]:
    db.session.expire_all()
    return list(db.session.execute(select(XapiOutbox).order_by(XapiOutbox.id)).scalars())


def deliver_jobs(status: JobStatus = JobStatus.QUEUED) -> list[Job]:
    return list(db.session.execute(select(Job).filter_by(kind=services.DELIVER_JOB, status=status)).scalars())


def test_committed_event_is_queued_and_delivered(kit, fake_lrs):
    (event_id,) = completed(kit)
    (row,) = rows()
    assert row.event_id == event_id and row.status == OutboxStatus.DELIVERED and row.attempts == 1
    assert fake_lrs.statements == {row.statement_id: row.statement}
    assert open_failures() == []


def test_redelivered_event_writes_nothing_new(kit, fake_lrs):
    (event_id,) = completed(kit)
    before = rows()
    assert dispatch(event_id) == {"xapi_emitter": True}
    commit()
    assert [(r.id, r.statement_id, r.status) for r in rows()] == [(r.id, r.statement_id, r.status) for r in before]
    assert fake_lrs.posts == 1


def test_pre_commit_rollback_leaves_nothing(kit, fake_lrs):
    k, learner, enrolment = kit
    emit(
        "lesson.completed",
        actor=learner,
        object_type="lessons",
        object_id=k.video.id,
        course_id=k.course.id,
        payload={"lesson_id": k.video.id, "registration": enrolment.registration},
    )
    db.session.rollback()
    commit()
    assert rows() == [] and fake_lrs.statements == {}


@pytest.mark.app_config(LMS_XAPI_ENABLED=False)
def test_disabled_emission_queues_nothing(kit, fake_lrs):
    completed(kit, 2)
    assert rows() == []
    assert deliver_jobs(JobStatus.DONE) == deliver_jobs() == []


def test_unmapped_events_are_ignored(kit, fake_lrs):
    k, learner, _ = kit
    emit("user.logged_in", actor=learner, obj=learner)
    emit(
        "study.interval_credited",
        actor=learner,
        object_type="learning_sessions",
        object_id="x",
        course_id=k.course.id,
        payload={"lesson_id": k.video.id, "seconds": 60},
    )
    commit()
    assert rows() == []


def test_lrs_down_keeps_everything_then_replay_delivers_once(kit, lrs_server, app):
    fake = lrs_server.app
    start = utcnow()
    completed(kit, 3)  # LRS not started: connection refused
    pending = rows()
    assert [r.status for r in pending] == [OutboxStatus.PENDING] * 3
    assert all(r.attempts == 1 and "LRS unreachable" in r.last_error for r in pending)
    assert all(r.next_attempt_at >= start + dt.timedelta(seconds=5) for r in pending)
    # A retry job waits for the worker at the first due time; the inline runner did not spin on it.
    (retry,) = deliver_jobs()
    assert retry.run_after == min(r.next_attempt_at for r in pending)

    with time_machine.travel(utcnow() + dt.timedelta(seconds=6), tick=False):
        services.deliver_due()
    assert [r.attempts for r in rows()] == [2, 2, 2]
    assert all(r.next_attempt_at >= utcnow() + dt.timedelta(seconds=9) for r in rows())  # 10 s backoff now

    runner = app.test_cli_runner()
    out = runner.invoke(args=["lms", "xapi", "backlog"])
    assert out.exit_code == 0 and "pending\t3" in out.output and "oldest pending" in out.output
    assert "ConnectionRefusedError" in out.output

    lrs_server.start()
    out = runner.invoke(args=["lms", "xapi", "replay"])
    assert out.exit_code == 0, out.output
    assert "delivered 3, rejected 0, still pending 0" in out.output
    delivered = rows()
    assert [r.status for r in delivered] == [OutboxStatus.DELIVERED] * 3
    assert sorted(fake.statements) == sorted(r.statement_id for r in delivered)

    # A deliverer that died after the POST but before recording it: the rows go out again, no duplicate.
    for row in delivered:
        row.status = OutboxStatus.PENDING
    db.session.commit()
    assert runner.invoke(args=["lms", "xapi", "replay"]).exit_code == 0
    assert len(fake.statements) == 3 and fake.posts == 2


@pytest.mark.app_config(LMS_XAPI_BATCH_SIZE=2)
def test_rows_go_out_in_batches(kit, lrs_server):
    completed(kit, 5)
    assert {r.status for r in rows()} == {OutboxStatus.PENDING}
    lrs_server.start()
    services.make_due()
    report = services.deliver_due()
    assert (report.delivered, report.failed, report.retrying) == (5, 0, 0)
    assert lrs_server.app.posts == 3  # 2 + 2 + 1


def test_server_errors_are_retried(kit, fake_lrs):
    fake_lrs.fail_status = 503
    completed(kit, 2)
    assert all(r.status == OutboxStatus.PENDING and "HTTP 503" in r.last_error for r in rows())
    fake_lrs.fail_status = None
    services.make_due()
    assert services.deliver_due().delivered == 2
    assert len(fake_lrs.statements) == 2


def test_one_rejected_statement_does_not_block_the_batch(kit, fake_lrs, app):
    k, learner, enrolment = kit
    fake_lrs.fail_status = 503  # let the rows pile up, then send them as one batch
    completed(kit, 2)
    emit(
        "survey.submitted",
        actor=learner,
        object_type="lessons",
        object_id=k.survey.id,
        course_id=k.course.id,
        payload={"lesson_id": k.survey.id, "registration": enrolment.registration, "rating": 5, "comment": "好"},
    )
    commit()
    fake_lrs.fail_status = None
    fake_lrs.reject_marker = "/responded"
    services.make_due()
    report = services.deliver_due()
    assert (report.delivered, report.failed, report.retrying) == (2, 1, 0)
    bad = next(r for r in rows() if r.status == OutboxStatus.FAILED)
    assert "HTTP 400" in bad.last_error and bad.statement["verb"]["id"].endswith("/responded")
    assert len(fake_lrs.statements) == 2

    runner = app.test_cli_runner()
    out = runner.invoke(args=["lms", "xapi", "backlog"])
    assert "failed\t1" in out.output and "delivered\t2" in out.output
    out = runner.invoke(args=["lms", "xapi", "show", str(bad.id)])
    assert out.exit_code == 0 and "status failed" in out.output and "HTTP 400" in out.output
    assert '"好"' in out.output  # the statement, readable Chinese
    assert runner.invoke(args=["lms", "xapi", "show", bad.statement_id]).output == out.output
    assert runner.invoke(args=["lms", "xapi", "show", f"event:{bad.event_id}"]).output == out.output
    assert runner.invoke(args=["lms", "xapi", "show", "424242"]).exit_code != 0

    assert runner.invoke(args=["lms", "xapi", "replay"]).exit_code == 0  # failed rows are left alone
    fake_lrs.reject_marker = None
    out = runner.invoke(args=["lms", "xapi", "replay", "--failed"])
    assert out.exit_code == 0 and "delivered 1" in out.output
    assert len(fake_lrs.statements) == 3


def test_conflict_means_the_lrs_already_has_it(kit, fake_lrs):
    fake_lrs.fail_status = 503
    (event_id,) = completed(kit)
    (row,) = rows()
    fake_lrs.statements[row.statement_id] = {**row.statement, "timestamp": "2020-01-01T00:00:00Z"}
    fake_lrs.fail_status = None
    services.make_due()
    report = services.deliver_due()
    assert report.delivered == 1
    (row,) = rows()
    assert row.status == OutboxStatus.DELIVERED and "409" in row.last_error


@pytest.mark.app_config(LMS_XAPI_SECRET="wrong-secret")
def test_bad_credentials_are_retried_not_failed(kit, fake_lrs):
    completed(kit, 2)
    assert all(r.status == OutboxStatus.PENDING and "HTTP 401" in r.last_error for r in rows())
    assert fake_lrs.statements == {}


@pytest.mark.app_config(LMS_INLINE_JOBS=False)
def test_worker_dispatches_then_delivers_in_one_batch(kit, fake_lrs):
    completed(kit, 2)
    assert rows() == []  # nothing happens before a worker runs
    work(once=True)
    delivered = rows()
    # the two completions and the set-up's course.enrolled, posted together by one coalesced job
    assert len(delivered) == 3 and {r.status for r in delivered} == {OutboxStatus.DELIVERED}
    assert fake_lrs.posts == 1 and len(fake_lrs.statements) == 3
    assert len(deliver_jobs(JobStatus.DONE)) == 1


def test_wrong_endpoint_is_retried_not_failed(kit, fake_lrs, lrs_server):
    fake_lrs.fail_status = 503
    completed(kit, 2)
    wrong = PlatformLRS(f"{lrs_server.url}/not-the-lrs/", key=fake_lrs.key, secret=fake_lrs.secret)
    services.make_due()
    report = services.deliver_due(client=wrong)
    assert (report.delivered, report.failed, report.retrying) == (0, 0, 2)
    assert all("HTTP 404" in r.last_error for r in rows())


@pytest.mark.backends("postgresql")
@pytest.mark.app_config(LMS_XAPI_BATCH_SIZE=3)
def test_concurrent_deliverers_send_each_statement_once(kit, fake_lrs, app):
    fake_lrs.fail_status = 503
    completed(kit, 6)
    k, learner, enrolment = kit
    for n in range(30):
        emit(
            "survey.submitted",
            actor=learner,
            object_type="lessons",
            object_id=k.survey.id,
            course_id=k.course.id,
            payload={
                "lesson_id": k.survey.id,
                "registration": enrolment.registration,
                "rating": 1 + n % 5,
                "comment": f"第{n}条",
            },
        )
    commit()
    fake_lrs.fail_status = None
    services.make_due()
    fake_lrs.received = 0
    reports: list[services.DeliveryReport] = []

    def deliver() -> None:
        with app.app_context():
            reports.append(services.deliver_due())
            db.session.remove()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.delivered for r in reports) == 36
    assert fake_lrs.received == 36 and len(fake_lrs.statements) == 36
    assert {r.status for r in rows()} == {OutboxStatus.DELIVERED}


@pytest.mark.parametrize(
    "setting",
    [
        {"LMS_PLATFORM_URL": "study.example.gov.cn"},
        {"LMS_PLATFORM_URL": ""},
        {"LMS_XAPI_ENDPOINT": "ftp://lrs.example/xapi/"},
        {"LMS_XAPI_BATCH_SIZE": 0},
    ],
)
def test_bad_settings_stop_start_up(database_url, tmp_path, setting):
    from tests.lms_core.apps import build_app

    with pytest.raises(RuntimeError, match=next(iter(setting))):
        build_app(database_url, tmp_path, LMS_XAPI_ENABLED=True, **setting)
    # Disabled emission does not care.
    build_app(database_url, tmp_path, LMS_XAPI_ENABLED=False, **setting)
