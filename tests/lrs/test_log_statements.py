"""The learning-log browser's LRS statements view: scope, filters, keyset pages, recorder, exports."""

from __future__ import annotations

import json

import pytest
import time_machine
from sqlalchemy import select

from lms_core.events.models import Event
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory
from tests.lms_core.audit.log_world import csv_rows, log_people, table_rows, xlsx_rows
from tests.lms_core.learning.fixtures import build_course
from tests.lrs.conftest import make_client

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
LAUNCHED = "http://adlnet.gov/expapi/verbs/launched"


def _stmt(home, username, verb, zh_verb, obj_id, name, course_id=None, timestamp="2026-05-10T01:00:00Z"):
    s = {
        "actor": {"objectType": "Agent", "account": {"homePage": home, "name": username}},
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[1], "zh-CN": zh_verb}},
        "object": {"objectType": "Activity", "id": obj_id, "definition": {"name": {"zh-CN": name}}},
        "timestamp": timestamp,
    }
    if course_id is not None:
        s["context"] = {"contextActivities": {"parent": [{"id": f"{home}/courses/{course_id}"}]}}
    return s


@pytest.fixture
def world(app, tree, tmp_path):
    kit = build_course(tree)
    log_people(tree)
    UserFactory(username="plain", org_unit=tree.county_a)
    db.session.commit()
    platform = make_client(app, ("statements/write", "statements/read/mine"), "LMS core (xAPI emitter)")
    intruder = make_client(app, ("statements/write",), "外部系统")
    saved = tmp_path / "xapi_credentials.json"
    saved.write_text(json.dumps({"key": platform.key, "secret": platform.secret}))
    app.config["LMS_XAPI_CREDENTIALS_FILE"] = str(saved)
    home = app.config["LMS_PLATFORM_URL"].rstrip("/")
    lesson_iri = f"{home}/lessons/{kit.video.id}"
    with time_machine.travel("2026-05-10T02:00:00Z", tick=False):
        ok = platform.post(
            "statements",
            json_body=[
                _stmt(home, "inside", LAUNCHED, "启动", lesson_iri, "第一讲", kit.course.id),
                _stmt(home, "second", COMPLETED, "完成", lesson_iri, "第一讲", kit.course.id),
                _stmt(home, "outside", COMPLETED, "完成", lesson_iri, "第一讲", kit.course.id),
                # not a platform account: belongs to nobody in the org tree
                _stmt("https://elsewhere.example", "inside", COMPLETED, "完成", lesson_iri, "第一讲"),
            ],
        )
        assert ok.status_code == 200, ok.get_data(as_text=True)
    with time_machine.travel("2026-05-12T02:00:00Z", tick=False):
        forged = _stmt(home, "inside", COMPLETED, "完成", "http://example.com/forged", "伪造课程")
        assert intruder.post("statements", json_body=forged).status_code == 200
    return kit


def test_statements_are_scoped_marked_and_exports_equal_the_page(client, world):
    login(client, "nl_audit")
    page = client.get("/lrs/statements").get_data(as_text=True)
    rows = table_rows(page, "statement-table")
    assert len(rows) == 3 and "青山干部" not in page
    forged, completed, launched = rows  # newest stored first
    assert "伪造课程" in forged and "其他系统：外部系统" in forged and "非本平台记录" in forged
    assert "本平台" in completed and "非本平台记录" not in completed and "第二干部" in completed
    assert "城关干部" in launched and "启动" in launched and "2026-05-10 10:00" in launched  # Beijing time
    assert 'aria-current="page">学习记录库语句' in page  # the tab beside the core's views
    rows_csv, total = csv_rows(client, "/lrs/statements.csv")
    assert total == "3" and rows_csv[0][:3] == ["记录时间（北京时间）", "发生时间（北京时间）", "姓名"]
    assert [r[2] for r in rows_csv[1:]] == ["城关干部", "第二干部", "城关干部"]
    assert [r[9] for r in rows_csv[1:]] == ["非本平台记录", "本平台记录", "本平台记录"]
    assert rows_csv[3][1] == "2026-05-10 09:00:00" and rows_csv[3][5] == "启动" and rows_csv[3][6] == "第一讲"
    rows_x = xlsx_rows(client, "/lrs/statements.xlsx")
    assert [["" if c is None else str(c) for c in r] for r in rows_x] == rows_csv


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("username=second", ["第二干部"]),
        ("org=360121001", ["城关干部", "城关干部"]),
        ("course=C001", ["第二干部", "城关干部"]),
        ("lesson={lesson}", ["第二干部", "城关干部"]),
        (f"verb={LAUNCHED}", ["城关干部"]),
        ("from=2026-05-11", ["城关干部"]),
        ("to=2026-05-10", ["第二干部", "城关干部"]),
        ("org=360122", []),  # a unit outside the auditor's scope: nothing
    ],
)
def test_filters(client, world, query, names):
    login(client, "nl_audit")
    rows, _total = csv_rows(client, "/lrs/statements.csv?" + query.format(lesson=world.video.id))
    assert [r[2] for r in rows[1:]] == names


