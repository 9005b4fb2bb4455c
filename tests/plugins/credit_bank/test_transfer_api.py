"""POST /api/v1/credit/transfers: who may post, per-item answers, linked chains, bad input.

The endpoint posts through the per-process group commit (a writer thread sharing one
transaction between concurrent requests); these tests drive it through the test client on
both databases, and from several threads at once.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask

from lms_core.accounts import services as accounts
from lms_core.accounts.models import Role, TokenScope
from lms_core.extensions import db
from plugins.credit_bank import group_commit
from plugins.credit_bank import ledger as L
from plugins.credit_bank.models import SCOPE_TRANSFERS, Account, TokenScopeGrant
from tests.factories import UserFactory, grant

URL = "/api/v1/credit/transfers"


@pytest.fixture
def site_token(app: Flask, tree: Any) -> str:
    site = UserFactory(org_unit=tree.city, username="site")
    grant(site, Role.SITE_ADMIN, tree.city)
    token, plain = accounts.create_token(site, "issuer-sync", scope=TokenScope.READ_WRITE)
    db.session.add(TokenScopeGrant(token_id=token.id, scope=SCOPE_TRANSFERS))
    db.session.commit()
    yield plain
    group_commit.stop(app)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def item(key: str, amount: int = 100, user: int = 7, **extra: Any) -> dict[str, Any]:
    body = {
        "id": L.transfer_id(key),
        "code": "course_complete",
        "effective_date": "2026-05-01",
        "amount": amount,
        "debit_account": "WL_XS/issuer/1/0",
        "credit_account": f"WL_XS/counted/{user}/2026",
        "user_id": user,
    }
    body.update(extra)
    return body


def balance(user: int) -> int:
    db.session.rollback()
    row = db.session.execute(db.select(Account).where(Account.owner_id == user, Account.kind == "counted")).scalar()
    return 0 if row is None else row.credits_posted - row.debits_posted


def test_single_transfer_created_exists_and_changed(app: Flask, client, site_token: str) -> None:  # type: ignore[no-untyped-def]
    r = client.post(URL, json=item("a"), headers=auth(site_token))
    assert r.status_code == 201, r.json
    assert r.json == {"index": 0, "id": L.transfer_id("a"), "result": "ok", "reason": None}
    again = client.post(URL, json=item("a"), headers=auth(site_token))
    assert again.status_code == 200 and again.json["result"] == "exists"
    changed = client.post(URL, json=item("a", amount=101), headers=auth(site_token))
    assert changed.status_code == 409
    assert changed.json["reason"] == "exists_with_different_amount"
    assert balance(7) == 100


def test_batch_answers_per_item_and_linked_chains_are_all_or_nothing(app: Flask, client, site_token: str) -> None:  # type: ignore[no-untyped-def]
    take = {"debit_account": "WL_XS/counted/8/2026", "credit_account": "WL_XS/expired/0/0", "code": "expiry"}
    batch = [
        item("b1", 300, user=8),
        item("b2", 50, user=8, flags=8, **take),  # linked to the next ...
        item("b3", 999, user=8, **take),  # ... which exceeds the balance: both refused
        item("b1", 300, user=8),  # the same id and body later in the batch: exists
        item("b4", 20, user=8, **take),
        item("b5", 5, user=9, flags=8),  # a chain left open at the end of the batch
    ]
    r = client.post(URL, json={"transfers": batch}, headers=auth(site_token))
    assert r.status_code == 200, r.json
    got = [(x["result"], x["reason"]) for x in r.json["results"]]
    assert got == [
        ("ok", None),
        ("refused", "linked_event_failed"),
        ("refused", "exceeds_credits"),
        ("exists", None),
        ("ok", None),
        ("refused", "linked_event_chain_open"),
    ]
    assert balance(8) == 280
    assert balance(9) == 0
    _, mismatches = L.replay_check()
    assert mismatches == []


def test_concurrent_requests_share_commits_and_lose_nothing(app: Flask, site_token: str) -> None:
    """Eight threads post to one hot account at once; every acknowledged transfer is there."""
    answers: list[int] = []

    def worker(n: int) -> None:
        c = app.test_client()
        for i in range(10):
            r = c.post(URL, json=item(f"hot:{n}:{i}", 3, user=11), headers=auth(site_token))
            answers.append(r.status_code)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count(201) == 80
    assert balance(11) == 240
    _, mismatches = L.replay_check()
    assert mismatches == []


def test_who_may_post(app: Flask, client, tree: Any, site_token: str) -> None:  # type: ignore[no-untyped-def]
    site = db.session.execute(db.select(accounts.User).filter_by(username="site")).scalar_one()
    _, no_scope = accounts.create_token(site, "plain", scope=TokenScope.READ_WRITE)
    _, read_only = accounts.create_token(site, "ro", scope=TokenScope.READ)
    cadre = UserFactory(org_unit=tree.town_a, username="cadre")
    _, cadre_token = accounts.create_token(cadre, "mine", scope=TokenScope.READ_WRITE)
    db.session.add(TokenScopeGrant(token_id=_token_id(cadre_token), scope=SCOPE_TRANSFERS))
    db.session.commit()
    assert client.post(URL, json=item("w")).status_code == 401
    assert client.post(URL, json=item("w"), headers=auth(no_scope)).status_code == 403
    assert client.post(URL, json=item("w"), headers=auth(read_only)).status_code == 403
    # A scope granted by mistake to a cadre's token still needs the capability.
    assert client.post(URL, json=item("w"), headers=auth(cadre_token)).status_code == 403
    assert balance(7) == 0


def _token_id(plain: str) -> int:
    token = accounts.token_for(plain)
    assert token is not None
    return token.id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (item("x", amount=0), "amount"),
        (item("x", amount=2**63), "amount"),
        (item("x", amount=True), "amount"),
        (item("x", amount="100"), "amount"),
        (item("x", id="not-a-uuid"), "id"),
        (item("x", memo="x" * 2001), "memo"),
        (item("x", effective_date="2026-13-01"), "effective_date"),
        (item("x", effective_date="1900-01-01"), "effective_date"),
        (item("x", credit_account="WL_XS/counted/7"), "credit_account"),
        (item("x", credit_account="XX/counted/7/2026"), "credit_account"),
        (item("x", code="free_money"), "code"),
        (item("x", flags=64), "flags"),
        (item("x", surprise=1), "surprise"),
        (item("x", user_id=-1), "user_id"),
    ],
)
def test_bad_items_are_400_naming_the_field(app: Flask, client, site_token: str, body: Any, field: str) -> None:  # type: ignore[no-untyped-def]
    r = client.post(URL, json={"transfers": [item("ok"), body]}, headers=auth(site_token))
    assert r.status_code == 400, r.json
    assert r.json["index"] == 1 and r.json["field"] == field
    assert balance(7) == 0  # nothing of the batch was posted


def test_bad_bodies(app: Flask, client, site_token: str) -> None:  # type: ignore[no-untyped-def]
    h = {**auth(site_token), "Content-Type": "application/json"}
    assert client.post(URL, data="not json", headers=h).status_code == 400
    assert client.post(URL, data="[" * 5000 + "]" * 5000, headers=h).status_code == 400
    assert client.post(URL, json={"transfers": []}, headers=auth(site_token)).status_code == 400
    assert client.post(URL, json=[1, 2], headers=auth(site_token)).status_code == 400
    assert client.post(URL, json={"transfers": "x"}, headers=auth(site_token)).status_code == 400
    # A NUL byte is refused by the app's strict JSON reader before the endpoint sees it.
    assert client.post(URL, json=item("n", memo="nul\x00byte"), headers=auth(site_token)).status_code == 400
    many = {"transfers": [item(f"m{i}") for i in range(1001)]}
    assert client.post(URL, json=many, headers=auth(site_token)).status_code == 413


@pytest.mark.app_config(LMS_PLUGINS=["credit_bank"], WTF_CSRF_ENABLED=True)
def test_cookie_writes_need_the_csrf_token(app: Flask, client, site_token: str) -> None:  # type: ignore[no-untyped-def]
    import re

    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert csrf is not None
    r = client.post("/login", data={"username": "site", "password": "Passw0rd!", "csrf_token": csrf.group(1)})
    assert r.status_code == 302
    assert client.post(URL, json=item("c")).status_code == 400  # no X-CSRFToken
    ok = client.post(URL, json=item("c"), headers={"X-CSRFToken": csrf.group(1)})
    assert ok.status_code == 201, ok.get_data(as_text=True)
    assert balance(7) == 100


def test_grant_token_command(app: Flask, client, tree: Any) -> None:  # type: ignore[no-untyped-def]
    """``flask lms credit grant-token PREFIX`` grants the scope to a site admin's read-write token only."""
    site = UserFactory(org_unit=tree.city, username="site2")
    grant(site, Role.SITE_ADMIN, tree.city)
    cadre = UserFactory(org_unit=tree.town_a, username="cadre2")
    token, plain = accounts.create_token(site, "sync", scope=TokenScope.READ_WRITE)
    ro, _ = accounts.create_token(site, "ro", scope=TokenScope.READ)
    mine, _ = accounts.create_token(cadre, "mine", scope=TokenScope.READ_WRITE)
    db.session.commit()
    runner = app.test_cli_runner()
    assert client.post(URL, json=item("g"), headers=auth(plain)).status_code == 403
    for refused in (ro.prefix, mine.prefix, "lms_nothing"):
        res = runner.invoke(args=["lms", "credit", "grant-token", refused])
        assert res.exit_code != 0, res.output
    res = runner.invoke(args=["lms", "credit", "grant-token", token.prefix])
    assert res.exit_code == 0, res.output
    assert client.post(URL, json=item("g"), headers=auth(plain)).status_code == 201
    group_commit.stop(app)


