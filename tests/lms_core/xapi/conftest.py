"""Fixtures for the xAPI tests: an app whose LRS endpoint is a server this test controls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.conftest import IsolatedClient, make_test_config
from tests.lms_core.xapi.servers import FakeLRS, ServerThread

PLATFORM = "https://study.example.gov.cn"


@pytest.fixture
def lrs_server() -> Iterator[ServerThread]:
    """A fake LRS on a fixed free port, *not started*: tests start and stop it."""
    server = ServerThread(FakeLRS())
    yield server
    server.stop()


@pytest.fixture
def fake_lrs(lrs_server: ServerThread) -> FakeLRS:
    lrs_server.start()
    lrs: FakeLRS = lrs_server.app  # type: ignore[assignment]
    return lrs


def xapi_config(endpoint: str, key: str, secret: str) -> dict[str, Any]:
    return {
        "LMS_XAPI_ENABLED": True,
        "LMS_XAPI_ENDPOINT": endpoint,
        "LMS_XAPI_KEY": key,
        "LMS_XAPI_SECRET": secret,
        "LMS_XAPI_TIMEOUT": 5,
        "LMS_PLATFORM_URL": PLATFORM,
    }


@pytest.fixture
def app(database_url: str, tmp_path: Path, request: pytest.FixtureRequest, lrs_server: ServerThread) -> Iterator[Flask]:
    from lms_core import create_app
    from lms_core.extensions import db

    fake: FakeLRS = lrs_server.app  # type: ignore[assignment]
    extra = xapi_config(f"{lrs_server.url}/xapi/", fake.key, fake.secret)
    marker = request.node.get_closest_marker("app_config")
    extra.update(marker.kwargs if marker else {})
    app = create_app(make_test_config(database_url, tmp_path, **extra))
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()
