"""xAPI 1.0.3 Learning Record Store.

Embedded: enable the ``lrs`` plugin (``LMS_PLUGINS=lrs``) and it is mounted at
``/xapi``. Standalone: ``lrs.create_app`` is the same code in an application
that loads only this plugin (see docs/lrs.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lrs.plugin import LrsPlugin

plugin = LrsPlugin()


def create_app(test_config: Mapping[str, Any] | None = None) -> Any:
    """A standalone LRS: the platform factory with only the ``lrs`` plugin enabled.

    Using the platform factory keeps one configuration system, one migration
    environment and one CLI: ``flask --app lrs db upgrade heads`` and ``flask --app
    lrs lms lrs client create``. Requests under ``/xapi`` go to a lean app with the
    same blueprint, configuration and database but without the platform's
    per-request hooks (see :mod:`lrs.standalone`).
    """
    from lms_core import create_app as core_create_app
    from lrs.standalone import wire

    config: dict[str, Any] = {"LMS_PLUGINS": ["lrs"]}
    if test_config:
        config.update(test_config)
    if "lrs" not in config["LMS_PLUGINS"]:
        config["LMS_PLUGINS"] = [*config["LMS_PLUGINS"], "lrs"]
    return wire(core_create_app(config))
