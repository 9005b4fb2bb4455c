"""A transcript built from made-up journal rows, with no database: the pure library end to end."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from plugins.credit_bank.proofs import credential as cr
from plugins.credit_bank.proofs import merkle, pdf

ISSUED = dt.datetime(2025, 12, 30, 8, 0, tzinfo=dt.UTC)


def journal_rows() -> list[dict[str, Any]]:
    """Rows of a small journal: other cadres' lines around ours (accounts 11 and 12 are ours)."""
    names = {1: "WL_XS/issuer/1/0", 11: "WL_XS/counted/7/2025", 12: "WL_XS/overflow/7/2025", 21: "WL_XS/counted/8/2025"}

    def row(
        seq: int,
        debit: int,
        credit: int,
        amount: int,
        flags: int = 0,
        pending_id: str | None = None,
        day: str = "2025-03-01",
        user: int = 7,
    ) -> dict[str, Any]:
        return {
            "seq": seq,
            "id": f"00000000-0000-0000-0000-{seq:012d}",
            "ledger": "WL_XS",
            "debit_account": names[debit],
            "credit_account": names[credit],
            "amount": amount,
            "flags": flags,
            "pending_id": pending_id,
            "code": "course_complete",
            "effective_date": day,
            "user_id": user,
            "memo": f"课程 {seq}",
        }

    return [
        row(1, 1, 11, 200),  # 2.00 学时 posted to our counted account
        row(2, 1, 21, 150, user=8),  # someone else
        row(3, 1, 11, 50),
        row(4, 1, 12, 100),  # overflow: recorded, not counted
        row(5, 1, 11, 300, flags=cr.T_PENDING),  # a claim under review
        row(6, 1, 11, 400, flags=cr.T_PENDING),  # a claim later approved for 3.50
        row(7, 1, 11, 350, flags=cr.T_POST_PENDING, pending_id="00000000-0000-0000-0000-000000000006"),
        row(8, 11, 1, 50, day="2025-06-01"),  # a reversal of 0.50
    ]


def build(key: Ed25519PrivateKey, *, extra_leaves: int = 0) -> dict[str, Any]:
    """The bundle of a transcript of cadre 7 for 2025, logged after ``extra_leaves`` other credentials."""
    rows = journal_rows()
    leaves = [cr.journal_leaf(r) for r in rows]
    jcp = cr.sign_checkpoint(key, cr.JOURNAL_LOG, len(leaves), merkle.root(leaves), ISSUED)
    mine = {"WL_XS/counted/7/2025", "WL_XS/overflow/7/2025"}
    ours = [i for i, r in enumerate(rows) if mine & {r["debit_account"], r["credit_account"]}]
    payload = {
        "type": cr.PAYLOAD_TYPE,
        "id": "0190f0a0-1234-7abc-8def-0123456789ab",
        "issuer": {"name": "干部网络学院"},
        "subject": {"user_id": 7, "username": "zhangsan", "full_name": "张三", "org_unit": "市委组织部"},
        "year": 2025,
        "issued_at": "2025-12-30T08:00:00Z",
        "supersedes": None,
        "ledgers": [{"code": "WL_XS", "name": "网络培训学时"}],
        "accounts": [
            {"key": "WL_XS/counted/7/2025", "ledger": "WL_XS", "kind": "counted"},
            {"key": "WL_XS/overflow/7/2025", "ledger": "WL_XS", "kind": "overflow"},
        ],
        "balances": [{"ledger": "WL_XS", "posted": 550, "pending": 300, "overflow": 100}],
        "lines": [
            {
                "seq": rows[i]["seq"],
                "date": rows[i]["effective_date"],
                "ledger": "WL_XS",
                "amount": rows[i]["amount"],
                "title": rows[i]["memo"],
            }
            for i in ours
        ],
        "verify_url": "https://lms.example.org/credit/verify/0190f0a0-1234-7abc-8def-0123456789ab",
        "journal": {
            "checkpoint": jcp,
            "entries": [cr.proof_entry(rows[i], i, merkle.inclusion_proof(i, leaves)) for i in ours],
        },
    }
    signed = cr.sign_credential(key, payload)
    cleaves = [merkle.leaf_hash(bytes([n])) for n in range(extra_leaves)] + [cr.credential_leaf(payload)]
    idx = len(cleaves) - 1
    ccp = cr.sign_checkpoint(key, cr.CREDENTIAL_LOG, len(cleaves), merkle.root(cleaves), ISSUED)
    bundle = {
        "format": cr.BUNDLE_FORMAT,
        "credential": signed,
        "credential_log": {
            "index": idx,
            "size": len(cleaves),
            "path": [p.hex() for p in merkle.inclusion_proof(idx, cleaves)],
            "checkpoint": ccp,
        },
    }
    return bundle


def sealed_pdf(key: Ed25519PrivateKey, font: Path | None, bundle: dict[str, Any]) -> bytes:
    body = pdf.render(bundle["credential"]["payload"], pdf.bundle_bytes(bundle), font_path=font)
    return pdf.seal(body, key)
