"""Read-only transactions end with COMMIT, so psycopg's prepared statements survive.

And everything that wrote is still rolled back: through the ORM, through Core, and
through the raw driver connection (as the LRS's batch insert does).
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit
from tests.conftest import login
from tests.factories import UserFactory

pytestmark = pytest.mark.backends("postgresql")


def _prepared() -> list[str]:
    return list(db.session.execute(text("SELECT statement FROM pg_prepared_statements")).scalars())


def test_statements_stay_prepared_across_requests(app, client, tree):
    UserFactory(username="reader", org_unit=tree.county_a)
    db.session.commit()
    db.session.remove()
    login(client, "reader")
    for _ in range(8):  # psycopg prepares a statement from its 6th run on a connection
        assert client.get("/api/v1/me").status_code == 200
    # The test client's requests and this session share the pool's one connection.
    assert any("FROM users" in statement for statement in _prepared())


def _unit_count() -> int:
    return int(db.session.execute(text("SELECT count(*) FROM org_units")).scalar_one())


def test_orm_write_is_still_rolled_back(app, tree):
    before = _unit_count()
    db.session.add(OrgUnit(code="999999", name="临时", kind=tree.city.kind))
    db.session.flush()
    db.session.rollback()
    assert _unit_count() == before


def test_raw_driver_write_is_still_rolled_back(app, tree):
    before = _unit_count()
    raw = db.session.connection().connection.driver_connection
    raw.execute(
        "INSERT INTO org_units (code, name, kind, path, depth, active, created_at) "
        "VALUES ('999998', '临时', 'city', '/x/', 0, true, now())"
    )
    db.session.rollback()
    assert _unit_count() == before


def test_failed_transaction_is_rolled_back(app):
    with pytest.raises(ProgrammingError):
        db.session.execute(text("SELECT * FROM no_such_table"))
    db.session.rollback()
    assert db.session.execute(text("SELECT 1")).scalar_one() == 1


def test_read_only_rollback_keeps_prepared_statements(app):
    for _ in range(7):
        db.session.execute(text("SELECT count(*) FROM users WHERE id > :n"), {"n": 0}).scalar_one()
    db.session.rollback()  # read-only: ends with COMMIT underneath
    assert any("FROM users WHERE id >" in statement for statement in _prepared())
