"""The reason anti-idle stored on a learning interval, as a sentence a cadre understands.

``services.assess_interval`` stores the rules that cut a heartbeat as codes and
milliseconds ("R07b 10000 ms; R01 2000 ms": evidence, kept as written). The auditors'
learning record asks for it through ``lms_interval_reason`` and shows each rule's name
and the time it took, in the viewer's language; no rule code or millisecond reaches a page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _

from plugins.anti_idle.evidence import RULES, fmt_amount
from plugins.anti_idle.report_charts import rule_name

#: The plugin name the core stores in ``reason["by"]`` (the entry point's name).
PLUGIN_NAME = "anti_idle"
_CUT = re.compile(r"\b(R\d+[a-z]?)\s+(\d+)\s*ms\b")


def _cut_text(code: str, ms: int) -> str:
    rule = RULES.get(code)
    action = rule.action if rule is not None else "deduct"
    name, amount = rule_name(code), fmt_amount(ms)
    if action == "void":
        return _("%(rule)s: %(amount)s void", rule=name, amount=amount)
    if action == "hold":
        return _("%(rule)s: %(amount)s held for audit", rule=name, amount=amount)
    return _("%(rule)s: %(amount)s not counted", rule=name, amount=amount)


def reason_text(reason: Mapping[str, Any]) -> str | None:
    """The sentence for one of anti-idle's interval reasons, or ``None`` for another plugin's."""
    if reason.get("by") != PLUGIN_NAME:
        return None
    cuts = _CUT.findall(str(reason.get("reason") or ""))
    if not cuts:
        return None  # nothing we can name: the core shows the verdict alone
    return "；".join(_cut_text(code, int(ms)) for code, ms in cuts)
