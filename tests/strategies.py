"""Hypothesis strategies for hostile JSON: what fuzz tests throw at public JSON endpoints.

Values a client can put in JSON that have broken the platform before: NaN and the
infinities, numbers past 64 bits or past a float, NUL and lone surrogates in strings
and keys, wrong types, empty and deep containers (issue 10, item 12).
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import strategies as st


def fuzz_examples(default: int) -> int:
    """Examples per fuzz test: few in CI (time limit); ``LMS_FUZZ_EXAMPLES=500`` for a deeper hunt."""
    return int(os.environ.get("LMS_FUZZ_EXAMPLES") or default)


#: Strings that look almost right, or carry what databases refuse.
HOSTILE_TEXT = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "\u0000",
            "a\u0000b",
            "\ud800",
            "\udfff",
            "x" * 5000,
            "9" * 5000,
            "-1",
            "1e400",
            "NaN",
            "true",
            "True",
            "null",
            "[]",
            "{}",
            "mailto:",
            "http://",
            "http://x.cn/\u0000",
            "9999-12-31T23:59:59-05:00",
            "0001-01-01T00:00:00+05:00",
            "../../etc/passwd",
            "<script>alert(1)</script>",
            "' OR 1=1 --",
            "00000000-0000-0000-0000-000000000000",
            "²",
            "١٢٣",
            "\u202e",
            "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
            "%00",
            "\\u0000",
        ]
    ),
    st.text(max_size=20),
)

HOSTILE_NUMBERS = st.one_of(
    st.sampled_from([0, -1, 1, 2**31, 2**63, 2**70, -(2**70), 10**30, 1e308, -1e308, 0.5, -0.0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
)

HOSTILE_SCALARS = st.one_of(st.none(), st.booleans(), HOSTILE_NUMBERS, HOSTILE_TEXT)


class Deep:
    """``levels`` nested arrays, written out by :func:`to_json` (``json.dumps`` would recurse)."""

    def __init__(self, levels: int) -> None:
        self.levels = levels

    def __repr__(self) -> str:
        return f"Deep({self.levels})"


HOSTILE_VALUES = st.one_of(
    HOSTILE_SCALARS,
    st.sampled_from([Deep(150), Deep(3000), {"": None}, {"\u0000": 1}, {"\ud800": 1}]),
    st.recursive(
        HOSTILE_SCALARS,
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(HOSTILE_TEXT, children, max_size=4)),
        max_leaves=8,
    ),
)


def to_json(value: Any) -> bytes:
    """JSON text as a hostile client writes it: NaN and Infinity literals, surrogates escaped."""
    text = json.dumps(
        value,
        allow_nan=True,
        ensure_ascii=True,
        default=lambda o: f"@@deep{o.levels}@@" if isinstance(o, Deep) else repr(o),
    )
    for levels in (150, 3000):
        text = text.replace(f'"@@deep{levels}@@"', "[" * levels + "]" * levels)
    return text.encode()


def with_value_at(base: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with ``value`` put at ``path`` (dicts created as needed)."""
    out = json.loads(json.dumps(base))
    node = out
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value
    return out
