"""The xAPI outbox: one row per domain event that maps to a statement."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lms_core.db import Base, UTCDateTime, bigint_pk, json_type, str_enum, utcnow


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # not yet acknowledged by the LRS; retried with backoff
    DELIVERED = "delivered"
    FAILED = "failed"  # the LRS rejected this statement itself (4xx); kept for inspection


class XapiOutbox(Base):
    """A statement waiting for (or done with) delivery to the LRS.

    Written after the event committed, by the core's ``xapi_emitter`` handler, at
    most once per event (``event_id`` is unique). The statement is stored exactly
    as it will be sent, so a retry re-sends identical content under the same
    deterministic id, which the LRS treats as a no-op.
    """

    __tablename__ = "xapi_outbox"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event_log.id", ondelete="RESTRICT"), unique=True)
    #: The statement's UUID (also inside ``statement``), for look-ups from the LRS side.
    statement_id: Mapped[str] = mapped_column(String(36), unique=True)
    statement: Mapped[dict[str, Any]] = mapped_column(json_type())
    status: Mapped[OutboxStatus] = mapped_column(str_enum(OutboxStatus, 16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    #: Not before this time; also a lease while a deliverer holds the row.
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_xapi_outbox_status_next_attempt_at", "status", "next_attempt_at"),)
