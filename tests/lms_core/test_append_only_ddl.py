"""lms_core.db.append_only_ddl: the guard new migrations put on evidence tables, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from lms_core.db import append_only_ddl, drop_append_only_ddl
from lms_core.extensions import db

TABLE = "scratch_append_only_rows"


@pytest.fixture
def scratch(app):
    engine = db.engine
    dialect = engine.dialect.name
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE scratch_append_only_rows (id INTEGER PRIMARY KEY, note VARCHAR(20))"))
        for statement in append_only_ddl(TABLE, dialect):
            conn.execute(text(statement))
        conn.execute(text("INSERT INTO scratch_append_only_rows (id, note) VALUES (1, 'kept')"))
    yield engine
    with engine.begin() as conn:
        for statement in drop_append_only_ddl(TABLE, dialect):
            conn.execute(text(statement))
        conn.execute(text("DROP TABLE scratch_append_only_rows"))


@pytest.mark.parametrize(
    "change", ["UPDATE scratch_append_only_rows SET note = 'changed'", "DELETE FROM scratch_append_only_rows"]
)
def test_update_and_delete_are_refused(scratch, change):
    with pytest.raises(DatabaseError, match=f"{TABLE} is append-only"), scratch.begin() as conn:
        conn.execute(text(change))
    with scratch.connect() as conn:
        assert conn.execute(text("SELECT id, note FROM scratch_append_only_rows")).all() == [(1, "kept")]


def test_inserts_still_work_and_drop_undoes_it(scratch):
    dialect = scratch.dialect.name
    with scratch.begin() as conn:
        conn.execute(text("INSERT INTO scratch_append_only_rows (id, note) VALUES (2, 'also')"))
    with scratch.begin() as conn:
        for statement in drop_append_only_ddl(TABLE, dialect):
            conn.execute(text(statement))
        conn.execute(text("UPDATE scratch_append_only_rows SET note = 'free' WHERE id = 2"))
        for statement in append_only_ddl(TABLE, dialect):  # put back for the fixture's teardown
            conn.execute(text(statement))
    with scratch.connect() as conn:
        assert conn.execute(text("SELECT note FROM scratch_append_only_rows ORDER BY id")).scalars().all() == [
            "kept",
            "free",
        ]


@pytest.mark.parametrize("name", ["Users", "a;DROP TABLE users", "x" * 64, ""])
def test_only_plain_table_names(name):
    with pytest.raises(ValueError):
        append_only_ddl(name, "sqlite")
