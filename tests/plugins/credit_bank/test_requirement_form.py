"""The requirement rules as a form: fields with Chinese checks, the input kept, a preview, versions."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import time_machine
from flask import Flask
from werkzeug.datastructures import MultiDict

from lms_core.accounts.models import RankBand
from lms_core.events.models import Event
from lms_core.extensions import db
from plugins.credit_bank import policy as P
from plugins.credit_bank import queries
from plugins.credit_bank.models import Policy
from plugins.credit_bank.requirement_form import LIST_FIELDS, form_values
from tests.factories import UserFactory
from tests.plugins.credit_bank.helpers import grant_credit, sign_in_as

URL = "/credit/policy/requirements"
NOW = dt.datetime(2026, 5, 10, 4, tzinfo=dt.UTC)


@pytest.fixture
def site(site, tree):  # type: ignore[no-untyped-def]
    """The policy admins (conftest), and a township cadre for the preview of one person."""
    UserFactory(org_unit=tree.town_a, username="cadre", full_name="李明", rank_band=RankBand.TOWNSHIP)
    db.session.commit()
    return site


def posted(action: str = "preview", **over: str | list[str]) -> MultiDict[str, str]:
    """The form as the page shows it for the version in force, with ``over`` typed over it."""
    values: dict[str, Any] = dict(form_values(P.rules_of(P.in_force(NOW.date()))))
    values.update(over)
    data: MultiDict[str, str] = MultiDict()
    for name, value in values.items():
        if name.startswith("req_") and name.split("_")[1] in LIST_FIELDS and isinstance(value, str):
            value = [x for x in value.split(",") if x]
        for x in value if isinstance(value, list) else [value]:
            data.add(name, x)
    data.add("action", action)
    db.session.commit()
    return data


def row_of(key: str) -> int:
    reqs = P.rules_of(P.in_force(NOW.date()))["requirements"]
    db.session.commit()  # the defaults may just have been recorded: no write left open
    return next(i for i, r in enumerate(reqs) if r["key"] == key)


def versions() -> int:
    P.ensure_default()
    db.session.commit()
    return db.session.query(Policy).count()


def test_only_site_admins(client, site) -> None:  # type: ignore[no-untyped-def]
    sign_in_as(client, "admin_a")
    assert client.get(URL).status_code == 403
    sign_in_as(client, "site")
    page = client.get(URL).get_data(as_text=True)
    assert "学时要求规则" in page and "乡科级及以下" in page or "乡科级" in page
    assert 'value="90.00"' in page and 'value="550.00"' in page and 'value="书记"' in page


def test_the_default_rules_round_trip_through_the_form(app: Flask, client, site) -> None:  # type: ignore[no-untyped-def]
    with time_machine.travel(NOW, tick=True):
        sign_in_as(client, "site")
        before = versions()
        r = client.post(URL, data=posted("save") | {"effective_from": "2026-06-01", "note": "原样保存"})
        assert r.status_code == 303, r.get_data(as_text=True)[-3000:]
    assert versions() == before + 1  # every save is a new version, even an unchanged one
    row = db.session.query(Policy).order_by(Policy.version.desc()).first()
    assert row is not None and row.rules["requirements"] == P.DEFAULT_RULES["requirements"]
    assert row.effective_from == dt.date(2026, 6, 1) and row.note == "原样保存"


def test_a_change_is_a_new_version_that_progress_uses(app: Flask, client, site) -> None:  # type: ignore[no-untyped-def]
    cadre = db.session.query(type(site)).filter_by(username="cadre").one()
    grant_credit(cadre.id, 9000, "wl", day=dt.date(2026, 3, 1))
    i = row_of("annual_township")
    with time_machine.travel(NOW, tick=True):
        assert {p.key: p.met for p in queries.progress(cadre, 2026)}["annual_township"] is True
        db.session.commit()  # an open write would lock SQLite for the requests
        sign_in_as(client, "site")
        data = posted("preview", **{f"req_amount_{i}": "100", "person": "cadre"})
        preview = client.post(URL, data=data).get_data(as_text=True)
        assert 'id="preview"' in preview and "100.00 学时" in preview and "已修改" in preview
        person = re.search(r'id="person-preview".*?</table>', preview, re.S)
        assert person is not None and "90.00 / 90.00" in person.group(0) and "90.00 / 100.00" in person.group(0)
        assert versions() == 1
        data = posted("save", **{f"req_amount_{i}": "100"}) | {"effective_from": "2026-01-01"}
        assert client.post(URL, data=data).status_code == 303
        version = db.session.query(Policy).order_by(Policy.version.desc()).first()
        assert version is not None and version.version == 2
        got = {p.key: (p.required, p.met) for p in queries.progress(cadre, 2026)}
        assert got["annual_township"] == (10000, False)
        event = db.session.query(Event).filter_by(name="credit.policy_added").one()
        assert event.payload["changed"] == "requirements" and event.object_id == "2"


@pytest.mark.parametrize(
    ("key", "field", "value", "text"),
    [
        ("annual_township", "amount", "九十", "最多两位小数"),
        ("annual_township", "amount", "0", "大于零"),
        ("annual_township", "ledger", ["WL_XS", "XF"], "学分单独计算"),
        ("annual_township", "ledger", [], "至少勾选一种"),
        ("annual_township", "band", [], "至少勾选一个职级"),
        ("annual_township", "window", "weekly", "请选择"),
        ("cycle_county", "years", "0", "1 至 10"),
        ("cycle_county", "cycle_start", "1999", "2000 至 2100"),
        ("cycle_county", "share", "600", "不能超过"),
        ("party_secretary", "supersedes", "nothing_here", "仍保留的"),
        ("party_secretary", "keywords", "书记、" + "长" * 21, "至多 20 个字"),
    ],
)
def test_bad_fields_are_a_chinese_400_with_the_input_kept(app: Flask, client, site, key, field, value, text) -> None:  # type: ignore[no-untyped-def]
    with time_machine.travel(NOW, tick=True):
        sign_in_as(client, "site")
        i = row_of(key)
        data = posted("save", **{f"req_{field}_{i}": value}) | {"effective_from": "2026-06-01"}
        r = client.post(URL, data=data)
        html = r.get_data(as_text=True)
        assert r.status_code == 400 and f'id="error-req_{field}_{i}"' in html and text in html, html[-3000:]
        if isinstance(value, str) and value and field not in ("window", "supersedes"):  # typed text is kept
            assert f'value="{value}"' in html
    assert versions() == 1


def test_removing_a_rule_another_replaces_is_refused(app: Flask, client, site) -> None:  # type: ignore[no-untyped-def]
    with time_machine.travel(NOW, tick=True):
        sign_in_as(client, "site")
        data = posted("save", **{f"req_remove_{row_of('party_member')}": "1"}) | {"effective_from": "2026-06-01"}
        r = client.post(URL, data=data)
        assert r.status_code == 400 and f'id="error-req_supersedes_{row_of("party_secretary")}"' in r.get_data(
            as_text=True
        )
        both = {
            f"req_remove_{row_of('party_member')}": "1",
            f"req_supersedes_{row_of('party_secretary')}": "",
        }
        assert client.post(URL, data=posted("save", **both) | {"effective_from": "2026-01-01"}).status_code == 303
    keys = [r["key"] for r in P.rules_of(P.in_force(NOW.date()))["requirements"]]
    assert "party_member" not in keys and "party_secretary" in keys


def test_a_new_named_requirement_shows_by_its_name(app: Flask, client, site) -> None:  # type: ignore[no-untyped-def]
    n = len(P.DEFAULT_RULES["requirements"])
    new = {
        f"req_amount_{n}": "24",
        f"req_ledger_{n}": ["ZJ_XS"],
        f"req_band_{n}": ["township", "general"],
        f"req_window_{n}": "calendar_year",
    }
    with time_machine.travel(NOW, tick=True):
        sign_in_as(client, "site")
        r = client.post(URL, data=posted("save", **new) | {"effective_from": "2026-01-01"})
        html = r.get_data(as_text=True)
        assert r.status_code == 400 and f'id="error-req_name_{n}"' in html and 'value="24"' in html
        key = re.search(rf'name="req_key_{n}" value="(custom_[0-9a-f]{{8}})"', html)
        assert key is not None  # the key given on the first try is kept by the form
        new |= {f"req_name_{n}": "专技人员继续教育", f"req_key_{n}": key.group(1)}
        assert client.post(URL, data=posted("save", **new) | {"effective_from": "2026-01-01"}).status_code == 303
        rule = P.rules_of(P.in_force(NOW.date()))["requirements"][-1]
        assert rule == {
            "key": key.group(1),
            "name": "专技人员继续教育",
            "window": "calendar_year",
            "amount_centi": 2400,
            "ledgers": ["ZJ_XS"],
            "rank_bands": ["township", "general"],
        }
        sign_in_as(client, "cadre")
        page = client.get("/credit/").get_data(as_text=True)
        assert "<strong>专技人员继续教育</strong>" in page and f">{key.group(1)}<" not in page


def test_the_json_stays_for_export_and_import(app: Flask, client, site) -> None:  # type: ignore[no-untyped-def]
    with time_machine.travel(NOW, tick=True):
        sign_in_as(client, "site")
        page = client.get("/credit/policy").get_data(as_text=True)
        assert 'id="requirements-form-link"' in page and "annual_township" in page


@pytest.mark.parametrize("page", ["requirements", "conversion"])
def test_a_refusal_at_save_is_told_in_the_banner(app: Flask, client, site, monkeypatch, page) -> None:  # type: ignore[no-untyped-def]
    """A version the policy refuses at the last step (its number taken by concurrent admins five
    times over): both form pages answer 400 with the reason in the banner and save nothing."""
    from plugins.credit_bank import policy_forms

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise P.PolicyError("政策未能记录，请重试。")

    with time_machine.travel(NOW, tick=True):
        before = versions()
        sign_in_as(client, "site")
        if page == "requirements":
            url, data = URL, posted("save") | {"effective_from": "2026-06-01"}
        else:
            url = "/credit/policy/conversion"
            data = {"kind": "nominal", "offline_day": "6", "minutes_per_hour": "45", "year_end": "expire"}
            data |= {"action": "save", "effective_from": "2026-06-01"}
        monkeypatch.setattr(policy_forms.P, "add_version", refuse)
        r = client.post(url, data=data)
        html = r.get_data(as_text=True)
        assert r.status_code == 400, html
        banner = re.search(rf'<div class="flash flash-error" role="alert" id="{page}-errors">[^<]*</div>', html)
        assert banner is not None and "政策未能记录，请重试。" in banner.group(0), html
        assert 'id="effective_from" value="2026-06-01"' in html  # the form as typed
    assert versions() == before
