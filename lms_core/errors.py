"""Error pages: a short message and the status, never a stack trace."""

from __future__ import annotations

import contextlib
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from lms_core.authz.core import AccessDenied
from lms_core.extensions import db

#: What a 503 (database unavailable) tells browsers and clients to wait before retrying.
RETRY_AFTER_SECONDS = 5


def wants_json() -> bool:
    if request.path.startswith(("/api/", "/xapi")):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _messages() -> dict[int, str]:
    return {
        400: _("The request was not understood."),
        401: _("Please sign in first."),
        403: _("You do not have permission to do that."),
        404: _("The page you asked for does not exist."),
        405: _("That method is not allowed here."),
        413: _("The upload is too large."),
        429: _("Too many attempts. Please wait and try again."),
        500: _("Something went wrong on our side. The error has been logged."),
        503: _("The service is briefly unavailable. Please try again in a moment."),
    }


def render_error(status: int, message: str | None = None) -> Any:
    message = message or _messages().get(status, "")
    if wants_json():
        return jsonify({"error": message, "status": status}), status
    return render_template("errors/error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Any:
        return render_error(400, _("The form has expired or was not sent from this site. Please try again."))

    @app.errorhandler(AccessDenied)
    def _denied(exc: AccessDenied) -> Any:
        # A service refused the actor (the view's service_call rolled back): the 403 page.
        return render_error(403)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        status = exc.code or 500
        description = exc.description if status in (400, 409, 410, 413, 416, 422) else None
        return render_error(status, description if description and "<" not in description else None)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_unavailable(exc: Exception) -> Any:
        # The database is down or restarting: "try again", not "we broke" (and no traceback).
        app.logger.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.path,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
        with contextlib.suppress(Exception):  # the connection is gone; the pool replaces it
            db.session.rollback()
        try:
            body, status = render_error(503)
            response = app.make_response((body, status))
        except (OperationalError, InterfaceError):
            # The page itself needed the database (a signed-in user's locale and menu):
            # the same message, plainly, in the default language.
            with force_locale("zh_Hans_CN"):
                message = _messages()[503]
            response = app.make_response((message, 503, {"Content-Type": "text/plain; charset=utf-8"}))
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(500)
