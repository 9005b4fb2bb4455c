"""The documents say what the code does: every hook is in docs/architecture.md, every plugin too."""

from __future__ import annotations

import importlib.metadata
import inspect
from pathlib import Path

from lms_core.pluginhost import hookspecs

ROOT = Path(__file__).resolve().parent.parent


def test_architecture_lists_every_hook_and_plugin() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    hooks = [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("lms_")]
    missing = [name for name in hooks if f"| `{name}(" not in text]
    assert not missing, f"docs/architecture.md's hook table lacks {missing}"
    assert f"That is all {len(hooks)} hooks" in text
    plugins = sorted(ep.name for ep in importlib.metadata.entry_points(group="lms.plugins"))
    undocumented = [name for name in plugins if f"| `{name}` |" not in text]
    assert not undocumented, f"docs/architecture.md's plugin table lacks {undocumented}"
