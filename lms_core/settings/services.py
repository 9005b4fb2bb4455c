"""Read and write declared plugin settings (strict keys)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from lms_core.extensions import db
from lms_core.settings.models import Setting


def declared() -> dict[str, Any]:
    """``{"<plugin>.<key>": default}`` for every setting a plugin declared."""
    registry: dict[str, Any] = current_app.extensions["lms_settings"]
    return registry


def get(plugin: str, key: str) -> Any:
    full = f"{plugin}.{key}"
    defaults = declared()
    if full not in defaults:
        raise KeyError(f"undeclared setting {full!r}")
    row = db.session.get(Setting, full)
    return defaults[full] if row is None else row.value


def _same_type(value: Any, default: Any) -> bool:
    # bool is a subclass of int: True must not pass for a count, nor 1 for a switch.
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def set_value(plugin: str, key: str, value: Any) -> None:
    """Store a value (does not commit). The type must match the default's."""
    full = f"{plugin}.{key}"
    defaults = declared()
    if full not in defaults:
        raise KeyError(f"undeclared setting {full!r}")
    default = defaults[full]
    if default is not None and not _same_type(value, default):
        raise TypeError(f"{full} must be {type(default).__name__}")
    row = db.session.get(Setting, full)
    if row is None:
        db.session.add(Setting(key=full, value=value))
    else:
        row.value = value
