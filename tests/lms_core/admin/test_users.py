"""Admin pages for people: create, edit, disable, reset password, roles, list."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from lms_core.accounts.models import RankBand, Role, RoleAssignment, User, UserStatus
from lms_core.accounts.passwords import verify_password
from lms_core.events.models import Event
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory, grant


@pytest.fixture
def admin(tree):
    user = UserFactory(username="county_admin", full_name="管理员", org_unit=tree.county_a)
    grant(user, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    return user


@pytest.fixture
def admin_client(client, admin):
    client.set_cookie("lms_lang", "en")  # assertions below read English messages
    assert login(client, "county_admin").status_code == 302
    return client


@pytest.fixture
def cadre(tree):
    user = UserFactory(username="wangfang", full_name="王芳", org_unit=tree.village_a)
    db.session.commit()
    return user


def _users() -> int:
    return db.session.execute(select(func.count()).select_from(User)).scalar_one()


def _events(name: str) -> list[Event]:
    return list(db.session.execute(select(Event).filter_by(name=name)).scalars())


VALID = {
    "username": "zhaolei",
    "full_name": "赵磊",
    "org_code": "360121001",
    "rank_band": "township",
    "party_member": "y",
    "position": "副镇长",
    "phone": "13800000000",
    "password": "Chu-shi-2026",
}


def test_create_user(admin_client):
    r = admin_client.post("/admin/users/new", data=VALID)
    assert r.status_code == 302
    user = db.session.execute(select(User).filter_by(username="zhaolei")).scalar_one()
    assert (user.full_name, user.org_unit.code, user.rank_band, user.party_member, user.position) == (
        "赵磊",
        "360121001",
        RankBand.TOWNSHIP,
        True,
        "副镇长",
    )
    assert verify_password(user.password_hash, "Chu-shi-2026")
    assert [e.object_id for e in _events("user.created")] == [str(user.id)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"username": ""}, None),
        ({"full_name": ""}, None),
        ({"full_name": "名" * 101}, None),
        ({"username": "u" * 65}, None),
        ({"rank_band": "minister"}, None),
        ({"org_code": "nope"}, "Unknown org code"),
        ({"org_code": "360122001"}, "cannot add people"),  # the other county
        ({"password": "short"}, None),
        ({"username": "wangfang"}, "taken"),
    ],
)
def test_create_user_bad_input_is_400_and_writes_nothing(admin_client, cadre, change, message):
    before = _users()
    r = admin_client.post("/admin/users/new", data={**VALID, **change})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert 'class="error"' in html
    if message:
        assert message in html
    assert _users() == before
    assert _events("user.created") == []


def test_edit_user(admin_client, cadre):
    r = admin_client.post(
        f"/admin/users/{cadre.id}",
        data={
            "username": "ignored",
            "full_name": "王芳芳",
            "org_code": "360121001",
            "rank_band": "county_and_above",
            "position": "书记",
        },
    )
    assert r.status_code == 302
    db.session.expire_all()
    user = db.session.get(User, cadre.id)
    assert user.username == "wangfang"  # usernames are not editable
    assert (user.full_name, user.org_unit.code, user.rank_band, user.position, user.party_member) == (
        "王芳芳",
        "360121001",
        RankBand.COUNTY_AND_ABOVE,
        "书记",
        False,
    )
    (event,) = _events("user.updated")
    assert event.payload["before"]["full_name"] == "王芳" and event.payload["after"]["org"] == "360121001"


def test_edit_user_bad_input_changes_nothing(admin_client, cadre):
    for data in (
        {"full_name": "", "org_code": "360121001", "rank_band": "general"},
        {"full_name": "x", "org_code": "360121001", "rank_band": "boss"},
        {"full_name": "x", "org_code": "nope", "rank_band": "general"},
    ):
        assert admin_client.post(f"/admin/users/{cadre.id}", data=data).status_code == 400
    db.session.expire_all()
    assert db.session.get(User, cadre.id).full_name == "王芳"
    assert _events("user.updated") == []


def test_disable_ends_sessions_and_enable_restores(admin_client, app, cadre):
    browser = app.test_client()
    login(browser, "wangfang")
    assert browser.get("/dashboard").status_code == 200
    disable = {"status": "disabled", "confirmed": "1"}
    assert admin_client.post(f"/admin/users/{cadre.id}/status", data=disable).status_code == 302
    assert browser.get("/dashboard").status_code == 302  # signed out at once
    assert login(browser, "wangfang").status_code == 403
    db.session.expire_all()
    assert db.session.get(User, cadre.id).status == UserStatus.DISABLED
    assert admin_client.post(f"/admin/users/{cadre.id}/status", data={"status": "active"}).status_code == 302
    assert login(browser, "wangfang").status_code == 302


def test_status_bad_input(admin_client, admin, cadre):
    assert admin_client.post(f"/admin/users/{cadre.id}/status", data={"status": "retired"}).status_code == 400
    assert admin_client.post(f"/admin/users/{cadre.id}/status", data={}).status_code == 400
    r = admin_client.post(f"/admin/users/{admin.id}/status", data={"status": "disabled", "confirmed": "1"})
    assert r.status_code == 400  # not oneself: the page again, with the reason
    assert "Not saved: " in r.get_data(as_text=True)  # this admin reads English
    db.session.expire_all()
    assert db.session.get(User, admin.id).status == UserStatus.ACTIVE
    assert db.session.get(User, cadre.id).status == UserStatus.ACTIVE


def test_reset_password_forces_a_change_at_next_sign_in(admin_client, app, cadre):
    browser = app.test_client()
    login(browser, "wangfang")
    r = admin_client.post(f"/admin/users/{cadre.id}/reset-password", data={"confirmed": "1"}, follow_redirects=True)
    html = r.get_data(as_text=True)
    match = re.search(r"([A-Za-z0-9_\-]{12}-1a)", html)
    assert match, "the temporary password is shown once to the admin"
    temporary = match.group(1)
    assert browser.get("/dashboard").status_code == 302  # the old session ended
    assert login(browser, "wangfang", PASSWORD).status_code == 401  # the old password is gone
    r = login(browser, "wangfang", temporary)
    assert r.status_code == 302 and r.headers["Location"].endswith("/account/password")
    # every other page sends them back to the password form until they choose one
    r = browser.get("/dashboard")
    assert r.status_code == 302 and r.headers["Location"].endswith("/account/password")
    assert browser.get("/api/v1/me").status_code == 403
    r = browser.post(
        "/account/password", data={"current": temporary, "new": "Wo-de-mi-ma-9", "confirm": "Wo-de-mi-ma-9"}
    )
    assert r.status_code == 302
    assert browser.get("/dashboard").status_code == 200
    db.session.expire_all()
    assert db.session.get(User, cadre.id).must_change_password is False
    assert len(_events("user.password_reset")) == 1


def test_grant_and_revoke_roles(admin_client, cadre, tree):
    r = admin_client.post(f"/admin/users/{cadre.id}/roles", data={"role": "auditor", "org_code": "360121001"})
    assert r.status_code == 302
    assignment = db.session.execute(select(RoleAssignment).filter_by(user_id=cadre.id)).scalar_one()
    assert assignment.role == Role.AUDITOR and assignment.org_unit_id == tree.town_a.id
    # granting the same role twice keeps one row
    admin_client.post(f"/admin/users/{cadre.id}/roles", data={"role": "auditor", "org_code": "360121001"})
    assert len(db.session.execute(select(RoleAssignment).filter_by(user_id=cadre.id)).all()) == 1
    page = admin_client.get(f"/admin/users/{cadre.id}").get_data(as_text=True)
    assert "auditor" in page
    r = admin_client.post(f"/admin/users/{cadre.id}/roles/{assignment.id}/revoke", data={"confirmed": "1"})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.execute(select(RoleAssignment).filter_by(user_id=cadre.id)).first() is None
    assert [e.payload["role"] for e in _events("role.granted")] == ["auditor"]
    assert [e.payload["role"] for e in _events("role.revoked")] == ["auditor"]
    assert admin_client.post(f"/admin/users/{cadre.id}/roles/987/revoke").status_code == 404


@pytest.mark.parametrize(
    "data",
    [
        {"role": "emperor", "org_code": "360121"},
        {"role": "auditor", "org_code": "nope"},
        {"role": "auditor", "org_code": ""},
    ],
)
def test_grant_bad_input_is_400(admin_client, cadre, data):
    r = admin_client.post(f"/admin/users/{cadre.id}/roles", data=data)
    assert r.status_code == 400
    assert db.session.execute(select(RoleAssignment).filter_by(user_id=cadre.id)).first() is None


@pytest.mark.app_config(LMS_PAGE_SIZE=5)
def test_list_search_and_pagination(admin_client, tree):
    for n in range(12):
        UserFactory(username=f"cadre{n:02d}", full_name=f"李{n:02d}", org_unit=tree.town_a)
    UserFactory(username="outsider", full_name="李外", org_unit=tree.town_b)
    db.session.commit()
    page1 = admin_client.get("/admin/users?q=cadre").get_data(as_text=True)
    assert re.findall(r">(cadre\d\d)</a>", page1) == [f"cadre{n:02d}" for n in range(5)]
    assert "page=2" in page1
    page3 = admin_client.get("/admin/users?q=cadre&page=3").get_data(as_text=True)
    assert re.findall(r">(cadre\d\d)</a>", page3) == ["cadre10", "cadre11"]
    assert "page=4" not in page3
    by_name = admin_client.get("/admin/users?q=李07").get_data(as_text=True)
    assert re.findall(r">(cadre\d\d)</a>", by_name) == ["cadre07"]
    # the search never reaches outside the admin's county
    assert "outsider" not in admin_client.get("/admin/users?q=李").get_data(as_text=True)
    by_org = admin_client.get("/admin/users?org=360121001001").get_data(as_text=True)
    assert re.findall(r">(cadre\d\d)</a>", by_org) == []
    r = admin_client.get("/admin/users?org=nope")
    assert r.status_code == 200 and "nope" in r.get_data(as_text=True)
    assert admin_client.get("/admin/users?page=-3").status_code == 200
    assert admin_client.get("/admin/users?page=abc").status_code == 200


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_admin_posts_need_the_csrf_token(client, admin, cadre):
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": "county_admin", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302
    before = cadre.password_hash
    for path, data in (
        (f"/admin/users/{cadre.id}/reset-password", {}),
        (f"/admin/users/{cadre.id}/status", {"status": "disabled"}),
        (f"/admin/users/{cadre.id}/roles", {"role": "auditor", "org_code": "360121"}),
        ("/admin/users/new", VALID),
    ):
        assert client.post(path, data=data).status_code == 400, path
    db.session.expire_all()
    fresh = db.session.get(User, cadre.id)
    assert fresh.password_hash == before and fresh.status == UserStatus.ACTIVE and not fresh.roles
    # with the token (as the page's forms send it) the same request works
    page = client.get(f"/admin/users/{cadre.id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
    r = client.post(
        f"/admin/users/{cadre.id}/status", data={"status": "disabled", "csrf_token": token, "confirmed": "1"}
    )
    assert r.status_code == 302


def test_each_view_of_a_person_is_logged_for_them(admin_client, admin, cadre):
    """Issue 12, part 8: the user detail page is a look at the person's record."""
    assert admin_client.get(f"/admin/users/{cadre.id}").status_code == 200
    assert admin_client.get(f"/admin/users/{admin.id}").status_code == 200  # one's own page: not logged
    admin_client.post(f"/admin/users/{cadre.id}", data={"full_name": "", "org_code": "NOPE"})  # a refused edit
    seen = _events("record.viewed")
    assert [(e.actor_id, e.object_id, e.payload["what"]) for e in seen] == [(admin.id, str(cadre.id), "profile")]
    admin_client.delete_cookie("lms_lang")
    admin_client.post("/logout")
    assert login(admin_client, "wangfang").status_code == 302
    record = admin_client.get("/record").get_data(as_text=True)
    assert "人员信息（用户管理页）" in record and "管理员" in record  # the cadre sees who looked, in Chinese
