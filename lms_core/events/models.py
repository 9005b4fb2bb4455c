"""Event log rows and the record of handlers that failed on them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lms_core.db import Base, UTCDateTime, bigint_pk, json_type, utcnow


class Event(Base):
    """A domain event (who did what to which object, where and when).

    Modelled on Moodle's standard log. Rows are written in the same transaction as
    the change they describe and are never updated or deleted: the ORM refuses it
    (see :mod:`lms_core.events.guard`) and the migrations add database triggers that
    refuse it too, so the auditors' record cannot be edited through the app.
    """

    __tablename__ = "event_log"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    #: The actor's org unit *at the time*; auditors' scope is checked against it.
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    object_type: Mapped[str | None] = mapped_column(String(50))
    object_id: Mapped[str | None] = mapped_column(String(64))
    course_id: Mapped[int | None]
    ip: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_event_log_name_created_at", "name", "created_at"),
        #: The log browser's order, newest first (a date range is a range of it).
        Index("ix_event_log_created_at_id", "created_at", "id"),
        Index("ix_event_log_actor_id_created_at", "actor_id", "created_at"),
        Index("ix_event_log_org_unit_id_created_at", "org_unit_id", "created_at"),
        Index("ix_event_log_object", "object_type", "object_id"),
        Index("ix_event_log_course_id", "course_id"),
    )


class EventHandlerFailure(Base):
    """A plugin's ``lms_handle_event`` raised on an event; kept until replayed."""

    __tablename__ = "event_handler_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event_log.id", ondelete="RESTRICT"))
    plugin_name: Mapped[str] = mapped_column(String(100))
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=1)
    first_failed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_failed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_event_handler_failures_event_plugin", "event_id", "plugin_name", unique=True),)
