"""Issuing transcripts from the real journal; logs, checkpoints, supersession, revocation, replay."""

from __future__ import annotations

import json
from functools import partial

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from lms_core.extensions import db
from plugins.credit_bank.models import Account, AccountKind, Transfer
from plugins.credit_bank.proofs import credential as cr
from plugins.credit_bank.proofs import merkle, pdf
from plugins.credit_bank.transcripts import log, services
from plugins.credit_bank.transcripts.models import Checkpoint, LogLeaf
from tests import factories
from tests.lms_core.apps import together
from tests.plugins.credit_bank.transcripts.conftest import ISSUER
from tests.plugins.credit_bank.transcripts.helpers import history, post


def counted_balance(user_id: int) -> int:
    a = db.session.scalars(
        select(Account).where(Account.owner_id == user_id, Account.period == 2025, Account.kind == AccountKind.COUNTED)
    ).one()
    db.session.refresh(a)
    return a.balance


def test_issued_transcript_verifies_offline_and_agrees_with_the_ledger(app: Flask) -> None:
    cadre = factories.UserFactory(full_name="王小明")
    other = factories.UserFactory()
    post(other, "other-1", 500)
    history(cadre)
    cred = services.issue_transcript(cadre, 2025)

    rep = pdf.verify_file(cred.pdf, ISSUER.public_key())
    assert rep.ok, rep.checks
    p = rep.payload
    assert p is not None and p["subject"]["full_name"] == "王小明" and p["year"] == 2025
    (wl,) = p["balances"]
    # 2.00 + 1.50 - 1.50 (reversed) + 3.50 (approved claim); 3.00 still under review.
    assert wl == {"ledger": "WL_XS", "posted": 550, "pending": 300, "overflow": 0}
    assert wl["posted"] == counted_balance(cadre.id)
    # Only the cadre's own rows, each proven against the journal checkpoint.
    rows = [e["row"] for e in p["journal"]["entries"]]
    assert len(rows) == 6 and all(r["user_id"] == cadre.id for r in rows)
    assert p["journal"]["checkpoint"]["size"] == 7
    assert "代学代考" in json.dumps(p["lines"], ensure_ascii=False)
    assert services.find(cred.id) is cred and cred.digest == cr.digest(p)


def test_log_leaves_are_the_journal_rows_and_checkpoints_chain(app: Flask) -> None:
    cadre = factories.UserFactory()
    post(cadre, "a", 100)
    first = services.issue_transcript(cadre, 2025)
    post(cadre, "b", 200)
    services.issue_transcript(cadre, 2025)
    journal = log.leaf_hashes(cr.JOURNAL_LOG)
    assert len(journal) == 2
    cps = list(db.session.scalars(select(Checkpoint).where(Checkpoint.log == cr.JOURNAL_LOG).order_by(Checkpoint.id)))
    assert [c.size for c in cps] == [1, 2]
    old, new = cps
    proof = merkle.consistency_proof(old.size, journal)
    assert merkle.verify_consistency(old.size, new.size, proof, bytes.fromhex(old.root), bytes.fromhex(new.root))
    assert cr.verify_checkpoint(ISSUER.public_key(), new.as_dict(), cr.JOURNAL_LOG)
    # The old transcript still verifies after both logs grew.
    assert pdf.verify_file(first.pdf, ISSUER.public_key()).ok


def test_reissue_supersedes_and_revocation_is_recorded(app: Flask) -> None:
    cadre = factories.UserFactory()
    post(cadre, "a", 100)
    first = services.issue_transcript(cadre, 2025)
    second = services.issue_transcript(cadre, 2025)
    assert second.supersedes_id == first.id
    st = services.status_of(first)
    assert st.state == "superseded" and st.record is not None and st.record.replaced_by == second.id
    assert services.current(cadre.id, 2025) is second
    services.revoke(second, "发现代学代考")
    assert services.status_of(second).state == "revoked"
    assert services.current(cadre.id, 2025) is None
    with pytest.raises(services.TranscriptError):
        services.revoke(second, "again")
    with pytest.raises(services.TranscriptError):
        services.revoke(first, "   ")


def test_a_cadre_with_no_credit_gets_an_empty_but_valid_transcript(app: Flask) -> None:
    cadre = factories.UserFactory()
    cred = services.issue_transcript(cadre, 2024)
    rep = pdf.verify_file(cred.pdf, ISSUER.public_key())
    assert rep.ok and rep.payload is not None and rep.payload["balances"] == []
    with pytest.raises(services.TranscriptError):
        services.issue_transcript(cadre, 1900)


@pytest.mark.parametrize(
    "table", ["credit_log_leaves", "credit_checkpoints", "credit_credentials", "credit_credential_status"]
)
def test_transparency_tables_are_append_only(app: Flask, table: str) -> None:
    cadre = factories.UserFactory()
    post(cadre, "a", 100)
    first = services.issue_transcript(cadre, 2025)
    services.issue_transcript(cadre, 2025)
    services.revoke(first, "测试")
    for stmt in (f"UPDATE {table} SET id = id", f"DELETE FROM {table}"):  # noqa: S608 - fixed table names
        with pytest.raises(DBAPIError):
            db.session.execute(text(stmt))
        db.session.rollback()
    assert db.session.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608


