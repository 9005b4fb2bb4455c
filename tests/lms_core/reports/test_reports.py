"""调训 and hours reports: scoped in SQL, every export equal to the rows on screen, Chinese intact."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from lms_core.accounts.models import RankBand, Role, User, UserStatus
from lms_core.enrolments.models import Assignment, Enrolment
from lms_core.extensions import db
from lms_core.learning.models import DailyTotal, LessonProgress, ProgressStatus
from lms_core.learning.services import new_registration
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.lms_core.learning.fixtures import build_course

PAST = dt.datetime(2020, 6, 30, 16, tzinfo=dt.UTC)
FUTURE = dt.datetime(2099, 6, 30, 16, tzinfo=dt.UTC)


def _enrol(user, course, *, completed=False):
    db.session.add(
        Enrolment(
            user_id=user.id,
            course_id=course.id,
            registration=new_registration(),
            completed_at=dt.datetime(2020, 5, 4, 2, tzinfo=dt.UTC) if completed else None,
        )
    )


@pytest.fixture
def world(app, tree):
    kit = build_course(tree)
    course = kit.course
    city_admin = UserFactory(username="city_admin", org_unit=tree.city, rank_band=RankBand.COUNTY_AND_ABOVE)
    grant(city_admin, Role.ORG_ADMIN, tree.city)
    county_admin = UserFactory(username="nl_admin", org_unit=tree.county_a, rank_band=RankBand.COUNTY_AND_ABOVE)
    grant(county_admin, Role.ORG_ADMIN, tree.county_a)
    done = UserFactory(username="done", full_name="城关完成", org_unit=tree.town_a)
    busy = UserFactory(username="busy", full_name="红星在学", org_unit=tree.village_a, rank_band=RankBand.TOWNSHIP)
    UserFactory(username="idle", full_name='=HYPERLINK("http://x")', org_unit=tree.village_a)
    UserFactory(username="gone", org_unit=tree.village_a, status=UserStatus.DISABLED)
    far = UserFactory(username="far", full_name="石岗完成", org_unit=tree.town_b)
    UserFactory(username="plain", org_unit=tree.town_a)
    db.session.flush()
    _enrol(done, course, completed=True)
    _enrol(busy, course)
    _enrol(far, course, completed=True)
    db.session.add(
        LessonProgress(user_id=busy.id, lesson_id=kit.video.id, course_id=course.id, status=ProgressStatus.IN_PROGRESS)
    )
    past = Assignment(course_id=course.id, org_unit_id=tree.city.id, deadline=PAST, created_by_id=city_admin.id)
    other = Assignment(course_id=course.id, org_unit_id=tree.county_b.id, deadline=FUTURE)
    db.session.add_all([past, other])
    for user, day, ms in [
        (done, dt.date(2026, 1, 5), 5_400_000),
        (done, dt.date(2026, 3, 1), 1_800_000),
        (busy, dt.date(2026, 1, 9), 3_600_000),
        (far, dt.date(2026, 1, 9), 7_200_000),
        (far, dt.date(2025, 12, 31), 9_000_000),
    ]:
        db.session.add(DailyTotal(user_id=user.id, day=day, credited_ms=ms))
    db.session.commit()
    return past, other


def screen_rows(page: str, table_id: str) -> list[list[str]]:
    body = page.split(f'id="{table_id}"', 1)[1].split("</tbody>", 1)[0].split("<tbody>", 1)[1]
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = [html.unescape(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        if 'class="muted"' not in tr:
            rows.append([re.sub(r"<[^>]+>", "", c) for c in cells])
    return rows


def csv_rows(response) -> list[list[str]]:
    raw = response.get_data().decode("utf-8")
    assert raw.startswith("\ufeff") and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(raw[1:])))


def xlsx_rows(response) -> list[list[str]]:
    sheet = load_workbook(io.BytesIO(response.get_data()), read_only=True).worksheets[0]
    out = []
    for row in sheet.iter_rows(values_only=True):
        out.append(["" if v is None else str(v) for v in row])
    return out


def numeric(cells: list[str]) -> list[object]:
    """Excel keeps 2.00 as the number 2: compare numbers as numbers, text as text."""
    out: list[object] = []
    for cell in cells:
        try:
            out.append(Decimal(cell))
        except ArithmeticError:
            out.append(cell)
    return out


def unquote(cells: list[str]) -> list[str]:
    """The screen shows a name as typed; files carry the anti-formula quote (csv_export)."""
    return [c[1:] if c.startswith("'=") else c for c in cells]


def check_exports_equal_screen(client, url: str, table_id: str, headers_contain: str):
    page = client.get(url).get_data(as_text=True)
    shown = screen_rows(page, table_id)
    base, _, query = url.partition("?")
    for fmt, reader in (("csv", csv_rows), ("xlsx", xlsx_rows)):
        response = client.get(f"{base}.{fmt}" + (f"?{query}" if query else ""))
        assert response.status_code == 200
        rows = reader(response)
        assert headers_contain in rows[0]
        if fmt == "csv":  # the CSV carries the very strings shown
            assert [unquote(r) for r in rows[1:]] == shown
        else:
            assert [numeric(unquote(r)) for r in rows[1:]] == [numeric(r) for r in shown]
    return shown


def test_city_admin_sees_each_unit_and_band(client, world, tree):
    past, _ = world
    login(client, "city_admin")
    shown = check_exports_equal_screen(client, f"/reports/assignments/{past.id}", "summary-table", "完成率")
    by_unit = {(r[0], r[2]): r[3:] for r in shown}
    # 城关镇: done (completed) and plain (not started, overdue); 红星村: busy (township, started, overdue)
    # and the formula-named idle cadre; the disabled account is not reached.
    assert by_unit[("城关镇", "一般干部")] == ["2", "1", "1", "1", "50.0%"]
    assert by_unit[("红星村", "乡科级")] == ["1", "1", "0", "1", "0.0%"]
    assert by_unit[("红星村", "一般干部")] == ["1", "0", "0", "1", "0.0%"]
    assert by_unit[("石岗镇", "一般干部")] == ["1", "1", "1", "0", "100.0%"]


def test_county_admin_sees_only_the_county(client, world, tree):
    past, other = world
    login(client, "nl_admin")
    index = client.get("/reports/").get_data(as_text=True)
    assert f"/reports/assignments/{past.id}" in index and f"/reports/assignments/{other.id}" not in index
    shown = check_exports_equal_screen(client, f"/reports/assignments/{past.id}", "summary-table", "单位")
    # the admin is reached too (county unit); subtotals for the county and the township, no city line
    assert {r[0] for r in shown} == {"城关镇", "红星村", "南岭县", "南岭县（含下级）", "城关镇（含下级）", "合计"}
    people = check_exports_equal_screen(client, f"/reports/assignments/{past.id}/people", "people-table", "姓名")
    assert "石岗完成" not in {r[0] for r in people}
    # asking for the other county's unit by id yields nobody, in every format
    assert (
        screen_rows(
            client.get(f"/reports/assignments/{past.id}/people?unit={tree.town_b.id}").get_data(as_text=True),
            "people-table",
        )
        == []
    )
    assert csv_rows(client.get(f"/reports/assignments/{past.id}/people.csv?unit={tree.town_b.id}"))[1:] == []
    outside = client.get(f"/reports/assignments/{other.id}")
    assert outside.status_code == 404 and "页面不存在" in outside.get_data(as_text=True)
    assert client.get(f"/reports/assignments/{other.id}.xlsx").status_code == 404
    denied = client.get("/reports/hours?org=360122")
    assert denied.status_code == 403 and "权限" in denied.get_data(as_text=True)
    assert client.get("/reports/hours.csv?org=360122").status_code == 403


def test_drill_down_filters_by_unit_band_and_status(client, world, tree):
    past, _ = world
    login(client, "city_admin")
    page = client.get(f"/reports/assignments/{past.id}").get_data(as_text=True)
    link = html.unescape(re.search(rf'href="([^"]*/people\?[^"]*unit={tree.village_a.id}[^"]*)"', page).group(1))
    assert "band=" in link
    rows = check_exports_equal_screen(
        client, f"/reports/assignments/{past.id}/people?unit={tree.village_a.id}&band=township", "people-table", "状态"
    )
    assert rows == [["红星在学", "busy", "红星村", "乡科级", "已逾期", ""]]
    overdue = check_exports_equal_screen(
        client, f"/reports/assignments/{past.id}/people?status=overdue", "people-table", "状态"
    )
    # everyone reached and not done (the course's author in the city unit too); not the two who completed
    assert {"busy", "idle", "plain", "nl_admin", "city_admin"} <= {r[1] for r in overdue}
    assert {"done", "far"}.isdisjoint({r[1] for r in overdue}) and len(overdue) == 6
    completed = check_exports_equal_screen(
        client, f"/reports/assignments/{past.id}/people?status=completed", "people-table", "完成时间(北京时间)"
    )
    assert {(r[1], r[5]) for r in completed} == {("done", "2020-05-04 10:00"), ("far", "2020-05-04 10:00")}


def test_formula_names_are_inert_in_csv_and_xlsx(client, world, tree):
    past, _ = world
    login(client, "city_admin")
    url = f"/reports/assignments/{past.id}/people"
    exported = csv_rows(client.get(url + f".csv?status=overdue&band=general&unit={tree.village_a.id}"))
    assert exported[1][:2] == ['\'=HYPERLINK("http://x")', "idle"]
    sheet = load_workbook(io.BytesIO(client.get(url + f".xlsx?unit={tree.village_a.id}&band=general").get_data()))
    cell = sheet.worksheets[0]["A2"]
    assert cell.value == '\'=HYPERLINK("http://x")' and cell.data_type == "s"


def test_hours_per_unit_and_month(app, client, world, tree):
    login(client, "city_admin")
    rows = check_exports_equal_screen(client, "/reports/hours?year=2026", "hours-table", "1月")
    by_unit = {r[0]: r for r in rows}
    assert by_unit["城关镇"][2:5] == ["1.50", "0.00", "0.50"] and by_unit["城关镇"][-1] == "2.00"
    assert by_unit["红星村"][2] == "1.00" and by_unit["石岗镇"][2] == "2.00"  # 2025 not counted
    assert by_unit["石岗镇"][-1] == "2.00"
    client = app.test_client()
    login(client, "nl_admin")
    county = check_exports_equal_screen(client, "/reports/hours?year=2026", "hours-table", "合计学时")
    assert {r[0] for r in county} == {"城关镇", "红星村", "南岭县（含下级）", "城关镇（含下级）", "合计"}
    assert not any(r[0].startswith("江州市") for r in county)  # the city is outside the county admin's scope
    sub = check_exports_equal_screen(client, "/reports/hours?year=2026&org=360121001001", "hours-table", "单位")
    assert [r[0] for r in sub] == ["红星村", "合计"]


@pytest.mark.parametrize(
    "url",
    [
        "/reports/hours?year=99999999999999999999999",
        "/reports/hours?year=1999",
        "/reports/hours.xlsx?org=NOPE",
        "/reports/hours?org=%00",
    ],
)
def test_bad_hours_input_is_a_chinese_400(client, world, url):
    login(client, "city_admin")
    response = client.get(url)
    assert response.status_code == 400
    assert re.search(r"[\u4e00-\u9fff]", response.get_data(as_text=True).split("<main", 1)[-1])


def test_bad_drill_down_input(client, world):
    past, _ = world
    login(client, "city_admin")
    assert client.get(f"/reports/assignments/{past.id}/people?band=colonel").status_code == 400
    assert client.get(f"/reports/assignments/{past.id}/people?status=%00").status_code == 400
    assert client.get(f"/reports/assignments/{past.id}/people?unit=99999999999999999999").status_code == 200
    assert client.get(f"/reports/assignments/{past.id}.pdf").status_code == 404
    assert client.get("/reports/assignments/99999999999").status_code == 404


def test_learners_have_no_reports(client, world):
    past, _ = world
    login(client, "plain")
    for url in (
        "/reports/",
        f"/reports/assignments/{past.id}",
        "/reports/hours",
        "/reports/hours.csv",
        f"/reports/assignments/{past.id}/people.xlsx",
    ):
        assert client.get(url).status_code == 403


def test_parent_units_roll_up_and_totals_add_up(client, world, tree):
    """Every subtotal is the sum of the rows under it; the total is the sum of the unit rows."""
    past, _ = world
    login(client, "city_admin")
    shown = check_exports_equal_screen(client, f"/reports/assignments/{past.id}", "summary-table", "完成率")
    names = [r[0] for r in shown]
    # tree order: the city's subtotal first, each county's before its townships, the total last
    assert names[0] == "江州市（含下级）" and names[-1] == "合计"
    assert names.index("南岭县（含下级）") < names.index("城关镇（含下级）") < names.index("红星村")
    assert names.index("青山县（含下级）") < names.index("石岗镇")
    codes = {"江州市（含下级）": "3601", "南岭县（含下级）": "360121", "城关镇（含下级）": "360121001"}
    units = [r for r in shown if "（含下级）" not in r[0] and r[0] != "合计"]
    for name, code in codes.items():
        row = next(r for r in shown if r[0] == name)
        assert row[2] == "全部职级"
        under = [r for r in units if r[1].startswith(code)]
        for col in range(3, 7):
            assert int(row[col]) == sum(int(r[col]) for r in under), (name, col)
    total = shown[-1]
    assert [int(c) for c in total[3:7]] == [sum(int(r[c]) for r in units) for c in range(3, 7)]
    assert total[7] == f"{100 * int(total[5]) / int(total[3]):.1f}%"
    # a subtotal opens everyone under its unit
    page = client.get(f"/reports/assignments/{past.id}").get_data(as_text=True)
    assert f"people?subtree={tree.county_a.id}" in page
    people = screen_rows(
        client.get(f"/reports/assignments/{past.id}/people?subtree={tree.county_a.id}").get_data(as_text=True),
        "people-table",
    )
    county = next(r for r in shown if r[0] == "南岭县（含下级）")
    assert len(people) == int(county[3]) and "石岗完成" not in {r[0] for r in people}


def test_hours_roll_up_to_the_city(client, world):
    login(client, "city_admin")
    rows = check_exports_equal_screen(client, "/reports/hours?year=2026", "hours-table", "合计学时")
    by_name = {r[0]: r for r in rows}
    assert by_name["江州市（含下级）"][2] == "4.50" and by_name["江州市（含下级）"][-1] == "5.00"
    assert by_name["南岭县（含下级）"][-1] == "3.00" and by_name["城关镇（含下级）"][-1] == "3.00"
    assert rows[-1][0] == "合计" and rows[-1][-1] == "5.00"


def test_a_completion_day_links_to_that_day_as_a_picture(client, world):
    past, _ = world
    login(client, "nl_admin")
    page = client.get(f"/reports/assignments/{past.id}/people?status=completed").get_data(as_text=True)
    done = db.session.execute(select(User.id).where(User.username == "done")).scalar_one()
    link = f'href="/audit/users/{done}/days/2020-05-04"'  # the Beijing day of 2020-05-04 10:00
    assert link in page and page.count("/audit/users/") == 1  # only rows naming a person and a day
    assert client.get(f"/audit/users/{done}/days/2020-05-04").status_code == 200
