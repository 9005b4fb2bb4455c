"""The ingest bench's variants from other code trees (``anti_idle_bench.py --variant NAME=@TREE``).

A variant may run the server from another checkout: ``NAME=@/path/to/tree`` (a git worktree of
an older commit, say) or ``NAME=@rev:COMMIT`` (the bench adds a detached worktree of that commit
in a temporary folder and removes it afterwards). The shared venv's editable install points at
/work/main and is never touched: the other tree's server gets ``PYTHONPATH=<tree>`` (ahead of the
editable install's finder, which comes last on ``sys.meta_path``) and ``<tree>`` as its working
directory, and :func:`check_tree` runs the same interpreter with the same environment and folder
first and fails unless ``lms_core``, ``plugins`` and ``lrs`` are imported from under the tree.

The database: trees with the same Alembic heads share the primed database. A tree with other
heads gets a copy of it (``CREATE DATABASE ... TEMPLATE``, after the priming, with the server
stopped) migrated to its heads: forward with the tree's own migrations when the tree knows every
revision the database holds (the production path: the same upgrade a deployment runs on live
data), else back with this tree's migrations (their ``downgrade()``, each tested by
tests/lms_core/test_migrations.py) to the tree's heads, then the tree's ``upgrade heads`` (a
no-op unless the downgrade went further back). The learners, their sign-ins and their day so
far are the same in every copy; from then on each copy's day goes on with its own variants.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from common import BIN, REPO, step

#: The packages a tree's server must import from the tree itself.
PACKAGES = ("lms_core", "plugins", "lrs")

#: What :func:`check_tree`'s child prints: where each package came from.
CHILD_CHECK = (
    "import importlib, json, sys\n"
    f"print(json.dumps({{m: importlib.import_module(m).__path__[0] for m in {PACKAGES!r}}}))\n"
)


@dataclasses.dataclass
class Variant:
    """One ``--variant``: its name, extra environment, gunicorn workers and code tree (``""``:
    the bench's own)."""

    name: str
    env: dict[str, str]
    workers: int
    tree: str = ""


def parse_variant(text: str, workers: int) -> Variant:
    """``NAME=[@TREE,]KEY=VALUE,KEY=VALUE`` (``NAME=``: the defaults) as a :class:`Variant`.

    The pseudo-key ``WORKERS`` is gunicorn's ``--workers``; an item ``@/path`` or ``@rev:COMMIT``
    (first, at most one) runs the server from that tree.
    """
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"--variant {text!r}: NAME=[@TREE,]KEY=VALUE,KEY=VALUE (NAME= for the defaults)")
    variant = Variant(name, {}, workers)
    for i, item in enumerate(filter(None, rest.split(","))):
        if item.startswith("@"):
            if i or not item[1:] or item == "@rev:":
                raise SystemExit(f"--variant {text!r}: the tree (@/path or @rev:COMMIT) comes first, once")
            variant.tree = item[1:]
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--variant {text!r}: {item!r} is not KEY=VALUE")
        if key == "WORKERS":
            variant.workers = int(value)
        else:
            variant.env[key] = value
    return variant


@dataclasses.dataclass(frozen=True)
class Tree:
    """A code tree a server runs from: its folder, its commit (``+dirty``: with uncommitted
    changes) and whether the bench made it (a temporary worktree)."""

    path: Path
    commit: str
    made: bool = False


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(  # noqa: S603 - git with our own arguments
        ["git", *args], cwd=cwd or REPO, check=True, capture_output=True, text=True
    ).stdout.strip()


def describe(path: Path) -> str:
    """The tree's commit (short), ``+dirty`` when tracked files differ from it."""
    commit = _git("rev-parse", "--short=10", "HEAD", cwd=path)
    dirty = _git("status", "--porcelain", "--untracked-files=no", cwd=path)
    return commit + ("+dirty" if dirty else "")


@contextlib.contextmanager
def trees(specs: list[str]) -> Iterator[dict[str, Tree]]:
    """The trees of ``specs`` (``""``: this one; ``/path``; ``rev:COMMIT``), each once; the
    worktrees made for ``rev:`` removed on the way out."""
    out: dict[str, Tree] = {}
    try:
        for spec in dict.fromkeys(specs):
            out[spec] = open_tree(spec)
        yield out
    finally:
        for tree in out.values():
            if tree.made:
                step(f"removing the temporary worktree {tree.path}")
                subprocess.run(["git", "worktree", "remove", "--force", str(tree.path)], cwd=REPO, check=False)  # noqa: S603, S607
                shutil.rmtree(tree.path.parent, ignore_errors=True)


def open_tree(spec: str) -> Tree:
    """This tree (``""``), a folder (``/path``) or a new detached worktree of ``rev:COMMIT``."""
    if not spec:
        return Tree(REPO, describe(REPO))
    if spec.startswith("rev:"):
        rev = spec.removeprefix("rev:")
        try:
            commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
        except subprocess.CalledProcessError:
            raise SystemExit(f"--variant @rev:{rev}: not a commit of {REPO}") from None
        path = Path(tempfile.mkdtemp(prefix="bench-tree-")) / commit[:10]
        step(f"a temporary worktree of {rev} ({commit[:10]}) in {path}")
        _git("worktree", "add", "--detach", str(path), commit)
        _compile_translations(path)
        return Tree(path, commit[:10], made=True)
    path = Path(spec).resolve()
    if not (path / "lms_core" / "__init__.py").is_file():
        raise SystemExit(f"--variant @{spec}: no lms_core/ there")
    return Tree(path, describe(path))


