"""Write domain events and dispatch them to plugins after commit."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from typing import Any

from flask import g, has_app_context, has_request_context, request
from sqlalchemy import select, text

from lms_core.authz import register_scope_resolver
from lms_core.db import transient_copy, utcnow
from lms_core.events.models import Event, EventHandlerFailure
from lms_core.extensions import db
from lms_core.jobs.services import enqueue, enqueue_many
from lms_core.learning import beat_group, beat_tx
from lms_core.orgs.models import OrgUnit
from lms_core.pg_arrays import int_array, str_array
from lms_core.pluginhost import get_plugin_manager

log = logging.getLogger(__name__)

DISPATCH_JOB = "events.dispatch"

# An event belongs to the org unit recorded on it (the actor's unit at the time, or
# the unit the change was made in); events with none are site-wide.
register_scope_resolver(Event, lambda e: db.session.get(OrgUnit, e.org_unit_id) if e.org_unit_id else None)


def emit(
    name: str,
    *,
    actor: Any = None,
    obj: Any = None,
    object_type: str | None = None,
    object_id: Any = None,
    course_id: int | None = None,
    org_unit_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> Event:
    """Record ``name`` in the current transaction and queue its dispatch.

    Call it from a service *before* committing: the event and the change it
    describes commit together or not at all. ``obj`` may be any model; its table
    name and primary key become ``object_type``/``object_id``.

    Inside a round of a heartbeat group (``learning/beat_group.py``, PostgreSQL) the event
    is kept with the round's writes and inserted with the round's other events by one
    statement (:func:`_write_round`), with its dispatch job; the returned event is then not
    in the session, and its ``id`` is set when the round is written (before any statement
    that names ``event_log`` or ``jobs``, and before the COMMIT).
    """
    if obj is not None:
        object_type = object_type or obj.__tablename__
        object_id = object_id if object_id is not None else obj.id
    actor_id = getattr(actor, "id", None)
    if org_unit_id is None and actor is not None:
        org_unit_id = getattr(actor, "org_unit_id", None)
    values = {
        "name": name,
        "actor_id": actor_id,
        "org_unit_id": org_unit_id,
        "object_type": object_type,
        "object_id": None if object_id is None else str(object_id),
        "course_id": course_id,
        "ip": _remote_addr(),
        "payload": payload or {},
        "created_at": utcnow(),
    }
    batch = _round_batch()
    if batch is not None:
        # Only read (by the round's INSERT), never added to the session: filled without the
        # constructor's attribute events (~40 µs of CPU an event, ``transient_copy``).
        kept = transient_copy(Event, values)
        _keep(batch, kept)
        return kept
    event = Event(**values)
    db.session.add(event)
    db.session.flush()  # the id is the idempotency key handlers rely on
    enqueue(DISPATCH_JOB, {"event_id": event.id})
    return event


def _round_batch() -> beat_group.Batch | None:
    """The open round of a heartbeat group on the session's connection, if any (only a
    group pins its thread's session, so any other caller pays one attribute look-up)."""
    if not beat_tx.in_group() or not beat_tx.is_pg():
        return None
    return beat_group.active()


class _RoundJob:
    """The dispatch job of an event kept in a round: its place in the transaction's list of
    new jobs (``jobs.run_inline_jobs``) is taken at ``emit``, as ``enqueue``'s is, and its
    ``id`` is set when the round is written (``None`` if it never was: rolled back)."""

    __slots__ = ("id",)

    def __init__(self) -> None:
        self.id: int | None = None


def _keep(batch: beat_group.Batch, event: Event) -> None:
    job = _RoundJob()
    db.session.info.setdefault("lms_new_jobs", []).append(job)
    batch.add(_ROUND_NAME, _write_round, (event, job), _ROUND_TABLES)


#: The events' writer in a round's batch, and the tables it writes.
_ROUND_NAME = "events"
_ROUND_TABLES = ("event_log", "jobs")

