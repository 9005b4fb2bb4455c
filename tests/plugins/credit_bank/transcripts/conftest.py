"""Transcript tests: a fixed issuer key from the environment, never a key file in the repo's instance/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from plugins.credit_bank.proofs import keys

ISSUER = Ed25519PrivateKey.from_private_bytes(bytes(range(100, 132)))
ISSUER_PUBLIC = keys.public_text(ISSUER.public_key())


@pytest.fixture(autouse=True)
def issuer_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LMS_CREDIT_ISSUER_KEY", keys.private_to_pem(ISSUER).decode())
    yield
