"""LRS client credentials: HTTP Basic key/secret scoped by the xAPI permission model.

Scopes (xAPI-Communication 4.2): ``statements/write``, ``statements/read``,
``statements/read/mine``, ``state``, ``define``, ``profile``, ``all/read``, ``all``.
Each client is its own authority: statements it stores carry
``{"objectType": "Agent", "name": <client name>, "account": {"homePage":
<LRS_AUTHORITY_HOMEPAGE>, "name": <key>}}``.

Every request reads its client's row (one indexed lookup), so a rotated secret
or a disabled client takes effect at once in every worker and on every node;
there is no per-process cache to go stale (it used to accept the old secret and
refuse the new one for up to 30 s after a rotation in another worker).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from lms_core.extensions import db
from lrs.models import LrsClient
from lrs.statements import Caller

SCOPES = (
    "all",
    "all/read",
    "statements/write",
    "statements/read",
    "statements/read/mine",
    "state",
    "define",
    "profile",
)

#: What each scope lets a client do, as the site admin reads it (the codes are the spec's).
SCOPE_LABELS = {
    "all": _l("Everything: read and write all data"),
    "all/read": _l("Read all data"),
    "statements/write": _l("Write learning records (statements) only"),
    "statements/read": _l("Read all learning records"),
    "statements/read/mine": _l("Read only the learning records it wrote"),
    "state": _l("Read and write activity state (resume data)"),
    "define": _l("Define activities (update their names and descriptions)"),
    "profile": _l("Read and write agent and activity profiles"),
}


def scope_label(scope: str) -> str:
    label = SCOPE_LABELS.get(scope)
    return str(label) if label is not None else scope


class ClientError(ValueError):
    """Invalid input when managing clients."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    chosen: list[str] = []
    for raw in scopes:
        for part in raw.replace(",", " ").split():
            if part not in SCOPES:
                raise ClientError(_("unknown scope %(part)s (known: %(join)s)", part=part, join=", ".join(SCOPES)))
            if part not in chosen:
                chosen.append(part)
    if not chosen:
        raise ClientError(_("at least one scope is required"))
    return chosen


def create_client(name: str, scopes: list[str] | tuple[str, ...], created_by: str = "cli") -> tuple[LrsClient, str]:
    """Create a client; returns it and its secret (shown once, only the digest is kept)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ClientError(_("a name of 1 to 200 characters is required"))
    secret = secrets.token_urlsafe(32)
    client = LrsClient(
        name=name,
        key=secrets.token_hex(16),
        secret_sha256=_digest(secret),
        scopes=normalise_scopes(scopes),
        active=True,
        created_by=created_by,
    )
    db.session.add(client)
    db.session.commit()
    return client, secret


def set_active(client: LrsClient, active: bool) -> None:
    client.active = active
    db.session.commit()


def rotate_secret(client: LrsClient) -> str:
    secret = secrets.token_urlsafe(32)
    client.secret_sha256 = _digest(secret)
    db.session.commit()
    return secret


def authority_for(client: LrsClient) -> dict[str, Any]:
    return {
        "objectType": "Agent",
        "name": client.name,
        "account": {"homePage": _authority_homepage(), "name": client.key},
    }


def authenticate(key: str, secret: str) -> Caller | None:
    """The caller for a key/secret pair, or None when refused (read from the database every time)."""
    digest = _digest(secret)
    row = db.session.execute(
        select(LrsClient.id, LrsClient.name, LrsClient.secret_sha256, LrsClient.active, LrsClient.scopes).where(
            LrsClient.key == key
        )
    ).first()
    if row is None or not row.active or not hmac.compare_digest(row.secret_sha256, digest):
        return None
    authority = {"objectType": "Agent", "name": row.name, "account": {"homePage": _authority_homepage(), "name": key}}
    return Caller(row.id, authority, frozenset(row.scopes))


def _authority_homepage() -> str:
    return str(current_app.config.get("LRS_AUTHORITY_HOMEPAGE", "https://lrs.invalid/clients"))
