"""A lean Bearer-token check for hot machine endpoints: no session, no Flask-Login, no ORM.

The ordinary path (``request_auth.load_token_user``) loads the token, its user and the
user's roles as ORM objects on every request: about half of a request's CPU on an endpoint
that itself costs little (the credit bank's single-transfer API). A hot endpoint may
instead keep, per process, what it decided about a token the first time it saw it through
the ordinary path (a :class:`TokenGrant`, keyed by the token's SHA-256, never by a row id
that a deleted token could hand on), and check only that the token is still **live** (not
revoked, not expired, its user active) with :func:`live_digests`: one Core statement for a
whole group of requests, which the endpoint runs inside the transaction that does the work,
so a revocation committed before that transaction is honoured at once.

What the grant caches (the endpoint's own permission verdict, e.g. a scope and a role) is
trusted for the endpoint's stated time; :meth:`TokenCache.forget` drops it at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, or_, select, update
from sqlalchemy.orm import Session, scoped_session

from lms_core.accounts.models import ApiToken, User, UserStatus
from lms_core.expiring import ExpiringMap

#: Token strings start with this (``services.TOKEN_PREFIX``; repeated to keep this module light).
TOKEN_PREFIX = "lms_"  # noqa: S105 - a public marker of token strings, not a secret
#: How often a process writes ``last_used_at`` of a token it serves (as ``services.token_for``).
TOUCH_EVERY_S = 60.0
_MAX_ENTRIES = 10_000  #: a bound, not a policy: a deployment has a few machine clients

#: A session, or Flask-SQLAlchemy's ``db.session`` (scoped).
AnySession = Session | scoped_session[Any]

_TOKENS = cast(Table, ApiToken.__table__)
_USERS = cast(Table, User.__table__)


def bearer_digest(header: str | None) -> str | None:
    """The SHA-256 (hex) of the token in ``Authorization: Bearer lms_...``, or ``None``."""
    if not header or not header.startswith("Bearer "):
        return None
    plain = header[7:].strip()
    if not plain.startswith(TOKEN_PREFIX) or len(plain) > 200:
        return None
    return hashlib.sha256(plain.encode()).hexdigest()


@dataclass(frozen=True)
class TokenGrant:
    """What an endpoint decided about one token (through the ordinary, full check)."""

    digest: str
    user_id: int
    #: The user's saved language (the lean path answers in it, as ``select_locale`` would).
    locale: str | None
    #: When the full check allowed it (on the cache's clock, ``time.monotonic``).
    checked_at: float


class TokenCache:
    """Per process and per application: token digest -> :class:`TokenGrant`, thread-safe.

    Two :class:`~lms_core.expiring.ExpiringMap` s, each bounded by :data:`_MAX_ENTRIES`
    (full, the oldest entry goes: that token is checked, or touched, once more).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        #: Each grant is kept "until" the time it was checked, and read at ``now - ttl``: the
        #: time a grant is trusted is the reader's (the setting may change while it is kept).
        self._grants: ExpiringMap[str, TokenGrant] = ExpiringMap(most=_MAX_ENTRIES)
        #: Tokens whose ``last_used_at`` this process wrote, until a minute after.
        self._touched: ExpiringMap[str, bool] = ExpiringMap(most=_MAX_ENTRIES)
        self._clock = clock

    def get(self, digest: str, ttl: float) -> TokenGrant | None:
        """The grant if it was checked less than ``ttl`` seconds ago."""
        return self._grants.fresh(digest, self._clock() - ttl)

    def remember(self, digest: str, user_id: int, locale: str | None) -> None:
        now = self._clock()
        self._grants.put(digest, TokenGrant(digest, user_id, locale, now), until=now)

    def forget(self, digest: str | None = None) -> None:
        """Drop one token's grant (or all): its next request takes the full check again."""
        if digest is None:
            self._grants.clear()
            self._touched.clear()
        else:
            self._grants.drop(digest)
            self._touched.drop(digest)

    def due_touch(self, digests: Collection[str]) -> list[str]:
        """The tokens whose ``last_used_at`` this process has not written for a minute (and
        marks them written: the caller writes them now)."""
        now = self._clock()
        return [d for d in digests if self._touched.claim(d, True, now, now + TOUCH_EVERY_S)]


_LIVE_PG = (
    "SELECT t.token_hash FROM api_tokens AS t JOIN users AS u ON u.id = t.user_id "
    "WHERE t.token_hash = ANY(%(h)s) AND t.revoked_at IS NULL "
    "AND (t.expires_at IS NULL OR t.expires_at > %(now)s) AND u.status = %(active)s"
)


def live_digests(session: AnySession, digests: Collection[str], now: dt.datetime) -> set[str]:
    """Which of these tokens are live now: not revoked, not expired, their user active.

    One statement for any number of tokens, in ``session``'s transaction (run it in the
    transaction whose work the tokens authorise).
    """
    if not digests:
        return set()
    bind = session.connection()
    if bind.dialect.name == "postgresql" and bind.dialect.driver == "psycopg":
        # Prepared, on the same connection and transaction: this runs once per group of
        # requests, and SQLAlchemy building it cost more than PostgreSQL running it.
        raw = bind.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            cur.execute(_LIVE_PG, {"h": list(digests), "now": now, "active": UserStatus.ACTIVE.value}, prepare=True)
            return {r[0] for r in cur.fetchall()}
    t, u = _TOKENS, _USERS
    rows = session.execute(
        select(t.c.token_hash)
        .join(u, u.c.id == t.c.user_id)
        .where(
            t.c.token_hash.in_(list(digests)),
            t.c.revoked_at.is_(None),
            or_(t.c.expires_at.is_(None), t.c.expires_at > now),
            u.c.status == UserStatus.ACTIVE.value,
        )
    )
    return {r[0] for r in rows}


def touch(session: AnySession, digests: Collection[str], now: dt.datetime) -> None:
    """Write ``last_used_at`` of these tokens where it is older than a minute (as ``token_for``)."""
    if digests:
        t = _TOKENS
        session.execute(
            update(t)
            .where(
                t.c.token_hash.in_(list(digests)),
                or_(t.c.last_used_at.is_(None), t.c.last_used_at < now - dt.timedelta(seconds=TOUCH_EVERY_S)),
            )
            .values(last_used_at=now)
        )
