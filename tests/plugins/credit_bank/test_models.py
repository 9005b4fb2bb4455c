"""The journal is append-only at the database, on both engines, whatever the client."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from lms_core.extensions import db
from plugins.credit_bank import ledger as L


def _one_transfer() -> str:
    tid = L.transfer_id("test:1")
    res = L.submit(
        [
            [
                L.TransferSpec(
                    id=tid,
                    code="course_complete",
                    effective_date=dt.date(2026, 5, 1),
                    amount=200,
                    debit=L.issuer("WL_XS"),
                    credit=L.counted("WL_XS", 7, 2026),
                )
            ]
        ]
    )
    assert res == [["created"]]
    return tid


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE credit_transfers SET amount = amount + 100",
        "UPDATE credit_transfers SET memo = 'edited'",
        "DELETE FROM credit_transfers",
    ],
)
def test_journal_refuses_update_and_delete(app: Flask, sql: str) -> None:
    _one_transfer()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text(sql))
        db.session.flush()
    db.session.rollback()
    assert db.session.execute(text("SELECT amount FROM credit_transfers")).scalar_one() == 200


def test_policies_are_append_only(app: Flask) -> None:
    db.session.execute(
        text(
            "INSERT INTO credit_policies (version, effective_from, rules, created_at) "
            "VALUES (1, '2026-01-01', '{}', '2026-01-01 00:00:00')"
        )
    )
    db.session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("UPDATE credit_policies SET rules = '{\"x\": 1}'"))
    db.session.rollback()


def test_transfer_across_ledgers_is_refused_by_the_database(app: Flask) -> None:
    _one_transfer()
    wl = db.session.execute(text("SELECT debit_account_id, credit_account_id FROM credit_transfers")).one()
    # ledger 2 (JZ_XS) with accounts of ledger 1: the trigger refuses it.
    with pytest.raises((DBAPIError, IntegrityError), match="ledger"):
        db.session.execute(
            text(
                "INSERT INTO credit_transfers (id, ledger_id, debit_account_id, credit_account_id, amount, flags, "
                "code, effective_date, body_hash, recorded_at) VALUES ('x', 2, :d, :c, 1, 0, 'adjustment', "
                "'2026-01-01', 'h', '2026-01-01 00:00:00')"
            ),
            {"d": wl[0], "c": wl[1]},
        )
    db.session.rollback()


def test_counted_account_cannot_go_negative_even_by_hand(app: Flask) -> None:
    _one_transfer()
    with pytest.raises(IntegrityError):
        db.session.execute(text("UPDATE credit_accounts SET debits_posted = 300 WHERE kind = 'counted'"))
        db.session.flush()
    db.session.rollback()


def test_one_cross_ledger_row_refuses_the_whole_multi_row_insert(app: Flask) -> None:
    """On PostgreSQL the check runs once per statement: a bad row among good ones still fails
    the statement, and none of its rows is kept."""
    _one_transfer()
    d, c = db.session.execute(text("SELECT debit_account_id, credit_account_id FROM credit_transfers")).one()
    with pytest.raises((DBAPIError, IntegrityError), match="ledger"):
        db.session.execute(
            text(
                "INSERT INTO credit_transfers (id, ledger_id, debit_account_id, credit_account_id, amount, flags, "
                "code, effective_date, body_hash, recorded_at) VALUES "
                "('a', 1, :d, :c, 1, 0, 'adjustment', '2026-01-01', 'h', '2026-01-01 00:00:00'), "
                "('b', 2, :d, :c, 1, 0, 'adjustment', '2026-01-01', 'h', '2026-01-01 00:00:00'), "
                "('c', 1, :d, :c, 1, 0, 'adjustment', '2026-01-01', 'h', '2026-01-01 00:00:00')"
            ),
            {"d": d, "c": c},
        )
        db.session.flush()
    db.session.rollback()
    assert db.session.execute(text("SELECT count(*) FROM credit_transfers")).scalar_one() == 1


# The journal has no foreign keys (0007): the same-ledger trigger and the account guard keep
# what they enforced. Each test below fails if its trigger is dropped.


def test_transfer_naming_a_missing_account_is_refused_by_the_database(app: Flask) -> None:
    _one_transfer()
    d = db.session.execute(text("SELECT debit_account_id FROM credit_transfers")).scalar_one()
    with pytest.raises((DBAPIError, IntegrityError), match="ledger"):
        db.session.execute(
            text(
                "INSERT INTO credit_transfers (id, ledger_id, debit_account_id, credit_account_id, amount, flags, "
                "code, effective_date, body_hash, recorded_at) VALUES ('x', 1, :d, 987654, 1, 0, 'adjustment', "
                "'2026-01-01', 'h', '2026-01-01 00:00:00')"
            ),
            {"d": d},
        )
        db.session.flush()
    db.session.rollback()


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM credit_accounts WHERE kind = 'counted'",
        "UPDATE credit_accounts SET owner_id = owner_id + 1 WHERE kind = 'counted'",
        "UPDATE credit_accounts SET ledger_id = 2 WHERE kind = 'counted'",
        "UPDATE credit_accounts SET period = 2025 WHERE kind = 'counted'",
        "UPDATE credit_accounts SET id = id + 1000 WHERE kind = 'counted'",
    ],
)
def test_account_named_by_the_journal_keeps_its_identity(app: Flask, sql: str) -> None:
    _one_transfer()
    with pytest.raises((DBAPIError, IntegrityError), match="never deleted"):
        db.session.execute(text(sql))
        db.session.flush()
    db.session.rollback()
    row = db.session.execute(
        text(
            "SELECT a.owner_id, a.period, a.ledger_id FROM credit_transfers t "
            "JOIN credit_accounts a ON a.id = t.credit_account_id"
        )
    ).one()
    assert tuple(row) == (7, 2026, 1)


def test_partial_pending_index_still_refuses_a_second_resolution(app: Flask) -> None:
    _one_transfer()
    d, c = db.session.execute(text("SELECT debit_account_id, credit_account_id FROM credit_transfers")).one()
    insert = (
        "INSERT INTO credit_transfers (id, ledger_id, debit_account_id, credit_account_id, amount, flags, pending_id, "
        "code, effective_date, body_hash, recorded_at) VALUES (:id, 1, :d, :c, 1, 4, 'p1', 'adjustment', "
        "'2026-01-01', 'h', '2026-01-01 00:00:00')"
    )
    db.session.execute(text(insert), {"id": "v1", "d": d, "c": c})
    with pytest.raises(IntegrityError):
        db.session.execute(text(insert), {"id": "v2", "d": d, "c": c})
        db.session.flush()
    db.session.rollback()
