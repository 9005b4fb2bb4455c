"""Anti-idle: credited study time that a script, a second tab or an empty chair cannot earn.

The plugin judges every heartbeat the core receives (``lms_assess_interval``), keeps
the raw telemetry append-only, issues attention checks, and turns each person-day
into a verdict (credited, deducted, held for audit, void) with Chinese evidence
lines, published as ``anti_idle.day_assessed`` for the credit bank.
See docs/anti_idle.md.
"""

from plugins.anti_idle import models  # noqa: F401 - the tables join the metadata when the plugin loads
from plugins.anti_idle.plugin import AntiIdlePlugin

plugin = AntiIdlePlugin()
