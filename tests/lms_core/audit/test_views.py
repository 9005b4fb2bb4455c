"""Auditors' event log and learning records: scoped in SQL, export equals the page."""

from __future__ import annotations

import csv
import io

import pytest

from lms_core.accounts.models import Role
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.jobs.services import commit
from tests.conftest import login
from tests.factories import UserFactory, grant


@pytest.fixture
def people(app, tree):
    auditor = UserFactory(username="nl_audit", org_unit=tree.county_a)
    grant(auditor, Role.AUDITOR, tree.county_a)
    inside = UserFactory(username="inside", full_name="城关干部", org_unit=tree.village_a)
    outside = UserFactory(username="outside", full_name="青山干部", org_unit=tree.town_b)
    learner = UserFactory(username="plain", org_unit=tree.village_a)
    db.session.commit()
    emit("video.played", actor=inside, obj=inside, payload={"time": 3})
    emit("video.played", actor=outside, obj=outside, payload={"time": 4})
    emit("user.logged_in", actor=inside, obj=inside)
    commit()
    return auditor, inside, outside, learner


def table_rows(html: str) -> int:
    body = html.split('id="event-table"', 1)[1].split("</tbody>", 1)[0]
    return body.count("<tr><td>")


def test_county_auditor_sees_only_the_county(client, people):
    login(client, "nl_audit")
    page = client.get("/audit/events").get_data(as_text=True)
    assert "城关干部" in page and "青山干部" not in page
    assert table_rows(page) == 3  # inside's two events and the auditor's own sign-in
    assert table_rows(client.get("/audit/events?username=outside").get_data(as_text=True)) == 0


def test_person_filter_on_the_event_log(client, people):
    login(client, "nl_audit")
    page = client.get("/audit/events?username=inside").get_data(as_text=True)
    assert table_rows(page) == 2 and "城关干部" in page  # only inside's own events
    assert table_rows(client.get("/audit/events?username=nobody").get_data(as_text=True)) == 0
    raw = client.get("/audit/events.csv?username=inside").get_data(as_text=True)
    assert len(raw.strip().splitlines()) == 3  # header + the same two rows


def test_filters_and_export_match_the_page(client, people):
    login(client, "nl_audit")
    page = client.get("/audit/events?name=video.").get_data(as_text=True)
    assert table_rows(page) == 1
    export = client.get("/audit/events.csv?name=video.")
    raw = export.get_data(as_text=True)
    assert raw.startswith("\ufeff") and export.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(raw.lstrip("\ufeff"))))
    assert len(rows) == 2 and rows[1][3] == "video.played" and rows[1][4] == "inside"
    # Chinese headers; the event's human name next to its code
    assert rows[0] == [
        "序号",
        "时间（北京时间）",
        "事件",
        "事件代码",
        "用户名",
        "姓名",
        "单位",
        "对象",
        "IP 地址",
        "详情",
    ]
    assert rows[1][2] == "视频开始播放"


def test_export_details_are_readable_in_beijing_time(client, people):
    from lms_core.events.services import emit

    inside = people[1]
    emit(
        "user.locked",
        actor=inside,
        obj=inside,
        payload={"until": "2026-12-04T02:30:00+00:00", "after": {"full_name": "李四", "org": "360121"}},
    )
    db.session.commit()
    login(client, "nl_audit")
    rows = list(
        csv.reader(
            io.StringIO(client.get("/audit/events.csv?name=user.locked").get_data(as_text=True).lstrip("\ufeff"))
        )
    )
    assert rows[1][2] == "账号锁定" and rows[1][7].startswith("人员 #")
    assert rows[1][9] == "变更后（姓名：李四；单位：360121）；截至：2026-12-04 10:30:00"
    page = client.get("/audit/events?name=user.locked").get_data(as_text=True)
    assert "账号锁定" in page and "user.locked</" not in page


def test_bad_filter_input_is_400(client, people):
    login(client, "nl_audit")
    assert client.get("/audit/events?from=2026-13-40").status_code == 400
    assert client.get("/audit/events?org=NOPE").status_code == 400
    assert client.get("/audit/events.csv?from=yesterday").status_code == 400


def test_learners_cannot_read_the_log(client, people):
    login(client, "plain")
    assert client.get("/audit/events").status_code == 403
    assert client.get("/audit/events.csv").status_code == 403


def test_learning_record_is_scoped(client, people):
    auditor, inside, outside, _ = people
    login(client, "nl_audit")
    assert client.get(f"/audit/users/{inside.id}/learning").status_code == 200
    assert client.get(f"/audit/users/{outside.id}/learning").status_code == 403
    assert client.get("/audit/users/999999/learning").status_code == 404


def test_a_pages_bounded_count_runs_without_parallel_workers_on_postgresql(app, people):
    """A page counts at most COUNT_SHOWN + 1 rows: on PostgreSQL without parallel workers
    (they cost more CPU than they save on so few rows), and only for that transaction."""
    from sqlalchemy import text

    from lms_core.audit.queries import COUNT_SHOWN, EventLogQuery

    def workers() -> str:
        return str(db.session.execute(text("SHOW max_parallel_workers_per_gather")).scalar())

    auditor = people[0]
    if db.session.get_bind().dialect.name != "postgresql":
        assert EventLogQuery(viewer=auditor).count(limit=COUNT_SHOWN) == 2  # the county's two events
        return
    default = workers()
    db.session.commit()
    query = EventLogQuery(viewer=auditor)
    assert query.count(limit=100 * COUNT_SHOWN) == 2  # an export's count keeps the server's setting
    assert workers() == default
    assert query.count(limit=COUNT_SHOWN) == 2
    assert workers() == "0"
    db.session.commit()
    assert workers() == default


def test_a_pages_queries_are_planned_for_their_values_on_postgresql(app, people):
    """The page and its count are planned for the actual scope each time, not with a generic
    plan (which estimated a county's ``path LIKE`` at one unit and sorted its whole month);
    only for that transaction. On SQLite nothing changes."""
    from sqlalchemy import text

    from lms_core.audit.queries import COUNT_SHOWN, EventLogQuery

    auditor = people[0]
    if db.session.get_bind().dialect.name != "postgresql":
        assert len(EventLogQuery(viewer=auditor).page()[0]) == 2
        return

    def mode() -> str:
        return str(db.session.execute(text("SHOW plan_cache_mode")).scalar())

    default = mode()
    assert default != "force_custom_plan"
    db.session.commit()
    rows, _next = EventLogQuery(viewer=auditor).page()
    assert len(rows) == 2 and mode() == "force_custom_plan"
    db.session.commit()
    assert mode() == default
    assert EventLogQuery(viewer=auditor).count(limit=COUNT_SHOWN) == 2 and mode() == "force_custom_plan"
    db.session.commit()
    assert mode() == default
