"""Sign-in, throttling, lockout, passwords, sessions and API tokens."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from lms_core.accounts import services
from lms_core.accounts.models import LoginAttempt, User, UserStatus
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory


@pytest.fixture
def user(tree):
    u = UserFactory(username="liming", full_name="李明", org_unit=tree.village_a)
    db.session.commit()
    return u


def test_login_success_sets_session_and_logs_event(client, user):
    r = login(client, "liming")
    assert r.status_code == 302 and r.headers["Location"].endswith("/dashboard")
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert "李明" in page.get_data(as_text=True)
    assert db.session.query(LoginAttempt).filter_by(username="liming", success=True).count() == 1


def test_wrong_password_is_401_and_does_not_reveal_which_part(client, user):
    r1 = login(client, "liming", "wrong-pass-1")
    r2 = login(client, "nobody", "wrong-pass-1")
    assert r1.status_code == r2.status_code == 401
    assert "用户名或密码错误" in r1.get_data(as_text=True) or "Wrong username" in r1.get_data(as_text=True)


def test_password_hash_is_strong(user):
    assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))
    assert "Passw0rd!" not in user.password_hash


def test_lockout_after_repeated_failures_then_unlocks(client, user, app):
    start = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        for _ in range(app.config["LMS_LOGIN_MAX_FAILURES"]):
            login(client, "liming", "bad-password-x")
        r = login(client, "liming")  # right password, but locked
        assert r.status_code == 403
    db.session.expire_all()
    assert db.session.get(User, user.id).locked_until is not None
    unlocked = start + dt.timedelta(minutes=app.config["LMS_LOGIN_LOCK_MINUTES"] + 1)
    with time_machine.travel(unlocked, tick=False):
        assert login(client, "liming").status_code == 302


@pytest.mark.app_config(LMS_LOGIN_IP_LIMIT=3)
def test_per_ip_throttle_returns_429(client, user):
    for i in range(3):
        assert login(client, f"ghost{i}", "bad-password-x").status_code == 401
    assert login(client, "liming").status_code == 429


def test_disabled_user_cannot_log_in(client, user):
    user.status = UserStatus.DISABLED
    db.session.commit()
    assert login(client, "liming").status_code == 403


def test_password_change_ends_other_sessions(client, app, user):
    other = app.test_client()
    login(client, "liming")
    login(other, "liming")
    r = client.post("/account/password",
                    data={"current": "Passw0rd!", "new": "N3w-password", "confirm": "N3w-password"})
    assert r.status_code == 302
    assert client.get("/dashboard").status_code == 200  # this session continues
    assert other.get("/dashboard").status_code == 302  # the other one is signed out


def test_weak_password_rejected(client, user):
    login(client, "liming")
    r = client.post("/account/password", data={"current": "Passw0rd!", "new": "short", "confirm": "short"})
    assert r.status_code == 400
    db.session.expire_all()
    assert services.verify_password(db.session.get(User, user.id).password_hash, "Passw0rd!")


def test_logout_requires_post(client, user):
    login(client, "liming")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 302
    assert client.get("/dashboard").status_code == 302


def test_open_redirect_blocked(client, user):
    r = client.post("/login?next=https://evil.example/", data={"username": "liming", "password": "Passw0rd!"})
    assert r.headers["Location"].endswith("/dashboard")


def test_api_token_authenticates_and_is_stored_hashed(client, user):
    token, plain = services.create_token(user, "hr-sync")
    db.session.commit()
    assert plain not in token.token_hash
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"})
    assert r.status_code == 200 and r.get_json()["username"] == "liming"
    services.revoke_token(user, token)
    db.session.commit()
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"})
    assert r.status_code == 401 or r.status_code == 302


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_csrf_required_on_login_form(client, user):
    r = client.post("/login", data={"username": "liming", "password": "Passw0rd!"})
    assert r.status_code == 400
    assert client.get("/dashboard").status_code == 302


def test_session_cookie_flags(app, client, user):
    app.config["SESSION_COOKIE_SECURE"] = True
    r = login(client, "liming")
    cookie = r.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
