"""The ``flask lms users`` commands administrators use on the server."""

from __future__ import annotations

from sqlalchemy import func, select

from lms_core.accounts.models import Role, RoleAssignment, User
from lms_core.accounts.passwords import verify_password
from lms_core.extensions import db


def _users() -> int:
    return db.session.execute(select(func.count()).select_from(User)).scalar_one()


def _invoke(app, *args: str, stdin: str | None = None):
    return app.test_cli_runner().invoke(args=["lms", "users", *args], input=stdin)


def test_create_user_with_role(app, tree):
    result = _invoke(
        app,
        "create",
        "--username",
        "zzb",
        "--full-name",
        "组织部",
        "--org",
        "3601",
        "--role",
        "org_admin",
        "--role",
        "auditor",
        "--password",
        "Zu-zhi-bu-2026",
    )
    assert result.exit_code == 0, result.output
    user = db.session.execute(select(User).filter_by(username="zzb")).scalar_one()
    assert verify_password(user.password_hash, "Zu-zhi-bu-2026")
    roles = {
        (a.role, a.org_unit.code)
        for a in db.session.execute(select(RoleAssignment).filter_by(user_id=user.id)).scalars()
    }
    assert roles == {(Role.ORG_ADMIN, "3601"), (Role.AUDITOR, "3601")}


def test_create_user_bad_input_writes_nothing(app, tree):
    before = _users()
    cases = [
        ("--org", "nope", "--password", "Zu-zhi-bu-2026"),  # unknown org
        ("--org", "3601", "--password", "short"),  # weak password
        ("--org", "3601", "--password", "Zu-zhi-bu-2026", "--role", "emperor"),  # unknown role
    ]
    for extra in cases:
        result = _invoke(app, "create", "--username", "zzb", "--full-name", "组织部", *extra)
        assert result.exit_code != 0, extra
        assert "Error" in result.output, result.output
        assert "Traceback" not in result.output
        db.session.rollback()
    assert _users() == before


def test_password_grant_and_token(app, client, tree):
    _invoke(app, "create", "--username", "hr", "--full-name", "人事", "--org", "360121", "--password", "Ren-shi-2026")
    result = _invoke(app, "set-password", "hr", "--password", "Xin-mi-ma-2026")
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    user = db.session.execute(select(User).filter_by(username="hr")).scalar_one()
    assert verify_password(user.password_hash, "Xin-mi-ma-2026")
    assert _invoke(app, "set-password", "hr", "--password", "weak").exit_code != 0
    assert _invoke(app, "set-password", "nobody", "--password", "Xin-mi-ma-2026").exit_code != 0
    result = _invoke(app, "grant", "hr", "auditor", "360121")
    assert result.exit_code == 0 and "granted auditor over 360121 to hr" in result.output
    assert _invoke(app, "grant", "hr", "auditor", "nope").exit_code != 0
    result = _invoke(app, "token", "hr", "--name", "hr-sync", "--scope", "read")
    assert result.exit_code == 0
    token = result.output.strip()
    assert token.startswith("lms_")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.get_json()["username"] == "hr"
    assert {"role": "auditor", "scope": tree.county_a.path} in me.get_json()["roles"]
