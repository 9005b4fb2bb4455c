"""LRS tables (prefix ``lrs_``).

Statements are written once and never updated except for the ``voided`` flag
(voiding is the only change xAPI allows). The lookup table is derived data written
in the same transaction as the statements it indexes; there are no per-agent or
per-activity rows to upsert, so concurrent batches that share agents and
activities never wait on each other (the reference LRS deadlocks there).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lms_core.db import Base, UTCDateTime, bigint_pk, json_type, utcnow


class LrsClient(Base):
    """A credential (HTTP Basic key/secret) and the xAPI scopes it holds.

    The secret is random (32 bytes) and only its SHA-256 is stored: for a secret
    with that much entropy a slow password hash adds nothing but latency on every
    request.
    """

    __tablename__ = "lrs_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(64), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    #: xAPI scopes: ``all``, ``all/read``, ``statements/write``, ``statements/read``,
    #: ``statements/read/mine``, ``state``, ``define``, ``profile``.
    scopes: Mapped[list[str]] = mapped_column(json_type())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Username of whoever created it (web UI) or ``cli``; for the audit trail.
    created_by: Mapped[str] = mapped_column(String(100), default="cli")


class LrsStatement(Base):
    """One statement as stored (``data`` holds id, stored, authority, version, timestamp)."""

    __tablename__ = "lrs_statements"

    pk: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    statement_id: Mapped[str] = mapped_column(String(36), unique=True)
    stored: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    client_id: Mapped[int | None] = mapped_column()
    has_attachments: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict[str, Any]] = mapped_column(json_type())
    #: The platform learner the statement is about: the ``users.id`` whose username is the
    #: actor's account name when the account's home page is ``LMS_PLATFORM_URL``; None for
    #: anyone else. Set when the statement is stored (migration 0003lrs filled the older
    #: ones), so the log browser scopes statements by the learner's unit through this id
    #: instead of reading every candidate statement's JSON. No foreign key: the LRS keeps
    #: what it stored even if an account goes, and a statement is never updated for it.
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (Index("ix_lrs_statements_actor_user_id_stored", "actor_user_id", "stored"),)


class LrsStatementKey(Base):
    """``(key, statement)``: see :mod:`lrs.keys`. No foreign key: derived, same transaction."""

    __tablename__ = "lrs_statement_keys"

    key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    stmt_pk: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class LrsAttachment(Base):
    """Attachment content, stored once per SHA-2 digest."""

    __tablename__ = "lrs_attachments"

    sha2: Mapped[str] = mapped_column(String(128), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(255))
    length: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LrsDocument(Base):
    """A State, Activity Profile or Agent Profile document.

    ``scope_hash`` is the SHA-256 of (kind, activity, agent): documents are listed
    and deleted per scope (and registration, for State). ``doc_hash`` adds the
    registration and the document id and is unique, so two concurrent creations of
    one document cannot both succeed.
    """

    __tablename__ = "lrs_documents"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    scope_hash: Mapped[str] = mapped_column(String(64))
    doc_hash: Mapped[str] = mapped_column(String(64), unique=True)
    activity_id: Mapped[str | None] = mapped_column(Text)
    agent: Mapped[str | None] = mapped_column(Text)
    registration: Mapped[str | None] = mapped_column(String(36))
    doc_id: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    etag: Mapped[str] = mapped_column(String(40))
    updated: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_lrs_documents_scope", "scope_hash", "registration"),)
