"""Sign-in, throttling, lockout, passwords, sessions and API tokens."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from lms_core.accounts import services
from lms_core.accounts.models import LoginAttempt, TokenScope, User, UserStatus
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


START = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def _fail(client, username: str, times: int, **kwargs) -> list[int]:
    return [login(client, username, "bad-password-x", **kwargs).status_code for _ in range(times)]


def test_wrong_passwords_bring_growing_delays_not_a_lock(client, user, app):
    free = app.config["LMS_LOGIN_FREE_FAILURES"]
    with time_machine.travel(START, tick=False) as clock:
        assert _fail(client, "liming", free) == [401] * free
        r = login(client, "liming")  # the right password, but the wait is not over: not even checked
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert "请等待 1 秒" in r.get_data(as_text=True)
        clock.shift(1)
        assert _fail(client, "liming", 1) == [401]  # one more wrong password: 2 s now
        clock.shift(1)
        r = login(client, "liming")
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        clock.shift(1)
        assert login(client, "liming").status_code == 302  # the owner gets in after 2 s, no admin needed
    db.session.expire_all()
    assert db.session.get(User, user.id).locked_until is None


def test_waiting_attempts_do_not_lengthen_the_wait(client, user, app):
    free = app.config["LMS_LOGIN_FREE_FAILURES"]
    with time_machine.travel(START, tick=False) as clock:
        _fail(client, "liming", free + 3)  # the 3 past the free ones are refused unchecked
        clock.shift(0.5)
        assert _fail(client, "liming", 5) == [429] * 5
        clock.shift(0.5)
        assert login(client, "liming").status_code == 302
    outcomes = [a.outcome for a in db.session.query(LoginAttempt).order_by(LoginAttempt.id)]
    assert outcomes == ["bad_credentials"] * free + ["wait"] * 8 + ["ok"]


def test_unknown_and_existing_usernames_get_the_same_answers(client, user, app):
    free = app.config["LMS_LOGIN_FREE_FAILURES"]
    answers = {}
    for name in ("liming", "nobody-here"):
        with time_machine.travel(START, tick=False) as clock:
            seen = []
            for _ in range(free + 3):
                r = login(client, name, "bad-password-x")
                text = r.get_data(as_text=True).replace(name, "NAME")
                flash = text[text.index('class="flash') :][:200] if 'class="flash' in text else ""
                seen.append((r.status_code, r.headers.get("Retry-After"), flash))
                clock.shift(0.2)
            answers[name] = seen
        db.session.query(LoginAttempt).delete()
        db.session.commit()
    assert answers["liming"] == answers["nobody-here"]
    assert {status for status, _, _ in answers["liming"]} == {401, 429}


def test_an_attacker_elsewhere_cannot_keep_the_owner_out(client, app, user):
    owner = app.test_client()
    with time_machine.travel(START, tick=False):
        statuses = _fail(client, "liming", 10, environ_base={"REMOTE_ADDR": "203.0.113.9"})
        assert statuses.count(429) >= 6  # the attacker's own address waits
        r = login(owner, "liming", environ_base={"REMOTE_ADDR": "198.51.100.7"})
        assert r.status_code == 302


@pytest.mark.app_config(LMS_LOGIN_IP_LIMIT=1000)
def test_many_addresses_slow_one_account_for_at_most_a_minute(client, app, user):
    cap = app.config["LMS_LOGIN_ACCOUNT_DELAY_MAX_SECONDS"]
    with time_machine.travel(START, tick=False) as clock:
        for i in range(40):  # a botnet: two guesses from each of many addresses, a while apart
            _fail(client, "liming", 2, environ_base={"REMOTE_ADDR": f"10.0.{i}.1"})
            clock.shift(cap + 1)
        r = login(client, "liming", environ_base={"REMOTE_ADDR": "10.9.9.9"})
        assert r.status_code == 302
        _fail(client, "liming", 1, environ_base={"REMOTE_ADDR": "10.0.0.1"})
        r = login(client, "liming", environ_base={"REMOTE_ADDR": "10.9.9.8"})
        assert r.status_code == 302  # the success reset the account's streak
    counted = db.session.query(LoginAttempt).filter_by(outcome="bad_credentials").count()
    assert 20 < counted < 80  # past the free ones, guesses had to wait their turn


def test_the_delay_doubles_up_to_its_cap():
    from lms_core.accounts.throttle import delay

    assert [delay(n, 3, 900) for n in range(0, 8)] == [0, 0, 0, 1, 2, 4, 8, 16]
    assert delay(13, 3, 900) == 900 and delay(10_000, 3, 900) == 900


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
    r = client.post(
        "/account/password", data={"current": "Passw0rd!", "new": "N3w-password", "confirm": "N3w-password"}
    )
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
    token, plain = services.create_token(user, "hr-sync", scope=TokenScope.READ)
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
