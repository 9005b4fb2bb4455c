"""A hypothesis state machine: every ledger operation against an in-memory model and the real service.

The model mirrors TigerBeetle's semantics in a few lines of Python (the "auditor"). Each step
runs the same operation on both and compares the answer; after each step the invariants are
checked on the database: every ledger sums to zero, no counted account is negative, replaying
the journal reproduces every cached balance, each cadre's balances equal the model's, and for
capped earnings counted + overflow = earned (and each split is min(amount, cap - balance)).

Examples share one database per test (the journal cannot be emptied: it is append-only), so
each example uses its own users, issuers and years; the global invariants cover all of them.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from lms_core.extensions import db
from plugins.credit_bank import ledger as L
from plugins.credit_bank import policy as P
from plugins.credit_bank import services as S
from plugins.credit_bank.models import T_PENDING, T_POST_PENDING, T_VOID_PENDING, Account

CAP = 500  #: yearly cap on counted 网络培训学时 in this test's policy
RATE = (2, 3)  #: conversion WL → ZJ
EXAMPLE = itertools.count(1)


class Model:
    """The auditor: sums per account key, holds, reversals, failed ids, closed accounts."""

    def __init__(self) -> None:
        self.acct: dict[str, list[int]] = {}
        self.closed: set[str] = set()
        self.transfers: dict[str, dict[str, Any]] = {}
        self.failed: set[str] = set()
        self.resolved: set[str] = set()
        self.reversed: dict[str, int] = {}
        self.earned: dict[str, int] = {}  #: user key → Σ capped earnings
        self.resolved_how: dict[str, str] = {}

    def touch(self, *refs: L.AccountRef) -> None:
        """The service creates every account a request names, even when it refuses it."""
        for r in refs:
            self.a(r.key())

    def a(self, key: str) -> list[int]:
        return self.acct.setdefault(key, [0, 0, 0, 0])

    @staticmethod
    def cadre(key: str) -> bool:
        return "/counted/" in key or "/overflow/" in key

    def can_debit(self, key: str, amount: int) -> bool:
        if not self.cadre(key):
            return True
        dp, cp, dpe, _ = self.a(key)
        return dp + dpe + amount <= cp

    def move(self, debit: str, credit: str, amount: int, pending: bool = False) -> str | None:
        if debit in self.closed or credit in self.closed:
            return "account_closed"
        if not self.can_debit(debit, amount):
            return "exceeds_credits"
        i = 2 if pending else 0
        self.a(debit)[i] += amount
        self.a(credit)[i + 1] += amount
        return None


@st.composite
def amounts(draw: Any) -> int:
    return draw(st.integers(min_value=1, max_value=400))


class LedgerMachine(RuleBasedStateMachine):
    posted = Bundle("posted")
    holds = Bundle("holds")
    client: Any = None  #: a test client and the Bearer header of a token with the transfer scope
    auth: dict[str, str] = {}

    def __init__(self) -> None:
        super().__init__()
        self.m = Model()
        self.n = next(EXAMPLE)
        self.year = 3000 + 2 * self.n  # this example's two years: year and year + 1
        self.users = [self.n * 10 + i for i in range(3)]
        self.src = L.issuer("WL_XS", 1000 + self.n)
        self.seq = itertools.count()
        self.specs: list[L.TransferSpec] = []

    def key(self) -> str:
        return f"sm:{self.n}:{next(self.seq)}"

    def run(self, spec: L.TransferSpec) -> str:
        self.specs.append(spec)
        return L.submit([[spec]])[0][0]

    def expect(self, spec: L.TransferSpec, got: str, error: str | None) -> None:
        want = "created" if error is None else error
        assert got == want, (spec, got, want)
        if error is None:
            self.m.transfers[spec.id] = {"spec": spec}
        elif error in L.TRANSIENT:
            self.m.failed.add(spec.id)

    # ------------------------------------------------------------------ rules

    @rule(target=posted, u=st.integers(0, 2), y=st.integers(0, 1), amount=amounts())
    def post(self, u: int, y: int, amount: int) -> Any:
        acct = L.counted("WL_XS", self.users[u], self.year + y)
        spec = L.TransferSpec(
            id=L.transfer_id(self.key()),
            code="course_complete",
            effective_date=dt.date(2026, 1, 1),
            amount=amount,
            debit=self.src,
            credit=acct,
            user_id=self.users[u],
        )
        self.m.touch(self.src, acct)
        err = self.m.move(self.src.key(), acct.key(), amount)
        self.expect(spec, self.run(spec), err)
        if err is None:
            self.m.transfers[spec.id]["eff"] = (self.src, acct, amount)
        return spec.id if err is None else None

    @rule(u=st.integers(0, 2), y=st.integers(0, 1), amount=amounts())
    def take(self, u: int, y: int, amount: int) -> None:
        """A debit of a counted account (e.g. an adjustment): refused if it would go negative."""
        acct = L.counted("WL_XS", self.users[u], self.year + y)
        spec = L.TransferSpec(
            id=L.transfer_id(self.key()),
            code="adjustment",
            effective_date=dt.date(2026, 1, 1),
            amount=amount,
            debit=acct,
            credit=self.src,
            user_id=self.users[u],
            memo="test",
        )
        self.m.touch(self.src, acct)
        err = self.m.move(acct.key(), self.src.key(), amount)
        self.expect(spec, self.run(spec), err)

    @rule(target=holds, u=st.integers(0, 2), y=st.integers(0, 1), amount=amounts())
    def pending(self, u: int, y: int, amount: int) -> Any:
        acct = L.counted("WL_XS", self.users[u], self.year + y)
        spec = L.TransferSpec(
            id=L.transfer_id(self.key()),
            code="offline_class",
            effective_date=dt.date(2026, 1, 1),
            amount=amount,
            debit=self.src,
            credit=acct,
            flags=T_PENDING,
            user_id=self.users[u],
        )
        self.m.touch(self.src, acct)
        err = self.m.move(self.src.key(), acct.key(), amount, pending=True)
        self.expect(spec, self.run(spec), err)
        return spec.id if err is None else None

    def _hold(self, hold: str) -> L.TransferSpec:
        return self.m.transfers[hold]["spec"]  # type: ignore[no-any-return]

    @rule(target=posted, hold=holds, part=st.integers(0, 100))
    def post_pending(self, hold: str | None, part: int) -> Any:
        if hold is None:
            return None
        h = self._hold(hold)
        assert h.amount is not None and h.debit is not None and h.credit is not None
        amount = max(1, h.amount * part // 100)
        spec = L.TransferSpec(
            id=L.transfer_id(self.key()),
            code="offline_class",
            effective_date=h.effective_date,
            amount=amount,
            flags=T_POST_PENDING,
            pending_id=hold,
            user_id=h.user_id,
        )
        if hold in self.m.resolved:
            err: str | None = (
                "pending_transfer_already_posted"
                if self.m.resolved_how[hold] == "post"
                else "pending_transfer_already_voided"
            )
        elif h.debit.key() in self.m.closed or h.credit.key() in self.m.closed:
            err = "account_closed"
        else:
            err = None
            self.m.resolved.add(hold)
            self.m.resolved_how[hold] = "post"
            self.m.a(h.debit.key())[2] -= h.amount
            self.m.a(h.credit.key())[3] -= h.amount
            self.m.a(h.debit.key())[0] += amount
            self.m.a(h.credit.key())[1] += amount
        self.expect(spec, self.run(spec), err)
        if err is None:
            self.m.transfers[spec.id]["eff"] = (h.debit, h.credit, amount)
        return spec.id if err is None else None

    @rule(hold=holds)
    def void_pending(self, hold: str | None) -> None:
        if hold is None:
            return
        h = self._hold(hold)
        assert h.amount is not None and h.debit is not None and h.credit is not None
        spec = L.TransferSpec(
            id=L.transfer_id(self.key()),
            code="offline_class",
            effective_date=h.effective_date,
            flags=T_VOID_PENDING,
            pending_id=hold,
            user_id=h.user_id,
        )
        if hold in self.m.resolved:
            err: str | None = (
                "pending_transfer_already_posted"
                if self.m.resolved_how[hold] == "post"
                else "pending_transfer_already_voided"
            )
        else:
            err = None
            self.m.resolved.add(hold)
            self.m.resolved_how[hold] = "void"
            self.m.a(h.debit.key())[2] -= h.amount
            self.m.a(h.credit.key())[3] -= h.amount
        self.expect(spec, self.run(spec), err)

    @rule(original=consumes(posted), full=st.booleans(), part=st.integers(1, 100))
    def reverse(self, original: str | None, full: bool, part: int) -> None:
        if original is None:
            return
        o = self.m.transfers[original]["spec"]
        o_debit, o_credit, o_amount = self.m.transfers[original]["eff"]
        done = self.m.reversed.get(original, 0)
        amount = None if full else max(1, o_amount * part // 100)
        spec = L.TransferSpec(
            id=L.transfer_id(self.key()),
            code="reversal",
            effective_date=o.effective_date,
            amount=amount,
            reverses_id=original,
            user_id=o.user_id,
            memo="代学代考",
        )
        want = o_amount - done if amount is None else amount
        if want <= 0 or done + want > o_amount:
            err: str | None = "reversal_exceeds_original"
        else:
            err = self.m.move(o_credit.key(), o_debit.key(), want)
        if err is None:
            self.m.reversed[original] = done + want
        self.expect(spec, self.run(spec), err)

    @rule(u=st.integers(0, 2), y=st.integers(0, 1), amount=amounts())
    def cap(self, u: int, y: int, amount: int) -> None:
        """Earn through the policy's yearly cap: counted up to the cap, the rest overflows (linked)."""
        uid, year = self.users[u], self.year + y
        c, o = L.counted("WL_XS", uid, year), L.overflow("WL_XS", uid, year)
        self.m.touch(c, o, self.src)
        res = S.earn(
            key=self.key(),
            user_id=uid,
            ledger="WL_XS",
            amount=amount,
            day=dt.date(year, 6, 1),
            code="course_complete",
            issuer=1000 + self.n,
            evidence_ref="sm-earn",
        )
        dp, cp, dpe, cpe = self.m.a(c.key())
        room = min(amount, max(0, CAP - (cp + cpe - dp)))
        if (room > 0 and c.key() in self.m.closed) or (amount - room > 0 and o.key() in self.m.closed):
            assert res.status == "account_closed", res
            return
        assert res.status == "created" and (res.counted, res.overflow) == (room, amount - room), (res, room)
        self.m.a(self.src.key())[0] += amount
        self.m.a(c.key())[1] += room
        self.m.a(o.key())[1] += amount - room
        self.m.earned[f"{uid}/{year}"] = self.m.earned.get(f"{uid}/{year}", 0) + amount

    @rule(u=st.integers(0, 2), y=st.integers(0, 1), amount=amounts(), to=st.sampled_from(["ZJ_XS", "XF"]))
    def convert(self, u: int, y: int, amount: int, to: str) -> None:
        """学时 -> another 学时 type, or -> 学分 (the XF ledger): the same linked pair."""
        uid, year = self.users[u], self.year + y
        wl, zj = L.counted("WL_XS", uid, year), L.counted(to, uid, year)
        got = S.convert(
            key=self.key(),
            user_id=uid,
            year=year,
            from_ledger="WL_XS",
            to_ledger=to,
            amount=amount,
            num=RATE[0],
            den=RATE[1],
        )
        out = amount * RATE[0] // RATE[1]
        pool_wl, pool_zj = L.issuer("WL_XS", S.CONVERSION_POOL).key(), L.issuer(to, S.CONVERSION_POOL).key()
        if out <= 0:
            assert got == ["conversion_rounds_to_zero"]
            return
        self.m.touch(wl, zj, L.issuer("WL_XS", S.CONVERSION_POOL), L.issuer(to, S.CONVERSION_POOL))
        if wl.key() in self.m.closed:
            assert got == ["account_closed", "linked_event_failed"], got
            return
        if not self.m.can_debit(wl.key(), amount):
            assert got == ["exceeds_credits", "linked_event_failed"], got
            return
        if zj.key() in self.m.closed:
            assert got == ["linked_event_failed", "account_closed"], got
            return
        assert got == ["created", "created"], got
        self.m.move(wl.key(), pool_wl, amount)
        self.m.move(pool_zj, zj.key(), out)

    @rule(y=st.integers(0, 1))
    def close_period(self, y: int) -> None:
        year = self.year + y
        S.close_year(year)
        for key, sums in list(self.m.acct.items()):
            if not key.endswith(f"/{year}") or not self.m.cadre(key) or key in self.m.closed:
                continue  # a closed account is skipped by a second close
            if "/counted/" in key:
                left = sums[1] - sums[0] - sums[2]
                if left > 0:
                    sums[0] += left
                    self.m.a(f"{key.split('/')[0]}/expired/0/0")[1] += left
            self.m.closed.add(key)

    @rule(data=st.data())
    def retry_same(self, data: Any) -> None:
        done = [s for s in self.specs if s.id in self.m.transfers or s.id in self.m.failed]
        if not done:
            return
        spec = data.draw(st.sampled_from(done))
        want = "exists" if spec.id in self.m.transfers else "id_already_failed"
        assert L.submit([[spec]])[0][0] == want

    @rule(data=st.data())
    def retry_changed(self, data: Any) -> None:
        done = [s for s in self.specs if s.id in self.m.transfers and s.amount is not None]
        if not done:
            return
        spec = data.draw(st.sampled_from(done))
        changed = L.replace(spec, amount=(spec.amount or 0) + 1)
        assert L.submit([[changed]])[0][0] == "exists_with_different_amount"

    @rule(
        moves=st.lists(
            st.tuples(st.booleans(), st.integers(0, 2), st.integers(0, 1), amounts(), st.booleans()),
            min_size=1,
            max_size=6,
        ),
        via_http=st.booleans(),
    )
    def batch(self, moves: list[tuple[bool, int, int, int, bool]], via_http: bool) -> None:
        """A batch (posts and debits, some linked to the next) through ``create_transfers`` or
        through ``POST /api/v1/credit/transfers`` (the group-commit writer): per-item answers,
        chains all or nothing, a chain left open at the end refused."""
        specs = []
        for credit_it, u, y, amount, linked in moves:
            acct = L.counted("WL_XS", self.users[u], self.year + y)
            debit, credit = (self.src, acct) if credit_it else (acct, self.src)
            specs.append(
                L.TransferSpec(
                    id=L.transfer_id(self.key()),
                    code="course_complete" if credit_it else "adjustment",
                    effective_date=dt.date(2026, 1, 1),
                    amount=amount,
                    debit=debit,
                    credit=credit,
                    flags=L.T_LINKED if linked else 0,
                    user_id=self.users[u],
                    memo=None if credit_it else "test",
                )
            )
        # The model: chains in order, each all or nothing.
        want: list[tuple[str, str | None]] = []
        chain: list[L.TransferSpec] = []
        for i, spec in enumerate(specs):
            chain.append(spec)
            if spec.flags & L.T_LINKED and i < len(specs) - 1:
                continue
            if spec.flags & L.T_LINKED:  # open at the end of the batch: never submitted
                want += [("refused", "linked_event_chain_open")] * len(chain)
                break
            for c in chain:  # the service creates every account a submitted item names
                assert c.debit is not None and c.credit is not None
                self.m.touch(c.debit, c.credit)
            saved = {k: list(v) for k, v in self.m.acct.items()}
            errors = []
            for c in chain:
                assert c.debit is not None and c.credit is not None and c.amount is not None
                errors.append(self.m.move(c.debit.key(), c.credit.key(), c.amount))
                if errors[-1]:
                    break
            if errors[-1] is None:
                want += [("ok", None)] * len(chain)
                for c in chain:
                    self.m.transfers[c.id] = {"spec": c}
            else:
                self.m.acct = saved
                bad = len(errors) - 1
                want += [("refused", errors[-1] if j == bad else "linked_event_failed") for j in range(len(chain))]
                if errors[-1] in L.TRANSIENT:
                    self.m.failed.add(chain[bad].id)
            chain = []
        if via_http:
            db.session.commit()  # end this thread's read transaction: the writer thread commits
            body = {"transfers": [_as_json(sp) for sp in specs]}
            r = self.client.post("/api/v1/credit/transfers", json=body, headers=self.auth)
            assert r.status_code == 200, r.get_data(as_text=True)
            got = [(x["result"], x["reason"]) for x in r.json["results"]]
        else:
            got = [(x.result, x.reason) for x in L.create_transfers(specs)]
        assert got == want, (specs, got, want)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def figures_from_accounts_equal_the_journal_fold(self) -> None:
        """The O(1) balances (account rows) equal the cadre's journal folded line by line."""
        from plugins.credit_bank import queries

        for u in self.users:
            fast = queries.figures(u)
            slow = {k: v for k, v in queries.figures_from_journal(u).items() if k in fast or _nonzero(v)}
            assert fast == slow, (u, fast, slow)

    @invariant()
    def ledgers_sum_to_zero(self) -> None:
        assert all(v == (0, 0) for v in L.ledger_totals().values()), L.ledger_totals()

    @invariant()
    def balances_equal_the_model_and_never_negative(self) -> None:
        rows = db.session.execute(db.select(Account).where(Account.owner_id.in_(self.users))).scalars().all()
        seen = {}
        for a in rows:
            key = f"{L.ledger_code(a.ledger_id)}/{a.kind.value}/{a.owner_id}/{a.period}"
            seen[key] = [a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending]
            assert a.debits_posted + a.debits_pending <= a.credits_posted, key
        for key, sums in self.m.acct.items():
            if self.m.cadre(key):
                assert seen.get(key, [0, 0, 0, 0]) == sums, (key, seen.get(key), sums)
        sys = L.system_balances()
        for key, sums in self.m.acct.items():
            # The expiry sink and the conversion pools are shared by every example.
            shared = key.endswith("/expired/0/0") or key.split("/")[2] == str(S.CONVERSION_POOL)
            if not self.m.cadre(key) and not shared:
                assert sys.get(key, 0) == sums[1] - sums[0], key

    @invariant()
    def replay_reproduces_balances(self) -> None:
        _, mismatches = L.replay_check()
        assert mismatches == []

    @invariant()
    def counted_plus_overflow_is_earned(self) -> None:
        """The journal's counted and overflow legs of capped earnings add up to what was earned.

        (How much of each earning counted, ``min(amount, cap - balance)``, is asserted by the
        ``cap`` rule itself against the model: other postings and debits move the balance, so
        the sum of counted legs alone may legitimately exceed the cap.)
        """
        t = L.TRANSFERS
        for key, earned in self.m.earned.items():
            uid, year = (int(x) for x in key.split("/"))
            total = db.session.execute(
                db.select(db.func.sum(t.c.amount)).where(
                    t.c.user_id == uid,
                    t.c.evidence_ref == "sm-earn",
                    t.c.reverses_id.is_(None),
                    t.c.effective_date == dt.date(year, 6, 1),
                )
            ).scalar_one()
            assert int(total or 0) == earned, (key, total, earned)


