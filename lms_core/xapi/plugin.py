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

import click

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
