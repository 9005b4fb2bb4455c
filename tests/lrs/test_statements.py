"""Statement resource: storing (single, arrays, PUT), duplicates, atomic batches, queries."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from sqlalchemy import func, select

from lms_core.extensions import db
from lrs.models import LrsStatement
from tests.lrs.conftest import new_id, statement

ZH_ACTOR = {
    "objectType": "Agent",
    "name": "张三",
    "account": {"homePage": "https://gbwl.example.gov.cn", "name": "cadre0001"},
}


def _count() -> int:
    return db.session.execute(select(func.count()).select_from(LrsStatement)).scalar_one()


def test_post_single_returns_id_and_get_returns_completed_statement(xapi):
    r = xapi.post("statements", json_body=statement())
    assert r.status_code == 200
    (sid,) = r.get_json()
    got = xapi.get("statements", statementId=sid)
    assert got.status_code == 200
    body = got.get_json()
    assert body["id"] == sid and body["version"] == "1.0.0"
    assert body["stored"].endswith("Z") and body["timestamp"] == body["stored"]
    assert body["authority"]["account"]["name"] == xapi.key
    assert "Last-Modified" in got.headers
    assert "X-Experience-API-Consistent-Through" in got.headers
    assert got.headers["X-Experience-API-Version"] == "1.0.3"


def test_post_array_keeps_order_and_stores_all(xapi):
    ids = [new_id() for _ in range(25)]
    batch = [statement(id=i, activity=f"http://example.com/a/{n}") for n, i in enumerate(ids)]
    r = xapi.post("statements", json_body=batch)
    assert r.status_code == 200
    assert r.get_json() == ids
    assert _count() == 25


def test_post_array_mixing_given_and_generated_ids(xapi):
    given = new_id()
    r = xapi.post("statements", json_body=[statement(), statement(id=given), statement()])
    ids = r.get_json()
    assert len(ids) == 3 and ids[1] == given and len(set(ids)) == 3


def test_put_stores_with_given_id(xapi):
    sid = new_id()
    r = xapi.put("statements", json_body=statement(), statementId=sid)
    assert r.status_code == 204
    assert xapi.get("statements", statementId=sid).get_json()["id"] == sid


def test_put_rejects_mismatched_or_missing_id(xapi):
    assert xapi.put("statements", json_body=statement(id=new_id()), statementId=new_id()).status_code == 400
    assert xapi.put("statements", json_body=statement()).status_code == 400
    assert xapi.put("statements", json_body=statement(), statementId="not-a-uuid").status_code == 400
    assert _count() == 0


def test_same_id_same_content_is_accepted_without_change(xapi):
    s = statement(id=new_id())
    assert xapi.post("statements", json_body=s).status_code == 200
    stored_before = xapi.get("statements", statementId=s["id"]).get_json()["stored"]
    assert xapi.post("statements", json_body=s).status_code == 200
    assert xapi.put("statements", json_body=s, statementId=s["id"]).status_code == 204
    assert _count() == 1
    assert xapi.get("statements", statementId=s["id"]).get_json()["stored"] == stored_before


def test_same_id_different_content_is_409_and_batch_is_not_stored(xapi):
    s = statement(id=new_id())
    xapi.post("statements", json_body=s)
    other = statement(id=s["id"], verb="http://adlnet.gov/expapi/verbs/completed")
    fresh = statement(id=new_id())
    r = xapi.post("statements", json_body=[fresh, other])
    assert r.status_code == 409
    assert "error" in r.get_json()
    assert xapi.get("statements", statementId=fresh["id"]).status_code == 404
    assert xapi.put("statements", json_body=other, statementId=s["id"]).status_code == 409
    assert _count() == 1


def test_duplicate_ids_inside_a_batch_are_400(xapi):
    sid = new_id()
    r = xapi.post("statements", json_body=[statement(id=sid), statement(id=sid)])
    assert r.status_code == 400
    assert _count() == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"verb": {"id": "http://x/v"}, "object": {"id": "http://x/o"}},  # no actor
        statement(actor={"mbox": "learner@example.com"}),  # mbox without mailto:
        statement(actor={"mbox": "mailto:a@b.c", "openid": "http://a.b/c"}),  # two IFIs
        statement(verb="not an iri"),
        statement(result={"score": {"scaled": 1.5}}),
        statement(result={"duration": "1 hour"}),
        statement(result={"success": "true"}),
        statement(timestamp="2026-13-01T00:00:00Z"),
        statement(timestamp="2026-01-01T00:00:00-00:00"),
        statement(context={"registration": "nope"}),
        statement(unknown="property"),
        statement(verb="http://adlnet.gov/expapi/verbs/voided"),  # voiding needs a StatementRef
        statement(
            object={
                "objectType": "SubStatement",
                "actor": {"mbox": "mailto:a@b.c"},
                "verb": {"id": "http://x/v"},
                "object": {"objectType": "SubStatement"},
            }
        ),
        statement(version="2.0.0"),
    ],
)
def test_invalid_statement_is_400_and_batch_is_not_stored(xapi, bad):
    r = xapi.post("statements", json_body=[statement(), bad])
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["error"]
    assert _count() == 0


def test_malformed_json_and_wrong_content_type_are_400(xapi):
    assert xapi.post("statements", data=b"{not json", headers={"Content-Type": "application/json"}).status_code == 400
    assert (
        xapi.post("statements", data=json.dumps(statement()), headers={"Content-Type": "text/plain"}).status_code == 400
    )
    assert xapi.post("statements", json_body="a string").status_code == 400
    assert _count() == 0


@pytest.mark.app_config(LMS_PLUGINS=["lrs"], MAX_CONTENT_LENGTH=2000)
def test_oversized_body_is_413(xapi):
    big = [statement(activity=f"http://example.com/a/{i}") for i in range(40)]
    r = xapi.post("statements", json_body=big)
    assert r.status_code == 413
    assert _count() == 0


def test_chinese_language_maps_round_trip_and_canonical_picks_language(xapi):
    s = statement(actor=ZH_ACTOR)
    s["verb"]["display"] = {"zh-CN": "学习了", "en-US": "studied"}
    s["object"]["definition"] = {
        "name": {"zh-CN": "习近平新时代中国特色社会主义思想", "en-US": "Course"},
        "description": {"zh-CN": "专题课程", "en-US": "A course"},
    }
    sid = xapi.post("statements", json_body=s).get_json()[0]
    exact = xapi.get("statements", statementId=sid).get_json()
    assert exact["object"]["definition"]["name"]["zh-CN"] == "习近平新时代中国特色社会主义思想"
    assert exact["actor"]["name"] == "张三"
    canon = xapi.get(
        "statements", statementId=sid, format="canonical", headers={"Accept-Language": "zh-CN, en;q=0.5"}
    ).get_json()
    assert canon["verb"]["display"] == {"zh-CN": "学习了"}
    assert canon["object"]["definition"]["name"] == {"zh-CN": "习近平新时代中国特色社会主义思想"}
    canon_en = xapi.get(
        "statements", statementId=sid, format="canonical", headers={"Accept-Language": "en-US"}
    ).get_json()
    assert canon_en["object"]["definition"]["description"] == {"en-US": "A course"}


def test_format_ids_reduces_objects(xapi):
    s = statement(actor=ZH_ACTOR)
    s["object"]["definition"] = {"name": {"zh-CN": "课程"}}
    sid = xapi.post("statements", json_body=s).get_json()[0]
    got = xapi.get("statements", statementId=sid, format="ids").get_json()
    assert got["actor"] == {"objectType": "Agent", "account": ZH_ACTOR["account"]}
    assert got["object"] == {"id": s["object"]["id"]}
    assert got["verb"] == {"id": s["verb"]["id"]}


def test_filter_by_account_agent(xapi):
    other = {"objectType": "Agent", "account": {"homePage": "https://gbwl.example.gov.cn", "name": "cadre0002"}}
    xapi.post(
        "statements",
        json_body=[
            statement(actor=ZH_ACTOR),
            statement(actor=other),
            statement(actor=ZH_ACTOR, verb="http://adlnet.gov/expapi/verbs/completed"),
        ],
    )
    found = xapi.get("statements", agent={"account": ZH_ACTOR["account"]}).get_json()["statements"]
    assert len(found) == 2 and all(s["actor"]["account"]["name"] == "cadre0001" for s in found)
    both = xapi.get(
        "statements", agent={"account": ZH_ACTOR["account"]}, verb="http://adlnet.gov/expapi/verbs/completed"
    ).get_json()["statements"]
    assert len(both) == 1


def test_agent_filter_matches_object_and_group_members_and_related_agents(xapi):
    teacher = {"mbox": "mailto:teacher@example.com"}
    group = {"objectType": "Group", "name": "班级", "member": [{"mbox": "mailto:learner@example.com"}]}
    xapi.post(
        "statements",
        json_body=[
            statement(actor={"mbox": "mailto:x@example.com"}, object={"objectType": "Agent", **teacher}),
            statement(actor=group),
            statement(actor={"mbox": "mailto:y@example.com"}, context={"instructor": teacher}),
        ],
    )
    direct = xapi.get("statements", agent=teacher).get_json()["statements"]
    assert len(direct) == 1
    related = xapi.get("statements", agent=teacher, related_agents="true").get_json()["statements"]
    assert len(related) == 2
    member = xapi.get("statements", agent={"mbox": "mailto:learner@example.com"}).get_json()["statements"]
    assert len(member) == 1 and member[0]["actor"]["objectType"] == "Group"


def test_activity_filter_and_related_activities(xapi):
    course = "http://example.com/course/1"
    xapi.post(
        "statements",
        json_body=[
            statement(activity=course),
            statement(
                activity="http://example.com/lesson/1", context={"contextActivities": {"parent": {"id": course}}}
            ),
            statement(activity="http://example.com/other"),
        ],
    )
    assert len(xapi.get("statements", activity=course).get_json()["statements"]) == 1
    related = xapi.get("statements", activity=course, related_activities="true").get_json()["statements"]
    assert len(related) == 2
    # A single context activity is stored and returned as an array.
    lesson = [s for s in related if s["object"]["id"] != course][0]
    assert isinstance(lesson["context"]["contextActivities"]["parent"], list)


def test_registration_filter(xapi):
    reg = new_id()
    xapi.post("statements", json_body=[statement(context={"registration": reg}), statement()])
    found = xapi.get("statements", registration=reg).get_json()["statements"]
    assert len(found) == 1 and found[0]["context"]["registration"] == reg


def test_since_until_limit_more_and_ascending(xapi):
    ids = []
    for i in range(5):
        ids.append(xapi.post("statements", json_body=statement(activity=f"http://example.com/p/{i}")).get_json()[0])
    page1 = xapi.get("statements", limit=2).get_json()
    assert [s["id"] for s in page1["statements"]] == [ids[4], ids[3]]
    assert page1["more"].startswith("/xapi/statements?more=")
    page2 = xapi.client.get(page1["more"], headers=xapi.headers()).get_json()
    assert [s["id"] for s in page2["statements"]] == [ids[2], ids[1]]
    page3 = xapi.client.get(page2["more"], headers=xapi.headers()).get_json()
    assert [s["id"] for s in page3["statements"]] == [ids[0]] and page3["more"] == ""
    asc = xapi.get("statements", ascending="true", limit=3).get_json()["statements"]
    assert [s["id"] for s in asc] == ids[:3]
    third = xapi.get("statements", statementId=ids[2]).get_json()["stored"]
    since = xapi.get("statements", since=third).get_json()["statements"]
    assert {s["id"] for s in since} == set(ids[3:])
    until = xapi.get("statements", until=third).get_json()["statements"]
    assert {s["id"] for s in until} == set(ids[:3])


def test_more_token_cannot_be_combined_or_forged(xapi):
    assert xapi.get("statements", more="garbage").status_code == 400
    assert xapi.get("statements", more="x", limit="1").status_code == 400


@pytest.mark.parametrize(
    "params",
    [
        {
            "statementId": "00000000-0000-4000-8000-000000000000",
            "voidedStatementId": "00000000-0000-4000-8000-000000000001",
        },
        {"statementId": "00000000-0000-4000-8000-000000000000", "verb": "http://x/v"},
        {"unknown": "1"},
        {"Verb": "http://x/v"},
        {"limit": "-1"},
        {"ascending": "yes"},
        {"related_activities": "1"},
        {"format": "full"},
        {"agent": "{not json"},
        {"agent": json.dumps({"name": "no ifi"})},
        {"since": "yesterday"},
        {"registration": "nope"},
    ],
)
def test_bad_query_parameters_are_400(xapi, params):
    assert xapi.get("statements", **params).status_code == 400


@pytest.mark.parametrize("yes, no", [("true", "false"), ("True", "False"), ("TRUE", "FALSE"), ("tRuE", "fAlSe")])
def test_booleans_are_case_insensitive(xapi, yes, no):
    older = xapi.post("statements", json_body=statement()).get_json()[0]
    xapi.post("statements", json_body=statement())
    assert xapi.get("statements", ascending=yes).get_json()["statements"][0]["id"] == older
    assert xapi.get("statements", ascending=no).get_json()["statements"][0]["id"] != older
    assert xapi.get("statements", statementId=older, attachments=yes).mimetype == "multipart/mixed"
    assert xapi.get("statements", statementId=older, attachments=no).mimetype == "application/json"


def test_unknown_statement_is_404(xapi):
    assert xapi.get("statements", statementId=new_id()).status_code == 404


def test_empty_result_is_200_with_empty_list(xapi):
    r = xapi.get("statements", verb="http://example.com/none")
    assert r.status_code == 200 and r.get_json() == {"statements": [], "more": ""}


def test_head_matches_get_without_body(xapi):
    sid = xapi.post("statements", json_body=statement()).get_json()[0]
    r = xapi.open("HEAD", "statements", statementId=sid)
    assert r.status_code == 200 and r.get_data() == b""
    assert "Last-Modified" in r.headers


def test_consistent_through_is_recent(xapi):
    r = xapi.get("statements")
    ct = dt.datetime.fromisoformat(r.headers["X-Experience-API-Consistent-Through"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.UTC) - ct).total_seconds()) < 60
    time.sleep(0)  # nothing else: the header is computed per response


def test_failure_mid_write_leaves_nothing(xapi, monkeypatch):
    """A batch is one transaction: an error after the statements insert stores nothing."""
    from lrs import statements as st

    def crash_after(original):
        def run(*args, **kwargs):
            original(*args, **kwargs)
            raise RuntimeError("simulated crash after the statements and keys were inserted")

        return run

    monkeypatch.setattr(st, "_insert_pg", crash_after(st._insert_pg))
    monkeypatch.setattr(st, "_insert_generic", crash_after(st._insert_generic))
    r = xapi.post("statements", json_body=[statement(), statement()])
    assert r.status_code == 500
    db.session.rollback()
    assert _count() == 0
    from lrs.models import LrsStatementKey

    assert db.session.execute(select(func.count()).select_from(LrsStatementKey)).scalar_one() == 0
