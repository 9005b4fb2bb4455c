"""A round's rows as one parameter per column (PostgreSQL): typed arrays, ``unnest``-ed.

A round's writes (``beat_rows._write_many``, the anti-idle plugin's ``state_pg._write_many``)
sent each table's rows as one JSON document that ``jsonb_populate_recordset`` spread into
rows: PostgreSQL parsed the whole document (``jsonb_in``, ~30 % of its instructions for the
two writes) and then turned every number and timestamp back into text and into its
column's type. Here each column is one array literal (``{1,2,NULL}``) cast to the column's
type in the statement (``unnest(%(x)s::bigint[])``, one per column, in the select list):
``array_in`` reads each value once with its type's own input function. A ``jsonb`` column
is one JSON array, parsed once, each row taking its element by position; only those
columns' values go through ``jsonb_in`` now (docs/benchmarks.md, "typed arrays"). A
``json`` column (not ``jsonb``: the anti-idle person state's and raw beat's) is a
``text[]`` of its values' JSON texts, ``unnest``-ed with the others and each cast to
``json``: checked once (``json_in``), kept as sent, never parsed into ``jsonb``.

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
import operator
import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import JSON, String, Table
from sqlalchemy.dialects import postgresql

_ENCODE = msgspec.json.Encoder().encode
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect class is untyped
#: An escape in msgspec's JSON that a PostgreSQL array literal reads differently (``\\n``,
#: ``\\u0001``, ...): any backslash followed by something other than ``"`` or a backslash.
#: (An escaped backslash followed by such a letter also matches: the slow path, still right.)
_OTHER_ESCAPE = re.compile(rb'\\[^"\\]')


def literal(values: Sequence[Any]) -> str:
    """``values`` (``None``, bools, ints, strings, dates, aware datetimes) as an array literal."""
    text = _ENCODE(values)
    # The backslash test first: most columns have none, and it costs a fraction of the search.
    # ``find``, not ``in``: ``bytes in bytes`` tries the operand as an int first (a TypeError
    # made and dropped, ~2,000 instructions, on every column of a round).
    if text.find(b"\\") < 0 or _OTHER_ESCAPE.search(text) is None:
        return "{" + text[1:-1].decode() + "}"
    return "{" + ",".join(map(_element, values)) + "}"


def _plain_literal(values: Sequence[Any]) -> str:
    """:func:`literal` of a column without strings (numbers, dates, times: JSON with no escape)."""
    return "{" + _ENCODE(values)[1:-1].decode() + "}"


def _element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(_ENCODE(value).decode())  # a number, a boolean or a quoted date: no escapes


def json_column(values: Sequence[Any]) -> str:
    """A JSON column's values as one JSON array (``None``: SQL NULL, as ``jsonb_populate_recordset``
    stored a JSON ``null``): one parse for the column, where an array literal of JSON texts had
    PostgreSQL read each text twice (``array_in``, then ``jsonb_in``) and Python encode each."""
    return str(_ENCODE(values).decode())


@functools.lru_cache(maxsize=64)
def _ordinals(n: int) -> str:
    """The array literal ``{1,2,...,n}`` (a round's rows' positions)."""
    return "{" + ",".join(map(str, range(1, n + 1))) + "}"


def json_texts(values: Sequence[Any]) -> str:
    """A ``json`` column's values as an array literal of their JSON texts (``None``: SQL NULL)."""
    return literal([None if value is None else _ENCODE(value).decode() for value in values])


_ENCODE_LINES = msgspec.json.Encoder().encode_lines


def json_lines(values: Sequence[Any]) -> str:
    """A ``json`` column's values as their JSON texts one a line (``None``: ``null``, read back
    as SQL NULL), split by :attr:`Rows.sql` with ``string_to_array``.

    Why: :func:`json_texts` encoded each value by itself (a Python call per value: nine a beat
    for the anti-idle plugin's state and raw beat) and then the list of texts again, escaping
    every quote of every text, for ``array_in`` to read back. msgspec's JSON never holds a raw
    newline (control characters in strings are escaped), so the texts one a line are the
    column in one C call, with nothing escaped twice; ``string_to_array`` only looks for the
    newlines."""
    return _ENCODE_LINES(values)[:-1].decode()


def array_type(table: Table, column: str) -> str:
    """The SQL type of ``column``'s array: its type on PostgreSQL, strings as ``text`` (a cast
    to ``varchar(n)`` would cut a longer value where the INSERT refuses it)."""
    type_ = table.c[column].type
    if isinstance(type_, String) and not isinstance(type_, JSON):
        return "text[]"
    # ``timestamptz``, not ``timestamp with time zone``: the same type, shorter (beat_rows' round
    # write must stay within psycopg's 4,096 bytes for its placeholders' parse to be kept).
    return f"{type_.compile(dialect=_DIALECT).lower().replace('timestamp with time zone', 'timestamptz')}[]"


