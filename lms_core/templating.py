"""Jinja globals and filters: local times, plugin template slots, permissions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask, g
from flask_babel import gettext
from markupsafe import Markup

from lms_core.dateformat import format_date, format_datetime
from lms_core.i18n import label
from lms_core.pluginhost import get_plugin_manager
from lms_core.reports.tables import html_rows


def localdt(value: dt.datetime | str | None, fmt: str = "medium") -> str:
    """Show a stored UTC time in Beijing time (``lms_core.i18n.SHANGHAI``), in Babel's words.

    Also takes an ISO 8601 string with an offset (xAPI ``stored``/``timestamp``);
    one that cannot be read is shown as it is rather than failing the page.
    """
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if parsed.tzinfo is None:
            return value
        value = parsed
    return format_datetime(value, fmt)


def localdate(value: dt.datetime | dt.date | None, fmt: str = "long") -> str:
    if value is None:
        return ""
    return format_date(value, fmt)


def colon(text: Any) -> str:
    """A label and the colon of the page's language: "阅读时长：" in Chinese, "Reading time: " in English.

    Templates wrote an ASCII ": " after translated labels, which a Chinese page should not show.
    """
    # The colon is a catalogue entry of its own ("：" in zh_Hans_CN); not inside an f-string,
    # where the extractor cannot see it.
    return str(text) + gettext(": ")


def beijing_today() -> dt.date:
    """Today's Beijing calendar day (templates: day links go no further than today)."""
    from lms_core.db import utcnow
    from lms_core.i18n import SHANGHAI

    return utcnow().astimezone(SHANGHAI).date()


def template_hook(name: str, **context: Any) -> Markup:
    """Join the markup every plugin returns for the slot ``name``."""
    parts = get_plugin_manager().hook.lms_template_hook(name=name, context=context)
    # Plugins return ready HTML by contract (hookspec ``lms_template_hook``); they escape their own data.
    return Markup("\n").join(Markup(p) for p in reversed(parts) if p)  # noqa: S704


def init_app(app: Flask) -> None:
    from flask_login import current_user

    from lms_core.authz import can

    app.jinja_env.filters["localdt"] = localdt
    app.jinja_env.filters["localdate"] = localdate
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["colon"] = colon
    app.jinja_env.globals["template_hook"] = template_hook
    app.jinja_env.globals["beijing_today"] = beijing_today
    app.jinja_env.globals["report_rows"] = html_rows

    @app.context_processor
    def _globals() -> dict[str, Any]:
        def user_can(capability: str, obj: Any = None) -> bool:
            return can(current_user, capability, obj)

        return {"can": user_can, "current_locale": getattr(g, "locale", "zh_Hans_CN")}