def _tamper(app: Flask, sql: str) -> None:
    """Change a journal row behind the ledger's back (as a DBA could), bypassing the triggers."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ALTER TABLE credit_transfers DISABLE TRIGGER USER"))
        db.session.execute(text(sql))
        db.session.execute(text("ALTER TABLE credit_transfers ENABLE TRIGGER USER"))
    else:
        db.session.execute(text("DROP TRIGGER credit_transfers_no_update"))
        db.session.execute(text(sql))
    db.session.commit()


def test_replay_recomputes_the_root_and_catches_an_altered_row(app: Flask) -> None:
    cadre = factories.UserFactory()
    history(cadre)
    services.issue_transcript(cadre, 2025)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["lms", "credit", "replay"])
    assert ok.exit_code == 0, ok.output
    root = merkle.root(log.leaf_hashes(cr.JOURNAL_LOG)).hex()
    assert f"root {root}" in ok.output and "0 mismatch" in ok.output

    _tamper(app, "UPDATE credit_transfers SET memo = '篡改' WHERE seq = (SELECT min(seq) FROM credit_transfers)")
    bad = runner.invoke(args=["lms", "credit", "replay"])
    assert bad.exit_code == 1
    assert "no longer matches its logged hash" in bad.output


def test_replay_catches_a_rewritten_log(app: Flask) -> None:
    cadre = factories.UserFactory()
    post(cadre, "a", 100)
    post(cadre, "b", 100)
    services.issue_transcript(cadre, 2025)
    # Forge the log consistently with a forged row: the signed checkpoint still gives it away.
    _tamper(app, "UPDATE credit_transfers SET amount = 900 WHERE seq = (SELECT min(seq) FROM credit_transfers)")
    leaf = db.session.scalars(select(LogLeaf).where(LogLeaf.log == cr.JOURNAL_LOG, LogLeaf.idx == 0)).one()
    row = log._rows_with_keys([db.session.get(Transfer, leaf.seq)])[0]
    forged = cr.journal_leaf(row).hex()
    rewrite = text("UPDATE credit_log_leaves SET leaf_hash = :h WHERE id = :i")
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ALTER TABLE credit_log_leaves DISABLE TRIGGER USER"))
        db.session.execute(rewrite, {"h": forged, "i": leaf.id})
        db.session.execute(text("ALTER TABLE credit_log_leaves ENABLE TRIGGER USER"))
    else:
        db.session.execute(text("DROP TRIGGER credit_log_leaves_no_update"))
        db.session.execute(rewrite, {"h": forged, "i": leaf.id})
    db.session.commit()
    out: list[str] = []
    assert log.check_logs(out.append) >= 1
    assert any("root differs" in line for line in out)


def test_unlogged_rows_are_reported_then_logged_by_checkpoint(app: Flask) -> None:
    cadre = factories.UserFactory()
    post(cadre, "a", 100)
    out: list[str] = []
    assert log.check_logs(out.append) == 0
    assert any("1 newer rows not yet logged" in line for line in out)
    jcp, ccp = log.checkpoint_now()
    assert (jcp.size, ccp.size) == (1, 0)


@pytest.mark.backends("postgresql")
def test_concurrent_issuers_and_posters_keep_both_logs_dense(app: Flask) -> None:
    """Four workers post credit and issue transcripts at once, each on its own connection."""
    import threading

    from sqlalchemy import func

    workers, rounds = 4, 3
    cadres = [factories.UserFactory() for _ in range(workers)]
    db.session.commit()
    ids = [c.id for c in cadres]
    start = threading.Barrier(workers)

    def worker(i: int) -> None:
        from lms_core.accounts.models import User

        user = db.session.get(User, ids[i])
        assert user is not None
        start.wait()
        for r in range(rounds):
            post(user, f"w{i}-{r}", 100 + r)
            services.issue_transcript(user, 2025)

    errors = together(app, *(partial(worker, i) for i in range(workers)), timeout=300)
    assert not errors, errors
    db.session.expire_all()
    for name, expected in ((cr.JOURNAL_LOG, workers * rounds), (cr.CREDENTIAL_LOG, workers * rounds)):
        idx = sorted(db.session.scalars(select(LogLeaf.idx).where(LogLeaf.log == name)))
        assert idx == list(range(expected)), name
    assert db.session.scalar(select(func.count()).select_from(LogLeaf).where(LogLeaf.log == cr.JOURNAL_LOG)) == 12
    for user_id in ids:
        current = services.current(user_id, 2025)
        assert current is not None
        rep = pdf.verify_file(current.pdf, ISSUER.public_key())
        assert rep.ok and rep.payload is not None
        assert rep.payload["balances"][0]["posted"] == 100 + 101 + 102
    out: list[str] = []
    assert log.check_logs(out.append) == 0, out
