"""The beat transaction's connection and dialect, looked up once instead of a dozen times.

Every part of the beat path asks the ORM session for its connection (the round's batch
lives in its ``info``; the kept psycopg cursor hangs off it) and for its dialect (the
PostgreSQL or SQLite form of a statement). Each ``db.session.connection()`` goes through
the scoped session's registry, Flask-SQLAlchemy's ``get_bind`` (the app's engines, found
through ``current_app``) and the session transaction: ~3.9 µs; each
``db.session.get_bind().dialect.name`` ~3.1 µs. A beat made about 12 of the first and 16 of
the second (cProfile of ``bench/anti_idle_bench.py --only beat``): ~80 µs of CPU per beat
for the same two answers. Here each is kept in the session's ``info``: the dialect for the
session's life (its bind does not change), the connection for its transaction (the same
``SessionTransaction`` object: a COMMIT or ROLLBACK ends it and the next call asks again).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from lms_core.extensions import db

_DIALECT = "lms_beat_dialect"
_CONNECTION = "lms_beat_connection"


def dialect_name() -> str:
    """The name of the session's database dialect (``"postgresql"``, ``"sqlite"``)."""
    session = db.session()
    name: str | None = session.info.get(_DIALECT)
    if name is None:
        name = session.info[_DIALECT] = str(session.get_bind().dialect.name)
    return name


def is_pg() -> bool:
    return dialect_name() == "postgresql"


def connection() -> Connection:
    """``db.session.connection()``: the connection of the session's transaction (begun if none)."""
    session = db.session()
    kept: tuple[Any, Connection] | None = session.info.get(_CONNECTION)
    transaction = session.get_transaction()
    # The transaction object is kept with it, so it cannot be freed and its id reused.
    if kept is not None and transaction is not None and kept[0] is transaction:
        return kept[1]
    conn = session.connection()
    session.info[_CONNECTION] = (session.get_transaction(), conn)
    return conn
