"""Logout ends every copy of a session; only a live token skips cookie-only rules; token scopes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lms_core.accounts import services
from lms_core.accounts.models import ApiToken, Role, TokenScope, User
from lms_core.events.models import Event
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory, grant

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
    b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def user(tree):
    u = UserFactory(username="liming", full_name="李明", org_unit=tree.village_a)
    db.session.commit()
    return u


@pytest.fixture
def teacher(tree):
    u = UserFactory(username="teacher", full_name="王老师", org_unit=tree.city)
    grant(u, Role.INSTRUCTOR, tree.city)
    db.session.commit()
    return u


def _copy_session(src, dst) -> None:
    dst.set_cookie("session", src.get_cookie("session").value)


# 1. logout ------------------------------------------------------------------------


def test_a_cookie_saved_before_logout_no_longer_works(client, app, user):
    login(client, "liming")
    saved = app.test_client()
    _copy_session(client, saved)
    assert saved.get("/dashboard").status_code == 200
    assert saved.get("/api/v1/me").get_json()["username"] == "liming"

    assert client.post("/logout").status_code == 302

    assert saved.get("/dashboard").status_code == 302  # back to the sign-in page
    r = saved.get("/api/v1/me")
    assert r.status_code == 401 and "username" not in r.get_json()
    assert db.session.execute(select(Event).filter_by(name="user.logged_out")).scalar_one().actor_id == user.id


def test_logout_ends_the_other_devices_too_and_signing_in_again_works(client, app, user):
    other = app.test_client()
    login(client, "liming")
    login(other, "liming")
    client.post("/logout")
    assert other.get("/dashboard").status_code == 302
    assert login(client, "liming").status_code == 302
    assert client.get("/dashboard").status_code == 200


def test_logout_with_a_token_leaves_browser_sessions_alone(client, app, user):
    _token, plain = services.create_token(user, "sync", scope=TokenScope.READ_WRITE)
    db.session.commit()
    browser = app.test_client()
    login(browser, "liming")
    client.post("/logout", headers={"Authorization": f"Bearer {plain}"})
    assert browser.get("/dashboard").status_code == 200


# 2. the forced password change ----------------------------------------------------


@pytest.fixture
def must_change(user):
    user.must_change_password = True
    db.session.commit()
    return user


@pytest.mark.parametrize("header", [None, "Bearer junk", "Bearer lms_not-a-real-token", "Bearer "])
def test_junk_bearer_header_does_not_skip_the_forced_password_change(client, must_change, header):
    login(client, "liming")
    headers = {"Authorization": header} if header else {}
    r = client.get("/dashboard", headers=headers)
    assert r.status_code == 302 and r.headers["Location"].endswith("/account/password")
    r = client.get("/api/v1/me", headers=headers)
    assert r.status_code == 403
    # Nor can a token be minted to escape the change later.
    r = client.post("/account/tokens", data={"name": "escape", "scope": "read_write"}, headers=headers)
    assert r.status_code == 302 and r.headers["Location"].endswith("/account/password")
    assert db.session.execute(select(ApiToken)).scalars().all() == []


def test_a_live_token_still_serves_a_machine_client(client, must_change):
    _token, plain = services.create_token(must_change, "sync", scope=TokenScope.READ)
    db.session.commit()
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"})
    assert r.status_code == 200 and r.get_json()["username"] == "liming"


# 3. revocation and scopes ---------------------------------------------------------


def _works(client, plain: str) -> bool:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"}).status_code == 200


def test_tokens_are_revoked_when_the_user_changes_their_password(client, user):
    _t1, first = services.create_token(user, "a", scope=TokenScope.READ)
    _t2, second = services.create_token(user, "b", scope=TokenScope.READ_WRITE)
    db.session.commit()
    assert _works(client, first) and _works(client, second)
    login(client, "liming")
    r = client.post(
        "/account/password", data={"current": "Passw0rd!", "new": "N3w-password", "confirm": "N3w-password"}
    )
    assert r.status_code == 302
    anonymous = client.application.test_client()
    assert not _works(anonymous, first) and not _works(anonymous, second)
    revoked = db.session.execute(select(Event).filter_by(name="api_token.revoked")).scalars().all()
    assert sorted(e.payload["prefix"] for e in revoked) == sorted([first[:10], second[:10]])
    assert {e.payload["reason"] for e in revoked} == {"user.password_changed"}


def test_tokens_are_revoked_by_an_admin_reset(client, app, user, tree):
    admin = UserFactory(username="admin", org_unit=tree.city)
    grant(admin, Role.ORG_ADMIN, tree.city)
    _t, plain = services.create_token(user, "a", scope=TokenScope.READ_WRITE)
    db.session.commit()
    assert _works(client, plain)
    login(client, "admin")
    r = client.post(f"/admin/users/{user.id}/reset-password", data={"confirmed": "1"})
    assert r.status_code in (200, 302)
    db.session.expire_all()
    assert db.session.get(User, user.id).must_change_password
    assert not _works(app.test_client(), plain)


def test_a_read_only_token_reads_but_cannot_write(client, teacher):
    _t, plain = services.create_token(teacher, "reports", scope=TokenScope.READ)
    db.session.commit()
    auth = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/me", headers=auth).status_code == 200
    for method in ("put", "post"):
        r = getattr(client, method)(
            "/api/media?name=a.png", data=PNG, headers={**auth, "Content-Type": "application/octet-stream"}
        )
        assert r.status_code == 403
        assert r.get_json()["error"] == "此 API 令牌为只读：不能修改数据。"
    assert db.session.execute(select(Event).filter_by(name="media.uploaded")).scalars().all() == []


def test_a_read_write_token_may_write(client, teacher):
    _t, plain = services.create_token(teacher, "uploader", scope=TokenScope.READ_WRITE)
    db.session.commit()
    r = client.put(
        "/api/media?name=a.png",
        data=PNG,
        headers={"Authorization": f"Bearer {plain}", "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201


def test_the_scope_is_chosen_in_the_ui(client, user):
    login(client, "liming")
    page = client.get("/account/tokens").get_data(as_text=True)
    assert "只读" in page and "读写" in page
    client.post("/account/tokens", data={"name": "default"})
    client.post("/account/tokens", data={"name": "writer", "scope": "read_write"})
    assert client.post("/account/tokens", data={"name": "odd", "scope": "admin"}).status_code == 400
    scopes = dict(db.session.execute(select(ApiToken.name, ApiToken.scope)).all())
    assert scopes == {"default": TokenScope.READ, "writer": TokenScope.READ_WRITE}


def test_the_scope_is_chosen_in_the_cli(app, user):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["lms", "users", "token", "liming"])
    assert result.exit_code != 0 and "--scope" in result.output
    assert db.session.execute(select(ApiToken)).scalars().all() == []
    result = runner.invoke(args=["lms", "users", "token", "liming", "--scope", "read"])
    assert result.exit_code == 0, result.output
    token = db.session.execute(select(ApiToken)).scalar_one()
    assert token.scope == TokenScope.READ and result.output.strip().startswith(token.prefix)


# 4. CSRF on the raw upload --------------------------------------------------------


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_a_bearer_header_does_not_lift_csrf_for_a_cookie_session(client, teacher):
    login_page = client.get("/login").get_data(as_text=True)
    import re

    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', login_page
    )
    assert csrf
    r = client.post("/login", data={"username": "teacher", "password": "Passw0rd!", "csrf_token": csrf.group(1)})
    assert r.status_code == 302
    for header in ("Bearer junk", "Bearer lms_forged"):
        r = client.put(
            "/api/media?name=a.png",
            data=PNG,
            headers={"Authorization": header, "Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 400, r.get_json()
    assert db.session.execute(select(Event).filter_by(name="media.uploaded")).scalars().all() == []
