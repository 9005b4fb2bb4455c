"""Pooled connections: pinged after sitting idle, not on every request.

The PostgreSQL case cuts a pooled connection from the server side (as a database
restart or a firewall timeout would) and checks that the next request still works.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory


def _count_pings(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    pings: list[object] = []
    dialect = db.engine.dialect
    original = dialect.do_ping

    def counting(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return bool(original(dbapi_connection))

    monkeypatch.setattr(dialect, "do_ping", counting)
    return pings


def _sign_in_counting_pings(client, tree, monkeypatch) -> list[object]:
    UserFactory(username="pinger", org_unit=tree.county_a)
    db.session.commit()
    db.session.remove()
    pings = _count_pings(monkeypatch)
    login(client, "pinger")
    return pings


def test_busy_connections_are_not_pinged(app, client, tree, monkeypatch):
    pings = _sign_in_counting_pings(client, tree, monkeypatch)
    for _ in range(5):
        assert client.get("/api/v1/me").status_code == 200
    assert pings == []  # each checkout follows a check-in a moment ago


@pytest.mark.app_config(LMS_DB_PING_IDLE_SECONDS=0)
def test_idle_connections_are_pinged(app, client, tree, monkeypatch):
    pings = _sign_in_counting_pings(client, tree, monkeypatch)
    assert client.get("/api/v1/me").status_code == 200
    assert len(pings) >= 2  # sign-in and the page: both checked a connection out


@pytest.mark.app_config(LMS_DB_PING_IDLE_SECONDS=0)
@pytest.mark.backends("postgresql")
def test_connection_cut_while_idle_is_replaced(app, client, tree):
    UserFactory(username="cut", org_unit=tree.county_a)
    db.session.commit()
    login(client, "cut")
    assert client.get("/api/v1/me").status_code == 200
    db.session.remove()
    # Every connection in the pool is now idle: end their server processes.
    with db.engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid  # pooled, reused
    killer = create_engine(db.engine.url, poolclass=NullPool)  # a separate connection ends the pooled one
    with killer.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    killer.dispose()
    # The pool still holds the dead connection; the ping finds it, the pool replaces it.
    assert client.get("/api/v1/me").status_code == 200
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
