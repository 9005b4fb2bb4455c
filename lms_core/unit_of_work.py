"""Who commits: the request, through one helper; services do not.

One request is one business transaction. A service changes rows and emits its
events (``events.emit``) in the caller's transaction and returns, or raises a
:class:`ServiceError` that a user can read; it does not commit. The view runs it
inside :func:`service_call`, which commits (``jobs.commit``: COMMIT, then the
inline jobs) when the block ends, or on a service error rolls everything back,
tells the user why in their language and answers 400 with the form re-rendered, so
nothing half-done is ever committed and the typed input is not lost.

The few services that commit themselves do so on purpose and are listed, with the
reason, in ``tests/lms_core/test_unit_of_work.py`` (records that must outlive a
refused request, such as failed sign-ins; batches committed in chunks; the job,
event and xAPI machinery that runs outside any request). CLI commands and jobs
commit at their own end in the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from flask import abort, flash, jsonify, make_response
from flask_babel import lazy_gettext as _l

from lms_core.extensions import db

#: The usual flash for a refused change; ``%(reason)s`` is the service's sentence.
NOT_SAVED = _l("Not saved: %(reason)s")


class ServiceError(ValueError):
    """A refusal the user can act on; ``str(exc)`` is already in the user's language."""


@contextmanager
def service_call(
    render: Callable[[], Any] | None = None,
    *,
    on_error: Callable[[Exception], Any] | None = None,
    message: Any = NOT_SAVED,
    errors: tuple[type[Exception], ...] = (),
    field: Any = None,
    status: int = 400,
    reason: Callable[[Exception], str] = str,
    field_for: Callable[[Exception], Any] | None = None,
) -> Iterator[None]:
    """Run the block as the request's business transaction.

    On normal exit: commit. On a :class:`ServiceError` (or one of ``errors``): roll
    back, show the reason (as a flash built from ``message``, or on the form
    ``field`` when one is given), and answer with ``render()`` at ``status``
    (400, or the error's own ``status`` such as 413), unless ``render()`` is a
    redirect, which keeps its own status. ``reason`` turns the error into the
    sentence shown (``str`` by default); ``field_for`` picks the form field by
    the error, where different refusals belong to different fields. Any other exception rolls back and
    propagates (a 500 or the database's 503).

    Pages that show the refusal inside the page rather than as a flash (next to the
    form they re-render, with what was typed) pass ``on_error`` instead of ``render``:
    it gets the error and builds the whole answer, nothing is flashed, and the status
    rule is the same.
    """
    if (render is None) == (on_error is None):
        raise TypeError("service_call takes either render or on_error")
    refusals: tuple[type[Exception], ...] = (ServiceError, *errors)
    with _transaction(refusals) as refused:
        yield
    if refused:
        exc = refused[0]
        if on_error is not None:
            _refuse(make_response(on_error(exc)), exc, status)
        assert render is not None
        text = reason(exc)
        if field_for is not None:
            field = field_for(exc)
        if field is not None:
            field.errors = [*field.errors, text]
        elif message:
            flash(str(message) % {"reason": text}, "error")
        _refuse(make_response(render()), exc, status)


def _refuse(response: Any, exc: Exception, status: int) -> NoReturn:
    """Answer a refusal: at the error's status (or ``status``), unless the answer is a redirect."""
    if not 300 <= response.status_code < 400:
        response.status_code = _status(exc, status)
    abort(response)


@contextmanager
def json_call(
    *,
    errors: tuple[type[Exception], ...] = (),
    status: int = 400,
    on_error: Callable[[Exception], Any] | None = None,
) -> Iterator[None]:
    """:func:`service_call` for JSON endpoints: a refusal answers ``{"error": reason, "status": n}``.

    ``on_error`` builds another body from the error, for a client that reads other keys
    (the player reads ``message``); the status rule is the same.
    """
    refusals: tuple[type[Exception], ...] = (ServiceError, *errors)
    with _transaction(refusals) as refused:
        yield
    if refused:
        exc = refused[0]
        code = _status(exc, status)
        body = on_error(exc) if on_error is not None else jsonify({"error": str(exc), "status": code})
        response = make_response(body)
        response.status_code = code
        abort(response)


def _status(exc: Exception, default: int) -> int:
    """An error that knows its status (an upload too large: 413, a beat for another's session: 404) keeps it."""
    own = getattr(exc, "status", None)
    return own if isinstance(own, int) and 400 <= own < 500 else default


def bare_transaction(refusals: tuple[type[Exception], ...]) -> Any:
    """The same transaction for a path with no request context to answer from (the lean
    heartbeat front): commit on success, roll back on anything; a refusal is handed back
    in the yielded list for the caller to answer (or pass on), others propagate."""
    return _transaction(refusals)


@contextmanager
def _transaction(refusals: tuple[type[Exception], ...]) -> Iterator[list[Exception]]:
    """Commit on success; roll back on anything; a refusal is handed back (in the list), others propagate."""
    from lms_core.jobs.services import commit

    refused: list[Exception] = []
    try:
        yield refused
    except refusals as exc:
        db.session.rollback()
        refused.append(exc)
        return
    except BaseException:
        db.session.rollback()
        raise
    commit()


@contextmanager
def keep_loaded() -> Iterator[None]:
    """Commits inside the block leave the session's objects loaded (not expired).

    For read-only pages that commit a line of the audit log (a look at a person's
    record) after reading their rows: expired, every row object was read again, one
    SELECT per row, when the template touched it (the event log's page: 51 queries,
    66 ms of CPU). The rows are what the page read a moment before, in this request.
    """
    session = db.session()
    before = session.expire_on_commit
    session.expire_on_commit = False
    try:
        yield
    finally:
        session.expire_on_commit = before
