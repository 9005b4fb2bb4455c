"""Resetting a password, disabling an account and revoking a role ask first."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lms_core.accounts.models import Role, RoleAssignment, User, UserStatus
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory, grant


@pytest.fixture
def admin_client(app, tree):
    admin = UserFactory(username="county_admin", org_unit=tree.county_a)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    client = app.test_client()
    login(client, "county_admin")
    return client


@pytest.fixture
def cadre(tree):
    user = UserFactory(username="wangfang", full_name="王芳", org_unit=tree.village_a)
    grant(user, Role.AUDITOR, tree.town_a)
    db.session.commit()
    return user


def _fresh(user_id: int) -> User:
    db.session.expire_all()
    user = db.session.get(User, user_id)
    assert user is not None
    return user


def _confirm_form(html: str, action: str) -> None:
    assert 'id="confirm"' in html and "请确认" in html
    assert f'action="{action}"' in html and 'name="confirmed" value="1"' in html
    assert "取消" in html


def test_reset_password_asks_first(admin_client, cadre):
    before = cadre.password_hash
    path = f"/admin/users/{cadre.id}/reset-password"
    r = admin_client.post(path)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    _confirm_form(html, path)
    assert "王芳" in html and "重置" in html
    assert _fresh(cadre.id).password_hash == before
    assert admin_client.post(path, data={"confirmed": "1"}).status_code == 302
    assert _fresh(cadre.id).password_hash != before


def test_disable_asks_first_enable_does_not(admin_client, cadre):
    path = f"/admin/users/{cadre.id}/status"
    r = admin_client.post(path, data={"status": "disabled"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    _confirm_form(html, path)
    assert 'name="status" value="disabled"' in html  # the choice is carried through
    assert _fresh(cadre.id).status == UserStatus.ACTIVE
    assert admin_client.post(path, data={"status": "disabled", "confirmed": "1"}).status_code == 302
    assert _fresh(cadre.id).status == UserStatus.DISABLED
    assert admin_client.post(path, data={"status": "active"}).status_code == 302
    assert _fresh(cadre.id).status == UserStatus.ACTIVE


def test_revoke_asks_first(admin_client, cadre):
    assignment = db.session.execute(select(RoleAssignment).filter_by(user_id=cadre.id)).scalar_one()
    path = f"/admin/users/{cadre.id}/roles/{assignment.id}/revoke"
    r = admin_client.post(path)
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    _confirm_form(html, path)
    assert "城关镇" in html and "王芳" in html
    assert db.session.execute(select(RoleAssignment).filter_by(user_id=cadre.id)).first() is not None
    assert admin_client.post(path, data={"confirmed": "1"}).status_code == 302
    db.session.expire_all()
    assert db.session.execute(select(RoleAssignment).filter_by(user_id=cadre.id)).first() is None


def test_page_forms_carry_the_question_for_the_script(admin_client, cadre):
    html = admin_client.get(f"/admin/users/{cadre.id}").get_data(as_text=True)
    assert html.count("data-confirm=") == 3
    assert html.count('name="confirmed" value=""') == 3
    assert "/static/js/confirm.js" in html
    assert "onclick" not in html and "onsubmit" not in html  # no inline handlers (CSP)


def test_revoke_outside_area_is_403_before_asking(app, tree, admin_client):
    other = UserFactory(username="qs", org_unit=tree.town_b)
    grant(other, Role.AUDITOR, tree.town_b)
    db.session.commit()
    assignment = db.session.execute(select(RoleAssignment).filter_by(user_id=other.id)).scalar_one()
    assert admin_client.post(f"/admin/users/{other.id}/roles/{assignment.id}/revoke").status_code == 403