class Rows:
    """Some columns of a table's rows, sent as one parameter per column: :attr:`sql` is
    ``(SELECT ...) AS v``, the rows as columns ``v.<column>`` of the table's types and their
    position as ``v.ord`` (to insert them in order); :meth:`params` its parameters.

    A column is ``unnest``-ed from one typed array (a ``json`` column's from a ``text[]`` of JSON
    texts), except a ``jsonb`` column: one ``jsonb`` array, its row's element taken by position
    (``->``; the array is parsed once, at the Bind)."""

    def __init__(
        self, table: Table, prefix: str, columns: tuple[str, ...], *, same: dict[str, str] | None = None
    ) -> None:
        self.columns = columns
        types = {c: array_type(table, c) for c in columns}
        #: Columns that usually repeat another parameter of the statement, element for element (a
        #: round's interval ends are its sessions' last beats): ``{column: parameter}``.
        self.same = dict(same or {})
        scalars = [c for c in columns if types[c] != "jsonb[]"]
        assert scalars, "the rows are unnest-ed from a column that is not jsonb"
        #: ``json`` columns (not ``jsonb``) come as their values' JSON texts one a line
        #: (:func:`json_lines`), split into a ``text[]`` and each cast to ``json`` (checked once,
        #: kept as sent). One JSON array of the column, split by ``json_array_elements``, was
        #: read twice: checked whole at the Bind (``json_in``), then parsed again to split it
        #: (docs/benchmarks.md, "the JSON read once").
        arrays = [
            f"string_to_array(%({prefix}_{c})s::text, E'\\n', 'null')"
            if types[c] == "json[]"
            else f"%({prefix}_{c})s::{types[c]}"
            for c in scalars
        ]
        picked = ", ".join(
            f"nullif(%({prefix}_{c})s::jsonb -> (u.ord::integer - 1), 'null') AS {c}"
            if types[c] == "jsonb[]"
            else f"u.{c}"
            for c in columns
        )
        #: The arrays are unnest-ed in the select list, in step (PostgreSQL runs a select list's
        #: set-returning functions in lockstep; the arrays have one element per row), with the
        #: rows' positions as one more array: each value is taken from its array as the row is
        #: read. ``unnest(a, b, ...) WITH ORDINALITY`` in ``FROM`` copied every column into a
        #: tuple store of its own first, then read them back (docs/benchmarks.md, "the JSON
        #: read once").
        unnested = ", ".join(
            f"unnest({array}){'::json' if types[c] == 'json[]' else ''} AS {c}"
            for array, c in zip(arrays, scalars, strict=True)
        )
        # The positions are a parameter too: ``generate_subscripts`` has no row estimate of its own
        # (the planner takes 1,000 rows, and would join the round's rows to a table by hashing the
        # whole table); ``unnest``'s is 10 rows, as before.
        ordinal = f"unnest(%({prefix}_ord)s::integer[]) AS ord"
        self._ord = f"{prefix}_ord"
        self._prefix = prefix
        #: The names are the callers' constants and the table's columns; every value is bound.
        self.sql = (
            f"(SELECT {ordinal}, {unnested}) AS v"  # noqa: S608
            if len(scalars) == len(columns)
            else f"(SELECT u.ord, {picked} FROM (SELECT {ordinal}, {unnested}) AS u) AS v"  # noqa: S608
        )
        #: :attr:`sql` with each :attr:`same` column taken from the parameter it repeats: that array
        #: is sent and read once (``array_in``, each element's input function: ~4,200 instructions
        #: a timestamp) and ``unnest``-ed twice. For a round whose columns all repeat
        #: (:meth:`params`' ``shared``).
        self.sql_shared = self.sql
        for c, param in self.same.items():
            assert c in scalars and types[c] != "json[]", "a repeated column is one array of the column's type"
            mine = f"unnest(%({prefix}_{c})s::{types[c]}) AS {c}"
            assert mine in self.sql_shared
            self.sql_shared = self.sql_shared.replace(mine, f"unnest(%({param})s::{types[c]}) AS {c}")
        self._encoders = [
            (
                f"{prefix}_{c}",
                json_column
                if types[c] == "jsonb[]"
                else json_lines
                if types[c] == "json[]"
                else literal
                if types[c] == "text[]"
                else _plain_literal,
            )
            for c in columns
        ]
        self._pick = operator.itemgetter(*columns) if len(columns) > 1 else lambda d: (d[columns[0]],)

    def params(self, values: Iterable[Sequence[Any]]) -> dict[str, str]:
        """The parameters of :attr:`sql`: ``values`` (rows of one value per column, in order) by column."""
        by_column: list[Sequence[Any]] = list(zip(*values, strict=True)) or [()] * len(self.columns)
        params = {name: encode(column) for (name, encode), column in zip(self._encoders, by_column, strict=True)}
        params[self._ord] = _ordinals(len(by_column[0]))
        return params

    def shared(self, params: dict[str, str], others: dict[str, str]) -> bool:
        """Whether every :attr:`same` column of these rows' ``params`` is, as sent, the very text of
        the parameter it repeats in ``others`` (the statement's other parameters): then those
        columns' parameters are dropped from ``params`` and :attr:`sql_shared` is the rows' SQL.
        Equal texts of one encoder and one type are equal arrays (a string comparison, in C)."""
        same = self.same
        if not same or any(params[f"{self._prefix}_{c}"] != others.get(param) for c, param in same.items()):
            return False
        for c in same:
            del params[f"{self._prefix}_{c}"]
        return True

    def params_of(self, dicts: list[dict[str, Any]]) -> dict[str, str]:
        """:meth:`params` of rows given as dicts (a key a row lacks: NULL, as an INSERT without it)."""
        pick = self._pick
        try:
            values = [pick(d) for d in dicts]
        except KeyError:
            values = [tuple(d.get(c) for c in self.columns) for d in dicts]
        return self.params(values)
