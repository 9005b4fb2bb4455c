"""Verdicts and reasons of the learning ledger, as a cadre reads them.

The ledger keeps codes and numbers (append-only evidence); pages translate them
here when shown, so a record written in one language reads in the viewer's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from lms_core.learning.assessment import CREDIT, REDUCE, VOID
from lms_core.pluginhost.manager import get_plugin_manager

VERDICT_NAMES = {CREDIT: _l("Credited"), REDUCE: _l("Partly credited"), VOID: _l("Not credited")}

#: Rows written before the core rule stored its figures carry them only in this sentence.
_LEGACY_WALL_CLOCK = re.compile(r"claimed (\d+) ms of media in (\d+) ms of server time")


def verdict_label(verdict: str) -> str:
    name = VERDICT_NAMES.get(verdict)
    return str(name) if name is not None else _("Other verdict")


def _seconds(ms: Any) -> str:
    return f"{int(ms) / 1000:.1f}"


def reason_text(reason: Mapping[str, Any]) -> str:
    """One reason of an interval's verdict as a sentence in the current language."""
    if reason.get("by") == "core":
        claimed, wall = reason.get("claimed_ms"), reason.get("wall_ms")
        if claimed is None or wall is None:
            match = _LEGACY_WALL_CLOCK.search(str(reason.get("reason", "")))
            if match:
                claimed, wall = match.groups()
        if claimed is not None and wall is not None:
            return _(
                "The player reported %(claimed)s s of video in %(wall)s s of real time: only the real time counts.",
                claimed=_seconds(claimed),
                wall=_seconds(wall),
            )
        return _("Reduced by the platform's time rule.")
    # A plugin stores its reason as it likes (codes, figures); it explains it through the hook.
    explained = get_plugin_manager().hook.lms_interval_reason(reason=reason)
    if explained:
        return str(explained)
    text = str(reason.get("reason") or "")
    # A reason nobody explains is shown only if it already reads as Chinese, never as a code.
    return text if is_sentence(text) else verdict_label(str(reason.get("verdict", "")))


def is_sentence(text: str) -> bool:
    """Whether a plugin's reason reads as a sentence in Chinese (else it is a rule code such as "R01 2000 ms")."""
    return any("\u3400" <= ch <= "\u9fff" for ch in text)
