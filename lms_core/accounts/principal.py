"""The signed-in person on the heartbeat path, without loading the ORM user.

A heartbeat arrives every 10 s from every learner; loading the user with its unit and
roles (the page path's loader) is a wide joined SELECT and an ORM object per beat, for
a request that needs only "who, and is that sign-in still valid". The session cookie
is signed by the app (Flask's session), so its ``<id>:<session_version>`` is already
proven; what is left to check is that the version is still the user's and that the
account is active. That is one narrow Core SELECT, kept per process for
``LMS_AUTH_CACHE_SECONDS``.

Revocation. A password change or reset bumps ``session_version`` (and a disabled
account stops being active): this process forgets the user at once
(:func:`forget`, called where those change); other worker processes see it when their
cached entry expires, so a revoked sign-in may keep sending beats for at most
``LMS_AUTH_CACHE_SECONDS`` (5 s by default). Every page other than the lean endpoints
still loads the user on every request, so nothing else of a revoked sign-in works.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app, has_request_context, request
from sqlalchemy import Integer, bindparam, event, select
from sqlalchemy.orm import Session, object_session

from lms_core.accounts.models import SignedIn, User, UserStatus
from lms_core.expiring import ExpiringMap, per_app
from lms_core.extensions import db

#: Endpoints answered with a :class:`Principal` instead of the ORM user.
LEAN_ENDPOINTS = frozenset({"learning.beat"})


@dataclass(frozen=True)
class Principal(SignedIn):
    """What the lean endpoints need of the signed-in user (Flask-Login's user protocol, from :class:`SignedIn`)."""

    id: int
    org_unit_id: int
    locale: str | None
    session_version: int
    active: bool
    must_change_password: bool

    @property
    def is_active(self) -> bool:
        return self.active

    def __getattr__(self, name: str) -> Any:
        """Anything else (roles for ``can``, the name on an error page) loads the ORM user,
        once per request: a beat that succeeds never asks."""
        if name.startswith("__") or name == "_user":
            raise AttributeError(name)
        user = self.__dict__.get("_user")
        if user is None:
            user = db.session.get(User, self.id)
            if user is None:
                raise AttributeError(name)
            object.__setattr__(self, "_user", user)
        return getattr(user, name)


def _cache() -> ExpiringMap[int, Principal]:
    """user id -> the principal as last read, until a time on :data:`clock`; per app."""
    return per_app("lms_principals")


#: The cache's clock (a module attribute so tests can move it).
clock = time.monotonic


def wants_principal() -> bool:
    """Whether this request's endpoint takes the lean path (the URL is matched before the loader runs)."""
    return has_request_context() and request.endpoint in LEAN_ENDPOINTS


@functools.cache
def _statement() -> Any:
    return select(
        User.id, User.org_unit_id, User.locale, User.session_version, User.status, User.must_change_password
    ).where(User.id == bindparam("user_id", type_=Integer))


def _read(user_id: int) -> Principal | None:
    row = db.session.execute(_statement(), {"user_id": user_id}).first()
    return None if row is None else _principal(row)


def _principal(row: Sequence[Any]) -> Principal:
    """A principal from the columns of :func:`_statement`, in its order (a Row or a plain tuple)."""
    user_id, org_unit_id, locale, session_version, status, must_change_password = row
    return Principal(
        id=user_id,
        org_unit_id=org_unit_id,
        locale=locale,
        session_version=session_version,
        active=status == UserStatus.ACTIVE,  # a StrEnum: equal to its stored value too
        must_change_password=bool(must_change_password),
    )


@functools.cache
def _many_statement() -> Any:
    return select(
        User.id, User.org_unit_id, User.locale, User.session_version, User.status, User.must_change_password
    ).where(User.id.in_(bindparam("user_ids", expanding=True)))


def warm(user_ids: list[int], read: Callable[[list[int]], Iterable[Sequence[Any]]] | None = None) -> None:
    """Read the principals of ``user_ids`` that are not fresh in the cache, in one statement,
    and keep them as :func:`principal_for` would have (a round of a beat group: its beats'
    ``principal_for`` then find them).

    Why: the player beats every 10 s and an entry lives ``LMS_AUTH_CACHE_SECONDS`` (5 s), so
    in production nearly every beat found its entry expired and paid a SELECT of its own
    through SQLAlchemy; a round reads all of its people at once. What is kept is what each
    beat's own read would have read moments later in the same transaction; a user not found
    is not kept, and that beat reads (and refuses) by itself as before.

    ``read``: the users' rows (the columns of :func:`_statement`, in its order) by another
    path than SQLAlchemy's (the beat group's prepared statement on PostgreSQL: through
    SQLAlchemy, an expanding ``IN`` is compiled again on every call, ~1 ms a round)."""
    now = clock()
    cache = _cache()
    missing = [user_id for user_id in user_ids if cache.fresh(user_id, now) is None]
    if not missing:
        return
    until = now + float(current_app._get_current_object().config["LMS_AUTH_CACHE_SECONDS"])  # type: ignore[attr-defined]
    rows = read(missing) if read is not None else db.session.execute(_many_statement(), {"user_ids": missing})
    for row in rows:
        found = _principal(row)
        cache.put(found.id, found, until)


def principal_for(user_id: int, version: int) -> Principal | None:
    """The signed-in principal for a session cookie's id and version, or ``None`` (signed out)."""
    now = clock()
    cache = _cache()
    principal = cache.fresh(user_id, now)
    if principal is None:
        principal = _read(user_id)
        if principal is None:
            cache.drop(user_id)
            return None
        cache.put(user_id, principal, now + float(current_app.config["LMS_AUTH_CACHE_SECONDS"]))
    if principal.session_version != version or not principal.active:
        return None
    # A fresh object per request: what a request memoises on it (``can``'s grants, the
    # loaded user) must not outlive the request.
    return _copy(principal)


def _copy(principal: Principal) -> Principal:
    """A new principal with the same fields, as ``dataclasses.replace`` makes it, for ~1/7 of its CPU.

    Why: ``replace`` builds keyword arguments and runs the frozen ``__init__`` (an
    ``object.__setattr__`` per field): ~8 µs of every beat on this machine against ~1 µs
    here (docs/benchmarks.md, "a worker's CPU outside record_beat"). The cached principal is
    never handed out; only the fields are copied all the same, never what was memoised.
    """
    fresh = object.__new__(Principal)
    held = principal.__dict__
    fresh.__dict__.update({name: held[name] for name in _FIELDS})
    return fresh


#: The principal's fields (what :func:`_copy` copies).
_FIELDS = tuple(field.name for field in dataclasses.fields(Principal))


def forget(user_id: int) -> None:
    """Drop a user's cached entry (their password, version or status just changed in this process)."""
    _cache().drop(user_id)


def forget_all() -> None:
    _cache().clear()


# Whatever changes a user's version or status through the ORM, in this process, drops
# their entry at once and again after the commit (a beat between the two could have
# re-read the old row), so no code path has to remember to call ``forget``.


def _changed(target: User, _value: Any, _old: Any, _initiator: Any) -> None:
    if target.id is not None:
        forget(target.id)
        session = object_session(target)
        if session is not None:
            session.info.setdefault("lms_forget_users", set()).add(target.id)


def _after_commit(session: Any) -> None:
    for user_id in session.info.pop("lms_forget_users", ()):
        forget(user_id)


event.listen(User.session_version, "set", _changed)
event.listen(User.status, "set", _changed)
event.listen(Session, "after_commit", _after_commit)
