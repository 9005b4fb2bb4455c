"""JSON from clients, refused when the databases (or later readers) could not store it.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``1e400`` (a float infinity),
``"\\u0000"`` and lone surrogates such as ``"\\ud800"``, and fails with a
``RecursionError`` (not a ``ValueError``) on a few thousand nested brackets.
PostgreSQL's ``jsonb`` refuses NaN, infinities, ``\\u0000`` and lone surrogates
(a 500 when it happens at insert time); SQLite stores them, and every later read
then yields text that is not JSON. :func:`loads` refuses all of them up front with
a message naming what and where, so a caller answers 400 and stores nothing.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask.json.provider import DefaultJSONProvider

#: Deeper than any document the platform or xAPI clients send; deep enough not to matter.
MAX_DEPTH = 100

_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONRefused(ValueError):
    """The body is not JSON this platform accepts; ``str()`` says why (for a 400)."""


def _no_constant(name: str) -> Any:
    raise JSONRefused(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JSONRefused(f"the number {text[:40]} is out of range")
    return value


#: What ``json.loads(text, parse_constant=..., parse_float=...)`` builds on every call (a
#: decoder and its C scanner), made once: half of a heartbeat body's parse (1.8 of 3.7 µs).
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse strict JSON (UTF-8 when bytes); raise :class:`JSONRefused` for anything unstorable."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise JSONRefused("the body is not UTF-8") from None
    try:
        value = _DECODER.decode(text)
    except JSONRefused:
        raise
    except RecursionError:
        raise JSONRefused(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError:  # JSONDecodeError, and int() past Python's digit limit
        raise JSONRefused("the body is not valid JSON") from None
    # The full walk costs 4x the parse; most bodies skip it. Text decoded here from
    # UTF-8 cannot hold a raw surrogate; a str from the caller might.
    if _may_have_problems(value, text, max_depth, raw_surrogates=not isinstance(data, bytes)):
        problem = find_problem(value, max_depth=max_depth)
        if problem:
            raise JSONRefused(problem)
    return value


#: ``\\u0000`` and ``\\uD800``-``\\uDFFF`` escapes: the only way valid JSON text carries NUL or surrogates.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _may_have_problems(value: Any, text: str, max_depth: int, *, raw_surrogates: bool) -> bool:
    """Whether the parsed value needs :func:`find_problem` (False only when it cannot fail).

    NUL and surrogates can only arrive as escapes (strict JSON refuses raw control
    characters, UTF-8 decoding refuses raw surrogates), found in the text at C
    speed; nesting deeper than ``max_depth`` needs that many brackets, and otherwise
    only the containers are walked (the strings, most of a statement, are skipped).
    """
    # ``in`` first: the search scans the text position by position (~3,500 instructions for a
    # heartbeat's body), the substring test at C string-search speed, and most texts have no escape.
    if ("\\u" in text and _SUSPECT_ESCAPE.search(text)) or (
        raw_surrogates and not text.isascii() and _SURROGATE.search(text)
    ):
        return True
    if text.count("[") + text.count("{") <= max_depth:
        return False
    return _deeper_than(value, max_depth)


def _deeper_than(value: Any, max_depth: int) -> bool:
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            return True
        nxt: list[Any] = []
        for item in level:
            children = item.values() if type(item) is dict else item
            nxt.extend(c for c in children if type(c) is dict or type(c) is list)
        level = nxt
    return False


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000)"
    if not text.isascii() and _SURROGATE.search(text):
        return "contains a lone UTF-16 surrogate"
    return None


def _path(chain: Any) -> str:
    parts: list[str] = []
    while chain is not None:
        chain, key = chain
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key[:40]}")
    return "$" + "".join(reversed(parts))


def find_problem(value: Any, *, max_depth: int = MAX_DEPTH) -> str | None:
    """Why ``value`` cannot be stored as JSON on both databases, or None.

    Iterative (an explicit stack), so the check itself cannot hit the recursion
    limit; paths are built only for the answer (``(parent, key)`` chains meanwhile).
    """
    stack: list[tuple[Any, Any, int]] = [(value, None, 0)]
    while stack:
        item, chain, depth = stack.pop()
        if isinstance(item, str):
            problem = _string_problem(item)
            if problem:
                return f"{_path(chain)} {problem}"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"{_path(chain)} is not a finite number"
        elif isinstance(item, dict):
            if depth >= max_depth:
                return f"JSON nested deeper than {max_depth} levels"
            for key, child in item.items():
                if not isinstance(key, str):
                    return f"{_path(chain)} has a key that is not a string"
                problem = _string_problem(key)
                if problem:
                    return f"a key of {_path(chain)} {problem}"
                if isinstance(child, str | float | dict | list):
                    stack.append((child, (chain, key), depth + 1))
        elif isinstance(item, list):
            if depth >= max_depth:
                return f"JSON nested deeper than {max_depth} levels"
            for i, child in enumerate(item):
                if isinstance(child, str | float | dict | list):
                    stack.append((child, (chain, i), depth + 1))
    return None


class StrictJSONProvider(DefaultJSONProvider):
    """The app's JSON provider: ``request.get_json()`` anywhere (core or plugin) parses with :func:`loads`.

    A refused body raises a ``ValueError`` as Flask expects, so ``get_json()`` answers
    400 and ``get_json(silent=True)`` gives None, instead of a ``RecursionError``
    (500) for deep nesting or NaN reaching a ``jsonb`` column.
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)
