"""The 学分 ledger (XF): 学时 -> 学分 by the policy's conversions, through the real ledger.

Counted 学时 leave through the 学时 conversion pool and 学分 arrive from the 学分 pool
(two linked transfers, floor(a·num/den)), recording the rate and the policy version; a
preview's key makes a resent form post once; a per-year cap of XF refuses what would pass
it; an auditor reverses both legs with a reason. 学分 show on the credit page, the JSON API
(with their unit) and never in the yearly 学时.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from flask import Flask

from lms_core.accounts.models import RankBand, Role
from lms_core.extensions import db
from plugins.credit_bank import claims, queries
from plugins.credit_bank import ledger as L
from plugins.credit_bank import policy as P
from plugins.credit_bank.models import Ledger, Transfer
from tests.factories import UserFactory, grant
from tests.plugins.credit_bank.helpers import grant_credit

NOON = dt.datetime(2026, 5, 10, 4, tzinfo=dt.UTC)
#: Zhengzhou: 1 hour of online study -> 1 学分; classroom hours at half (a local choice).
RULES = [{"from": "WL_XS", "to": "XF", "num": 1, "den": 1}, {"from": "JZ_XS", "to": "XF", "num": 1, "den": 2}]


@pytest.fixture
def people(app: Flask, tree):  # type: ignore[no-untyped-def]
    cadre = UserFactory(org_unit=tree.town_a, username="cadre", full_name="李明", rank_band=RankBand.TOWNSHIP)
    admin_a = UserFactory(org_unit=tree.county_a, username="admin_a")
    grant(admin_a, Role.ORG_ADMIN, tree.county_a)
    auditor_a = UserFactory(org_unit=tree.county_a, username="auditor_a")
    grant(auditor_a, Role.AUDITOR, tree.county_a)
    db.session.commit()
    grant_credit(cadre.id, 500, "wl", day=dt.date(2026, 3, 1))
    grant_credit(cadre.id, 125, "jz", day=dt.date(2026, 3, 2), ledger="JZ_XS")
    return {"cadre": cadre}


def _login(client, username: str) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import login

    client.post("/logout")
    assert login(client, username).status_code == 302


def _policy(**extra) -> int:  # type: ignore[no-untyped-def]
    return P.add_version({"conversions": RULES, **extra}, dt.date(2026, 1, 1), None, "学时折算学分").version


def _preview_key(client, url: str, data: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    r = client.post(url, data=data | {"action": "preview"})
    assert r.status_code == 200, r.get_data(as_text=True)[-1500:]
    m = re.search(r'name="key" value="([0-9a-f-]{36})"', r.get_data(as_text=True))
    assert m is not None
    return m.group(1)


def _conversions() -> list[tuple[str, str, int, str | None]]:
    rows = db.session.query(Transfer).filter(Transfer.code.like("conversion%")).order_by(Transfer.seq).all()
    return [(t.code, L.ledger_code(t.ledger_id), t.amount, t.memo) for t in rows]


def test_the_xf_ledger_is_reference_data_named_in_chinese(app: Flask) -> None:
    from plugins.credit_bank import labels

    L.ledger_id("XF")
    assert db.session.get(Ledger, 5).code == "XF"  # type: ignore[union-attr]
    assert labels.ledger_name("XF") == "学分" and labels.unit_name("XF") == "学分"
    assert labels.unit_name("WL_XS") == "学时" and labels.unit_code("XF") == "0.01 学分"


@pytest.mark.parametrize(
    ("doc", "text"),
    [
        ({"conversions": [{"from": "XF", "to": "WL_XS", "num": 1, "den": 1}]}, "学分不能折回学时"),
        (
            {"requirements": [{"key": "k", "ledgers": ["WL_XS", "XF"], "amount_centi": 1, "window": "calendar_year"}]},
            "学分与学时不能",
        ),
    ],
)
def test_policy_refuses_xf_as_a_source_and_mixed_units(app: Flask, doc, text) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(P.PolicyError) as exc:
        P.validate(doc)
    assert text in str(exc.value)
    # 学分 alone may be required (Nankang: 30 学分 a year).
    P.validate({"requirements": [{"key": "xf", "ledgers": ["XF"], "amount_centi": 3000, "window": "calendar_year"}]})


def test_convert_hours_to_credits_shows_everywhere_and_replays(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    cadre = people["cadre"]
    url = f"/credit/users/{cadre.id}/convert"
    with time_machine.travel(NOON, tick=True):
        version = _policy()
        _login(client, "admin_a")
        page = client.get(url).get_data(as_text=True)
        assert "集中培训学时 → 学分：每 2 学时折算为 1 学分" in page
        data = {"rule": "1", "year": "2026", "amount": "1.25"}
        key = _preview_key(client, url, data)
        saved = client.post(url, data=data | {"action": "save", "key": key})
        assert saved.status_code == 303
        # 1.25 学时 at 1/2 is 0.625 学分: rounded down in the bank's favour.
        assert _conversions() == [("conversion_out", "JZ_XS", 125, "1/2"), ("conversion_in", "XF", 62, "1/2")]
        assert {t.policy_version for t in db.session.query(Transfer).filter(Transfer.code.like("conversion%"))} == {
            version
        }
        data = {"rule": "0", "year": "2026", "amount": "3"}
        key = _preview_key(client, url, data)
        assert client.post(url, data=data | {"action": "save", "key": key}).status_code == 303
        # The same preview sent again (a double click, a resent form) converts nothing more.
        again = client.post(url, data=data | {"action": "save", "key": key}, follow_redirects=True)
        assert "未再重复折算" in again.get_data(as_text=True)
        assert len(_conversions()) == 4
        fig = queries.figures(cadre.id)
        assert fig[("XF", 2026)].posted == 362 and fig[("WL_XS", 2026)].posted == 200
        assert fig[("JZ_XS", 2026)].posted == 0
        # The yearly 学时 (dashboard) counts 学时 only: the converted hours were spent.
        assert queries.year_summary(cadre.id, 2026)["posted"] == 200
        mine = client.get(f"/credit/users/{cadre.id}?year=2026").get_data(as_text=True)
        row = re.search(r'<tr data-ledger="XF">(.*?)</tr>', mine, re.S)
        assert row is not None and "学分" in row.group(1) and "3.62" in row.group(1)
        _login(client, "cadre")
        api = client.get("/api/v1/me/credits?year=2026").get_json()
        xf = next(b for b in api["balances"] if b["ledger"] == "XF")
        assert xf["posted"] == 362 and xf["unit"] == "0.01 学分" and xf["name"] == "学分"
        assert {ln["unit"] for ln in api["statement"] if ln["ledger"] == "XF"} == {"0.01 学分"}
        assert next(b for b in api["balances"] if b["ledger"] == "WL_XS")["unit"] == "0.01 学时"
    totals = L.ledger_totals()
    assert all(v == (0, 0) for v in totals.values()), totals
    _, mismatches = L.replay_check()
    assert mismatches == []


def test_a_yearly_cap_on_credits_refuses_what_would_pass_it(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    cadre = people["cadre"]
    url = f"/credit/users/{cadre.id}/convert"
    with time_machine.travel(NOON, tick=True):
        _policy(caps={"XF": {"per_year": 250}})
        _login(client, "admin_a")
        r = client.post(url, data={"rule": "0", "year": "2026", "amount": "3", "action": "save"})
        html = r.get_data(as_text=True)
        assert r.status_code == 400 and 'id="error-amount"' in html
        assert "每年最多 2.50 学分" in html and "还可增加 2.50" in html
        assert 'value="3"' in html  # the input is kept
        assert _conversions() == []
        data = {"rule": "0", "year": "2026", "amount": "2.5"}
        key = _preview_key(client, url, data)
        assert client.post(url, data=data | {"action": "save", "key": key}).status_code == 303
        r = client.post(url, data={"rule": "0", "year": "2026", "amount": "0.01", "action": "preview"})
        assert r.status_code == 400 and "还可增加 0.00" in r.get_data(as_text=True)


def test_an_auditor_reverses_a_conversion_both_legs_with_the_reason(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    cadre = people["cadre"]
    url = f"/credit/users/{cadre.id}/convert"
    with time_machine.travel(NOON, tick=True):
        _policy()
        _login(client, "admin_a")
        data = {"rule": "0", "year": "2026", "amount": "2"}
        client.post(url, data=data | {"action": "save", "key": _preview_key(client, url, data)})
        xf_in = db.session.query(Transfer).filter_by(code="conversion_in").one()
        _login(client, "auditor_a")
        page = client.get(f"/credit/users/{cadre.id}?year=2026").get_data(as_text=True)
        assert f'name="transfer_id" value="{xf_in.id}"' in page  # the 学分 line can be reversed
        r = client.post(f"/credit/users/{cadre.id}/reverse", data={"transfer_id": xf_in.id, "reason": "折算有误"})
        assert r.status_code == 302
    reversals = db.session.query(Transfer).filter_by(code="reversal").order_by(Transfer.seq).all()
    assert sorted((L.ledger_code(t.ledger_id), t.amount, t.memo) for t in reversals) == [
        ("WL_XS", 200, "折算有误"),
        ("XF", 200, "折算有误"),
    ]
    fig = queries.figures(cadre.id)
    assert fig[("XF", 2026)].posted == 0 and fig[("WL_XS", 2026)].posted == 500
    assert L.replay_check()[1] == []


def test_credits_already_spent_cannot_be_reversed_half(app: Flask, people) -> None:
    """Reversing a conversion whose 学分 left again is refused whole: no leg moves."""
    from plugins.credit_bank import services as S

    cadre = people["cadre"]
    with time_machine.travel(NOON, tick=True):
        assert S.convert(
            key="c1", user_id=cadre.id, year=2026, from_ledger="WL_XS", to_ledger="XF", amount=300, num=1, den=1
        ) == ["created", "created"]
        spent = L.submit(
            [
                [
                    L.TransferSpec(
                        id=L.transfer_id("spend"),
                        code="adjustment",
                        effective_date=dt.date(2026, 5, 10),
                        amount=250,
                        debit=L.counted("XF", cadre.id, 2026),
                        credit=L.issuer("XF"),
                        user_id=cadre.id,
                    )
                ]
            ]
        )
        assert spent == [["created"]]
        xf_in = db.session.query(Transfer).filter_by(code="conversion_in").one()
        before = db.session.query(Transfer).count()
        got = S.reverse(transfer_id=xf_in.id, reason="折算有误", actor_id=None)
        assert "exceeds_credits" in got and "created" not in got
        assert db.session.query(Transfer).count() == before
        # The same conversion key again is "exists", not a second conversion.
        assert S.convert(
            key="c1", user_id=cadre.id, year=2026, from_ledger="WL_XS", to_ledger="XF", amount=300, num=1, den=1
        ) == ["exists", "exists"]


def test_offline_claims_earn_hours_not_credits(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    import io

    from plugins.credit_bank.demo import CERT_PDF

    with pytest.raises(claims.ClaimError):
        claims.submit(
            people["cadre"],
            ledger="XF",
            title="班",
            organiser="党校",
            start=dt.date(2026, 3, 1),
            end=dt.date(2026, 3, 1),
            files=[(io.BytesIO(CERT_PDF), "a.pdf")],
        )
    with time_machine.travel(NOON, tick=True):
        _login(client, "cadre")
        page = client.get("/credit/claims").get_data(as_text=True)
    assert 'value="JZ_XS"' in page and 'value="XF"' not in page


def test_migration_adds_the_xf_ledger_and_downgrade_removes_it(db_backend: str, request, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The data migration on the credit_bank branch, on both databases (an empty one each)."""
    import uuid

    from sqlalchemy import create_engine, text

    from tests.lms_core.apps import build_app

    if db_backend == "postgresql":
        url = request.getfixturevalue("pg_cluster").create_database(f"xf_{uuid.uuid4().hex[:10]}")
    else:
        url = f"sqlite:///{tmp_path / 'xf.sqlite3'}"
    app = build_app(url, tmp_path, LMS_PLUGINS=["credit_bank"])
    runner = app.test_cli_runner()

    def codes() -> list[str]:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text("SELECT code FROM credit_ledgers ORDER BY id")).scalars())
        finally:
            engine.dispose()

    for args in (["upgrade", "heads"], ["downgrade", "0011credit_visible_brin"]):
        result = runner.invoke(args=["db", *args])
        assert result.exit_code == 0, result.output
        want = ["WL_XS", "JZ_XS", "DY_XS", "ZJ_XS"] + (["XF"] if args[0] == "upgrade" else [])
        assert codes() == want
    assert runner.invoke(args=["db", "upgrade", "heads"]).exit_code == 0
    assert codes()[-1] == "XF"
    with app.app_context():
        from lms_core.extensions import db as app_db

        app_db.engine.dispose()


