"""The lean path of POST /api/v1/credit/transfers (transfer_fast): same answers as the view,
no work in the request thread's database session, revocation honoured at once."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from lms_core.accounts import services as accounts
from lms_core.accounts.models import ApiToken, User, UserStatus
from lms_core.db import utcnow
from lms_core.extensions import db
from plugins.credit_bank import group_commit, transfer_api
from plugins.credit_bank import ledger as L
from tests.plugins.credit_bank.test_transfer_api import URL, auth, balance, item, site_token  # noqa: F401

VIEW = "credit_bank_transfers.create_transfers"


@pytest.fixture
def view_calls(app: Flask) -> Iterator[list[str]]:
    """Counts the requests the Flask view answered (the others took the lean path)."""
    calls: list[str] = []
    original = app.view_functions[VIEW]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append("view")
        return original(*args, **kwargs)

    app.view_functions[VIEW] = counted
    transfer_api.client_cache(app).forget()
    yield calls
    app.view_functions[VIEW] = original


@pytest.fixture
def statements_here() -> Iterator[list[str]]:
    """SQL sent from the test's own thread (the request thread of the test client)."""
    me = threading.get_ident()
    seen: list[str] = []

    def log(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if threading.get_ident() == me:
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", log)
    yield seen
    event.remove(db.engine, "before_cursor_execute", log)


def _token(plain: str) -> ApiToken:
    db.session.rollback()
    token = db.session.execute(db.select(ApiToken).filter_by(token_hash=accounts._digest(plain))).scalar_one()
    return token


def test_the_lean_path_answers_like_the_view_with_no_sql_in_the_request(
    app: Flask,
    client,  # type: ignore[no-untyped-def]
    site_token: str,  # noqa: F811
    view_calls: list[str],
    statements_here: list[str],
) -> None:
    first = client.post(URL, json=item("f1"), headers=auth(site_token))
    assert first.status_code == 201 and view_calls == ["view"]  # the view fills the cache
    statements_here.clear()
    lean = client.post(URL, json=item("f2"), headers=auth(site_token))
    assert view_calls == ["view"], "the second request should take the lean path"
    assert statements_here == []  # no token, user or role load: the writer did all the SQL
    assert lean.status_code == 201
    assert lean.json == {"index": 0, "id": L.transfer_id("f2"), "result": "ok", "reason": None}
    assert lean.headers["Content-Type"] == first.headers["Content-Type"] == "application/json"
    # Byte for byte the view's answer (key order, separators, the final newline).
    assert lean.get_data() == first.get_data().replace(L.transfer_id("f1").encode(), L.transfer_id("f2").encode())
    for name in ("X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Content-Length"):
        assert lean.headers[name] == first.headers[name]
    assert lean.status == first.status == "201 CREATED"
    again = client.post(URL, json=item("f2"), headers=auth(site_token))
    assert again.status_code == 200 and again.json["result"] == "exists"
    changed = client.post(URL, json=item("f2", amount=101), headers=auth(site_token))
    assert changed.status == "409 CONFLICT" and changed.json["reason"] == "exists_with_different_amount"
    assert changed.headers["Content-Length"] == str(len(changed.get_data()))
    batch = client.post(URL, json={"transfers": [item("f3"), item("f2")]}, headers=auth(site_token))
    assert batch.status_code == 200
    assert [r["result"] for r in batch.json["results"]] == ["ok", "exists"]
    assert view_calls == ["view"]
    assert balance(7) == 300
    # The journal records the token's user as the actor, as the view does.
    actors = db.session.execute(db.select(L.TRANSFERS.c.actor_id).distinct()).scalars().all()
    assert actors == [_token(site_token).user_id]


def test_bad_input_on_a_cached_token_gets_the_views_chinese_answer(
    app: Flask,
    client,  # type: ignore[no-untyped-def]
    site_token: str,  # noqa: F811
    view_calls: list[str],
) -> None:
    assert client.post(URL, json=item("b1"), headers=auth(site_token)).status_code == 201
    r = client.post(URL, json={"transfers": [item("b2"), item("x", amount=0)]}, headers=auth(site_token))
    assert r.status_code == 400 and r.json["index"] == 1 and r.json["field"] == "amount"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in r.json["error"]), r.json
    h = {**auth(site_token), "Content-Type": "application/json"}
    assert client.post(URL, data="not json", headers=h).status_code == 400
    many = {"transfers": [item(f"m{i}") for i in range(1001)]}
    assert client.post(URL, json=many, headers=auth(site_token)).status_code == 413
    assert view_calls == ["view"] * 4  # each bad request was passed to the view
    assert balance(7) == 100


