"""Policy as data: site admins edit versioned parameters on a page; bad input gets a Chinese 400."""

from __future__ import annotations

import pytest

from lms_core.accounts.models import Role
from lms_core.events.models import Event
from lms_core.extensions import db
from plugins.anti_idle import policy, policy_forms
from plugins.anti_idle.models import Policy
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.plugins.anti_idle.test_checks import csrf_login

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])


@pytest.fixture
def admin(tree):
    user = UserFactory(username="admin", org_unit=tree.city, full_name="管理员")
    grant(user, Role.SITE_ADMIN, tree.city)
    db.session.commit()
    return user


def form_of(course_id=None, **changes):
    values = {n: policy_forms.display(n, policy.current_policy(course_id)[n]) for n in policy_forms.editable()}
    values.update({k: str(v) for k, v in changes.items()})
    if course_id:
        values["course"] = str(course_id)
    return values


def test_page_in_chinese_with_the_version_in_force(client, admin):
    login(client, "admin")
    html = client.get("/anti-idle/policy").get_data(as_text=True)
    assert "防挂机策略" in html and "心跳间隔" in html and "允许的播放倍速" in html
    assert 'id="policy-version">0<' in html and "内置默认值" in html
    assert "防挂机策略" in client.get("/admin/users").get_data(as_text=True), "linked from the admin menu"


def test_saving_makes_a_new_version_each_time(client, admin):
    login(client, "admin")
    r = client.post("/anti-idle/policy", data={**form_of(check_window_seconds=45), "note": "缩短作答时限"})
    assert r.status_code == 303
    first = policy.current_policy()
    assert first.version > 0 and first["check_window_seconds"] == 45
    r = client.post("/anti-idle/policy", data=form_of(allowed_rates="1, 1.25，1.5"))
    second = policy.current_policy()
    assert second.version > first.version and second["allowed_rates"] == [1.0, 1.25, 1.5]
    assert second["check_window_seconds"] == 45
    assert policy.policy_by_version(first.version)["allowed_rates"] == policy.DEFAULTS["allowed_rates"]
    assert db.session.query(Policy).count() == 2
    event = db.session.query(Event).filter_by(name="anti_idle.policy_changed").order_by(Event.id).first()
    assert event.payload["changes"] == {"check_window_seconds": 45} and event.payload["note"] == "缩短作答时限"
    html = client.get("/anti-idle/policy").get_data(as_text=True)
    assert "缩短作答时限" in html and f'id="policy-version">{second.version}<' in html


def test_a_course_gets_its_own_policy(client, admin, kit):
    login(client, "admin")
    r = client.post(
        "/anti-idle/policy",
        data=form_of(kit.course.id, check_first_after_seconds=30, check_min_gap_seconds=30, check_max_gap_seconds=30),
    )
    assert r.status_code == 303
    course_policy = policy.current_policy(kit.course.id)
    assert course_policy.course_id == kit.course.id and course_policy["check_min_gap_seconds"] == 30
    assert policy.current_policy()["check_min_gap_seconds"] == policy.DEFAULTS["check_min_gap_seconds"]
    html = client.get(f"/anti-idle/policy?course={kit.course.code}").get_data(as_text=True)
    assert kit.course.title in html and 'value="30"' in html
    assert client.get("/anti-idle/policy?course=NOPE").status_code == 404
    assert client.get("/anti-idle/policy?course=" + "9" * 40).status_code == 404


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("check_window_seconds", "abc", "不是数字"),
        ("check_window_seconds", "", "请输入数字"),
        ("check_window_seconds", "nan", "请输入数字"),
        ("check_window_seconds", "inf", "请输入数字"),
        ("check_window_seconds", "1e308", "必须在"),
        ("check_window_seconds", "-5", "必须在"),
        ("check_window_seconds", "12.5", "整数"),
        ("check_window_seconds", "3\x00", "请输入数字"),
        ("allowed_rates", "1, 16", "必须在"),
        ("allowed_rates", ",,", "逗号"),
        ("lesson_cap_ratio", "99999999999999999999", "必须在"),
        ("check_min_gap_seconds", "5000", "最短间隔不能大于最长间隔"),
    ],
)
def test_bad_values_get_a_chinese_400_and_store_nothing(client, admin, field, value, message):
    login(client, "admin")
    r = client.post("/anti-idle/policy", data=form_of(**{field: value}))
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert message in html and 'role="alert"' in html
    assert db.session.query(Policy).count() == 0


def test_unchanged_form_makes_no_version(client, admin):
    login(client, "admin")
    r = client.post("/anti-idle/policy", data=form_of())
    assert r.status_code == 400 and "没有修改" in r.get_data(as_text=True)
    assert db.session.query(Policy).count() == 0


def test_only_site_admins(client, tree, kit):
    auditor = UserFactory(username="auditor", org_unit=tree.county_a)
    grant(auditor, Role.AUDITOR, tree.county_a)
    db.session.commit()
    login(client, "auditor")
    assert client.get("/anti-idle/policy").status_code == 403
    assert client.post("/anti-idle/policy", data={"check_window_seconds": "30"}).status_code == 403
    assert db.session.query(Policy).count() == 0


@pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)
def test_saving_needs_the_csrf_token(client, admin):
    token = csrf_login(client, "admin")
    assert client.post("/anti-idle/policy", data=form_of(check_window_seconds=45)).status_code == 400
    assert db.session.query(Policy).count() == 0
    ok = client.post("/anti-idle/policy", data={**form_of(check_window_seconds=45), "csrf_token": token})
    assert ok.status_code == 303 and db.session.query(Policy).count() == 1


def test_admin_menu_links_follow_the_capabilities(client, admin, tree):
    """The plugin's admin-menu slot: the policy link for site admins, the review link for reviewers."""
    org_admin = UserFactory(username="orgadmin", org_unit=tree.county_a)
    grant(org_admin, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    policy_link = '<a href="/anti-idle/policy">防挂机策略</a>'
    review_link = '<a href="/anti-idle/review">待审核学时与申诉</a>'

    login(client, "admin")
    html = client.get("/admin/users").get_data(as_text=True)
    assert policy_link in html and review_link in html

    client.post("/logout")
    login(client, "orgadmin")
    html = client.get("/admin/users").get_data(as_text=True)
    assert review_link in html and policy_link not in html
