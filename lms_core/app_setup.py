"""The steps of ``create_app``, one function each, in the order they run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pluggy
from flask import Flask, g, request
from flask_babel import Domain, get_locale

from lms_core.db import install_idle_ping, install_read_only_commit, install_sqlite_pragmas, install_utc_sessions
from lms_core.extensions import babel, csrf, db, login_manager, migrate
from lms_core.i18n import LOCALE_COOKIE, SUPPORTED_LOCALES
from lms_core.pluginhost import load_plugins

CORE_DIR = Path(__file__).resolve().parent
REPO_DIR = CORE_DIR.parent


def select_locale() -> str:
    """Explicit choice (cookie), then the user's saved preference, then Chinese."""
    from flask import has_request_context
    from flask_login import current_user

    if not has_request_context():  # CLI commands, workers, services called from tests
        return "zh_Hans_CN"
    chosen = request.cookies.get(LOCALE_COOKIE)
    if chosen in SUPPORTED_LOCALES:
        return chosen
    if getattr(current_user, "is_authenticated", False) and current_user.locale in SUPPORTED_LOCALES:
        return str(current_user.locale)
    return "zh_Hans_CN"


class AppDomain(Domain):
    """The default message domain, with its catalogue cache kept per application.

    Flask-Babel caches catalogues on one ``Domain`` shared by every app in the
    process, keyed by locale only; each app merges its own plugins' folders, so a
    second app (tests, or two apps in one worker) would get the first one's strings.
    """

    def get_translations_cache(self, ctx: Any) -> Any:
        from flask import current_app

        return current_app.extensions.setdefault("lms_translations_cache", {})

    def get_translations(self) -> Any:
        """The catalogue for this request, looked up once per request.

        Flask-Babel resolves the context, the locale and its string form and the
        cache on every ``_()``; a page makes dozens. The answer is kept where
        Flask-Babel keeps its own per-request state (``babel_translations``), which
        its ``refresh()`` and ``force_locale()`` reset, so switching the language in
        the middle of a request still takes effect.
        """
        try:
            app_globals = g._get_current_object()  # one proxy lookup instead of one per access
        except RuntimeError:  # no app context: Flask-Babel answers with NullTranslations
            return super().get_translations()
        state = app_globals.__dict__.get("_flask_babel")
        translations = getattr(state, "babel_translations", None)
        if translations is None:
            translations = super().get_translations()
            app_globals._flask_babel.babel_translations = translations
        return translations


def _install_template_gettext(app: Flask) -> None:
    """Templates' ``_()`` straight to the request's catalogue (see AppDomain.get_translations).

    Flask-Babel's own callables go through ``get_domain()`` first, which costs as
    much again on every string of every page.
    """
    domain: AppDomain = babel.domain_instance
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: domain.get_translations().ugettext(s),
        ngettext=lambda s, p, n: domain.get_translations().ungettext(s, p, n),
        pgettext=lambda c, s: domain.get_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: domain.get_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )


@migrate.configure
def _alembic_version_locations(config: Any) -> Any:
    """Point Alembic at the core's and each enabled plugin's version folders."""
    from flask import current_app

    config.set_main_option("version_locations", os.pathsep.join(current_app.extensions["lms_migration_dirs"]))
    return config


def init_extensions(app: Flask) -> None:
    from lms_core import models  # noqa: F401 - registers every table on db.metadata
    from lms_core.accounts.services import load_session_user
    from lms_core.events import guard

    install_sqlite_pragmas()
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            install_idle_ping(engine, app.config["LMS_DB_PING_IDLE_SECONDS"])
            install_read_only_commit(engine)
            install_utc_sessions(engine)
    migrate.init_app(app, db, directory=str(REPO_DIR / "migrations"))
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_session_user)
    babel.init_app(app, locale_selector=select_locale)
    # Read through __dict__: the cached_property itself needs an app context.
    if not isinstance(vars(babel).get("domain_instance"), AppDomain):
        babel.domain_instance = AppDomain(domain="messages")
    _install_template_gettext(app)
    from lms_core.accounts.request_auth import refuse_read_only_writes

    # Before the CSRF hook, so a read-only token's write gets its own clear 403.
    app.before_request(refuse_read_only_writes)
    csrf.init_app(app)
    guard.install()


