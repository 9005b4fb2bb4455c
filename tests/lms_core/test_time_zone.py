"""Beijing time is defined once (``lms_core.i18n.SHANGHAI``): no other module builds the zone.

Issue 11 found ``Asia/Shanghai`` declared in four modules; a fifth copy that drifts
(a different zone, or a fixed +08:00 offset) would show one page's times an hour or
a day apart from another's.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOME = "lms_core/i18n.py"


def _zone_builders() -> list[str]:
    """Calls of ``ZoneInfo(...)`` in the project's code, as ``path:line``."""
    found = []
    for package in ("lms_core", "lrs", "plugins", "bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                    if name == "ZoneInfo":
                        found.append(f"{path.relative_to(ROOT).as_posix()}:{node.lineno}")
    return found


def test_only_i18n_builds_the_time_zone() -> None:
    builders = _zone_builders()
    assert [b for b in builders if b.startswith(f"{HOME}:")], "the zone is defined in lms_core.i18n"
    others = [b for b in builders if not b.startswith(f"{HOME}:")]
    assert not others, "import lms_core.i18n.SHANGHAI instead: " + ", ".join(others)
