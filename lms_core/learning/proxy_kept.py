"""werkzeug's ``ProxyFix`` on the beat path, its changes kept per what it reads.

Behind nginx (``LMS_TRUSTED_PROXIES``), the ASGI front runs the site's ``ProxyFix`` on every
beat's environ before the lean checks (``beat_asgi.BeatASGI.check``), so they see what Flask
sees: the client's address (the anti-idle address rules, Flask-Login's session identifier),
scheme, host, port and prefix. That costs ~11 µs of the event loop a beat (five
``X-Forwarded-*`` headers parsed, a dict built), and a player's headers repeat beat after beat.

What ``ProxyFix`` writes depends only on the values it reads: the five headers and the six
keys it keeps as ``werkzeug.proxy_fix.orig`` (``REMOTE_ADDR``, ``wsgi.url_scheme``,
``HTTP_HOST``, ``SERVER_NAME``, ``SERVER_PORT``, ``SCRIPT_NAME``), each read with
``environ.get`` (a missing key and ``None`` read alike). :class:`KeptProxyFix` runs the real
``ProxyFix`` once for each such set of values, on an environ holding only them, and keeps
what it wrote; a later environ with the same values gets the same writes (and a fresh copy of
the ``orig`` dict). Equivalence with ``ProxyFix`` itself, entry by entry, is tested in
``tests/lms_core/learning/test_proxy_kept.py``. Like the referrer check's map
(``beat_front._ORIGINS_MAX``), the oldest entry goes when it is full.
"""

from __future__ import annotations

from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

from lms_core.expiring import Bounded

#: What ``ProxyFix`` reads: the keys it keeps as ``werkzeug.proxy_fix.orig``, then the headers.
ORIG_KEYS = ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME")
HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
)
READ = ORIG_KEYS + HEADERS
#: The ``orig`` entry ProxyFix adds.
ORIG = "werkzeug.proxy_fix.orig"
#: Sets of forwarded values kept per process (a client address each, behind one proxy).
KEPT_MAX = 50_000

_Key = tuple[Any, ...]


def _environ_itself(environ: dict[str, Any], _start_response: Any) -> dict[str, Any]:
    """The innermost "app" of the kept ProxyFix: gives back the fixed environ."""
    return environ


class KeptProxyFix:
    """``ProxyFix(x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)`` applied
    to an environ in place, its writes kept per the values it reads."""

    def __init__(self, hops: int, *, most: int = KEPT_MAX) -> None:
        self._fix = ProxyFix(_environ_itself, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)  # type: ignore[arg-type]
        #: The values read -> (the ``orig`` dict, the other keys ProxyFix wrote).
        self._kept: Bounded[_Key, tuple[dict[str, Any], dict[str, Any]]] = Bounded(most)

    def __len__(self) -> int:
        return len(self._kept)

    def __call__(self, environ: dict[str, Any]) -> dict[str, Any]:
        """``environ`` as ``ProxyFix`` leaves it (the same dict, changed)."""
        key = tuple(map(environ.get, READ))  # (one C loop, not eleven calls)
        kept = self._kept.map.get(key)
        if kept is None:
            kept = self._learn(key)
        orig, writes = kept
        environ[ORIG] = orig.copy()
        if writes:
            environ.update(writes)
        return environ

    def _learn(self, key: _Key) -> tuple[dict[str, Any], dict[str, Any]]:
        """ProxyFix itself on an environ of only the values read: what it wrote, kept."""
        alone = {name: value for name, value in zip(READ, key, strict=True) if value is not None}
        before = dict(alone)
        self._fix(alone, None)  # type: ignore[arg-type]  # in place (its app gives the environ back)
        orig = alone.pop(ORIG)
        writes = {name: value for name, value in alone.items() if name not in before or before[name] != value}
        kept = (orig, writes)
        self._kept.keep(key, kept)
        return kept
