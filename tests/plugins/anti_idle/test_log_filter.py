"""The log browser's filter by anti-idle rule (hook ``lms_log_rule_filter``): sessions a rule left evidence on."""

from __future__ import annotations

import datetime as dt

import pytest

from lms_core.extensions import db
from plugins.anti_idle.log_filter import codes_under
from plugins.anti_idle.models import DayVerdict, Evidence
from tests.conftest import login
from tests.lms_core.audit.log_world import T0, csv_rows, log_people, start_sessions, table_rows, xlsx_rows
from tests.lms_core.learning.fixtures import build_course

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])


def _line(user, rule, start, minutes=30):
    day = start.date()
    verdict = db.session.query(DayVerdict).filter_by(user_id=user.id, day=day).one_or_none()
    if verdict is None:
        verdict = DayVerdict(user_id=user.id, day=day, verdict="deducted")
        db.session.add(verdict)
        db.session.flush()
    db.session.add(
        Evidence(
            day_verdict_id=verdict.id,
            user_id=user.id,
            day=day,
            rule=rule,
            action="deduct",
            span_start=start,
            span_end=start + dt.timedelta(minutes=minutes),
            message="x",
        )
    )


@pytest.fixture
def world(app, tree):
    kit = build_course(tree)
    people = log_people(tree, kit.course)
    inside, second, outside = people.inside, people.second, people.outside
    starts = [
        (inside, kit.video, T0),
        (inside, kit.document, T0 + dt.timedelta(hours=2)),  # after the R01 line: not matched
        (second, kit.video, T0),
        (outside, kit.video, T0),  # another county: never shown
    ]
    start_sessions(kit.course, starts)
    _line(inside, "R01", T0 - dt.timedelta(minutes=5))
    _line(outside, "R01", T0 - dt.timedelta(minutes=5))
    _line(second, "R10c", T0 - dt.timedelta(minutes=1))  # a variant without a name of its own: under R10
    _line(inside, "R05", T0 + dt.timedelta(hours=1))  # between the two sessions: matches neither
    db.session.commit()
    return kit


def test_variants_are_found_under_their_rule():
    assert {"R10", "R10c", "R10d"} <= set(codes_under("R10")) and "R10a" not in codes_under("R10")
    assert codes_under("R01") == ["R01"]


def test_sessions_filtered_by_rule_in_scope_and_exports_equal_the_page(client, world):
    login(client, "nl_audit")
    page = client.get("/audit/sessions").get_data(as_text=True)
    assert 'name="rule"' in page and "倍速播放过快" in page and ">R01<" not in page  # names, not codes
    page = client.get("/audit/sessions?rule=R01").get_data(as_text=True)
    rows = table_rows(page, "session-table")
    assert len(rows) == 1 and "城关干部" in rows[0] and "青山干部" not in page
    rows_csv, total = csv_rows(client, "/audit/sessions.csv?rule=R01")
    assert total == "1" and [r[2] for r in rows_csv[1:]] == ["城关干部"] and rows_csv[0][0] == "开始时间（北京时间）"
    rows_x = xlsx_rows(client, "/audit/sessions.xlsx?rule=R01")
    assert [["" if c is None else str(c) for c in r] for r in rows_x] == rows_csv
    rows_csv, _total = csv_rows(client, "/audit/sessions.csv?rule=R10")
    assert [r[2] for r in rows_csv[1:]] == ["第二干部"]
    assert csv_rows(client, "/audit/sessions.csv?rule=R05")[0][1:] == []
    # combined with the other filters
    assert csv_rows(client, "/audit/sessions.csv?rule=R01&username=second")[0][1:] == []


def test_unknown_rule_is_a_chinese_400(client, world):
    login(client, "nl_audit")
    r = client.get("/audit/sessions?rule=R99")
    assert r.status_code == 400 and "未知规则" in r.get_data(as_text=True)
    assert client.get("/audit/sessions.csv?rule=R99").status_code == 400
