"""Hostile input to the LRS: a clear 400 (or 401/413/503), never a 500, nothing stored (issue 10, item 11).

Every case runs on SQLite and PostgreSQL. "Nothing stored" is checked on the tables,
and afterwards a GET must still answer valid JSON (SQLite used to store NaN and
lone surrogates, which poisoned later reads).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import urllib.parse

import pytest
from sqlalchemy import func, select

from lms_core.extensions import db
from lrs.models import LrsDocument, LrsStatement
from tests.lrs.conftest import new_id, statement
from tests.lrs.test_attachments import SIG_USAGE, _attachment, _jws, _multipart, _post_multipart, _signing_material

AGENT = {"objectType": "Agent", "mbox": "mailto:learner@example.com"}
ACTIVITY = "http://example.com/activities/1"


def _rows() -> tuple[int, int]:
    db.session.expire_all()
    return (
        db.session.execute(select(func.count()).select_from(LrsStatement)).scalar_one(),
        db.session.execute(select(func.count()).select_from(LrsDocument)).scalar_one(),
    )


def _refused(response, status: int = 400) -> str:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    body = response.get_json()
    assert body["status"] == status and body["error"] and "Traceback" not in body["error"]
    return str(body["error"])


def _reads_still_valid(xapi) -> None:
    r = xapi.get("statements")
    assert r.status_code == 200
    json.loads(r.get_data(as_text=True), parse_constant=lambda c: pytest.fail(f"{c} in output"))


def _token(raw: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


# more tokens --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        {"cursor": 10**30},
        {"cursor": -1},
        {"cursor": "7"},
        {"cursor": True},
        {},
        {"cursor": 5, "limit": -5},
        {"cursor": 5, "limit": "x"},
        {"cursor": 5, "limit": 10**30},
        {"cursor": 5, "agent": [1, 2]},
        {"cursor": 5, "registration": 7},
        {"cursor": 5, "verb": {"id": 1}},
        {"cursor": 5, "since": "9999-12-31T23:59:59"},
        {"cursor": 5, "since": 5},
        {"cursor": 5, "format": "xml"},
        {"cursor": 5, "ascending": "yes"},
        {"cursor": 5, "mine": "a\u0000b"},
        {"cursor": 5, "nope": 1},
        [1, 2],
        "cursor",
    ],
)
def test_malformed_more_tokens_are_400(xapi, raw):
    xapi.post("statements", json_body=statement())
    assert "more" in _refused(xapi.get("statements", more=_token(raw)))


@pytest.mark.parametrize(
    "token", ["!!!", "a" * 20000, base64.urlsafe_b64encode(b"\xff\xfe").decode(), _token({"cursor": 1})[:-3]]
)
def test_garbled_more_tokens_are_400(xapi, token):
    _refused(xapi.get("statements", more=token))


def test_a_genuine_more_token_still_pages(xapi):
    xapi.post("statements", json_body=[statement() for _ in range(3)])
    first = xapi.get("statements", limit=2, ascending="true").get_json()
    assert len(first["statements"]) == 2 and first["more"]
    nxt = xapi.client.get(first["more"], headers=xapi.headers()).get_json()
    assert len(nxt["statements"]) == 1 and nxt["more"] == ""


# timestamps at the edges ------------------------------------------------------------

EDGES = ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"]


@pytest.mark.parametrize("ts", EDGES)
def test_edge_timestamps_in_statements_are_400(xapi, ts):
    for field in ("timestamp", "stored"):
        assert "UTC" in _refused(xapi.post("statements", json_body=statement(**{field: ts})))
    sub = statement(object={"objectType": "SubStatement", **statement(timestamp=ts)})
    _refused(xapi.post("statements", json_body=sub))
    assert _rows() == (0, 0)


@pytest.mark.parametrize("ts", EDGES)
def test_edge_timestamps_in_since_are_400(xapi, ts):
    _refused(xapi.get("statements", since=ts))
    _refused(xapi.get("statements", until=ts))
    _refused(xapi.get("activities/state", activityId=ACTIVITY, agent=AGENT, since=ts))
    _refused(xapi.get("activities/profile", activityId=ACTIVITY, since=ts))


def test_the_extreme_representable_timestamps_are_fine(xapi):
    r = xapi.post("statements", json_body=statement(timestamp="9999-12-31T23:59:59Z"))
    assert r.status_code == 200
    assert xapi.get("statements", since="0001-01-01T00:00:00Z").get_json()["statements"]
    assert xapi.get("statements", since="9999-12-31T23:59:59+00:00").get_json()["statements"] == []


# JSON that no database can hold -------------------------------------------------------

DEEP = "[" * 3000 + "]" * 3000


def _raw_post(xapi, path: str, text: str, method: str = "POST", **params):
    return xapi.open(
        method, path, data=text.encode("utf-8", "surrogatepass"), headers={"Content-Type": "application/json"}, **params
    )


@pytest.mark.parametrize(
    "text",
    [
        DEEP,
        json.dumps(statement(result={"extensions": {"http://example.com/x": "DEEP"}})).replace('"DEEP"', DEEP),
        json.dumps(statement(result={"score": {"raw": "NAN"}})).replace('"NAN"', "NaN"),
        json.dumps(statement(result={"score": {"raw": "NAN"}})).replace('"NAN"', "Infinity"),
        json.dumps(statement(result={"score": {"raw": "NAN"}})).replace('"NAN"', "-Infinity"),
        json.dumps(statement(result={"score": {"raw": "NAN"}})).replace('"NAN"', "1e400"),
        json.dumps(statement(result={"extensions": {"http://example.com/x": "NAN"}})).replace('"NAN"', "NaN"),
        json.dumps(statement(result={"response": "a\u0000b"})),
        json.dumps(statement(actor={"mbox": "mailto:a@example.com", "name": "x\u0000"})),
        json.dumps(statement(result={"response": "\ud800"})),
        json.dumps(statement(result={"extensions": {"http://example.com/\ud800": 1}})),
        json.dumps(statement(context={"extensions": {"http://example.com/x": {"k\u0000": 1}}})),
    ],
)
def test_unstorable_statement_json_is_400_and_nothing_is_stored(xapi, text):
    _refused(_raw_post(xapi, "statements", text))
    _refused(_raw_post(xapi, "statements", text, method="PUT", statementId=new_id()))
    assert _rows() == (0, 0)
    _reads_still_valid(xapi)


@pytest.mark.parametrize("text", [DEEP, '{"a": NaN}', '{"a": 1e400}', '{"a": "\\u0000"}', '{"a": "\\udfff"}'])
def test_unmergeable_document_json_is_400(xapi, text):
    first = xapi.post(
        "activities/state",
        data=b'{"ok": 1}',
        headers={"Content-Type": "application/json"},
        activityId=ACTIVITY,
        agent=AGENT,
        stateId="s1",
    )
    assert first.status_code == 204
    _refused(
        xapi.post(
            "activities/state",
            data=text.encode(),
            headers={"Content-Type": "application/json"},
            activityId=ACTIVITY,
            agent=AGENT,
            stateId="s1",
        )
    )
    _refused(
        xapi.post(
            "activities/state",
            data=text.encode(),
            headers={"Content-Type": "application/json"},
            activityId=ACTIVITY,
            agent=AGENT,
            stateId="s2",
        )
    )
    assert _rows() == (0, 1)
    got = xapi.get("activities/state", activityId=ACTIVITY, agent=AGENT, stateId="s1")
    assert got.get_json() == {"ok": 1}


@pytest.mark.parametrize(
    "params",
    [
        {"activityId": ACTIVITY, "agent": AGENT, "stateId": "s\u0000"},
        {"activityId": "http://example.com/a\u0000b", "agent": AGENT, "stateId": "s1"},
        {
            "activityId": ACTIVITY,
            "agent": {"objectType": "Agent", "mbox": "mailto:a\u0000@example.com"},
            "stateId": "s1",
        },
        {
            "activityId": ACTIVITY,
            "agent": {"objectType": "Agent", "account": {"homePage": "http://x.cn", "name": "\u0000"}},
            "stateId": "s1",
        },
        {"activityId": ACTIVITY, "agent": "[" * 3000 + "]" * 3000, "stateId": "s1"},
    ],
)
def test_nul_in_document_parameters_is_400(xapi, params):
    for method in ("PUT", "POST", "GET", "DELETE"):
        _refused(
            xapi.open(
                method, "activities/state", data=b'{"a": 1}', headers={"Content-Type": "application/json"}, **params
            )
        )
    _refused(
        xapi.put(
            "activities/profile",
            data=b"x",
            headers={"If-None-Match": "*"},
            activityId="http://example.com/a\u0000",
            profileId="p",
        )
    )
    _refused(
        xapi.put(
            "activities/profile", data=b"x", headers={"If-None-Match": "*"}, activityId=ACTIVITY, profileId="p\u0000"
        )
    )
    _refused(xapi.get("activities", activityId="http://example.com/a\u0000"))
    _refused(xapi.get("statements", activity="http://example.com/a\u0000"))
    assert _rows() == (0, 0)


def test_nul_in_a_basic_key_is_401_not_a_database_error(client):
    for creds in ("ab\u0000cd:secret", "key:se\u0000cret", "\u0000:\u0000", "k" * 5000 + ":s"):
        token = base64.b64encode(creds.encode()).decode()
        r = client.get(
            "/xapi/statements", headers={"Authorization": f"Basic {token}", "X-Experience-API-Version": "1.0.3"}
        )
        _refused(r, 401)


# signed statements and multipart --------------------------------------------------------


@pytest.mark.parametrize("attachments", [{}, {"a": 1}, [1], "x"])
def test_jws_payload_with_odd_attachments_is_400(xapi, attachments):
    key, x5c = _signing_material()
    payload = statement(id=new_id())
    signed_payload = {**payload, "attachments": attachments}
    jws = _jws(signed_payload, key, x5c)
    s = dict(payload)
    s["attachments"] = [_attachment(jws, usage=SIG_USAGE, ctype="application/octet-stream")]
    body = _multipart(s, [(jws, hashlib.sha256(jws).hexdigest())], ctype="application/octet-stream")
    _refused(_post_multipart(xapi, body))
    assert _rows() == (0, 0)


@pytest.mark.parametrize("boundary", ["é-boundary", "边界", "a" * 71, "tab\there"])
def test_non_ascii_multipart_boundary_in_the_alternate_syntax_is_400(xapi, boundary):
    form = {
        "Authorization": xapi.headers()["Authorization"],
        "X-Experience-API-Version": "1.0.3",
        "Content-Type": f'multipart/mixed; boundary="{boundary}"',
        "content": f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{json.dumps(statement())}\r\n--{boundary}--",
    }
    r = xapi.client.post(
        "/xapi/statements?method=POST",
        data=urllib.parse.urlencode(form),
        content_type="application/x-www-form-urlencoded",
    )
    assert "boundary" in _refused(r)
    assert _rows() == (0, 0)


def test_nul_in_an_alternate_syntax_field_is_400(xapi):
    form = {
        "Authorization": xapi.headers()["Authorization"],
        "X-Experience-API-Version": "1.0.3",
        "activityId": ACTIVITY,
        "agent": json.dumps(AGENT),
        "stateId": "s\u0000",
        "content": "{}",
    }
    r = xapi.client.post(
        "/xapi/activities/state?method=PUT",
        data=urllib.parse.urlencode(form),
        content_type="application/x-www-form-urlencoded",
    )
    _refused(r)
    assert _rows() == (0, 0)


# limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["-5", "x", "²", "1.5", "", "+3"])
def test_bad_limits_are_400(xapi, limit):
    _refused(xapi.get("statements", limit=limit))


@pytest.mark.parametrize("limit", ["1" + "0" * 30, "9" * 5000])
def test_a_huge_limit_is_the_largest_page(xapi, limit):
    xapi.post("statements", json_body=statement())
    assert len(xapi.get("statements", limit=limit).get_json()["statements"]) == 1


@pytest.mark.app_config(LMS_PLUGINS=["lrs"], MAX_CONTENT_LENGTH=4096)
@pytest.mark.parametrize(
    "path, params", [("statements", {}), ("activities/state", {"activityId": ACTIVITY, "agent": AGENT, "stateId": "s"})]
)
def test_a_chunked_body_over_the_limit_is_413(xapi, path, params):
    big = json.dumps([statement() for _ in range(40)]).encode()
    assert len(big) > 4096
    query = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}
    r = xapi.client.post(
        f"/xapi/{path}",
        input_stream=io.BytesIO(big),
        query_string=query,
        headers={**xapi.headers(), "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )  # as gunicorn and werkzeug's server set it
    _refused(r, 413)
    assert _rows() == (0, 0)
    # Exactly at the limit is still accepted (the limit is inclusive).
    small = json.dumps(statement()).encode()
    small = small[:-1] + b" " * (4096 - len(small)) + b"}"
    ok = xapi.client.post(
        "/xapi/statements",
        input_stream=io.BytesIO(small),
        headers={**xapi.headers(), "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert ok.status_code == 200, ok.get_data(as_text=True)


# the database is down ---------------------------------------------------------------------


def _dead_port() -> int:
    with socket.socket() as s:  # bound and closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.backends("postgresql")
@pytest.mark.parametrize("standalone", [False, True])
def test_postgresql_down_is_503_with_retry_after(db_backend, tmp_path, standalone):
    from tests.conftest import make_test_config
    from tests.lms_core.apps import build_app

    url = f"postgresql+psycopg://lms@127.0.0.1:{_dead_port()}/lms?connect_timeout=2"
    if standalone:
        from lrs import create_app as create_lrs  # the LRS's own factory is what is tested

        app = create_lrs(make_test_config(url, tmp_path, LMS_PLUGINS=["lrs"]))
    else:
        app = build_app(url, tmp_path, LMS_PLUGINS=["lrs"])
    client = app.test_client()
    token = base64.b64encode(b"key:secret").decode()
    r = client.post(
        "/xapi/statements",
        json=statement(),
        headers={"Authorization": f"Basic {token}", "X-Experience-API-Version": "1.0.3"},
    )
    assert _refused(r, 503)
    assert r.headers["Retry-After"].isdigit()
    # A page of the platform: the same, in Chinese.
    page = client.post("/login", data={"username": "someone", "password": "x"})
    assert page.status_code == 503 and page.headers["Retry-After"].isdigit()
    assert "服务暂时不可用" in page.get_data(as_text=True) and "Traceback" not in page.get_data(as_text=True)


@pytest.mark.backends("postgresql")
def test_database_down_for_a_signed_in_user_is_still_503(app, client, tree, tmp_path):
    from tests.conftest import login
    from tests.factories import UserFactory
    from tests.lms_core.apps import build_app

    UserFactory(username="zhouqi", org_unit=tree.town_a)
    db.session.commit()
    assert login(client, "zhouqi").status_code == 302
    cookie = client.get_cookie("session")
    assert cookie is not None
    dead = build_app(
        f"postgresql+psycopg://lms@127.0.0.1:{_dead_port()}/lms?connect_timeout=2",
        tmp_path / "dead",
        LMS_PLUGINS=["lrs"],
    )
    other = dead.test_client()
    other.set_cookie("session", cookie.value)
    r = other.get("/dashboard")  # loading the signed-in user needs the database, and so does the page
    assert r.status_code == 503 and r.headers["Retry-After"].isdigit()
    assert "服务暂时不可用" in r.get_data(as_text=True)
