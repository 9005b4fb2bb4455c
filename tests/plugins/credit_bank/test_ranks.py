"""Promotion history: append-only entries, corrections, the band at the right date, and the
"within a year of promotion" requirement on the page, the API and the "who is behind" list."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import time_machine
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lms_core.accounts.models import RankBand, Role
from lms_core.events.models import Event
from lms_core.extensions import db
from plugins.credit_bank import queries, ranks
from tests.factories import UserFactory, grant
from tests.plugins.credit_bank.helpers import grant_credit, sign_in_as

NOW = dt.datetime(2026, 9, 1, 4, tzinfo=dt.UTC)  # 2026-09-01 12:00 in Beijing


@pytest.fixture
def cast(app: Flask, tree):  # type: ignore[no-untyped-def]
    cadre = UserFactory(org_unit=tree.town_a, username="cadre", full_name="李明", rank_band=RankBand.TOWNSHIP)
    admin_a = UserFactory(org_unit=tree.county_a, username="admin_a")
    grant(admin_a, Role.ORG_ADMIN, tree.county_a)
    admin_b = UserFactory(org_unit=tree.county_b, username="admin_b")
    grant(admin_b, Role.ORG_ADMIN, tree.county_b)
    db.session.commit()
    return {"cadre": cadre, "admin_a": admin_a, "admin_b": admin_b}


def promote(user, day: dt.date, band: str = "county_and_above", **kw):  # type: ignore[no-untyped-def]
    with time_machine.travel(NOW, tick=False):
        return ranks.record(user, band=band, effective=day, actor=None, **kw)


def test_a_promotion_is_recorded_audited_and_sets_todays_band(app: Flask, cast) -> None:  # type: ignore[no-untyped-def]
    cadre = cast["cadre"]
    row = promote(cadre, dt.date(2026, 3, 1), reason="任命文件 2026-12 号")
    assert (row.from_band, row.to_band) == ("township", "county_and_above")
    assert db.session.get(type(cadre), cadre.id).rank_band == RankBand.COUNTY_AND_ABOVE
    hist = ranks.history(cadre)
    assert hist.band_on(dt.date(2026, 2, 28)) == "township" and hist.band_on(dt.date(2026, 3, 1)) == "county_and_above"
    assert hist.promotions() == [(dt.date(2026, 3, 1), "county_and_above")]
    event = db.session.execute(db.select(Event).where(Event.name == "credit.rank_changed")).scalar_one()
    assert event.payload["to_band"] == "county_and_above" and event.org_unit_id == cadre.org_unit_id


@pytest.mark.parametrize(
    "sql", ["UPDATE credit_rank_changes SET to_band = 'general'", "DELETE FROM credit_rank_changes"]
)
def test_history_is_append_only_at_the_database(app: Flask, cast, sql: str) -> None:  # type: ignore[no-untyped-def]
    promote(cast["cadre"], dt.date(2026, 3, 1))
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text(sql))
        db.session.flush()
    db.session.rollback()
    assert db.session.execute(text("SELECT to_band FROM credit_rank_changes")).scalar_one() == "county_and_above"


def test_corrections_are_new_entries(app: Flask, cast) -> None:  # type: ignore[no-untyped-def]
    cadre = cast["cadre"]
    wrong = promote(cadre, dt.date(2026, 3, 1))
    with pytest.raises(ranks.RankError):
        promote(cadre, dt.date(2026, 4, 1), corrects=wrong.id)  # a correction needs a reason
    fixed = promote(cadre, dt.date(2026, 4, 1), corrects=wrong.id, reason="日期录错")
    assert ranks.history(cadre).promotions() == [(dt.date(2026, 4, 1), "county_and_above")]
    with pytest.raises(ranks.RankError, match="already corrected|已更正"):
        promote(cadre, dt.date(2026, 5, 1), corrects=wrong.id, reason="again")
    promote(cadre, None, band=None, corrects=fixed.id, withdraw=True, reason="误录")  # type: ignore[arg-type]
    assert ranks.history(cadre).promotions() == []
    assert db.session.get(type(cadre), cadre.id).rank_band == RankBand.TOWNSHIP
    assert len(ranks.entries(cadre.id)) == 3  # nothing was changed or deleted


@pytest.mark.parametrize(
    ("band", "day"),
    [
        ("county_and_above", dt.date(2026, 9, 2)),  # tomorrow
        ("county_and_above", dt.date(1999, 12, 31)),
        ("mayor", dt.date(2026, 3, 1)),
        ("township", dt.date(2026, 3, 1)),  # already township
        ("county_and_above", None),
    ],
)
def test_bad_entries_are_refused(app: Flask, cast, band, day) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ranks.RankError):
        promote(cast["cadre"], day, band=band)
    db.session.rollback()
    assert ranks.entries(cast["cadre"].id) == []


def test_requirements_follow_the_band_at_the_right_date(app: Flask, cast) -> None:  # type: ignore[no-untyped-def]
    cadre = cast["cadre"]
    promote(cadre, dt.date(2026, 3, 1))
    with time_machine.travel(NOW, tick=False):
        keys_2025 = {p.key for p in queries.progress(cadre, 2025)}
        keys_2026 = {p.key for p in queries.progress(cadre, 2026)}
        keys_feb = {p.key for p in queries.progress(cadre, 2026, as_of=dt.date(2026, 2, 1))}
        assert queries.annual_target(cadre, 2025) == 9000
        assert queries.annual_target(cadre, 2026) == 11000  # the five-year rule's yearly share
    assert "annual_township" in keys_2025 and "cycle_county" not in keys_2025 and "promotion" not in keys_2025
    assert "cycle_county" in keys_2026 and "annual_township" not in keys_2026 and "promotion" in keys_2026
    assert "annual_township" in keys_feb and "promotion" not in keys_feb


def test_training_within_a_year_of_promotion(app: Flask, cast) -> None:  # type: ignore[no-untyped-def]
    cadre = cast["cadre"]
    promote(cadre, dt.date(2026, 3, 1))
    grant_credit(cadre.id, 2500, "before", day=dt.date(2026, 2, 27), ledger="JZ_XS")  # before: does not count
    grant_credit(cadre.id, 1000, "after", day=dt.date(2026, 6, 1), ledger="JZ_XS")
    with time_machine.travel(NOW, tick=False):
        (p,) = [p for p in queries.progress(cadre, 2026) if p.key == "promotion"]
    assert (p.window_start, p.deadline) == (dt.date(2026, 3, 1), dt.date(2027, 2, 28))
    assert (p.earned, p.required, p.met, p.overdue, p.promoted_to) == (1000, 3000, False, False, "county_and_above")
    # The window spans two years: 2027's page shows it too, and after the deadline it is overdue.
    with time_machine.travel(dt.datetime(2027, 3, 2, 4, tzinfo=dt.UTC), tick=False):
        (late,) = [p for p in queries.progress(cadre, 2027) if p.key == "promotion"]
        assert late.overdue and late.deadline == dt.date(2027, 2, 28)
    grant_credit(cadre.id, 2000, "more", day=dt.date(2027, 1, 10), ledger="JZ_XS")
    with time_machine.travel(dt.datetime(2027, 1, 11, 4, tzinfo=dt.UTC), tick=False):
        (done,) = [p for p in queries.progress(cadre, 2027) if p.key == "promotion"]
    assert done.met and done.earned == 3000 and not done.overdue
    with time_machine.travel(dt.datetime(2028, 6, 1, 4, tzinfo=dt.UTC), tick=False):
        assert "promotion" not in {p.key for p in queries.progress(cadre, 2028)}


def test_learner_page_and_api_show_the_deadline(app: Flask, client, cast) -> None:  # type: ignore[no-untyped-def]
    promote(cast["cadre"], dt.date(2026, 3, 1))
    with time_machine.travel(NOW, tick=True):
        sign_in_as(client, "cadre")
        page = client.get("/credit/?year=2026").get_data(as_text=True)
        api = client.get("/api/v1/me/credits?year=2026").get_json()
    assert "提任" in page and "2027-02-28" in page
    (promo,) = [p for p in api["progress"] if p["key"] == "promotion"]
    assert promo["deadline"] == "2027-02-28" and promo["window_start"] == "2026-03-01"
    assert (
        promo["window"] == "after_promotion"
        and promo["overdue"] is False
        and promo["promoted_to"] == "county_and_above"
    )


def test_behind_lists_the_promoted_and_exports_equal_the_screen(app: Flask, client, cast) -> None:  # type: ignore[no-untyped-def]
    cadre = cast["cadre"]
    promote(cadre, dt.date(2026, 3, 1))
    grant_credit(cadre.id, 20000, "lots", day=dt.date(2026, 4, 1))  # online: meets the yearly share
    with time_machine.travel(NOW, tick=True):
        sign_in_as(client, "admin_a")
        page = client.get("/credit/behind?year=2026&band=county_and_above").get_data(as_text=True)
        csv_text = client.get("/credit/behind?year=2026&band=county_and_above&format=csv").data.decode("utf-8-sig")
        xlsx = client.get("/credit/behind?year=2026&band=county_and_above&format=xlsx").data
        township = client.get("/credit/behind?year=2026&band=township").get_data(as_text=True)
    assert "李明" in page and "2027-02-28" in page and "李明" not in township
    lines = csv_text.strip().splitlines()
    assert "晋升" in lines[0] or "提任" in lines[0]
    (row,) = [ln for ln in lines if "李明" in ln]
    assert "2027-02-28" in row and "30.00" in row
    assert len(lines) - 1 == page.count('<td><a href="/credit/users/')
    import openpyxl

    ws = openpyxl.load_workbook(io.BytesIO(xlsx)).active
    assert ws is not None and ws.max_row == len(lines)
    assert [c.value for c in ws[1]] == lines[0].split(",")


def test_admin_page_records_and_is_scoped(app: Flask, client, cast) -> None:  # type: ignore[no-untyped-def]
    cadre = cast["cadre"]
    url = f"/credit/users/{cadre.id}/ranks"
    with time_machine.travel(NOW, tick=True):
        sign_in_as(client, "admin_b")
        assert client.get(url).status_code == 403
        assert client.post(url, data={"band": "county_and_above", "effective_date": "2026-03-01"}).status_code == 403
        sign_in_as(client, "cadre")
        assert client.get(url).status_code == 403
        sign_in_as(client, "admin_a")
        page = client.get(url)
        assert page.status_code == 200 and "职级变动记录" in page.get_data(as_text=True)
        bad = client.post(url, data={"band": "county_and_above", "effective_date": "2026-13-01"})
        assert bad.status_code == 400 and "2025-06-30" in bad.get_data(as_text=True)
        future = client.post(url, data={"band": "county_and_above", "effective_date": "2030-01-01"})
        assert future.status_code == 400 and "生效日期" in future.get_data(as_text=True)
        assert client.post(url, data={"band": "x", "corrects": "1" * 40}).status_code == 400
        ok = client.post(url, data={"band": "county_and_above", "effective_date": "2026-03-01", "reason": "任命"})
        assert ok.status_code == 302
        shown = client.get(url).get_data(as_text=True)
    assert "晋升" in shown and "任命" in shown
    assert ranks.history(cadre).promotions() == [(dt.date(2026, 3, 1), "county_and_above")]


def test_import_from_csv_is_idempotent(app: Flask, client, cast, tree) -> None:  # type: ignore[no-untyped-def]
    UserFactory(org_unit=tree.town_b, username="outsider")
    db.session.commit()
    body = (
        "用户名,职级,职级生效日期,说明\n"
        "cadre,县处级及以上,2026-03-01,任命\n"
        "outsider,乡科级,2026-03-01,\n"
        "cadre,乡科级,bad,\n"
    )
    data = ("\ufeff" + body).encode()
    with time_machine.travel(NOW, tick=True):
        sign_in_as(client, "admin_a")
        first = client.post("/credit/ranks/import", data={"file": (io.BytesIO(data), "r.csv")})
        again = client.post("/credit/ranks/import", data={"file": (io.BytesIO(data), "r.csv")})
    assert first.status_code == 200 and "记录 1 条" in first.get_data(as_text=True)
    assert "已有 1 条" in again.get_data(as_text=True)
    assert len(ranks.entries(cast["cadre"].id)) == 1


def test_cli_sets_and_lists(app: Flask, cast) -> None:  # type: ignore[no-untyped-def]
    runner = app.test_cli_runner()
    with time_machine.travel(NOW, tick=True):
        res = runner.invoke(
            args=[
                "lms",
                "credit",
                "rank",
                "set",
                "--user",
                "cadre",
                "--band",
                "county_and_above",
                "--date",
                "2026-03-01",
            ]
        )
        assert res.exit_code == 0, res.output
        bad = runner.invoke(
            args=["lms", "credit", "rank", "set", "--user", "cadre", "--band", "township", "--date", "x"]
        )
        assert bad.exit_code != 0
        listed = runner.invoke(args=["lms", "credit", "rank", "list", "--user", "cadre"])
    assert "township -> county_and_above" in listed.output and "promotion\t2026-03-01" in listed.output


def test_a_rank_changed_on_the_account_page_enters_the_history(app: Flask, client, cast, tree) -> None:  # type: ignore[no-untyped-def]
    from lms_core.events.services import dispatch

    cadre = cast["cadre"]
    site = UserFactory(org_unit=tree.city, username="site")
    grant(site, Role.SITE_ADMIN, tree.city)
    db.session.commit()
    with time_machine.travel(NOW, tick=True):
        sign_in_as(client, "site")
        r = client.post(
            f"/admin/users/{cadre.id}",
            data={
                "username": "cadre",
                "full_name": "李明",
                "org_code": tree.town_a.code,
                "rank_band": "county_and_above",
            },
        )
        assert r.status_code == 302, r.get_data(as_text=True)
    (entry,) = ranks.entries(cadre.id)
    assert (entry.from_band, entry.to_band, entry.effective_date) == (
        "township",
        "county_and_above",
        dt.date(2026, 9, 1),
    )
    assert ranks.reason_text(entry.reason) == "在人员信息页修改"
    event = db.session.execute(db.select(Event).where(Event.name == "user.updated")).scalar_one()
    dispatch(event.id)  # a replayed event records nothing twice
    assert len(ranks.entries(cadre.id)) == 1
    assert ranks.history(cadre).promotions() == [(dt.date(2026, 9, 1), "county_and_above")]


def test_a_personnel_import_with_the_rank_date_enters_the_history(app: Flask, cast, tree) -> None:  # type: ignore[no-untyped-def]
    from lms_core.accounts.importer import import_users
    from lms_core.jobs.services import commit

    cadre = cast["cadre"]
    header = "用户名,姓名,单位代码,职级,职级生效日期\n"
    with time_machine.travel(NOW, tick=True):
        bad = import_users(cast["admin_a"], (header + f"cadre,李明,{tree.town_a.code},县处级,2030-01-01\n").encode())
        assert not bad.ok and "职级生效日期" in bad.errors[0].message
        db.session.rollback()
        report = import_users(cast["admin_a"], (header + f"cadre,李明,{tree.town_a.code},县处级,2026/03/01\n").encode())
        assert report.ok and report.updated == 1
        commit()
    (entry,) = ranks.entries(cadre.id)
    assert (entry.to_band, entry.effective_date, entry.reason) == (
        "county_and_above",
        dt.date(2026, 3, 1),
        "source:import",
    )
    with time_machine.travel(NOW, tick=False):
        (p,) = [p for p in queries.progress(cadre, 2026) if p.key == "promotion"]
    assert p.deadline == dt.date(2027, 2, 28)


def test_an_account_created_by_the_import_keeps_its_rank_date(app: Flask, cast, tree) -> None:  # type: ignore[no-untyped-def]
    """A new account's 职级生效日期 is its first entry: dated, no promotion (the band before is unknown)."""
    from lms_core.accounts.importer import import_users
    from lms_core.accounts.models import User
    from lms_core.events.models import Event
    from lms_core.events.services import dispatch
    from lms_core.jobs.services import commit

    header = "用户名,姓名,单位代码,职级,职级生效日期\n"
    body = f"newcomer,赵新,{tree.town_a.code},县处级,2026/03/01\nundated,钱未,{tree.town_a.code},乡科级,\n"
    with time_machine.travel(NOW, tick=True):
        report = import_users(cast["admin_a"], (header + body).encode())
        assert report.ok and report.created == 2
        commit()
    newcomer = db.session.execute(db.select(User).where(User.username == "newcomer")).scalar_one()
    undated = db.session.execute(db.select(User).where(User.username == "undated")).scalar_one()
    (entry,) = ranks.entries(newcomer.id)
    assert (entry.from_band, entry.to_band, entry.effective_date, entry.reason) == (
        None,
        "county_and_above",
        dt.date(2026, 3, 1),
        "source:import",
    )
    assert ranks.entries(undated.id) == []  # no date given: nothing to record
    hist = ranks.history(newcomer)
    assert hist.band_on(dt.date(2026, 3, 1)) == "county_and_above" and hist.promotions() == []
    event = (
        db.session.execute(db.select(Event).where(Event.name == "users.imported").order_by(Event.id.desc()))
        .scalars()
        .first()
    )
    assert event is not None
    dispatch(event.id)  # a replayed event records nothing twice
    assert len(ranks.entries(newcomer.id)) == 1
    # A later promotion by the same import path is dated and counted as one.
    with time_machine.travel(NOW, tick=True):
        line = f"undated,钱未,{tree.town_a.code},县处级,2026-09-01\n"
        again = import_users(cast["admin_a"], (header + line).encode())
        assert again.ok and again.updated == 1
        commit()
    assert ranks.history(undated).promotions() == [(dt.date(2026, 9, 1), "county_and_above")]


def test_the_requirement_report_uses_the_band_at_the_right_date(app: Flask, cast) -> None:  # type: ignore[no-untyped-def]
    """Promoted in March 2026: counted under the yearly 90 for 2025, under the 550 cycle for 2026."""
    from plugins.credit_bank.requirement_report import RequirementReport

    cadre = cast["cadre"]
    promote(cadre, dt.date(2026, 3, 1))

    def names(year: int, key: str, band: str | None = None) -> set[str]:
        report = RequirementReport(viewer=cast["admin_a"], year=year, key=key, today=dt.date(2026, 9, 1), band=band)
        return {p["user"].username for p in report._people()}

    assert "cadre" in names(2025, "annual_township") and "cadre" in names(2025, "annual_township", "township")
    assert "cadre" not in names(2025, "cycle_county")
    assert "cadre" in names(2026, "cycle_county", "county_and_above")
    assert "cadre" not in names(2026, "annual_township")
