"""Declared plugin settings (strict keys, typed values) and core configuration."""

from __future__ import annotations

import os
import stat

import pytest

from lms_core import config
from lms_core.extensions import db
from lms_core.pluginhost import hookimpl
from lms_core.settings import services as settings
from lms_core.settings.models import Setting
from tests.plugins.hookprobe import HookProbe


class Other:
    """A second plugin declaring a key with the same short name."""

    @hookimpl
    def lms_default_settings(self):
        return {"greeting": None, "ratio": 0.5, "enabled": False}


@pytest.fixture
def app_settings():
    return {"LMS_PLUGIN_OBJECTS": {"hookprobe": HookProbe(), "other": Other()}}


def test_defaults_are_namespaced_per_plugin(app):
    assert settings.declared() == {
        "hookprobe.greeting": "hello",
        "hookprobe.limit": 3,
        "other.greeting": None,
        "other.ratio": 0.5,
        "other.enabled": False,
    }
    assert settings.get("hookprobe", "greeting") == "hello"
    assert settings.get("other", "greeting") is None


def test_values_are_stored_and_read_back(app):
    settings.set_value("hookprobe", "greeting", "你好")
    settings.set_value("other", "greeting", {"any": ["json", 1]})  # None default: any JSON value
    settings.set_value("other", "ratio", 2)  # an int is a fine float
    db.session.commit()
    db.session.expire_all()
    assert settings.get("hookprobe", "greeting") == "你好"
    assert settings.get("other", "greeting") == {"any": ["json", 1]}
    assert settings.get("other", "ratio") == 2
    settings.set_value("hookprobe", "greeting", "再见")  # update in place
    db.session.commit()
    assert settings.get("hookprobe", "greeting") == "再见"
    assert db.session.get(Setting, "hookprobe.greeting").value == "再见"
    assert db.session.get(Setting, "hookprobe.limit") is None  # defaults are not stored


@pytest.mark.parametrize(
    ("plugin", "key"),
    [
        ("hookprobe", "greting"),
        ("hookprobe", "ratio"),
        ("nobody", "greeting"),
        ("", "hookprobe.greeting"),
    ],
)
def test_undeclared_keys_are_refused(app, plugin, key):
    with pytest.raises(KeyError, match="undeclared"):
        settings.get(plugin, key)
    with pytest.raises(KeyError, match="undeclared"):
        settings.set_value(plugin, key, "x")
    assert db.session.get(Setting, f"{plugin}.{key}") is None


@pytest.mark.parametrize(
    ("plugin", "key", "value"),
    [
        ("hookprobe", "limit", "5"),
        ("hookprobe", "limit", 2.5),
        ("hookprobe", "limit", True),  # bool is an int subclass; still not a count
        ("hookprobe", "greeting", 3),
        ("other", "enabled", 1),
        ("other", "ratio", "0.7"),
    ],
)
def test_wrong_types_are_refused(app, plugin, key, value):
    with pytest.raises(TypeError):
        settings.set_value(plugin, key, value)
    db.session.commit()
    assert db.session.get(Setting, f"{plugin}.{key}") is None


# core configuration ---------------------------------------------------------


def test_environment_values_are_converted():
    got = config.from_environ(
        {
            "LMS_INLINE_JOBS": "0",
            "LMS_SESSION_COOKIE_SECURE": "yes",
            "LMS_PAGE_SIZE": "20",
            "LMS_PLUGINS": " demo_panel, lrs ,,",
            "LMS_THEME": "dark",
            "LMS_NOT_A_SETTING": "x",
            "HOME": "/root",
        }
    )
    assert got == {
        "LMS_INLINE_JOBS": False,
        "LMS_SESSION_COOKIE_SECURE": True,
        "LMS_PAGE_SIZE": 20,
        "LMS_PLUGINS": ["demo_panel", "lrs"],
        "LMS_THEME": "dark",
    }


@pytest.mark.parametrize("env", [{"LMS_INLINE_JOBS": "maybe"}, {"LMS_PAGE_SIZE": "fifty"}])
def test_bad_environment_values_fail_start_up(env):
    with pytest.raises(ValueError):
        config.from_environ(env)


def test_database_url_defaults_and_driver(tmp_path):
    assert config.database_url({}, str(tmp_path)) == f"sqlite:///{tmp_path}/lms.sqlite3"
    assert config.database_url({"LMS_DATABASE_URL": "postgres://u@h/db"}, "x") == "postgresql+psycopg://u@h/db"
    assert config.database_url({"LMS_DATABASE_URL": "postgresql://u@h/db"}, "x") == "postgresql+psycopg://u@h/db"


def test_secret_key_is_generated_once_and_private(tmp_path, monkeypatch):
    monkeypatch.delenv("LMS_SECRET_KEY", raising=False)
    key = config.load_secret_key(str(tmp_path))
    assert len(key) >= 40
    assert config.load_secret_key(str(tmp_path)) == key
    mode = stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode)
    assert mode == 0o600
    monkeypatch.setenv("LMS_SECRET_KEY", "from-env")
    assert config.load_secret_key(str(tmp_path)) == "from-env"
