"""``lrs.create_app``: the platform app for CLI and admin, a lean app behind ``/xapi``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import make_test_config
from tests.lrs.conftest import Xapi, statement


@pytest.fixture
def standalone(database_url: str, tmp_path: Path):
    import lrs
    from lms_core.extensions import db

    app = lrs.create_app(make_test_config(database_url, tmp_path))
    with app.extensions["lrs_xapi_app"].app_context():
        lean_engine = db.engine
    with app.app_context():
        # One pool for both apps: disposing the platform's engine closes the lean app's too.
        assert db.engine is lean_engine
        yield app
        db.session.remove()
        db.engine.dispose()


def test_standalone_serves_xapi_and_cli(standalone):
    out = standalone.test_cli_runner().invoke(
        args=["lms", "lrs", "client", "create", "--name", "province", "--scopes", "all"]
    )
    assert out.exit_code == 0, out.output
    key = re.search(r"key: (\S+)", out.output).group(1)
    secret = re.search(r"secret: (\S+)", out.output).group(1)
    x = Xapi(standalone.test_client(), key, secret)
    sid = x.post("statements", json_body=statement()).get_json()[0]
    got = x.get("statements", statementId=sid)
    assert got.status_code == 200 and got.headers["X-Experience-API-Version"] == "1.0.3"
    page = x.get("statements", limit=1).get_json()
    assert page["statements"][0]["id"] == sid
    assert x.get("statements", bogus="1").status_code == 400
    unknown = x.get("nothing-here")
    assert unknown.status_code == 404 and unknown.mimetype == "application/json"
    assert standalone.test_client().get("/xapi/about").status_code == 200


def test_standalone_still_serves_platform_pages(standalone):
    assert standalone.test_client().get("/login").status_code == 200
