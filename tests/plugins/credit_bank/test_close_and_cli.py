"""Year-end close (carry forward and expiry) and the policy CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import Flask

from plugins.credit_bank import ledger as L
from plugins.credit_bank import policy as P
from plugins.credit_bank import queries
from plugins.credit_bank import services as S
from tests.plugins.credit_bank.helpers import grant_credit


def test_close_carries_forward_up_to_the_cap_and_expires_the_rest(app: Flask) -> None:
    P.add_version({"year_end": {"mode": "carry_forward", "carry_cap_centi": 1000}}, dt.date(2025, 1, 1), None)
    grant_credit(7, 3000, "a", day=dt.date(2025, 5, 1))
    stats = S.close_year(2025)
    assert stats == {"accounts": 1, "carried": 1000, "expired": 2000}
    fig = queries.figures(7)
    # The year's progress still counts what was earned in it; the balance moved on.
    assert fig[("WL_XS", 2025)].posted == 0 and fig[("WL_XS", 2025)].earned_for_year == 3000
    assert fig[("WL_XS", 2026)].posted == 1000
    # Posting into the closed year is refused; the id stays failed.
    spec = L.TransferSpec(
        id=L.transfer_id("late"),
        code="adjustment",
        effective_date=dt.date(2025, 6, 1),
        amount=5,
        debit=L.issuer("WL_XS"),
        credit=L.counted("WL_XS", 7, 2025),
    )
    assert L.submit([[spec]]) == [["account_closed"]]
    assert S.close_year(2025)["accounts"] == 0  # idempotent
    assert L.replay_check()[1] == []
    assert all(v == (0, 0) for v in L.ledger_totals().values())


def test_policy_and_close_cli(app: Flask, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    shown = runner.invoke(args=["lms", "credit", "policy", "show"])
    assert shown.exit_code == 0 and '"amount_centi": 9000' in shown.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"caps": {"NOPE": {}}}', encoding="utf-8")
    assert runner.invoke(args=["lms", "credit", "policy", "set", str(bad), "--effective", "2026-01-01"]).exit_code == 1
    good = tmp_path / "good.json"
    good.write_text('{"offline_day_centi": 800}', encoding="utf-8")
    res = runner.invoke(args=["lms", "credit", "policy", "set", str(good), "--effective", "2026-01-01"])
    assert res.exit_code == 0 and "version 2" in res.output
    assert P.rules_of(P.in_force(dt.date(2026, 2, 1)))["offline_day_centi"] == 800
    grant_credit(8, 100, "b", day=dt.date(2024, 5, 1))
    res = runner.invoke(args=["lms", "credit", "close-year", "2024"])
    assert res.exit_code == 0 and "expired 1.00" in res.output
