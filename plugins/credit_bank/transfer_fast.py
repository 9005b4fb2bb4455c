"""The lean path of ``POST /api/v1/credit/transfers``: a WSGI layer in front of Flask.

Why: an issuer's system posts one transfer per request, and the ordinary path cost about
10 ms of CPU per request (bench/credit_bench.py, docs/benchmarks.md): Flask-Login loading
the token, its user and the user's roles through the ORM (half of it), the session, the
request hooks, then the transaction. Here a request from a token this process already
allowed is parsed and handed to the group commit with no request context, no session and no
ORM load; the token's liveness is checked in the posting transaction, one statement per
group (``group_commit._live_only``), so a revocation is honoured at once.

The lean path is taken only when all of these hold; any other request goes to the Flask
view unchanged, which answers every error (in the caller's language) and fills the cache:

* ``POST`` to exactly this path, with no ``Cookie`` header (a cookie is the browser path,
  which needs its CSRF token);
* ``Authorization: Bearer`` with a token that the view allowed less than
  ``LMS_CREDIT_CLIENT_CACHE_SECONDS`` ago (its scope and its user's capability, cached in
  ``transfer_api.clients()``; 0 turns the lean path off);
* ``Content-Type: application/json`` with a ``Content-Length`` within ``MAX_CONTENT_LENGTH``;
* a body the app's strict JSON reader accepts, every item of which parses.

A request that fails on the way (a bad item, a token found dead) is passed to the view with
its body, so the answer is the view's own. The answers of the lean path are the view's too:
the same statuses, the same JSON (``app.json.response``) and the headers of
``lms_core.security_headers`` (a JSON answer gets no Content-Security-Policy there either),
written straight to ``start_response``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from flask import Flask
from flask_babel import force_locale
from werkzeug.http import HTTP_STATUS_CODES

from lms_core.accounts.lean_tokens import TokenGrant, bearer_digest
from plugins.credit_bank import group_commit
from plugins.credit_bank import transfer_api as api

PATH = "/api/v1/credit/transfers"
DEFAULT_LOCALE = "zh_Hans_CN"
_HEADERS = (
    ("X-Frame-Options", "SAMEORIGIN"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)

#: Status lines as werkzeug writes them.
_STATUS = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in (200, 201, 409, 503)}

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class LeanTransfers:
    """Wraps ``app.wsgi_app``: lean requests are answered here, the rest passed on."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") != PATH
            or environ.get("REQUEST_METHOD") != "POST"
            or "HTTP_COOKIE" in environ
            or environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower() != "application/json"
        ):
            return self.wsgi_app(environ, start_response)
        digest = bearer_digest(environ.get("HTTP_AUTHORIZATION"))
        config = self.app.config
        ttl = float(config.get("LMS_CREDIT_CLIENT_CACHE_SECONDS", 30))
        grant = api.client_cache(self.app).get(digest, ttl) if digest and ttl > 0 else None
        length = environ.get("CONTENT_LENGTH") or ""
        if grant is None or not length.isdigit() or int(length) > int(config["MAX_CONTENT_LENGTH"]):
            return self.wsgi_app(environ, start_response)
        body = environ["wsgi.input"].read(int(length))
        environ["wsgi.input"] = io.BytesIO(body)  # the view reads it again if we pass
        with self.app.app_context():
            answer = self._answer(body, grant)
        if answer is None:
            return self.wsgi_app(environ, start_response)
        status, data = answer
        # The headers a Flask JSON response gets (Content-Type, Content-Length), then those of
        # lms_core.security_headers: no werkzeug Response object (a tenth of the request's CPU).
        start_response(
            _STATUS[status], [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *_HEADERS]
        )
        return [data]

    def _answer(self, body: bytes, grant: TokenGrant) -> tuple[int, bytes] | None:
        """The view's status and body for a well-formed body, or ``None`` to let the view answer."""
        digest = grant.digest
        try:
            data = self.app.json.loads(body)
        except ValueError:
            return None
        split = api.split_body(data)
        if split is None:
            return None
        single, raw = split
        if len(raw) > int(self.app.config.get("LMS_CREDIT_API_MAX_BATCH", 1000)):
            return None
        try:
            items = [api.parse_item(obj, actor_id=grant.user_id) for obj in raw]
        except api.BadItem:
            return None
        touch = bool(api.client_cache(self.app).due_touch([digest]))
        try:
            results = group_commit.post(items, token_digest=digest, touch=touch)
        except group_commit.TokenNotLive:
            api.client_cache(self.app).forget(digest)
            return None  # the view reads the token again: 401 in the caller's language
        except FutureTimeout:
            # Rare: a request context only to translate the message, in the token user's language.
            with self.app.test_request_context(), force_locale(grant.locale or DEFAULT_LOCALE):
                payload, status = api.busy_answer()
                return status, self._json(payload)
        payload, status = api.answer(results, single)
        return status, self._json(payload)

    def _json(self, payload: Any) -> bytes:
        """The body ``app.json.response(payload)`` (Flask's ``jsonify``) would send."""
        provider = self.app.json
        compact = getattr(provider, "compact", None)
        if (compact is None and self.app.debug) or compact is False:
            text = provider.dumps(payload, indent=2)
        else:
            text = provider.dumps(payload, separators=(",", ":"))
        return f"{text}\n".encode()


def install(app: Flask) -> None:
    """Put the lean path in front of the app (``lms_app_created``: before ``ProxyFix``, which
    ``create_app`` wraps around everything afterwards)."""
    app.wsgi_app = LeanTransfers(app, app.wsgi_app)  # type: ignore[method-assign]
