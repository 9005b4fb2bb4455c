"""The two append-only tables' session keys: on SQLite foreign keys, on PostgreSQL statement
triggers (migrations 0032sessionkey and 0014anti_idle_stmt_key, ``lms_core.db.session_key_ddl``).
Either way no interval or raw beat can name a session that does not exist (or is another
person's or lesson's), and a session with rows can be neither deleted nor re-keyed."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DatabaseError, IntegrityError

from lms_core.extensions import db
from lms_core.learning.models import LearningInterval, LearningSession
from plugins.anti_idle.models import Beat
from tests.plugins.anti_idle.harness import T0, other_learner

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])

TABLES = {"learning_intervals": LearningInterval, "anti_idle_beats": Beat}


def _row(table: str, session_id: str, user_id: int, lesson_id: int, seq: int = 1) -> dict[str, Any]:
    key = {"session_id": session_id, "user_id": user_id, "lesson_id": lesson_id, "seq": seq}
    if table == "learning_intervals":
        return key | {
            "wall_start": T0,
            "wall_end": T0,
            "claimed_segments": [],
            "credited_segments": [],
            "claimed_ms": 0,
            "credited_ms": 0,
            "verdict": "credit",
            "reasons": [],
            "client": {},
            "created_at": T0,
        }
    return key | {
        "lesson_kind": "document",
        "event": "heartbeat",
        "received_at": T0,
        "wall_start": T0,
        "launched_at": T0,
        "claimed": [],
        "position_ms": 0,
        "visible_ms": 0,
        "client": {},
        "credited": [],
        "credited_ms": 0,
        "cuts": {},
        "flags": [],
        "policy_version": 0,
        "session_claimed_ms": 0,
        "session_covered": [],
        "lesson_credited_ms": 0,
        "day_credited_ms": 0,
    }


def _insert(table: str, rows: list[dict[str, Any]]) -> bool:
    """True if one multi-row INSERT of ``rows`` is refused (and then undone)."""
    try:
        with db.session.begin_nested():
            db.session.execute(insert(TABLES[table]).values(rows))
    except IntegrityError:
        return True
    return False


def _count(table: str, session_id: str) -> int:
    return db.session.execute(
        text(f"SELECT count(*) FROM {table} WHERE session_id = :s"),  # noqa: S608 - a table of TABLES
        {"s": session_id},
    ).scalar_one()


@pytest.mark.parametrize("table", TABLES)
def test_rows_must_name_their_own_existing_session_in_a_multi_row_insert_too(kit, tree, me, table):
    other = other_learner(tree, me)
    sid = me.open(me.document, at=T0).session.id
    good = _row(table, sid, me.user.id, me.document.id)
    for bad in (
        _row(table, "0" * 32, me.user.id, me.document.id, seq=2),  # no such session
        _row(table, sid, other.user.id, me.document.id, seq=2),  # another person's
        _row(table, sid, me.user.id, me.short.id, seq=2),  # another lesson's
    ):
        assert _insert(table, [good, bad])
        assert _insert(table, [bad])
    assert _count(table, sid) == 0
    assert not _insert(table, [good, _row(table, sid, me.user.id, me.document.id, seq=2)])
    db.session.commit()
    assert _count(table, sid) == 2


@pytest.mark.parametrize("table", TABLES)
def test_a_session_with_rows_cannot_be_deleted_directly_or_by_a_cascade(kit, tree, me, table):
    """As the key's ON DELETE CASCADE met the append-only trigger: refused, "... is append-only"."""
    sid = me.open(me.document, at=T0).session.id
    bare = me.open(me.short, at=T0).session.id  # no rows: goes
    assert not _insert(table, [_row(table, sid, me.user.id, me.document.id)])
    db.session.commit()
    for statement, params in (
        ("DELETE FROM learning_sessions WHERE id = :s", {"s": sid}),
        ("DELETE FROM learning_sessions WHERE id IN (:s, :b)", {"s": sid, "b": bare}),
        ("DELETE FROM enrolments WHERE user_id = :u", {"u": me.user.id}),  # cascades to the sessions
        ("DELETE FROM lessons WHERE id = :l", {"l": me.document.id}),
    ):
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(text(statement), params)
            db.session.flush()
        db.session.rollback()
    assert db.session.get(LearningSession, sid) is not None and _count(table, sid) == 1
    db.session.execute(text("DELETE FROM learning_sessions WHERE id = :b"), {"b": bare})
    db.session.commit()
    assert db.session.get(LearningSession, bare) is None


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("column", ["id", "user_id", "lesson_id"])
def test_a_session_with_rows_cannot_be_rekeyed(kit, tree, me, table, column):
    other = other_learner(tree, me)
    sid = me.open(me.document, at=T0).session.id
    assert not _insert(table, [_row(table, sid, me.user.id, me.document.id)])
    db.session.commit()
    value = {"id": "f" * 32, "user_id": other.user.id, "lesson_id": me.short.id}[column]
    with pytest.raises(IntegrityError):
        rekey = f"UPDATE learning_sessions SET {column} = :v WHERE id = :s"  # noqa: S608 - a parameter of the test
        db.session.execute(text(rekey), {"v": value, "s": sid})
        db.session.flush()
    db.session.rollback()
    # the beat's own update of its session (no key column) is not refused
    db.session.execute(text("UPDATE learning_sessions SET last_seq = last_seq + 1 WHERE id = :s"), {"s": sid})
    db.session.commit()