#: A round's events and their dispatch jobs, one statement: the events in the order they
#: were emitted (so their ids are in that order, as one ``emit`` after another numbers them),
#: then one job per event in the events' order, with ``enqueue``'s values. One flush per
#: event (the ORM's INSERT, then the job's at the next flush) cost ~1 ms of CPU per event in
#: a round (``bench/beat_split.py --group 15``).
_PG_ROUND = (
    "WITH e AS (INSERT INTO event_log (name, actor_id, org_unit_id, object_type, object_id, course_id, ip, payload, "
    "created_at) SELECT name, actor_id, org_unit_id, object_type, object_id, course_id, ip, payload, created_at "
    "FROM jsonb_populate_recordset(NULL::event_log, %(e)s::jsonb) WITH ORDINALITY AS v ORDER BY v.ordinality "
    "RETURNING id, created_at), "
    "j AS (INSERT INTO jobs (kind, payload, status, attempts, run_after, created_at) "
    "SELECT %(kind)s, jsonb_build_object('event_id', e.id), 'queued', 0, e.created_at, e.created_at "
    "FROM e ORDER BY e.id RETURNING id, payload) "
    "SELECT (payload->>'event_id')::bigint, id FROM j ORDER BY 1"
)


def _write_round(items: list[tuple[Event, _RoundJob]]) -> None:
    """The round's kept events (``emit``) in one statement; their ids and their jobs' ids set."""
    from lms_core.learning import beat_rows

    rows = [
        {
            "name": event.name,
            "actor_id": event.actor_id,
            "org_unit_id": event.org_unit_id,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "course_id": event.course_id,
            "ip": event.ip,
            "payload": event.payload,
            "created_at": event.created_at,
        }
        for event, _job in items
    ]
    cur = beat_rows.cursor()
    cur.execute(_PG_ROUND, {"e": beat_group.rows_json(rows), "kind": DISPATCH_JOB}, prepare=True)
    written = cur.fetchall()
    assert len(written) == len(items)
    # Ids ascend in insertion order, which is the order of ``items``.
    for (event, job), (event_id, job_id) in zip(items, written, strict=True):
        event.id, job.id = int(event_id), int(job_id)


def _remote_addr() -> str | None:
    """The client's address: the request's, or the one the lean heartbeat front
    (``learning/beat_front.py``, no request context) keeps in ``g``."""
    if has_request_context():
        return request.remote_addr
    return g.get("lms_remote_addr") if has_app_context() else None


def emit_many(name: str, items: list[dict[str, Any]], *, actor: Any = None) -> list[int]:
    """``emit`` for many events of one name at once (bulk jobs such as a recompute, a
    list page that logs a look at each person it shows); returns their ids, in order.

    ``items`` hold ``object_type``, ``object_id``, ``org_unit_id``, ``payload``;
    ``actor``, as for ``emit``, is the same for all of them (and gives the unit when
    an item names none). The events are inserted with one statement and their dispatch
    jobs with another, instead of two flushes per event; same rows, same dispatch.
    """
    if not items:
        return []
    now = utcnow()
    actor_id = getattr(actor, "id", None)
    actor_unit = getattr(actor, "org_unit_id", None) if actor is not None else None
    ip = _remote_addr() if actor is not None else None
    rows = [
        {
            "org_unit_id": item["org_unit_id"] if item.get("org_unit_id") is not None else actor_unit,
            "object_type": item.get("object_type"),
            "object_id": None if item.get("object_id") is None else str(item["object_id"]),
            "course_id": item.get("course_id"),
            "payload": item.get("payload") or {},
        }
        for item in items
    ]
    if db.session.get_bind().dialect.name == "postgresql":
        ids = _insert_pg(name, actor_id, ip, now, rows)
    else:
        events = [Event(name=name, actor_id=actor_id, ip=ip, created_at=now, **row) for row in rows]
        db.session.add_all(events)
        db.session.flush()
        ids = [event.id for event in events]
    enqueue_many(DISPATCH_JOB, [{"event_id": event_id} for event_id in ids])
    return ids