@pytest.mark.parametrize("how", ["revoked", "expired", "user_disabled"])
def test_a_dead_token_is_refused_at_once_on_the_lean_path(
    app: Flask,
    client,  # type: ignore[no-untyped-def]
    site_token: str,  # noqa: F811
    view_calls: list[str],
    how: str,
) -> None:
    assert client.post(URL, json=item("d1"), headers=auth(site_token)).status_code == 201
    assert client.post(URL, json=item("d2"), headers=auth(site_token)).status_code == 201
    assert view_calls == ["view"]  # cached: the second took the lean path
    token = _token(site_token)
    if how == "revoked":
        token.revoked_at = utcnow()
    elif how == "expired":
        token.expires_at = utcnow() - dt.timedelta(seconds=1)
    else:
        db.session.get(User, token.user_id).status = UserStatus.DISABLED  # type: ignore[union-attr]
    db.session.commit()
    r = client.post(URL, json=item("d3"), headers=auth(site_token))
    assert r.status_code == 401, r.json
    assert balance(7) == 200  # nothing of the refused request was written
    assert transfer_api.client_cache(app).get(token.token_hash, 30) is None


def test_the_lean_path_writes_last_used_at_once_a_minute(
    app: Flask,
    client,  # type: ignore[no-untyped-def]
    site_token: str,  # noqa: F811
    view_calls: list[str],
) -> None:
    assert client.post(URL, json=item("t1"), headers=auth(site_token)).status_code == 201
    token = _token(site_token)
    long_ago = utcnow() - dt.timedelta(hours=1)
    token.last_used_at = long_ago
    db.session.commit()
    assert client.post(URL, json=item("t2"), headers=auth(site_token)).status_code == 201
    assert view_calls == ["view"]
    first = _token(site_token).last_used_at
    assert first is not None and first > long_ago
    token = _token(site_token)
    token.last_used_at = long_ago
    db.session.commit()
    assert client.post(URL, json=item("t3"), headers=auth(site_token)).status_code == 201
    assert _token(site_token).last_used_at == long_ago  # written at most once a minute per process


def test_a_cookie_or_no_cache_takes_the_view(
    app: Flask,
    client,  # type: ignore[no-untyped-def]
    site_token: str,  # noqa: F811
    view_calls: list[str],
) -> None:
    assert client.post(URL, json=item("c1"), headers=auth(site_token)).status_code == 201
    client.set_cookie("lms_lang", "zh_Hans_CN")
    assert client.post(URL, json=item("c2"), headers=auth(site_token)).status_code == 201
    assert view_calls == ["view", "view"]
    client.delete_cookie("lms_lang")
    app.config["LMS_CREDIT_CLIENT_CACHE_SECONDS"] = 0
    assert client.post(URL, json=item("c3"), headers=auth(site_token)).status_code == 201
    assert view_calls == ["view"] * 3


def test_a_busy_ledger_is_a_chinese_503(
    app: Flask,
    client,  # type: ignore[no-untyped-def]
    site_token: str,  # noqa: F811
    view_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert client.post(URL, json=item("s1"), headers=auth(site_token)).status_code == 201

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise FutureTimeout

    monkeypatch.setattr(group_commit, "post", busy)
    r = client.post(URL, json=item("s2"), headers=auth(site_token))
    assert r.status_code == 503
    assert any("\u4e00" <= ch <= "\u9fff" for ch in r.json["error"]), r.json
    assert view_calls == ["view"]


@pytest.mark.backends("postgresql")
def test_two_workers_debiting_a_hot_account_on_the_lean_path_never_overdraw(
    app: Flask,
    site_token: str,  # noqa: F811
    database_url: str,
    tmp_path: Any,
) -> None:
    """Two apps (two workers, each with its writer) and eight threads debit one hot account
    on the lean path: exactly the balance is taken, the rest refused, nothing lost."""
    from tests.lms_core.apps import build_app

    other = build_app(database_url, tmp_path, LMS_PLUGINS=["credit_bank"])
    clients = [app.test_client(), other.test_client()]
    assert clients[0].post(URL, json=item("hot:seed", 500, user=21), headers=auth(site_token)).status_code == 201
    take = {"debit_account": "WL_XS/counted/21/2026", "credit_account": "WL_XS/expired/0/0", "code": "expiry"}
    for k, c in enumerate(clients):  # a worker's first request with the token takes the view (fills its cache)
        warm = c.post(URL, json=item(f"hot:warm:{k}", 1, user=21, **take), headers=auth(site_token))
        assert warm.status_code == 201, warm.json
    statuses: list[int] = []

    def debit(c: Any, n: int) -> None:
        for i in range(10):
            r = c.post(URL, json=item(f"hot:{n}:{i}", 20, user=21, **take), headers=auth(site_token))
            statuses.append(r.status_code)
            assert r.status_code in (201, 409), r.json
            if r.status_code == 409:
                assert r.json["reason"] == "exceeds_credits"

    try:
        threads = [threading.Thread(target=debit, args=(clients[n % 2], n)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        group_commit.stop(other)
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
    assert len(statuses) == 80
    assert statuses.count(201) == (500 - 2) // 20  # 24 debits of 20 fit in the 498 left
    assert balance(21) == 498 - 20 * statuses.count(201)
    _, mismatches = L.replay_check()
    assert mismatches == []
