"""The ingest bench's variants from other code trees (bench/code_trees.py): the ``--variant``
argument, the temporary worktree of ``@rev:``, and the child's check that a tree's server runs
that tree's code (not the shared venv's editable install of /work/main)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.bench.bench_modules import ROOT, load

load("common")
code_trees = load("code_trees")


def test_a_variant_without_a_tree_is_settings_on_the_bench_tree() -> None:
    v = code_trees.parse_variant("py5ms=LMS_BEAT_SWITCH_INTERVAL_US=5000,WORKERS=3", 2)
    assert (v.name, v.env, v.workers, v.tree) == ("py5ms", {"LMS_BEAT_SWITCH_INTERVAL_US": "5000"}, 3, "")
    assert code_trees.parse_variant("base=", 2) == code_trees.Variant("base", {}, 2, "")


@pytest.mark.parametrize(
    ("text", "tree"),
    [("old=@rev:main~3", "rev:main~3"), ("old=@/work/wt/base", "/work/wt/base"), ("o=@rev:b3ba3ef,A=1", "rev:b3ba3ef")],
)
def test_a_first_at_item_is_the_variants_tree(text: str, tree: str) -> None:
    v = code_trees.parse_variant(text, 2)
    assert v.tree == tree
    assert v.env == ({"A": "1"} if text.endswith("A=1") else {})


@pytest.mark.parametrize(
    "text",
    ["=A=1", "noequals", "x=A", "x=A=1,@rev:main", "x=@rev:a,@rev:b", "x=@", "x=@rev:", "x=@/t,=1"],
)
def test_malformed_variants_are_refused(text: str) -> None:
    with pytest.raises(SystemExit):
        code_trees.parse_variant(text, 2)


def test_the_tree_goes_first_on_pythonpath() -> None:
    tree = code_trees.Tree(Path("/x/tree"), "abc")
    assert code_trees.tree_env({"PYTHONPATH": "/y"}, tree)["PYTHONPATH"] == "/x/tree:/y"
    assert code_trees.tree_env({}, tree)["PYTHONPATH"] == "/x/tree"


def _fake_tree(path: Path, packages: tuple[str, ...] = code_trees.PACKAGES) -> Path:
    for name in packages:
        (path / name).mkdir(parents=True)
        (path / name / "__init__.py").write_text("")
    return path


def test_a_tree_with_all_its_packages_passes_the_childs_check(tmp_path: Path) -> None:
    tree = code_trees.Tree(_fake_tree(tmp_path / "tree"), "abc")
    env = code_trees.tree_env({"PATH": "/usr/bin:/bin"}, tree)
    found = code_trees.imported_from(env, tree.path)
    assert {m: Path(p) for m, p in found.items()} == {m: tree.path / m for m in code_trees.PACKAGES}
    code_trees.check_tree(env, tree)


def test_a_package_the_tree_lacks_comes_from_elsewhere_and_fails_the_check(tmp_path: Path) -> None:
    # No lrs/ in the tree: the child finds the installed one (the venv's editable install).
    tree = code_trees.Tree(_fake_tree(tmp_path / "tree", ("lms_core", "plugins")), "abc")
    with pytest.raises(SystemExit, match="lrs"):
        code_trees.check_tree(code_trees.tree_env({}, tree), tree)


def test_this_trees_own_server_runs_this_trees_code() -> None:
    tree = code_trees.open_tree("")
    assert tree.path == ROOT
    code_trees.check_tree(code_trees.tree_env({}, tree), tree)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()  # noqa: S603, S607


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small git repository standing in for the bench's own (``code_trees.REPO``)."""
    path = _fake_tree(tmp_path / "repo")
    _git(path, "init", "-q")
    _git(path, "add", ".")
    _git(path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    (path / "lms_core" / "__init__.py").write_text("TWO = 2\n")
    _git(path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two")
    monkeypatch.setattr(code_trees, "REPO", path)
    return path


def test_rev_makes_a_worktree_of_that_commit_and_removes_it_afterwards(repo: Path) -> None:
    first = _git(repo, "rev-parse", "HEAD~1")
    with code_trees.trees(["rev:HEAD~1", "", "rev:HEAD~1"]) as trees:
        made = trees["rev:HEAD~1"]
        assert made.made and made.commit == first[:10]
        assert _git(made.path, "rev-parse", "HEAD") == first
        assert (made.path / "lms_core" / "__init__.py").read_text() == ""  # the older commit's file
        assert trees[""] == code_trees.Tree(repo, _git(repo, "rev-parse", "--short=10", "HEAD"))
        code_trees.check_tree(code_trees.tree_env({}, made), made)
    assert not made.path.exists()
    assert _git(repo, "worktree", "list").count("\n") == 0  # the repository's own only


def test_a_tree_with_uncommitted_changes_says_so(repo: Path) -> None:
    (repo / "lms_core" / "__init__.py").write_text("CHANGED = 1\n")
    assert code_trees.open_tree("").commit.endswith("+dirty")


@pytest.mark.parametrize("spec", ["rev:no-such-commit", "/no/such/tree"])
def test_an_unknown_tree_is_refused(repo: Path, spec: str) -> None:
    with pytest.raises(SystemExit):
        code_trees.open_tree(spec)


def test_the_heads_revisions_are_read_effective_ones_too() -> None:
    lines = ("0013anti_idle_beat_json (anti_idle) (head)", "0031ledgerfk (core) (effective head)")
    assert code_trees._revisions(lines) == {"0013anti_idle_beat_json", "0031ledgerfk"}  # noqa: SLF001
