"""The ledger service: TigerBeetle's semantics, checked one by one."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select, text

from lms_core.extensions import db
from plugins.credit_bank import ledger as L
from plugins.credit_bank.models import T_PENDING, T_POST_PENDING, T_VOID_PENDING, Account, AccountKind

DAY = dt.date(2026, 5, 1)
SRC = L.issuer("WL_XS")


def cnt(user: int = 7, year: int = 2026) -> L.AccountRef:
    return L.counted("WL_XS", user, year)


def spec(key: str, amount: int | None = 100, **kw: object) -> L.TransferSpec:
    base: dict[str, object] = {
        "id": L.transfer_id(key),
        "code": "course_complete",
        "effective_date": DAY,
        "amount": amount,
        "debit": SRC,
        "credit": cnt(),
    }
    base.update(kw)
    return L.TransferSpec(**base)  # type: ignore[arg-type]


def one(s: L.TransferSpec) -> str:
    return L.submit([[s]])[0][0]


def balance(ref: L.AccountRef) -> tuple[int, int, int, int]:
    a = db.session.execute(
        select(Account).where(Account.owner_id == ref.owner_id, Account.period == ref.period, Account.kind == ref.kind)
    ).scalar_one()
    db.session.refresh(a)
    return a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending


def journal_rows() -> int:
    return int(db.session.execute(text("SELECT count(*) FROM credit_transfers")).scalar_one())


def test_same_id_same_body_exists_different_body_refused(app: Flask) -> None:
    assert one(spec("a")) == "created"
    assert one(spec("a")) == "exists"
    assert one(spec("a", amount=500)) == "exists_with_different_amount"
    assert one(spec("a", credit=cnt(8))) == "exists_with_different_credit_account"
    assert one(spec("a", memo="other")) == "exists_with_different_body"
    assert journal_rows() == 1
    assert balance(cnt()) == (0, 100, 0, 0)


def test_counted_account_never_goes_negative_and_the_id_stays_failed(app: Flask) -> None:
    assert one(spec("earn", 100)) == "created"
    assert one(spec("take", 150, debit=cnt(), credit=SRC, code="adjustment")) == "exceeds_credits"
    assert one(spec("earn2", 100)) == "created"
    # Now the balance would allow it, but the id failed once: it stays failed.
    assert one(spec("take", 150, debit=cnt(), credit=SRC, code="adjustment")) == "id_already_failed"
    assert balance(cnt()) == (0, 200, 0, 0)


def test_two_phase_post_partial_releases_the_rest(app: Flask) -> None:
    hold = spec("hold", 300, flags=T_PENDING)
    assert one(hold) == "created"
    assert balance(cnt()) == (0, 0, 0, 300)
    post = spec("post", 200, flags=T_POST_PENDING, pending_id=hold.id, debit=None, credit=None)
    assert one(post) == "created"
    assert balance(cnt()) == (0, 200, 0, 0)
    assert (
        one(spec("void", None, flags=T_VOID_PENDING, pending_id=hold.id, debit=None, credit=None))
        == "pending_transfer_already_posted"
    )
    assert (
        one(spec("post2", 50, flags=T_POST_PENDING, pending_id=hold.id, debit=None, credit=None))
        == "pending_transfer_already_posted"
    )


def test_void_restores_exactly_and_post_above_pending_is_refused(app: Flask) -> None:
    hold = spec("hold", 300, flags=T_PENDING)
    one(hold)
    assert (
        one(spec("big", 301, flags=T_POST_PENDING, pending_id=hold.id, debit=None, credit=None))
        == "exceeds_pending_transfer_amount"
    )
    assert one(spec("void", None, flags=T_VOID_PENDING, pending_id=hold.id, debit=None, credit=None)) == "created"
    assert balance(cnt()) == (0, 0, 0, 0)
    assert (
        one(spec("post", None, flags=T_POST_PENDING, pending_id=hold.id, debit=None, credit=None))
        == "pending_transfer_already_voided"
    )


def test_expired_pending_cannot_be_posted_and_is_voided_by_the_sweep(app: Flask) -> None:
    with time_machine.travel(dt.datetime(2026, 5, 1, 8, tzinfo=dt.UTC), tick=False):
        hold = spec("hold", 300, flags=T_PENDING, timeout_seconds=3600)
        one(hold)
    with time_machine.travel(dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC), tick=False):
        assert (
            one(spec("post", None, flags=T_POST_PENDING, pending_id=hold.id, debit=None, credit=None))
            == "pending_expired"
        )
        assert L.expire_pending() == 1
        assert L.expire_pending() == 0
    assert balance(cnt()) == (0, 0, 0, 0)


def test_linked_group_commits_all_or_nothing(app: Flask) -> None:
    one(spec("seed", 100))
    ok = [spec("g1", 50), spec("g2", 30, credit=L.overflow("WL_XS", 7, 2026), code="cap_overflow")]
    assert L.submit([ok]) == [["created", "created"]]
    bad = [spec("g3", 50), spec("g4", 1000, debit=cnt(), credit=SRC, code="adjustment")]
    assert L.submit([bad]) == [["linked_event_failed", "exceeds_credits"]]
    assert balance(cnt()) == (0, 150, 0, 0)
    assert journal_rows() == 3
    # Independent groups in one batch: one failing does not stop the other.
    res = L.submit([[spec("h1", 10)], [spec("h2", 10**13)]])
    assert res == [["created"], ["amount_out_of_range"]]


def test_reversal_algebra(app: Flask) -> None:
    orig = spec("orig", 200)
    one(orig)
    assert one(spec("r0", 50, reverses_id=orig.id, debit=None, credit=None, code="reversal")) == "reason_required"
    assert one(spec("r1", 50, reverses_id=orig.id, debit=None, credit=None, code="reversal", memo="代学")) == "created"
    assert (
        one(spec("r2", 151, reverses_id=orig.id, debit=None, credit=None, code="reversal", memo="x"))
        == "reversal_exceeds_original"
    )
    r3 = spec("r3", None, reverses_id=orig.id, debit=None, credit=None, code="reversal", memo="the rest")
    assert one(r3) == "created"
    assert balance(cnt()) == (200, 200, 0, 0)
    # A reversal of a reversal nets back; the original is unchanged.
    assert (
        one(spec("rr", None, reverses_id=r3.id, debit=None, credit=None, code="reversal", memo="appeal")) == "created"
    )
    assert balance(cnt()) == (200, 350, 0, 0)


def test_replay_finds_a_tampered_cache(app: Flask) -> None:
    one(spec("a", 100))
    one(spec("b", 40, flags=T_PENDING))
    checked, bad = L.replay_check()
    assert checked == 1 and bad == []
    assert all(v == (0, 0) for v in L.ledger_totals().values())
    db.session.execute(
        text("UPDATE credit_accounts SET credits_posted = credits_posted + 1 WHERE kind = :k"),
        {"k": AccountKind.COUNTED.value},
    )
    db.session.commit()
    checked, bad = L.replay_check()
    assert len(bad) == 1 and bad[0].account == "WL_XS/counted/7/2026"


def test_replay_command_exits_1_on_mismatch(app: Flask) -> None:
    one(spec("a", 100))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["lms", "credit", "replay"]).exit_code == 0
    db.session.execute(text("UPDATE credit_accounts SET credits_posted = 5 WHERE kind = 'counted'"))
    db.session.commit()
    res = runner.invoke(args=["lms", "credit", "replay"])
    assert res.exit_code == 1 and "MISMATCH WL_XS/counted/7/2026" in res.output


def test_replay_counts_open_holds_posted_and_voided_ones(app: Flask) -> None:
    """The replay's sums, in the database, against the cache kept by the service."""
    one(spec("a", 300))
    one(spec("h1", 40, flags=T_PENDING))
    one(spec("h2", 25, flags=T_PENDING))
    one(spec("h3", 10, flags=T_PENDING))
    one(spec("p1", 30, flags=T_POST_PENDING, pending_id=L.transfer_id("h1"), debit=None, credit=None))
    one(spec("v2", None, flags=T_VOID_PENDING, pending_id=L.transfer_id("h2"), debit=None, credit=None))
    assert balance(cnt()) == (0, 330, 0, 10)
    sums = L.replay_sums(chunk=2)  # several seq ranges
    acct = db.session.execute(select(Account.id).where(Account.kind == AccountKind.COUNTED.value)).scalar_one()
    assert (sums[acct].dp, sums[acct].cp, sums[acct].dpe, sums[acct].cpe) == (0, 330, 0, 10)
    assert L.replay_check()[1] == []
    db.session.execute(text("UPDATE credit_accounts SET credits_pending = 0 WHERE kind = 'counted'"))
    db.session.commit()
    assert [m.account for m in L.replay_check()[1]] == ["WL_XS/counted/7/2026"]


