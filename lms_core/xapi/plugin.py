"""The core's xAPI emitter, registered on every app's plugin manager as ``xapi_emitter``.

It is core code, not an optional plugin: ``create_app`` registers it whatever
``LMS_PLUGINS`` says (``LMS_XAPI_ENABLED`` turns emission off). Using the plugin
hooks rather than a side channel means the emitter gets the same guarantees as
every other event handler: its own transaction after commit, failures recorded
and replayed by ``flask lms events replay``, job kinds and CLI merged by the
same code.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import click
from flask import Flask

from lms_core.events.models import Event
from lms_core.pluginhost import hookimpl

NAME = "xapi_emitter"


@hookimpl
def lms_handle_event(event: Event) -> None:
    from lms_core.xapi.services import record_event

    record_event(event)


@hookimpl
def lms_job_handlers() -> dict[str, Any]:
    from lms_core.xapi.services import DELIVER_JOB, deliver_job

    return {DELIVER_JOB: deliver_job}


@hookimpl
def lms_cli_commands() -> list[click.Command]:
    from lms_core.xapi.cli import xapi

    return [xapi]


def _absolute_url(value: Any) -> bool:
    parts = urlsplit(str(value or ""))
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@hookimpl
def lms_app_created(app: Flask) -> None:
    """Refuse to start with settings that would make every statement invalid or undeliverable."""
    if not app.config["LMS_XAPI_ENABLED"]:
        return
    for key in ("LMS_PLATFORM_URL", "LMS_XAPI_ENDPOINT"):
        if not _absolute_url(app.config[key]):
            raise RuntimeError(f"{key} must be an absolute http(s) URL, got {app.config[key]!r}")
    if int(app.config["LMS_XAPI_BATCH_SIZE"]) < 1:
        raise RuntimeError("LMS_XAPI_BATCH_SIZE must be at least 1")
