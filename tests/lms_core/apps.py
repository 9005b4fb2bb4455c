"""Build extra applications in a test (with plugin objects, themes, other settings).

The ``app`` fixture in ``tests/conftest.py`` covers the common case; tests that need
a plugin *instance* of their own (to inspect what its hooks received) build their
app with :func:`running_app`, on the same per-test database.
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
