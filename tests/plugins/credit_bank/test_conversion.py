"""The credit conversion page: rules as a form, validation in Chinese, a preview, a version on save."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from flask import Flask

from lms_core.events.models import Event
from lms_core.extensions import db
from plugins.credit_bank import policy as P
from plugins.credit_bank import queries
from plugins.credit_bank.models import Policy
from tests.factories import UserFactory
from tests.plugins.credit_bank.helpers import completed, sign_in_as

URL = "/credit/policy/conversion"
NOW = dt.datetime(2026, 5, 10, 4, tzinfo=dt.UTC)


def form(**over: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "nominal",
        "offline_day": "6",
        "minutes_per_hour": "45",
        "year_end": "expire",
        "action": "preview",
    }
    data.update(over)
    return data


def versions() -> int:
    P.ensure_default()
    db.session.commit()  # an open write would lock SQLite for the requests
    return db.session.query(Policy).count()


def test_only_site_admins(client, site) -> None:  # type: ignore[no-untyped-def]
    sign_in_as(client, "admin_a")
    assert client.get(URL).status_code == 403
    assert client.post(URL, data=form(action="save", effective_from="2026-01-01")).status_code == 403
    sign_in_as(client, "site")
    page = client.get(URL)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "学时折算规则" in html
    assert 'value="nominal" checked' in html and 'name="offline_day" id="offline_day" value="6.00"' in html


def test_preview_of_a_course_and_a_claim_under_the_draft(client, site, tree) -> None:  # type: ignore[no-untyped-def]
    from tests.lms_core.learning.fixtures import build_course

    kit = build_course(tree)  # 2.00 labelled, one required 100 s video (1 minute)
    db.session.commit()
    before = versions()
    sign_in_as(client, "site")
    r = client.post(
        URL,
        data=form(
            kind="tiered_minutes",
            tier_min_0="30",
            tier_hours_0="1",
            tier_min_1="1",
            tier_hours_1="0.5",
            tier_min_2="0",
            tier_hours_2="0.25",
            offline_day="7.5",
            cap_JZ_XS_per_item="20",
            course_id=str(kit.course.id),
            days="3",
        ),
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 200, html
    assert "习近平新时代中国特色社会主义思想专题" in html and "必修视频共 1 分钟" in html
    # The course: 2.00 now (labelled hours), 0.50 under the draft's 1-minute tier.
    assert '<td class="now">2.00</td><td class="draft">0.50</td><td class="counted">0.50</td>' in html
    # Three days of an offline class: 18.00 now, 22.50 under the draft, 20.00 after the per-item cap.
    assert '<td class="now">18.00</td><td class="draft">22.50</td><td class="counted">20.00</td>' in html
    assert versions() == before  # a preview records nothing


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"offline_day": "abc"}, "最多两位小数"),
        ({"offline_day": "1.234"}, "最多两位小数"),
        ({"offline_day": "-1"}, "最多两位小数"),
        ({"offline_day": "1e5"}, "最多两位小数"),
        ({"offline_day": "6\x00"}, ""),
        ({"offline_day": "999999.99"}, "最多"),
        ({"offline_day": ""}, "请填写学时数"),
        ({"kind": "fixed", "fixed": ""}, "请填写学时数"),
        ({"kind": "study_time", "minutes_per_hour": "0"}, "1 至 600"),
        (
            {
                "kind": "tiered_minutes",
                "tier_min_0": "10",
                "tier_hours_0": "1",
                "tier_min_1": "20",
                "tier_hours_1": "2",
            },
            "从长到短",
        ),
        ({"kind": "tiered_minutes"}, "至少填写一个档位"),
        ({"kind": "bogus"}, "请选择"),
        ({"cap_WL_XS_per_day": "NaN"}, "最多两位小数"),
        ({"days": "100000"}, "1 至 366"),
    ],
)
def test_bad_input_is_refused_in_chinese_and_saves_nothing(client, site, fields, message) -> None:  # type: ignore[no-untyped-def]
    before = versions()
    sign_in_as(client, "site")
    r = client.post(URL, data=form(action="save", effective_from="2026-01-01", **fields))
    html = r.get_data(as_text=True)
    if fields.get("offline_day") == "6\x00":  # a NUL byte is dropped, the rest is a fine amount
        assert r.status_code == 302
        return
    assert r.status_code == 400 and "规则未保存" in html and message in html
    assert versions() == before


def test_save_records_a_version_that_later_postings_use(app: Flask, client, site, tree) -> None:  # type: ignore[no-untyped-def]
    before = versions()
    sign_in_as(client, "site")
    assert client.post(URL, data=form(action="save")).status_code == 400  # no effective date
    r = client.post(
        URL,
        data=form(
            action="save", kind="fixed", fixed="1.25", cap_WL_XS_per_day="2", effective_from="2026-01-01", note="试行"
        ),
    )
    assert r.status_code == 302
    assert versions() == before + 1
    row = P.in_force(dt.date(2026, 6, 1))
    rules = P.rules_of(row)
    assert rules["online_course"] == {"kind": "fixed", "centi": 125}
    assert rules["caps"] == {"WL_XS": {"per_day": 200}}
    assert rules["requirements"] == P.DEFAULT_RULES["requirements"]  # kept from the version in force
    assert P.in_force(dt.date(2025, 6, 1)).version == 1
    event = db.session.execute(db.select(Event).where(Event.name == "credit.policy_added")).scalar_one()
    assert event.object_id == str(row.version)

    cadre = UserFactory(org_unit=tree.town_a)
    with time_machine.travel(NOW, tick=False):
        completed(cadre, course_id=1, nominal=300)
        completed(cadre, course_id=2, nominal=300)
    lines = queries.statement(cadre.id, 2026)
    assert {ln.policy_version for ln in lines} == {row.version}
    assert queries.year_summary(cadre.id, 2026) == {"posted": 200, "pending": 0, "overflow": 50}


def test_conversions_between_types_and_year_end_as_a_form(client, site) -> None:  # type: ignore[no-untyped-def]
    """The rules between credit types and the year end are fields, previewed, then saved as a version."""
    before = versions()
    sign_in_as(client, "site")
    rows = {"conv_from_0": "WL_XS", "conv_to_0": "JZ_XS", "conv_num_0": "1", "conv_den_0": "2"}
    r = client.post(URL, data=form(convert_amount="10", year_end="expire", **rows))
    html = r.get_data(as_text=True)
    assert r.status_code == 200, html
    # 10 hours of online study at 1/2: nothing now (no such rule in force), 5.00 under the draft.
    assert '<td class="now">0.00</td><td class="draft">5.00</td><td class="counted">5.00</td>' in html
    assert versions() == before
    r = client.post(
        URL,
        data=form(action="save", effective_from="2026-01-01", year_end="carry_forward", carry_cap="12.5", **rows),
    )
    assert r.status_code == 302, r.get_data(as_text=True)
    rules = P.rules_of(P.in_force(dt.date(2026, 6, 1)))
    assert rules["conversions"] == [{"from": "WL_XS", "to": "JZ_XS", "num": 1, "den": 2}]
    assert rules["year_end"] == {"mode": "carry_forward", "carry_cap_centi": 1250}
    # The form shows the saved rules back (a save from it again would keep them).
    html = client.get(URL).get_data(as_text=True)
    assert (
        '<option value="WL_XS" selected>' in html
        and 'name="conv_den_0" id="conv_den_0" min="1" max="1000" value="2"' in html
    )
    assert 'value="carry_forward" checked' in html
    # A blank row removes the rule.
    r = client.post(URL, data=form(action="save", effective_from="2026-02-01", year_end="expire"))
    assert r.status_code == 302
    assert P.rules_of(P.in_force(dt.date(2026, 6, 1)))["conversions"] == []


@pytest.mark.parametrize(
    ("fields", "message", "kept"),
    [
        (
            {"conv_from_0": "WL_XS", "conv_to_0": "WL_XS", "conv_num_0": "1", "conv_den_0": "2"},
            "不同的学时类别",
            "WL_XS",
        ),
        ({"conv_from_0": "XX", "conv_to_0": "JZ_XS", "conv_num_0": "1", "conv_den_0": "2"}, "请选择", "JZ_XS"),
        ({"conv_from_0": "WL_XS", "conv_to_0": "JZ_XS", "conv_num_0": "0", "conv_den_0": "2"}, "1 至 1000", "JZ_XS"),
        ({"conv_from_0": "WL_XS", "conv_to_0": "JZ_XS", "conv_num_0": "1", "conv_den_0": ""}, "1 至 1000", "JZ_XS"),
        (
            {
                "conv_from_0": "WL_XS",
                "conv_to_0": "JZ_XS",
                "conv_num_0": "1",
                "conv_den_0": "2",
                "conv_from_1": "WL_XS",
                "conv_to_1": "JZ_XS",
                "conv_num_1": "1",
                "conv_den_1": "3",
            },
            "已在上方列出",
            'value="3"',
        ),
        ({"year_end": "forever"}, "年末", ""),
        ({"carry_cap": "1.234"}, "最多两位小数", "1.234"),
        ({"convert_amount": "abc", "action": "preview"}, "最多两位小数", 'value="abc"'),
    ],
)
def test_bad_conversion_rows_are_refused_in_chinese_and_kept(client, site, fields, message, kept) -> None:  # type: ignore[no-untyped-def]
    before = versions()
    sign_in_as(client, "site")
    data = form(action="save", effective_from="2026-01-01", year_end="expire")
    data.update(fields)
    r = client.post(URL, data=data)
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "规则未保存" in html and message in html
    assert kept in html  # the input is shown back
    assert versions() == before
