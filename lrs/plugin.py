"""Hook implementations only: the LRS's contributions to the platform."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lms_core.pluginhost import hookimpl

HERE = Path(__file__).resolve().parent


class LrsPlugin:
    @hookimpl
    def lms_blueprints(self) -> list[Any]:
        from lrs.admin import bp as admin_bp
        from lrs.audit import bp as audit_bp
        from lrs.views import bp

        return [bp, admin_bp, audit_bp]

    @hookimpl
    def lms_cli_commands(self) -> list[Any]:
        from lrs.cli import lrs_group

        return [lrs_group]

    @hookimpl
    def lms_migration_dirs(self) -> list[str]:
        return [str(HERE / "migrations" / "versions")]

    @hookimpl
    def lms_template_hook(self, name: str, context: dict[str, Any]) -> str | None:
        if name == "audit_log_tabs":
            from lrs.audit import log_tab

            return log_tab(context)
        if name == "audit_person_links":
            from lrs.audit import person_link

            return person_link(context)
        if name != "admin_nav":
            return None
        from flask import url_for
        from flask_babel import gettext as _
        from flask_login import current_user
        from markupsafe import Markup, escape

        from lms_core.authz import can

        if not can(current_user, "site.manage"):
            return None
        return Markup('<a href="{}">{}</a>').format(url_for("lrs_admin.clients"), escape(_("LRS clients")))

    @hookimpl
    def lms_xapi_embedded_client(
        self, name: str, scopes: tuple[str, ...], keep_key: str | None
    ) -> tuple[str, str | None] | None:
        from sqlalchemy import select

        from lms_core.extensions import db
        from lrs import clients
        from lrs.models import LrsClient

        if keep_key is not None:
            row = db.session.execute(select(LrsClient).filter_by(key=keep_key)).scalar_one_or_none()
            if row is not None and row.active:
                return keep_key, None
        client, secret = clients.create_client(name, scopes, created_by="xapi connect-embedded")
        return str(client.key), secret

    @hookimpl
    def lms_app_created(self, app: Any) -> None:
        from lms_core.extensions import csrf
        from lrs.views import bp

        # The xAPI resources authenticate every request with HTTP Basic client
        # credentials, not the session cookie, so CSRF tokens do not apply.
        csrf.exempt(bp)
        from lrs.standalone import MergeSlashes

        # Base URL with or without a trailing slash (the standalone app adds its own outermost).
        app.wsgi_app = MergeSlashes(app.wsgi_app)
        app.config.setdefault("LRS_MAX_LIMIT", 100)
        app.config.setdefault("LRS_MAX_BATCH", 5000)
        app.config.setdefault("LRS_AUTHORITY_HOMEPAGE", "https://lrs.invalid/clients")
