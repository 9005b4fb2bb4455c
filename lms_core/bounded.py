"""Integers from the outside world, bounded before they reach the database.

A query string or URL can carry ``99999999999999999999``: Python parses it happily,
then SQLite refuses it (``OverflowError``: larger than 64 bits) and PostgreSQL
refuses it as an ``integer`` parameter (SQLAlchemy casts binds to the column type),
and a page offset of ``(page - 1) * size`` overflows ``bigint``. Every integer a
request supplies therefore goes through these helpers: an id beyond the column's
range simply matches no row, a page beyond the last one is an empty page.
"""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.routing import IntegerConverter, ValidationError

#: The largest value of a PostgreSQL ``integer`` column (most primary keys).
MAX_INT32 = 2**31 - 1
#: The largest value of a ``bigint`` column (events, statements, jobs).
MAX_INT64 = 2**63 - 1
#: No listing has this many pages; the offset it makes still fits any database.
MAX_PAGE = 1_000_000
#: Longer digit strings are not parsed at all (``int()`` is quadratic in the digits).
_MAX_DIGITS = 19


def parse_int(raw: str | None, *, minimum: int = 0, maximum: int = MAX_INT32) -> int | None:
    """``raw`` as an integer clamped to ``[minimum, maximum]``; None if it is not an integer.

    Clamping rather than refusing: an id past the column's range matches no row
    either way, and a page past the end is the empty last page.
    """
    if raw is None:
        return None
    text = raw.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isascii() or not digits.isdigit():
        return None
    if len(digits.lstrip("0")) > _MAX_DIGITS:
        return minimum if text.startswith("-") else maximum
    return max(minimum, min(int(text), maximum))


def int_arg(name: str, default: int | None = None, *, minimum: int = 0, maximum: int = MAX_INT32) -> int | None:
    """A query-string integer (ids: ``topic``, ``unit``...) clamped to the column's range."""
    value = parse_int(request.args.get(name), minimum=minimum, maximum=maximum)
    return default if value is None else value


def page_arg(name: str = "page") -> int:
    """The 1-based page number of a listing: junk means page 1, huge means an empty page."""
    value = parse_int(request.args.get(name), minimum=1, maximum=MAX_PAGE)
    return 1 if value is None else value


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` in routes, refusing (404) values past a 32-bit primary key.

    Werkzeug's converter accepts any number of digits; ``/admin/users/9999...``
    then failed in the database (500) instead of being an unknown page.
    """

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002 - werkzeug's name
        kwargs.setdefault("max", MAX_INT32)
        super().__init__(map, *args, **kwargs)

    def to_python(self, value: str) -> Any:
        if len(value.lstrip("0")) > _MAX_DIGITS:
            raise ValidationError()
        return super().to_python(value)
