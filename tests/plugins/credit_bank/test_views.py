"""Pages and API: the learner's figures, reviewers and auditors in scope, exports, policy."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import time_machine
from flask import Flask

from lms_core.accounts.models import RankBand, Role
from lms_core.extensions import db
from plugins.credit_bank import queries
from tests.factories import UserFactory, grant
from tests.plugins.credit_bank.helpers import completed, grant_credit, sign_in_as

NOON = dt.datetime(2026, 5, 10, 4, tzinfo=dt.UTC)
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


@pytest.fixture
def people(app: Flask, tree):  # type: ignore[no-untyped-def]
    cadre = UserFactory(org_unit=tree.town_a, username="cadre", full_name="李明", rank_band=RankBand.TOWNSHIP)
    other = UserFactory(org_unit=tree.town_b, username="other", full_name="王芳", rank_band=RankBand.TOWNSHIP)
    admin_a = UserFactory(org_unit=tree.county_a, username="admin_a")
    grant(admin_a, Role.ORG_ADMIN, tree.county_a)
    auditor_a = UserFactory(org_unit=tree.county_a, username="auditor_a")
    grant(auditor_a, Role.AUDITOR, tree.county_a)
    site = UserFactory(org_unit=tree.city, username="site")
    grant(site, Role.SITE_ADMIN, tree.city)
    db.session.commit()
    return {"cadre": cadre, "other": other, "admin_a": admin_a, "auditor_a": auditor_a, "site": site}


def test_dashboard_statement_and_course_label_agree(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    with time_machine.travel(NOON, tick=True):
        completed(people["cadre"], nominal=200)
        sign_in_as(client, "cadre")
        html = client.get("/dashboard").get_data(as_text=True)
        assert '<span id="year-hours">2.00</span> / 90' in html
        assert 'id="year-pending">0.00<' in html and 'id="year-overflow">0.00<' in html
        page = client.get("/credit/").get_data(as_text=True)
        assert 'class="posted">2.00<' in page and 'class="balance">2.00<' in page


def test_api_me_and_as_of(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    cadre = people["cadre"]
    grant_credit(cadre.id, 300, "a", day=dt.date(2026, 3, 1))
    with time_machine.travel(NOON, tick=True):
        sign_in_as(client, "cadre")
        body = client.get("/api/v1/me/credits?year=2026").get_json()
        wl = next(b for b in body["balances"] if b["ledger"] == "WL_XS")
        assert wl["posted"] == 300 and body["statement"][0]["balance"] == 300
        keys = {p["key"] for p in body["progress"]}
        assert {"annual_township", "online_annual"} <= keys
        past = client.get("/api/v1/me/credits?year=2026&as_of=2026-02-01").get_json()
        assert next(b for b in past["balances"] if b["ledger"] == "WL_XS")["posted"] == 0
        for bad in ("year=abc", "year=99999999999999999999", "as_of=2026-13-01", "as_of=%00", "year=1999"):
            r = client.get(f"/api/v1/me/credits?{bad}")
            assert r.status_code == 400, bad
        # ?parts= answers only what is asked (balances and progress without the statement's lines).
        some = client.get("/api/v1/me/credits?year=2026&parts=balances,progress").get_json()
        assert "statement" not in some and some["balances"] == body["balances"]
        assert some["progress"] == body["progress"]
        lines = client.get("/api/v1/me/credits?year=2026&parts=statement").get_json()
        assert lines["statement"] == body["statement"] and "balances" not in lines and "progress" not in lines
        for bad in ("parts=", "parts=balances,nope", "parts=,"):
            r = client.get(f"/api/v1/me/credits?{bad}")
            assert r.status_code == (200 if bad == "parts=" else 400), bad
        assert "parts 只能" in client.get("/api/v1/me/credits?parts=x").get_json()["error"]


def test_api_for_other_users_is_scoped(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    sign_in_as(client, "auditor_a")
    assert client.get(f"/api/v1/users/{people['cadre'].id}/credits").status_code == 200
    assert client.get(f"/api/v1/users/{people['other'].id}/credits").status_code == 403
    sign_in_as(client, "cadre")
    assert client.get(f"/api/v1/users/{people['other'].id}/credits").status_code == 403


def test_an_admin_viewing_a_statement_is_logged_for_the_person(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    """Page and API views of someone else's statement are record views (谁查看了我的学习记录)."""
    from lms_core.audit.viewlog import VIEWED, views_of
    from lms_core.events.models import Event

    cadre = people["cadre"]

    def logged() -> list[Event]:
        return list(db.session.execute(db.select(Event).where(Event.name == VIEWED).order_by(Event.id)).scalars())

    with time_machine.travel(NOON, tick=True):
        sign_in_as(client, "cadre")
        assert client.get("/credit/").status_code == 200
        assert client.get("/api/v1/me/credits").status_code == 200
        assert logged() == []  # one's own statement is not a view by someone else
        sign_in_as(client, "auditor_a")
        assert client.get(f"/credit/users/{cadre.id}?year=2026").status_code == 200
        assert client.get(f"/api/v1/users/{cadre.id}/credits?year=2025&as_of=2025-06-30").status_code == 200
        assert client.get(f"/api/v1/users/{people['other'].id}/credits").status_code == 403
        assert client.get(f"/credit/users/{cadre.id}?year=abc").status_code == 400
    rows = logged()
    assert [(e.actor_id, e.object_id, e.payload["what"], e.payload["detail"]) for e in rows] == [
        (people["auditor_a"].id, str(cadre.id), "credit", "2026"),
        (people["auditor_a"].id, str(cadre.id), "credit", "2025 · 2025-06-30"),
    ]
    lines = views_of(cadre.id)
    assert [ln.what for ln in lines] == ["学时账单", "学时账单"] and lines[0].viewer == people["auditor_a"].full_name
    with time_machine.travel(NOON, tick=True):
        sign_in_as(client, "cadre")
        page = client.get("/record").get_data(as_text=True)
    assert "学时账单" in page and people["auditor_a"].full_name in page


