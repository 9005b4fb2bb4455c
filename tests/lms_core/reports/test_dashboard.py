"""The leaders' dashboard: SQL aggregates in scope, data in JSON tags (CSP), a table under every chart."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from lms_core.extensions import db
from lms_core.i18n import SHANGHAI
from tests.conftest import login
from tests.lms_core.reports.test_reports import screen_rows, world  # noqa: F401 - the shared fixture

ROOT = Path(__file__).resolve().parents[3]


def chart_data(page: str, key: str) -> dict:
    raw = re.search(rf'<script type="application/json" id="chart-{key}-data">(.*?)</script>', page, re.S)
    assert raw, key
    return json.loads(raw.group(1))


def test_city_dashboard_figures(client, world, tree):  # noqa: F811
    login(client, "city_admin")
    page = client.get("/reports/dashboard?year=2026").get_data(as_text=True)
    assert "数据看板" in page and "江州市" in page
    monthly = chart_data(page, "monthly")
    assert monthly["kind"] == "line" and len(monthly["categories"]) == 12
    # January: 1.5 h (城关) + 1 h (红星) + 2 h (石岗); March 0.5 h; 2025's day does not count
    assert monthly["series"][0]["values"][:3] == [4.5, 0, 0.5]
    # the table under the chart carries the same figures, and the learners per month
    assert screen_rows(page, "chart-monthly-table")[0] == ["1月", "4.50", "3"]
    units = chart_data(page, "units")
    assert units["categories"] == ["南岭县", "青山县"]  # the city's children, by code
    rows = {r[0]: r for r in screen_rows(page, "chart-units-table")}
    assert rows["南岭县"][3] == "3.00" and rows["青山县"][3] == "2.00"
    assert float(rows["南岭县"][1]) == pytest.approx(3.0 / int(rows["南岭县"][2]), abs=0.01)
    # Completion counts the enrolments made in a Beijing year: the world's are made today.
    this_year = dt.datetime.now(SHANGHAI).year
    page = client.get(f"/reports/dashboard?year={this_year}").get_data(as_text=True)
    completion = chart_data(page, "completion")
    # 南岭县: 城关完成 completed, 红星在学 still studying; 青山县: 石岗完成 completed.
    assert completion["categories"] == ["南岭县", "青山县"]
    assert completion["series"][0]["values"] == [50.0, 100.0]
    assert screen_rows(page, "chart-completion-table") == [
        ["南岭县", "50.00", "2", "1"],
        ["青山县", "100.00", "1", "1"],
    ]


def test_county_admin_sees_only_the_county(client, world, tree):  # noqa: F811
    login(client, "nl_admin")
    page = client.get("/reports/dashboard?year=2026").get_data(as_text=True)
    assert "南岭县" in page.split("<h1>", 1)[1].split("</h1>", 1)[0]  # opens on the admin's own county
    assert chart_data(page, "monthly")["series"][0]["values"][0] == 2.5  # 石岗镇's 2 h are not counted
    assert chart_data(page, "units")["categories"] == ["城关镇"]
    assert "石岗镇" not in page and "青山县" not in page.split("</nav>", 2)[-1]
    assert client.get("/reports/dashboard?year=2026&org=360122").status_code == 403
    sub = client.get("/reports/dashboard?year=2026&org=360121001001").get_data(as_text=True)
    assert chart_data(sub, "units")["categories"] == ["红星村"]  # a unit without children compares itself


def test_worst_feedback_in_scope(client, world, tree):  # noqa: F811
    from lms_core.accounts.models import User
    from lms_core.courses.models import Lesson
    from lms_core.enrolments.models import Enrolment
    from lms_core.learning.feedback import submit_feedback

    survey = db.session.execute(db.select(Lesson).where(Lesson.title == "学情评估")).scalar_one()
    busy = db.session.execute(db.select(User).where(User.username == "busy")).scalar_one()
    enrolment = db.session.execute(
        db.select(Enrolment).where(Enrolment.user_id == busy.id, Enrolment.course_id == survey.course_id)
    ).scalar_one()
    submit_feedback(busy, survey, enrolment, 2, "")  # through the service: the survey's rated question
    db.session.commit()
    login(client, "city_admin")
    page = client.get(f"/reports/dashboard?year={_this_year()}").get_data(as_text=True)
    feedback = chart_data(page, "feedback")
    assert feedback["series"][0]["values"] == [2.0]
    assert screen_rows(page, "chart-feedback-table")[0][1:] == ["2.00", "江州市", "1"]


def _this_year() -> int:
    import datetime as dt

    return dt.datetime.now(dt.UTC).year


def test_no_inline_script_and_echarts_is_vendored(client, world):  # noqa: F811
    login(client, "city_admin")
    response = client.get("/reports/dashboard?year=2026")
    page = response.get_data(as_text=True)
    for tag in re.findall(r"<script\b[^>]*>", page):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert "/static/vendor/echarts/echarts.common.min.js" in page and "/static/js/dashboard.js" in page
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"].split("script-src", 1)[1].split(";")[0]
    assert client.get("/static/vendor/echarts/echarts.common.min.js").status_code == 200
    vendor = ROOT / "themes/default/static/vendor/echarts"
    assert "Apache License" in (vendor / "LICENSE").read_text()
    assert (vendor / "NOTICE").exists()


@pytest.mark.parametrize("query", ["year=1999", "year=99999999999999999999", "org=NOPE", "org=%00"])
def test_bad_input_is_a_chinese_400(client, world, query):  # noqa: F811
    login(client, "city_admin")
    response = client.get(f"/reports/dashboard?{query}")
    assert response.status_code == 400
    assert re.search(r"[\u4e00-\u9fff]", response.get_data(as_text=True).split("<main", 1)[-1])


def test_learners_have_no_dashboard(client, world):  # noqa: F811
    login(client, "plain")
    assert client.get("/reports/dashboard").status_code == 403
