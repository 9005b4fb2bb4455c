"""Fixtures for the xAPI tests: an app whose LRS endpoint is a server this test controls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

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
def app_settings(lrs_server: ServerThread) -> dict[str, Any]:
    """The platform delivering to the fake LRS this folder starts."""
    fake: FakeLRS = lrs_server.app  # type: ignore[assignment]
    return xapi_config(f"{lrs_server.url}/xapi/", fake.key, fake.secret)
