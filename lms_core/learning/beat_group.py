"""The batched rows of one round of a beat group (PostgreSQL): read together, written together.

Group commit (``beat_batch``) made the beats that arrive together share one COMMIT, but
each beat still sent its own statements (the core's locked read and write, the plugin's
read and write: four per beat), and those statements were most of PostgreSQL's CPU and
much of the app's. A round is a set of beats of *distinct* people; for it:

* the core reads every beat's rows in one locked statement (``beat_rows.prefetch``) and
  each plugin reads its rows for the round through ``lms_beat_group_read``;
* each beat then runs ``record_beat`` as before: its reads are answered from the batch,
  its writes are kept in the batch (``add``), in order;
* the batch is written with one statement per writer (:meth:`Batch.flush`), before any
  other statement on those tables runs on the connection, and before the COMMIT.

Why this gives what one beat after another gives: a beat reads and writes only its own
person's rows (session, progress, clock, the anti-idle state row and checks), and the
round has one beat per person, so a beat's prefetched rows are exactly what it would have
read itself; every *other* statement a beat sends on those tables (a raw beat stored
before a day is replayed, a completion's read of the progress) first writes what the batch
holds, so it sees what it would have seen one by one.

The batch lives in the pooled connection's ``info`` (one connection serves one group at a
time), where both SQLAlchemy's statements (the ``before_cursor_execute`` listener below)
and the raw psycopg statements of ``beat_rows`` / ``state_pg`` find it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import msgspec
from sqlalchemy import event
from sqlalchemy.engine import Engine

#: Where the round's batch is kept: the pooled connection's ``info``.
KEY = "lms_beat_batch"


class HandOff(Exception):
    """Raised by a beat's work inside a round when what is left is long (a plugin about to
    replay a whole day: 150–350 ms of CPU where a beat takes 2): the group rolls back and is
    done again without this beat (and the person's later beats in it), which the Flask view
    then does alone, with the same answer. One writer thread records a process's groups, so
    a long beat in a group made every beat of it (and of the groups queued behind) wait:
    under load, groups of 15–30 beats waited 5–10 s behind a few day replays, the stall of
    docs/deployment.md (docs/benchmarks.md, "group rounds")."""


def in_round() -> bool:
    """Whether the session's connection is recording a round of a beat group (PostgreSQL)."""
    return active() is not None


#: The round open on this thread (:func:`begin` to :func:`end`, the writer thread's). A round
#: runs on one connection (its group's transaction, which nothing ends inside the round), so
#: its batch is the one in that connection's ``info``, found here without looking the
#: connection up (``beat_tx.connection``, then SQLAlchemy's ``Connection.info``: ~1.5 µs, four
#: to six times a beat).
class _Open(threading.local):
    #: A class default: a thread that never opened a round reads ``None`` without an
    #: ``AttributeError`` made and dropped (``getattr``'s default) on each look-up.
    batch: Batch | None = None


_open = _Open()


def active() -> Batch | None:
    """The round's batch of the session's connection, if one is open: ``current`` of
    ``beat_tx.connection().info``, this thread's open round first."""
    batch = _open.batch
    if batch is not None:
        return batch
    from lms_core.learning import beat_tx

    return current(beat_tx.connection().info)


class RoundFailed(Exception):
    """A round's read or write failed (nothing of the transaction stands)."""


class Batch:
    """One round's prefetched rows (by writer name) and pending writes (by writer, in order)."""

    def __init__(self) -> None:
        self.read: dict[str, dict[Any, Any]] = {}
        self._writes: dict[str, list[Any]] = {}
        self._writers: dict[str, Callable[[list[Any]], None]] = {}
        self._tables: set[str] = set()
        self._flushing = False

    def add(
        self,
        name: str,
        writer: Callable[[list[Any]], None],
        item: Any,
        tables: tuple[str, ...],
        *,
        first: bool = False,
    ) -> None:
        """Keep one write for ``writer`` (called with every kept item at the flush), which
        writes ``tables`` (a statement that names one of them is preceded by the flush).

        ``first``: this writer is flushed before the others whatever the order they first
        wrote in (the core's round write: it updates the round's sessions, which the
        append-only tables' session key then finds written by this transaction, see
        :func:`lms_core.db.session_key_ddl`; written after a plugin's raw beats, every
        session would be updated twice)."""
        writes = self._writes.get(name)
        if writes is None:
            self._writers[name] = writer
            writes = []
            if first:
                self._writes = {name: writes, **self._writes}
            else:
                self._writes[name] = writes
        writes.append(item)
        self._tables.update(tables)

    def flush_for(self, statement: str) -> None:
        """Flush before ``statement`` if it names a table with kept writes.

        A statement on other tables cannot see the kept rows, so it need not wait for them
        (a day verdict's read in the middle of a round, say, would otherwise cut the round's
        write into one write per beat). The batched tables are written by the beat path alone
        and no trigger or function of another table reads them."""
        if self._writes and any(table in statement for table in self._tables):
            self.flush()

    def flush(self) -> None:
        """Write what is kept: one call per writer, in the order the writers first wrote."""
        if self._flushing or not self._writes:
            return
        self._flushing = True  # a writer's own statement must not flush again
        try:
            while self._writes:
                name = next(iter(self._writes))
                items = self._writes.pop(name)
                self._writers[name](items)
        except Exception as exc:
            # Whichever beat's statement set the write off is not to blame: the group is
            # done again beat by beat (``beat_batch``), which finds a beat to blame if any.
            raise RoundFailed from exc
        finally:
            self._flushing = False


def current(info: dict[Any, Any]) -> Batch | None:
    found: Batch | None = info.get(KEY)
    return found


def begin(info: dict[Any, Any]) -> Batch:
    """Open a round on the connection of ``info`` (this thread's, until :func:`end`)."""
    batch = info[KEY] = _open.batch = Batch()
    return batch


def end(info: dict[Any, Any]) -> None:
    """Forget the round's batch (flushed, or rolled back with its transaction)."""
    info.pop(KEY, None)
    _open.batch = None


@event.listens_for(Engine, "before_cursor_execute")
def _flush_first(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: Any) -> None:
    """Any other statement on a batched table, on a connection with a round open, sees the
    round's writes first."""
    batch = conn.info.get(KEY)
    if batch is not None:
        batch.flush_for(statement)


#: msgspec's JSON encoder (C): it writes datetimes and dates itself, as RFC 3339 text (a
#: UTC time ends in ``Z``, which PostgreSQL reads as ``+00:00``). ``json.dumps`` with a
#: Python ``default`` per datetime cost ~10 µs per row of a round (a beat writes about seven
#: rows), this ~1.2 µs (docs/benchmarks.md, "the per-beat app CPU under gunicorn").
_ENCODER = msgspec.json.Encoder()


def json_text(value: Any) -> str:
    """A value as JSON text (non-ASCII as UTF-8, not escaped; no spaces)."""
    return _ENCODER.encode(value).decode()


def rows_json(rows: list[dict[str, Any]]) -> str:
    """Rows as one JSON array for ``jsonb_populate_recordset(NULL::table, ...)``: PostgreSQL
    turns each object into a row of the table's own types (timestamps as ISO text, with
    their offset), so one statement of one parameter writes the whole round."""
    return json_text(rows)
