"""The xAPI outbox: write a row per mapped event, deliver due rows in batches.

Delivery never holds a database transaction open across an HTTP call: rows are
*claimed* (``next_attempt_at`` pushed one lease ahead, ``SKIP LOCKED`` on
PostgreSQL so several workers share the work), the batch is posted, then the
outcome is written. A worker that dies mid-batch leaves its rows due again
after the lease; re-sending them is harmless because statement ids are
deterministic and the content is stored.

Outcomes:

* 2xx: delivered.
* LRS unreachable, 5xx, 401/403 (credentials), 404/405 (wrong endpoint), 429: the rows stay pending,
  ``attempts`` + 1, next try after an exponential backoff (5 s doubling to 1 h).
  Credential errors are retried rather than failed because they are the
  platform's configuration, not the statements' fault: fixing the key must not
  require a replay of hand-picked rows.
* 409 or another 4xx on a batch: the LRS rejects a whole batch for one bad
  statement, so the rows are re-sent one by one (PUT) to find it. A 409 for a
  single statement means the LRS already holds that id: delivered (noted). Any
  other 4xx marks that row failed with the LRS's answer (``flask lms xapi
  backlog``/``show``; ``replay --failed`` tries again).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from lms_core.db import utcnow
from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.jobs.models import Job, JobStatus
from lms_core.jobs.services import backoff, enqueue
from lms_core.xapi.credentials import lrs_client
from lms_core.xapi.models import OutboxStatus, XapiOutbox
from lms_core.xapi.statements import MAPPED_EVENTS, build_statement, statement_json
from lms_core.xapi.tincan_adapter import LRSUnavailable, PlatformLRS

log = logging.getLogger(__name__)

DELIVER_JOB = "xapi.deliver"
#: How long a claimed row is reserved for the deliverer that claimed it.
LEASE = dt.timedelta(minutes=5)
#: Statuses that are the LRS's, the network's or the configuration's problem, not the
#: statement's: bad credentials, a wrong endpoint (404/405, e.g. the LRS plugin not
#: enabled yet), time-outs and throttling. The rows wait; fixing the setting suffices.
RETRY_STATUSES = frozenset({401, 403, 404, 405, 408, 429})
MAX_ERROR = 2000


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    retrying: int = 0

    @property
    def processed(self) -> int:
        return self.delivered + self.failed + self.retrying


def enabled() -> bool:
    return bool(current_app.config["LMS_XAPI_ENABLED"])


# writing -------------------------------------------------------------------------


def record_event(event: Event) -> XapiOutbox | None:
    """Queue the statement for ``event`` (idempotent on the event id); does not commit.

    Called by the core's ``lms_handle_event`` after the event committed. Returns
    the new row, or None when xAPI is disabled, the event has no mapping, or the
    row already exists (a redelivered event).
    """
    if not enabled() or event.name not in MAPPED_EVENTS:
        return None
    if db.session.execute(select(XapiOutbox.id).filter_by(event_id=event.id)).first() is not None:
        return None
    statement = build_statement(event, current_app.config["LMS_PLATFORM_URL"])
    if statement is None:
        return None
    data = statement_json(statement)
    now = utcnow()
    row = XapiOutbox(
        event_id=event.id,
        statement_id=data["id"],
        statement=data,
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:
        # Written concurrently by another dispatch of the same event (or, for an
        # ``initialized`` statement, a second event claiming the same session).
        # This handler's transaction holds nothing else, so rolling it back is safe.
        db.session.rollback()
        log.info("xAPI outbox already holds event %s / statement %s", event.id, data["id"])
        return None
    schedule_delivery(now, inline=True)
    return row


def schedule_delivery(at: dt.datetime, *, inline: bool = False) -> None:
    """Make sure an ``xapi.deliver`` job will run by ``at`` (one queued job is enough).

    ``inline`` jobs go through :func:`lms_core.jobs.services.enqueue`, so in
    development they run right after the commit; retries are plain rows that only
    a worker picks up when due (the inline runner would otherwise run them at once).
    """
    waiting = db.session.execute(
        select(Job.id).where(Job.kind == DELIVER_JOB, Job.status == JobStatus.QUEUED, Job.run_after <= at).limit(1)
    ).first()
    if waiting is not None:
        return
    if inline:
        enqueue(DELIVER_JOB, {}, run_after=at)
    else:
        db.session.add(Job(kind=DELIVER_JOB, payload={}, run_after=at))


# delivering ------------------------------------------------------------------------


def _claim(limit: int) -> list[tuple[int, dict[str, Any]]]:
    now = utcnow()
    stmt = (
        select(XapiOutbox)
        .where(XapiOutbox.status == OutboxStatus.PENDING, XapiOutbox.next_attempt_at <= now)
        .order_by(XapiOutbox.id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = db.session.execute(stmt).scalars().all()
    for row in rows:
        row.next_attempt_at = now + LEASE
    claimed = [(row.id, dict(row.statement)) for row in rows]
    db.session.commit()
    return claimed


def _finish(row_id: int, status: OutboxStatus, error: str | None = None) -> None:
    row = db.session.get(XapiOutbox, row_id)
    if row is None:
        return
    now = utcnow()
    row.attempts += 1
    row.last_error = error[:MAX_ERROR] if error else None
    row.status = status
    if status == OutboxStatus.DELIVERED:
        row.delivered_at = now
    elif status == OutboxStatus.PENDING:
        row.next_attempt_at = now + backoff(row.attempts)


def _answer(response: Any) -> str:
    body = (response.data or "").strip().replace("\n", " ")
    return f"HTTP {response.response.status}: {body[:500]}"


def _send_one(client: PlatformLRS, row_id: int, statement: dict[str, Any], report: DeliveryReport) -> None:
    try:
        response = client.put_statement(statement)
    except LRSUnavailable as exc:
        _finish(row_id, OutboxStatus.PENDING, f"LRS unreachable: {exc}")
        report.retrying += 1
        return
    status = response.response.status
    if 200 <= status < 300:
        _finish(row_id, OutboxStatus.DELIVERED)
        report.delivered += 1
    elif status == 409:
        _finish(row_id, OutboxStatus.DELIVERED, f"LRS already holds this statement id ({_answer(response)})")
        report.delivered += 1
    elif 400 <= status < 500 and status not in RETRY_STATUSES:
        _finish(row_id, OutboxStatus.FAILED, _answer(response))
        report.failed += 1
    else:
        _finish(row_id, OutboxStatus.PENDING, _answer(response))
        report.retrying += 1


def _send_batch(client: PlatformLRS, batch: Sequence[tuple[int, dict[str, Any]]], report: DeliveryReport) -> None:
    try:
        response = client.post_statements([statement for _, statement in batch])
    except LRSUnavailable as exc:
        for row_id, _ in batch:
            _finish(row_id, OutboxStatus.PENDING, f"LRS unreachable: {exc}")
        report.retrying += len(batch)
        return
    status = response.response.status
    if 200 <= status < 300:
        for row_id, _ in batch:
            _finish(row_id, OutboxStatus.DELIVERED)
        report.delivered += len(batch)
    elif 400 <= status < 500 and status not in RETRY_STATUSES:
        # One bad statement rejects the whole batch: find it by sending each alone.
        for row_id, statement in batch:
            _send_one(client, row_id, statement, report)
    else:
        for row_id, _ in batch:
            _finish(row_id, OutboxStatus.PENDING, _answer(response))
        report.retrying += len(batch)


def deliver_due(
    *, client: PlatformLRS | None = None, progress: Callable[[int], object] | None = None
) -> DeliveryReport:
    """Deliver every due pending row, batch by batch; then schedule the next retry."""
    client = client or lrs_client()
    size = max(int(current_app.config["LMS_XAPI_BATCH_SIZE"]), 1)
    report = DeliveryReport()
    while batch := _claim(size):
        before = report.processed
        _send_batch(client, batch, report)
        db.session.commit()
        if progress:
            progress(report.processed - before)
    _schedule_retry()
    db.session.commit()
    if report.retrying:
        log.warning("xAPI delivery: %d statement(s) kept for retry", report.retrying)
    return report


def _schedule_retry() -> None:
    earliest = db.session.execute(
        select(func.min(XapiOutbox.next_attempt_at)).where(XapiOutbox.status == OutboxStatus.PENDING)
    ).scalar_one_or_none()
    if earliest is not None:
        schedule_delivery(max(earliest, utcnow()))


def deliver_job(payload: dict[str, Any]) -> None:
    """Job handler for :data:`DELIVER_JOB`."""
    if enabled():
        deliver_due()


# inspecting ------------------------------------------------------------------------


def make_due(*, include_failed: bool = False) -> int:
    """Make pending (and optionally failed) rows due now; returns how many are due."""
    statuses = [OutboxStatus.PENDING, OutboxStatus.FAILED] if include_failed else [OutboxStatus.PENDING]
    db.session.execute(
        update(XapiOutbox)
        .where(XapiOutbox.status.in_(statuses))
        .values(status=OutboxStatus.PENDING, next_attempt_at=utcnow())
    )
    db.session.commit()
    return int(
        db.session.execute(
            select(func.count()).select_from(XapiOutbox).where(XapiOutbox.status == OutboxStatus.PENDING)
        ).scalar_one()
    )


def counts() -> dict[OutboxStatus, int]:
    rows = db.session.execute(select(XapiOutbox.status, func.count()).group_by(XapiOutbox.status)).all()
    found = {OutboxStatus(status): int(n) for status, n in rows}
    return {status: found.get(status, 0) for status in OutboxStatus}


def oldest_pending() -> XapiOutbox | None:
    return db.session.execute(
        select(XapiOutbox).where(XapiOutbox.status == OutboxStatus.PENDING).order_by(XapiOutbox.id).limit(1)
    ).scalar_one_or_none()


def find(ident: str) -> XapiOutbox | None:
    """A row by outbox id, statement UUID, or ``event:<id>``."""
    ident = ident.strip()
    if ident.startswith("event:") and ident[6:].isdigit():
        return db.session.execute(select(XapiOutbox).filter_by(event_id=int(ident[6:]))).scalar_one_or_none()
    if ident.isdigit():
        return db.session.get(XapiOutbox, int(ident))
    return db.session.execute(select(XapiOutbox).filter_by(statement_id=ident.lower())).scalar_one_or_none()