def _nonzero(f: Any) -> bool:
    return bool(f.posted or f.pending or f.overflow or f.closed_out)


def _as_json(spec: L.TransferSpec) -> dict[str, Any]:
    assert spec.debit is not None and spec.credit is not None
    return {
        "id": spec.id,
        "code": spec.code,
        "effective_date": spec.effective_date.isoformat(),
        "amount": spec.amount,
        "debit_account": spec.debit.key(),
        "credit_account": spec.credit.key(),
        "flags": spec.flags,
        "user_id": spec.user_id,
        "memo": spec.memo,
    }


def test_ledger_state_machine(app: Flask, tree: Any) -> None:
    from lms_core.accounts import services as accounts
    from lms_core.accounts.models import Role, TokenScope
    from plugins.credit_bank import group_commit
    from plugins.credit_bank.models import SCOPE_TRANSFERS, TokenScopeGrant
    from tests.factories import UserFactory, grant

    site = UserFactory(org_unit=tree.city, username="site")
    grant(site, Role.SITE_ADMIN, tree.city)
    token, plain = accounts.create_token(site, "sm", scope=TokenScope.READ_WRITE)
    db.session.add(TokenScopeGrant(token_id=token.id, scope=SCOPE_TRANSFERS))
    db.session.commit()
    LedgerMachine.client = app.test_client()
    LedgerMachine.auth = {"Authorization": f"Bearer {plain}"}
    P.add_version({"caps": {"WL_XS": {"per_year": CAP}}}, dt.date(2000, 1, 1), None)
    try:
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(
                max_examples=int(__import__("os").environ.get("LMS_TEST_SM_EXAMPLES", "15")),
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        group_commit.stop(app)
