"""The session keys' triggers (``lms_core.db.session_key_ddl``) against a concurrent delete or
re-key of the session, at every isolation level of both transactions (PostgreSQL, two real
connections).

An insert of a raw beat or a ledger interval and a ``DELETE`` (or ``UPDATE … SET id`` /
``SET user_id``) of the session it names race; whichever writes first, whichever commits first,
at READ COMMITTED, REPEATABLE READ or SERIALIZABLE on either side, the second is refused (the
triggers' error or a serialization failure), possibly after waiting for the first: never do both
commit, and no row is ever left naming a missing session (or another person's). Each transaction
takes its snapshot before either writes, the case where a lock alone would not do under REPEATABLE
READ (the key's cross-check snapshot did; the triggers' no-op update of the session does: a
delete of a row another transaction updated after one's snapshot fails to serialize).

The insert is either bare (a session the transaction did not write: the trigger's no-op update
holds it) or as the beat's round writes it (the session's own update first, then the rows: the
trigger holds nothing more)."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DatabaseError

from lms_core.extensions import db
from tests.plugins.anti_idle.harness import T0, other_learner
from tests.plugins.anti_idle.lock_waits import lock_wait
from tests.plugins.anti_idle.test_session_keys import TABLES, _row

pytestmark = [pytest.mark.app_config(LMS_PLUGINS=["anti_idle"]), pytest.mark.backends("postgresql")]

LEVELS = ("READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE")

#: How the two transactions interleave (each has taken its snapshot before):
#: * ``insert, delete waits``: the insert writes, the delete writes (and waits), the insert commits;
#: * ``delete, insert waits``: the delete writes, the insert writes (and waits), the delete commits;
#: * ``insert commits, then delete`` / ``delete commits, then insert``: the first writes and
#:   commits before the second writes (whose snapshot is older than that commit).
ORDERS = ("insert, delete waits", "delete, insert waits", "insert commits, then delete", "delete commits, then insert")

#: What the other transaction does to the session (with ``:s`` its id).
CHANGES = {
    "delete": "DELETE FROM learning_sessions WHERE id = :s",
    "rekey id": "UPDATE learning_sessions SET id = :new WHERE id = :s",
    "rekey person": "UPDATE learning_sessions SET user_id = :other WHERE id = :s",
}

#: What the second may be refused with: a serialization failure, the insert trigger's
#: ``foreign_key_violation``, the delete trigger's ``… is append-only`` (a ``RAISE``).
REFUSALS = {"40001", "23503", "P0001"}

ORPHANS = """SELECT count(*) FROM {table} AS r WHERE r.session_id = :s AND NOT EXISTS (
    SELECT FROM learning_sessions AS s
     WHERE s.id = r.session_id AND s.user_id = r.user_id AND s.lesson_id = r.lesson_id)"""


class _Side:
    """One transaction on a connection of its own, driven from a thread of its own (a statement
    may wait for the other side's locks)."""

    def __init__(self, engine: Engine, level: str) -> None:
        self._thread = ThreadPoolExecutor(1)
        self.error: DatabaseError | None = None
        self.committed = False
        self._conn: Connection = self._thread.submit(
            lambda: engine.connect().execution_options(isolation_level=level)
        ).result()
        self.pid = self.now(lambda c: c.execute(text("SELECT pg_backend_pid()")).scalar_one())
        # the transaction's snapshot (REPEATABLE READ, SERIALIZABLE), before either side writes
        self.now(lambda c: c.execute(text("SELECT count(*) FROM learning_sessions")).scalar_one())

    def now(self, work: Callable[[Connection], Any]) -> Any:
        return self._thread.submit(work, self._conn).result(30)

    def write(self, statements: list[tuple[str, dict[str, Any]]]) -> Future[None]:
        """Run the statements (in the side's thread); an error is kept and the transaction
        rolled back."""

        def run(conn: Connection) -> None:
            try:
                for statement, params in statements:
                    conn.execute(text(statement), params)
            except DatabaseError as error:
                self.error = error
                conn.rollback()

        return self._thread.submit(run, self._conn)

    def commit(self) -> None:
        def run(conn: Connection) -> None:
            if self.error is not None:
                return
            try:
                conn.commit()
                self.committed = True
            except DatabaseError as error:
                self.error = error
                conn.rollback()

        self.now(run)

    def close(self) -> None:
        def run(conn: Connection) -> None:
            conn.rollback()
            conn.close()

        self.now(run)
        self._thread.shutdown()


def _waits_or_ends(side: _Side, pending: Future[None]) -> bool:
    """Whether ``pending`` (the second side's write) waits for a lock or has ended (within ~5 s)."""
    return lock_wait(side.pid, pending) != "neither"


def _insert_statements(
    table: str, sid: str, user_id: int, lesson_id: int, round_: bool
) -> list[tuple[str, dict[str, Any]]]:
    row = _row(table, sid, user_id, lesson_id)
    columns = ", ".join(row)
    values = ", ".join(f":{name}" for name in row)
    params = {name: json.dumps(value) if isinstance(value, list | dict) else value for name, value in row.items()}
    insert = (f"INSERT INTO {table} ({columns}) VALUES ({values})", params)  # noqa: S608 - the test's own names
    if not round_:
        return [insert]
    # as the beat's round: its session's update first (a HOT update of its counters), then the rows
    return [("UPDATE learning_sessions SET last_seq = last_seq + 1 WHERE id = :s", {"s": sid}), insert]


def _race(
    engine: Engine, order: str, levels: tuple[str, str], inserting: list[Any], changing: list[Any]
) -> tuple[_Side, _Side, bool]:
    """Play ``order`` between an inserting side (``levels[0]``) and a changing side
    (``levels[1]``); the two sides and whether the second one's write waited or ended at once."""
    ins, chg = _Side(engine, levels[0]), _Side(engine, levels[1])
    try:
        first, second = (ins, chg) if order.startswith("insert") else (chg, ins)
        first_work, second_work = (inserting, changing) if first is ins else (changing, inserting)
        first.write(first_work).result(30)
        assert first.error is None, first.error
        if "waits" in order:
            pending = second.write(second_work)
            waited = _waits_or_ends(second, pending)
            first.commit()
            pending.result(30)
        else:
            first.commit()
            pending = second.write(second_work)
            pending.result(30)
            waited = True
        second.commit()
    finally:
        ins.close()
        chg.close()
    return ins, chg, waited


def _refusal(error: DatabaseError | None) -> str:
    """The PostgreSQL error code of a refusal: 40001 (serialization failure), 23503 (the
    triggers' ``foreign_key_violation``) or P0001 (``… is append-only``)."""
    return getattr(getattr(error, "orig", None), "sqlstate", None) or "-"


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("order", ORDERS)
def test_a_session_change_racing_an_insert_never_leaves_an_orphan_at_any_isolation_level(
    app, kit, tree, me, table, change, order
):
    other = other_learner(tree, me)
    failures = []
    for ins_level, chg_level, round_ in itertools.product(LEVELS, LEVELS, (False, True)):
        sid = me.open(me.document, at=T0).session.id
        db.session.commit()
        inserting = _insert_statements(table, sid, me.user.id, me.document.id, round_)
        params = {"s": sid, "new": uuid.uuid4().hex, "other": other.user.id}
        ins, chg, waited = _race(db.engine, order, (ins_level, chg_level), inserting, [(CHANGES[change], params)])
        first, second = (ins, chg) if order.startswith("insert") else (chg, ins)
        case = f"insert {ins_level}{' (round)' if round_ else ''} / {change} {chg_level}"
        # the first commits; the second is refused (after waiting, when it wrote before that commit)
        if not first.committed or second.committed or _refusal(second.error) not in REFUSALS or not waited:
            failures.append(f"{case}: first {first.committed}, second {second.committed} {second.error}, {waited=}")
        orphans = db.session.execute(text(ORPHANS.format(table=table)), {"s": sid}).scalar_one()
        db.session.rollback()
        if orphans:
            failures.append(f"{case}: {orphans} rows name a missing session")
    assert not failures, "\n".join(failures)
