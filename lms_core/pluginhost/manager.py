"""Builds one pluggy ``PluginManager`` per application.

Never a module global: two apps in one process (tests!) must not share hooks.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pluggy
from flask import Flask, current_app

from lms_core.pluginhost import hookspecs

ENTRY_POINT_GROUP = "lms.plugins"


class PluginLoadError(RuntimeError):
    """A plugin named in ``LMS_PLUGINS`` could not be found or loaded."""


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_plugins(app: Flask) -> pluggy.PluginManager:
    """Create the manager, load the allow-listed plugins and check their hooks.

    ``LMS_PLUGINS`` names entry points of the ``lms.plugins`` group. A listed
    plugin that is not installed, or fails to import, stops start-up: running a
    platform without its credit bank would silently lose study hours.
    ``LMS_PLUGIN_OBJECTS`` (a mapping, only settable from ``test_config``)
    registers extra plugin objects directly, which is how tests load test plugins.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    available = _entry_points()
    for name in app.config["LMS_PLUGINS"]:
        ep = available.get(name)
        if ep is None:
            raise PluginLoadError(
                f"plugin {name!r} is listed in LMS_PLUGINS but no {ENTRY_POINT_GROUP!r} "
                f"entry point has that name (installed: {sorted(available)})"
            )
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginLoadError(f"plugin {name!r} failed to load: {exc}") from exc
        pm.register(plugin, name=name)
    for name, plugin in app.config.get("LMS_PLUGIN_OBJECTS", {}).items():
        pm.register(plugin, name=name)
    pm.check_pending()
    app.extensions["lms_plugins"] = pm
    return pm


def get_plugin_manager(app: Flask | None = None) -> pluggy.PluginManager:
    """The application's plugin manager."""
    pm: pluggy.PluginManager = (app or current_app).extensions["lms_plugins"]
    return pm


def call_plain(hook: Any, **kwargs: Any) -> list[Any]:
    """``hook(**kwargs)`` for a hook called on every heartbeat: the same implementations in the
    same order (pluggy's: the last registered first), each given the arguments it names, and
    their answers other than ``None``, without pluggy's per-call work (the spec's defaults, the
    argument checks, ``_multicall``'s wrapper machinery). A hook with a wrapper, ``firstresult``,
    keyword-only arguments or an argument the caller did not give goes through pluggy."""
    impls = hook.get_hookimpls()
    spec = hook.spec
    plain = spec is None or not spec.opts.get("firstresult")
    calls = []
    for impl in reversed(impls) if plain else ():
        if impl.hookwrapper or impl.wrapper or impl.kwargnames or not all(n in kwargs for n in impl.argnames):
            plain = False
            break
        calls.append((impl.function, [kwargs[name] for name in impl.argnames]))
    if not plain:
        answers: list[Any] = hook(**kwargs)
        return answers
    results = []
    for function, args in calls:
        answer = function(*args)
        if answer is not None:
            results.append(answer)
    return results


def per_plugin(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call each implementation of a hook separately and pair answers with plugin names."""
    hook = getattr(pm.hook, hook_name)
    results = []
    for impl in hook.get_hookimpls():
        results.append((impl.plugin_name, impl.function(**kwargs)))
    return results
