"""Ed25519 issuer keys: generation, the printable public key, signing and checking.

One issuer key signs transcripts, log checkpoints and the transcript file itself. Every
signed message starts with a domain tag (``lms.credit.<kind>.v1`` and a NUL byte) so that a
signature made for one kind of object can never be replayed as another.

The public key's printable form is ``ed25519:`` followed by the 32-byte key in unpadded
base64url; its key id is the first 16 hex digits of SHA-256 of the raw key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PUBLIC_PREFIX = "ed25519:"
_PUBLIC_RE = re.compile(r"ed25519:([A-Za-z0-9_-]{43})")


class KeyFormatError(ValueError):
    """The key text is not an Ed25519 key we understand."""


def b64u(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    """Decode unpadded base64url strictly: the text must be the canonical encoding of the bytes.

    Base64 leaves spare bits in its last character; a lenient decoder maps several texts to
    the same bytes. Requiring the round trip means no character can change unnoticed.
    """
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
    if b64u(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


def domain_message(kind: str, payload: bytes) -> bytes:
    """The bytes actually signed for an object of ``kind``."""
    return f"lms.credit.{kind}.v1".encode() + b"\x00" + payload


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_to_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def private_from_pem(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError("the issuer key is not an Ed25519 key")
    return key


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_text(key: Ed25519PublicKey) -> str:
    """``ed25519:<base64url>``, as printed by ``flask lms credit public-key``."""
    return PUBLIC_PREFIX + b64u(public_raw(key))


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_raw(key)).hexdigest()[:16]


def parse_public(text: str) -> Ed25519PublicKey:
    """Read a public key given as ``ed25519:...``, as a PEM, or as a file holding either.

    Raises:
        KeyFormatError: nothing usable was given.
    """
    text = text.strip()
    if not text.startswith(PUBLIC_PREFIX) and "BEGIN" not in text:
        path = Path(text)
        try:
            if path.is_file() and path.stat().st_size < 10_000:
                text = path.read_text("utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyFormatError(f"cannot read key file: {exc}") from exc
    if "BEGIN PUBLIC KEY" in text:
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError as exc:
            raise KeyFormatError("not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFormatError("the PEM key is not Ed25519")
        return key
    m = _PUBLIC_RE.fullmatch(text)
    if not m:
        raise KeyFormatError("expected ed25519:<43 base64url characters>")
    try:
        return Ed25519PublicKey.from_public_bytes(unb64u(m.group(1)))
    except ValueError as exc:
        raise KeyFormatError("not an Ed25519 public key") from exc


def sign(key: Ed25519PrivateKey, kind: str, payload: bytes) -> bytes:
    return key.sign(domain_message(kind, payload))


def verify(key: Ed25519PublicKey, kind: str, payload: bytes, signature: bytes) -> bool:
    if len(signature) != 64:
        return False
    try:
        key.verify(signature, domain_message(kind, payload))
    except InvalidSignature:
        return False
    return True
