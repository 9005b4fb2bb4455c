"""Shared fixtures.

Every test that uses ``app`` runs once on SQLite and once on a real PostgreSQL
cluster that this suite starts from the machine's binaries. A missing PostgreSQL
is a failure, never a skip (``LMS_TEST_BACKENDS=sqlite`` narrows a local run).

Isolation: the schema is built once per session *by the migrations* (so they are
tested on both databases); each test then gets a fresh copy of the SQLite file or
a truncated PostgreSQL database. We do not wrap tests in a rolled-back savepoint,
because event handlers and jobs run in their own transactions after commit, and
concurrency tests need several real connections.
"""

from __future__ import annotations

import contextvars
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings
from sqlalchemy import create_engine, text

from tests import pgcluster

# Browser fixtures live in one place for every folder that has browser tests: one
# session-wide Chromium (two sync Playwright instances cannot coexist in a thread).
from tests.browser.fixtures import browser, live_server, mobile_page, page  # noqa: E402, F401

# Hypothesis' per-example deadline (200 ms) is a timing assertion: on this shared 2-core
# machine it fails by load, not by a bug (test_csv_export did, once). Tests never time.
settings.register_profile("lms", deadline=None)
settings.load_profile("lms")

BACKENDS = ("sqlite", "postgresql")
#: Other spellings accepted in ``--backends`` / ``LMS_TEST_BACKENDS``. An unknown name is a
#: usage error: "postgres" once ran every app test on SQLite twice and skipped the
#: PostgreSQL-only ones without a word.
BACKEND_ALIASES = {"postgres": "postgresql", "pg": "postgresql", "sqlite3": "sqlite"}
TEST_SECRET = "test-secret-key-not-for-production"  # noqa: S105


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backends",
        default=os.environ.get("LMS_TEST_BACKENDS", ",".join(BACKENDS)),
        help="comma-separated database backends to run the app tests on",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "app_config(**settings): extra settings for the app fixture")
    config.addinivalue_line("markers", "backends(*names): run only on these backends")


def _chosen_backends(config: pytest.Config) -> list[str]:
    names = [b.strip().lower() for b in config.getoption("--backends").split(",") if b.strip()]
    chosen = [BACKEND_ALIASES.get(b, b) for b in names]
    unknown = sorted(set(chosen) - set(BACKENDS))
    if unknown:
        raise pytest.UsageError(f"unknown backend(s) {unknown} in --backends; known: {', '.join(BACKENDS)}")
    return chosen


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" in metafunc.fixturenames:
        chosen = _chosen_backends(metafunc.config)
        marker = metafunc.definition.get_closest_marker("backends")
        if marker:
            chosen = [b for b in chosen if b in marker.args]
        metafunc.parametrize("db_backend", chosen, scope="function")


def _migrate(url: str) -> None:
    import flask_migrate

    from lms_core import create_app
    from lms_core.pluginhost.manager import _entry_points

    # Every installed plugin's branch too, so tests that enable a plugin find its tables.
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": TEST_SECRET,
            "TESTING": True,
            "LMS_PLUGINS": sorted(_entry_points()),
        }
    )
    with app.app_context():
        flask_migrate.upgrade(revision="heads")
        from lms_core.extensions import db

        db.engine.dispose()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pgcluster.Cluster]:
    # Not under pytest's tmp_path: that folder is private to root, and the server
    # runs as the postgres user.
    try:
        cluster = pgcluster.start(extra_conf={"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
    except pgcluster.PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL is required for the test suite: {exc}", pytrace=False)
    yield cluster
    cluster.stop()
    shutil.rmtree(cluster.datadir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_cluster: pgcluster.Cluster) -> str:
    url = pg_cluster.create_database("lms_test")
    _migrate(url)
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    _migrate(f"sqlite:///{path}")
    return path


def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = (
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
            )
            .scalars()
            .all()
        )
        if tables:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def database_url(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if db_backend == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        _truncate_all(url)
        return url
    template: Path = request.getfixturevalue("sqlite_template")
    target = tmp_path / "lms.sqlite3"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def make_test_config(database_url: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": TEST_SECRET,
        "WTF_CSRF_ENABLED": False,
        "LMS_SESSION_COOKIE_SECURE": False,
        "LMS_PLUGINS": [],
        "LMS_INLINE_JOBS": True,
        # No test talks to an LRS it did not start: tests/lms_core/xapi enables xAPI with its own.
        "LMS_XAPI_ENABLED": False,
        "LMS_MEDIA_DIR": str(tmp_path / "media"),  # uploads never land in the repo's instance/
        # Most tests drive the token page as a plain learner; tests of the default set it to False.
        "LMS_LEARNER_API_TOKENS": True,
        # Report pages rebuild the hours rollup on every load (inline job), so they show the
        # rows a test just wrote; tests/lms_core/reports/test_monthly.py covers an old rollup.
        "LMS_REPORT_ROLLUP_MAX_AGE": 0,
        # The ASGI front's start-up (its lifespan, which tests drive) would freeze the test
        # process's heap for good and change its collector: test_beat_trace.py turns them on.
        "LMS_BEAT_GC_FREEZE": False,
        "LMS_BEAT_GC_GEN0": 0,
        "LMS_BEAT_GC_REFREEZE": False,
        "LMS_BEAT_SWITCH_INTERVAL_US": 0,
    }
    config.update(extra)
    return config


class IsolatedClient(FlaskClient):
    """A test client whose requests run in their own app context.

    The ``app`` fixture keeps an app context pushed so tests can use ``db.session``;
    Flask would reuse it for requests, sharing ``g`` (Flask-Login's cached user) and
    the database session between "different" browsers. Running each request in an
    empty ``contextvars.Context`` gives it a fresh context, as in production.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        # buffered: a streamed body is consumed inside that context too, where its
        # request context (stream_with_context) lives.
        kwargs.setdefault("buffered", True)
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def app_settings() -> dict[str, Any]:
    """Extra settings for ``app``, for a whole module or folder: override this fixture.

    Unlike the ``app_config`` marker it can use other fixtures, e.g. plugin objects a
    test inspects (``{"LMS_PLUGIN_OBJECTS": {"hookprobe": probe}}``) or the URL of a
    server the test started. The marker is applied on top, per test.
    """
    return {}


@pytest.fixture
def app(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest, app_settings: dict[str, Any]
) -> Iterator[Flask]:
    """The application, built here and only here (tests that need a second app use tests/lms_core/apps.py)."""
    from lms_core import create_app
    from lms_core.extensions import db

    marker = request.node.get_closest_marker("app_config")
    extra = {**app_settings, **(dict(marker.kwargs) if marker else {})}
    app = create_app(make_test_config(database_url, tmp_path, **extra))
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def tree(app: Flask) -> Any:
    """A small org tree: a city, two counties, townships and a village."""
    from tests import factories

    return factories.build_tree()


def login(client: FlaskClient, username: str, password: str = "Passw0rd!", **kwargs: Any) -> Any:
    """Sign in through the form; ``kwargs`` go to the request (e.g. ``environ_base`` for the IP)."""
    return client.post("/login", data={"username": username, "password": password}, **kwargs)
