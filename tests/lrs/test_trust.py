"""LRS trust: who may void what, credential changes seen by every worker, read scopes (issue 10, 13/14/16)."""

from __future__ import annotations

import contextvars

import pytest
from sqlalchemy import select

from lms_core.extensions import db
from lrs.models import LrsClient
from tests.conftest import IsolatedClient, make_test_config
from tests.lrs.conftest import Xapi, make_client, new_id, statement

VOIDED = "http://adlnet.gov/expapi/verbs/voided"


def _voiding(target: str) -> dict:
    return statement(
        actor={"mbox": "mailto:admin@example.com"}, verb=VOIDED, object={"objectType": "StatementRef", "id": target}
    )


# Voiding (item 13) --------------------------------------------------------------------


def test_a_writer_cannot_void_another_credentials_statement(app):
    platform = make_client(app, ("statements/write", "statements/read/mine"), "platform")
    intruder = make_client(app, ("statements/write", "statements/read"), "intruder")
    sid = platform.post("statements", json_body=statement()).get_json()[0]
    r = intruder.post("statements", json_body=_voiding(sid))
    assert r.status_code == 403 and "void only statements it stored" in r.get_json()["error"]
    assert platform.get("statements", statementId=sid).status_code == 200  # not voided
    # Nor in a batch that also carries innocent statements: the batch is refused whole.
    innocent = new_id()
    assert intruder.post("statements", json_body=[statement(id=innocent), _voiding(sid)]).status_code == 403
    assert intruder.get("statements", statementId=innocent).status_code == 404
    # Nor ahead of the target (the platform's later statement must not arrive voided).
    future = new_id()
    assert intruder.post("statements", json_body=_voiding(future)).status_code == 403
    assert platform.post("statements", json_body=statement(id=future)).status_code == 200
    assert platform.get("statements", statementId=future).status_code == 200


def test_a_writer_voids_its_own_statements(app):
    writer = make_client(app, ("statements/write", "statements/read/mine"), "writer")
    sid = writer.post("statements", json_body=statement()).get_json()[0]
    assert writer.post("statements", json_body=_voiding(sid)).status_code == 200
    assert writer.get("statements", voidedStatementId=sid).status_code == 200
    both = new_id()
    assert writer.post("statements", json_body=[statement(id=both), _voiding(both)]).status_code == 200
    assert writer.get("statements", voidedStatementId=both).status_code == 200


def test_scope_all_voids_anything(app):
    platform = make_client(app, ("statements/write",), "platform")
    admin = make_client(app, ("all",), "admin")
    sid = platform.post("statements", json_body=statement()).get_json()[0]
    assert admin.post("statements", json_body=_voiding(sid)).status_code == 200
    assert admin.get("statements", voidedStatementId=sid).status_code == 200


# Rotation and disabling in every worker (item 14) ---------------------------------------


@pytest.fixture
def second_worker(database_url, tmp_path):
    """Another app instance on the same database: what a second gunicorn worker is."""
    from tests.lms_core.apps import build_app

    other = build_app(database_url, tmp_path / "w2", LMS_PLUGINS=["lrs"])
    yield other
    with other.app_context():
        db.engine.dispose()


def _status(worker, key: str, secret: str) -> int:
    def call() -> int:
        with worker.app_context():
            return int(Xapi(worker.test_client(), key, secret).get("statements").status_code)

    return contextvars.Context().run(call)


def test_rotation_takes_effect_at_once_in_every_worker(app, second_worker):
    from lrs import clients

    xapi = make_client(app)
    # Both workers have just accepted the credential (the old code cached it for 30 s here).
    assert _status(app, xapi.key, xapi.secret) == 200
    assert _status(second_worker, xapi.key, xapi.secret) == 200
    row = db.session.execute(select(LrsClient).where(LrsClient.key == xapi.key)).scalar_one()
    new_secret = clients.rotate_secret(row)
    for worker in (app, second_worker):
        assert _status(worker, xapi.key, xapi.secret) == 401
        assert _status(worker, xapi.key, new_secret) == 200


