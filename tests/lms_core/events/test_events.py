"""The event log: same transaction as the change, dispatch after commit, failures, replay."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from lms_core.events import services as events
from lms_core.events.guard import AppendOnlyViolation
from lms_core.events.models import Event, EventHandlerFailure
from lms_core.extensions import db
from lms_core.jobs.models import Job, JobStatus
from lms_core.jobs.services import commit
from lms_core.orgs import services as orgs
from lms_core.orgs.models import OrgKind, OrgUnit
from lms_core.pluginhost import hookimpl
from lms_core.settings.models import Setting


class Recorder:
    """An idempotent handler: one ``Setting`` row per event id, however often it runs."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.saw_committed: list[bool] = []

    @hookimpl
    def lms_handle_event(self, event):
        self.calls.append(event.id)
        # A separate connection sees only committed data: proves we run after commit.
        with db.engine.connect() as conn:
            seen = conn.execute(select(func.count()).select_from(Event).where(Event.id == event.id)).scalar_one()
        self.saw_committed.append(seen == 1)
        key = f"recorder.seen.{event.id}"
        if db.session.get(Setting, key) is None:
            db.session.add(Setting(key=key, value={"name": event.name}))


class Flaky:
    """Writes a row, then fails while ``broken``: its row must be rolled back."""

    def __init__(self) -> None:
        self.broken = True
        self.calls: list[int] = []

    @hookimpl
    def lms_handle_event(self, event):
        self.calls.append(event.id)
        key = f"flaky.done.{event.id}"
        if db.session.get(Setting, key) is None:
            db.session.add(Setting(key=key, value=True))
        if self.broken:
            raise RuntimeError("flaky handler is down")


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def flaky():
    return Flaky()


@pytest.fixture
def app_settings(recorder, flaky):
    return {"LMS_PLUGIN_OBJECTS": {"recorder": recorder, "flaky": flaky}}


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def _setting_keys() -> set[str]:
    return set(db.session.execute(select(Setting.key)).scalars())


def _new_unit(code: str = "3601") -> OrgUnit:
    return orgs.create_unit(code=code, name="江州市", kind=OrgKind.CITY, parent=None)


def test_rollback_leaves_neither_change_nor_event(app, recorder):
    _new_unit()
    assert _count(Event) == 1  # written (flushed) in the business transaction
    db.session.rollback()
    assert _count(Event) == 0 and _count(OrgUnit) == 0 and _count(Job) == 0
    assert recorder.calls == []


def test_commit_writes_event_and_dispatches_after_commit(app, recorder):
    unit = _new_unit()
    commit()
    (event,) = db.session.execute(select(Event)).scalars()
    assert (event.name, event.object_type, event.object_id) == ("org.created", "org_units", str(unit.id))
    assert event.created_at.tzinfo is not None
    assert recorder.calls == [event.id] and recorder.saw_committed == [True]
    assert f"recorder.seen.{event.id}" in _setting_keys()
    job = db.session.execute(select(Job)).scalar_one()
    assert (job.kind, job.payload, job.status) == (events.DISPATCH_JOB, {"event_id": event.id}, JobStatus.DONE)


def test_failing_handler_is_recorded_and_isolated(app, recorder, flaky):
    unit = _new_unit()
    commit()
    db.session.expire_all()
    assert db.session.get(OrgUnit, unit.id) is not None  # the business change stands
    (event,) = db.session.execute(select(Event)).scalars()
    failure = db.session.execute(select(EventHandlerFailure)).scalar_one()
    assert (failure.event_id, failure.plugin_name, failure.attempts, failure.resolved_at) == (
        event.id,
        "flaky",
        1,
        None,
    )
    assert "flaky handler is down" in failure.error
    keys = _setting_keys()
    assert f"recorder.seen.{event.id}" in keys  # the other handler ran and committed
    assert f"flaky.done.{event.id}" not in keys  # the failing handler's own write was rolled back
    assert recorder.calls == flaky.calls == [event.id]


def test_replay_command_redispatches_and_resolves(app, recorder, flaky):
    _new_unit()
    commit()
    _new_unit("3602")
    commit()
    runner = app.test_cli_runner()
    listing = runner.invoke(args=["lms", "events", "failures"])
    assert "2 open failure(s)" in listing.output and "flaky" in listing.output
    still = runner.invoke(args=["lms", "events", "replay"])
    assert still.exit_code == 1 and "0 fixed, 2 still failing" in still.output
    assert [f.attempts for f in events.open_failures()] == [2, 2]
    flaky.broken = False
    done = runner.invoke(args=["lms", "events", "replay", "--plugin", "flaky"])
    assert done.exit_code == 0, done.output
    assert "2 fixed, 0 still failing" in done.output
    db.session.expire_all()
    assert events.open_failures() == []
    assert all(f.resolved_at is not None for f in db.session.execute(select(EventHandlerFailure)).scalars())
    assert len([k for k in _setting_keys() if k.startswith("flaky.done.")]) == 2
    assert len(recorder.calls) == 2  # replay went to the failed plugin only
    assert "0 open failure(s)" in runner.invoke(args=["lms", "events", "failures"]).output


