"""Stored media and the record of bytes delivered per playback session."""

from __future__ import annotations

import datetime as dt
import enum

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lms_core.db import Base, UTCDateTime, bigint_pk, str_enum, utcnow
from lms_core.i18n import enum_labels


class MediaKind(enum.StrEnum):
    VIDEO = "video"
    DOCUMENT = "document"
    IMAGE = "image"


enum_labels(MediaKind, {MediaKind.VIDEO: _l("Video"), MediaKind.DOCUMENT: _l("Document"), MediaKind.IMAGE: _l("Image")})


class MediaFile(Base):
    """One stored file, identified by the SHA-256 of its content.

    The same bytes uploaded twice are stored once (``sha256`` is unique); lessons
    reference the row, not a path. ``duration_ms`` is read from the file on the
    server, never taken from the client.
    """

    __tablename__ = "media_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(100))
    kind: Mapped[MediaKind] = mapped_column(str_enum(MediaKind, 16))
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    width: Mapped[int | None]
    height: Mapped[int | None]
    page_count: Mapped[int | None]
    #: Name as uploaded (display only; never used to decide the type).
    original_name: Mapped[str] = mapped_column(String(255))
    #: Where the storage backend keeps it (e.g. ``ab/cd/<sha256>`` on local disk).
    storage_key: Mapped[str] = mapped_column(String(255))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MediaDelivery(Base):
    """Bytes of one media file served under one playback session's signed URL.

    The anti-idle plugin compares these with the viewing the client claims: a
    client that reports an hour of video but fetched no bytes did not watch it.
    """

    __tablename__ = "media_deliveries"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    session_key: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    media_id: Mapped[int] = mapped_column(ForeignKey("media_files.id", ondelete="CASCADE"))
    bytes_served: Mapped[int] = mapped_column(BigInteger, default=0)
    requests: Mapped[int] = mapped_column(default=0)
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("session_key", "media_id"),
        Index("ix_media_deliveries_user_id", "user_id"),
    )