# --- the race of an insert and a delete committing concurrently (PostgreSQL) ----------------


def _waiting(pid: int) -> bool:
    """Whether backend ``pid`` waits for a lock (within ~5 s)."""
    for _ in range(100):
        with db.engine.connect() as probe:
            state = probe.execute(
                text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
            ).scalar_one_or_none()
        if state == "Lock":
            return True
        time.sleep(0.05)
    return False


def _in_thread(app: Any, statement: str, params: dict[str, Any], outcome: dict[str, Any]) -> threading.Thread:
    """Run ``statement`` on a connection of its own in a thread and commit; its pid goes to
    ``outcome["pid"]``, its error (or None) to ``outcome["error"]``."""

    def run() -> None:
        with app.app_context(), db.engine.connect() as conn:
            outcome["pid"] = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            try:
                conn.execute(text(statement), params)
                conn.commit()
                outcome["error"] = None
            except DatabaseError as error:
                outcome["error"] = error
                conn.rollback()

    thread = threading.Thread(target=run)
    thread.start()
    for _ in range(100):
        if "pid" in outcome:
            break
        time.sleep(0.05)
    return thread


@pytest.mark.backends("postgresql")
@pytest.mark.parametrize("table", TABLES)
def test_a_delete_racing_an_insert_waits_for_it_and_then_refuses(app, kit, tree, me, table):
    """The insert names a committed session it did not update itself: its check holds the
    session row, so the concurrent delete waits for the insert's commit and then sees its rows
    (without the hold the delete would commit first and leave the rows naming nothing)."""
    sid = me.open(me.document, at=T0).session.id
    db.session.commit()
    assert not _insert(table, [_row(table, sid, me.user.id, me.document.id)])  # not committed yet
    outcome: dict[str, Any] = {}
    deleting = _in_thread(app, "DELETE FROM learning_sessions WHERE id = :s", {"s": sid}, outcome)
    try:
        assert _waiting(outcome["pid"])
    finally:
        db.session.commit()
        deleting.join(10)
    assert isinstance(outcome["error"], DatabaseError) and "append-only" in str(outcome["error"])
    assert db.session.get(LearningSession, sid) is not None and _count(table, sid) == 1


@pytest.mark.backends("postgresql")
@pytest.mark.parametrize("table", TABLES)
def test_an_insert_racing_a_delete_waits_for_it_and_then_is_refused(app, kit, tree, me, table):
    """The delete went first (the session had no rows): the insert's check waits for it and,
    the session gone when it commits, refuses the rows."""
    sid = me.open(me.document, at=T0).session.id
    db.session.commit()
    db.session.execute(text("DELETE FROM learning_sessions WHERE id = :s"), {"s": sid})  # not committed yet
    outcome: dict[str, Any] = {}
    row = _row(table, sid, me.user.id, me.document.id)
    columns = ", ".join(row)
    values = ", ".join(f":{name}" for name in row)
    params = {name: json.dumps(value) if isinstance(value, list | dict) else value for name, value in row.items()}
    statement = f"INSERT INTO {table} ({columns}) VALUES ({values})"  # noqa: S608 - the test's own names
    inserting = _in_thread(app, statement, params, outcome)
    try:
        assert _waiting(outcome["pid"])
    finally:
        db.session.commit()
        inserting.join(10)
    assert isinstance(outcome["error"], IntegrityError) and "deleted meanwhile" in str(outcome["error"])
    assert db.session.get(LearningSession, sid) is None and _count(table, sid) == 0