def test_disabling_and_enabling_take_effect_at_once_in_every_worker(app, second_worker):
    from lrs import clients

    xapi = make_client(app)
    assert _status(second_worker, xapi.key, xapi.secret) == 200
    row = db.session.execute(select(LrsClient).where(LrsClient.key == xapi.key)).scalar_one()
    clients.set_active(row, False)
    assert _status(second_worker, xapi.key, xapi.secret) == 401
    assert _status(app, xapi.key, xapi.secret) == 401
    clients.set_active(row, True)
    assert _status(second_worker, xapi.key, xapi.secret) == 200


# Who may read /activities and /agents (item 16; docs/lrs.md, "Permissions") --------------


@pytest.mark.parametrize(
    "scope, allowed",
    [
        ("all", True),
        ("all/read", True),
        ("statements/read", True),
        ("define", True),
        ("profile", True),
        ("state", True),
        ("statements/read/mine", False),
        ("statements/write", False),
    ],
)
def test_activities_and_agents_read_scopes(app, scope, allowed):
    client = make_client(app, (scope,), scope)
    expected = 200 if allowed else 403
    assert client.get("activities", activityId="http://example.com/activities/1").status_code == expected
    assert client.get("agents", agent={"mbox": "mailto:learner@example.com"}).status_code == expected


# The auditors' view marks statements from other credentials (item 13) -------------------


def test_auditor_sees_who_recorded_each_statement(app, client, tree, tmp_path):
    import json

    from lms_core.accounts.models import Role
    from tests.conftest import login
    from tests.factories import UserFactory, grant

    learner = UserFactory(username="cadre0001", full_name="张三", org_unit=tree.village_a)
    auditor = UserFactory(username="audit_a", org_unit=tree.county_a)
    grant(auditor, Role.AUDITOR, tree.county_a)
    db.session.commit()
    platform = make_client(app, ("statements/write", "statements/read/mine"), "LMS core (xAPI emitter)")
    intruder = make_client(app, ("statements/write",), "外部系统")
    saved = tmp_path / "xapi_credentials.json"
    saved.write_text(json.dumps({"key": platform.key, "secret": platform.secret}))
    app.config["LMS_XAPI_CREDENTIALS_FILE"] = str(saved)
    home = app.config["LMS_PLATFORM_URL"].rstrip("/")
    actor = {"objectType": "Agent", "name": "张三", "account": {"homePage": home, "name": "cadre0001"}}
    mine = statement(actor=actor, activity="http://example.com/activities/platform")
    mine["object"]["definition"] = {"name": {"zh-CN": "平台课程"}}
    forged = statement(
        actor=actor,
        activity="http://example.com/activities/forged",
        authority={
            "objectType": "Agent",
            "name": "LMS core (xAPI emitter)",
            "account": {"homePage": "https://lrs.invalid/clients", "name": platform.key},
        },
    )
    forged["object"]["definition"] = {"name": {"zh-CN": "伪造课程"}}
    assert platform.post("statements", json_body=mine).status_code == 200
    assert intruder.post("statements", json_body=forged).status_code == 200  # the LRS replaces the authority
    login(client, "audit_a")
    html = client.get(f"/lrs/learners/{learner.id}/statements").get_data(as_text=True)
    rows = {name: row for row in html.split("<tr>")[1:] for name in ("平台课程", "伪造课程") if name in row}
    assert "LMS core (xAPI emitter)" in rows["平台课程"] and "非本平台记录" not in rows["平台课程"]
    assert "外部系统" in rows["伪造课程"] and "非本平台记录" in rows["伪造课程"]


# The base URL with or without a trailing slash (item 16) ---------------------------------


@pytest.mark.parametrize("standalone", [False, True])
def test_a_double_slash_after_the_base_is_served_not_redirected(app, database_url, tmp_path, standalone):
    xapi = make_client(app)
    other = None
    if standalone:
        from lrs import create_app as create_lrs

        other = create_lrs(make_test_config(database_url, tmp_path / "lrs"))
        other.test_client_class = IsolatedClient
        xapi = Xapi(other.test_client(), xapi.key, xapi.secret)
    try:
        r = xapi.client.post("/xapi//statements", json=statement(), headers=xapi.headers())
        assert r.status_code == 200, r.status_code
        assert xapi.client.get("/xapi//statements", headers=xapi.headers()).get_json()["statements"]
        assert xapi.client.get("/xapi//about").status_code == 200
    finally:
        if other is not None:
            with other.app_context():
                db.engine.dispose()
