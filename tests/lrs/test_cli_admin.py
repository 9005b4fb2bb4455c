"""Client credentials: the CLI and the site-admin page."""

from __future__ import annotations

import re

from sqlalchemy import select

from lms_core.accounts.models import Role
from lms_core.extensions import db
from lrs.models import LrsClient
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.lrs.conftest import Xapi, statement


def test_cli_creates_client_that_works(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["lms", "lrs", "client", "create", "--name", "省平台", "--scopes", "all"])
    assert result.exit_code == 0, result.output
    key = re.search(r"key: (\S+)", result.output).group(1)
    secret = re.search(r"secret: (\S+)", result.output).group(1)
    x = Xapi(app.test_client(), key, secret)
    assert x.post("statements", json_body=statement()).status_code == 200
    row = db.session.execute(select(LrsClient).where(LrsClient.key == key)).scalar_one()
    assert row.secret_sha256 != secret and secret not in row.secret_sha256
    listed = runner.invoke(args=["lms", "lrs", "client", "list"])
    assert key in listed.output and secret not in listed.output
    assert runner.invoke(args=["lms", "lrs", "client", "disable", key]).exit_code == 0
    assert x.get("statements").status_code == 401
    rotated = runner.invoke(args=["lms", "lrs", "client", "rotate", key])
    assert rotated.exit_code == 0


def test_cli_rejects_unknown_scope(app):
    result = app.test_cli_runner().invoke(args=["lms", "lrs", "client", "create", "--name", "x", "--scopes", "root"])
    assert result.exit_code != 0 and "未知权限 root" in result.output


def test_site_admin_manages_clients_in_the_web_ui(app, client, tree):
    admin = UserFactory(username="siteadmin", org_unit=tree.city)
    grant(admin, Role.SITE_ADMIN, tree.city)
    db.session.commit()
    login(client, "siteadmin")
    page = client.get("/admin/lrs/clients")
    assert page.status_code == 200
    r = client.post("/admin/lrs/clients", data={"name": "课程平台", "scopes": ["statements/write", "state"]})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    secret = re.search(r"<code[^>]*>([A-Za-z0-9_\-]{40,})</code>", html).group(1)
    row = db.session.execute(select(LrsClient).where(LrsClient.name == "课程平台")).scalar_one()
    assert row.scopes == ["statements/write", "state"]
    x = Xapi(app.test_client(), row.key, secret)
    assert x.post("statements", json_body=statement()).status_code == 200
    assert client.post(f"/admin/lrs/clients/{row.id}/toggle").status_code == 302
    db.session.refresh(row)
    assert row.active is False


def test_org_admin_cannot_manage_clients(app, client, tree):
    org_admin = UserFactory(username="orgadmin", org_unit=tree.county_a)
    grant(org_admin, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    login(client, "orgadmin")
    assert client.get("/admin/lrs/clients").status_code == 403
    assert client.post("/admin/lrs/clients", data={"name": "x", "scopes": ["all"]}).status_code == 403
    assert db.session.execute(select(LrsClient)).first() is None


def test_auditor_reads_learner_record_within_org_scope(app, client, xapi, tree):
    learner = UserFactory(username="cadre0001", full_name="张三", org_unit=tree.village_a)
    outsider = UserFactory(username="cadre0002", full_name="李四", org_unit=tree.town_b)
    auditor = UserFactory(username="audit_a", org_unit=tree.county_a)
    grant(auditor, Role.AUDITOR, tree.county_a)
    db.session.commit()
    home = app.config["LMS_PLATFORM_URL"].rstrip("/")
    s = statement(actor={"objectType": "Agent", "name": "张三", "account": {"homePage": home, "name": "cadre0001"}})
    s["object"]["definition"] = {"name": {"zh-CN": "党史专题课"}}
    xapi.post("statements", json_body=s)
    login(client, "audit_a")
    page = client.get(f"/lrs/learners/{learner.id}/statements")
    assert page.status_code == 200
    assert "党史专题课" in page.get_data(as_text=True)
    assert client.get(f"/lrs/learners/{outsider.id}/statements").status_code == 403
    assert client.get("/lrs/learners/999999/statements").status_code == 404
