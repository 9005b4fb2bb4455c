"""State, Activity Profile and Agent Profile documents (xAPI-Communication 2.2-2.7).

Concurrency (3.1): the ETag is the quoted SHA-1 of the content. ``If-Match`` and
``If-None-Match: *`` are honoured on PUT, POST and DELETE; a profile PUT without
either header on an existing document is a 409. Every change is one transaction
and a rejected request leaves no trace (no empty document behind).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from lms_core import jsonsafe
from lms_core.db import utcnow
from lms_core.extensions import db
from lrs.errors import XapiError, bad_request
from lrs.models import LrsDocument

STATE, ACTIVITY_PROFILE, AGENT_PROFILE = "state", "activity_profile", "agent_profile"


@dataclass(frozen=True)
class Scope:
    kind: str
    activity_id: str | None
    agent: str | None  # IFI text
    registration: str | None = None

    @property
    def scope_hash(self) -> str:
        raw = json.dumps([self.kind, self.activity_id, self.agent], ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()

    def doc_hash(self, doc_id: str) -> str:
        raw = json.dumps([self.scope_hash, self.registration, doc_id], ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()


def etag_of(content: bytes) -> str:
    return hashlib.sha1(content).hexdigest()  # noqa: S324 - the spec fixes SHA-1 for ETags


def get(scope: Scope, doc_id: str, *, lock: bool = False) -> LrsDocument | None:
    """The document, row-locked until commit when ``lock`` (writes: no lost merge)."""
    q = select(LrsDocument).where(LrsDocument.doc_hash == scope.doc_hash(doc_id))
    if lock:
        q = q.with_for_update()
    return db.session.execute(q).scalar()


def list_ids(scope: Scope, since: dt.datetime | None, any_registration: bool) -> tuple[list[str], dt.datetime | None]:
    """Document ids in ``scope`` (all registrations for State when none was given)."""
    q = select(LrsDocument.doc_id, LrsDocument.updated).where(LrsDocument.scope_hash == scope.scope_hash)
    if not any_registration:
        q = q.where(
            LrsDocument.registration.is_(None)
            if scope.registration is None
            else LrsDocument.registration == scope.registration
        )
    if since is not None:
        q = q.where(LrsDocument.updated > since)
    rows = db.session.execute(q.order_by(LrsDocument.doc_id)).all()
    ids = list(dict.fromkeys(r[0] for r in rows))
    last = max((r[1] for r in rows), default=None)
    return ids, last


def _etags(header: str) -> list[str]:
    return [part.strip().removeprefix("W/").strip('"') for part in header.split(",") if part.strip()]


def check_preconditions(doc: LrsDocument | None, if_match: str | None, if_none_match: str | None) -> None:
    if if_match is not None:
        tags = _etags(if_match)
        if doc is None or ("*" not in tags and doc.etag not in tags):
            raise XapiError(412, "If-Match does not match the current document")
    if if_none_match is not None:
        tags = _etags(if_none_match)
        if doc is not None and ("*" in tags or doc.etag in tags):
            raise XapiError(412, "If-None-Match: the document already exists")


def _is_json(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "application/json"


def _save(scope: Scope, doc_id: str, doc: LrsDocument | None, content: bytes, content_type: str) -> None:
    now = utcnow()
    if doc is None:
        doc = LrsDocument(
            kind=scope.kind,
            scope_hash=scope.scope_hash,
            doc_hash=scope.doc_hash(doc_id),
            activity_id=scope.activity_id,
            agent=scope.agent,
            registration=scope.registration,
            doc_id=doc_id,
        )
        db.session.add(doc)
    doc.content, doc.content_type, doc.etag, doc.updated = content, content_type, etag_of(content), now
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise _CreatedMeanwhile from None


class _CreatedMeanwhile(Exception):
    """Another request created the same document between our read and our insert."""


def _once_more_if_created_meanwhile(operation: Any, *args: Any) -> None:
    # The second attempt sees the new document and applies the request's
    # preconditions and merge rules to it, as if the requests had been sequential.
    try:
        operation(*args)
    except _CreatedMeanwhile:
        try:
            operation(*args)
        except _CreatedMeanwhile:
            raise XapiError(409, "the document is being created concurrently; retry") from None


def put(
    scope: Scope, doc_id: str, content: bytes, content_type: str, if_match: str | None, if_none_match: str | None
) -> None:
    _once_more_if_created_meanwhile(_put, scope, doc_id, content, content_type, if_match, if_none_match)


def _put(
    scope: Scope, doc_id: str, content: bytes, content_type: str, if_match: str | None, if_none_match: str | None
) -> None:
    doc = get(scope, doc_id, lock=True)
    check_preconditions(doc, if_match, if_none_match)
    if scope.kind != STATE and if_match is None and if_none_match is None:
        # Clients MUST send one of them on a profile PUT (Communication 3.1.s3.b1).
        if doc is not None:
            raise XapiError(409, "the document exists: GET it and send If-Match with its ETag")
        raise bad_request("a profile PUT needs If-Match or If-None-Match (use If-None-Match: * to create)")
    _save(scope, doc_id, doc, content, content_type)


def _json_object(content: bytes, what: str) -> dict[str, Any]:
    try:
        value = jsonsafe.loads(content)
    except jsonsafe.JSONRefused as exc:
        raise bad_request(f"the {what} is not acceptable JSON: {exc}") from None
    if not isinstance(value, dict):
        raise bad_request(f"the {what} is not a JSON object")
    return value


def post(
    scope: Scope, doc_id: str, content: bytes, content_type: str, if_match: str | None, if_none_match: str | None
) -> None:
    """Create, or merge top-level JSON properties into an existing JSON document."""
    _once_more_if_created_meanwhile(_post, scope, doc_id, content, content_type, if_match, if_none_match)


def _post(
    scope: Scope, doc_id: str, content: bytes, content_type: str, if_match: str | None, if_none_match: str | None
) -> None:
    doc = get(scope, doc_id, lock=True)
    check_preconditions(doc, if_match, if_none_match)
    if doc is None:
        if _is_json(content_type):
            _json_object(content, "posted document")
        _save(scope, doc_id, None, content, content_type)
        return
    if not _is_json(content_type) or not _is_json(doc.content_type):
        raise bad_request("POST merges JSON documents only: both must be application/json")
    merged = _json_object(doc.content, "stored document")
    merged.update(_json_object(content, "posted document"))
    _save(scope, doc_id, doc, json.dumps(merged, ensure_ascii=False).encode(), "application/json")


def delete_one(scope: Scope, doc_id: str, if_match: str | None, if_none_match: str | None) -> None:
    doc = get(scope, doc_id, lock=True)
    check_preconditions(doc, if_match, if_none_match)
    if doc is not None:
        db.session.delete(doc)
        db.session.commit()


def delete_all(scope: Scope, any_registration: bool) -> None:
    q = delete(LrsDocument).where(LrsDocument.scope_hash == scope.scope_hash)
    if not any_registration:
        q = q.where(
            LrsDocument.registration.is_(None)
            if scope.registration is None
            else LrsDocument.registration == scope.registration
        )
    db.session.execute(q)
    db.session.commit()
