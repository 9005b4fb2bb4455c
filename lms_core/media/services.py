"""Store uploads, sign per-user media URLs and record the bytes delivered.

``store_upload`` streams the body to a spool file in 1 MiB chunks while hashing
it, so memory stays flat whatever the size; the type is decided from the
content, the file is probed (duration, pages) and only then moved into the
content-addressed store. Any refusal leaves nothing behind: no row, no stored
file, no spool file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from flask import current_app, url_for
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from lms_core.db import utcnow
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.media import probe as probing
from lms_core.media.models import MediaDelivery, MediaFile
from lms_core.media.storage import CHUNK, get_storage, key_for
from lms_core.media.validation import HEAD_BYTES, UploadRejected, check_type

log = logging.getLogger(__name__)

_SALT = "lms.media.url"


def _too_large(limit: int) -> UploadRejected:
    return UploadRejected(413, _("The file is larger than the limit of %(mb)s MB.", mb=f"{limit / (1024 * 1024):,.0f}"))


@dataclass(frozen=True)
class StoredUpload:
    media: MediaFile
    created: bool  #: False when the same content was already stored (deduplicated)


def store_upload(
    stream: IO[bytes], original_name: str, uploader: Any, *, content_length: int | None = None
) -> MediaFile:
    """Validate and store an uploaded file; returns its (possibly existing) row.

    See :func:`store`, which also tells whether the content was new.
    """
    return store(stream, original_name, uploader, content_length=content_length).media


def store(stream: IO[bytes], original_name: str, uploader: Any, *, content_length: int | None = None) -> StoredUpload:
    """Validate and store an uploaded file.

    Args:
        stream: the body, read in chunks until EOF (never all at once).
        original_name: the name the client gave; display only, and checked against
            the content so that a mislabelled file is refused.
        uploader: the user uploading (recorded, and the event's actor).
        content_length: the declared size, if known, to refuse early.

    Raises:
        UploadRejected: 413 when over ``LMS_UPLOAD_MAX_BYTES``, 415 for an unknown,
            refused or mislabelled type, 400 for an empty, truncated or damaged file.

    The caller commits (the row and the ``media.uploaded`` event are flushed).
    """
    config = current_app.config
    limit = int(config["LMS_UPLOAD_MAX_BYTES"])
    if content_length is not None and content_length > limit:
        raise _too_large(limit)
    name = (os.path.basename(original_name.replace("\\", "/")) or "upload")[:255]
    storage = get_storage()
    fd, spool_name = tempfile.mkstemp(dir=storage.spool_dir(), prefix="upload-")
    spool = Path(spool_name)
    try:
        digest = hashlib.sha256()
        size = 0
        head = b""
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise UploadRejected(400, _("The file is empty."))
        media_type = check_type(head, name, list(config["LMS_UPLOAD_ALLOWED"]))
        with spool.open("rb") as fh:
            try:
                facts = probing.probe(media_type.code, fh)
            except probing.ProbeError as exc:
                raise UploadRejected(400, str(exc)) from exc
        sha256 = digest.hexdigest()

        existing = _by_sha256(sha256)
        if existing is None:
            key = key_for(sha256)
            if not storage.exists(key):
                storage.save_file(key, spool)
            media = MediaFile(
                sha256=sha256,
                size_bytes=size,
                mime_type=media_type.mime,
                kind=media_type.kind,
                duration_ms=facts.duration_ms,
                width=facts.width,
                height=facts.height,
                page_count=facts.page_count,
                original_name=name,
                storage_key=key,
                uploaded_by_id=getattr(uploader, "id", None),
                created_at=utcnow(),
            )
            try:
                with db.session.begin_nested():
                    db.session.add(media)
            except IntegrityError:
                # The same content was committed by a concurrent upload a moment ago.
                existing = _by_sha256(sha256)
                if existing is None:
                    raise
        if existing is not None:
            media = existing
            # Repair a store that lost the file (e.g. restored database, fresh disk).
            if not storage.exists(media.storage_key):
                storage.save_file(media.storage_key, spool)
        emit(
            "media.uploaded",
            actor=uploader,
            obj=media,
            payload={
                "sha256": sha256,
                "kind": media.kind.value,
                "mime_type": media.mime_type,
                "size": size,
                "duration_ms": media.duration_ms,
                "page_count": media.page_count,
                "original_name": name,
                "deduplicated": existing is not None,
            },
        )
        return StoredUpload(media, created=existing is None)
    finally:
        spool.unlink(missing_ok=True)


def _by_sha256(sha256: str) -> MediaFile | None:
    return db.session.execute(select(MediaFile).filter_by(sha256=sha256)).scalar_one_or_none()


# Signed URLs -----------------------------------------------------------------------


@dataclass(frozen=True)
class MediaGrant:
    """What a valid media URL allows: this user, this file, this playback session."""

    media_id: int
    user_id: int
    session_key: str
    expires: int


class InvalidMediaUrl(Exception):
    """Bad signature, expired, or malformed token."""


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def sign_token(media_id: int, user_id: int, session_key: str, ttl: int | None = None) -> str:
    if not session_key or len(session_key) > 64:
        raise ValueError("session_key must be 1-64 characters")
    ttl = int(current_app.config["LMS_MEDIA_URL_TTL"] if ttl is None else ttl)
    return str(_serializer().dumps([media_id, user_id, session_key, int(time.time()) + ttl]))


def signed_url(media: MediaFile, user: Any, session_key: str, ttl: int | None = None, *, external: bool = False) -> str:
    """A URL serving ``media`` to ``user`` only, for one playback session, for ``ttl`` seconds.

    The token is HMAC-signed with the app secret (itsdangerous) and binds the user
    id, media id, session key and expiry; the bytes fetched through it are counted
    under ``session_key`` in :class:`MediaDelivery`. Callers check that the user
    may see the lesson before handing out the URL.
    """
    token = sign_token(media.id, user.id, session_key, ttl)
    return url_for("media.serve", token=token, _external=external)


def verify_token(token: str, now: float | None = None) -> MediaGrant:
    try:
        media_id, user_id, session_key, expires = _serializer().loads(token)
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidMediaUrl("bad signature") from exc
    if not (
        isinstance(media_id, int)
        and isinstance(user_id, int)
        and isinstance(session_key, str)
        and isinstance(expires, int)
    ):
        raise InvalidMediaUrl("malformed token")
    if (time.time() if now is None else now) > expires:
        raise InvalidMediaUrl("expired")
    return MediaGrant(media_id, user_id, session_key, expires)


# Delivery accounting -----------------------------------------------------------------

_LOCKED_RETRIES = 5


def record_delivery(session_key: str, user_id: int, media_id: int, nbytes: int) -> None:
    """Add ``nbytes`` (and one request) to the session's counter; one atomic upsert.

    Runs in its own short transaction (committed here): it is called after the
    response body was sent, outside the request's transaction.
    """
    now = utcnow()
    dialect = db.session.get_bind().dialect.name
    insert: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        # A counter, written once per response: do not wait for the WAL flush. A
        # crash can lose the last fraction of a second of counts, never corrupt them.
        db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database {dialect}")
    table: Any = MediaDelivery.__table__
    stmt = insert(table).values(
        session_key=session_key,
        user_id=user_id,
        media_id=media_id,
        bytes_served=nbytes,
        requests=1,
        first_at=now,
        last_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.session_key, table.c.media_id],
        set_={
            "bytes_served": table.c.bytes_served + stmt.excluded.bytes_served,
            "requests": table.c.requests + 1,
            "last_at": stmt.excluded.last_at,
        },
    )
    for attempt in range(1, _LOCKED_RETRIES + 1):
        try:
            db.session.execute(stmt)
            db.session.commit()
            return
        except OperationalError as exc:
            db.session.rollback()
            # SQLite has one writer at a time; under a burst of range requests a
            # writer can wait past the driver's 5 s timeout. The upsert is atomic,
            # so trying again cannot double-count.
            if dialect != "sqlite" or "locked" not in str(exc) or attempt == _LOCKED_RETRIES:
                raise
            time.sleep(0.1 * attempt)


def bytes_served(session_key: str, media_id: int | None = None) -> int:
    """Total bytes delivered under ``session_key`` (for one file or all)."""
    query = select(func.coalesce(func.sum(MediaDelivery.bytes_served), 0)).where(
        MediaDelivery.session_key == session_key
    )
    if media_id is not None:
        query = query.where(MediaDelivery.media_id == media_id)
    return int(db.session.execute(query).scalar_one())


def visible_condition(user: Any) -> Any:
    """SQL condition on ``MediaFile``: the uploads ``user`` may list and preview.

    Their own uploads (by the ``media.uploaded`` events they caused, so a file
    someone else had already stored counts too: storage is deduplicated), and the
    files used by lessons of courses they may edit (the rule of
    ``courses.services.can_edit``: instructor of the course, or author *and*
    administrator over its owning unit, or site admin). Holding ``instructor``
    alone, self-granted by an org admin or not, reaches nothing else.
    """
    from sqlalchemy import String, and_, cast, or_, true

    from lms_core.authz import can, scope_condition
    from lms_core.courses.models import Course, CourseInstructor, Lesson
    from lms_core.events.models import Event
    from lms_core.orgs.models import OrgUnit

    if can(user, "site.manage"):
        return true()
    mine = select(Event.object_id).where(
        Event.actor_id == user.id, Event.name == "media.uploaded", Event.object_type == MediaFile.__tablename__
    )
    taught = select(CourseInstructor.course_id).where(CourseInstructor.user_id == user.id)
    editable = (
        select(Lesson.media_id)
        .join(Course, Course.id == Lesson.course_id)
        .join(OrgUnit, OrgUnit.id == Course.owner_unit_id)
        .where(
            Lesson.media_id.is_not(None),
            or_(
                Course.id.in_(taught),
                and_(
                    scope_condition(user, "course.author", OrgUnit.path),
                    scope_condition(user, "org.manage", OrgUnit.path),
                ),
            ),
        )
    )
    return or_(cast(MediaFile.id, String).in_(mine), MediaFile.id.in_(editable))


def library(user: Any, limit: int = 200) -> list[MediaFile]:
    """The most recent uploads ``user`` may see (see :func:`visible_condition`)."""
    stmt = select(MediaFile).where(visible_condition(user)).order_by(MediaFile.id.desc()).limit(limit)
    return list(db.session.execute(stmt).scalars())


def visible_to(user: Any, media_id: int) -> MediaFile | None:
    """The upload if ``user`` may preview it, else ``None`` (absent and forbidden look alike)."""
    stmt = select(MediaFile).where(MediaFile.id == media_id, visible_condition(user))
    return db.session.execute(stmt).scalar_one_or_none()
