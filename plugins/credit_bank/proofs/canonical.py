"""RFC 8785 JSON Canonicalization Scheme (JCS): the exact bytes that are hashed and signed.

A signature over JSON is only checkable by someone else if both sides serialise the same
object to the same bytes. JCS fixes that: keys sorted by UTF-16 code units, no whitespace,
ECMAScript number formatting, UTF-8 without escapes beyond the required ones. We use the
``rfc8785`` package (pure Python, tested against the RFC's examples in our own tests too).

Credentials carry amounts as integers (centi-学时) and never floats, and I-JSON's integer
range (|n| <= 2**53 - 1) is enforced by the package, so a value no JavaScript verifier can
represent exactly is refused at issuance rather than silently rounded by a reader.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

#: Deepest nesting accepted when parsing a credential: ours are 5 levels deep; a bound keeps
#: a hostile upload from exhausting the parser's recursion.
MAX_DEPTH = 32


class CanonicalError(ValueError):
    """The value cannot be canonicalised (a float, a huge integer, a non-string key...)."""


_MAX_INT = 2**53 - 1


def _plain(value: Any, depth: int = 0) -> bool:
    """True when Python's own JSON encoder already writes JCS for ``value``.

    That holds for objects with ASCII keys (UTF-16 and code-point order agree), strings
    (both escape only ``"``, ``\\`` and control characters, the same way), integers in
    I-JSON's range, booleans and null: no floats, whose formatting differs.
    """
    if value is None or isinstance(value, str | bool):
        return True
    if isinstance(value, int):
        return -_MAX_INT <= value <= _MAX_INT
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    return False


def _flat(value: Any) -> bool:
    """:func:`_plain` for the common case, a flat object of strings, integers and nulls (a
    journal row), without the recursion: replay hashes every journal row."""
    if type(value) is not dict:
        return False
    for k, v in value.items():
        if type(k) is not str or not k.isascii():
            return False
        t = type(v)
        if t is str or v is None:
            continue
        if t is not int or not -_MAX_INT <= v <= _MAX_INT:
            return False
    return True


def canonical(value: Any) -> bytes:
    """JCS bytes of ``value``.

    Journal rows (flat, strings and integers) take a fast path through the C JSON encoder,
    about ten times quicker than the general implementation; a test checks with hypothesis
    that both give the same bytes.

    Raises:
        CanonicalError: ``value`` has no canonical form.
    """
    if _flat(value) or _plain(value):
        try:
            return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: let the general implementation refuse it
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalError(str(exc)) from exc


def parse(data: bytes) -> Any:
    """Parse untrusted JSON strictly: UTF-8, no NaN/Infinity, no duplicate keys, bounded depth.

    Duplicate keys are refused because two parsers may keep different copies of the key,
    which would let one document mean two things.

    Raises:
        CanonicalError: the bytes are not acceptable JSON.
    """

    def no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise CanonicalError(f"duplicate key {k!r}")
            out[k] = v
        return out

    def no_constant(name: str) -> Any:
        raise CanonicalError(f"{name} is not JSON")

    # The text is checked for depth before json builds it: json's recursion limit turns a
    # deep document into RecursionError, which we would rather report as bad input.
    depth = 0
    in_str = esc = False
    for b in data:
        if in_str:
            if esc:
                esc = False
            elif b == 0x5C:
                esc = True
            elif b == 0x22:
                in_str = False
        elif b == 0x22:
            in_str = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                raise CanonicalError("JSON nested too deeply")
        elif b in (0x5D, 0x7D):
            depth -= 1
    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=no_dupes, parse_constant=no_constant)
    except CanonicalError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CanonicalError(str(exc)) from exc
    return value
