"""Signed checkpoints and credential bundles, checked offline with only the public key."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from plugins.credit_bank.proofs import credential as cr
from plugins.credit_bank.proofs import keys, merkle
from tests.plugins.credit_bank.proofs import sample

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def codes(rep: cr.Report) -> dict[str, bool]:
    return {c.code: c.ok for c in rep.checks}


def test_public_key_text_round_trips_and_rejects_near_misses(tmp_path: Any) -> None:
    text = keys.public_text(KEY.public_key())
    assert text.startswith("ed25519:") and len(text) == 8 + 43
    assert keys.public_raw(keys.parse_public(text)) == keys.public_raw(KEY.public_key())
    f = tmp_path / "issuer.pub"
    f.write_text(text + "\n")
    assert keys.key_id(keys.parse_public(str(f))) == keys.key_id(KEY.public_key())
    for bad in (text[:-1], text + "A", "rsa:" + text[8:], "", "ed25519:" + "!" * 43):
        with pytest.raises(keys.KeyFormatError):
            keys.parse_public(bad)


def test_base64url_decoding_is_canonical() -> None:
    raw = bytes(range(64))
    text = keys.b64u(raw)
    assert keys.unb64u(text) == raw
    # The last character of 64 bytes carries 2 spare bits: a lenient decoder would accept
    # the neighbour that differs only in them.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    neighbour = text[:-1] + alphabet[alphabet.index(text[-1]) ^ 1]
    with pytest.raises(ValueError):
        keys.unb64u(neighbour)


def test_signatures_are_bound_to_their_kind() -> None:
    sig = keys.sign(KEY, "checkpoint", b"payload")
    assert keys.verify(KEY.public_key(), "checkpoint", b"payload", sig)
    assert not keys.verify(KEY.public_key(), "credential", b"payload", sig)
    assert not keys.verify(OTHER.public_key(), "checkpoint", b"payload", sig)


def test_checkpoint_fields_are_all_signed() -> None:
    when = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    cp = cr.sign_checkpoint(KEY, cr.JOURNAL_LOG, 8, merkle.root([merkle.leaf_hash(b"x")]), when)
    assert cr.verify_checkpoint(KEY.public_key(), cp, cr.JOURNAL_LOG)
    assert not cr.verify_checkpoint(KEY.public_key(), cp, cr.CREDENTIAL_LOG)
    assert not cr.verify_checkpoint(OTHER.public_key(), cp)
    changes: dict[str, Any] = {
        "log": "credentials",
        "size": 9,
        "root": "00" * 32,
        "time": "2025-01-01T00:00:01Z",
        "kid": "0" * 16,
        "sig": keys.b64u(b"\0" * 64),
    }
    for field, value in changes.items():
        assert not cr.verify_checkpoint(KEY.public_key(), {**cp, field: value}), field
    assert not cr.verify_checkpoint(KEY.public_key(), {**cp, "extra": 1})
    assert not cr.verify_checkpoint(KEY.public_key(), {**cp, "size": True})


def test_a_bundle_verifies_offline() -> None:
    rep = cr.verify_bundle(sample.build(KEY, extra_leaves=5), KEY.public_key())
    assert rep.ok, rep.checks
    assert codes(rep) == dict.fromkeys(
        [
            "issuer_key",
            "credential_signature",
            "credential_checkpoint",
            "credential_inclusion",
            "journal_checkpoint",
            "journal_inclusion",
            "balances",
        ],
        True,
    )


def test_balances_are_recomputed_from_the_entries() -> None:
    got = cr.recompute_balances(
        *(lambda p: (p["accounts"], [e["row"] for e in p["journal"]["entries"]]))(
            sample.build(KEY)["credential"]["payload"]
        )
    )
    # 2.00 + 0.50 + 3.50 (posted hold) - 0.50 (reversal); the open 3.00 hold; 1.00 over the cap.
    assert got == {"WL_XS": {"posted": 550, "pending": 300, "overflow": 100}}


def test_wrong_key_fails() -> None:
    rep = cr.verify_bundle(sample.build(KEY), OTHER.public_key())
    assert not rep.ok and codes(rep)["issuer_key"] is False


def _mutations(bundle: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []

    def mutate(name: str, fn: Any) -> None:
        b = copy.deepcopy(bundle)
        fn(b)
        out.append((name, b))

    p = "credential", "payload"
    mutate("balance", lambda b: b[p[0]][p[1]]["balances"][0].update(posted=5000))
    mutate("name", lambda b: b[p[0]][p[1]]["subject"].update(full_name="李四"))
    mutate("year", lambda b: b[p[0]][p[1]].update(year=2024))
    mutate("entry amount", lambda b: b[p[0]][p[1]]["journal"]["entries"][0]["row"].update(amount=20000))
    mutate("signature", lambda b: b["credential"].update(sig=keys.b64u(b"\1" * 64)))
    mutate("log index", lambda b: b["credential_log"].update(index=b["credential_log"]["index"] - 1))
    mutate("log path", lambda b: b["credential_log"]["path"].reverse())
    mutate("checkpoint root", lambda b: b["credential_log"]["checkpoint"].update(root="ab" * 32))
    mutate("format", lambda b: b.update(format="other"))
    mutate("not a dict", lambda b: b["credential"].update(payload=[1, 2]))
    return out


def test_any_edit_to_the_bundle_fails() -> None:
    bundle = sample.build(KEY, extra_leaves=3)
    for name, edited in _mutations(bundle):
        assert not cr.verify_bundle(edited, KEY.public_key()).ok, name


def test_re_signed_payload_with_wrong_balances_still_fails() -> None:
    """Even the issuer's own key cannot make printed balances disagree with the entries."""
    bundle = sample.build(KEY)
    payload = copy.deepcopy(bundle["credential"]["payload"])
    payload["balances"][0]["posted"] += 100
    bundle["credential"] = cr.sign_credential(KEY, payload)
    rep = cr.verify_bundle(bundle, KEY.public_key())
    assert codes(rep)["credential_signature"] and not codes(rep)["balances"]
    assert not codes(rep)["credential_inclusion"]  # and it is not the logged credential


def test_junk_never_raises() -> None:
    half = {"format": cr.BUNDLE_FORMAT, "credential": {"payload": {}}}
    for junk in (None, [], "x", {"format": cr.BUNDLE_FORMAT}, half):
        rep = cr.verify_bundle(junk, KEY.public_key())
        assert not rep.ok