def init_plugins(app: Flask) -> pluggy.PluginManager:
    """Load plugins and merge what they declare (settings, capabilities, jobs)."""
    from lms_core.authz import CORE_CAPABILITIES
    from lms_core.events.services import DISPATCH_JOB, dispatch_job
    from lms_core.pluginhost.manager import per_plugin

    pm = load_plugins(app)
    # Core event handlers that use the plugin hooks (always on; see lms_core/xapi/plugin.py).
    from lms_core.xapi import plugin as xapi_plugin

    pm.register(xapi_plugin, name=xapi_plugin.NAME)
    pm.check_pending()

    settings: dict[str, Any] = {}
    for plugin_name, answer in per_plugin(pm, "lms_default_settings"):
        for key, default in (answer or {}).items():
            settings[f"{plugin_name}.{key}"] = default
    app.extensions["lms_settings"] = settings

    capabilities = {name: set(roles) for name, roles in CORE_CAPABILITIES.items()}
    for plugin_name, answer in per_plugin(pm, "lms_capabilities"):
        for name, roles in (answer or {}).items():
            if name in capabilities:
                raise RuntimeError(f"plugin {plugin_name!r} redeclares capability {name!r}")
            capabilities[name] = set(roles)
    app.extensions["lms_capabilities"] = capabilities

    from lms_core.accounts.importer import IMPORT_JOB, import_job
    from lms_core.enrolments.services import MATERIALIZE_JOB, materialize_job
    from lms_core.reports.monthly import REFRESH_JOB, refresh_job

    jobs: dict[str, Any] = {
        DISPATCH_JOB: dispatch_job,
        MATERIALIZE_JOB: materialize_job,
        IMPORT_JOB: import_job,
        REFRESH_JOB: refresh_job,
    }
    for plugin_name, answer in per_plugin(pm, "lms_job_handlers"):
        for kind, handler in (answer or {}).items():
            if kind in jobs:
                raise RuntimeError(f"plugin {plugin_name!r} redeclares job kind {kind!r}")
            jobs[kind] = handler
    app.extensions["lms_job_handlers"] = jobs
    return pm


def register_core(app: Flask) -> None:
    from lms_core import cli, errors, security_headers, templating, theming
    from lms_core.accounts.request_auth import load_token_user
    from lms_core.accounts.views import bp as auth_bp
    from lms_core.admin.views import bp as admin_bp
    from lms_core.dashboard.views import bp as dashboard_bp

    login_manager.request_loader(load_token_user)
    theming.init_app(app)
    templating.init_app(app)
    errors.init_app(app)
    security_headers.init_app(app)
    app.register_blueprint(auth_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(admin_bp)
    from lms_core.media.views import bp as media_bp

    app.register_blueprint(media_bp)
    from lms_core.audit.views import bp as audit_bp
    from lms_core.courses.teach_views import bp as teach_bp
    from lms_core.courses.views import bp as courses_bp
    from lms_core.learning.feedback_views import bp as feedback_bp
    from lms_core.learning.views import bp as learn_bp

    app.register_blueprint(courses_bp)
    app.register_blueprint(learn_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(teach_bp)
    app.register_blueprint(feedback_bp)
    from lms_core.reports.views import bp as reports_bp

    app.register_blueprint(reports_bp)
    app.cli.add_command(cli.build_group())

    @app.before_request
    def _remember_locale() -> None:
        g.locale = str(get_locale())


def apply_plugins(app: Flask, pm: pluggy.PluginManager) -> None:
    lms_group = app.cli.commands["lms"]
    for blueprints in pm.hook.lms_blueprints():
        for bp in blueprints or []:
            app.register_blueprint(bp)
    for commands in pm.hook.lms_cli_commands():
        for command in commands or []:
            if command.name in lms_group.commands:  # type: ignore[attr-defined]
                raise RuntimeError(f"CLI command {command.name!r} is defined twice")
            lms_group.add_command(command)  # type: ignore[attr-defined]
    dirs = [str(REPO_DIR / "migrations" / "versions")]
    for answer in pm.hook.lms_migration_dirs():
        dirs.extend(answer or [])
    app.extensions["lms_migration_dirs"] = dirs
    translation_dirs = [str(CORE_DIR / "translations")]
    for answer in pm.hook.lms_translation_dirs():
        translation_dirs.extend(answer or [])
    # Flask-Babel resolves its folders in init_app, before plugins are known.
    app.extensions["babel"].translation_directories = translation_dirs
