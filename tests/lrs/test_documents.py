"""State, Activity Profile and Agent Profile documents: ETags, preconditions, JSON merge."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import func, select

from lms_core.extensions import db
from lrs.models import LrsDocument
from tests.lrs.conftest import new_id

ACT = "http://example.com/activities/course-1"
AGENT = {"objectType": "Agent", "account": {"homePage": "https://gbwl.example.gov.cn", "name": "cadre0001"}}


def _docs() -> int:
    return db.session.execute(select(func.count()).select_from(LrsDocument)).scalar_one()


def _state(xapi, method, body=None, ctype="application/json", headers=None, **params):
    params = {"activityId": ACT, "agent": AGENT, **params}
    h = {"Content-Type": ctype, **(headers or {})} if body is not None else headers
    return xapi.open(method, "activities/state", data=body, headers=h, **params)


def test_state_put_get_etag_and_delete(xapi):
    content = json.dumps({"进度": 0.5}, ensure_ascii=False).encode()
    assert _state(xapi, "PUT", content, stateId="bookmark").status_code == 204
    got = _state(xapi, "GET", stateId="bookmark")
    assert got.status_code == 200 and got.get_data() == content
    assert got.headers["ETag"] == f'"{hashlib.sha1(content).hexdigest()}"'  # noqa: S324 - spec's ETag
    assert "Last-Modified" in got.headers
    assert _state(xapi, "GET").get_json() == ["bookmark"]
    assert _state(xapi, "DELETE", stateId="bookmark").status_code == 204
    assert _state(xapi, "GET", stateId="bookmark").status_code == 404


def test_state_with_and_without_registration(xapi):
    """The reference LRS answers 500 here; documents with and without a registration coexist."""
    reg = new_id()
    _state(xapi, "PUT", b'{"a": 1}', stateId="s")
    _state(xapi, "PUT", b'{"a": 2}', stateId="s", registration=reg)
    assert _state(xapi, "GET", stateId="s").get_json() == {"a": 1}
    assert _state(xapi, "GET", stateId="s", registration=reg).get_json() == {"a": 2}
    assert _state(xapi, "GET").get_json() == ["s"]
    assert _state(xapi, "GET", registration=reg).get_json() == ["s"]
    assert _state(xapi, "DELETE", registration=reg).status_code == 204
    assert _state(xapi, "GET", stateId="s", registration=reg).status_code == 404
    assert _state(xapi, "GET", stateId="s").status_code == 200


def test_post_merges_json_objects(xapi):
    _state(xapi, "POST", b'{"x": "foo", "y": "bar"}', stateId="vars")
    assert _state(xapi, "POST", b'{"x": "bash", "z": "faz"}', stateId="vars").status_code == 204
    assert _state(xapi, "GET", stateId="vars").get_json() == {"x": "bash", "y": "bar", "z": "faz"}


def test_post_merge_refuses_non_json_and_changes_nothing(xapi):
    _state(xapi, "PUT", b"plain text", ctype="text/plain", stateId="txt")
    assert _state(xapi, "POST", b'{"a": 1}', stateId="txt").status_code == 400
    _state(xapi, "PUT", b'{"a": 1}', stateId="js")
    assert _state(xapi, "POST", b"[1, 2]", stateId="js").status_code == 400
    assert _state(xapi, "POST", b"text", ctype="text/plain", stateId="js").status_code == 400
    assert _state(xapi, "GET", stateId="js").get_json() == {"a": 1}
    assert _state(xapi, "GET", stateId="txt").get_data() == b"plain text"


def _profile(xapi, method, body=None, headers=None, **params):
    params = {"activityId": ACT, **params}
    h = dict(headers or {})
    if body is not None:
        h.setdefault("Content-Type", "application/json")
    return xapi.open(method, "activities/profile", data=body, headers=h, **params)


def test_profile_put_requires_a_precondition_and_leaves_nothing_when_rejected(xapi):
    r = _profile(xapi, "PUT", b'{"a": 1}', profileId="p")
    assert r.status_code == 400
    assert _docs() == 0  # the reference LRS leaves an empty document behind here
    assert _profile(xapi, "PUT", b'{"a": 1}', headers={"If-None-Match": "*"}, profileId="p").status_code == 204
    assert _profile(xapi, "PUT", b'{"a": 2}', profileId="p").status_code == 409
    assert _profile(xapi, "PUT", b'{"a": 2}', headers={"If-None-Match": "*"}, profileId="p").status_code == 412
    assert _profile(xapi, "PUT", b'{"a": 2}', headers={"If-Match": '"0000"'}, profileId="p").status_code == 412
    assert _profile(xapi, "GET", profileId="p").get_json() == {"a": 1}
    etag = _profile(xapi, "GET", profileId="p").headers["ETag"]
    assert _profile(xapi, "PUT", b'{"a": 3}', headers={"If-Match": etag}, profileId="p").status_code == 204
    assert _profile(xapi, "GET", profileId="p").get_json() == {"a": 3}
    assert _profile(xapi, "DELETE", headers={"If-Match": etag}, profileId="p").status_code == 412
    assert _profile(xapi, "DELETE", profileId="p").status_code == 204
    assert _docs() == 0


def test_agent_profile_with_chinese_text(xapi):
    text = "学员档案：张三，南岭县".encode()
    params = {"agent": AGENT, "profileId": "档案"}
    r = xapi.put(
        "agents/profile",
        data=text,
        headers={"Content-Type": "text/plain; charset=utf-8", "If-None-Match": "*"},
        **params,
    )
    assert r.status_code == 204
    got = xapi.get("agents/profile", **params)
    assert got.get_data() == text and got.headers["Content-Type"].startswith("text/plain")
    assert xapi.get("agents/profile", agent=AGENT).get_json() == ["档案"]


def test_since_lists_recent_documents_only(xapi):
    _profile(xapi, "POST", b'{"a": 1}', profileId="old")
    updated = _profile(xapi, "GET", profileId="old").headers["Last-Modified"]
    import email.utils

    when = email.utils.parsedate_to_datetime(updated).isoformat()
    _profile(xapi, "POST", b'{"a": 1}', profileId="new")
    ids = _profile(xapi, "GET", since=when).get_json()
    assert "new" in ids


@pytest.mark.parametrize(
    "params",
    [
        {"activityId": "not an iri", "agent": json.dumps(AGENT), "stateId": "s"},
        {"activityId": ACT, "stateId": "s"},
        {"activityId": ACT, "agent": "{broken", "stateId": "s"},
        {"activityId": ACT, "agent": json.dumps(AGENT), "registration": "nope", "stateId": "s"},
        {"activityId": ACT, "agent": json.dumps(AGENT), "stateId": "s", "extra": "1"},
    ],
)
def test_bad_state_parameters_are_400(xapi, params):
    assert xapi.get("activities/state", **params).status_code == 400


def test_activities_and_agents_resources(xapi):
    s = {
        "actor": AGENT,
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"},
        "object": {"id": ACT, "definition": {"name": {"zh-CN": "专题培训"}}},
    }
    xapi.post("statements", json_body=s)
    s2 = {**s, "object": {"id": ACT, "definition": {"name": {"en-US": "Training"}}}}
    xapi.post("statements", json_body=s2)
    act = xapi.get("activities", activityId=ACT).get_json()
    assert act["id"] == ACT and act["definition"]["name"] == {"zh-CN": "专题培训", "en-US": "Training"}
    unknown = xapi.get("activities", activityId="http://example.com/unknown").get_json()
    assert unknown == {"objectType": "Activity", "id": "http://example.com/unknown"}
    person = xapi.get("agents", agent=AGENT).get_json()
    assert person == {"objectType": "Person", "account": [AGENT["account"]]}
    assert xapi.get("agents", agent={"objectType": "Group", "mbox": "mailto:g@example.com"}).status_code == 400
