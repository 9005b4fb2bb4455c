"""Declarative base, column types and transaction helpers shared by every package."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, TypeVar

from sqlalchemy import DateTime, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.types import TypeDecorator

#: Stable constraint names, so that Alembic autogenerate produces the same diff on
#: SQLite and PostgreSQL and can drop constraints by name later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every model, core and plugins alike (one metadata, one Alembic env)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    def __repr__(self) -> str:
        mapper = self.__mapper__
        keys = ", ".join(f"{c.key}={getattr(self, str(c.key))!r}" for c in mapper.primary_key)
        return f"<{type(self).__name__} {keys}>"


_Model = TypeVar("_Model", bound=Base)


def transient_copy(cls: type[_Model], values: dict[str, Any]) -> _Model:
    """A transient instance of ``cls`` (in no session) holding ``values`` as if loaded.

    For the heartbeat's hot path, where an instance is only read (the completion verdict's
    copies of the lesson and progress rows, an event kept for a round's INSERT): the
    constructor sets each value through the ORM's attribute events and history, ~4-6 µs a
    column (a lesson, a progress row and an event cost ~110 µs of CPU per completion,
    ``timeit``, load 7); this puts them in the instance's ``__dict__`` as the ORM's loader
    does (~8-13 µs each). Columns not given read as ``None``; a value set later goes
    through the ORM as usual. Not for an instance meant to be added to a session (its values
    have no history of a change).
    """
    obj: _Model = manager_of_class(cls).new_instance()
    obj.__dict__.update(values)
    return obj


def utcnow() -> dt.datetime:
    """Current time as an aware UTC datetime; the only clock the models use."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored
    as naive UTC and made aware again on load. Naive input is rejected rather than
    guessed, because a naive local time would silently shift study hours by 8 hours.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def json_type() -> Any:
    """JSON column: JSONB on PostgreSQL (indexable), JSON text elsewhere."""
    from sqlalchemy import JSON
    from sqlalchemy.dialects.postgresql import JSONB

    return JSON().with_variant(JSONB(), "postgresql")


def bigint_pk() -> Any:
    """A 64-bit primary key that is still SQLite's auto-incrementing ROWID."""
    from sqlalchemy import BigInteger, Integer

    return BigInteger().with_variant(Integer(), "sqlite")


