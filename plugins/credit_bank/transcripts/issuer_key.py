"""The issuer's Ed25519 key: from ``LMS_CREDIT_ISSUER_KEY`` or generated into the instance folder.

``LMS_CREDIT_ISSUER_KEY`` holds a PKCS#8 PEM private key (the text itself, or the path of a
file holding it); several app nodes share one key that way. Without it the key is created
on first use as ``<instance>/credit_issuer_key.pem`` (mode 0600, never in the repository).
Losing the key does not invalidate issued transcripts (they verify with the public key),
but new ones would need a new published key.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app

from plugins.credit_bank.proofs import keys

ENV = "LMS_CREDIT_ISSUER_KEY"
FILENAME = "credit_issuer_key.pem"


def _from_env(value: str) -> Ed25519PrivateKey:
    text = value
    if "BEGIN" not in value:
        text = Path(value).read_text("utf-8")
    return keys.private_from_pem(text.encode())


def load_or_create(instance_path: str) -> Ed25519PrivateKey:
    env = os.environ.get(ENV)
    if env:
        return _from_env(env)
    path = Path(instance_path) / FILENAME
    if path.exists():
        return keys.private_from_pem(path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = keys.generate()
    # O_EXCL: two workers starting at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return keys.private_from_pem(path.read_bytes())
    with os.fdopen(fd, "wb") as fh:
        fh.write(keys.private_to_pem(key))
    return key


def issuer_key() -> Ed25519PrivateKey:
    """The app's issuer key (loaded once per app)."""
    cache = current_app.extensions.setdefault("credit_bank.issuer_key", {})
    if "key" not in cache:
        cache["key"] = load_or_create(current_app.instance_path)
    key: Ed25519PrivateKey = cache["key"]
    return key
