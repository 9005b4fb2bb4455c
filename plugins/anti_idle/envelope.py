"""Signed heartbeat envelopes: a per-session key, an HMAC over the exact bytes sent.

Launch. When the lesson page opens a learning session, the player overlay receives
that session's key, ``HMAC-SHA256(SECRET_KEY, "anti-idle-beat:" + session_id)``:
derived, so it needs no storage and no extra SQL on the beat path, and a key is
useless for any other session.

Beat. The player serialises the beat, signs the exact JSON text with the key and
sends it with the signature appended as the last member: ``…,"sig":"<64 hex>"}``.
The server cuts that member off the raw request body and recomputes the HMAC over
the bytes before it, so no canonical form has to agree between JavaScript and
Python.

Verdict. ``receive`` (the ``lms_beat_received`` hook, called by the core's beat view and
its lean front with the exact body, before the beat is parsed) leaves ``valid``,
``unsigned`` or ``bad`` in ``g``; the credit path copies it into the beat's
stored ``client`` (overwriting whatever the client put there), so the replay sees the
same, and ``els.assess`` credits nothing for an unsigned or badly signed beat (R03).

What an envelope proves, and what it does not. It proves the beat was produced by
something that held this session's key, i.e. that loaded this session's lesson page,
and that the body was not altered on the way. It stops beats forged with plain HTTP
from a script that never opened the page, and beats of one session replayed into
another. It does **not** prove a person or a real player: the key is in the page, so a
script driving a browser (or scraping the page) can read it and sign anything. Against
those, the server's own evidence decides: receive times, bytes served, the one-stream
union, attention checks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app, g
from flask.globals import _cv_app

from lms_core.expiring import Bounded

#: The signature, appended by the player as the body's last member.
SIG_TAIL = re.compile(rb',"sig":"([0-9a-f]{64})"\}\s*\Z')
VALID, UNSIGNED, BAD = "valid", "unsigned", "bad"


#: Session keys kept per app (``app.extensions``), as bytes ready for the beat's HMAC: a
#: player's session beats every 10 s, and deriving its key is an HMAC of its own. Keyed by
#: the secret too (a key is a function of the secret and the session id, nothing else); full,
#: the oldest key goes (``expiring.Bounded``: a new session's key, not every player's at once).
_KEYS_MAX = 50_000


def session_key(session_id: str) -> str:
    """The session's beat key (hex), derived from the app's secret."""
    return _key_bytes(session_id).decode()


def _key_bytes(session_id: str) -> bytes:
    """:func:`session_key` as ASCII bytes (what the beat's HMAC is keyed with), kept per app."""
    return _keyed(session_id)[0]


def _keyed(session_id: str) -> tuple[bytes, Any, Any]:
    """The session's key bytes and its HMAC's two keyed SHA-256 states (RFC 2104's inner and
    outer pads, hashed once), kept per app.

    Why the states: ``hmac.digest`` sets the key up again on every call, and with OpenSSL 3
    that (fetching the digest, hashing two pad blocks) is most of a beat's HMAC: 2.35 µs of
    CPU a beat against 0.98 µs for copying the two states and hashing the body (``verify``)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # one proxy look-up, not three
    secret = app.config["SECRET_KEY"]
    keys: Bounded[tuple[Any, str], tuple[bytes, Any, Any]] | None = app.extensions.get("anti_idle_beat_keys")
    if keys is None:
        keys = app.extensions.setdefault("anti_idle_beat_keys", Bounded(_KEYS_MAX))
    keyed = keys.map.get((secret, session_id))
    if keyed is None:
        secret_bytes = secret.encode() if isinstance(secret, str) else bytes(secret)
        digest = hmac.digest(secret_bytes, b"anti-idle-beat:" + session_id.encode(), "sha256")
        key = digest.hex().encode()
        keyed = (key, *_pads(key))
        keys.keep((secret, session_id), keyed)
    return keyed


def _pads(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256's inner and outer states for ``key`` (RFC 2104), each a SHA-256 object to copy."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


def _hmac_hex(keyed: tuple[bytes, Any, Any], message: bytes) -> bytes:
    """``hmac.new(key, message, "sha256").hexdigest()`` as ASCII bytes, from the kept states."""
    inner = keyed[1].copy()
    inner.update(message)
    outer = keyed[2].copy()
    outer.update(inner.digest())
    return outer.hexdigest().encode()


#: SHA-256's block size, and RFC 2104's pads as byte translations (each byte XOR 0x36 / 0x5c).
_BLOCK = 64
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def sign(session_id: str, body: bytes) -> bytes:
    """What the player sends for ``body`` (a JSON object's text): used by tests and tools."""
    return sign_with_key(session_key(session_id), body)


def sign_with_key(key: str, body: bytes) -> bytes:
    """``body`` signed with a session key as the page hands it to the player (``data-beat-key``).

    For clients outside the app (the benchmark's load generator), which read the key
    from the lesson page exactly as the player does.
    """
    body = body.rstrip()
    mac = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    return body[:-1] + b',"sig":"' + mac.encode() + b'"}'


def sig_tail(raw: bytes) -> re.Match[bytes] | None:
    """``SIG_TAIL.search(raw)``: the pattern can only match at the last ``,"sig":"`` (what
    follows a match holds no other), so it is matched there rather than searched for through
    the body (~3,500 instructions for a heartbeat's)."""
    at = raw.rfind(b',"sig":"')
    return SIG_TAIL.match(raw, at) if at >= 0 else None


def verify(session_id: str, raw: bytes) -> str:
    """``valid``, ``unsigned`` (no signature) or ``bad`` (a signature that does not match)."""
    m = sig_tail(raw)
    if m is None:
        return BAD if b'"sig"' in raw else UNSIGNED
    signed = raw[: m.start()] + b"}"
    # The same digest as ``hmac.new(...).hexdigest()``, from the session's kept states.
    expected = _hmac_hex(_keyed(session_id), signed)
    return VALID if hmac.compare_digest(expected, m.group(1)) else BAD


def receive(session_id: str, body: bytes) -> None:
    """A heartbeat's exact body, before the core reads it: judge its envelope (no SQL).

    Kept in ``g``, not read from ``request``: the core's lean heartbeat front calls this
    with an application context and no request context."""
    g._get_current_object().anti_idle_envelope = verify(session_id, body)  # not the proxy's setattr


def stamp(client: dict[str, Any]) -> dict[str, Any]:
    """The client signals with the server's envelope verdict (never the client's own).

    The verdict is used once: a beat handled without one (a script calling the
    service directly, outside the beat view) is unsigned.
    """
    # ``has_app_context()`` and ``g`` in one context-variable read (``g`` is the app
    # context's: two proxy look-ups a beat otherwise).
    ctx = _cv_app.get(None)
    verdict = ctx.g.pop("anti_idle_envelope", UNSIGNED) if ctx is not None else UNSIGNED
    return {**client, "envelope": str(verdict)}


@contextmanager
def signed(session_id: str, body: dict[str, Any]) -> Iterator[str]:
    """Judge ``body`` as if the player had signed and sent it, for a direct service call
    (the demo data and the scripted scenarios use the real verification this way)."""
    g.anti_idle_envelope = verify(session_id, sign(session_id, json.dumps(body).encode()))
    try:
        yield g.anti_idle_envelope
    finally:
        g.pop("anti_idle_envelope", None)
