"""A lean Bearer-token sign-in for GET API reads: one narrow statement, cached per worker.

The ordinary loader (``request_auth.load_token_user`` -> ``services.token_for``) loads the
token, its user and the user's roles as ORM objects on every request, and may UPDATE
``last_used_at``: most of the CPU of a JSON read that itself costs one SQL statement (the
credit bank's ``/api/v1/me/credits``). A view marked with :func:`lean_token_read` gets
instead, for GET and HEAD only, a :class:`TokenPrincipal`: the token and the few user
columns such a read needs, read with one Core SELECT and kept per process and per app for
``LMS_AUTH_CACHE_SECONDS``. Anything more (roles for ``can``) loads the ORM user once per
request through :class:`~lms_core.accounts.principal.Principal`, so authorization is the
same check as on the ordinary path.

Revocation, expiry, disable. Expiry is checked on every request against the cached
``expires_at``. A revocation or a status change made through the ORM in this process drops
the entries at once and again after the commit (listeners below); other worker processes
see it when their entry expires, so a revoked token or a disabled user may keep *reading*
through a lean view for at most ``LMS_AUTH_CACHE_SECONDS`` (5 s by default), the same bound
as the heartbeat's session sign-in. Writes never take this path.

``last_used_at`` is written at most once per :data:`~lms_core.accounts.lean_tokens.TOUCH_EVERY_S`
per token and process (and only where the stored value is older), not per request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import current_app, has_app_context, has_request_context, request
from sqlalchemy import String, Table, bindparam, event, or_, select, update
from sqlalchemy.orm import Session, object_session

from lms_core.accounts import principal as session_principal
from lms_core.accounts.lean_tokens import TOUCH_EVERY_S
from lms_core.accounts.models import ApiToken, RankBand, TokenScope, User, UserStatus
from lms_core.db import utcnow
from lms_core.expiring import ExpiringMap, per_app
from lms_core.extensions import db

F = TypeVar("F", bound=Callable[..., Any])

_TOKENS = cast(Table, ApiToken.__table__)
_USERS = cast(Table, User.__table__)
_LEAN_METHODS = frozenset({"GET", "HEAD"})


def lean_token_read(view: F) -> F:
    """Mark a read-only view: a Bearer token signs in through :func:`token_principal_for`."""
    view.lms_lean_token = True  # type: ignore[attr-defined]
    return view


def wants_token_principal() -> bool:
    """Whether this request is a GET/HEAD to a view marked with :func:`lean_token_read`
    (Flask matched the URL before Flask-Login's loader runs)."""
    if not has_request_context() or request.method not in _LEAN_METHODS or request.endpoint is None:
        return False
    view = current_app.view_functions.get(request.endpoint)
    return bool(getattr(view, "lms_lean_token", False))


@dataclass(frozen=True)
class LeanToken:
    """What ``request_auth.authenticated_token`` callers read of the token (no ORM row)."""

    id: int
    user_id: int
    token_hash: str
    scope: TokenScope


@dataclass(frozen=True)
class TokenPrincipal(session_principal.Principal):
    """The token's user, with the columns the credits JSON names or reckons with (the name,
    and the rank band, party membership and position that decide the requirements)."""

    username: str = ""
    full_name: str = ""
    rank_band: RankBand = RankBand.GENERAL
    party_member: bool = False
    position: str | None = None


@dataclass(frozen=True)
class _Entry:
    token_expires_at: dt.datetime | None
    principal: TokenPrincipal
    token: LeanToken


_lock = threading.Lock()


def _cache() -> ExpiringMap[str, _Entry]:
    """token SHA-256 -> entry, until a time on :data:`principal.clock`; per app. A bound, not a
    policy: a deployment has a few machine clients."""
    return per_app("lms_token_principals", most=10_000)


def _touched() -> dict[str, float]:
    if not has_app_context():
        return {}
    touched: dict[str, float] = current_app.extensions.setdefault("lms_token_touched", {})
    return touched


@functools.cache
def _statement() -> Any:
    t, u = _TOKENS, _USERS
    return (
        select(
            t.c.id,
            t.c.user_id,
            t.c.scope,
            t.c.revoked_at,
            t.c.expires_at,
            t.c.last_used_at,
            u.c.org_unit_id,
            u.c.locale,
            u.c.session_version,
            u.c.status,
            u.c.must_change_password,
            u.c.username,
            u.c.full_name,
            u.c.rank_band,
            u.c.party_member,
            u.c.position,
        )
        .join(u, u.c.id == t.c.user_id)
        .where(t.c.token_hash == bindparam("digest", type_=String))
    )


def _read(digest: str, now: dt.datetime) -> _Entry | None:
    row = db.session.execute(_statement(), {"digest": digest}).first()
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.status != UserStatus.ACTIVE:
        return None
    principal = TokenPrincipal(
        id=row.user_id,
        org_unit_id=row.org_unit_id,
        locale=row.locale,
        session_version=row.session_version,
        active=True,
        must_change_password=bool(row.must_change_password),
        username=row.username,
        full_name=row.full_name,
        rank_band=row.rank_band,
        party_member=bool(row.party_member),
        position=row.position,
    )
    token = LeanToken(id=row.id, user_id=row.user_id, token_hash=digest, scope=TokenScope(row.scope))
    entry = _Entry(row.expires_at, principal, token)
    if row.last_used_at is None or now - row.last_used_at > dt.timedelta(seconds=TOUCH_EVERY_S):
        _touch(digest, now)
    else:
        with _lock:
            _touched().setdefault(digest, session_principal.clock())
    return entry


def _touch(digest: str, now: dt.datetime) -> None:
    """Write ``last_used_at`` once per interval per process; committed at once, as ``token_for``
    does: it is bookkeeping outside any business change, and a GET may not commit at all."""
    clock_now = session_principal.clock()
    with _lock:
        touched = _touched()
        if clock_now - touched.get(digest, -TOUCH_EVERY_S) < TOUCH_EVERY_S:
            return
        touched[digest] = clock_now
    t = _TOKENS
    db.session.execute(
        update(t)
        .where(
            t.c.token_hash == digest,
            or_(t.c.last_used_at.is_(None), t.c.last_used_at < now - dt.timedelta(seconds=TOUCH_EVERY_S)),
        )
        .values(last_used_at=now)
    )
    db.session.commit()


def token_principal_for(digest: str) -> tuple[TokenPrincipal, LeanToken] | None:
    """The signed-in principal and token for a Bearer token's SHA-256, or ``None`` (refused)."""
    now = utcnow()
    cache = _cache()
    clock_now = session_principal.clock()
    entry = cache.fresh(digest, clock_now)
    if entry is None:
        entry = _read(digest, now)
        if entry is None:
            cache.drop(digest)
            return None
        cache.put(digest, entry, clock_now + float(current_app.config["LMS_AUTH_CACHE_SECONDS"]))
    elif entry.token_expires_at is not None and entry.token_expires_at <= now:
        forget(digest)
        return None
    elif clock_due(digest):
        _touch(digest, now)
    # A fresh principal per request: what a request memoises on it (the loaded user) must not outlive it.
    return dataclasses.replace(entry.principal), entry.token


def clock_due(digest: str) -> bool:
    """Whether this process has not written the token's ``last_used_at`` for an interval."""
    last = _touched().get(digest)
    return last is None or session_principal.clock() - last >= TOUCH_EVERY_S


def forget(digest: str | None = None) -> None:
    """Drop one token's entry (or all)."""
    if digest is None:
        _cache().clear()
    else:
        _cache().drop(digest)


def forget_user(user_id: int) -> None:
    """Drop every entry of a user (their status or sign-in version just changed)."""
    _cache().drop_where(lambda e: e.principal.id == user_id)


# Whatever revokes or re-dates a token, or changes a user's status or version, through the
# ORM in this process drops the entries at once and again after the commit (a request in
# between could have re-read the old row), so no code path has to remember to.


def _token_changed(target: ApiToken, _value: Any, _old: Any, _initiator: Any) -> None:
    if target.token_hash:
        forget(target.token_hash)
        session = object_session(target)
        if session is not None:
            session.info.setdefault("lms_forget_tokens", set()).add(target.token_hash)


def _user_changed(target: User, _value: Any, _old: Any, _initiator: Any) -> None:
    if target.id is not None:
        forget_user(target.id)
        session = object_session(target)
        if session is not None:
            session.info.setdefault("lms_forget_token_users", set()).add(target.id)


def _after_commit(session: Any) -> None:
    for digest in session.info.pop("lms_forget_tokens", ()):
        forget(digest)
    for user_id in session.info.pop("lms_forget_token_users", ()):
        forget_user(user_id)


event.listen(ApiToken.revoked_at, "set", _token_changed)
event.listen(ApiToken.expires_at, "set", _token_changed)
event.listen(ApiToken.scope, "set", _token_changed)
for _column in (
    User.status,
    User.session_version,
    User.username,
    User.full_name,
    User.rank_band,
    User.party_member,
    User.position,
    User.locale,
    User.org_unit_id,
):
    event.listen(_column, "set", _user_changed)
event.listen(Session, "after_commit", _after_commit)
