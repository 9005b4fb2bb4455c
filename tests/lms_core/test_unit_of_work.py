"""Who commits (lms_core/unit_of_work.py): the request through ``service_call``; services do not.

The source checks keep that sentence true: a new ``commit()`` in a core service,
or a view that rolls back by hand, fails here until it is listed with a reason
(or, better, moved into ``service_call``). A listed exception that disappears
fails too, so the lists only shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from flask import redirect, render_template_string
from sqlalchemy import select

from lms_core.extensions import db
from lms_core.orgs import services as orgs
from lms_core.orgs.models import OrgKind, OrgUnit
from lms_core.unit_of_work import ServiceError, json_call, service_call

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "lms_core"

#: Core functions outside views and CLI commands that commit, and why.
COMMITTING_SERVICES: dict[tuple[str, str], str] = {
    ("accounts/importer.py", "import_job"): "a background job: its own transaction, progress visible meanwhile",
    ("accounts/services.py", "authenticate"): "a refused sign-in is recorded even though the request fails",
    ("accounts/services.py", "token_for"): "touches last_used_at at most once a minute, outside any business change",
    ("accounts/token_principal.py", "_touch"): "the lean token sign-in's last_used_at, at most once a minute",
    ("db.py", "install_read_only_commit.do_rollback"): "the read-only guard's own raw connection",
    ("db.py", "install_utc_sessions._connected"): "a new connection's SET TIME ZONE, before any business work",
    ("demo/courses.py", "load_demo_courses"): "the demo loader (CLI), in steps",
    ("demo/loader.py", "load_demo"): "the demo loader (CLI)",
    ("enrolments/services.py", "materialize"): "an assignment's fan-out, committed in chunks",
    ("events/services.py", "_run_handler"): "after commit: each event handler in its own transaction",
    ("events/services.py", "_record_failure"): "after commit: a handler failure is recorded",
    ("events/services.py", "_resolve_failure"): "after commit: a replayed failure is marked resolved",
    ("jobs/services.py", "run_job"): "the job runner: each job in its own transaction",
    ("jobs/services.py", "claim_next"): "the job runner: a claim is committed before the job runs",
    ("jobs/services.py", "run_inline_jobs"): "the job runner (inline mode)",
    ("jobs/services.py", "commit"): "the business commit itself (COMMIT, then inline jobs)",
    ("media/services.py", "record_delivery"): "byte counters of a download: an upsert with retries, no business change",
    ("unit_of_work.py", "_transaction"): "the helper every view uses (service_call, json_call)",
    ("xapi/services.py", "_claim"): "the xAPI outbox worker claims rows before sending",
    ("xapi/services.py", "deliver_due"): "the xAPI outbox worker records each delivery",
    ("xapi/services.py", "make_due"): "CLI: makes waiting statements due again",
}

#: Functions outside views and CLI commands in the LRS and the plugins that commit or roll back
#: themselves, and why. Keyed by (path, function, "commit" | "rollback"); it may only shrink.
PLUGIN_SERVICES_OWNING_THEIR_TRANSACTION: dict[tuple[str, str, str], str] = {
    ("lrs/audit.py", "learner_statements", "commit"): "a page (route): commits the access-log row it writes",
    (
        "lrs/clients.py",
        "create_client",
        "commit",
    ): "client admin (CLI and admin page): the secret is shown once, after commit",
    ("lrs/clients.py", "rotate_secret", "commit"): "client admin: the new secret is shown once, after commit",
    ("lrs/clients.py", "set_active", "commit"): "client admin (CLI and admin page): one row, takes effect at once",
    (
        "lrs/documents.py",
        "_save",
        "commit",
    ): "xAPI document PUT/POST: retries a concurrent insert, owns its transaction",
    (
        "lrs/documents.py",
        "_save",
        "rollback",
    ): "xAPI document PUT/POST: retries a concurrent insert, owns its transaction",
    ("lrs/documents.py", "delete_all", "commit"): "xAPI document DELETE: the protocol endpoint's whole request",
    ("lrs/documents.py", "delete_one", "commit"): "xAPI document DELETE: the protocol endpoint's whole request",
    ("lrs/statements.py", "store", "commit"): "xAPI statement POST/PUT: retries a concurrent id, owns its transaction",
    (
        "lrs/statements.py",
        "store",
        "rollback",
    ): "xAPI statement POST/PUT: retries a concurrent id, owns its transaction",
    ("plugins/anti_idle/demo.py", "__init__", "commit"): "the demo loader (CLI), in steps",
    ("plugins/anti_idle/demo.py", "_hidden_tab_morning", "commit"): "the demo loader (CLI), in steps",
    ("plugins/anti_idle/demo.py", "answer", "commit"): "the demo loader (CLI), in steps",
    ("plugins/anti_idle/demo.py", "beat", "commit"): "the demo loader (CLI), in steps",
    ("plugins/anti_idle/demo.py", "check", "commit"): "the demo loader (CLI), in steps",
    ("plugins/anti_idle/demo.py", "load_demo", "commit"): "the demo loader (CLI)",
    ("plugins/anti_idle/demo_study.py", "_study_day", "commit"): "the demo loader (CLI), a person-day at a time",
    ("plugins/anti_idle/recompute.py", "recompute_since", "commit"): "calls the caller's commit= between chunks",
    ("plugins/credit_bank/claims.py", "import_roster", "commit"): "not yet converted: a roster import commits itself",
    ("plugins/credit_bank/claims.py", "review", "commit"): "not yet converted: rolls back the ledger's refusal itself",
    (
        "plugins/credit_bank/claims.py",
        "review",
        "rollback",
    ): "not yet converted: rolls back the ledger's refusal itself",
    ("plugins/credit_bank/claims.py", "submit", "commit"): "not yet converted: rolls back the ledger's refusal itself",
    (
        "plugins/credit_bank/claims.py",
        "submit",
        "rollback",
    ): "not yet converted: rolls back the ledger's refusal itself",
    ("plugins/credit_bank/demo.py", "_complete_course", "commit"): "the demo loader (CLI), in steps",
    ("plugins/credit_bank/demo.py", "_convert_to_credits", "commit"): "the demo loader (CLI), in steps",
    ("plugins/credit_bank/demo.py", "_convert_to_credits", "rollback"): "the demo loader: a refused conversion",
    ("plugins/credit_bank/group_commit.py", "_commit", "rollback"): "group commit: owns the batch's transaction",
    ("plugins/credit_bank/group_commit.py", "post", "rollback"): "group commit: owns the batch's transaction",
    (
        "plugins/credit_bank/inputs.py",
        "_hold_study_day",
        "commit",
    ): "an event handler (after commit): its own transaction",
    ("plugins/credit_bank/inputs.py", "_hold_study_day", "rollback"): "an event handler: void and new hold go together",
    ("plugins/credit_bank/ledger.py", "submit", "commit"): "retries a serialization failure: must own its transaction",
    (
        "plugins/credit_bank/ledger.py",
        "submit",
        "rollback",
    ): "retries a serialization failure: must own its transaction",
    (
        "plugins/credit_bank/policy.py",
        "add_version",
        "commit",
    ): "retries a concurrent version number: owns its transaction",
    (
        "plugins/credit_bank/policy.py",
        "add_version",
        "rollback",
    ): "retries a concurrent version number: owns its transaction",
    (
        "plugins/credit_bank/ranks.py",
        "record",
        "commit",
    ): "not yet converted: each rank change commits (callers roll back)",
    (
        "plugins/credit_bank/ranks.py",
        "follow_core_change",
        "rollback",
    ): "an event handler: a refused rank change is dropped",
    (
        "plugins/credit_bank/ranks.py",
        "follow_new_account",
        "rollback",
    ): "an event handler: a refused rank change is dropped",
    ("plugins/credit_bank/ranks.py", "import_rows", "rollback"): "a rank import, row by row: a bad row is dropped",
    ("plugins/credit_bank/services.py", "close_year", "commit"): "not yet converted: closing a year commits itself",
    ("plugins/credit_bank/transcripts/log.py", "checkpoint_now", "commit"): "the transparency log: a signed checkpoint",
    ("plugins/credit_bank/transcripts/log.py", "sync_journal", "commit"): "the transparency log, appended in batches",
    ("plugins/credit_bank/transcripts/services.py", "issue_transcript", "commit"): "not yet converted: commits itself",
    ("plugins/credit_bank/transcripts/services.py", "revoke", "commit"): "not yet converted: commits itself",
    ("plugins/credit_bank/transfer_api.py", "create_transfers", "commit"): "the lean transfer API: commits its batch",
    ("plugins/credit_bank/type_conversion.py", "convert_page", "commit"): "a page (route), not yet on service_call",
    ("plugins/credit_bank/type_conversion.py", "convert_page", "rollback"): "a page (route), not yet on service_call",
}

#: View modules (core, LRS and plugins) that still roll back by hand, each with its reason. Empty:
#: every view runs its change inside ``service_call`` (or ``json_call``); keep it so.
VIEWS_WITH_OWN_ROLLBACK: set[str] = set()


def _is_view_or_cli(path: Path) -> bool:
    return path.name in {"views.py", "cli.py", "console.py"} or path.name.endswith("_views.py")


def _calls(path: Path, method: str) -> set[str]:
    """Dotted names of the functions in ``path`` that call ``method()`` / ``x.method()``."""
    found: set[str] = set()
    stack: list[str] = []

    class Visitor(ast.NodeVisitor):
        def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
            stack.append(node.name)
            self.generic_visit(node)
            stack.pop()

        visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815

        def visit_Call(self, node: ast.Call) -> None:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name == method:
                found.add(".".join(stack) or "<module>")
            self.generic_visit(node)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _core_modules() -> list[Path]:
    return [p for p in sorted(CORE.rglob("*.py")) if "migrations" not in p.parts]


def test_core_services_do_not_commit_unless_listed() -> None:
    seen: set[tuple[str, str]] = set()
    for path in _core_modules():
        if _is_view_or_cli(path):
            continue
        rel = path.relative_to(CORE).as_posix()
        seen.update((rel, function) for function in _calls(path, "commit"))
    unlisted = sorted(seen - set(COMMITTING_SERVICES))
    assert not unlisted, "services commit; the view's service_call should: " + repr(unlisted)
    stale = sorted(set(COMMITTING_SERVICES) - seen)
    assert not stale, "no longer commit, remove from COMMITTING_SERVICES: " + repr(stale)


def _plugin_and_lrs_service_modules() -> list[Path]:
    paths = [p for package in (ROOT / "lrs", ROOT / "plugins") for p in sorted(package.rglob("*.py"))]
    skip = {"migrations", "tests"}
    return [p for p in paths if not skip & set(p.parts) and not _is_view_or_cli(p) and not p.name.endswith("cli.py")]


def test_plugin_and_lrs_services_do_not_commit_or_roll_back_unless_listed() -> None:
    seen: set[tuple[str, str, str]] = set()
    for path in _plugin_and_lrs_service_modules():
        rel = path.relative_to(ROOT).as_posix()
        for method in ("commit", "rollback"):
            seen.update((rel, function, method) for function in _calls(path, method))
    unlisted = sorted(seen - set(PLUGIN_SERVICES_OWNING_THEIR_TRANSACTION))
    assert not unlisted, "services commit/roll back; the view's service_call should: " + repr(unlisted)
    stale = sorted(set(PLUGIN_SERVICES_OWNING_THEIR_TRANSACTION) - seen)
    assert not stale, "no longer commit/roll back, remove from the list: " + repr(stale)


def test_the_plugin_service_guard_sees_a_new_commit(tmp_path: Path) -> None:
    module = tmp_path / "ranks.py"
    module.write_text("def change(s):\n    s.add(1)\n    s.commit()\n\ndef undo(s):\n    s.rollback()\n")
    assert _calls(module, "commit") == {"change"} and _calls(module, "rollback") == {"undo"}


def _view_modules() -> list[Path]:
    """The view modules of the core, the LRS and every plugin (the rule is the same for all)."""
    paths = [p for package in (CORE, ROOT / "lrs", ROOT / "plugins") for p in sorted(package.rglob("*.py"))]
    return [p for p in paths if "migrations" not in p.parts and _is_view_or_cli(p) and not p.name.endswith("cli.py")]


def test_the_view_guard_sees_plugins_and_the_lrs() -> None:
    seen = {p.relative_to(ROOT).as_posix() for p in _view_modules()}
    assert {"lrs/views.py", "plugins/anti_idle/learner_views.py", "plugins/credit_bank/admin_views.py"} <= seen


def test_views_roll_back_only_through_service_call() -> None:
    rolling = {p.relative_to(ROOT).as_posix() for p in _view_modules() if _calls(p, "rollback")}
    assert not rolling - VIEWS_WITH_OWN_ROLLBACK, "use lms_core.unit_of_work.service_call"
    assert not VIEWS_WITH_OWN_ROLLBACK - rolling, "converted: remove from VIEWS_WITH_OWN_ROLLBACK"


class _TooBig(ServiceError):
    status = 413


@pytest.fixture
def routes(app, tree):
    """Views built on service_call around a real service (orgs.create_unit)."""
    page = "<p>form</p>{% for m in get_flashed_messages() %}<p class=flash>{{ m }}</p>{% endfor %}"

    def create(refuse: str) -> object:
        with service_call(lambda: render_template_string(page)):
            orgs.create_unit(code="3601990", name="新单位", kind=OrgKind.COUNTY, parent=orgs.by_code("3601"))
            if refuse == "service":
                raise orgs.OrgError("单位已停用")
            if refuse == "too-big":
                raise _TooBig("文件太大")
            if refuse == "bug":
                raise RuntimeError("a bug")
        return "created"

    def create_then_back(refuse: str) -> object:
        with service_call(lambda: redirect("/back", 303)):
            orgs.create_unit(code="3601990", name="新单位", kind=OrgKind.COUNTY, parent=orgs.by_code("3601"))
            if refuse:
                raise orgs.OrgError("单位已停用")
        return "created"

    def create_inline(refuse: str) -> object:
        # The page shows the refusal itself (no flash), at the error's own status.
        with service_call(on_error=lambda exc: f"<p class=inline>{exc}</p>"):
            orgs.create_unit(code="3601990", name="新单位", kind=OrgKind.COUNTY, parent=orgs.by_code("3601"))
            if refuse == "too-big":
                raise _TooBig("文件太大")
            if refuse == "service":
                raise orgs.OrgError("单位已停用")
        return "created"

    def create_json(refuse: str) -> object:
        with json_call(on_error=lambda exc: {"message": str(exc)}):
            orgs.create_unit(code="3601990", name="新单位", kind=OrgKind.COUNTY, parent=orgs.by_code("3601"))
            if refuse == "too-big":
                raise _TooBig("文件太大")
        return {"ok": True}

    app.add_url_rule("/t/inline/<refuse>", "t_inline", create_inline, methods=["POST"])
    app.add_url_rule("/t/json/<refuse>", "t_json", create_json, methods=["POST"])
    app.add_url_rule("/t/create/<refuse>", "t_create", create, methods=["POST"])
    app.add_url_rule("/t/back/<refuse>", "t_back", create_then_back, methods=["POST"])
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def _units() -> list[str]:
    db.session.expire_all()
    return list(db.session.execute(select(OrgUnit.code).where(OrgUnit.code == "3601990")).scalars())


def test_success_commits(routes, client):
    assert client.post("/t/create/none").get_data(as_text=True) == "created"
    assert _units() == ["3601990"]


def test_service_error_rolls_back_flashes_and_answers_400(routes, client):
    response = client.post("/t/create/service")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "<p>form</p>" in html and "未保存：单位已停用" in html
    assert _units() == []


def test_an_error_with_its_own_status_keeps_it(routes, client):
    assert client.post("/t/create/too-big").status_code == 413
    assert _units() == []


def test_a_redirect_keeps_its_status(routes, client):
    response = client.post("/t/back/1")
    assert response.status_code == 303 and response.headers["Location"].endswith("/back")
    assert _units() == []


def test_other_errors_roll_back_and_propagate(routes, client):
    assert client.post("/t/create/bug").status_code == 500
    assert _units() == []


def test_on_error_builds_the_answer_from_the_error_without_a_flash(routes, client):
    response = client.post("/t/inline/service")
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and html == "<p class=inline>单位已停用</p>"
    assert client.post("/t/inline/too-big").status_code == 413
    assert _units() == []
    with client.session_transaction() as session:
        assert not session.get("_flashes")


def test_on_error_success_still_commits(routes, client):
    assert client.post("/t/inline/none").get_data(as_text=True) == "created"
    assert _units() == ["3601990"]


def test_json_call_on_error_body_and_status(routes, client):
    response = client.post("/t/json/too-big")
    assert response.status_code == 413 and response.get_json() == {"message": "文件太大"}
    assert _units() == []
    assert client.post("/t/json/none").get_json() == {"ok": True}
    assert _units() == ["3601990"]


def test_service_call_takes_render_or_on_error_not_both():
    with pytest.raises(TypeError), service_call(lambda: "", on_error=lambda exc: ""):
        pass
    with pytest.raises(TypeError), service_call():
        pass
