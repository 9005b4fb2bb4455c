"""Several processes post and debit a few hot accounts on PostgreSQL: nothing lost, nothing negative."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from lms_core.extensions import db
from plugins.credit_bank import ledger as L
from plugins.credit_bank.models import Account, AccountKind, Transfer
from tests.conftest import TEST_SECRET
from tests.plugins.credit_bank import hot_workers as W

WORKERS, OWN, SHARED, SEED = 4, 60, 30, 20261204


@pytest.mark.backends("postgresql")
def test_processes_on_hot_accounts_lose_nothing(app: Flask, database_url: str, tmp_path: Path) -> None:
    for u in W.USERS:  # a starting balance, so that some debits succeed and some are refused
        L.submit(
            [
                [
                    L.TransferSpec(
                        id=L.transfer_id(f"hot:seed:{u}"),
                        code="adjustment",
                        effective_date=dt.date(W.YEAR, 1, 1),
                        amount=500,
                        debit=L.issuer("WL_XS"),
                        credit=L.counted("WL_XS", u, W.YEAR),
                        user_id=u,
                    )
                ]
            ]
        )
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(WORKERS, mp_context=ctx) as pool:
        futures = [
            pool.submit(W.run, database_url, TEST_SECRET, str(tmp_path / "media"), SEED, w, OWN, SHARED)
            for w in range(WORKERS)
        ]
        results = [f.result(timeout=600) for f in futures]
    db.session.remove()

    created: dict[str, int] = {}
    by_key: dict[str, list[str]] = {}
    for worker in results:
        for key, res in worker:
            by_key.setdefault(key, []).append(res)
            assert res in ("created", "exists", "exceeds_credits", "id_already_failed"), res
    for key, answers in by_key.items():
        # Exactly one process created a shared id; the others saw "exists" (or all failed).
        assert answers.count("created") <= 1, (key, answers)
        if "created" in answers:
            assert set(answers) <= {"created", "exists"}, (key, answers)
            created[key] = 1
    # The model: start balance plus every created post minus every created debit.
    ops = {op["key"]: op for w in range(WORKERS) for op in W.ops_for(SEED, w, OWN, SHARED)}
    expected = {u: 500 for u in W.USERS}
    for key in created:
        op = ops[key]
        expected[op["user"]] += op["amount"] if op["op"] == "post" else -op["amount"]
    for u in W.USERS:
        a = db.session.execute(
            select(Account).where(Account.owner_id == u, Account.kind == AccountKind.COUNTED, Account.period == W.YEAR)
        ).scalar_one()
        assert a.credits_posted - a.debits_posted == expected[u]
        assert a.debits_posted <= a.credits_posted
    rows = db.session.execute(select(func.count()).select_from(Transfer).where(Transfer.memo == "hot")).scalar_one()
    assert rows == len(created)
    assert L.replay_check()[1] == []
    assert all(v == (0, 0) for v in L.ledger_totals().values())
    assert len(created) > SHARED // 2 and any("exceeds_credits" in a for a in by_key.values())
