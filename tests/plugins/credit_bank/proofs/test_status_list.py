"""The signed status list, checked offline: revoked, re-issued, current, unknown; any tampering fails."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from plugins.credit_bank.proofs import status_list as sl

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUB = KEY.public_key()
AT = dt.datetime(2026, 12, 5, 5, 0, tzinfo=dt.UTC)
REVOKED = "0190f0a0-0000-7000-8000-000000000001"
OLD = "0190f0a0-0000-7000-8000-000000000002"
NEW = "0190f0a0-0000-7000-8000-000000000003"
ENTRIES = [
    {"id": REVOKED, "state": "revoked", "since": "2026-12-01T00:00:00Z", "reason": "代学代考", "replaced_by": None},
    {"id": OLD, "state": "superseded", "since": "2026-12-02T00:00:00Z", "reason": None, "replaced_by": NEW},
]


def _doc(**kw: Any) -> dict[str, Any]:
    return sl.build(kw.pop("key", KEY), kw.pop("entries", ENTRIES), kw.pop("size", 10), AT)


def _bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, indent=1).encode()


def test_standing_of_each_kind_of_credential() -> None:
    payload = sl.load(_bytes(_doc()), PUB)
    revoked = sl.standing(payload, REVOKED, 0)
    assert revoked.state == "revoked" and revoked.entry is not None and revoked.entry["reason"] == "代学代考"
    old = sl.standing(payload, OLD, 1)
    assert old.state == "superseded" and old.entry is not None and old.entry["replaced_by"] == NEW
    assert sl.standing(payload, NEW, 2).state == "valid"  # covered (index 2 < 10) and not named
    assert sl.standing(payload, "0190f0a0-0000-7000-8000-0000000000ff", 10).state == "unknown"
    assert sl.standing(payload, NEW, 2).time == "2026-12-05T05:00:00Z"


def _mutations() -> list[tuple[str, Any]]:
    def drop_entry(d: dict[str, Any]) -> None:
        d["payload"]["entries"] = d["payload"]["entries"][1:]  # hide the revocation

    def revive(d: dict[str, Any]) -> None:
        d["payload"]["entries"][0]["state"] = "superseded"

    def grow(d: dict[str, Any]) -> None:
        d["payload"]["credential_log_size"] = 1000

    def later(d: dict[str, Any]) -> None:
        d["payload"]["time"] = "2027-01-01T00:00:00Z"

    def sig_bit(d: dict[str, Any]) -> None:
        s = d["sig"]
        d["sig"] = ("B" if s[0] == "A" else "A") + s[1:]

    def other_format(d: dict[str, Any]) -> None:
        d["format"] = "lms-credit-bundle/1"

    def extra_key(d: dict[str, Any]) -> None:
        d["payload"]["note"] = "x"

    return [
        ("drop_entry", drop_entry),
        ("revive", revive),
        ("grow", grow),
        ("later", later),
        ("sig_bit", sig_bit),
        ("other_format", other_format),
        ("extra_key", extra_key),
    ]


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[n for n, _m in _mutations()])
def test_any_edit_of_a_signed_list_is_refused(name: str, mutate: Any) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(sl.StatusListError):
        sl.load(_bytes(doc), PUB)


def test_every_flipped_byte_of_the_canonical_payload_is_refused() -> None:
    """Flip each byte of the signed text in turn: parse error or signature failure, never accepted."""
    doc = _doc()
    raw = bytearray(json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode())
    start = raw.index(b'"payload"')
    for i in range(start, start + 400):
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        with pytest.raises(sl.StatusListError):
            sl.load(bytes(flipped), PUB)


def test_a_list_signed_by_another_key_or_as_another_kind_is_refused() -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(sl.StatusListError, match="signature"):
        sl.load(_bytes(_doc(key=other)), PUB)
    # A valid signature by this key over the same bytes in another domain (a credential) fails.
    from plugins.credit_bank.proofs import keys
    from plugins.credit_bank.proofs.canonical import canonical

    doc = _doc()
    doc["sig"] = keys.b64u(keys.sign(KEY, "credential", canonical(doc["payload"])))
    with pytest.raises(sl.StatusListError, match="signature"):
        sl.load(_bytes(doc), PUB)


@pytest.mark.parametrize("junk", [b"", b"{", b"[]", b'{"format": 1}', b"\xff\xfe", b'{"a":1,"a":2}'])
def test_junk_is_a_clear_refusal(junk: bytes) -> None:
    with pytest.raises(sl.StatusListError):
        sl.load(junk, PUB)


def test_entries_are_sorted_so_equal_facts_sign_equal_bytes() -> None:
    assert _doc() == _doc(entries=list(reversed(ENTRIES)))
