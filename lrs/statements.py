"""Storing and querying statements.

Hot path design (see docs/benchmarks.md, "LRS"): a batch is validated in Python,
then written in **one transaction** with three multi-row statements: the
statements (``INSERT ... RETURNING pk``), their lookup keys and new attachment
contents. No per-agent or per-activity rows are upserted, so concurrent batches
sharing agents and activities take no conflicting locks. A batch either commits
whole or not at all; the HTTP answer is sent only after the commit.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid as uuid_mod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import Text, and_, cast, false, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from lms_core import jsonsafe
from lms_core.accounts.models import User
from lms_core.bounded import MAX_INT32, MAX_INT64
from lms_core.db import utcnow
from lms_core.extensions import db
from lrs import keys as K
from lrs import validation
from lrs.comparison import same_statement
from lrs.errors import XapiError, bad_request
from lrs.models import LrsAttachment, LrsStatement, LrsStatementKey

# Core tables of the ORM models (looked up by name: ``__table__`` is typed as a plain FromClause).
S = LrsStatement.metadata.tables[LrsStatement.__tablename__]
KT = LrsStatementKey.metadata.tables[LrsStatementKey.__tablename__]
AT = LrsAttachment.metadata.tables[LrsAttachment.__tablename__]
#: The platform's accounts: a statement about one of them stores its id (``actor_user_id``).
U = User.metadata.tables[User.__tablename__]


def iso(ts: dt.datetime) -> str:
    """xAPI timestamp text: UTC, millisecond precision, ``Z``."""
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Caller:
    """Who is storing or reading: the client row id, its authority Agent, its scopes."""

    client_id: int | None
    authority: dict[str, Any]
    scopes: frozenset[str]

    @property
    def authority_ifi(self) -> str:
        return K.ifi(self.authority) or ""


@dataclass
class Attachment:
    content_type: str
    content: bytes


# Storing --------------------------------------------------------------------------


@dataclass
class _Prepared:
    sid: str
    data: dict[str, Any]
    keys: set[tuple[str, str]]
    received: dict[str, Any] = field(default_factory=dict)
    voided: bool = False
    inherited: set[tuple[str, str]] = field(default_factory=set)


def platform_base() -> str:
    """The platform's base URL: the home page of its learners' accounts in statements."""
    return str(current_app.config.get("LMS_PLATFORM_URL", "")).rstrip("/")


def learner_name(data: dict[str, Any], base: str) -> str | None:
    """The username a statement is about, when its actor is a platform account (home page
    ``base``); None otherwise. The statement's ``actor_user_id`` is that user's id."""
    account = (data.get("actor") or {}).get("account")
    if not isinstance(account, dict) or not base or account.get("homePage") != base:
        return None
    name = account.get("name")
    return name if isinstance(name, str) and name else None


def _ref_target(data: dict[str, Any]) -> str | None:
    obj = data.get("object") or {}
    if obj.get("objectType") == "StatementRef":
        return str(obj["id"]).lower()
    return None


def _is_voiding(data: dict[str, Any]) -> bool:
    return bool(data["verb"]["id"] == validation.VOIDED_VERB)


def prepare(statements: Sequence[Any], caller: Caller, now: dt.datetime, put_id: str | None = None) -> list[_Prepared]:
    """Validate a batch and complete each statement (id, stored, authority, version, timestamp)."""
    stored = iso(now)
    out: list[_Prepared] = []
    seen: set[str] = set()
    for i, s in enumerate(statements):
        path = "statement" if len(statements) == 1 else f"statements[{i}]"
        try:
            validation.statement(s, path)
        except validation.ValidationError as exc:
            raise bad_request(str(exc)) from None
        sid = s.get("id")
        if put_id is not None:
            if sid is not None and sid.lower() != put_id.lower():
                raise bad_request("the statement id does not match the statementId parameter")
            sid = put_id
        sid = (sid or str(uuid_mod.uuid4())).lower()
        if sid in seen:
            raise bad_request(f"statement id {sid} appears twice in the batch")
        seen.add(sid)
        data = _arrays_for_context_activities(dict(s))
        data["id"] = s.get("id", sid)
        data["stored"] = stored
        data["authority"] = caller.authority
        data.setdefault("version", "1.0.0")
        data.setdefault("timestamp", stored)
        out.append(_Prepared(sid, data, K.statement_keys(data), received=s))
    return out


def _arrays_for_context_activities(s: dict[str, Any]) -> dict[str, Any]:
    """Context activities are always stored (and returned) as arrays (Data 2.4.6.2.s4.b3)."""
    ctx = s.get("context")
    if isinstance(ctx, dict) and isinstance(ctx.get("contextActivities"), dict):
        ca = ctx["contextActivities"]
        if any(not isinstance(v, list) for v in ca.values()):
            s["context"] = {**ctx, "contextActivities": {k: v if isinstance(v, list) else [v] for k, v in ca.items()}}
    obj = s.get("object")
    if isinstance(obj, dict) and obj.get("objectType") == "SubStatement":
        s["object"] = _arrays_for_context_activities(dict(obj))
    return s


def _in_chunks(values: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _filter_keys(data: dict[str, Any]) -> set[tuple[str, str]]:
    return {k for k in K.statement_keys(data) if k[0] in K.FILTER_KINDS}


def _inherited_from_db(conn: Connection, target: str, depth: int = 0) -> set[tuple[str, str]]:
    """Filter keys a reference to ``target`` inherits (recursively, StatementRef chains)."""
    if depth > 10:
        return set()
    row = conn.execute(select(S.c.data).where(S.c.statement_id == target)).first()
    if row is None:
        return set()
    data = row[0]
    found = _filter_keys(data)
    nxt = _ref_target(data)
    if nxt:
        found |= _inherited_from_db(conn, nxt, depth + 1)
    return found


def _propagate_to_referrers(conn: Connection, new: dict[str, set[tuple[str, str]]]) -> None:
    """Statements stored earlier that reference a statement stored now inherit its keys."""
    frontier = new
    for _ in range(10):
        if not frontier:
            return
        ref_keys = {K.key("ref", sid): sid for sid in frontier}
        rows = conn.execute(
            select(KT.c.key, S.c.pk, S.c.statement_id)
            .join(S, S.c.pk == KT.c.stmt_pk)
            .where(KT.c.key.in_(list(ref_keys)))
        ).all()
        if not rows:
            return
        key_rows: list[dict[str, Any]] = []
        nxt: dict[str, set[tuple[str, str]]] = {}
        for ref_key, pk, sid in rows:
            inherited = frontier[ref_keys[ref_key]]
            key_rows.extend({"key": K.key(*k), "stmt_pk": pk} for k in inherited)
            nxt.setdefault(sid, set()).update(inherited)
        _insert_ignore(conn, KT, key_rows, ["key", "stmt_pk"])
        frontier = nxt


def _insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]], index: list[str]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).on_conflict_do_nothing(index_elements=index), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(table).on_conflict_do_nothing(index_elements=index), rows)


def _insert_pg(
    conn: Connection, todo: list[_Prepared], caller: Caller, now: dt.datetime
) -> tuple[set[str], dict[str, list[tuple[int, str]]]]:
    """Write a batch in one statement (one round trip); returns inserted ids and earlier referrers.

    ``INSERT ... SELECT FROM unnest(arrays)`` carries the batch in a few binary array
    parameters. In the same statement: the lookup keys are inserted (CTE), a
    statement is marked voided if a voiding statement stored earlier targets it, and
    the statements stored earlier that reference the new ones are returned (the CTE's
    own rows are not visible to that part, so only earlier ones come back).
    ``ON CONFLICT DO NOTHING`` skips ids stored meanwhile; the caller compares them.
    """
    # The lookup keys (about a dozen per statement) travel as two array *literals*
    # ("{1,2,...}") that PostgreSQL parses in C: psycopg's binary array dumper is pure
    # Python and was the largest single cost of a batch. ``kidx`` is the statement's
    # position in the batch (1-based, as WITH ORDINALITY counts).
    key_idx: list[str] = []
    keys_col: list[str] = []
    for n, p in enumerate(todo, start=1):
        for k in p.keys | p.inherited:
            key_idx.append(str(n))
            keys_col.append(str(K.key(*k)))
    ref_keys = {K.key("ref", p.sid): p.sid for p in todo}
    base = platform_base()
    raw = conn.connection.driver_connection
    cur = raw.cursor()  # type: ignore[union-attr]
    # Pipeline mode: the transaction's BEGIN and this statement leave in one network
    # write instead of two round trips.
    with raw.pipeline():  # type: ignore[union-attr]
        cur.execute(
            "WITH src AS (SELECT * FROM unnest(%(ids)b::text[], %(voided)b::bool[], %(att)b::bool[], %(data)b::text[], "
            " %(vks)b::bigint[], %(learners)b::text[]) WITH ORDINALITY AS t(i, v, a, d, vk, un, n)), "
            "ins AS (INSERT INTO lrs_statements "
            " (statement_id, stored, voided, client_id, has_attachments, data, actor_user_id) "
            " SELECT i, %(stored)s, v OR EXISTS (SELECT 1 FROM lrs_statement_keys x WHERE x.key = src.vk), "
            " %(client)s, a, d::jsonb, (SELECT u.id FROM users u WHERE u.username = NULLIF(src.un, '')) "
            " FROM src ORDER BY n "
            " ON CONFLICT (statement_id) DO NOTHING RETURNING pk, statement_id), "
            "k AS (INSERT INTO lrs_statement_keys (key, stmt_pk) "
            " SELECT u.kk, ins.pk FROM unnest(%(kidx)s::int[], %(keys)s::bigint[]) AS u(n, kk) "
            " JOIN src ON src.n = u.n JOIN ins ON ins.statement_id = src.i) "
            "SELECT 0, statement_id, NULL::bigint, NULL::bigint FROM ins "
            "UNION ALL SELECT 1, s.statement_id, x.key, s.pk FROM lrs_statement_keys x "
            " JOIN lrs_statements s ON s.pk = x.stmt_pk WHERE x.key = ANY(%(refkeys)b::bigint[])",
            {
                "stored": now,
                "client": caller.client_id,
                "ids": [p.sid for p in todo],
                "voided": [p.voided for p in todo],
                "att": [bool(p.data.get("attachments")) for p in todo],
                "data": [json.dumps(p.data, ensure_ascii=False, separators=(",", ":")) for p in todo],
                # A voiding statement cannot be voided: NULL matches no key.
                "vks": [None if _is_voiding(p.data) else K.key("vt", p.sid) for p in todo],
                # '' for a statement about no platform learner (a list of only NULLs has no type).
                "learners": [learner_name(p.data, base) or "" for p in todo],
                "kidx": "{" + ",".join(key_idx) + "}",
                "keys": "{" + ",".join(keys_col) + "}",
                "refkeys": list(ref_keys),
            },
        )
        rows = cur.fetchall()
    inserted: set[str] = set()
    referrers: dict[str, list[tuple[int, str]]] = {}
    for kind, sid, key, pk in rows:
        if kind == 0:
            inserted.add(sid)
        else:
            referrers.setdefault(ref_keys[key], []).append((pk, sid))
    return inserted, referrers


def _insert_generic(conn: Connection, todo: list[_Prepared], caller: Caller, now: dt.datetime) -> set[str]:
    base = platform_base()
    names = [learner_name(p.data, base) for p in todo]
    wanted = sorted({n for n in names if n})
    ids: dict[str, int] = {}
    if wanted:
        ids = dict(conn.execute(select(U.c.username, U.c.id).where(U.c.username.in_(wanted))).all())
    rows = [
        {
            "statement_id": p.sid,
            "stored": now,
            "voided": p.voided,
            "client_id": caller.client_id,
            "has_attachments": bool(p.data.get("attachments")),
            "data": p.data,
            "actor_user_id": ids.get(name) if name else None,
        }
        for p, name in zip(todo, names, strict=True)
    ]
    result = conn.execute(insert(S).returning(S.c.pk, S.c.statement_id, sort_by_parameter_order=True), rows)
    pks = {sid: pk for pk, sid in result.all()}
    conn.execute(insert(KT), [{"key": K.key(*k), "stmt_pk": pks[p.sid]} for p in todo for k in p.keys | p.inherited])
    return set(pks)


def _lookup_void_and_referrers(conn: Connection, by_id: dict[str, _Prepared]) -> dict[str, list[tuple[int, str]]]:
    """Voiding statements stored earlier that target ours (so ours are voided on arrival),
    and statements stored earlier that reference ours (they inherit our filter keys)."""
    void_keys = {K.key("vt", sid): sid for sid in by_id}
    ref_keys = {K.key("ref", sid): sid for sid in by_id}
    referrers: dict[str, list[tuple[int, str]]] = {}
    for chunk in _in_chunks([*void_keys, *ref_keys]):
        rows = conn.execute(
            select(KT.c.key, S.c.pk, S.c.statement_id).join(S, S.c.pk == KT.c.stmt_pk).where(KT.c.key.in_(chunk))
        )
        for k, pk, sid in rows:
            if k in void_keys:
                if not _is_voiding(by_id[void_keys[k]].data):
                    by_id[void_keys[k]].voided = True
            else:
                referrers.setdefault(ref_keys[k], []).append((pk, sid))
    return referrers


def _check_existing(conn: Connection, batch: list[_Prepared]) -> set[str]:
    """Ids of ``batch`` already stored; 409 if any of them differs from what was received."""
    existing: dict[str, dict[str, Any]] = {}
    for chunk in _in_chunks([p.sid for p in batch]):
        for sid, data in conn.execute(select(S.c.statement_id, S.c.data).where(S.c.statement_id.in_(chunk))):
            existing[sid] = data
    for p in batch:
        if p.sid in existing and not same_statement(p.received, existing[p.sid]):
            raise XapiError(409, f"statement {p.sid} already exists with different content")
    return set(existing)


def _check_voiding_rights(conn: Connection, targets: list[str], caller: Caller) -> None:
    """Without scope ``all``, a credential voids only statements it stored itself (403).

    Otherwise any ``statements/write`` credential could void the platform's own
    learner records. A target not stored yet cannot be shown to be the caller's, so
    voiding ahead of the target is also reserved to ``all``.
    """
    owners = dict(conn.execute(select(S.c.statement_id, S.c.client_id).where(S.c.statement_id.in_(targets))).all())
    refused = sorted(t for t in targets if t not in owners or owners[t] != caller.client_id or caller.client_id is None)
    if refused:
        raise XapiError(
            403, f"without scope 'all' a credential may void only statements it stored itself: {', '.join(refused[:5])}"
        )


def _write(
    conn: Connection, batch: list[_Prepared], caller: Caller, now: dt.datetime, attachments: dict[str, Attachment]
) -> None:
    pg = conn.dialect.name == "postgresql"
    todo = batch
    if not pg:
        known = _check_existing(conn, batch)
        todo = [p for p in batch if p.sid not in known]
    if not todo:
        return
    by_id = {p.sid: p for p in todo}

    referrers: dict[str, list[tuple[int, str]]] = {}
    if not pg:  # PostgreSQL does this lookup inside the insert statement (_insert_pg)
        referrers = _lookup_void_and_referrers(conn, by_id)

    # Voiding targets: in this batch or already stored; a voiding statement cannot be voided.
    targets = {_ref_target(p.data) for p in todo if _is_voiding(p.data)}
    targets.discard(None)
    stored_targets = []
    for t in targets:
        if t in by_id:
            if not _is_voiding(by_id[t].data):
                by_id[t].voided = True
        elif t is not None:
            stored_targets.append(t)

    if stored_targets and "all" not in caller.scopes:
        _check_voiding_rights(conn, stored_targets, caller)

    # StatementRef filter inheritance (targets in this batch first, then stored ones).
    for p in todo:
        t = _ref_target(p.data)
        chain = 0
        while t and chain < 10:
            if t in by_id:
                p.inherited |= _filter_keys(by_id[t].data)
                t = _ref_target(by_id[t].data)
                chain += 1
            else:
                p.inherited |= _inherited_from_db(conn, t)
                break

    if pg:
        inserted, referrers = _insert_pg(conn, todo, caller, now)
    else:
        inserted = _insert_generic(conn, todo, caller, now)
    if len(inserted) < len(todo):
        # Stored by someone else meanwhile (PostgreSQL path): identical is fine, different is 409.
        _check_existing(conn, [p for p in todo if p.sid not in inserted])
        todo = [p for p in todo if p.sid in inserted]

    if stored_targets:
        voidable = [
            sid
            for sid, data in conn.execute(
                select(S.c.statement_id, S.c.data).where(S.c.statement_id.in_(stored_targets))
            )
            if not _is_voiding(data)
        ]
        if voidable:
            conn.execute(update(S).where(S.c.statement_id.in_(voidable)).values(voided=True))

    # Statements stored earlier that reference the new ones inherit their filter keys.
    key_rows: list[dict[str, Any]] = []
    frontier: dict[str, set[tuple[str, str]]] = {}
    for p in todo:
        inherited = {k for k in p.keys if k[0] in K.FILTER_KINDS} | p.inherited
        for pk, sid in referrers.get(p.sid, []):
            key_rows.extend({"key": K.key(*k), "stmt_pk": pk} for k in inherited)
            frontier.setdefault(sid, set()).update(inherited)
    if key_rows:
        _insert_ignore(conn, KT, key_rows, ["key", "stmt_pk"])
        _propagate_to_referrers(conn, frontier)

    needed = {}
    for p in todo:
        for a in p.data.get("attachments") or []:
            if a["sha2"].lower() in attachments:
                needed[a["sha2"].lower()] = attachments[a["sha2"].lower()]
    if needed:
        have = set(conn.execute(select(AT.c.sha2).where(AT.c.sha2.in_(list(needed)))).scalars())
        _insert_ignore(
            conn,
            AT,
            [
                {
                    "sha2": h,
                    "content_type": a.content_type,
                    "length": len(a.content),
                    "content": a.content,
                    "created_at": now,
                }
                for h, a in needed.items()
                if h not in have
            ],
            ["sha2"],
        )


def store(
    statements: Sequence[Any],
    caller: Caller,
    attachments: dict[str, Attachment] | None = None,
    put_id: str | None = None,
) -> list[str]:
    """Validate and store a batch atomically; returns the ids in order.

    Raises :class:`XapiError` (400 invalid, 409 conflicting duplicate id). A
    statement identical to one already stored is accepted without change.
    """
    if "statements/write" not in caller.scopes and "all" not in caller.scopes:
        raise XapiError(403, "this credential may not write statements")
    if not statements:
        return []
    now = utcnow()
    # Milliseconds, as in the "stored" text: since/until compare against what clients saw.
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    batch = prepare(statements, caller, now, put_id)
    check_attachments(batch, attachments or {})
    for attempt in range(3):
        try:
            conn = db.session.connection()
            _write(conn, batch, caller, now, attachments or {})
            db.session.commit()
            break
        except IntegrityError:
            # A concurrent request stored one of these ids first: compare again.
            db.session.rollback()
            if attempt == 2:
                raise
        except BaseException:
            db.session.rollback()
            raise
    return [p.sid for p in batch]


def check_attachments(batch: list[_Prepared], parts: dict[str, Attachment]) -> None:
    """Every attachment without fileUrl needs a part with its hash; every part needs a use."""
    from lrs import signature

    declared: set[str] = set()
    for p in batch:
        for a in p.data.get("attachments") or []:
            sha2 = a["sha2"].lower()
            declared.add(sha2)
            if "fileUrl" not in a and sha2 not in parts:
                raise bad_request(f"statement {p.sid}: no attachment part with sha2 {a['sha2']}")
            if sha2 in parts and a["usageType"] == validation.SIGNATURE_USAGE:
                if a["contentType"] != "application/octet-stream":
                    raise bad_request("a signature attachment must have contentType application/octet-stream")
                signature.verify(parts[sha2].content, p.data)
    unused = set(parts) - declared
    if unused:
        raise bad_request(f"attachment parts match no attachment: {sorted(unused)}")


# Reading ----------------------------------------------------------------------------


@dataclass
class Query:
    agent: str | None = None  # IFI text
    verb: str | None = None
    activity: str | None = None
    registration: str | None = None
    related_activities: bool = False
    related_agents: bool = False
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 0
    ascending: bool = False
    mine: str | None = None  # authority IFI for statements/read/mine
    format: str = "exact"
    attachments: bool = False

    def to_token(self, cursor: int) -> str:
        raw = {k: v for k, v in self.__dict__.items() if v not in (None, False, 0, "exact")}
        for k in ("since", "until"):
            if k in raw:
                raw[k] = raw[k].isoformat()
        raw["cursor"] = cursor
        return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode().rstrip("=")

    @classmethod
    def from_token(cls, token: str) -> tuple[Query, int]:
        """The query and cursor of a ``more`` token; 400 for anything we did not issue.

        Tokens come back from clients, so every field is checked for the type and
        range :meth:`to_token` writes: a cursor of 10**30 or a ``limit`` of "x" used
        to reach the database (a 500).
        """
        try:
            if len(token) > _MAX_TOKEN:
                raise ValueError("too long")
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if not isinstance(raw, dict):
                raise ValueError("not an object")
            cursor = raw.pop("cursor")
            if not _is_int(cursor) or not 0 <= cursor <= MAX_INT64:
                raise ValueError("cursor out of range")
            for name, value in raw.items():
                kind = _TOKEN_FIELDS[name]  # KeyError: not a field we write
                if kind is int and not (_is_int(value) and 0 <= value <= MAX_INT32):
                    raise ValueError(name)
                if kind is bool and not isinstance(value, bool):
                    raise ValueError(name)
                if kind is str and (not isinstance(value, str) or jsonsafe.find_problem(value)):
                    raise ValueError(name)
            if raw.get("format", "exact") not in ("exact", "ids", "canonical"):
                raise ValueError("format")
            for k in ("since", "until"):
                if k in raw:
                    raw[k] = dt.datetime.fromisoformat(raw[k])
                    if raw[k].tzinfo is None:
                        raise ValueError(k)
            return cls(**raw), cursor
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise bad_request("invalid 'more' token") from exc


#: A token carries a few IRIs; anything longer was not issued by this LRS.
_MAX_TOKEN = 16384
#: The fields :meth:`Query.to_token` writes and their JSON types.
_TOKEN_FIELDS: dict[str, type] = {
    "agent": str,
    "verb": str,
    "activity": str,
    "registration": str,
    "related_activities": bool,
    "related_agents": bool,
    "since": str,
    "until": str,
    "limit": int,
    "ascending": bool,
    "mine": str,
    "format": str,
    "attachments": bool,
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def find(q: Query, max_limit: int, cursor: int | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """Statements matching ``q`` (newest first unless ascending) and the next cursor."""
    return _find(q, max_limit, cursor, S.c.data)


def find_text(q: Query, max_limit: int, cursor: int | None = None) -> tuple[list[str], int | None]:
    """Like :func:`find`, but each statement as its stored JSON text (``exact`` format).

    The response is assembled from these texts without parsing them in Python.
    """
    return _find(q, max_limit, cursor, cast(S.c.data, Text))


def _find(q: Query, max_limit: int, cursor: int | None, column: Any) -> tuple[list[Any], int | None]:
    wanted: list[int] = []
    if q.agent:
        wanted.append(K.key("ra" if q.related_agents else "a", q.agent))
    if q.activity:
        wanted.append(K.key("ro" if q.related_activities else "o", q.activity))
    if q.verb:
        wanted.append(K.key("v", q.verb))
    if q.registration:
        wanted.append(K.key("r", q.registration.lower()))
    if q.mine:
        wanted.append(K.key("au", q.mine))
    limit = min(q.limit or max_limit, max_limit)
    stmt = select(S.c.pk, column)
    order_col = S.c.pk
    source: Any = S
    for i, k in enumerate(wanted):
        alias = KT.alias(f"k{i}")
        source = source.join(alias, and_(alias.c.stmt_pk == S.c.pk, alias.c.key == k))
        if i == 0:
            order_col = alias.c.stmt_pk
    stmt = stmt.select_from(source).where(S.c.voided == false())
    if q.since:
        stmt = stmt.where(S.c.stored > q.since)
    if q.until:
        stmt = stmt.where(S.c.stored <= q.until)
    if cursor is not None:
        stmt = stmt.where(order_col > cursor if q.ascending else order_col < cursor)
    stmt = stmt.order_by(order_col.asc() if q.ascending else order_col.desc()).limit(limit + 1)
    rows = db.session.execute(stmt).all()
    more = rows[limit - 1][0] if len(rows) > limit else None
    return [r[1] for r in rows[:limit]], more


def get_one(statement_id: str, voided: bool) -> dict[str, Any] | None:
    """A single statement by id; ``voided`` selects voidedStatementId semantics."""
    row = db.session.execute(select(S.c.data, S.c.voided).where(S.c.statement_id == statement_id.lower())).first()
    if row is None or bool(row[1]) != voided:
        return None
    data: dict[str, Any] = row[0]
    return data


def attachments_for(statements: Iterable[dict[str, Any]]) -> list[tuple[str, str, bytes]]:
    hashes: list[str] = []
    for s in statements:
        for a in s.get("attachments") or []:
            if a["sha2"].lower() not in hashes:
                hashes.append(a["sha2"].lower())
    if not hashes:
        return []
    rows = db.session.execute(select(AT.c.sha2, AT.c.content_type, AT.c.content).where(AT.c.sha2.in_(hashes)))
    found = {r[0]: (r[0], r[1], bytes(r[2])) for r in rows}
    return [found[h] for h in hashes if h in found]


def _definitions_in(s: dict[str, Any], activity_id: str) -> Iterable[dict[str, Any]]:
    obj = s.get("object") or {}
    if obj.get("objectType", "Activity") == "Activity" and obj.get("id") == activity_id and "definition" in obj:
        yield obj["definition"]
    if obj.get("objectType") == "SubStatement":
        yield from _definitions_in(obj, activity_id)
    for acts in ((s.get("context") or {}).get("contextActivities") or {}).values():
        for a in acts if isinstance(acts, list) else [acts]:
            if a.get("id") == activity_id and "definition" in a:
                yield a["definition"]


def activity_definition(activity_id: str) -> dict[str, Any]:
    """The Activity with its canonical definition, merged from the latest statements.

    Language maps are merged (so two statements describing the activity in two
    languages give both); for every other property the most recent value wins.

    Derived from the stored statements on read, so that storing statements never
    has to update a shared activity row (which is where concurrent batches
    deadlock in the reference LRS).
    """
    found, _ = find(Query(activity=activity_id, related_activities=True), 100)
    merged: dict[str, Any] = {}
    for s in reversed(found):  # oldest first, so that newer definitions win
        for definition in _definitions_in(s, activity_id):
            for key, value in definition.items():
                if key in ("name", "description", "extensions") and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
    out: dict[str, Any] = {"objectType": "Activity", "id": activity_id}
    if merged:
        out["definition"] = merged
    return out