def test_keyset_pages_cover_every_row_once(app, client, world):
    home = app.config["LMS_PLATFORM_URL"].rstrip("/")
    platform = make_client(app, ("statements/write",), "LMS core (xAPI emitter)")
    batch = [_stmt(home, "second", LAUNCHED, "启动", f"{home}/lessons/9{n}", f"课{n}") for n in range(60)]
    assert platform.post("statements", json_body=batch).status_code == 200
    login(client, "nl_audit")
    first = client.get("/lrs/statements").get_data(as_text=True)
    cursor = first.split('id="next-page" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    second = client.get(cursor).get_data(as_text=True)
    assert len(table_rows(first, "statement-table")) == 50 and len(table_rows(second, "statement-table")) == 13
    assert 'id="next-page"' not in second
    assert client.get("/lrs/statements?before=abc").status_code == 400
    bad = client.get(f"/lrs/statements?verb={COMPLETED}x")
    assert bad.status_code == 400 and "未知动作" in bad.get_data(as_text=True)
    assert client.get("/lrs/statements.csv?before=&lesson=x").status_code == 400


def test_without_the_capability_there_is_no_view(client, world):
    login(client, "plain")
    for url in ("/lrs/statements", "/lrs/statements.csv", "/lrs/statements.xlsx"):
        assert client.get(url).status_code == 403


def test_a_view_filtered_to_one_person_is_logged_for_them(client, world):
    login(client, "nl_audit")
    client.get("/lrs/statements?username=inside")
    client.get("/lrs/statements.csv?username=inside")
    client.get("/lrs/learners/{}/statements".format(_uid("inside")))
    rows = db.session.execute(select(Event).where(Event.name == "record.viewed")).scalars().all()
    assert sorted(e.payload["what"] for e in rows if e.object_id == str(_uid("inside"))) == ["export", "log", "lrs"]


def _uid(username):
    from lms_core.accounts.models import User

    return db.session.execute(select(User.id).where(User.username == username)).scalar_one()


def test_a_persons_record_pages_link_to_their_statements_and_sessions(client, world):
    login(client, "nl_audit")
    uid = _uid("inside")
    day = client.get(f"/audit/users/{uid}/days/2026-05-10").get_data(as_text=True)
    assert 'href="/lrs/statements?username=inside&amp;from=2026-05-10&amp;to=2026-05-10"' in day
    assert 'href="/audit/sessions?username=inside&amp;from=2026-05-10&amp;to=2026-05-10"' in day
    rows, _total = csv_rows(client, "/lrs/statements.csv?username=inside&from=2026-05-10&to=2026-05-10")
    assert [r[5] for r in rows[1:]] == ["启动"]  # that day's statement only
    record = client.get(f"/audit/users/{uid}/learning").get_data(as_text=True)
    assert 'href="/lrs/statements?username=inside"' in record


def test_statements_store_their_learner_and_the_scoped_count_equals_the_rows(app, client, world):
    """Each statement is stored with its learner's id (a platform account's username at
    LMS_PLATFORM_URL; None for anyone else), and the browser's count and rows are exactly
    the statements whose learner is in the auditor's subtree, judged here from the JSON."""
    from lms_core.accounts.models import User
    from lms_core.audit.queries import COUNT_SHOWN
    from lms_core.orgs.models import OrgUnit
    from lrs.log_query import StatementQuery
    from lrs.statements import S

    home = app.config["LMS_PLATFORM_URL"].rstrip("/")
    # one more statement about a platform-looking account that is nobody's
    ghost = make_client(app, ("statements/write",), "LMS core (xAPI emitter)")
    nobody = _stmt(home, "nobody", LAUNCHED, "启动", f"{home}/x", "课")
    assert ghost.post("statements", json_body=nobody).status_code == 200
    users = {u.username: u for u in db.session.execute(select(User)).scalars()}
    stored = db.session.execute(select(S.c.statement_id, S.c.data, S.c.actor_user_id)).all()
    assert len(stored) == 6
    for _sid, data, learner in stored:
        account = data["actor"]["account"]
        expected = users.get(account["name"]) if account["homePage"] == home else None
        assert learner == (expected.id if expected else None), data["actor"]
    assert sum(learner is not None for _s, _d, learner in stored) == 4  # inside ×2, second, outside

    auditor = users["nl_audit"]
    county = db.session.get(OrgUnit, auditor.org_unit_id)
    in_scope = {
        sid
        for sid, data, _learner in stored
        if data["actor"]["account"]["homePage"] == home
        and (u := users.get(data["actor"]["account"]["name"])) is not None
        and db.session.get(OrgUnit, u.org_unit_id).path.startswith(county.path)
    }
    assert len(in_scope) == 3
    with app.test_request_context():
        query = StatementQuery(viewer=auditor)
        rows, _next = query.page()
        assert {str(row.data["id"]).lower() for row in rows} == in_scope
        assert query.count(limit=COUNT_SHOWN) == len(in_scope)
    login(client, "nl_audit")
    rows_csv, total = csv_rows(client, "/lrs/statements.csv")
    assert total == "3" and len(rows_csv) == 4
