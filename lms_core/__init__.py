"""The LMS core: ``create_app`` builds a configured application.

Start-up order (see docs/architecture.md): config, extensions, plugin manager,
core blueprints, plugin contributions, then ``lms_app_created``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from lms_core import config as lms_config
from lms_core.i18n import TIMEZONE


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Application factory.

    Args:
        test_config: settings that override the defaults and the environment;
            tests pass the database URL and plugin objects here.
    """
    from lms_core.theming import ThemedFlask

    app = ThemedFlask(__name__, instance_relative_config=True, static_folder=None)
    from lms_core.bounded import BoundedIntConverter

    # Before any route is added: ``<int:id>`` past a 32-bit key is a 404, not a database error.
    app.url_map.converters["int"] = BoundedIntConverter
    from lms_core.jsonsafe import StrictJSONProvider

    # Every request.get_json() refuses NaN, 1e400, NUL, lone surrogates and deep nesting (400).
    app.json = StrictJSONProvider(app)
    os.makedirs(app.instance_path, exist_ok=True)

    app.config.update(lms_config.DEFAULTS)
    app.config.update(lms_config.from_environ(os.environ))
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = lms_config.load_secret_key(app.instance_path)
    app.config.setdefault("SQLALCHEMY_DATABASE_URI", lms_config.database_url(app.config, app.instance_path))
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.config["LMS_SESSION_COOKIE_SECURE"],
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=app.config["LMS_SESSION_COOKIE_SECURE"],
        REMEMBER_COOKIE_SAMESITE="Lax",
        BABEL_DEFAULT_LOCALE="zh_Hans_CN",
        BABEL_DEFAULT_TIMEZONE=TIMEZONE,
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead: long lessons must not expire forms
        MAX_CONTENT_LENGTH=app.config.get("MAX_CONTENT_LENGTH") or 64 * 1024 * 1024,
    )

    from lms_core import app_setup

    app_setup.init_extensions(app)
    pm = app_setup.init_plugins(app)
    app_setup.register_core(app)
    app_setup.apply_plugins(app, pm)
    # Every model (the core's and the plugins') is imported by now: configure the mappers here,
    # once, not lazily at the first ORM query. The heartbeat's hot path reads through psycopg
    # and builds ORM instances without a query (``db.transient_copy``), so a fresh worker's
    # first completion could read ``lesson.id`` before any query configured the mappers (an
    # AttributeError, a 500), and the lazy configuration would race between the writer and
    # the view threads.
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    from lms_core.learning import beat_front

    beat_front.install(app)  # inside ProxyFix (below): the environ it reads is the client's
    pm.hook.lms_app_created(app=app)
    if app.config["LMS_TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["LMS_TRUSTED_PROXIES"])
        # Outermost, so remote_addr, scheme and host are the client's for every request.
        proxied = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)
        app.wsgi_app = proxied  # type: ignore[method-assign]
    return app
