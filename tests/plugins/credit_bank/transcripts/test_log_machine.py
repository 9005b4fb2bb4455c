"""Hypothesis state machine: ledger operations, checkpoints and transcripts, against the real service.

After every step: replay re-hashes the journal into the same Merkle roots the logs hold and
every signed checkpoint matches (``check_logs`` finds nothing), every issued transcript still
verifies offline, and its checkpoints are proven consistent with the latest ones.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from lms_core.extensions import db
from plugins.credit_bank import ledger as L
from plugins.credit_bank.models import T_PENDING, T_POST_PENDING, T_VOID_PENDING, Account, AccountKind
from plugins.credit_bank.proofs import credential as cr
from plugins.credit_bank.proofs import pdf
from plugins.credit_bank.transcripts import log, services
from tests import factories
from tests.plugins.credit_bank.transcripts.conftest import ISSUER
from tests.plugins.credit_bank.transcripts.helpers import DAY

_counter = itertools.count()


def test_logs_replay_and_transcripts_hold_under_random_operations(app: Flask) -> None:
    users = [factories.UserFactory() for _ in range(3)]
    db.session.commit()

    class Machine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.holds: list[str] = []
            self.posted: list[str] = []
            self.issued: list[Any] = []

        def _submit(self, spec: L.TransferSpec) -> str:
            return L.submit([[spec]])[0][0]

        @rule(who=st.integers(0, 2), amount=st.integers(1, 500), pending=st.booleans())
        def earn(self, who: int, amount: int, pending: bool) -> None:
            user = users[who]
            key = f"m{next(_counter)}"
            spec = L.TransferSpec(
                id=L.transfer_id(key),
                code="course_complete",
                effective_date=DAY,
                amount=amount,
                debit=L.issuer("WL_XS"),
                credit=L.counted("WL_XS", user.id, 2025),
                user_id=user.id,
                memo=f"课程 {key}",
                flags=T_PENDING if pending else 0,
            )
            assert self._submit(spec) == "created"
            (self.holds if pending else self.posted).append(spec.id)

        @rule(data=st.data(), post=st.booleans())
        def resolve(self, data: st.DataObject, post: bool) -> None:
            if not self.holds:
                return
            held = self.holds.pop(data.draw(st.integers(0, len(self.holds) - 1)))
            spec = L.TransferSpec(
                id=L.transfer_id(f"r{next(_counter)}"),
                code="offline_class",
                effective_date=DAY,
                flags=T_POST_PENDING if post else T_VOID_PENDING,
                pending_id=held,
            )
            assert self._submit(spec) == "created"

        @rule(data=st.data())
        def reverse(self, data: st.DataObject) -> None:
            if not self.posted:
                return
            original = self.posted.pop(data.draw(st.integers(0, len(self.posted) - 1)))
            spec = L.TransferSpec(
                id=L.transfer_id(f"v{next(_counter)}"),
                code="reversal",
                effective_date=DAY,
                reverses_id=original,
                memo="撤销",
            )
            assert self._submit(spec) in ("created", "exceeds_credits")

        @rule()
        def checkpoint(self) -> None:
            log.checkpoint_now()

        @rule(who=st.integers(0, 2))
        def issue(self, who: int) -> None:
            cred = services.issue_transcript(users[who], 2025)
            self.issued.append(cred)
            # The transcript's figures are the ledger's own balances (nothing posts meanwhile).
            acct = db.session.scalars(
                select(Account).where(
                    Account.owner_id == users[who].id, Account.period == 2025, Account.kind == AccountKind.COUNTED
                )
            ).first()
            payload = cr.verify_bundle(json.loads(cred.bundle), ISSUER.public_key()).payload
            assert payload is not None
            got = {b["ledger"]: (b["posted"], b["pending"]) for b in payload["balances"]}
            if acct is None:
                assert got == {}
            else:
                db.session.refresh(acct)
                assert got["WL_XS"] == (acct.balance, acct.credits_pending - acct.debits_pending)

        @invariant()
        def replay_finds_nothing(self) -> None:
            out: list[str] = []
            assert log.check_logs(out.append) == 0, out

        @invariant()
        def transcripts_verify_and_logs_only_grow(self) -> None:
            for cred in self.issued[-2:]:
                rep = pdf.verify_file(cred.pdf, ISSUER.public_key())
                assert rep.ok, rep.checks
                assert rep.bundle is not None and rep.payload is not None
                for cp in (rep.bundle["credential_log"]["checkpoint"], rep.payload["journal"]["checkpoint"]):
                    result = log.consistency_with_latest(cp)
                    assert result is None or result[0]

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=6, stateful_step_count=8, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
