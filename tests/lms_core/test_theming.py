"""Themes override core and plugin templates and static files; a missing theme stops start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory
from tests.lms_core.apps import build_app, running_app
from tests.plugins.hookprobe import HookProbe

THEMES_DEFAULT_STATIC = Path(__file__).resolve().parents[2] / "themes" / "default" / "static"


@pytest.fixture
def themes(tmp_path: Path) -> Path:
    base = tmp_path / "themes"
    templates = base / "civic" / "templates"
    (templates / "auth").mkdir(parents=True)
    (templates / "hookprobe").mkdir(parents=True)
    (base / "civic" / "static" / "css").mkdir(parents=True)
    (templates / "auth" / "login.html").write_text(
        '{% extends "base.html" %}{% block content %}<p id="civic-login">{{ _("Sign in") }} · civic</p>'
        '<form method="post">{{ form.hidden_tag() }}</form>{% endblock %}',
        encoding="utf-8",
    )
    (templates / "hookprobe" / "page.html").write_text(
        '{% extends "base.html" %}{% block content %}<p id="civic-probe">{{ greeting }}</p>{% endblock %}',
        encoding="utf-8",
    )
    (base / "civic" / "static" / "css" / "app.css").write_text("/* civic theme */ body { color: #123; }")
    return base


@pytest.fixture
def app_settings(themes):
    return {"LMS_THEMES_DIR": str(themes), "LMS_THEME": "civic", "LMS_PLUGIN_OBJECTS": {"hookprobe": HookProbe()}}


def test_theme_template_wins_over_default(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'id="civic-login"' in html
    assert 'class="topbar"' in html  # base.html still comes from the default theme


def test_theme_overrides_a_plugin_template(client, tree):
    UserFactory(username="civic_user", org_unit=tree.town_a)
    db.session.commit()
    login(client, "civic_user")
    html = client.get("/hookprobe/").get_data(as_text=True)
    assert '<p id="civic-probe">hello</p>' in html and "hookprobe-page" not in html


def test_theme_static_file_wins_and_default_fills_the_rest(client):
    with client.get("/static/css/app.css") as r:
        assert r.status_code == 200 and r.data.startswith(b"/* civic theme */")
    default_files = sorted(
        p.relative_to(THEMES_DEFAULT_STATIC).as_posix()
        for p in THEMES_DEFAULT_STATIC.rglob("*")
        if p.is_file() and p.name != "app.css"
    )
    assert default_files, "the default theme ships static files besides app.css"
    with client.get(f"/static/{default_files[0]}") as r:
        assert r.status_code == 200
    with client.get("/static/../../../etc/passwd") as r:
        assert r.status_code == 404
    with client.get("/static/css/nothing.css") as r:
        assert r.status_code == 404


def test_default_theme_without_override(database_url, tmp_path):
    with running_app(database_url, tmp_path) as plain:
        html = plain.test_client().get("/login").get_data(as_text=True)
        assert "civic-login" not in html and 'name="password"' in html


def test_unknown_theme_fails_start_up(tmp_path, themes):
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    with pytest.raises(RuntimeError, match="theme folder"):
        build_app(url, tmp_path, LMS_THEMES_DIR=str(themes), LMS_THEME="no_such_theme")
    with pytest.raises(RuntimeError, match="theme folder"):
        build_app(url, tmp_path, LMS_THEME="no_such_theme")
