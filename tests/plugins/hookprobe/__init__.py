"""A test plugin implementing every hook of :mod:`lms_core.pluginhost.hookspecs`.

Loaded through ``LMS_PLUGIN_OBJECTS={"hookprobe": HookProbe()}``. Each hook does
something observable, so ``tests/lms_core/pluginhost/test_plugin_host.py`` can prove the host
really applies it: a blueprint with its own template and static file, a CLI group,
declared settings, a capability, a dashboard panel, a template slot, a permission
override, an event handler, a job kind, an Alembic branch, a translation folder and
the ``lms_app_created`` step.

Its table (``hookprobe_notes``, created by its migration branch) deliberately has
no ORM model: a model would join the shared metadata and make every other test's
schema look incomplete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask import Blueprint, Flask, render_template
from flask.cli import with_appcontext
from flask_login import login_required
from markupsafe import Markup

from lms_core.pluginhost import DashboardPanel, hookimpl

HERE = Path(__file__).resolve().parent
#: The capability this plugin declares; instructors hold it by default.
CAPABILITY = "hookprobe.use"


class HookProbe:
    """One instance per app, so recorded calls never leak between tests."""

    def __init__(self) -> None:
        #: ``lms_has_capability`` answers: ``{(username, capability): True/False}``.
        self.verdicts: dict[tuple[str, str], bool] = {}
        #: Event ids seen by ``lms_handle_event``, in order (duplicates included).
        self.events: list[int] = []
        #: Event names on which ``lms_handle_event`` raises.
        self.fail_on: set[str] = set()
        #: Payloads run by the ``hookprobe.echo`` job.
        self.jobs: list[dict[str, Any]] = []
        self.created_app: Flask | None = None
        #: Answers for the learning hooks (``None``: abstain) and what they were asked.
        self.interval_verdict: Any = None
        self.completion_verdict: bool | None = None
        self.learning_calls: list[tuple[str, Any]] = []
        #: ``lms_credit_summary`` answer (``None``: abstain).
        self.credit_summary: Any = None
        #: ``lms_report_charts`` answer, and the scopes it was asked for.
        self.charts: list[Any] = []
        self.chart_scopes: list[Any] = []
        #: ``lms_report_rollups`` answer: (name, rebuild) pairs.
        self.rollups: list[tuple[str, Any]] = []
        #: ``lms_xapi_embedded_client``: the answer (``None``: abstain) and the calls.
        self.embedded_client: tuple[str, str | None] | None = None
        self.embedded_calls: list[tuple[str, tuple[str, ...], str | None]] = []

    # app creation -----------------------------------------------------------
    @hookimpl
    def lms_default_settings(self) -> dict[str, Any]:
        return {"greeting": "hello", "limit": 3}

    @hookimpl
    def lms_capabilities(self) -> dict[str, set[str]]:
        return {CAPABILITY: {"instructor"}}

    @hookimpl
    def lms_blueprints(self) -> list[Blueprint]:
        bp = Blueprint(
            "hookprobe", __name__, url_prefix="/hookprobe", template_folder="templates", static_folder="static"
        )

        @bp.route("/")
        @login_required
        def page() -> Any:
            from lms_core.settings import services as settings

            return render_template("hookprobe/page.html", greeting=settings.get("hookprobe", "greeting"))

        return [bp]

    @hookimpl
    def lms_cli_commands(self) -> list[click.Command]:
        @click.group("hookprobe")
        def group() -> None:
            """hookprobe test commands."""

        @group.command("ping")
        @click.option("--name", default="world")
        @with_appcontext
        def ping(name: str) -> None:
            """Answer with the configured greeting."""
            from lms_core.settings import services as settings

            click.echo(f"{settings.get('hookprobe', 'greeting')} {name}")

        return [group]

    @hookimpl
    def lms_migration_dirs(self) -> list[str]:
        return [str(HERE / "migrations" / "versions")]

    @hookimpl
    def lms_translation_dirs(self) -> list[str]:
        return [str(HERE / "translations")]

    @hookimpl
    def lms_event_labels(self) -> dict[str, Any]:
        return {"hookprobe.pinged": "探针事件", "hookprobe_things": "探针对象"}

    @hookimpl
    def lms_job_handlers(self) -> dict[str, Any]:
        def echo(payload: dict[str, Any]) -> None:
            if payload.get("fail"):
                raise RuntimeError("hookprobe job asked to fail")
            self.jobs.append(payload)

        return {"hookprobe.echo": echo}

    @hookimpl
    def lms_app_created(self, app: Flask) -> None:
        self.created_app = app
        # Proves the hook runs after the template environment exists.
        app.jinja_env.filters["probe"] = lambda value: f"[probe:{value}]"

    # request --------------------------------------------------------------
    @hookimpl
    def lms_template_hook(self, name: str, context: dict[str, Any]) -> str | None:
        if name == "body_end":
            return '<div id="hookprobe-body-end">hookprobe slot</div>'
        if name == "player_overlay":
            return f'<div id="hookprobe-overlay" data-session="{context["session"].id}"></div>'
        return None

    @hookimpl
    def lms_dashboard_panels(self, user: Any) -> list[DashboardPanel]:
        html = str(Markup("<p>probe for {}</p>").format(user.username))
        return [DashboardPanel(key="hookprobe", title="Probe panel", html=html, order=1)]

    @hookimpl
    def lms_credit_summary(self, user: Any, year: int) -> Any:
        # Abstains unless a test sets one: the dashboard then shows the core's figure.
        return self.credit_summary

    @hookimpl
    def lms_day_picture(self, person: Any, day: Any, session_lanes: dict[str, str]) -> Any:
        # Abstains: the day picture draws the core's and the real plugins' layers.
        return None

    @hookimpl
    def lms_log_rule_filter(self) -> Any:
        # Abstains: the log browser's rule filter is tested with the anti-idle plugin.
        return None

    @hookimpl
    def lms_interval_reason(self, reason: Any) -> str | None:
        # Abstains: interval reasons are explained by the plugin that wrote them (anti-idle).
        return None

    @hookimpl
    def lms_report_charts(self, scope: Any) -> list[Any]:
        self.chart_scopes.append(scope)
        return list(self.charts)

    @hookimpl
    def lms_report_rollups(self) -> list[tuple[str, Any]]:
        return list(self.rollups)

    @hookimpl
    def lms_has_capability(self, user: Any, capability: str, obj: Any) -> bool | None:
        return self.verdicts.get((user.username, capability))

    @hookimpl
    def lms_xapi_embedded_client(
        self, name: str, scopes: tuple[str, ...], keep_key: str | None
    ) -> tuple[str, str | None] | None:
        self.embedded_calls.append((name, tuple(scopes), keep_key))
        return self.embedded_client

    # transaction (learning) ---------------------------------------------------
    # Their effect on credited hours is tested with the learning package; here they
    # record the call and return a configurable answer (abstaining by default).
    @hookimpl
    def lms_beat_received(self, session_id: str, body: bytes) -> None:
        self.learning_calls.append(("beat_received", (session_id, body)))

    @hookimpl
    def lms_beat_group_read(self, batch: Any, beats: Any) -> None:
        self.learning_calls.append(("beat_group_read", beats))  # reads nothing: its beats read alone

    @hookimpl
    def lms_assess_interval(self, claim: Any) -> Any:
        self.learning_calls.append(("assess_interval", claim))
        return self.interval_verdict

    @hookimpl
    def lms_completion_verdict(self, user: Any, lesson: Any, progress: Any) -> bool | None:
        self.learning_calls.append(("completion_verdict", lesson))
        return self.completion_verdict

    @hookimpl
    def lms_completion_group_read(self, batch: Any, lessons: Any) -> None:
        self.learning_calls.append(("completion_group_read", lessons))  # reads nothing: asked per beat

    # after commit ------------------------------------------------------------
    @hookimpl
    def lms_handle_event(self, event: Any) -> None:
        self.events.append(event.id)
        if event.name in self.fail_on:
            raise RuntimeError(f"hookprobe refuses {event.name}")
