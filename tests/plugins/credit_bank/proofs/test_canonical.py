"""RFC 8785 canonical JSON, checked against the RFC's own examples, and the strict parser."""

from __future__ import annotations

import json
import struct

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from plugins.credit_bank.proofs.canonical import CanonicalError, canonical, parse


def test_rfc8785_section_3_2_2_example() -> None:
    raw = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical(json.loads(raw)) == expected.encode("utf-8")


def test_rfc8785_section_3_2_3_sorting_by_utf16_code_units() -> None:
    obj = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    order = [k for k in json.loads(canonical(obj).decode())]
    # The emoji (surrogates D83D DE00) sorts before U+FB33, unlike a code-point sort.
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


@pytest.mark.parametrize(
    ("bits", "text"),
    [
        ("0000000000000000", "0"),
        ("8000000000000000", "0"),
        ("0000000000000001", "5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("4340000000000000", "9007199254740992"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("41b3de4355555555", "333333333.3333333"),
    ],
)
def test_rfc8785_appendix_b_numbers(bits: str, text: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonical(value) == text.encode()


def test_values_without_a_canonical_form_are_refused() -> None:
    with pytest.raises(CanonicalError):
        canonical({"amount": 2**60})  # outside I-JSON's exact integer range
    with pytest.raises(CanonicalError):
        canonical({"x": float("nan")})
    with pytest.raises(CanonicalError):
        canonical({1: "non-string key"})


@pytest.mark.parametrize(
    "bad",
    [
        b'{"a":1,"a":2}',
        b"[NaN]",
        b"\xff\xfe",
        b'{"a":',
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":Infinity}',
    ],
)
def test_strict_parser_refuses_ambiguous_or_hostile_json(bad: bytes) -> None:
    with pytest.raises(CanonicalError):
        parse(bad)


def test_parser_ignores_brackets_inside_strings() -> None:
    assert parse(b'{"memo":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"["}') == {"memo": "[" * 40 + '"['}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_fast_path_writes_exactly_what_rfc8785_writes(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        with pytest.raises(CanonicalError):
            canonical(value)
        return
    assert canonical(value) == expected


def test_fast_path_cases_by_hand() -> None:
    row = {"b": '课程\u2028"\\\n\x01\x7f', "a": [None, True, -5, 2**53 - 1], "é": 1}
    assert canonical(row) == rfc8785.dumps(row)
    with pytest.raises(CanonicalError):
        canonical({"k": "\ud800"})


@given(st.dictionaries(st.text(max_size=6), st.none() | st.integers() | st.text() | st.booleans(), max_size=25))
def test_flat_rows_take_the_fast_path_only_when_it_is_exact(row: dict[str, object]) -> None:
    """Journal rows are flat: integers outside I-JSON's range and non-ASCII keys leave it."""
    try:
        expected = rfc8785.dumps(row)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        with pytest.raises(CanonicalError):
            canonical(row)
        return
    assert canonical(row) == expected
