"""The signed status list: what an offline verifier can learn about revocation and re-issue.

A transcript cannot say it was revoked later, so the issuer publishes a second signed
document, the status list (like a certificate revocation list), at
``/credit/verify/status.json`` and by ``flask lms credit status-list -o FILE``::

    {"format": "lms-credit-status/1",
     "payload": {"type": "lms-credit-status/1", "kid": "...", "time": "2026-12-05T05:00:00Z",
                 "credential_log_size": n,
                 "entries": [{"id": "...", "state": "revoked" | "superseded", "since": "...Z",
                              "reason": "..." | null, "replaced_by": "..." | null}, ...]},
     "sig": "<b64u Ed25519 over JCS(payload), domain lms.credit.status.v1>"}

``credential_log_size`` is how many credentials were logged when the list was made: a
transcript whose credential-log index is below it is *covered*, so its absence from
``entries`` means "neither revoked nor re-issued as of ``time``". A transcript issued after
the list was made is not covered ("unknown": fetch a newer list). Like any revocation list,
an old list cannot show a later revocation: the verifier prints the list's time.

Checked here with the issuer's public key only: no server, no database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from plugins.credit_bank.proofs import keys
from plugins.credit_bank.proofs.canonical import CanonicalError, canonical, parse

FORMAT = "lms-credit-status/1"
#: Signature domain (``keys.domain_message``): a status list can never pass as a credential.
SIGN_KIND = "status"
STATES = ("revoked", "superseded")
_ENTRY_KEYS = {"id", "state", "since", "reason", "replaced_by"}


def build(
    key: Ed25519PrivateKey, entries: Iterable[Mapping[str, Any]], credential_log_size: int, time: dt.datetime
) -> dict[str, Any]:
    """Sign a status list (entries sorted by credential id, so equal facts give equal bytes)."""
    payload = {
        "type": FORMAT,
        "kid": keys.key_id(key.public_key()),
        "time": time.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "credential_log_size": credential_log_size,
        "entries": sorted((dict(e) for e in entries), key=lambda e: str(e["id"])),
    }
    sig = keys.sign(key, SIGN_KIND, canonical(payload))
    return {"format": FORMAT, "payload": payload, "sig": keys.b64u(sig)}


class StatusListError(ValueError):
    """The file is not a status list signed by this issuer; the message says why."""


@dataclasses.dataclass(frozen=True)
class Standing:
    """What the list says about one credential."""

    state: str  #: "valid", "revoked", "superseded", or "unknown" (issued after the list)
    time: str  #: when the list was signed (UTC, ISO 8601)
    entry: dict[str, Any] | None = None


def load(data: bytes, pub: Ed25519PublicKey) -> dict[str, Any]:
    """Parse and check a status list; returns its payload. Raises :class:`StatusListError`."""
    try:
        doc = parse(data)
    except CanonicalError as exc:
        raise StatusListError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or set(doc) != {"format", "payload", "sig"} or doc["format"] != FORMAT:
        raise StatusListError("not a credit status list")
    payload = doc["payload"]
    if not isinstance(payload, dict) or payload.get("type") != FORMAT:
        raise StatusListError("not a credit status list")
    try:
        sig = keys.unb64u(doc["sig"])
        body = canonical(payload)
    except (ValueError, CanonicalError) as exc:
        raise StatusListError("malformed signature or payload") from exc
    if not keys.verify(pub, SIGN_KIND, body, sig):
        raise StatusListError("status list signature does not verify with this issuer key")
    if payload.get("kid") != keys.key_id(pub):
        raise StatusListError("status list names another issuer key")
    size, entries = payload.get("credential_log_size"), payload.get("entries")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(entries, list):
        raise StatusListError("malformed status list")
    for e in entries:
        if not isinstance(e, dict) or set(e) != _ENTRY_KEYS or e["state"] not in STATES:
            raise StatusListError("malformed status list entry")
    return payload


def standing(payload: Mapping[str, Any], credential_id: str, log_index: int) -> Standing:
    """The credential's standing in a checked list (see :func:`load`)."""
    entry = next((e for e in payload["entries"] if e["id"] == credential_id), None)
    if entry is not None:
        return Standing(str(entry["state"]), str(payload["time"]), dict(entry))
    if log_index >= int(payload["credential_log_size"]):
        return Standing("unknown", str(payload["time"]))
    return Standing("valid", str(payload["time"]))
