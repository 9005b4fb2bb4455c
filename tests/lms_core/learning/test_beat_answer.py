"""learning/beat_front.py: a beat's answer for the ASGI front is the WSGI answer's bytes.

The answers themselves are compared with the Flask view's in ``test_beat_front.py`` and
``test_beat_asgi.py``; here, ``answer_asgi`` (headers encoded once) against
``answer_parts`` encoded header by header, on Flask's compact JSON and on the response path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lms_core.learning import beat_front


@dataclass(frozen=True)
class Result:
    accepted: bool = True
    duplicate: bool = False
    credited_ms: int = 9_500
    coverage_bp: int = 4321
    position_ms: int = 61_000
    lesson_completed: bool = False
    course_completed: bool = True
    verdict: str = "credit"
    answer: dict[str, Any] | None = None


def encoded(app: Flask, result: Result) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    status, headers, content = beat_front.answer_parts(app, result)
    return int(status.split(" ", 1)[0]), [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers], content


def test_the_asgi_answer_is_the_wsgi_answer_encoded(app: Flask) -> None:
    plugin = Result(answer={"check": "open"})
    for result in (Result(), Result(credited_ms=0, verdict="held", coverage_bp=0), plugin):
        assert beat_front.answer_asgi(app, result) == encoded(app, result)
        assert beat_front.answer_asgi(app, result)[1][1] == (b"Content-Length", b"%d" % len(encoded(app, result)[2]))


def test_the_response_path_too(app: Flask) -> None:
    """Debug's indented JSON goes through Flask's response object: the same bytes either way."""
    app.debug = True
    try:
        answer = beat_front.answer_asgi(app, Result())
        assert answer == encoded(app, Result())
        assert b"\n  " in answer[2]  # indented: the response path was taken
    finally:
        app.debug = False


def test_the_compact_answer_is_flasks_own_response_whatever_its_settings(app: Flask) -> None:
    """The answer's JSON (an encoder kept per setting) is the bytes of Flask's own JSON
    response, with the provider's key order and ASCII settings changed at run time too."""
    cases = (Result(), Result(verdict="学时", coverage_bp=1, position_ms=1))
    try:
        for sort_keys in (True, False):
            for ensure_ascii in (True, False):
                app.json.sort_keys = sort_keys  # type: ignore[attr-defined]
                app.json.ensure_ascii = ensure_ascii  # type: ignore[attr-defined]
                for result in cases:
                    expected = app.json.response(beat_front.answer(result)).get_data()
                    assert beat_front.answer_asgi(app, result)[2] == expected
    finally:
        app.json.sort_keys = True  # type: ignore[attr-defined]
        app.json.ensure_ascii = True  # type: ignore[attr-defined]


def test_plugins_add_fields_but_never_replace_the_core_s() -> None:
    answer = beat_front.answer(Result(answer={"check": "open", "verdict": "void", "credited_ms": 0}))
    assert answer["check"] == "open" and answer["verdict"] == "credit" and answer["credited_ms"] == 9_500
    assert "check" not in beat_front.answer(Result())


_TEXT = st.text(max_size=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.booleans(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.booleans(),
    st.booleans(),
    _TEXT,
    st.booleans(),
)
def test_the_plain_answer_template_writes_flasks_bytes(
    app: Flask,
    accepted: bool,
    duplicate: bool,
    credited_ms: int,
    coverage_bp: int,
    position_ms: int,
    lesson_completed: bool,
    course_completed: bool,
    verdict: str,
    ensure_ascii: bool,
) -> None:
    """The steady beat's answer is filled into a template, not encoded from a dict: the bytes
    are Flask's own JSON response's for any values of the fields' types, either ASCII setting."""
    result = Result(
        accepted, duplicate, credited_ms, coverage_bp, position_ms, lesson_completed, course_completed, verdict
    )
    app.json.ensure_ascii = ensure_ascii  # type: ignore[attr-defined]
    try:
        assert beat_front._plain_body(result, ensure_ascii) is not None  # the template, not the encoder
        expected = app.json.response(beat_front.answer(result)).get_data()
        assert beat_front.answer_asgi(app, result)[2] == expected
    finally:
        app.json.ensure_ascii = True  # type: ignore[attr-defined]


def test_what_the_template_does_not_write_goes_to_the_encoder(app: Flask) -> None:
    """A field of another type than the template writes (an int for a flag, a float for the
    credited time, a string subclass, a non-finite float) or a plugin's field: the encoder's bytes."""

    class Label(str):
        pass

    cases = (
        Result(accepted=1),  # type: ignore[arg-type]
        Result(credited_ms=9.5),  # type: ignore[arg-type]
        Result(verdict=Label("credit")),
        Result(coverage_bp=float("nan")),  # type: ignore[arg-type]
        Result(position_ms=float("inf")),  # type: ignore[arg-type]
        Result(answer={"check": "open"}),
    )
    for result in cases:
        if result.answer is None:
            assert beat_front._plain_body(result, True) is None
        expected = app.json.response(beat_front.answer(result)).get_data()
        assert beat_front.answer_asgi(app, result)[2] == expected