def test_handlers_are_idempotent_on_event_id(app, recorder, flaky):
    flaky.broken = False
    _new_unit()
    commit()
    (event,) = db.session.execute(select(Event)).scalars()
    events.dispatch(event.id)
    events.dispatch(event.id)  # a retried job or a replay delivers it again
    assert recorder.calls == [event.id] * 3
    assert len([k for k in _setting_keys() if k.startswith("recorder.seen.")]) == 1


@pytest.mark.app_config(LMS_INLINE_JOBS=False)
def test_without_inline_jobs_the_worker_dispatches(app, recorder):
    _new_unit()
    commit()
    assert recorder.calls == []
    result = app.test_cli_runner().invoke(args=["lms", "worker", "--once"])
    assert result.exit_code == 0 and "1 job(s) run" in result.output
    assert len(recorder.calls) == 1


def test_event_records_request_ip_and_actor_unit(app, tree):
    from tests.factories import UserFactory

    actor = UserFactory(org_unit=tree.town_a)
    with app.test_request_context(environ_base={"REMOTE_ADDR": "10.1.2.3"}):
        event = events.emit("test.thing", actor=actor, obj=tree.village_a, payload={"k": "值"})
        db.session.commit()
    db.session.expire_all()
    event = db.session.get(Event, event.id)
    assert (event.ip, event.actor_id, event.org_unit_id, event.payload) == (
        "10.1.2.3",
        actor.id,
        tree.town_a.id,
        {"k": "值"},
    )
    tail = app.test_cli_runner().invoke(args=["lms", "events", "tail", "-n", "1"])
    assert "test.thing" in tail.output and f"org_units:{tree.village_a.id}" in tail.output


def test_emit_many_writes_each_event_and_dispatches_each_after_commit(app, tree, recorder):
    """One statement for the events and one for their jobs (on PostgreSQL an array per
    column): the same rows, in the items' order, as ``emit`` one by one would write."""
    from tests.factories import UserFactory

    actor = UserFactory(org_unit=tree.town_a)
    items = [
        {"object_type": "users", "object_id": 7, "payload": {"what": "复核", "n": 1}},
        {"object_type": "users", "object_id": "8", "org_unit_id": tree.village_a.id, "course_id": None},
        {"object_type": None, "object_id": None, "payload": {"引号": 'a"b\\c'}},
    ]
    with app.test_request_context(environ_base={"REMOTE_ADDR": "10.1.2.4"}):
        ids = events.emit_many("test.many", items, actor=actor)
        assert ids == sorted(ids) and len(set(ids)) == 3
        assert _count(Job) == 3  # written in the business transaction, before the commit
        commit()
    db.session.expire_all()
    rows = [db.session.get(Event, i) for i in ids]
    assert [(e.name, e.actor_id, e.ip, e.object_type, e.object_id, e.org_unit_id, e.payload) for e in rows] == [
        ("test.many", actor.id, "10.1.2.4", "users", "7", tree.town_a.id, {"what": "复核", "n": 1}),
        ("test.many", actor.id, "10.1.2.4", "users", "8", tree.village_a.id, {}),
        ("test.many", actor.id, "10.1.2.4", None, None, tree.town_a.id, {"引号": 'a"b\\c'}),
    ]
    assert all(e.created_at.tzinfo is not None and e.created_at == rows[0].created_at for e in rows)
    jobs = db.session.execute(select(Job).order_by(Job.id)).scalars().all()
    assert [(j.kind, j.payload, j.status) for j in jobs] == [
        (events.DISPATCH_JOB, {"event_id": i}, JobStatus.DONE) for i in ids
    ]
    assert sorted(recorder.calls) == ids and all(recorder.saw_committed)


def test_emit_many_rolls_back_with_the_business_transaction(app, recorder):
    assert events.emit_many("test.many", [{"object_type": "users", "object_id": 1}]) != []
    assert events.emit_many("test.many", []) == []
    db.session.rollback()
    assert _count(Event) == 0 and _count(Job) == 0
    commit()
    assert recorder.calls == []


# append-only -------------------------------------------------------------------


@pytest.fixture
def one_event(app):
    event = events.emit("test.fixed", payload={"v": 1})
    db.session.commit()
    return event


def test_orm_refuses_update_and_delete(one_event):
    one_event.name = "test.changed"
    with pytest.raises(AppendOnlyViolation):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(Event, one_event.id))
    with pytest.raises(AppendOnlyViolation):
        db.session.flush()
    db.session.rollback()
    assert db.session.get(Event, one_event.id).name == "test.fixed"


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE event_log SET name = 'test.changed'",
        "UPDATE event_log SET payload = NULL WHERE id = :id",
        "DELETE FROM event_log WHERE id = :id",
    ],
)
def test_database_trigger_refuses_raw_sql(one_event, sql):
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text(sql), {"id": one_event.id})
        db.session.commit()
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Event, one_event.id).name == "test.fixed"
    assert _count(Event) == 1


def test_inserting_more_events_is_allowed(one_event):
    events.emit("test.second")
    db.session.commit()
    assert _count(Event) == 2
