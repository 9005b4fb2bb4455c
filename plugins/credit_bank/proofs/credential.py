"""Signed checkpoints, signed credentials and the bundle a transcript carries, checked offline.

The bundle (embedded in the transcript PDF as ``credential.json``) is::

    {"format": "lms-credit-bundle/1",
     "credential": {"payload": {...}, "alg": "Ed25519", "kid": "...", "sig": "<b64u>"},
     "credential_log": {"index": i, "size": n, "path": [hex...], "checkpoint": {...}}}

* ``payload`` is the transcript: cadre, year, accounts, balances per credit type, and the
  journal entries, each the canonical journal row with its leaf index and audit path in the
  journal log, plus that log's signed checkpoint. The signature is Ed25519 over its JCS bytes.
* ``credential_log`` proves the credential itself was logged: leaf = ``leaf_hash(JCS(payload))``
  at ``index`` in the credential log's tree of ``size`` leaves, whose signed checkpoint is given.
  It sits outside the payload because a document cannot contain a proof of itself.

``verify_bundle`` needs only the issuer's public key: no server, no database. It says what it
can prove offline (authentic, unaltered, logged as of the checkpoint time) and nothing more;
revocation and re-issue are known only online (the verification page).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from plugins.credit_bank.proofs import keys, merkle
from plugins.credit_bank.proofs.canonical import CanonicalError, canonical

BUNDLE_FORMAT = "lms-credit-bundle/1"
PAYLOAD_TYPE = "lms-credit-transcript/1"
#: Log names: one log of journal entries, one of issued credentials (same code, two trees).
JOURNAL_LOG = "journal"
CREDENTIAL_LOG = "credentials"

#: Transfer flag bits, as in the ledger's journal (TigerBeetle's names). Repeated here so the
#: offline verifier needs nothing from the server-side package.
T_PENDING = 1
T_POST_PENDING = 2
T_VOID_PENDING = 4


def journal_leaf(row: Mapping[str, Any]) -> bytes:
    """Leaf hash of a journal row: ``leaf_hash(JCS(row))``."""
    return merkle.leaf_hash(canonical(dict(row)))


def credential_leaf(payload: Mapping[str, Any]) -> bytes:
    return merkle.leaf_hash(canonical(dict(payload)))


def digest(payload: Mapping[str, Any]) -> str:
    """SHA-256 of the payload's JCS bytes, hex: the credential's printed fingerprint."""
    return hashlib.sha256(canonical(dict(payload))).hexdigest()


# -- checkpoints -------------------------------------------------------------------------------


def sign_checkpoint(key: Ed25519PrivateKey, log: str, size: int, root: bytes, time: dt.datetime) -> dict[str, Any]:
    """A signed tree head: the log name, its size and root, the UTC time, the key id, the signature."""
    body = {
        "log": log,
        "size": size,
        "root": root.hex(),
        "time": time.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kid": keys.key_id(key.public_key()),
    }
    return {**body, "sig": keys.b64u(keys.sign(key, "checkpoint", canonical(body)))}


def verify_checkpoint(pub: Ed25519PublicKey, cp: Any, log: str | None = None) -> bool:
    if not isinstance(cp, dict) or set(cp) != {"log", "size", "root", "time", "kid", "sig"}:
        return False
    if log is not None and cp["log"] != log:
        return False
    if not isinstance(cp["size"], int) or isinstance(cp["size"], bool) or cp["size"] < 0:
        return False
    body = {k: v for k, v in cp.items() if k != "sig"}
    try:
        sig = keys.unb64u(cp["sig"])
        return keys.verify(pub, "checkpoint", canonical(body), sig)
    except (ValueError, CanonicalError):
        return False


def checkpoint_root(cp: Mapping[str, Any]) -> bytes:
    return bytes.fromhex(cp["root"])


# -- credentials -------------------------------------------------------------------------------


def sign_credential(key: Ed25519PrivateKey, payload: Mapping[str, Any]) -> dict[str, Any]:
    sig = keys.sign(key, "credential", canonical(dict(payload)))
    return {"payload": dict(payload), "alg": "Ed25519", "kid": keys.key_id(key.public_key()), "sig": keys.b64u(sig)}


def proof_entry(row: Mapping[str, Any], index: int, path: Sequence[bytes]) -> dict[str, Any]:
    """A journal entry as carried in a payload: the row, its leaf index, its audit path."""
    return {"row": dict(row), "index": index, "path": [p.hex() for p in path]}


@dataclasses.dataclass
class Check:
    """One verification step. ``code`` names it (the page and CLI translate it)."""

    code: str
    ok: bool
    detail: str = ""


@dataclasses.dataclass
class Report:
    checks: list[Check] = dataclasses.field(default_factory=list)
    bundle: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def payload(self) -> dict[str, Any] | None:
        if self.bundle is None:
            return None
        cred = self.bundle.get("credential")
        return cred.get("payload") if isinstance(cred, dict) else None

    def add(self, code: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(code, ok, detail))
        return ok


def _paths(raw: Any) -> list[bytes]:
    if not isinstance(raw, list) or len(raw) > 64:
        raise ValueError("bad audit path")
    out = []
    for h in raw:
        if not isinstance(h, str) or len(h) != 64 or h != h.lower():
            raise ValueError("bad audit path hash")
        out.append(bytes.fromhex(h))
    return out


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError("not an integer")
    return v


def recompute_balances(
    accounts: Iterable[Mapping[str, Any]], rows: Iterable[Mapping[str, Any]]
) -> dict[str, dict[str, int]]:
    """Balances per ledger code (``posted``, ``pending``, ``overflow``) folded from journal rows.

    Accounts are named by their natural key (``LEDGER/kind/owner/period``), as journal rows
    name them. Counted accounts give ``posted`` (posted credits minus posted debits) and ``pending``
    (open holds: pending amounts not yet resolved); overflow accounts give ``overflow``.
    A pending row moves nothing posted; its post row carries the posted amount; a void row
    only closes the hold.
    """
    acc = {str(a["key"]): a for a in accounts}
    out: dict[str, dict[str, int]] = {}
    rows = list(rows)
    resolved = {r.get("pending_id") for r in rows if r.get("flags", 0) & (T_POST_PENDING | T_VOID_PENDING)}
    for r in rows:
        flags = _int(r.get("flags", 0))
        amount = _int(r["amount"])
        for key, sign in ((r["credit_account"], 1), (r["debit_account"], -1)):
            a = acc.get(key)
            if a is None:
                continue
            bal = out.setdefault(str(a["ledger"]), {"posted": 0, "pending": 0, "overflow": 0})
            if flags & T_VOID_PENDING:
                continue
            if flags & T_PENDING:
                if a["kind"] == "counted" and r.get("id") not in resolved:
                    bal["pending"] += sign * amount
                continue
            bal["posted" if a["kind"] == "counted" else "overflow"] += sign * amount
    return out


def verify_bundle(bundle: Any, pub: Ed25519PublicKey) -> Report:
    """Check a credential bundle against the issuer's public key, offline.

    Every check is recorded, in order; the report is ok only when all pass. A malformed
    bundle yields a failed ``format`` check, never an exception.
    """
    rep = Report(bundle=bundle if isinstance(bundle, dict) else None)
    try:
        _verify(bundle, pub, rep)
    except (KeyError, TypeError, ValueError, AttributeError, CanonicalError) as exc:
        rep.add("format", False, f"{type(exc).__name__}: {exc}")
    return rep


def _verify(bundle: Any, pub: Ed25519PublicKey, rep: Report) -> None:
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        rep.add("format", False, "not a credit bundle")
        return
    cred = bundle["credential"]
    payload = cred["payload"]
    if not isinstance(payload, dict) or payload.get("type") != PAYLOAD_TYPE:
        rep.add("format", False, "unknown payload type")
        return
    kid = keys.key_id(pub)
    if not rep.add(
        "issuer_key", cred.get("kid") == kid and cred.get("alg") == "Ed25519", f"kid {cred.get('kid')} vs key {kid}"
    ):
        return
    body = canonical(payload)
    if not rep.add("credential_signature", keys.verify(pub, "credential", body, keys.unb64u(cred["sig"]))):
        return

    # The credential is in the credential log, under a checkpoint the issuer signed.
    clog = bundle["credential_log"]
    cp = clog["checkpoint"]
    ok_cp = verify_checkpoint(pub, cp, CREDENTIAL_LOG)
    rep.add("credential_checkpoint", ok_cp, f"{cp.get('size')} @ {cp.get('time')}" if isinstance(cp, dict) else "")
    if ok_cp:
        index, size = _int(clog["index"]), _int(clog["size"])
        included = size == cp["size"] and merkle.verify_inclusion(
            index, size, merkle.leaf_hash(body), _paths(clog["path"]), checkpoint_root(cp)
        )
        rep.add("credential_inclusion", included, f"leaf {index} of {size}")

    # Every journal entry the transcript lists is in the journal log.
    journal = payload["journal"]
    jcp = journal["checkpoint"]
    ok_jcp = verify_checkpoint(pub, jcp, JOURNAL_LOG)
    rep.add("journal_checkpoint", ok_jcp, f"{jcp.get('size')} @ {jcp.get('time')}" if isinstance(jcp, dict) else "")
    entries = journal["entries"]
    if not isinstance(entries, list):
        raise ValueError("entries is not a list")
    if ok_jcp:
        jroot, jsize = checkpoint_root(jcp), _int(jcp["size"])
        bad = [
            e["index"]
            for e in entries
            if not merkle.verify_inclusion(_int(e["index"]), jsize, journal_leaf(e["row"]), _paths(e["path"]), jroot)
        ]
        rep.add("journal_inclusion", not bad, f"{len(entries) - len(bad)}/{len(entries)}")

    # The balances printed are what the entries add up to.
    got = recompute_balances(payload["accounts"], [e["row"] for e in entries])
    stated = {str(b["ledger"]): {k: _int(b[k]) for k in ("posted", "pending", "overflow")} for b in payload["balances"]}
    for code in got:
        stated.setdefault(code, {"posted": 0, "pending": 0, "overflow": 0})
    for code in stated:
        got.setdefault(code, {"posted": 0, "pending": 0, "overflow": 0})
    rep.add("balances", got == stated, "" if got == stated else f"entries give {got}, transcript says {stated}")
