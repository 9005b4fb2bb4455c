"""LRS client credentials: HTTP Basic key/secret scoped by the xAPI permission model.

Scopes (xAPI-Communication 4.2): ``statements/write``, ``statements/read``,
``statements/read/mine``, ``state``, ``define``, ``profile``, ``all/read``, ``all``.
Each client is its own authority: statements it stores carry
``{"objectType": "Agent", "name": <client name>, "account": {"homePage":
<LRS_AUTHORITY_HOMEPAGE>, "name": <key>}}``.

Verified credentials are cached per process for ``LRS_AUTH_CACHE_SECONDS`` so a
batch does not pay a database round trip for authentication; a deactivated client
is refused by every worker at most that many seconds later.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from typing import Any

from flask import current_app
from sqlalchemy import select

from lms_core.extensions import db
from lrs.models import LrsClient
from lrs.statements import Caller

SCOPES = ("all", "all/read", "statements/write", "statements/read", "statements/read/mine", "state", "define",
          "profile")

_cache: dict[str, tuple[str, Caller, float]] = {}
_cache_lock = threading.Lock()


class ClientError(ValueError):
    """Invalid input when managing clients."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    chosen: list[str] = []
    for raw in scopes:
        for part in raw.replace(",", " ").split():
            if part not in SCOPES:
                raise ClientError(f"unknown scope {part!r} (known: {', '.join(SCOPES)})")
            if part not in chosen:
                chosen.append(part)
    if not chosen:
        raise ClientError("at least one scope is required")
    return chosen


def create_client(name: str, scopes: list[str] | tuple[str, ...], created_by: str = "cli") -> tuple[LrsClient, str]:
    """Create a client; returns it and its secret (shown once, only the digest is kept)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ClientError("a name of 1 to 200 characters is required")
    secret = secrets.token_urlsafe(32)
    client = LrsClient(name=name, key=secrets.token_hex(16), secret_sha256=_digest(secret),
                       scopes=normalise_scopes(scopes), active=True, created_by=created_by)
    db.session.add(client)
    db.session.commit()
    return client, secret


def set_active(client: LrsClient, active: bool) -> None:
    client.active = active
    db.session.commit()
    with _cache_lock:
        _cache.pop(client.key, None)


def rotate_secret(client: LrsClient) -> str:
    secret = secrets.token_urlsafe(32)
    client.secret_sha256 = _digest(secret)
    db.session.commit()
    with _cache_lock:
        _cache.pop(client.key, None)
    return secret


def authority_for(client: LrsClient) -> dict[str, Any]:
    return {"objectType": "Agent", "name": client.name,
            "account": {"homePage": current_app.config.get("LRS_AUTHORITY_HOMEPAGE", "https://lrs.invalid/clients"),
                        "name": client.key}}


def authenticate(key: str, secret: str) -> Caller | None:
    """The caller for a key/secret pair, or None when refused."""
    digest = _digest(secret)
    ttl = float(current_app.config.get("LRS_AUTH_CACHE_SECONDS", 30))
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit and hit[2] > now:
        return hit[1] if hmac.compare_digest(hit[0], digest) else None
    client = db.session.execute(select(LrsClient).where(LrsClient.key == key)).scalar()
    if client is None or not client.active or not hmac.compare_digest(client.secret_sha256, digest):
        return None
    caller = Caller(client.id, authority_for(client), frozenset(client.scopes))
    with _cache_lock:
        _cache[key] = (client.secret_sha256, caller, now + ttl)
    return caller


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
