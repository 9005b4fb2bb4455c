"""The credits JSON API's lean Bearer-token sign-in (lms_core/accounts/token_principal.py).

As strict as the ordinary token check: revoked, expired, disabled and out-of-scope are
refused; a read-only token still cannot write; and it costs no token statement per request.
"""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from sqlalchemy import event, text

from lms_core.accounts import principal, services
from lms_core.accounts.models import ApiToken, Role, TokenScope, UserStatus
from lms_core.db import utcnow
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory, grant


@pytest.fixture
def people(app: Flask, tree):  # type: ignore[no-untyped-def]
    cadre = UserFactory(org_unit=tree.town_a, username="cadre", full_name="李明")
    other = UserFactory(org_unit=tree.town_b, username="other", full_name="王芳")
    auditor = UserFactory(org_unit=tree.county_a, username="auditor_a")
    grant(auditor, Role.AUDITOR, tree.county_a)
    db.session.commit()
    return {"cadre": cadre, "other": other, "auditor": auditor}


def _token(user, scope=TokenScope.READ, expires_at=None) -> tuple[ApiToken, str]:  # type: ignore[no-untyped-def]
    token, plain = services.create_token(user, "sync", scope=scope, expires_at=expires_at)
    db.session.commit()
    return token, plain


def _get(client, plain: str, url: str = "/api/v1/me/credits?parts=balances,progress"):  # type: ignore[no-untyped-def]
    return client.get(url, headers={"Authorization": f"Bearer {plain}"})


class _Statements:
    """The SQL statements the app runs while this is open."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __enter__(self) -> _Statements:
        event.listen(db.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(db.engine, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(statement)

    def on_tokens(self) -> list[str]:
        return [s for s in self.seen if "api_tokens" in s]


def test_a_token_reads_its_credits_with_no_token_statement_once_known(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    token, plain = _token(people["cadre"])
    with _Statements() as first:
        r = _get(client, plain)
    assert r.status_code == 200
    assert r.get_json()["user"] == {"id": people["cadre"].id, "username": "cadre", "full_name": "李明"}
    # One narrow read, and the first use is recorded (at most once per interval).
    assert len([s for s in first.on_tokens() if s.lstrip().upper().startswith("SELECT")]) == 1
    assert len([s for s in first.on_tokens() if s.lstrip().upper().startswith("UPDATE")]) == 1
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).last_used_at is not None
    with _Statements() as again:
        for _ in range(3):
            assert _get(client, plain).status_code == 200
    assert again.on_tokens() == []
    # Nor is the ORM user (with its roles) loaded: the answer needs none of it.
    assert not [s for s in again.seen if "FROM users" in s or "role_assignments" in s]


def test_a_bad_or_unknown_token_is_refused(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    assert _get(client, "lms_" + "x" * 43).status_code == 401
    assert _get(client, "nope").status_code == 401
    assert client.get("/api/v1/me/credits").status_code == 401


def test_a_revoked_token_is_refused_at_once_in_this_process(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    token, plain = _token(people["cadre"])
    assert _get(client, plain).status_code == 200  # now cached
    services.revoke_token(people["cadre"], token)
    db.session.commit()
    assert _get(client, plain).status_code == 401


def test_a_revocation_elsewhere_is_honoured_within_the_cache_time(app: Flask, client, people, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    token, plain = _token(people["cadre"])
    assert _get(client, plain).status_code == 200
    # Another worker revokes it (no ORM event reaches this process).
    db.session.execute(
        text("UPDATE api_tokens SET revoked_at = :now WHERE id = :id"), {"now": utcnow(), "id": token.id}
    )
    db.session.commit()
    now = principal.clock()
    monkeypatch.setattr(principal, "clock", lambda: now + app.config["LMS_AUTH_CACHE_SECONDS"] + 0.1)
    assert _get(client, plain).status_code == 401


def test_an_expired_token_is_refused_even_when_cached(app: Flask, client, people, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _t, old = _token(people["cadre"], expires_at=utcnow() - dt.timedelta(seconds=1))
    assert _get(client, old).status_code == 401
    _t, soon = _token(people["cadre"], expires_at=utcnow() + dt.timedelta(hours=1))
    assert _get(client, soon).status_code == 200  # cached
    later = utcnow() + dt.timedelta(hours=2)
    monkeypatch.setattr("lms_core.accounts.token_principal.utcnow", lambda: later)
    assert _get(client, soon).status_code == 401


def test_a_disabled_user_is_refused(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    _t, plain = _token(people["cadre"])
    assert _get(client, plain).status_code == 200
    people["cadre"].status = UserStatus.DISABLED
    db.session.commit()
    assert _get(client, plain).status_code == 401


def test_a_disabled_user_elsewhere_is_refused_within_the_cache_time(app: Flask, client, people, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _t, plain = _token(people["cadre"])
    assert _get(client, plain).status_code == 200
    db.session.execute(
        text("UPDATE users SET status = :s WHERE id = :id"),
        {"s": UserStatus.DISABLED.value, "id": people["cadre"].id},
    )
    db.session.commit()
    now = principal.clock()
    monkeypatch.setattr(principal, "clock", lambda: now + app.config["LMS_AUTH_CACHE_SECONDS"] + 0.1)
    assert _get(client, plain).status_code == 401


def test_the_org_scope_is_as_strict_with_a_token(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    _t, auditor = _token(people["auditor"])
    assert _get(client, auditor, f"/api/v1/users/{people['cadre'].id}/credits").status_code == 200
    assert _get(client, auditor, f"/api/v1/users/{people['other'].id}/credits").status_code == 403
    assert _get(client, auditor, "/api/v1/users/999999/credits").status_code == 404
    _t, cadre = _token(people["cadre"])
    assert _get(client, cadre, f"/api/v1/users/{people['other'].id}/credits").status_code == 403
    # Whatever the ordinary (cookie) sign-in answers, the token answers the same.
    for name, plain in (("auditor_a", auditor), ("cadre", cadre)):
        for person in ("cadre", "other"):
            url = f"/api/v1/users/{people[person].id}/credits"
            browser = app.test_client()
            assert login(browser, name).status_code == 302
            assert _get(client, plain, url).status_code == browser.get(url).status_code, (name, person)


def test_a_read_only_token_known_to_the_lean_path_still_cannot_write(app: Flask, client, people) -> None:  # type: ignore[no-untyped-def]
    _t, plain = _token(people["cadre"], scope=TokenScope.READ)
    assert _get(client, plain).status_code == 200  # cached by the lean path
    r = client.post("/api/v1/transfers", json={}, headers={"Authorization": f"Bearer {plain}"})
    assert r.status_code == 403
    assert r.get_json()["error"] == "此 API 令牌为只读：不能修改数据。"
