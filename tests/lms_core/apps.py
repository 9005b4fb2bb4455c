"""Build extra applications in a test (with plugin objects, themes, other settings).

The ``app`` fixture in ``tests/conftest.py`` covers the common case; tests that need
a plugin *instance* of their own (to inspect what its hooks received), a second
worker on the same database, settings that must stop start-up, or a database that
is down build their app with :func:`build_app` / :func:`running_app`. Work that must run
at the same time as other work, each piece in a context of its own as a request's, runs
through :func:`together`.

These factory calls stay outside this module, on purpose:

* ``tests/test_endpoints.py``: one module-scoped app with every installed plugin and
  no database, to read the URL map; no per-test configuration applies;
* ``tests/lrs/test_standalone.py``, the standalone LRS worker in
  ``tests/lrs/test_trust.py`` and the standalone case of
  ``tests/lrs/test_hostile_input.py``: ``lrs.create_app``, the LRS's own factory,
  is the thing under test;
* ``tests/plugins/credit_bank/hot_workers.py``: runs in worker processes that the
  test starts, outside pytest and its fixtures.

Where the tests live: they mirror the package tree (``tests/lms_core/<package>/``,
``tests/plugins/<plugin>/``, ``tests/lrs/``). Three things stay at the top level,
because they are about the whole project rather than one package:
``tests/browser/`` (each browser test walks pages of several packages, and they
share one Playwright set-up), ``test_every_page_in_chinese.py`` (every page of
every role, core and plugins) and the guard tests (``test_imports.py``,
``test_endpoints.py``, ``test_docs.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask

from tests.conftest import IsolatedClient, make_test_config


def build_app(database_url: str, tmp_path: Path, **extra: Any) -> Flask:
    from lms_core import create_app

    app = create_app(make_test_config(database_url, tmp_path, **extra))
    app.test_client_class = IsolatedClient
    return app


@contextmanager
def running_app(database_url: str, tmp_path: Path, **extra: Any) -> Iterator[Flask]:
    """An app with its context pushed; the engine is disposed afterwards."""
    from lms_core.extensions import db

    app = build_app(database_url, tmp_path, **extra)
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def together(app: Flask, *work: Callable[[], object], timeout: float = 60) -> list[BaseException]:
    """Run each of ``work`` on a thread of its own, all started together, each inside an app
    context of its own (as a request: its own database session, removed after it).

    Returns what they raised, for the test to show (``assert together(...) == []``); a thread
    still running after ``timeout`` seconds (a deadlock, say) fails the test."""
    from lms_core.extensions import db

    errors: list[BaseException] = []

    def run(piece: Callable[[], object]) -> None:
        with app.app_context():
            try:
                piece()
            except BaseException as exc:  # noqa: BLE001 - returned to the test, which shows it
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(piece,), daemon=True) for piece in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), f"still running after {timeout} s"
    return errors
