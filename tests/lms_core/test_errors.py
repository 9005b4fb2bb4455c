"""Bad input and error pages: a clear status and message, never a stack trace."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lms_core.accounts.models import ApiToken, User
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory


@pytest.fixture
def person(tree):
    user = UserFactory(username="zhouqi", org_unit=tree.town_a)
    db.session.commit()
    return user


def _html_error(response, status: int) -> str:
    assert response.status_code == status
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert 'class="topbar"' in html and 'class="card error-page"' in html  # the themed layout
    assert "Traceback" not in html and 'File "' not in html
    return html


def test_404_is_a_themed_page(client):
    html = _html_error(client.get("/no/such/page"), 404)
    assert "<h1>404</h1>" in html and '<html lang="zh-CN">' in html


def test_404_in_english(client):
    client.set_cookie("lms_lang", "en")
    html = _html_error(client.get("/no/such/page"), 404)
    assert "The page you asked for does not exist." in html and '<html lang="en">' in html


def test_405_is_a_themed_page(client):
    _html_error(client.get("/logout"), 405)


def test_api_errors_are_json(client, person):
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.is_json and r.get_json()["status"] == 404 and r.get_json()["error"]
    r = client.get("/api/v1/me")  # no session, no token
    assert r.status_code == 401 and r.is_json
    r = client.get("/api/v1/me", headers={"Authorization": "Bearer lms_not-a-real-token"})
    assert r.status_code == 401 and r.is_json
    r = client.post("/api/v1/me")
    assert r.status_code == 405 and r.is_json


def test_browser_is_sent_to_login_and_back(client, person):
    r = client.get("/admin/users?q=x")
    assert r.status_code == 302
    assert r.headers["Location"] == "/login?next=/admin/users?q%3Dx"
    r = client.post("/login?next=/account/tokens", data={"username": "zhouqi", "password": "Passw0rd!"})
    assert r.headers["Location"].endswith("/account/tokens")


def test_unexpected_exception_is_a_500_page_without_traceback(app, client, caplog):
    def boom():
        raise RuntimeError("secret internals: password=hunter2")

    app.add_url_rule("/boom", "boom", boom)
    app.add_url_rule("/api/v1/boom", "api_boom", boom)
    html = _html_error(client.get("/boom"), 500)
    assert "hunter2" not in html and "RuntimeError" not in html
    r = client.get("/api/v1/boom")
    assert r.status_code == 500 and r.is_json and "hunter2" not in r.get_data(as_text=True)
    assert any("unhandled error" in rec.getMessage() for rec in caplog.records)  # but it is logged


@pytest.mark.app_config(MAX_CONTENT_LENGTH=1024)
def test_oversize_body_is_413(client):
    r = client.post("/login", data={"username": "x" * 4000, "password": "y"})
    _html_error(r, 413)


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/login", {"username": "zhouqi"}),  # missing password
        ("/login", {"password": "Passw0rd!"}),  # missing username
        ("/login", {"username": "z" * 65, "password": "Passw0rd!"}),  # overlong
        ("/login", {"username": "zhouqi", "password": "p" * 257}),
    ],
)
def test_malformed_login_is_400(client, person, path, data):
    r = client.post(path, data=data)
    assert r.status_code == 400
    assert client.get("/dashboard").status_code == 302  # not signed in


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"current": "Passw0rd!", "new": "N3w-password"},  # no confirmation
        {"current": "Passw0rd!", "new": "N3w-password", "confirm": "different-1"},
        {"current": "Passw0rd!", "new": "n" * 300 + "1!", "confirm": "n" * 300 + "1!"},
        {"current": "wrong-pass-1", "new": "N3w-password", "confirm": "N3w-password"},
    ],
)
def test_malformed_password_change_is_400_and_changes_nothing(client, person, data):
    login(client, "zhouqi")
    before = db.session.get(User, person.id).password_hash
    r = client.post("/account/password", data=data)
    assert r.status_code == 400
    assert 'class="error"' in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, person.id).password_hash == before


@pytest.mark.parametrize("name", ["", "n" * 101])
def test_malformed_token_form_is_400(client, person, name):
    login(client, "zhouqi")
    r = client.post("/account/tokens", data={"name": name})
    assert r.status_code == 400
    assert db.session.execute(select(func.count()).select_from(ApiToken)).scalar_one() == 0


def test_unknown_language_and_bad_ids(client, person):
    assert client.get("/lang/klingon").status_code == 404
    login(client, "zhouqi")
    assert client.post("/account/tokens/999/revoke").status_code == 404
    assert client.get("/admin/users/not-a-number").status_code in (403, 404)


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_missing_csrf_token_is_a_clear_400(client, person):
    client.set_cookie("lms_lang", "en")
    r = client.post("/login", data={"username": "zhouqi", "password": "Passw0rd!"})
    html = _html_error(r, 400)
    assert "The form has expired or was not sent from this site." in html


def test_a_wrong_current_password_is_told_under_that_field(client, person):
    """The refusal goes on the field to correct (the old view matched "current" in the English text)."""
    import re

    login(client, "zhouqi")
    r = client.post(
        "/account/password", data={"current": "wrong-pass-1", "new": "N3w-password", "confirm": "N3w-password"}
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    current = re.search(r'id="current".*?(?=<label|</form>)', html, re.S)
    assert current is not None and "当前密码不正确" in current.group(0)
