"""Versions, authentication, scopes, /about, HEAD, alternate request syntax, CORS."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest

from tests.lrs.conftest import make_client, statement


@pytest.mark.parametrize(
    "version,status",
    [("1.0.3", 200), ("1.0", 200), ("1.0.9", 200), ("0.95", 400), ("1.1.0", 400), ("2.0.0", 400), ("", 400)],
)
def test_version_header(xapi, version, status):
    r = xapi.get("statements", headers={"X-Experience-API-Version": version})
    assert r.status_code == status
    assert r.headers["X-Experience-API-Version"] == "1.0.3"


def test_missing_version_header_is_400(xapi):
    h = xapi.headers()
    del h["X-Experience-API-Version"]
    assert xapi.client.get("/xapi/statements", headers=h).status_code == 400


def test_about_lists_only_1_0_versions_without_auth(client):
    r = client.get("/xapi/about")
    assert r.status_code == 200
    assert all(v.startswith("1.0.") for v in r.get_json()["version"])
    assert "1.0.3" in r.get_json()["version"]


def test_authentication(app, xapi):
    assert xapi.client.get("/xapi/statements", headers={"X-Experience-API-Version": "1.0.3"}).status_code == 401
    bad = base64.b64encode(f"{xapi.key}:wrong".encode()).decode()
    r = xapi.client.get(
        "/xapi/statements", headers={"X-Experience-API-Version": "1.0.3", "Authorization": f"Basic {bad}"}
    )
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers


def test_disabled_client_is_refused(app, xapi):
    from lms_core.extensions import db
    from lrs import clients
    from lrs.models import LrsClient

    client_row = db.session.execute(db.select(LrsClient).where(LrsClient.key == xapi.key)).scalar_one()
    clients.set_active(client_row, False)
    assert xapi.get("statements").status_code == 401


def test_scopes(app):
    writer = make_client(app, ("statements/write",), "writer")
    reader = make_client(app, ("statements/read",), "reader")
    mine = make_client(app, ("statements/write", "statements/read/mine"), "mine")
    state_only = make_client(app, ("state",), "state")
    assert writer.post("statements", json_body=statement()).status_code == 200
    assert writer.get("statements").status_code == 403
    assert reader.post("statements", json_body=statement()).status_code == 403
    assert len(reader.get("statements").get_json()["statements"]) == 1
    own = mine.post("statements", json_body=statement()).get_json()[0]
    listed = mine.get("statements").get_json()["statements"]
    assert [s["id"] for s in listed] == [own]
    other = reader.get("statements").get_json()["statements"][-1]["id"]
    assert mine.get("statements", statementId=other).status_code == 404
    params = {"activityId": "http://example.com/a", "agent": json.dumps({"mbox": "mailto:a@example.com"})}
    assert state_only.get("activities/state", **params).status_code == 200
    assert state_only.get("statements").status_code == 403
    assert state_only.get("activities/profile", activityId="http://example.com/a").status_code == 403


def test_alternate_request_syntax(xapi):
    form = {
        "Authorization": xapi.headers()["Authorization"],
        "X-Experience-API-Version": "1.0.3",
        "Content-Type": "application/json",
        "content": json.dumps(statement(actor={"mbox": "mailto:alt@example.com", "name": "王五"}), ensure_ascii=False),
    }
    r = xapi.client.post(
        "/xapi/statements?method=POST",
        data=urllib.parse.urlencode(form),
        content_type="application/x-www-form-urlencoded",
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    sid = r.get_json()[0]
    get_form = {"Authorization": form["Authorization"], "X-Experience-API-Version": "1.0.3", "statementId": sid}
    got = xapi.client.post(
        "/xapi/statements?method=GET",
        data=urllib.parse.urlencode(get_form),
        content_type="application/x-www-form-urlencoded",
    )
    assert got.status_code == 200 and got.get_json()["actor"]["name"] == "王五"
    extra = xapi.client.post(
        f"/xapi/statements?method=GET&statementId={sid}",
        data=urllib.parse.urlencode(get_form),
        content_type="application/x-www-form-urlencoded",
    )
    assert extra.status_code == 400


def test_cors_preflight_and_exposed_headers(client, xapi):
    r = client.options(
        "/xapi/statements",
        headers={
            "Origin": "https://course.example.org",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "Authorization, X-Experience-API-Version, If-Match, If-None-Match",
        },
    )
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://course.example.org"
    allowed = r.headers["Access-Control-Allow-Headers"].lower()
    for h in ("authorization", "x-experience-api-version", "if-match", "if-none-match", "content-type"):
        assert h in allowed
    got = xapi.get("statements", headers={"Origin": "https://course.example.org"})
    exposed = got.headers["Access-Control-Expose-Headers"]
    for h in ("ETag", "Last-Modified", "X-Experience-API-Version", "X-Experience-API-Consistent-Through"):
        assert h in exposed


def test_errors_are_short_json(xapi):
    r = xapi.get("statements", bogus="1")
    assert r.status_code == 400 and r.mimetype == "application/json" and "bogus" in r.get_json()["error"]


def test_csrf_does_not_apply_to_xapi_but_stays_on_elsewhere(app):
    app.config["WTF_CSRF_ENABLED"] = True
    x = make_client(app)
    assert x.post("statements", json_body=statement()).status_code == 200