def test_offline_claim_flow(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    sign_in_as(client, "cadre")
    form = {
        "title": "县委党校中青班",
        "organiser": "南岭县委党校",
        "ledger": "JZ_XS",
        "start_date": "2026-04-01",
        "end_date": "2026-04-03",
    }
    r = client.post(
        "/credit/claims",
        data={**form, "evidence": (io.BytesIO(b"MZ\x90\x00" * 50), "cert.pdf")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 400
    r = client.post(
        "/credit/claims", data={**form, "evidence": (io.BytesIO(PDF), "cert.pdf")}, content_type="multipart/form-data"
    )
    assert r.status_code == 302
    assert queries.year_summary(people["cadre"].id, 2026) == {"posted": 0, "pending": 1800, "overflow": 0}
    from plugins.credit_bank.models import Claim

    claim = db.session.query(Claim).one()
    sign_in_as(client, "auditor_a")  # auditors do not approve
    assert client.post(f"/credit/review/{claim.id}", data={"decision": "approve"}).status_code == 403
    sign_in_as(client, "admin_a")
    assert "县委党校中青班" in client.get("/credit/review").get_data(as_text=True)
    r = client.post(f"/credit/review/{claim.id}", data={"decision": "reject", "reason": ""})
    assert queries.year_summary(people["cadre"].id, 2026)["pending"] == 1800  # a rejection needs a reason
    client.post(f"/credit/review/{claim.id}", data={"decision": "approve"})
    assert queries.year_summary(people["cadre"].id, 2026) == {"posted": 1800, "pending": 0, "overflow": 0}
    client.post(f"/credit/review/{claim.id}", data={"decision": "reject", "reason": "late"})
    assert queries.year_summary(people["cadre"].id, 2026)["posted"] == 1800


def test_claim_out_of_scope_cannot_be_reviewed(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    sign_in_as(client, "other")
    client.post(
        "/credit/claims",
        data={
            "title": "石岗镇专题班",
            "organiser": "校",
            "ledger": "JZ_XS",
            "start_date": "2026-04-01",
            "end_date": "2026-04-01",
            "evidence": (io.BytesIO(PDF), "c.pdf"),
        },
        content_type="multipart/form-data",
    )
    from plugins.credit_bank.models import Claim

    claim = db.session.query(Claim).one()
    sign_in_as(client, "admin_a")
    assert "石岗镇专题班" not in client.get("/credit/review").get_data(as_text=True)
    assert client.post(f"/credit/review/{claim.id}", data={"decision": "approve"}).status_code == 403
    assert client.get(f"/credit/evidence/{claim.id}/{claim.evidence[0]}").status_code == 403


def test_auditor_reverses_with_reason_and_statement_pairs_them(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    cadre = people["cadre"]
    tid = grant_credit(cadre.id, 200, "c1", day=dt.date(2026, 3, 1))
    sign_in_as(client, "auditor_a")
    client.post(f"/credit/users/{cadre.id}/reverse", data={"transfer_id": tid, "reason": ""})
    assert queries.year_summary(cadre.id, 2026)["posted"] == 200
    client.post(f"/credit/users/{cadre.id}/reverse", data={"transfer_id": tid, "reason": "代学代考"})
    assert queries.year_summary(cadre.id, 2026)["posted"] == 0
    lines = queries.statement(cadre.id, 2026)
    assert lines[0].reversed_by == [lines[1].id] and lines[1].reverses_id == lines[0].id
    assert lines[1].memo == "代学代考" and lines[1].balance == 0
    page = client.get(f"/credit/users/{cadre.id}?year=2026").get_data(as_text=True)
    assert "代学代考" in page
    sign_in_as(client, "admin_a")  # org admins do not reverse
    assert client.post(f"/credit/users/{cadre.id}/reverse", data={"transfer_id": tid, "reason": "x"}).status_code == 403


def test_behind_report_and_exports_equal_the_rows(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    grant_credit(people["cadre"].id, 9000, "full", day=dt.date(2026, 3, 1))
    with time_machine.travel(NOON, tick=True):
        sign_in_as(client, "admin_a")
        page = client.get("/credit/behind?year=2026").get_data(as_text=True)
        csv_body = client.get("/credit/behind?year=2026&format=csv").data
        xlsx = client.get("/credit/behind?year=2026&format=xlsx").data
    # cadre met 90; other is out of scope; admin_a and auditor_a (general staff) are behind.
    assert "李明" not in page and "王芳" not in page and "admin_a" in page
    assert csv_body.startswith("\ufeff".encode())
    text = csv_body.decode("utf-8-sig")
    rows = text.strip().splitlines()
    assert rows[0].startswith("单位,")  # Chinese headers
    assert len(rows) - 1 == page.count('<td><a href="/credit/users/')
    import openpyxl

    ws = openpyxl.load_workbook(io.BytesIO(xlsx)).active
    assert ws is not None and ws.max_row == len(rows)


def test_behind_summary_counts_each_unit_not_each_name(app: Flask, client, people, tree) -> None:  # type: ignore[no-untyped-def]
    """Two villages called 东山社区 (in two townships) are two rows of the summary, with their codes."""
    from lms_core.orgs.models import OrgKind
    from tests.factories import OrgUnitFactory

    town = OrgUnitFactory(code="360121002", name="石岗镇", kind=OrgKind.TOWNSHIP, parent=tree.county_a)
    for code, parent in (("360121001009", tree.town_a), ("360121002009", town)):
        unit = OrgUnitFactory(code=code, name="东山社区", kind=OrgKind.VILLAGE, parent=parent)
        UserFactory(org_unit=unit, username=f"c{code}", rank_band=RankBand.GENERAL)
    db.session.commit()
    with time_machine.travel(NOON, tick=True):
        sign_in_as(client, "admin_a")
        page = client.get("/credit/behind?year=2026").get_data(as_text=True)
    summary = page.split('id="behind-summary"', 1)[1].split("</table>", 1)[0]
    lines = [line for line in summary.split("<tr>") if "东山社区" in line]
    assert len(lines) == 2, lines
    assert "360121001009" in lines[0] and "360121002009" in lines[1] and all("<td>1</td>" in line for line in lines)


def test_roster_import_is_idempotent_per_row(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    csv_text = (
        "用户名,培训班名称,主办单位,开始日期,结束日期,学时类别,学时\n"
        "cadre,乡镇干部轮训班,县委组织部,2026-03-02,2026-03-04,集中培训学时,\n"
        "other,乡镇干部轮训班,县委组织部,2026-03-02,2026-03-04,集中培训学时,\n"
        "cadre,专题讲座,县委组织部,2026-03-10,2026-03-10,集中培训学时,3.5\n"
    )
    sign_in_as(client, "admin_a")
    for _ in range(2):
        r = client.post(
            "/credit/roster",
            data={"file": (io.BytesIO(("\ufeff" + csv_text).encode()), "r.csv")},
            content_type="multipart/form-data",
        )
        assert r.status_code == 200
    # 3 days × 6.00 + 3.50; "other" is outside the county.
    assert queries.year_summary(people["cadre"].id, 2026)["posted"] == 1800 + 350
    assert queries.year_summary(people["other"].id, 2026)["posted"] == 0
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["用户名", "培训班名称", "主办单位", "开始日期", "结束日期", "学时类别", "学时"])
    day = dt.datetime(2026, 3, 10)  # noqa: DTZ001 - a spreadsheet cell holds a naive date
    ws.append(["cadre", "专题讲座", "县委组织部", day, day, "集中培训学时", 3.5])
    ws.append(["cadre", "党课", "县委组织部", "2026-03-11", "2026-03-11", "党员学习学时", 2])
    buf = io.BytesIO()
    wb.save(buf)
    client.post(
        "/credit/roster", data={"file": (io.BytesIO(buf.getvalue()), "r.xlsx")}, content_type="multipart/form-data"
    )
    assert queries.year_summary(people["cadre"].id, 2026)["posted"] == 1800 + 350 + 200
    r = client.post(
        "/credit/roster",
        data={"file": (io.BytesIO(b"PK\x03\x04garbage"), "r.xlsx")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 400


def test_site_admin_adds_a_policy_version(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    sign_in_as(client, "admin_a")
    assert client.get("/credit/policy").status_code == 403
    sign_in_as(client, "site")
    assert client.post("/credit/policy", data={"rules": "{not json", "effective_from": "2026-01-01"}).status_code == 400
    assert (
        client.post(
            "/credit/policy", data={"rules": '{"caps": {"XX": {}}}', "effective_from": "2026-01-01"}
        ).status_code
        == 400
    )
    deep = "[" * 100_000 + "]" * 100_000
    assert client.post("/credit/policy", data={"rules": deep, "effective_from": "2026-01-01"}).status_code == 400
    r = client.post("/credit/policy", data={"rules": '{"offline_day_centi": 750}', "effective_from": "2026-01-01"})
    assert r.status_code == 302
    from plugins.credit_bank import policy as P

    assert P.rules_of(P.in_force(dt.date(2026, 6, 1)))["offline_day_centi"] == 750
    assert P.rules_of(P.in_force(dt.date(2025, 6, 1)))["offline_day_centi"] == 600


def test_pages_render_in_chinese(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    sign_in_as(client, "site")
    for url in (
        "/credit/",
        "/credit/claims",
        "/credit/review",
        "/credit/behind",
        "/credit/roster",
        "/credit/policy",
        f"/credit/users/{people['cadre'].id}",
    ):
        r = client.get(url)
        assert r.status_code == 200, url
        assert "学时" in r.get_data(as_text=True), url


@pytest.mark.parametrize(
    ("url", "title", "csv"),
    [
        (
            "/credit/roster",
            "导入培训班名单",
            "用户名,培训班名称,主办单位,开始日期,结束日期,学时类别,学时\nnobody,党校班,市委党校,2026-03-02,2026-03-03,集中培训学时,12\n",
        ),
        ("/credit/ranks/import", "导入职级变动", "用户名,职级,职级生效日期\nnobody,乡科级,2026-03-01\n"),
    ],
)
def test_both_file_imports_share_one_page_and_its_refusals(
    app: Flask, client, people, url, title, csv, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from plugins.credit_bank import admin_views

    monkeypatch.setattr(admin_views, "MAX_IMPORT_BYTES", 2000)  # a small file stands for a large one
    with time_machine.travel(NOON, tick=True):
        sign_in_as(client, "admin_a")
        page = client.get(url).get_data(as_text=True)
        assert f"<h1>{title}</h1>" in page and 'name="file"' in page
        missing = client.post(url, data={}, content_type="multipart/form-data")
        assert missing.status_code == 400 and "请选择 CSV 或 XLSX 文件" in missing.get_data(as_text=True)
        big = io.BytesIO(b"x" * 2001)
        too_big = client.post(url, data={"file": (big, "big.csv")}, content_type="multipart/form-data")
        assert too_big.status_code == 413 and "10 MB" in too_big.get_data(as_text=True)
        refused = client.post(url, data={"file": (io.BytesIO(csv.encode()), "r.csv")})
        html = refused.get_data(as_text=True)
        assert refused.status_code == 200 and "拒绝 1 " in html and "nobody" not in html.split("<tbody>")[0], html[
            -1500:
        ]
        assert html.count("<tr><td>2</td>") == 1  # the refused line, with its reason
        sign_in_as(client, "cadre")
        assert client.get(url).status_code == 403
