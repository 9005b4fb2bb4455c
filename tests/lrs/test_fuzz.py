"""Fuzzed LRS requests, one test per resource family: never a 5xx, and a refused
request stores nothing (issue 10, item 12). Accepted statements must read back as
valid JSON (no NaN, no lone surrogate) on both databases.
"""

from __future__ import annotations

import json
import urllib.parse

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from lms_core.extensions import db
from lrs.models import LrsAttachment, LrsDocument, LrsStatement, LrsStatementKey
from tests.lrs.conftest import make_client, statement
from tests.strategies import HOSTILE_TEXT, HOSTILE_VALUES, fuzz_examples, to_json, with_value_at

FUZZ = settings(
    max_examples=fuzz_examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
AGENT = {"objectType": "Agent", "mbox": "mailto:learner@example.com"}
ACTIVITY = "http://example.com/activities/1"
#: Where a hostile value goes in an otherwise valid statement.
STATEMENT_PATHS = [
    ("id",),
    ("actor",),
    ("actor", "name"),
    ("actor", "mbox"),
    ("actor", "account"),
    ("verb",),
    ("verb", "id"),
    ("verb", "display"),
    ("verb", "display", "zh-CN"),
    ("object",),
    ("object", "id"),
    ("object", "definition", "name"),
    ("object", "definition", "extensions"),
    ("result", "score", "raw"),
    ("result", "score", "scaled"),
    ("result", "success"),
    ("result", "response"),
    ("result", "duration"),
    ("result", "extensions", "http://x.cn/e"),
    ("context", "registration"),
    ("context", "extensions", "http://x.cn/c"),
    ("context", "language"),
    ("context", "contextActivities", "parent"),
    ("timestamp",),
    ("stored",),
    ("version",),
    ("authority",),
    ("attachments",),
]


#: A query-parameter value: hostile text, or hostile JSON as text (agent=..., more=...).
PARAM_VALUES = st.one_of(HOSTILE_TEXT, HOSTILE_VALUES.map(lambda v: to_json(v).decode()))


def _rows() -> tuple[int, ...]:
    db.session.expire_all()
    return tuple(
        db.session.execute(select(func.count()).select_from(t)).scalar_one()
        for t in (LrsStatement, LrsStatementKey, LrsDocument, LrsAttachment)
    )


def _xapi(app):
    if not hasattr(app, "_fuzz_xapi"):
        app._fuzz_xapi = make_client(app)
    return app._fuzz_xapi


def _call(
    xapi,
    method: str,
    resource: str,
    params: dict[str, str],
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
):
    # Not Xapi.open: a fuzzed parameter may be called "method" or "path". Percent-encoded
    # by hand: a lone surrogate goes out as its (invalid) UTF-8 bytes, as a hostile client sends it.
    query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in params.items())
    return xapi.client.open(f"/xapi/{resource}?{query}", method=method, data=data, headers=xapi.headers(headers))


def _quote(text: str) -> str:
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")


def _strict_json(text: str) -> object:
    def refuse(name: str) -> object:
        raise AssertionError(f"{name} in a response")

    value = json.loads(text, parse_constant=refuse)
    text.encode("utf-8")  # a lone surrogate cannot be encoded: the response would not be UTF-8
    return value


@FUZZ
@given(data=st.data(), method=st.sampled_from(["POST", "PUT"]))
def test_fuzzed_statements_are_never_5xx(app, data, method):
    xapi = _xapi(app)
    if data.draw(st.integers(0, 4)):
        body = with_value_at(statement(), data.draw(st.sampled_from(STATEMENT_PATHS)), data.draw(HOSTILE_VALUES))
    else:
        body = data.draw(HOSTILE_VALUES)
    params = {"statementId": data.draw(st.one_of(st.uuids().map(str), HOSTILE_TEXT))} if method == "PUT" else {}
    before = _rows()
    r = _call(xapi, method, "statements", params, to_json(body), {"Content-Type": "application/json"})
    assert r.status_code < 500, r.get_data(as_text=True)[:300]
    if r.status_code >= 400:
        assert _rows() == before
        assert r.get_json()["error"]
    listed = xapi.get("statements", limit=5)
    assert listed.status_code == 200
    _strict_json(listed.get_data(as_text=True))


GET_PARAMS = [
    "statementId",
    "voidedStatementId",
    "agent",
    "verb",
    "activity",
    "registration",
    "related_activities",
    "related_agents",
    "since",
    "until",
    "limit",
    "format",
    "attachments",
    "ascending",
    "more",
    "Agent",
    "method",
]


@FUZZ
@given(params=st.dictionaries(st.sampled_from(GET_PARAMS), PARAM_VALUES, min_size=1, max_size=3))
def test_fuzzed_statement_queries_are_never_5xx(app, params):
    xapi = _xapi(app)
    if not _rows()[0]:
        xapi.post("statements", json_body=statement())
    before = _rows()
    r = _call(xapi, "GET", "statements", params)
    assert r.status_code < 500, r.get_data(as_text=True)[:300]
    if r.mimetype == "application/json":
        _strict_json(r.get_data(as_text=True))
    assert _rows() == before


DOC_RESOURCES = {
    "activities/state": {"activityId": ACTIVITY, "agent": json.dumps(AGENT), "stateId": "s1"},
    "activities/profile": {"activityId": ACTIVITY, "profileId": "p1"},
    "agents/profile": {"agent": json.dumps(AGENT), "profileId": "p1"},
}
DOC_PARAMS = ["activityId", "agent", "stateId", "profileId", "registration", "since"]


@FUZZ
@given(
    resource=st.sampled_from(sorted(DOC_RESOURCES)),
    method=st.sampled_from(["GET", "PUT", "POST", "DELETE"]),
    field=st.sampled_from(DOC_PARAMS),
    value=PARAM_VALUES,
    body=HOSTILE_VALUES,
    ctype=st.sampled_from(["application/json", "text/plain", "application/octet-stream"]),
    precondition=st.sampled_from([{}, {"If-None-Match": "*"}, {"If-Match": "*"}, {"If-Match": '"\u0000"'}]),
)
def test_fuzzed_documents_are_never_5xx(app, resource, method, field, value, body, ctype, precondition):
    xapi = _xapi(app)
    params = {**DOC_RESOURCES[resource], field: value}
    if not _rows()[2]:  # one JSON document to merge into
        xapi.post(
            "activities/state",
            data=b'{"ok": 1}',
            headers={"Content-Type": "application/json"},
            **DOC_RESOURCES["activities/state"],
        )
    before = _rows()
    r = _call(xapi, method, resource, params, to_json(body), {"Content-Type": ctype, **precondition})
    assert r.status_code < 500, r.get_data(as_text=True)[:300]
    if r.status_code >= 300:
        assert _rows() == before


@FUZZ
@given(
    resource=st.sampled_from(["activities", "agents", "about"]),
    params=st.dictionaries(st.sampled_from(["activityId", "agent", "since", "x"]), PARAM_VALUES, max_size=2),
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE"]),
)
def test_fuzzed_activities_agents_and_about_are_never_5xx(app, resource, params, method):
    xapi = _xapi(app)
    before = _rows()
    r = _call(xapi, method, resource, params)
    assert r.status_code < 500, r.get_data(as_text=True)[:300]
    if method != "HEAD" and r.mimetype == "application/json":
        _strict_json(r.get_data(as_text=True))
    assert _rows() == before
