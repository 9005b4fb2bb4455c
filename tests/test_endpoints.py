"""Every ``url_for`` in the code and the templates names an endpoint that exists.

A renamed blueprint or view otherwise only shows up as a 500 on the page that
links to it. This scans the source text, so it also covers pages no other test
renders. Blueprints are named after the package that holds them (``lrs_admin``
in ``lrs``, ``credit_bank_integrity`` in ``plugins/credit_bank``), so an
endpoint tells where its view lives.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Blueprint, Flask

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("lms_core", "plugins", "lrs", "themes")
# url_for('endpoint' ...) / url_for("endpoint" ...) with a literal endpoint, and the
# reports' exports('endpoint', args) macro, which calls url_for with it.
# Only a whole literal argument: url_for('audit.' ~ view) builds its endpoint at run time.
URL_FOR = re.compile(r"""(?:url_for|exports)\(\s*(['"])([A-Za-z0-9_.]+)\1\s*[,)]""")
BLUEPRINT = re.compile(r"""Blueprint\(\s*['"]([A-Za-z0-9_]+)['"]""")
# Endpoints named as plain strings outside url_for.
LOGIN_VIEW = "accounts.login"


def _sources() -> list[Path]:
    files: list[Path] = []
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in {".py", ".html", ".js", ".txt"} and path.is_file() and "node_modules" not in path.parts:
                files.append(path)
    return files


@pytest.fixture(scope="module")
def full_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    from lms_core import create_app
    from lms_core.pluginhost.manager import _entry_points

    db_file = tmp_path_factory.mktemp("endpoints") / "unused.sqlite3"
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-endpoints",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_file}",
            "LMS_PLUGINS": sorted(_entry_points()),
            "LMS_XAPI_ENABLED": False,
        }
    )


def _module_blueprints(text: str) -> list[str]:
    return BLUEPRINT.findall(text)


def test_every_literal_url_for_resolves(full_app: Flask) -> None:
    endpoints = set(full_app.view_functions)
    missing: list[str] = []
    checked = 0
    for path in _sources():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in URL_FOR.finditer(text):
            endpoint = match.group(2)
            if endpoint.startswith("."):
                # Relative: resolved against the blueprint(s) defined in the same module.
                names = _module_blueprints(text) if path.suffix == ".py" else []
                if not names:
                    continue  # a template's relative endpoint depends on the request
                if not any(name + endpoint in endpoints for name in names):
                    missing.append(f"{path.relative_to(ROOT)}: {endpoint}")
                checked += 1
                continue
            checked += 1
            if endpoint not in endpoints:
                line = text.count("\n", 0, match.start()) + 1
                missing.append(f"{path.relative_to(ROOT)}:{line}: {endpoint}")
    assert checked > 100, "the scan found almost no url_for calls: is the pattern still right?"
    assert not missing, "url_for names endpoints that do not exist:\n" + "\n".join(missing)


def test_login_view_exists(full_app: Flask) -> None:
    from lms_core.extensions import login_manager

    assert login_manager.login_view == LOGIN_VIEW
    assert LOGIN_VIEW in full_app.view_functions


def test_password_change_allow_list_names_real_endpoints(full_app: Flask) -> None:
    from lms_core.accounts import views

    assert set(views._PASSWORD_CHANGE_ALLOWED) <= set(full_app.view_functions)


def test_blueprints_are_named_after_their_package(full_app: Flask) -> None:
    wrong: list[str] = []
    for name, bp in full_app.blueprints.items():
        assert isinstance(bp, Blueprint)
        module = bp.import_name
        parts = module.split(".")
        package = parts[1] if parts[0] in {"lms_core", "plugins"} and len(parts) > 1 else parts[0]
        if not (name == package or name.startswith(package + "_")):
            wrong.append(f"{name} (defined in {module}, expected {package} or {package}_*)")
    assert not wrong, "blueprints not named after their package:\n" + "\n".join(wrong)
