"""Worker processes for the hot-account test (imported by spawned processes, so no pytest here)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

USERS = (1, 2, 3)
YEAR = 2026


def ops_for(seed: int, worker: int, n_own: int, n_shared: int) -> list[dict[str, Any]]:
    """The worker's operations: its own, plus the shared ones every worker also submits."""
    shared_rng = random.Random(seed)
    shared = [
        {
            "key": f"hot:{seed}:shared:{i}",
            "op": shared_rng.choice(["post", "take"]),
            "user": shared_rng.choice(USERS),
            "amount": shared_rng.randint(1, 300),
        }
        for i in range(n_shared)
    ]
    rng = random.Random(seed * 1000 + worker)
    own = [
        {
            "key": f"hot:{seed}:{worker}:{i}",
            "op": rng.choice(["post", "take", "take"]),
            "user": rng.choice(USERS),
            "amount": rng.randint(1, 300),
        }
        for i in range(n_own)
    ]
    ops = shared + own
    rng.shuffle(ops)
    return ops


def run(url: str, secret: str, media: str, seed: int, worker: int, n_own: int, n_shared: int) -> list[tuple[str, str]]:
    from lms_core import create_app
    from lms_core.extensions import db
    from plugins.credit_bank import ledger as L

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": secret,
            "TESTING": True,
            "LMS_PLUGINS": ["credit_bank"],
            "LMS_MEDIA_DIR": media,
            "LMS_XAPI_ENABLED": False,
        }
    )
    out: list[tuple[str, str]] = []
    # Odd workers post through the batch path (create_transfers, 4 items per transaction),
    # even ones one transfer per transaction: both race on the same hot accounts.
    batch: list[tuple[str, Any]] = []

    def flush() -> None:
        results = L.create_transfers([s for _, s in batch])
        for (key, _), r in zip(batch, results, strict=True):
            out.append((key, {"ok": L.CREATED, "exists": L.EXISTS}.get(r.result) or str(r.reason)))
        batch.clear()

    with app.app_context():
        for op in ops_for(seed, worker, n_own, n_shared):
            acct = L.counted("WL_XS", op["user"], YEAR)
            debit, credit = (L.issuer("WL_XS"), acct) if op["op"] == "post" else (acct, L.issuer("WL_XS"))
            spec = L.TransferSpec(
                id=L.transfer_id(op["key"]),
                code="adjustment",
                effective_date=dt.date(YEAR, 3, 1),
                amount=op["amount"],
                debit=debit,
                credit=credit,
                user_id=op["user"],
                memo="hot",
            )
            if worker % 2:
                batch.append((op["key"], spec))
                if len(batch) == 4:
                    flush()
            else:
                out.append((op["key"], L.submit([[spec]])[0][0]))
        if batch:
            flush()
        db.engine.dispose()
    return out
