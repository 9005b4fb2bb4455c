"""Each tincan 1.0.0 defect: shown on the plain ``RemoteLRS``, then worked around by ``PlatformLRS``.

A recording HTTP server shows exactly what goes over the wire.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from tincan import (
    Activity,
    ActivityProfileDocument,
    Agent,
    AgentAccount,
    AgentProfileDocument,
    RemoteLRS,
    StateDocument,
)

from lms_core.xapi.tincan_adapter import LRSUnavailable, PlatformLRS, format_param
from tests.lms_core.xapi.servers import Recorder, ServerThread, free_port

ACTIVITY = Activity(id="https://study.example.gov.cn/lessons/7")
AGENT = Agent(name="李明", account=AgentAccount(home_page="https://study.example.gov.cn", name="liming"))
REGISTRATION = "5b0e9f1e-63a4-4c1e-9d1d-1c2a3b4c5d6e"
CHINESE = json.dumps({"位置": 61.5, "备注": "第三节：党的建设"}, ensure_ascii=False)


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str]]:
    rec = Recorder()
    json_type = {"Content-Type": "application/json"}
    rec.responses[("GET", "/xapi/statements")] = (200, json_type, b'{"statements": [], "more": ""}')
    rec.responses[("GET", "/xapi/activities/state")] = (200, json_type, b"[]")
    server = ServerThread(rec).start()
    yield rec, f"{server.url}/xapi/"
    server.stop()


def _raw(endpoint: str) -> RemoteLRS:
    return RemoteLRS(endpoint=endpoint, version="1.0.3", username="k", password="s")


def _fixed(endpoint: str) -> PlatformLRS:
    return PlatformLRS(endpoint, key="k", secret="s")


def test_about_listing_a_2_0_version(recorder):
    rec, endpoint = recorder
    rec.responses[("GET", "/xapi/about")] = (
        200,
        {"Content-Type": "application/json"},
        b'{"version": ["1.0.3", "2.0.0"]}',
    )
    with pytest.raises(ValueError, match="2.0.0"):
        _raw(endpoint).about()

    lrs = _fixed(endpoint)
    response = lrs.about()
    assert response.success
    assert response.content.version == ["1.0.3"]
    assert lrs.last_about_versions == ["1.0.3", "2.0.0"]


@pytest.mark.parametrize("kind", ["state", "activity_profile", "agent_profile"])
def test_document_text_outside_latin1_is_sent_as_utf8(recorder, kind):
    rec, endpoint = recorder

    def doc():
        if kind == "state":
            return StateDocument(
                id="progress", activity=ACTIVITY, agent=AGENT, content=CHINESE, content_type="application/json"
            )
        if kind == "activity_profile":
            return ActivityProfileDocument(
                id="meta", activity=ACTIVITY, content=CHINESE, content_type="application/json"
            )
        return AgentProfileDocument(id="prefs", agent=AGENT, content=CHINESE, content_type="application/json")

    def save(lrs):
        return getattr(lrs, f"save_{kind}")(doc())

    with pytest.raises(UnicodeEncodeError):
        save(_raw(endpoint))
    assert rec.seen == []

    assert save(_fixed(endpoint)).success
    assert [s.body for s in rec.seen] == [CHINESE.encode("utf-8")]


def test_save_state_sends_registration_once(recorder):
    rec, endpoint = recorder
    state = StateDocument(
        id="resume",
        activity=ACTIVITY,
        agent=AGENT,
        registration=REGISTRATION,
        content="61.5",
        content_type="text/plain",
    )
    _raw(endpoint).save_state(state)
    assert len(rec.seen) == 2  # tincan sends the PUT twice...
    assert all("registration" not in s.args for s in rec.seen)  # ...and never the registration

    rec.seen.clear()
    assert _fixed(endpoint).save_state(state).success
    assert len(rec.seen) == 1
    assert rec.seen[0].args["registration"] == [REGISTRATION]
    assert rec.seen[0].args["stateId"] == ["resume"]


def test_delete_state_sends_registration(recorder):
    rec, endpoint = recorder
    state = StateDocument(id="resume", activity=ACTIVITY, agent=AGENT, registration=REGISTRATION)
    _raw(endpoint).delete_state(state)
    assert "registration" not in rec.seen[0].args
    _fixed(endpoint).delete_state(state)
    assert rec.seen[1].method == "DELETE" and rec.seen[1].args["registration"] == [REGISTRATION]


def test_if_none_match_creates_profile_documents(recorder):
    rec, endpoint = recorder
    profile = ActivityProfileDocument(id="meta", activity=ACTIVITY, content="{}", content_type="application/json")
    _raw(endpoint).save_activity_profile(profile)
    assert "if-none-match" not in rec.seen[0].headers

    _fixed(endpoint).save_activity_profile(profile, if_none_match=True)
    assert rec.seen[1].headers["if-none-match"] == "*"
    agent_profile = AgentProfileDocument(id="prefs", agent=AGENT, content="{}", content_type="application/json")
    _fixed(endpoint).save_agent_profile(agent_profile, if_none_match=True)
    assert rec.seen[2].headers["if-none-match"] == "*"

    # With a known ETag the write is conditional on it instead.
    profile.etag = '"abc"'
    _fixed(endpoint).save_activity_profile(profile, if_none_match=True)
    assert rec.seen[3].headers["if-match"] == '"abc"' and "if-none-match" not in rec.seen[3].headers


def test_since_is_sent_as_iso_8601_with_t(recorder):
    rec, endpoint = recorder
    since = dt.datetime(2026, 3, 1, 16, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    _raw(endpoint).query_statements({"since": since})
    assert rec.seen[0].args["since"] == ["2026-03-01 16:00:00+08:00"]

    _fixed(endpoint).query_statements({"since": since})
    assert rec.seen[1].args["since"] == ["2026-03-01T08:00:00Z"]
    _fixed(endpoint).retrieve_state_ids(ACTIVITY, AGENT, since=since)
    assert rec.seen[2].args["since"] == ["2026-03-01T08:00:00Z"]
    with pytest.raises(ValueError, match="naive"):
        format_param(dt.datetime(2026, 3, 1))  # noqa: DTZ001 - the naive value being refused


def test_booleans_are_sent_lowercase(recorder):
    rec, endpoint = recorder
    query = {"ascending": True, "related_activities": False, "attachments": True}
    _raw(endpoint).query_statements(query)
    assert rec.seen[0].args["ascending"] == ["True"]

    _fixed(endpoint).query_statements(query)
    args = rec.seen[1].args
    assert (args["ascending"], args["related_activities"], args["attachments"]) == (["true"], ["false"], ["true"])


def test_retrieved_documents_carry_their_etag(recorder):
    rec, endpoint = recorder
    rec.responses[("GET", "/xapi/activities/state")] = (
        200,
        {"ETag": '"e1"', "Content-Type": "application/json", "Last-Modified": "Sun, 01 Mar 2026 08:00:00 GMT"},
        CHINESE.encode("utf-8"),
    )
    raw_doc = _raw(endpoint).retrieve_state(ACTIVITY, AGENT, "progress").content
    assert raw_doc.etag is None

    doc = _fixed(endpoint).retrieve_state(ACTIVITY, AGENT, "progress", registration=REGISTRATION).content
    assert doc.etag == '"e1"'
    assert doc.content_type == "application/json"
    assert bytes(doc.content).decode("utf-8") == CHINESE
    assert rec.seen[1].args["registration"] == [REGISTRATION]


def test_missing_document_is_none(recorder):
    rec, endpoint = recorder
    rec.responses[("GET", "/xapi/activities/profile")] = (404, {}, b'{"error": "no such document"}')
    response = _fixed(endpoint).retrieve_activity_profile(ACTIVITY, "meta")
    assert response.success and response.content is None


def test_statements_go_out_as_utf8_json_unchanged(recorder):
    rec, endpoint = recorder
    rec.responses[("POST", "/xapi/statements")] = (200, {"Content-Type": "application/json"}, b'["a"]')
    statement = {"id": "a", "actor": {"name": "李明"}, "verb": {"id": "http://adlnet.gov/expapi/verbs/launched"}}
    response = _fixed(endpoint).post_statements([statement])
    assert response.success and response.content == ["a"]
    seen = rec.seen[0]
    assert "李明".encode() in seen.body
    assert json.loads(seen.body) == [statement]
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-experience-api-version"] == "1.0.3"
    assert seen.headers["authorization"] == "Basic azpz"  # k:s


def test_unreachable_lrs_raises_lrs_unavailable():
    lrs = PlatformLRS(f"http://127.0.0.1:{free_port()}/xapi/", timeout=2)
    with pytest.raises(LRSUnavailable, match="ConnectionRefusedError"):
        lrs.post_statements([{"id": "x"}])