def test_replay_command_finds_a_void_without_its_hold(app: Flask) -> None:
    one(spec("a", 100))
    d, c = db.session.execute(text("SELECT debit_account_id, credit_account_id FROM credit_transfers")).one()
    db.session.execute(
        text(
            "INSERT INTO credit_transfers (id, ledger_id, debit_account_id, credit_account_id, amount, flags, "
            "pending_id, code, effective_date, body_hash, recorded_at) VALUES ('v', 1, :d, :c, 5, :f, 'nope', "
            "'expiry', '2026-01-01', 'h', '2026-01-01 00:00:00')"
        ),
        {"d": d, "c": c, "f": T_VOID_PENDING},
    )
    db.session.commit()
    res = app.test_cli_runner().invoke(args=["lms", "credit", "replay"])
    assert res.exit_code == 1 and "without an earlier hold" in res.output


def test_transfer_as_dict_is_stable_and_has_no_database_ids(app: Flask) -> None:
    one(spec("a", 100, memo="课程"))
    from plugins.credit_bank.models import Transfer

    t = db.session.execute(select(Transfer)).scalar_one()
    d = L.transfer_as_dict(t)
    assert d["debit_account"] == "WL_XS/issuer/1/0" and d["credit_account"] == "WL_XS/counted/7/2026"
    assert d["amount"] == 100 and d["effective_date"] == "2026-05-01" and d["recorded_at"].endswith("Z")
    assert d == L.transfer_as_dict(t)