def _compile_translations(path: Path) -> None:
    """The tree's catalogues compiled (``make translations`` without make: its stamp would look
    at the shared venv's install)."""
    for folder in [path / "lms_core" / "translations", path / "lrs" / "translations"] + sorted(
        path.glob("plugins/*/translations")
    ):
        if folder.is_dir():
            subprocess.run([str(BIN / "pybabel"), "-q", "compile", "-d", str(folder)], check=True)  # noqa: S603


def tree_env(env: Mapping[str, str], tree: Tree) -> dict[str, str]:
    """``env`` with the tree first on ``PYTHONPATH``."""
    old = env.get("PYTHONPATH", "")
    return dict(env, PYTHONPATH=str(tree.path) + (os.pathsep + old if old else ""))


def imported_from(env: Mapping[str, str], cwd: Path) -> dict[str, str]:
    """Where a child of this interpreter, with ``env`` in ``cwd``, imports :data:`PACKAGES` from."""
    out = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", CHILD_CHECK], env=dict(env), cwd=cwd, check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def check_tree(env: Mapping[str, str], tree: Tree) -> None:
    """Fail unless a child started as the tree's server is (same interpreter, environment and
    folder) imports every package of :data:`PACKAGES` from under the tree."""
    found = imported_from(env, tree.path)
    wrong = {m: p for m, p in found.items() if not Path(p).resolve().is_relative_to(tree.path.resolve())}
    if wrong:
        raise SystemExit(f"the server of {tree.path} would import {wrong}, not that tree's code")


def _flask(env: Mapping[str, str], tree: Tree, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the venv's flask on our own arguments
        [str(BIN / "flask"), "db", *args], env=dict(env), cwd=tree.path, check=check, capture_output=True, text=True
    )


def alembic_heads(env: Mapping[str, str], tree: Tree) -> tuple[str, ...]:
    """``flask db heads`` of the tree (with the variant's plugins): one line a head, sorted."""
    return tuple(sorted(line for line in _flask(env, tree, "heads").stdout.splitlines() if line.strip()))


def _revisions(lines: tuple[str, ...]) -> set[str]:
    """The revision ids of ``flask db heads`` lines (its "effective" heads too: those another
    branch depends on, which the version table records through the dependent)."""
    return {line.split()[0] for line in lines}


def version_rows(url: str) -> set[str]:
    """The revisions in the database's ``alembic_version``."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return {r[0] for r in conn.execute("SELECT version_num FROM alembic_version").fetchall()}


def copy_database(url: str, name: str) -> str:
    """``CREATE DATABASE name TEMPLATE <url's database>`` (nobody may be connected to it); the
    copy's URL."""
    import psycopg

    base, _, template = url.rpartition("/")
    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://") + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return f"{base}/{name}"


def migrate_copy(env: Mapping[str, str], tree: Tree, base_env: Mapping[str, str], base: Tree, rows: set[str]) -> str:
    """Take a copy of the primed database (``env``'s ``LMS_DATABASE_URL``, at ``rows`` in its
    version table) to ``tree``'s heads; how, in words."""
    unknown = [r for r in sorted(rows) if _flask(env, tree, "show", r, check=False).returncode]
    if not unknown:
        up = _flask(env, tree, "upgrade", "heads")
        return f"upgraded from {sorted(rows)} with the tree's own migrations ({'; '.join(_steps(up.stderr))})"
    # The tree is older: back with the bench tree's downgrades to each of its real heads, then
    # its own upgrade (a no-op unless a downgrade went further back than that head).
    # Each head of the tree's, its effective ones too (a core head another branch depends on is
    # recorded through the dependent, but the bench tree's newer core revisions must go); one
    # already passed by an earlier downgrade is skipped (it is no downgrade target any more).
    targets = sorted(_revisions(alembic_heads(env, tree)) - rows)
    base_copy = dict(base_env, LMS_DATABASE_URL=env["LMS_DATABASE_URL"])
    steps: list[str] = []
    for target in targets:
        done = _flask(base_copy, base, "downgrade", target, check=False)
        steps += _steps(done.stderr)
        if done.returncode and "not a valid downgrade target" not in done.stderr:
            raise SystemExit(f"downgrading the copy to {target} with {base.path}'s migrations failed:\n{done.stderr}")
    up = _flask(env, tree, "upgrade", "heads", check=False)
    if up.returncode:
        raise SystemExit(
            f"the copy, downgraded to {targets}, does not upgrade with {tree.path}'s migrations:\n{up.stderr}"
        )
    steps += _steps(up.stderr)
    return f"downgraded from {sorted(rows)} to {targets} with the bench tree's migrations ({'; '.join(steps)})"


def _steps(log: str) -> list[str]:
    """Alembic's "Running downgrade A -> B" / "Running upgrade A -> B" lines, shortened."""
    return [line.split("Running ", 1)[1].split(",", 1)[0] for line in log.splitlines() if "Running " in line]
