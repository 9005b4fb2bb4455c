"""The credit bank's dashboard chart: posted hours against yearly targets, per compared unit and rank band."""

from __future__ import annotations

import json
import re

from tests.conftest import login
from tests.lms_core.reports.test_reports import screen_rows
from tests.plugins.credit_bank.test_requirement_report import people  # noqa: F401 - the shared fixture


def _data(page: str) -> dict:
    raw = re.search(r'<script type="application/json" id="chart-credit-data">(.*?)</script>', page, re.S)
    assert raw
    return json.loads(raw.group(1))


def test_hours_against_required_by_unit_and_band(client, people):  # noqa: F811
    login(client, "city_admin")
    page = client.get("/reports/dashboard?year=2026").get_data(as_text=True)
    data = _data(page)
    assert data["categories"] == [
        "南岭县 · 县处级及以上",
        "南岭县 · 乡科级",
        "南岭县 · 一般干部",
        "青山县 · 一般干部",
    ]
    earned, required = (s["values"] for s in data["series"])
    # 2026 only (far's 2025 credit is another year); every credit type counts toward the yearly figure
    assert earned == [0, 50, 190, 0]
    # county level: the five-year plan's yearly share (110 h) each for the admin and the auditor
    assert required == [220, 90, 180, 90]
    rows = screen_rows(page, "chart-credit-table")
    assert rows[2] == ["南岭县 · 一般干部", "190.00", "180.00", "2", "105.6%"]


def test_county_admin_sees_only_the_county(client, people):  # noqa: F811
    login(client, "nl_admin")
    page = client.get("/reports/dashboard?year=2026").get_data(as_text=True)
    data = _data(page)
    assert all(c.startswith("城关镇") for c in data["categories"])
    assert "青山县" not in json.dumps(data, ensure_ascii=False)


def test_a_promoted_cadre_counts_under_the_band_of_the_reference_date(client, people):  # noqa: F811
    import datetime as dt

    import time_machine

    from plugins.credit_bank import ranks

    # 红星在途 (township) becomes county level on 1 June 2026: the year is measured at its end.
    ranks.record(people["track"], band="county_and_above", effective=dt.date(2026, 6, 1), actor=None)
    with time_machine.travel(dt.datetime(2027, 1, 10, tzinfo=dt.UTC), tick=False):
        login(client, "city_admin")
        data = _data(client.get("/reports/dashboard?year=2026").get_data(as_text=True))
    earned, required = (s["values"] for s in data["series"])
    by_category = dict(zip(data["categories"], zip(earned, required, strict=True), strict=True))
    assert "南岭县 · 乡科级" not in by_category  # nobody left in the township band
    assert by_category["南岭县 · 县处级及以上"] == (50, 330)  # three county-level cadres, 110 h each
