"""Refuse, at the ORM level, any update or delete of an event-log row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from lms_core.events.models import Event


class AppendOnlyViolation(RuntimeError):
    pass


def _check(session: Session, flush_context: Any, instances: Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, Event):
            raise AppendOnlyViolation("event_log rows cannot be deleted")
    for obj in session.dirty:
        if isinstance(obj, Event) and session.is_modified(obj, include_collections=False):
            raise AppendOnlyViolation("event_log rows cannot be changed")


def install() -> None:
    """Listen on every Session (idempotent)."""
    if not sa_event.contains(Session, "before_flush", _check):
        sa_event.listen(Session, "before_flush", _check)