@pytest.mark.parametrize(
    "bad",
    [{"id": "not-a-uuid"}, {"amount": 0}, {"amount": -5}, {"credit": L.counted("JZ_XS", 7, 2026)}, {"credit": SRC}],
)
def test_malformed_requests_change_nothing(app: Flask, bad: dict[str, object]) -> None:
    s = spec("m", **{k: v for k, v in bad.items() if k != "id"})
    if "id" in bad:
        s = L.replace(s, id=bad["id"])
    assert one(s) not in ("created", "exists")
    assert journal_rows() == 0


def test_ids_with_array_syntax_are_sent_safely(app: Flask) -> None:
    """Id lists go to PostgreSQL as one quoted array literal: quotes, backslashes, commas and
    braces in a caller's id cannot split it or match another id."""
    real = spec("real", 100)
    assert one(real) == "created"
    weird = ['a"b', "c\\d", "e,f", "{g}", "", real.id + '",' + '"x']
    for i, w in enumerate(weird):
        assert one(L.replace(spec(f"w{i}", 100), id=w)) == "invalid_id"
    # Together in one batch: the idempotency read finds the real id only.
    res = L.create_transfers([*(L.replace(spec(f"w{i}", 100), id=w) for i, w in enumerate(weird)), real])
    assert [(r.result, r.reason) for r in res] == [("refused", "invalid_id")] * len(weird) + [("exists", None)]
    assert one(real) == "exists"