def test_the_client_cache_saves_the_grant_queries_and_never_a_revocation(app: Flask, client, site_token: str) -> None:  # type: ignore[no-untyped-def]
    """A token found allowed is not asked again for its scope and roles, but a revoked one is
    refused on the next request (the core re-reads the token every time)."""
    from sqlalchemy import event

    from plugins.credit_bank import transfer_api

    transfer_api.clients().forget()
    assert client.post(URL, json=item("c1"), headers=auth(site_token)).status_code == 201
    seen: list[str] = []

    def log(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", log)
    try:
        assert client.post(URL, json=item("c2"), headers=auth(site_token)).status_code == 201
    finally:
        event.remove(db.engine, "before_cursor_execute", log)
    assert not [s for s in seen if "credit_token_scopes" in s], seen
    assert any("api_tokens" in s for s in seen)  # liveness is still read

    site = db.session.execute(db.select(accounts.User).filter_by(username="site")).scalar_one()
    token = accounts.token_for(site_token)
    assert token is not None
    accounts.revoke_token(site, token)
    db.session.commit()
    assert client.post(URL, json=item("c3"), headers=auth(site_token)).status_code == 401
    assert balance(7) == 200


def test_the_grant_is_asked_again_after_its_time(app: Flask, client, site_token: str) -> None:  # type: ignore[no-untyped-def]
    """A scope withdrawn (here: the grant row removed with its token's consent) is seen once
    the cached grant is older than LMS_CREDIT_CLIENT_CACHE_SECONDS, or at once after forget()."""
    from plugins.credit_bank import transfer_api

    transfer_api.clients().forget()
    assert client.post(URL, json=item("g1"), headers=auth(site_token)).status_code == 201
    tid = _token_id(site_token)
    db.session.execute(db.delete(TokenScopeGrant).where(TokenScopeGrant.token_id == tid))
    db.session.commit()
    assert client.post(URL, json=item("g2"), headers=auth(site_token)).status_code == 201  # cached
    app.config["LMS_CREDIT_CLIENT_CACHE_SECONDS"] = 0.05
    import time

    time.sleep(0.1)
    assert client.post(URL, json=item("g3"), headers=auth(site_token)).status_code == 403
    app.config["LMS_CREDIT_CLIENT_CACHE_SECONDS"] = 30
    digest = db.session.get(accounts.ApiToken, tid).token_hash
    transfer_api.clients().remember(digest, _user_id("site"), None)
    transfer_api.clients().forget(digest)
    assert client.post(URL, json=item("g4"), headers=auth(site_token)).status_code == 403


def _user_id(username: str) -> int:
    return int(db.session.execute(db.select(accounts.User.id).filter_by(username=username)).scalar_one())
