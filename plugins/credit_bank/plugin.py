"""Hook implementations only: the credit bank's contributions to the platform."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lms_core.pluginhost import hookimpl

HERE = Path(__file__).resolve().parent

#: Declared settings (stored as ``credit_bank.<key>``).
DEFAULT_SETTINGS: dict[str, Any] = {
    #: Days an offline claim may wait for review before its hold lapses (void).
    "claim_timeout_days": 180,
    #: Evidence files per offline claim.
    "claim_max_files": 5,
}


class CreditBankPlugin:
    @hookimpl
    def lms_default_settings(self) -> dict[str, Any]:
        return dict(DEFAULT_SETTINGS)

    @hookimpl
    def lms_report_charts(self, scope: Any) -> list[Any]:
        from plugins.credit_bank.report_charts import charts

        return charts(scope)

    @hookimpl
    def lms_report_rollups(self) -> list[tuple[str, Any]]:
        from plugins.credit_bank.report_charts import rollups

        return rollups()

    @hookimpl
    def lms_migration_dirs(self) -> list[str]:
        return [str(HERE / "migrations" / "versions")]

    @hookimpl
    def lms_translation_dirs(self) -> list[str]:
        return [str(HERE / "translations")]

    @hookimpl
    def lms_blueprints(self) -> list[Any]:
        # admin_views and conversion add their routes to views.bp when imported (imported
        # here, not from views, so the modules do not import each other).
        from plugins.credit_bank import admin_views, conversion, requirement_form, type_conversion  # noqa: F401
        from plugins.credit_bank.integrity_views import bp as integrity_bp
        from plugins.credit_bank.requirement_report import bp as requirements_bp
        from plugins.credit_bank.transcripts.views import bp as transcripts_bp
        from plugins.credit_bank.transfer_api import bp as transfers_bp
        from plugins.credit_bank.views import api_bp, bp
        from plugins.credit_bank.year_reversal_views import bp as reversals_bp

        return [bp, api_bp, transcripts_bp, integrity_bp, requirements_bp, reversals_bp, transfers_bp]

    @hookimpl
    def lms_cli_commands(self) -> list[Any]:
        from plugins.credit_bank.cli import credit_group
        from plugins.credit_bank.transcripts import cli  # noqa: F401 - adds the transcript commands to the group

        return [credit_group]

    @hookimpl
    def lms_capabilities(self) -> dict[str, set[str]]:
        return {
            #: Approve or reject offline training claims of people in scope.
            "credit.review": {"org_admin", "site_admin"},
            #: See the credit of people in scope (statements, who is behind, exports).
            "credit.view": {"auditor", "org_admin", "site_admin"},
            #: Reverse credit found to be 代学代考 (with a reason).
            "credit.reverse": {"auditor", "site_admin"},
            #: Import rosters of offline classes for people in scope.
            "credit.import": {"org_admin", "site_admin"},
            #: Add policy versions, close a year.
            "credit.policy": {"site_admin"},
            #: Record rank changes (promotions) of people in scope, and import them.
            "credit.ranks": {"org_admin", "site_admin"},
            #: Revoke and re-issue the transcripts of people in scope.
            "credit.transcripts": {"org_admin", "site_admin"},
            #: Post transfers through the API (issuers' systems act through a site admin's token).
            "credit.transfer": {"site_admin"},
        }

    @hookimpl
    def lms_event_labels(self) -> dict[str, Any]:
        from plugins.credit_bank.labels import EVENT_NAMES, OBJECT_NAMES

        return {**EVENT_NAMES, **OBJECT_NAMES}

    @hookimpl
    def lms_handle_event(self, event: Any) -> None:
        from plugins.credit_bank import snapshots
        from plugins.credit_bank.inputs import handle

        handle(event)
        # The platform's events are the clock: the first one after a day ends queues its snapshot.
        snapshots.request_build()

    @hookimpl
    def lms_job_handlers(self) -> dict[str, Any]:
        from plugins.credit_bank import snapshots

        return {snapshots.JOB: snapshots.run_job}

    @hookimpl
    def lms_credit_summary(self, user: Any, year: int) -> Any:
        from flask import url_for

        from lms_core.pluginhost import CreditSummary
        from plugins.credit_bank.queries import annual_target, year_summary

        fig = year_summary(user.id, year)
        return CreditSummary(
            posted_centi=fig["posted"],
            pending_centi=fig["pending"],
            overflow_centi=fig["overflow"],
            required_centi=annual_target(user, year),
            detail_url=url_for("credit_bank.mine"),
        )

    @hookimpl
    def lms_template_hook(self, name: str, context: dict[str, Any]) -> str | None:
        if name == "admin_status":
            from flask import render_template

            from plugins.credit_bank import snapshots

            return render_template("credit_bank/_status.html", snapshots=snapshots.freshness())
        if name == "anti_idle_review_item":
            from plugins.credit_bank.year_reversal_views import review_item_link

            return review_item_link(context)
        if name not in ("nav", "admin_nav", "reports_index"):
            return None
        from flask import url_for
        from flask_babel import gettext as _
        from flask_login import current_user
        from markupsafe import Markup, escape

        from lms_core.authz import can

        if name == "nav":
            if not current_user.is_authenticated:
                return None
            return Markup('<a href="{}">{}</a>').format(url_for("credit_bank.mine"), escape(_("My credit")))

        if name == "reports_index":
            if not can(current_user, "credit.view"):
                return None
            return Markup('<a class="button" href="{}">{}</a>').format(
                url_for("credit_bank_requirements.index"), escape(_("Requirement report"))
            )

        links = []
        if can(current_user, "credit.view"):
            links.append((url_for("credit_bank.behind"), _("Credit: who is behind")))
        if can(current_user, "credit.review"):
            links.append((url_for("credit_bank.review_queue"), _("Credit claims to review")))
        if can(current_user, "credit.reverse"):
            links.append((url_for("credit_bank_reversals.index"), _("Reverse a year (代学代考)")))
        if can(current_user, "credit.import"):
            links.append((url_for("credit_bank.roster_import"), _("Import class roster")))
        if can(current_user, "credit.ranks"):
            links.append((url_for("credit_bank.ranks_import"), _("Import rank changes")))
        if can(current_user, "credit.policy"):
            links.append((url_for("credit_bank.conversion_page"), _("Credit conversion")))
            links.append((url_for("credit_bank.requirements_page"), _("Requirement rules")))
            links.append((url_for("credit_bank.policy_page"), _("Credit policy")))
        from plugins.credit_bank.integrity_views import may_view

        if may_view(current_user):
            links.append((url_for("credit_bank_integrity.page"), _("Ledger integrity")))
        return Markup("").join(Markup('<a href="{}">{}</a>').format(u, escape(t)) for u, t in links) or None

    @hookimpl
    def lms_day_picture(self, person: Any, day: Any, session_lanes: dict[str, str]) -> Any:
        from plugins.credit_bank.day import layer

        return layer(person, day)

    @hookimpl
    def lms_app_created(self, app: Any) -> None:
        # Importing the models registers the tables on the shared metadata (for Alembic).
        import plugins.credit_bank.models  # noqa: F401
        import plugins.credit_bank.ranks  # noqa: F401
        import plugins.credit_bank.transcripts.models  # noqa: F401
        from plugins.credit_bank import transfer_fast

        # The transfer API's lean path, in front of Flask (transfer_fast explains when it applies).
        transfer_fast.install(app)