def test_every_journal_field_is_stored_as_given(app: Flask) -> None:
    """The journal rows keep each field byte for byte, in the order the batch decided them
    (PostgreSQL sends each column as one array literal: quotes, backslashes, commas, braces,
    newlines, NULLs and Chinese must come back unchanged)."""
    awkward = 'a "quoted", \\back\\slashed {braced} memo\n第二行 NULL'
    hold = spec("f-hold", 250, flags=T_PENDING, timeout_seconds=3600, memo=awkward, evidence_ref='claim:"7"')
    linked = [
        spec("f-l1", 30, flags=8, policy_version=3, actor_id=5, user_id=7, evidence_ref="event:1"),
        spec("f-l2", 40, memo="NULL", user_id=7),
    ]
    with time_machine.travel(dt.datetime(2026, 5, 2, 3, 4, 5, 123456, tzinfo=dt.UTC), tick=False):
        res = L.create_transfers([hold, *linked, spec("f-post", 200, flags=T_POST_PENDING, pending_id=hold.id)])
    assert [r.result for r in res] == ["ok"] * 4
    rows = db.session.execute(text("SELECT id FROM credit_transfers ORDER BY seq")).scalars().all()
    assert rows == [hold.id, linked[0].id, linked[1].id, L.transfer_id("f-post")]
    stored = {t.id: L.transfer_as_dict(t) for t in db.session.execute(select(L.Transfer)).scalars()}
    h = stored[hold.id]
    assert h["memo"] == awkward and h["evidence_ref"] == 'claim:"7"'
    assert h["timeout_at"] == "2026-05-02T04:04:05.123456Z" and h["recorded_at"] == "2026-05-02T03:04:05.123456Z"
    assert h["flags"] == T_PENDING and h["amount"] == 250 and h["body_hash"] == hold.body_hash()
    assert h["debit_account"] == SRC.key() and h["credit_account"] == cnt().key()
    l1, l2 = stored[linked[0].id], stored[linked[1].id]
    assert l1["group_id"] == l2["group_id"] == L.transfer_id(f"group:{linked[0].id},{linked[1].id}")
    assert (l1["policy_version"], l1["actor_id"], l1["user_id"], l1["evidence_ref"]) == (3, 5, 7, "event:1")
    assert l1["memo"] is None and l2["memo"] == "NULL" and l2["evidence_ref"] is None
    assert l1["flags"] == 8 and l1["effective_date"] == DAY.isoformat()
    post = stored[L.transfer_id("f-post")]
    assert (post["pending_id"], post["amount"], post["timeout_at"]) == (hold.id, 200, None)
    assert balance(cnt()) == (0, 270, 0, 0)


def test_a_refused_id_is_remembered_with_the_batch(app: Flask) -> None:
    """A balance refusal is written with the batch's other rows and answers the same later."""
    ok, too_much = spec("r-ok", 100), spec("r-no", 500, debit=cnt(), credit=SRC)
    res = L.create_transfers([ok, too_much])
    assert [(r.result, r.reason) for r in res] == [("ok", None), ("refused", "exceeds_credits")]
    failed = db.session.execute(text("SELECT id, error, body_hash FROM credit_failed_transfers")).all()
    assert [tuple(r) for r in failed] == [(too_much.id, "exceeds_credits", too_much.body_hash())]
    assert one(too_much) == "id_already_failed"
    assert balance(cnt()) == (0, 100, 0, 0)


@pytest.mark.backends("postgresql")
def test_a_group_is_two_statements_on_postgresql(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever its size and kinds, a group sends one statement to read and lock and one to
    write (and none per transfer: resolutions and reversal sums come with the first)."""
    import psycopg

    assert one(spec("warm", 1)) == "created"  # reference ledgers and accounts exist now
    assert one(spec("s-hold", 50, flags=T_PENDING)) == "created"
    assert one(spec("s-orig", 60)) == "created"
    sent: list[str] = []
    original = psycopg.Cursor.execute

    def counted(self: psycopg.Cursor, query: object, *a: object, **kw: object) -> object:  # type: ignore[type-arg]
        sent.append(str(query)[:40])
        return original(self, query, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    batch = [
        *(spec(f"s-{i}", 10, credit=cnt(100 + i)) for i in range(5)),
        spec("s-post", None, flags=T_POST_PENDING, pending_id=L.transfer_id("s-hold"), debit=None, credit=None),
        spec("s-rev", 20, reverses_id=L.transfer_id("s-orig"), memo="代学", debit=None, credit=None),
    ]
    res = L.apply(L.link_groups(batch)[0])
    assert all(r == ["created"] for r in res), res
    assert len(sent) == 2, sent
    assert sent[0].startswith("SELECT * FROM credit_prepare")
    assert sent[1].startswith("WITH j AS (INSERT INTO credit_transfers")
