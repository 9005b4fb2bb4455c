"""A transcript lists the 学分 ledger beside the 学时 ledgers, and still verifies offline."""

from __future__ import annotations

from flask import Flask

from plugins.credit_bank import services as S
from plugins.credit_bank.proofs import pdf
from plugins.credit_bank.transcripts import services
from tests import factories
from tests.plugins.credit_bank.transcripts.conftest import ISSUER
from tests.plugins.credit_bank.transcripts.helpers import post


def test_a_conversion_to_credits_is_on_the_transcript_and_verifies(app: Flask) -> None:
    cadre = factories.UserFactory(full_name="王小明")
    post(cadre, f"c1-{cadre.id}", 500)
    got = S.convert(
        key=f"xf-{cadre.id}", user_id=cadre.id, year=2025, from_ledger="WL_XS", to_ledger="XF", amount=300, num=1, den=1
    )
    assert got == ["created", "created"]
    cred = services.issue_transcript(cadre, 2025)
    rep = pdf.verify_file(cred.pdf, ISSUER.public_key())
    assert rep.ok, rep.checks
    p = rep.payload
    assert p is not None
    assert {"code": "XF", "name": "学分"} in p["ledgers"]
    balances = {b["ledger"]: b["posted"] for b in p["balances"]}
    assert balances == {"WL_XS": 200, "XF": 300}
