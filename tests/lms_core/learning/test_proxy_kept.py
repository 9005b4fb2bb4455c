"""learning/proxy_kept.py: the beat path's ProxyFix, its writes kept per the values it reads.

Every environ through one kept instance must come out as werkzeug's ``ProxyFix`` leaves a copy
of it, key for key: forwarded headers missing, empty, malformed, repeated (several proxies),
spoofed (a client's own ``X-Forwarded-For`` ahead of nginx's), IPv6, fewer or more values than
trusted hops, with and without the keys ProxyFix keeps as ``werkzeug.proxy_fix.orig``. The
environs come in many orders through one instance, so an entry handed to the wrong environ
shows; a small bound shows the map starting again.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.middleware.proxy_fix import ProxyFix

from lms_core.learning import proxy_kept
from lms_core.learning.proxy_kept import KeptProxyFix

FOR = [
    None,
    "",
    "203.0.113.7",
    "198.51.100.2, 203.0.113.7",  # a client's own (spoofed) value ahead of nginx's
    "10.0.0.1, 198.51.100.2, 203.0.113.7",
    "2001:db8::1",
    "[2001:db8::1]:4711, 2001:db8::2",
    "unknown",
    ",,",
    '"quoted, value", 203.0.113.9',
    " 203.0.113.7 ",
]
PROTO = [None, "", "https", "http", "http, https", "https, http", "HTTPS", "ftp"]
HOST = [
    None,
    "",
    "lms.example.gov.cn",
    "lms.example.gov.cn:8443",
    "evil.example, lms.example.gov.cn",
    "[2001:db8::5]",
    "[2001:db8::5]:8443",
    "2001:db8::5",
    "a:b:c",
]
PORT = [None, "", "443", "8443", "80, 443", "x"]
PREFIX = [None, "", "/lms", "/a, /b", "/学习"]
REMOTE = [None, "127.0.0.1", "::1", "10.1.2.3"]
SCHEME = [None, "http", "https"]
HTTP_HOST = [None, "127.0.0.1:8000", "lms.internal", "[::1]:8000"]
SERVER_NAME = [None, "127.0.0.1", "localhost"]
SERVER_PORT = [None, "8000", "80"]
SCRIPT_NAME = [None, "", "/app"]


def _environ(values: dict[str, Any]) -> dict[str, Any]:
    """An environ of these values (None: the key missing) and the rest of a beat's keys."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/learn/sessions/1/beat",
        "HTTP_COOKIE": "session=x",
        "CONTENT_LENGTH": "120",
    }
    environ.update({k: v for k, v in values.items() if v is not None})
    return environ


def _proxy_fix(hops: int, environ: dict[str, Any]) -> dict[str, Any]:
    fix = ProxyFix(lambda e, _s: e, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)  # type: ignore[arg-type,return-value]
    return fix(dict(environ), None)  # type: ignore[arg-type,return-value]


def _cases(n: int, seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    columns = dict(
        zip(
            proxy_kept.READ,
            [REMOTE, SCHEME, HTTP_HOST, SERVER_NAME, SERVER_PORT, SCRIPT_NAME, FOR, PROTO, HOST, PORT, PREFIX],
            strict=True,
        )
    )
    return [_environ({k: rnd.choice(v) for k, v in columns.items()}) for _ in range(n)]


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_every_environ_comes_out_as_proxy_fix_leaves_it(hops: int) -> None:
    kept = KeptProxyFix(hops)
    cases = _cases(3000, seed=hops)
    for environ in cases + cases[::-1] + random.Random(9).sample(cases, len(cases)):  # again, from the map
        expected = _proxy_fix(hops, environ)
        got = kept(dict(environ))
        assert got == expected, environ


def test_each_forwarded_header_alone_and_all_together() -> None:
    kept = KeptProxyFix(1)
    for f, p, h, port, prefix in itertools.product(FOR, PROTO, HOST, PORT, PREFIX):
        values = dict(zip(proxy_kept.HEADERS, [f, p, h, port, prefix], strict=True))
        for base in (
            {"REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "HTTP_HOST": "127.0.0.1:8000"},
            {"REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "localhost", "SERVER_PORT": "8000", "SCRIPT_NAME": ""},
        ):
            environ = _environ(base | values)
            assert kept(dict(environ)) == _proxy_fix(1, environ), environ


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 3),
    st.lists(
        st.tuples(
            *(
                st.none() | st.sampled_from(["", "a", "1.2.3.4", "::1", "b:c", "[::2]:1", "x, y", ","])
                for _ in proxy_kept.READ
            )
        ),
        min_size=1,
        max_size=20,
    ),
)
def test_any_values_through_one_instance(hops: int, rows: list[tuple[str | None, ...]]) -> None:
    kept = KeptProxyFix(hops, most=5)
    for row in rows + rows:
        environ = _environ(dict(zip(proxy_kept.READ, row, strict=True)))
        assert kept(dict(environ)) == _proxy_fix(hops, environ)
        assert len(kept) <= 5


def test_each_environ_gets_its_own_orig_dict() -> None:
    kept = KeptProxyFix(1)
    environ = _environ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"})
    first, second = kept(dict(environ)), kept(dict(environ))
    assert (
        first[proxy_kept.ORIG]
        == second[proxy_kept.ORIG]
        == {
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": None,
            "HTTP_HOST": None,
            "SERVER_NAME": None,
            "SERVER_PORT": None,
            "SCRIPT_NAME": None,
        }
    )
    assert first[proxy_kept.ORIG] is not second[proxy_kept.ORIG]
    assert first["REMOTE_ADDR"] == second["REMOTE_ADDR"] == "203.0.113.7"


def test_the_oldest_entry_goes_when_full() -> None:
    kept = KeptProxyFix(1, most=3)
    for i in range(10):
        environ = _environ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": f"203.0.113.{i}"})
        assert kept(dict(environ))["REMOTE_ADDR"] == f"203.0.113.{i}"
        assert len(kept) <= 3
    assert len(kept) == 3  # the last three, each past the bound dropping one


def _scope(headers: list[tuple[bytes, bytes]], client: str = "127.0.0.1") -> dict[str, Any]:
    path = "/learn/sessions/" + "a" * 32 + "/beat"
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"cookie", b"session=abc"), *headers],
        "client": (client, 50000),
        "server": ("127.0.0.1", 8000),
    }


@pytest.mark.app_config(LMS_TRUSTED_PROXIES=2)
def test_the_beat_paths_checks_see_the_environ_the_sites_proxy_fix_gives(app, monkeypatch):
    from a2wsgi.wsgi import build_environ

    from lms_core.learning import beat_asgi

    front = beat_asgi.BeatASGI(app)
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(front.front, "take", lambda environ: seen.append(environ))
    scopes = [
        _scope([(b"x-forwarded-for", b"203.0.113.7, 10.0.0.2"), (b"x-forwarded-proto", b"https, https")]),
        _scope([(b"x-forwarded-for", b"203.0.113.8, 10.0.0.2"), (b"x-forwarded-proto", b"https, https")]),
        _scope([(b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-for", b"203.0.113.7, 10.0.0.2")]),
        _scope([(b"x-forwarded-host", b"evil, lms.example.gov.cn:8443, proxy"), (b"x-forwarded-port", b"443, 80")]),
        _scope([(b"x-forwarded-for", b"2001:db8::1, ::1")], client="::1"),
        _scope([]),
    ]
    for asgi_scope in scopes + scopes:
        assert front.check(asgi_scope) is None
        assert seen.pop() == _proxy_fix(2, build_environ(asgi_scope, None))  # type: ignore[arg-type]
