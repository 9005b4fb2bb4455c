"""The plugin host: pluggy hook specifications and the per-application manager."""

from lms_core.pluginhost.answers import CreditSummary, DashboardPanel
from lms_core.pluginhost.hookspecs import hookimpl
from lms_core.pluginhost.manager import get_plugin_manager, load_plugins

__all__ = ["CreditSummary", "DashboardPanel", "get_plugin_manager", "hookimpl", "load_plugins"]