def str_enum(enum_cls: type[Any], length: int = 32) -> Any:
    """Store a ``StrEnum`` by its *value* as a checked VARCHAR (portable, readable in SQL)."""
    from sqlalchemy import Enum

    return Enum(
        enum_cls,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """SQLite, the embedded default, made to behave: enforce foreign keys (off by
    default in SQLite) and use WAL so readers never wait for the writer."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged commit survives a power loss too (NORMAL would only survive a crash).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()


def install_sqlite_pragmas() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _sqlite_pragmas):
        event.listen(Engine, "connect", _sqlite_pragmas)


_CHECKED_IN_AT = "lms_checked_in_at"


def install_idle_ping(engine: Any, idle_seconds: float) -> None:
    """Check a pooled connection is alive, but only if it has sat idle for a while.

    ``pool_pre_ping`` pings on *every* checkout: one extra round trip per request, for
    connections that a busy worker used a few milliseconds earlier. A connection that
    was returned recently has just proved itself; one that sat idle may have been cut
    by a database restart, a failover or a firewall timeout, so those are pinged (with
    the dialect's own ping). A failed ping raises ``DisconnectionError``, on which the
    pool discards the connection and hands out a fresh one: the request never sees it.
    See SQLAlchemy's "Disconnect Handling - Pessimistic" (custom checkout ping).
    """
    import time

    from sqlalchemy import event, exc

    dialect = engine.dialect

    def _connected(dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(_CHECKED_IN_AT)
        if since is not None and time.monotonic() - since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as err:
            if dialect.is_disconnect(err, dbapi_connection, None):
                raise exc.DisconnectionError(str(err)) from err
            raise
        record.info[_CHECKED_IN_AT] = time.monotonic()

    event.listen(engine, "connect", _connected)
    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "checkout", _checked_out)


def install_read_only_commit(engine: Any) -> None:
    """End read-only PostgreSQL transactions with COMMIT instead of ROLLBACK.

    psycopg prepares a statement on the server once it has run it a few times on a
    connection (``prepare_threshold``), which spares PostgreSQL planning it again:
    0.5–0.8 ms for each of the course page's joins. But psycopg forgets every prepared
    statement, and its execution counts, on ROLLBACK (a rolled-back transaction may have
    created or dropped objects they refer to). Every request ends with a rollback (the
    session is closed), so nothing ever stayed prepared and every query was planned on
    every request.

    A transaction that has not written anything has no transaction id
    (``txid_current_if_assigned()`` is NULL): committing it changes nothing that a
    rollback would undo (our code changes settings with ``SET LOCAL`` only, which ends
    with the transaction either way), and psycopg keeps its prepared statements. The
    check asks the server rather than tracking statements here, because some writes
    (the LRS's batch insert) use the raw driver connection. Anything that did write, or
    failed, is rolled back as before.
    """
    dialect = engine.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        return
    import psycopg
    from psycopg.pq import TransactionStatus

    rollback = dialect.do_rollback

    def do_rollback(connection: Any) -> None:
        # SQLAlchemy passes its pool's proxy; ``info`` must be psycopg's, not the pool's.
        raw = getattr(connection, "dbapi_connection", connection)
        if isinstance(raw, psycopg.Connection) and raw.info.transaction_status == TransactionStatus.INTRANS:
            try:
                row = raw.execute("SELECT txid_current_if_assigned() IS NULL").fetchone()
                if row is not None and row[0]:
                    raw.commit()
                    return
            except psycopg.Error:
                pass  # fall through: the rollback below reports or clears the problem
        rollback(connection)

    dialect.do_rollback = do_rollback


def install_utc_sessions(engine: Any) -> None:
    """Run every PostgreSQL session of the app in UTC (``SET TIME ZONE 'UTC'`` on connect).

    psycopg hands out each ``timestamptz`` it reads in the session's time zone: with the
    server's default (this machine's ``Etc/UTC``, a deployment's ``Asia/Shanghai``) that is a
    ``ZoneInfo``, one ``astimezone`` through its ``utcoffset`` per value, and the app converts
    each to UTC again (``UTCDateTime``, the beat's Core reads): two conversions of ~1,600
    instructions a value, about eight a heartbeat. In a UTC session psycopg's tzinfo is
    ``datetime.UTC`` and both are no-ops. The app's SQL names its time zones (Beijing days are
    ``AT TIME ZONE 'Asia/Shanghai'``): the test clusters run at offset 0 (``Etc/UTC``) already.
    ``SET``, not a startup ``options``: PgBouncer tracks ``TimeZone`` but refuses ``options``."""
    if engine.dialect.name != "postgresql":
        return
    from sqlalchemy import event

    def _connected(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SET TIME ZONE 'UTC'")
        finally:
            cursor.close()
        dbapi_connection.commit()  # not autocommit: the SET's transaction, or a rollback would undo it

    event.listen(engine, "connect", _connected)


# Append-only tables --------------------------------------------------------------

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _checked(table: str) -> str:
    if not _IDENTIFIER.fullmatch(table):
        raise ValueError(f"not a plain table name: {table!r}")
    return table


def append_only_ddl(table: str, dialect: str) -> list[str]:
    """SQL that makes ``table`` refuse UPDATE and DELETE, for a migration's ``op.execute``.

    PostgreSQL: a function ``<table>_append_only()`` raising "<table> is append-only"
    and one row trigger ``<table>_no_update_delete``. SQLite: two triggers
    ``<table>_no_update`` / ``<table>_no_delete`` that abort with the same message.
    These are the names the existing migrations use, so :func:`drop_append_only_ddl`
    undoes either. Use it in a new migration as::

        for statement in append_only_ddl("my_plugin_rows", op.get_bind().dialect.name):
            op.execute(statement)

    The text must never change: migrations that ran keep what they created.
    """
    table = _checked(table)
    if dialect == "postgresql":
        return [
            f"""CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{table} is append-only';
            END $$;""",
            f"""CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION {table}_append_only();""",
        ]
    if dialect == "sqlite":
        return [
            f"""CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;"""
            for action in ("UPDATE", "DELETE")
        ]
    raise ValueError(f"no append-only triggers for the {dialect} dialect")


def drop_append_only_ddl(table: str, dialect: str) -> list[str]:
    """SQL that removes what :func:`append_only_ddl` created (for ``downgrade``)."""
    table = _checked(table)
    if dialect == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table}",
            f"DROP FUNCTION IF EXISTS {table}_append_only()",
        ]
    return [f"DROP TRIGGER IF EXISTS {table}_no_update", f"DROP TRIGGER IF EXISTS {table}_no_delete"]


# Session keys checked per statement (PostgreSQL) -----------------------------------

#: ``info`` of a model's constraint that exists on SQLite only (with ``.ddl_if(dialect="sqlite")``):
#: on PostgreSQL triggers keep its rule (:func:`session_key_ddl`), so ``migrations/env.py``'s
#: ``include_object`` does not look for it there.
SQLITE_ONLY = {"only_on": "sqlite"}


def session_key_ddl(table: str) -> list[str]:
    """PostgreSQL SQL that holds ``table``'s rows to their learning session as the composite
    foreign key ``(session_id, user_id, lesson_id) → learning_sessions (id, user_id, lesson_id)``
    did, with one query a statement instead of one a row (migrations 0032sessionkey and
    0014anti_idle_stmt_key say why; docs/anti_idle.md, "The session keys").

    ``table`` is append-only (its rows are never updated or deleted), so only three events can
    break the rule, each with its trigger:

    * ``<table>_session_key`` (``AFTER INSERT … FOR EACH STATEMENT`` on ``table``, the new rows
      as a transition table): every distinct ``(session_id, user_id, lesson_id)`` of the
      statement's rows must be a visible session row, else ``foreign_key_violation``. A session
      row this transaction did not itself write (``xmin``, the beat's round always updates its
      sessions first) gets a no-op ``UPDATE`` so that a concurrent delete of it waits for this
      transaction and then sees its rows (READ COMMITTED), or fails with a serialization error
      (REPEATABLE READ, SERIALIZABLE); a session deleted meanwhile is missed by the update and
      refused as missing.
    * ``<table>_session_gone`` (``AFTER DELETE … FOR EACH STATEMENT`` on ``learning_sessions``):
      a deleted session with rows is refused with ``<table> is append-only``, the error the key's
      ``ON DELETE CASCADE`` met at the append-only trigger (so deleting a user, a lesson or an
      enrolment with learning records is refused exactly as before).
    * ``<table>_session_rekeyed`` (``AFTER UPDATE OF id, user_id, lesson_id … FOR EACH ROW`` on
      ``learning_sessions``, only when one of them changes): refused with ``foreign_key_violation``
      if rows name the old key (the key's ``ON UPDATE NO ACTION``). The beat's update of its
      session sets none of these columns, so the trigger is not even queued.

    The text must never change: migrations that ran keep what they created.
    """
    table = _checked(table)
    new = f"{table}_new"
    distinct = f"(SELECT DISTINCT session_id, user_id, lesson_id FROM {new})"  # noqa: S608 - a checked name
    same = "s.id = k.session_id AND s.user_id = k.user_id AND s.lesson_id = k.lesson_id"
    ours = "pg_current_xact_id()::xid"
    return [
        f"""CREATE FUNCTION {table}_session_key() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            wanted bigint;
            found bigint;
            theirs bigint;
            held bigint;
        BEGIN
            SELECT count(*), count(s.id), count(s.id) FILTER (WHERE s.xmin <> {ours})
              INTO wanted, found, theirs
              FROM {distinct} AS k LEFT JOIN learning_sessions AS s ON {same};
            IF found < wanted THEN
                RAISE EXCEPTION '{table} rows name no learning session of theirs'
                    USING ERRCODE = 'foreign_key_violation';
            END IF;
            IF theirs > 0 THEN
                UPDATE learning_sessions AS s SET last_seq = s.last_seq
                  FROM {distinct} AS k WHERE {same} AND s.xmin <> {ours};
                GET DIAGNOSTICS held = ROW_COUNT;
                IF held < theirs THEN
                    RAISE EXCEPTION '{table} rows name a learning session deleted meanwhile'
                        USING ERRCODE = 'foreign_key_violation';
                END IF;
            END IF;
            RETURN NULL;
        END $$;""",  # noqa: S608 - a checked name
        f"""CREATE TRIGGER {table}_session_key AFTER INSERT ON {table}
        REFERENCING NEW TABLE AS {new}
        FOR EACH STATEMENT EXECUTE FUNCTION {table}_session_key();""",
        f"""CREATE FUNCTION {table}_session_gone() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                PERFORM FROM {table}_sessions_gone AS o JOIN {table} AS r ON r.session_id = o.id LIMIT 1;
            ELSE
                PERFORM FROM {table} AS r WHERE r.session_id = OLD.id LIMIT 1;
            END IF;
            IF FOUND AND TG_OP = 'DELETE' THEN
                RAISE EXCEPTION '{table} is append-only';
            ELSIF FOUND THEN
                RAISE EXCEPTION '{table} rows name learning session %', OLD.id
                    USING ERRCODE = 'foreign_key_violation';
            END IF;
            RETURN NULL;
        END $$;""",
        f"""CREATE TRIGGER {table}_session_gone AFTER DELETE ON learning_sessions
        REFERENCING OLD TABLE AS {table}_sessions_gone
        FOR EACH STATEMENT EXECUTE FUNCTION {table}_session_gone();""",
        f"""CREATE TRIGGER {table}_session_rekeyed AFTER UPDATE OF id, user_id, lesson_id ON learning_sessions
        FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.user_id IS DISTINCT FROM NEW.user_id
                           OR OLD.lesson_id IS DISTINCT FROM NEW.lesson_id)
        EXECUTE FUNCTION {table}_session_gone();""",
    ]


def drop_session_key_ddl(table: str) -> list[str]:
    """SQL that removes what :func:`session_key_ddl` created (for ``downgrade``)."""
    table = _checked(table)
    return [
        f"DROP TRIGGER IF EXISTS {table}_session_key ON {table}",
        f"DROP TRIGGER IF EXISTS {table}_session_gone ON learning_sessions",
        f"DROP TRIGGER IF EXISTS {table}_session_rekeyed ON learning_sessions",
        f"DROP FUNCTION IF EXISTS {table}_session_key()",
        f"DROP FUNCTION IF EXISTS {table}_session_gone()",
    ]
