"""Hook implementations only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import render_template_string
from flask_babel import gettext as _

from lms_core.pluginhost import DashboardPanel, hookimpl

HERE = Path(__file__).resolve().parent


class DemoPanelPlugin:
    @hookimpl
    def lms_translation_dirs(self) -> list[str]:
        return [str(HERE / "translations")]

    @hookimpl
    def lms_dashboard_panels(self, user: Any) -> list[DashboardPanel]:
        html = render_template_string(
            "<p>{{ unit.name }} <span class='muted'>({{ unit.code }})</span></p>", unit=user.org_unit
        )
        return [DashboardPanel(key="demo_panel", title=_("My org unit"), html=html, order=900)]
