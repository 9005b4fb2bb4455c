"""The requirement report: done / on track / behind per unit and rank, rolled up, scoped, exports = screen."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from lms_core.accounts.models import RankBand, Role
from lms_core.extensions import db
from plugins.credit_bank.requirement_report import elapsed_share, status_of
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.lms_core.reports.test_reports import check_exports_equal_screen, csv_rows, screen_rows
from tests.plugins.credit_bank.helpers import grant_credit

#: 1 July 2026, noon in Beijing: 182 of the year's 365 days have passed (share 0.4986).
MIDYEAR = dt.datetime(2026, 7, 1, 4, tzinfo=dt.UTC)
URL = "/credit/requirements/report?key=annual_township&year=2026"


@pytest.fixture
def people(app, tree):
    city_admin = UserFactory(username="city_admin", org_unit=tree.city, rank_band=RankBand.COUNTY_AND_ABOVE)
    grant(city_admin, Role.ORG_ADMIN, tree.city)
    county_admin = UserFactory(username="nl_admin", org_unit=tree.county_a, rank_band=RankBand.COUNTY_AND_ABOVE)
    grant(county_admin, Role.ORG_ADMIN, tree.county_a)
    auditor = UserFactory(username="nl_audit", org_unit=tree.county_a, rank_band=RankBand.COUNTY_AND_ABOVE)
    grant(auditor, Role.AUDITOR, tree.county_a)
    done = UserFactory(username="done", full_name="城关完成", org_unit=tree.town_a)
    track = UserFactory(username="track", full_name="红星在途", org_unit=tree.village_a, rank_band=RankBand.TOWNSHIP)
    late = UserFactory(username="late", full_name="红星落后", org_unit=tree.village_a)
    far = UserFactory(username="far", full_name="石岗落后", org_unit=tree.town_b)
    db.session.commit()
    grant_credit(done.id, 6000, "done-online", ledger="WL_XS")
    grant_credit(done.id, 3000, "done-class", ledger="JZ_XS")
    grant_credit(track.id, 5000, "track-online")
    grant_credit(late.id, 1000, "late-online")
    grant_credit(late.id, 9000, "late-party", ledger="DY_XS")  # party study does not count here
    grant_credit(far.id, 8000, "far-2025", day=dt.date(2025, 5, 1))  # another year
    db.session.commit()
    return {"done": done, "track": track, "late": late, "far": far}


def test_share_and_status():
    start, end = dt.date(2026, 1, 1), dt.date(2026, 12, 31)
    assert elapsed_share(start, end, dt.date(2025, 12, 31)) == 0
    assert elapsed_share(start, end, dt.date(2027, 1, 1)) == 1
    assert elapsed_share(start, end, dt.date(2026, 7, 1)) == pytest.approx(182 / 365)
    assert status_of(9000, 9000, 0.1) == "done"
    assert status_of(4500, 9000, 0.5) == "on_track"
    assert status_of(4499, 9000, 0.5) == "behind"


@time_machine.travel(MIDYEAR, tick=False)
def test_city_admin_sees_each_unit_rolled_up(client, people, tree):
    login(client, "city_admin")
    shown = check_exports_equal_screen(client, URL, "requirement-table", "进度正常")
    by_unit = {(r[0], r[2]): r[3:] for r in shown}
    assert by_unit[("城关镇", "一般干部")] == ["1", "1", "0", "0", "100.0%"]
    assert by_unit[("红星村", "乡科级")] == ["1", "0", "1", "0", "0.0%"]
    assert by_unit[("红星村", "一般干部")] == ["1", "0", "0", "1", "0.0%"]
    assert by_unit[("石岗镇", "一般干部")] == ["1", "0", "0", "1", "0.0%"]
    assert by_unit[("南岭县（含下级）", "全部职级")] == ["3", "1", "1", "1", "33.3%"]
    assert shown[0][0] == "江州市（含下级）" and shown[-1][:1] + shown[-1][3:] == ["合计", "4", "1", "1", "2", "25.0%"]
    # county-level cadres fall under the five-year rule, not this one
    assert not any(r[2] == "县处级及以上" for r in shown)


@time_machine.travel(MIDYEAR, tick=False)
def test_drill_down_to_people(client, people, tree):
    login(client, "city_admin")
    page = client.get(URL).get_data(as_text=True)
    assert f"subtree={tree.county_a.id}" in page and f"unit={tree.village_a.id}" in page
    behind = check_exports_equal_screen(
        client, "/credit/requirements/people?key=annual_township&year=2026&status=behind", "requirement-people", "状态"
    )
    assert sorted((r[0], r[5], r[6]) for r in behind) == [("石岗落后", "0.00", "落后"), ("红星落后", "10.00", "落后")]
    sub = screen_rows(
        client.get(f"/credit/requirements/people?key=annual_township&year=2026&subtree={tree.county_a.id}").get_data(
            as_text=True
        ),
        "requirement-people",
    )
    assert {r[0] for r in sub} == {"城关完成", "红星在途", "红星落后"}
    band = screen_rows(
        client.get(
            f"/credit/requirements/people?key=annual_township&year=2026&unit={tree.village_a.id}&band=township"
        ).get_data(as_text=True),
        "requirement-people",
    )
    assert band == [["红星在途", "track", "红星村", "乡科级", "90.00", "50.00", "进度正常"]]


@time_machine.travel(MIDYEAR, tick=False)
@pytest.mark.parametrize("username", ["nl_admin", "nl_audit"])
def test_county_viewers_see_only_their_county(client, people, tree, username):
    login(client, username)
    shown = check_exports_equal_screen(client, URL, "requirement-table", "单位")
    names = {r[0] for r in shown}
    assert "石岗镇" not in names and not any(n.startswith("江州市") for n in names)
    assert shown[-1][3] == "3"
    people_csv = csv_rows(client.get("/credit/requirements/people.csv?key=annual_township&year=2026"))
    assert "石岗落后" not in {r[0] for r in people_csv}
    assert client.get(f"{URL}&org=360122").status_code == 403
    # another county's unit by id: nobody
    assert (
        csv_rows(client.get(f"/credit/requirements/people.csv?key=annual_township&year=2026&unit={tree.town_b.id}"))[1:]
        == []
    )


def test_the_report_is_linked_from_the_reports_index(client, people):
    login(client, "city_admin")
    index = client.get("/reports/").get_data(as_text=True)
    assert "/credit/requirements/" in index and "学时要求完成情况" in index
    listing = client.get("/credit/requirements/?year=2026").get_data(as_text=True)
    assert "key=annual_township" in listing and "key=promotion" not in listing


@pytest.mark.parametrize(
    "query",
    [
        "key=nope&year=2026",
        "key=annual_township&year=1999",
        "key=annual_township&year=99999999999999",
        "key=annual_township&org=%00",
        "key=annual_township&org=NOPE",
    ],
)
def test_bad_input_is_a_chinese_400(client, people, query):
    login(client, "city_admin")
    response = client.get(f"/credit/requirements/report?{query}")
    assert response.status_code == 400
    assert any("\u4e00" <= ch <= "\u9fff" for ch in response.get_data(as_text=True).split("<main", 1)[-1])
    people_page = client.get(
        f"/credit/requirements/people?key=annual_township&year=2026&{query.split('&')[0]}&status=x"
    )
    assert people_page.status_code == 400


def test_learners_get_no_report(client, people):
    login(client, "done")
    for url in ("/credit/requirements/", URL, "/credit/requirements/people.xlsx?key=annual_township&year=2026"):
        assert client.get(url).status_code == 403
    assert "/credit/requirements/" not in client.get("/reports/").get_data(as_text=True)