#: ``emit_many`` on PostgreSQL: the rows as one array per column, so the statement's text
#: is the same whatever their number (prepared once per connection). Built by the ORM, the
#: review queue's 50 look-events cost 13 ms of CPU per page (now 4): a unit of work for 100
#: objects, and a 450-parameter INSERT that psycopg parses again on every call (too long
#: for its cache).
_INSERT_PG = text(
    "INSERT INTO event_log (name, actor_id, org_unit_id, object_type, object_id, course_id, ip, payload, created_at) "
    "SELECT CAST(:name AS text), CAST(:actor_id AS bigint), v.org_unit_id, v.object_type, v.object_id, v.course_id, "
    "CAST(:ip AS text), v.payload, CAST(:now AS timestamptz) "
    "FROM unnest(CAST(:org_unit_ids AS bigint[]), CAST(:object_types AS text[]), CAST(:object_ids AS text[]), "
    "CAST(:course_ids AS bigint[]), CAST(:payloads AS jsonb[])) "
    "WITH ORDINALITY AS v(org_unit_id, object_type, object_id, course_id, payload, n) "
    "ORDER BY v.n RETURNING id"
)


def _insert_pg(name: str, actor_id: int | None, ip: str | None, now: Any, rows: list[dict[str, Any]]) -> list[int]:
    params = {
        "name": name,
        "actor_id": actor_id,
        "ip": ip,
        "now": now,
        "org_unit_ids": int_array(r["org_unit_id"] for r in rows),
        "object_types": str_array(r["object_type"] for r in rows),
        "object_ids": str_array(r["object_id"] for r in rows),
        "course_ids": int_array(r["course_id"] for r in rows),
        "payloads": str_array(json.dumps(r["payload"]) for r in rows),
    }
    return [int(i) for i in db.session.execute(_INSERT_PG, params).scalars()]


def _run_handler(impl: Any, event_id: int) -> bool:
    """Run one plugin's handler in its own transaction, recording a failure."""
    event = db.session.get(Event, event_id)
    try:
        impl.function(event=event)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.warning("plugin %s failed on event %s", impl.plugin_name, event_id, exc_info=True)
        _record_failure(event_id, impl.plugin_name, traceback.format_exc(limit=20))
        return False
    _resolve_failure(event_id, impl.plugin_name)
    return True


def _record_failure(event_id: int, plugin_name: str, error: str) -> None:
    failure = db.session.execute(
        select(EventHandlerFailure).filter_by(event_id=event_id, plugin_name=plugin_name)
    ).scalar_one_or_none()
    now = utcnow()
    if failure is None:
        db.session.add(
            EventHandlerFailure(
                event_id=event_id, plugin_name=plugin_name, error=error, first_failed_at=now, last_failed_at=now
            )
        )
    else:
        failure.attempts += 1
        failure.error = error
        failure.last_failed_at = now
        failure.resolved_at = None
    db.session.commit()


def _resolve_failure(event_id: int, plugin_name: str) -> None:
    failure = db.session.execute(
        select(EventHandlerFailure).filter_by(event_id=event_id, plugin_name=plugin_name, resolved_at=None)
    ).scalar_one_or_none()
    if failure is not None:
        failure.resolved_at = utcnow()
        db.session.commit()


def dispatch(event_id: int, only_plugin: str | None = None) -> dict[str, bool]:
    """Deliver a committed event to each ``lms_handle_event`` implementation."""
    results = {}
    for impl in get_plugin_manager().hook.lms_handle_event.get_hookimpls():
        if only_plugin is None or impl.plugin_name == only_plugin:
            results[impl.plugin_name] = _run_handler(impl, event_id)
    return results


def dispatch_job(payload: dict[str, Any]) -> None:
    """Job handler for :data:`DISPATCH_JOB`."""
    dispatch(int(payload["event_id"]))


def open_failures() -> list[EventHandlerFailure]:
    return list(
        db.session.execute(
            select(EventHandlerFailure)
            .where(EventHandlerFailure.resolved_at.is_(None))
            .order_by(EventHandlerFailure.id)
        ).scalars()
    )


def replay_failures(plugin_name: str | None = None, progress: Callable[[int], object] | None = None) -> tuple[int, int]:
    """Re-dispatch every unresolved failure; returns (fixed, still failing)."""
    fixed = failing = 0
    targets = [
        (f.event_id, f.plugin_name) for f in open_failures() if plugin_name is None or f.plugin_name == plugin_name
    ]
    for event_id, name in targets:
        outcome = dispatch(event_id, only_plugin=name)
        if outcome.get(name):
            fixed += 1
        else:
            failing += 1
        if progress:
            progress(1)
    return fixed, failing
