"""The shape of the import graph: the core stands alone, and no module imports itself in a circle.

Read from the source with ``ast``, so an import inside a function or under
``TYPE_CHECKING`` counts as much as one at the top: a lazy import hides a cycle
from the interpreter, not from the reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("lms_core", "lrs", "plugins")
#: Cycles known and not yet broken, each with who breaks it. The test fails on any other
#: cycle, and on a listed one that no longer exists (so the list only shrinks).
KNOWN_CYCLES: dict[tuple[str, ...], str] = {}
#: Packages whose internal cycles are known while they are reworked: any cycle made only of
#: their modules passes (its members change with the work), a cycle reaching outside fails.
#: Empty now; the check stays so a package under rework can be listed with its plan.
KNOWN_CYCLE_PACKAGES: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if "migrations" in parts:  # Alembic scripts are loaded by path, never imported
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _imported_names(name: str, path: Path, modules: dict[str, Path] | None = None) -> set[str]:
    """Every dotted name the module imports (absolute, with relative imports resolved).

    ``from pkg import mod`` yields ``pkg.mod`` when that is one of ``modules``, else ``pkg``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.add(submodule if modules is not None and submodule in modules else module)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imported_names(name, path, modules):
            if imported in modules:
                targets.add(imported)
        graph[name] = targets - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_sees_the_project() -> None:
    graph = _graph()
    assert len(graph) > 100
    assert "lms_core.extensions" in graph["lms_core.app_setup"]  # a top-level import
    assert "lms_core.accounts.views" in graph["lms_core.app_setup"]  # one inside a function


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_core_does_not_import_plugins_or_the_lrs() -> None:
    """The core talks to plugins (the LRS is one) through hooks only."""
    offenders = []
    for name, path in _modules().items():
        if not name.startswith("lms_core"):
            continue
        for imported in _imported_names(name, path):
            if imported.split(".")[0] in {"lrs", "plugins"}:
                offenders.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert not offenders, "\n".join(sorted(set(offenders)))


def test_no_import_cycles() -> None:
    cycles = {tuple(cycle) for cycle in _cycles(_graph())}
    inside_known_package = {
        cycle
        for cycle in cycles
        if any(all(module.startswith(prefix) for module in cycle) for prefix in KNOWN_CYCLE_PACKAGES)
    }
    new = sorted(cycles - set(KNOWN_CYCLES) - inside_known_package)
    assert not new, "import cycles (break them by moving the shared names down a layer):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in new
    )
    gone = sorted(set(KNOWN_CYCLES) - cycles)
    assert not gone, "these cycles are broken now: remove them from KNOWN_CYCLES:\n" + "\n".join(
        " <-> ".join(cycle) for cycle in gone
    )
    clean = [p for p in KNOWN_CYCLE_PACKAGES if not any(c[0].startswith(p) for c in inside_known_package)]
    assert not clean, f"no cycle left inside {clean}: remove them from KNOWN_CYCLE_PACKAGES"
