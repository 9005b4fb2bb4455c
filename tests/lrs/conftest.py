"""Fixtures for the LRS: an app with the ``lrs`` plugin and an authenticated xAPI client."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

VERSION_HEADER = {"X-Experience-API-Version": "1.0.3"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/lrs/" in str(item.fspath) and not item.get_closest_marker("app_config"):
            item.add_marker(pytest.mark.app_config(LMS_PLUGINS=["lrs"]))


class Xapi:
    """A test client speaking xAPI: version header and Basic credentials on every call."""

    def __init__(self, client: FlaskClient, key: str, secret: str) -> None:
        self.client = client
        self.key = key
        self.secret = secret

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        token = base64.b64encode(f"{self.key}:{self.secret}".encode()).decode()
        h = {"Authorization": f"Basic {token}", **VERSION_HEADER}
        h.update(extra or {})
        return h

    def open(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> Any:
        h = self.headers(headers)
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False).encode()
            h.setdefault("Content-Type", "application/json")
        query = {k: (json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v) for k, v in params.items()}
        return self.client.open("/xapi/" + path, method=method, data=data, headers=h, query_string=query)

    def get(self, path: str, **kw: Any) -> Any:
        return self.open("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.open("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.open("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.open("DELETE", path, **kw)


def make_client(app: Flask, scopes: tuple[str, ...] = ("all",), name: str = "test client") -> Xapi:
    from lrs import clients

    row, secret = clients.create_client(name, scopes)
    return Xapi(app.test_client(), row.key, secret)


@pytest.fixture
def xapi(app: Flask) -> Xapi:
    return make_client(app)


def statement(
    actor: dict[str, Any] | None = None,
    verb: str = "http://adlnet.gov/expapi/verbs/experienced",
    activity: str = "http://example.com/activities/1",
    **extra: Any,
) -> dict[str, Any]:
    s: dict[str, Any] = {
        "actor": actor or {"objectType": "Agent", "mbox": "mailto:learner@example.com", "name": "Learner"},
        "verb": {"id": verb, "display": {"en-US": "experienced"}},
        "object": {"objectType": "Activity", "id": activity},
    }
    s.update(extra)
    return s


def new_id() -> str:
    return str(uuid.uuid4())
