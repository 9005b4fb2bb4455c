"""A round's rows as one parameter per column (learning/pg_arrays.py, PostgreSQL).

What PostgreSQL reads back from the parameters must be the rows given, whatever the
strings hold (quotes, backslashes, control characters, ``NULL``, braces, non-ASCII): the
literals are msgspec's JSON with braces for brackets, which is only right as long as every
escape in it reads the same in an array literal.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, BigInteger, Boolean, Column, Date, MetaData, String, Table

from lms_core.db import UTCDateTime, json_type
from lms_core.extensions import db
from lms_core.learning import pg_arrays

TABLE = Table(
    "pg_arrays_probe",
    MetaData(),
    Column("name", String(16)),
    Column("n", BigInteger),
    Column("at", UTCDateTime()),
    Column("day", Date),
    Column("flag", Boolean),
    Column("doc", json_type()),
    Column("tags", json_type()),
    Column("text_doc", JSON),  # ``json`` on PostgreSQL: sent and kept as text (a text[] of JSON texts)
)
COLUMNS = ("name", "n", "at", "day", "flag", "doc", "tags", "text_doc")
ROWS = pg_arrays.Rows(TABLE, "x", COLUMNS)

#: Any text PostgreSQL can hold (no NUL, no lone surrogate), weighted to what needs escaping.
texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("\"\\{},\n\t\r\x01 NUL'é学\u2028\x7f")),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    ),
    max_size=12,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
rows = st.lists(
    st.tuples(
        st.none() | texts,
        st.none() | st.integers(-(2**63), 2**63 - 1),
        # hypothesis bounds aware datetimes by naive ones (in the zone drawn)
        st.none() | st.datetimes(timezones=st.just(dt.UTC), min_value=dt.datetime(1900, 1, 1)),  # noqa: DTZ001
        st.none() | st.dates(min_value=dt.date(1900, 1, 1)),
        st.none() | st.booleans(),
        # A JSON column: a JSON ``null`` and no value are both SQL NULL (as jsonb_populate_recordset had it).
        json_values,
        st.lists(texts, max_size=3),
        json_values,
    ),
    max_size=5,
)


def read_back(values: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    cur = db.session.connection().connection.driver_connection.cursor()
    cur.execute(f"SELECT {', '.join(f'v.{c}' for c in COLUMNS)} FROM {ROWS.sql} ORDER BY v.ord", ROWS.params(values))  # noqa: S608
    return [(*row[:2], row[2] and row[2].astimezone(dt.UTC), *row[3:]) for row in cur.fetchall()]


@pytest.mark.backends("postgresql")
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=rows)
def test_rows_read_back_as_given(app, values):
    assert read_back(values) == values


@pytest.mark.backends("postgresql")
def test_strings_that_json_escapes_otherwise_than_an_array_literal(app):
    awkward = ["a\nb", 'q"\\', "\\n", "\x01\t", "NULL", "", "{,}", "é学"]
    values = [(s, 1, None, None, None, {s: [s]}, [s], [{s: s}]) for s in awkward]
    values += [(None, None, None, None, None, None, [], None)]
    assert read_back(values) == values
    # Without a string needing its own escape the literal is msgspec's JSON, braces for brackets.
    assert pg_arrays.literal(["a", None, 'q"\\', 3]) == '{"a",null,"q\\"\\\\",3}'


@pytest.mark.backends("postgresql")
def test_no_rows(app):
    assert read_back([]) == []
    assert ROWS.params_of([]) == ROWS.params([])


@pytest.mark.backends("postgresql")
def test_a_key_a_row_lacks_is_null(app):
    given_ = [{"name": "a", "n": 1, "at": None, "day": None, "flag": True, "doc": {"k": 1}, "tags": [], "text_doc": 1}]
    given_.append({"n": 2})
    cur = db.session.connection().connection.driver_connection.cursor()
    sql = f"SELECT v.name, v.n, v.flag, v.doc, v.tags, v.text_doc FROM {ROWS.sql} ORDER BY v.ord"  # noqa: S608
    cur.execute(sql, ROWS.params_of(given_))
    assert cur.fetchall() == [("a", 1, True, {"k": 1}, [], 1), (None, 2, None, None, None, None)]


def test_strings_go_as_text_so_a_long_one_is_refused_by_its_column_not_cut():
    assert "%(x_name)s::text[]" in ROWS.sql
    assert "%(x_n)s::bigint[]" in ROWS.sql and "%(x_at)s::timestamptz[]" in ROWS.sql


#: Rows whose ``n`` and ``at`` usually repeat another table's (as a round's intervals repeat its sessions').
REPEATING = pg_arrays.Rows(TABLE, "y", ("name", "n", "at"), same={"n": "x_n", "at": "x_at"})


@pytest.mark.backends("postgresql")
@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=rows, names=st.lists(st.none() | texts, max_size=5), repeat=st.booleans())
def test_repeated_columns_are_sent_once_and_read_back_as_given(app, values, names, repeat):
    # ``repeat``: the second rows' ``n`` and ``at`` are the first rows' (sent once); else their own.
    others = [(name, v[1], v[2]) if repeat else (name, 7, None) for name, v in zip(names, values, strict=False)]
    params = ROWS.params(values)
    own = REPEATING.params(others)
    shared = REPEATING.shared(own, params)
    assert shared == ([v[1:3] for v in values] == [o[1:] for o in others])
    assert ("y_n" in own, "y_at" in own) == (not shared, not shared)
    params.update(own)
    cur = db.session.connection().connection.driver_connection.cursor()
    sql = REPEATING.sql_shared if shared else REPEATING.sql
    cur.execute(f"SELECT v.name, v.n, v.at FROM {sql} ORDER BY v.ord", params)  # noqa: S608
    assert [(name, n, at and at.astimezone(dt.UTC)) for name, n, at in cur.fetchall()] == others


def test_a_repeated_column_names_the_parameter_it_repeats():
    assert "unnest(%(x_n)s::bigint[]) AS n" in REPEATING.sql_shared and "%(y_n)s" not in REPEATING.sql_shared
    assert "unnest(%(y_n)s::bigint[]) AS n" in REPEATING.sql
    params = {"x_n": "{1,2}", "x_at": "{null,null}"}
    own = REPEATING.params([("a", 1, None), ("b", 2, None)])
    assert REPEATING.shared(own, params) and set(own) == {"y_name", "y_ord"}
    own = REPEATING.params([("a", 1, None), ("b", 3, None)])
    assert not REPEATING.shared(own, params) and set(own) == {"y_name", "y_n", "y_at", "y_ord"}
