"""Converting counted hours between credit types: policy rules as data, preview, linked posting."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from flask import Flask

from lms_core.accounts.models import RankBand, Role
from lms_core.events.models import Event
from lms_core.extensions import db
from plugins.credit_bank import policy as P
from plugins.credit_bank import queries
from plugins.credit_bank.models import Transfer
from tests.factories import UserFactory, grant
from tests.plugins.credit_bank.helpers import grant_credit

NOON = dt.datetime(2026, 5, 10, 4, tzinfo=dt.UTC)
RULE = {"from": "WL_XS", "to": "JZ_XS", "num": 1, "den": 2}


@pytest.fixture
def people(app: Flask, tree):  # type: ignore[no-untyped-def]
    cadre = UserFactory(org_unit=tree.town_a, username="cadre", full_name="李明", rank_band=RankBand.TOWNSHIP)
    other = UserFactory(org_unit=tree.town_b, username="other", full_name="王芳")
    admin_a = UserFactory(org_unit=tree.county_a, username="admin_a")
    grant(admin_a, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    grant_credit(cadre.id, 500, "wl", day=dt.date(2026, 3, 1))
    return {"cadre": cadre, "other": other}


def _login(client, username: str) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import login

    client.post("/logout")
    assert login(client, username).status_code == 302


def _with_rule() -> int:
    row = P.add_version({"conversions": [RULE]}, dt.date(2026, 1, 1), None, "折算规则")
    return row.version


@pytest.mark.parametrize(
    "bad",
    [
        [{"from": "WL_XS", "to": "WL_XS", "num": 1, "den": 1}],
        [{"from": "WL_XS", "to": "XX", "num": 1, "den": 1}],
        [{"from": "WL_XS", "to": "JZ_XS", "num": 0, "den": 1}],
        [{"from": "WL_XS", "to": "JZ_XS", "num": True, "den": 1}],
        [{"from": "WL_XS", "to": "JZ_XS", "num": 1}],
        "WL_XS",
    ],
)
def test_policy_refuses_bad_conversions_in_chinese(app: Flask, bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(P.PolicyError) as exc:
        P.validate({"conversions": bad})
    assert any("\u4e00" <= ch <= "\u9fff" for ch in str(exc.value)), str(exc.value)


def test_no_rule_no_conversion(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    with time_machine.travel(NOON, tick=True):
        _login(client, "admin_a")
        page = client.get(f"/credit/users/{people['cadre'].id}/convert").get_data(as_text=True)
        assert 'id="no-rules"' in page and "现行政策不允许学时类别之间的折算" in page
        r = client.post(
            f"/credit/users/{people['cadre'].id}/convert", data={"rule": "0", "year": "2026", "amount": "1"}
        )
        assert r.status_code == 400


def test_preview_then_convert_posts_two_linked_lines_with_the_policy_version(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    cadre = people["cadre"]
    url = f"/credit/users/{cadre.id}/convert"
    with time_machine.travel(NOON, tick=True):
        version = _with_rule()
        _login(client, "admin_a")
        page = client.get(url).get_data(as_text=True)
        assert "网络培训学时 → 集中培训学时：每 2 学时折算为 1" in page
        preview = client.post(url, data={"rule": "0", "year": "2026", "amount": "3.01", "action": "preview"})
        html = preview.get_data(as_text=True)
        assert preview.status_code == 200 and 'id="convert-preview"' in html
        assert "3.01 网络培训学时" in html and "1.50 集中培训学时" in html  # 301 × 1/2 rounded down
        assert db.session.query(Transfer).filter(Transfer.code.like("conversion%")).count() == 0
        saved = client.post(url, data={"rule": "0", "year": "2026", "amount": "3.01", "action": "save"})
        assert saved.status_code == 303
        lines = db.session.query(Transfer).filter(Transfer.code.like("conversion%")).order_by(Transfer.seq).all()
        assert [(t.code, t.amount, t.policy_version, t.memo) for t in lines] == [
            ("conversion_out", 301, version, "1/2"),
            ("conversion_in", 150, version, "1/2"),
        ]
        fig = queries.figures(cadre.id)
        assert fig[("WL_XS", 2026)].posted == 199 and fig[("JZ_XS", 2026)].posted == 150
        event = db.session.query(Event).filter_by(name="credit.converted").one()
        assert event.payload["policy_version"] == version and event.payload["out"] == 150
        statement = client.get(f"/credit/users/{cadre.id}?year=2026").get_data(as_text=True)
        assert "转换为其他类别学时" in statement and "由其他类别学时转换" in statement


@pytest.mark.parametrize(
    ("form", "field", "text"),
    [
        ({"amount": "6"}, "amount", "仅计入 5.00 学时"),
        ({"amount": "0.01"}, "amount", "折算结果为零"),
        ({"amount": "abc"}, "amount", "最多两位小数"),
        ({"amount": "0"}, "amount", "大于零"),
        ({"year": "1999"}, "year", "2000"),
        ({"year": "2026\x00"}, "year", "2000"),
        ({"rule": "7"}, "rule", "政策允许"),
        ({"rule": "-1"}, "rule", "政策允许"),
    ],
)
def test_bad_input_is_a_chinese_400_and_nothing_posts(app: Flask, client, people, form, field, text) -> None:  # type: ignore[no-untyped-def]
    with time_machine.travel(NOON, tick=True):
        _with_rule()
        _login(client, "admin_a")
        data = {"rule": "0", "year": "2026", "amount": "1", "action": "save"} | form
        r = client.post(f"/credit/users/{people['cadre'].id}/convert", data=data)
        html = r.get_data(as_text=True)
        assert r.status_code == 400 and f'id="error-{field}"' in html and text in html, html[-2000:]
    assert db.session.query(Transfer).filter(Transfer.code.like("conversion%")).count() == 0


def test_only_admins_in_scope(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    with time_machine.travel(NOON, tick=True):
        _login(client, "admin_a")
        assert client.get(f"/credit/users/{people['other'].id}/convert").status_code == 403
        assert client.get("/credit/users/999999/convert").status_code == 404
        _login(client, "cadre")
        assert client.get(f"/credit/users/{people['cadre'].id}/convert").status_code == 403
