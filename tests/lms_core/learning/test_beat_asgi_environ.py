"""The ASGI front's own environ for a beat (``BeatASGI._environ``) is a2wsgi's, key for key.

The beat path's checks (``beat_front.LeanBeats.take``, ``beat_of``, ProxyFix) read the environ
a WSGI server would build; the front builds it itself rather than through a2wsgi's
``build_environ`` (which reads the process's ``SCRIPT_NAME`` on every request). Whatever the
scope, the two must agree on every key and value.
"""

from __future__ import annotations

from typing import Any

import pytest
from a2wsgi.wsgi import build_environ
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lms_core.learning import beat_asgi

PATH = "/learn/sessions/" + "a" * 32 + "/beat"


def scope(**changes: Any) -> dict[str, Any]:
    base = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"localhost"),
            (b"cookie", b"session=abc"),
            (b"x-csrftoken", b"tok"),
            (b"content-type", b"application/json"),
            (b"content-length", b"12"),
            (b"user-agent", b"Mozilla/5.0"),
        ],
        "client": ("127.0.0.7", 50000),
        "server": ("localhost", 8000),
    }
    return base | changes


SCOPES = [
    scope(),
    scope(root_path="/lms", path="/lms" + PATH),
    scope(root_path="/other"),
    scope(client=None, server=None),
    scope(scheme="https", http_version="2", query_string=b"a=1&b=%C3%A9"),
    scope(path="/learn/sessions/é/beat"),
    scope(headers=[(b"x-forwarded-for", b"10.0.0.1"), (b"X-Forwarded-For", b"10.0.0.2"), (b"cookie", b"\xe9=1")]),
    scope(headers=[(b"content-type", b"text/plain"), (b"content-type", b"application/json")]),
    scope(headers=[]),
]


@pytest.mark.parametrize("asgi_scope", SCOPES)
@pytest.mark.parametrize("script_name", ["", "/mounted", "/学习"])
def test_the_environ_is_a2wsgis(app, monkeypatch, asgi_scope, script_name):
    if script_name:
        monkeypatch.setenv("SCRIPT_NAME", script_name)
    else:
        monkeypatch.delenv("SCRIPT_NAME", raising=False)
    front = beat_asgi.BeatASGI(app)
    assert front._environ(asgi_scope) == build_environ(asgi_scope, None)  # type: ignore[arg-type]
    assert front._environ(asgi_scope) == build_environ(asgi_scope, None)  # again: the kept header keys


_NAMES = st.binary(min_size=1, max_size=12).filter(lambda b: b.isascii())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_NAMES, st.binary(max_size=20)), max_size=8))
def test_any_headers_give_a2wsgis_environ(app, headers):
    front = beat_asgi.BeatASGI(app)
    asgi_scope = scope(headers=headers)
    assert front._environ(asgi_scope) == build_environ(asgi_scope, None)  # type: ignore[arg-type]
