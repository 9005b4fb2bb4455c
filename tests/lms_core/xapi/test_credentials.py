"""The embedded set-up: ``flask lms xapi connect-embedded``, then delivery to the platform's own /xapi."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.jobs.services import commit
from lms_core.xapi.models import OutboxStatus, XapiOutbox
from tests.factories import UserFactory
from tests.lms_core.xapi.conftest import xapi_config
from tests.lms_core.xapi.servers import ServerThread, free_port


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def app_settings(port: int, tmp_path: Path) -> dict[str, Any]:
    """The platform with the lrs plugin delivering to its own /xapi."""
    config = xapi_config(f"http://127.0.0.1:{port}/xapi/", "", "")
    config.update(LMS_PLUGINS=["lrs"], LMS_XAPI_CREDENTIALS_FILE=str(tmp_path / "secret" / "xapi.json"))
    return config


@pytest.fixture
def app(app: Flask, port: int) -> Iterator[Flask]:
    """The conftest's app, served over HTTP while the test runs."""
    server = ServerThread(app, port).start()
    yield app
    server.stop()


def test_connect_embedded_then_statements_reach_the_platforms_own_lrs(app, tree):
    from lrs.models import LrsClient

    runner = app.test_cli_runner()
    out = runner.invoke(args=["lms", "xapi", "connect-embedded"])
    assert out.exit_code == 0, out.output
    path = Path(app.config["LMS_XAPI_CREDENTIALS_FILE"])
    saved = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    client = db.session.execute(select(LrsClient).filter_by(key=saved["key"])).scalar_one()
    assert client.active and set(client.scopes) == {"statements/write", "statements/read/mine"}
    assert client.name == "本平台（xAPI 发送端）"  # listed on the Chinese LRS clients page
    assert saved["secret"] not in out.output  # the secret goes to the file only

    again = runner.invoke(args=["lms", "xapi", "connect-embedded"])
    assert again.exit_code == 0 and "already connected" in again.output
    assert json.loads(path.read_text()) == saved

    learner = UserFactory(username="sunli", full_name="孙丽", org_unit=tree.village_a)
    db.session.commit()
    emit(
        "course.completed",
        actor=learner,
        object_type="courses",
        object_id=1,
        course_id=1,
        payload={"registration": "3f2b8c1e-5d4a-4e3b-9c2d-1a0b9c8d7e6f"},
    )
    commit()
    db.session.expire_all()
    (row,) = db.session.execute(select(XapiOutbox)).scalars()
    assert row.status == OutboxStatus.DELIVERED, row.last_error

    # A disabled client stops delivery at once (401: kept pending); --force makes a new one.
    client.active = False
    db.session.commit()
    emit("course.completed", actor=learner, object_type="courses", object_id=2, course_id=2, payload={})
    commit()
    db.session.expire_all()
    waiting = db.session.execute(select(XapiOutbox).filter_by(status=OutboxStatus.PENDING)).scalar_one()
    assert "HTTP 401" in waiting.last_error

    out = runner.invoke(args=["lms", "xapi", "connect-embedded"])
    assert out.exit_code == 0 and "created LRS client" in out.output
    assert json.loads(path.read_text())["key"] != saved["key"]
    assert runner.invoke(args=["lms", "xapi", "replay"]).exit_code == 0
    db.session.expire_all()
    assert db.session.get(XapiOutbox, waiting.id).status == OutboxStatus.DELIVERED


def test_connect_embedded_needs_the_lrs_plugin(database_url, tmp_path):
    from tests.lms_core.apps import build_app

    plain = build_app(database_url, tmp_path)
    with plain.app_context():
        out = plain.test_cli_runner().invoke(args=["lms", "xapi", "connect-embedded"])
        db.engine.dispose()
    assert out.exit_code != 0 and "add lrs to LMS_PLUGINS" in out.output


def test_connect_embedded_goes_through_the_hook(database_url, tmp_path):
    """The core creates its client through ``lms_xapi_embedded_client``, never by importing an LRS."""
    from tests.lms_core.apps import build_app
    from tests.plugins.hookprobe import HookProbe

    probe = HookProbe()
    probe.embedded_client = ("key-1", "secret-1")
    saved_file = tmp_path / "secret" / "xapi.json"
    app = build_app(
        database_url, tmp_path, LMS_PLUGIN_OBJECTS={"hookprobe": probe}, LMS_XAPI_CREDENTIALS_FILE=str(saved_file)
    )
    with app.app_context():
        runner = app.test_cli_runner()
        first = runner.invoke(args=["lms", "xapi", "connect-embedded"])
        assert first.exit_code == 0, first.output
        assert json.loads(saved_file.read_text()) == {"key": "key-1", "secret": "secret-1"}
        assert stat.S_IMODE(saved_file.stat().st_mode) == 0o600

        # The plugin keeps the saved client: nothing is rewritten.
        probe.embedded_client = ("key-1", None)
        again = runner.invoke(args=["lms", "xapi", "connect-embedded"])
        assert again.exit_code == 0 and "already connected" in again.output
        assert json.loads(saved_file.read_text())["secret"] == "secret-1"

        # --force asks for a new client (no key to keep).
        probe.embedded_client = ("key-2", "secret-2")
        forced = runner.invoke(args=["lms", "xapi", "connect-embedded", "--force"])
        assert forced.exit_code == 0, forced.output
        assert json.loads(saved_file.read_text()) == {"key": "key-2", "secret": "secret-2"}
        db.engine.dispose()
    assert [call[2] for call in probe.embedded_calls] == [None, "key-1", None]
    assert all(call[1] == ("statements/write", "statements/read/mine") for call in probe.embedded_calls)
