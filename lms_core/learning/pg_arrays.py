"""A round's rows as one typed array per column (PostgreSQL), for ``unnest``.

A round's writes (``beat_rows._write_many``, the anti-idle plugin's ``state_pg._write_many``)
sent each table's rows as one JSON document that ``jsonb_populate_recordset`` spread into
rows: PostgreSQL parsed the whole document (``jsonb_in``, ~30 % of its instructions for the
two writes) and then turned every number and timestamp back into text and into its
column's type. Here each column is one array literal (``{1,2,NULL}``) cast to the column's
type in the statement (``unnest(%(x)s::bigint[], ...)``): ``array_in`` reads each value once
with its type's own input function, and only the JSON columns' values go through
``jsonb_in`` (docs/benchmarks.md, "typed arrays").

The literals are built from msgspec's JSON of the column (C): a JSON array of numbers,
booleans, ``null`` and strings is a PostgreSQL array literal once its brackets are braces,
as long as every escape in it is ``\\"`` or ``\\\\`` (which both read the same); a column
whose JSON has any other escape (a control character in a string) is written out element
by element instead. psycopg's own list adaptation costs a Python call per element and types
a list by its values (a list of small ints goes as ``smallint[]``, of ``None`` untyped), so
one statement would be prepared per combination; a literal is sent untyped and takes the
type of its cast.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import JSON, String, Table
from sqlalchemy.dialects import postgresql

_ENCODE = msgspec.json.Encoder().encode
#: An escape in msgspec's JSON that a PostgreSQL array literal reads differently (``\\n``,
#: ``\\u0001``, ...): any backslash followed by something other than ``"`` or a backslash.
#: (An escaped backslash followed by such a letter also matches: the slow path, still right.)
_OTHER_ESCAPE = re.compile(rb'\\[^"\\]')


def literal(values: Sequence[Any]) -> str:
    """``values`` (``None``, bools, ints, strings, dates, aware datetimes) as an array literal."""
    text = _ENCODE(values)
    if _OTHER_ESCAPE.search(text) is None:
        return "{" + text[1:-1].decode() + "}"
    return "{" + ",".join(map(_element, values)) + "}"


def _element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(_ENCODE(value).decode())  # a number, a boolean or a quoted date: no escapes


def json_literal(values: Sequence[Any]) -> str:
    """A JSON column's values as an array literal of their JSON texts (``None``: SQL NULL, as
    ``jsonb_populate_recordset`` stored a JSON ``null``)."""
    encode = _ENCODE
    return literal([None if v is None else encode(v).decode() for v in values])


@functools.cache
def array_type(table: Table, column: str) -> str:
    """The SQL type of ``column``'s array: its type on PostgreSQL, strings as ``text`` (a cast
    to ``varchar(n)`` would cut a longer value where the INSERT refuses it)."""
    type_ = table.c[column].type
    if isinstance(type_, String) and not isinstance(type_, JSON):
        return "text[]"
    return f"{type_.compile(dialect=postgresql.dialect()).lower()}[]"


def is_json(table: Table, column: str) -> bool:
    return array_type(table, column) == "jsonb[]"


def unnest(table: Table, prefix: str, columns: Sequence[str], *, ordinality: bool = False) -> str:
    """``unnest(%(prefix_col)s::type[], ...) AS v(col, ...)``: the rows given by :func:`params`
    (``WITH ORDINALITY``, their position as ``v.ord``, if ``ordinality``)."""
    arrays = ", ".join(f"%({prefix}_{c})s::{array_type(table, c)}" for c in columns)
    names = ", ".join((*columns, "ord") if ordinality else columns)
    return f"unnest({arrays}){' WITH ORDINALITY' if ordinality else ''} AS v({names})"


def params(table: Table, prefix: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> dict[str, str]:
    """The parameters of :func:`unnest`: ``rows`` (one value per column, in order) by column."""
    by_column: Iterable[Sequence[Any]] = list(zip(*rows, strict=True)) or [()] * len(columns)
    return {
        f"{prefix}_{c}": json_literal(values) if is_json(table, c) else literal(values)
        for c, values in zip(columns, by_column, strict=True)
    }
