"""Array parameters for PostgreSQL statements (the credit ledger's, the event log's bulk
insert), sent as one text literal each.

An array is sent as its literal (``'{1,2,NULL}'``), typed by the statement: a ``CAST(%(x)s AS
bigint[])`` of the parameter, or the signature of the function it is passed to (either way
PostgreSQL types the parameter itself: nothing is cast per row). psycopg's list dumper adapts
element by element (a regex per string): a tenth of a ledger batch's CPU, and two thirds
of ``events.emit_many``'s for a page's 50 look-events.

Not typed by a psycopg dumper: SQLAlchemy's dialect copies psycopg's adapters when the engine
is created, so a dumper registered later (at a plugin's import) reached some connections and
not others (the app under gunicorn sent untyped arrays; the tests, typed ones).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable


def _ints(values: Iterable[int | None]) -> str:
    return "{" + ",".join("NULL" if v is None else str(int(v)) for v in values) + "}"


def int_array(values: Iterable[int | None]) -> str:
    """An integer array literal (bigint[], integer[] or smallint[]), ``None`` as NULL."""
    return _ints(values)


def _quote(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def str_array(values: Iterable[str | None]) -> str:
    """A text[] literal; every element quoted (ids and memos come from callers and may hold
    anything), ``None`` as NULL."""
    return "{" + ",".join("NULL" if v is None else _quote(v) for v in values) + "}"


def date_array(values: Iterable[dt.date]) -> str:
    return "{" + ",".join(v.isoformat() for v in values) + "}"


def timestamptz_array(values: Iterable[dt.datetime | None]) -> str:
    """Aware datetimes only (a naive one would be read in the server's time zone)."""
    parts = []
    for v in values:
        if v is None:
            parts.append("NULL")
        elif v.tzinfo is None:
            raise ValueError("naive datetime in a timestamptz array")
        else:
            parts.append('"' + v.isoformat() + '"')
    return "{" + ",".join(parts) + "}"
