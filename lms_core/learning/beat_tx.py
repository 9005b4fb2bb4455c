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

A group of beats (``beat_batch``) also *pins* its thread's session for the group
(:func:`pinned`): ``db.session()`` itself (the scoped registry, Flask-SQLAlchemy's app
context id through werkzeug's proxy) was ~1.5 µs, and a beat of a group asked for it about
nine times through these two functions (``bench/beat_split.py --group 15``). One group runs
in one app context on one thread, whose scoped session does not change while it runs.
The group also keeps its session's dialect name and the app's plugin manager there
(:func:`plugin_manager`): each a look-up through ``current_app`` (werkzeug's proxy) or the
session's ``info`` that a beat made two to four times.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pluggy
from flask import Config, Flask, current_app
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from lms_core.extensions import db

_DIALECT = "lms_beat_dialect"
_CONNECTION = "lms_beat_connection"


class _Pin(threading.local):
    """What a group pinned on this thread (:func:`pinned`). Class defaults: a thread that never
    pinned (a request's) reads ``None`` without an ``AttributeError`` made and dropped each time."""

    session: Session | None = None
    dialect: str | None = None
    plugins: pluggy.PluginManager | None = None
    config: Config | None = None


_pin = _Pin()


@contextmanager
def pinned() -> Iterator[None]:
    """This thread's scoped session, looked up once for the block (one group's beats)."""
    from lms_core.pluginhost.manager import get_plugin_manager

    _pin.session = db.session()
    _pin.dialect = None
    _pin.plugins = get_plugin_manager()
    _pin.config = current_app._get_current_object().config  # type: ignore[attr-defined]
    try:
        yield
    finally:
        _pin.session = _pin.dialect = _pin.plugins = _pin.config = None


def in_group() -> bool:
    """Whether this thread is recording a group of beats (:func:`pinned`)."""
    return _pin.session is not None


def _session() -> Session:
    session: Session | None = _pin.session
    return session if session is not None else db.session()


def session() -> Session:
    """The beat's ORM session: the group's pinned one, else ``db.session()``."""
    return _session()


def plugin_manager() -> pluggy.PluginManager:
    """The app's plugin manager: the group's pinned one, else ``get_plugin_manager()``."""
    pm: pluggy.PluginManager | None = _pin.plugins
    if pm is None:
        from lms_core.pluginhost.manager import get_plugin_manager

        pm = get_plugin_manager()
    return pm


def config() -> Config:
    """The app's config: the group's pinned one, else the current app's.

    Not ``current_app.config``: ``config`` is not the proxy's own attribute, so each look-up
    made and dropped an ``AttributeError`` before the proxy's ``__getattr__`` found it."""
    found: Config | None = _pin.config
    if found is not None:
        return found
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app.config


def dialect_name() -> str:
    """The name of the session's database dialect (``"postgresql"``, ``"sqlite"``)."""
    pinned_name: str | None = _pin.dialect
    if pinned_name is not None:
        return pinned_name
    session = _session()
    name: str | None = session.info.get(_DIALECT)
    if name is None:
        name = session.info[_DIALECT] = str(session.get_bind().dialect.name)
    if _pin.session is session:
        _pin.dialect = name
    return name


def is_pg() -> bool:
    return dialect_name() == "postgresql"


def connection() -> Connection:
    """``db.session.connection()``: the connection of the session's transaction (begun if none)."""
    session = _session()
    kept: tuple[weakref.ReferenceType[Any], Connection] | None = session.info.get(_CONNECTION)
    transaction = session.get_transaction()
    # The transaction is kept by a weak reference: a strong one made a reference cycle (the
    # session's ``info`` -> the transaction -> its ``session``), so every group's session, its
    # transaction and connection (~43 objects) were freed only by the garbage collector, in
    # batches of ~20,000 with the GIL held (issue 8, cycles: bench/gc_garbage.py). A weak
    # reference also keeps the check exact: once the transaction is freed it answers ``None``,
    # never a new transaction that reused its id.
    if kept is not None and transaction is not None and kept[0]() is transaction:
        return kept[1]
    conn = session.connection()
    begun = session.get_transaction()
    assert begun is not None  # ``connection()`` began it
    session.info[_CONNECTION] = (weakref.ref(begun), conn)
    return conn
