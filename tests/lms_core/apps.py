"""Build extra applications in a test (with plugin objects, themes, other settings).

The ``app`` fixture in ``tests/conftest.py`` covers the common case; tests that need
a plugin *instance* of their own (to inspect what its hooks received), a second
worker on the same database, settings that must stop start-up, or a database that
is down build their app with :func:`build_app` / :func:`running_app`.

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

from collections.abc import Iterator
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