def test_reports_and_who_is_behind_sum_hours_not_credits(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    from lms_core.reports import figures
    from plugins.credit_bank import report_charts
    from plugins.credit_bank import services as S

    cadre = people["cadre"]
    grant_credit(cadre.id, 9000, "wl-full", day=dt.date(2026, 3, 3))  # 95.00 学时 + 1.25 classroom
    with time_machine.travel(NOON, tick=True):
        got = S.convert(
            key="r1", user_id=cadre.id, year=2026, from_ledger="WL_XS", to_ledger="XF", amount=2000, num=1, den=1
        )
        assert got == ["created", "created"]
        db.session.commit()
        # 75.00 + 1.25 学时 are left; the 20.00 学分 are not 学时.
        assert report_charts._movers_earned([cadre.id], 2026) == [(cadre.id, 7625)]
        figures.rebuild()  # the org tree's closure, which the per-subtree rollups are summed through
        own_unit = [r for r in db.session.execute(report_charts.recomputed_earned()) if r[0] == cadre.org_unit_id]
        assert sum(int(r[3]) for r in own_unit) == 7625
        db.session.commit()  # the rebuilt rollups: SQLite holds its write lock until then
        _login(client, "admin_a")
        body = client.get("/credit/behind?year=2026&format=csv").data.decode("utf-8-sig")
    line = next(ln for ln in body.splitlines() if "李明" in ln)
    assert "76.25" in line and "96.25" not in line
