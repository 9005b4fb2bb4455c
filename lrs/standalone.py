"""The standalone LRS application: the platform app for the CLI and admin, plus a lean app for ``/xapi``.

``lrs.create_app`` returns the platform's app (``lms_core.create_app`` with only the
``lrs`` plugin) so that ``flask db upgrade heads`` and ``flask lms lrs client ...``
work unchanged. Requests under ``/xapi`` are dispatched to a second, minimal Flask
app that shares the same configuration, database extension and blueprint but
none of the platform's per-request hooks (session cookie, sign-in, locale, theme):
an xAPI request authenticates with Basic credentials and needs none of them, and on
a busy LRS they were a sizeable share of the CPU spent per single statement.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

PREFIX = "/xapi"


def build_xapi_app(platform: Flask) -> Flask:
    """A Flask app serving only the LRS blueprint, configured like ``platform``."""
    from lms_core.extensions import db
    from lrs.views import bp, error_response

    app = Flask("lrs_standalone", static_folder=None)
    app.config.update(platform.config)
    db.init_app(app)
    _share_engines(db, app, platform)
    app.register_blueprint(bp)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        return error_response(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error; it has been logged")

    @app.after_request
    def _version(response: Response) -> Response:
        # The blueprint's own after_request does not run for unmatched URLs.
        response.headers.setdefault("X-Experience-API-Version", "1.0.3")
        return response

    return app


def _share_engines(db: Any, app: Flask, platform: Flask) -> None:
    """Use the platform app's engines (one pool per process; disposing one disposes both).

    Flask-SQLAlchemy keeps engines per app in ``_app_engines``; ``init_app`` made new
    ones for the lean app, which have not connected yet and are replaced here.
    """
    engines = getattr(db, "_app_engines", None)
    if engines is None or platform not in engines:  # another Flask-SQLAlchemy: keep separate pools
        return
    for engine in engines[app].values():
        engine.dispose()
    engines[app] = engines[platform]


class MergeSlashes:
    """WSGI: ``/xapi//statements`` is served as ``/xapi/statements`` (not a 308 redirect).

    Clients configured with the base URL ``.../xapi/`` and appending ``/statements``
    themselves (ADL's test suite does) send a double slash; Werkzeug would answer
    with a redirect, which many clients do not follow for a POST or PUT. The LRS
    accepts the base URL with and without the trailing slash.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX + "//"):
            environ["PATH_INFO"] = PREFIX + "/" + path[len(PREFIX) :].lstrip("/")
        return self.app(environ, start_response)


class Dispatcher:
    """WSGI: ``/xapi...`` to the lean app, everything else to the platform app."""

    def __init__(self, xapi: Any, platform: Any) -> None:
        self.xapi = xapi
        self.platform = platform

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == PREFIX or path.startswith(PREFIX + "/"):
            return self.xapi(environ, start_response)
        return self.platform(environ, start_response)


def wire(platform: Flask) -> Flask:
    xapi_app = build_xapi_app(platform)
    platform.extensions["lrs_xapi_app"] = xapi_app
    platform.wsgi_app = MergeSlashes(  # type: ignore[method-assign]
        Dispatcher(xapi_app.wsgi_app, platform.wsgi_app)
    )
    return platform
