"""The real pages in Chromium: sign-in in Chinese, language switch, mobile, admin.

Screenshots of the key pages are written to the test's ``tmp_path`` so that a
person (or a reviewer) can look at them after a run.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from lms_core.accounts.models import Role, User
from lms_core.courses.models import Course, Lesson, LessonKind, Section
from lms_core.enrolments.models import Enrolment
from lms_core.extensions import db
from tests.browser.helpers import expect, horizontal_overflow, sign_in
from tests.factories import UserFactory, grant

pytestmark = [pytest.mark.browser, pytest.mark.backends("postgresql"), pytest.mark.app_config(WTF_CSRF_ENABLED=True)]


@pytest.fixture
def learner(tree: Any) -> User:
    user = UserFactory(username="liming", full_name="李明", org_unit=tree.village_a, position="村党支部书记")
    course = Course(code="DJ01", title="党的二十届三中全会精神专题", published=True, owner_unit_id=tree.city.id)
    section = Section(course=course, title="第一章", position=0)
    for i in range(4):
        db.session.add(
            Lesson(section=section, course=course, title=f"第{i + 1}讲", kind=LessonKind.DOCUMENT, position=i)
        )
    db.session.add(course)
    db.session.flush()
    db.session.add(Enrolment(user_id=user.id, course_id=course.id, registration=str(uuid.uuid4())))
    db.session.commit()
    return user


@pytest.fixture
def city_admin(tree: Any) -> User:
    admin = UserFactory(username="zzb", full_name="组织部管理员", org_unit=tree.city)
    grant(admin, Role.ORG_ADMIN, tree.city)
    for i in range(3):
        UserFactory(username=f"nl{i:03d}", full_name=f"南岭干部{i}", org_unit=tree.town_a)
    UserFactory(username="qs000", full_name="青山干部", org_unit=tree.county_b)
    db.session.commit()
    return admin


def test_learner_signs_in_in_chinese_and_switches_language(page: Any, learner: User, tmp_path: Any) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text("登录")
    page.screenshot(path=str(tmp_path / "login-zh.png"), full_page=True)

    sign_in(page, "liming")
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.locator("h1")).to_have_text("欢迎，李明")
    expect(page.locator("nav.nav")).to_contain_text("我的学习")
    expect(page.locator("nav.nav")).to_contain_text("退出")
    expect(page.locator("#my-courses")).to_contain_text("党的二十届三中全会精神专题")
    expect(page.locator("#my-courses .progress")).to_be_visible()
    page.screenshot(path=str(tmp_path / "dashboard-zh.png"), full_page=True)

    page.get_by_role("link", name="English").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Welcome, 李明")
    nav = page.locator("nav.nav")
    expect(nav).to_contain_text("My study")
    expect(nav.get_by_role("button", name="Sign out")).to_be_visible()
    page.screenshot(path=str(tmp_path / "dashboard-en.png"), full_page=True)
    db.session.expire_all()
    assert db.session.get(User, learner.id).locale == "en"  # remembered for the next device too

    page.reload()  # the choice sticks (cookie), not just for one response
    expect(page.locator("h1")).to_have_text("Welcome, 李明")

    page.get_by_role("link", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text("欢迎，李明")
    expect(page.locator("nav.nav")).to_contain_text("我的学习")

    page.locator("nav.nav").get_by_role("button", name="退出").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto("/dashboard")  # signed out means signed out
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_wrong_password_shows_chinese_error_and_stays_signed_out(page: Any, learner: User) -> None:
    sign_in(page, "liming", "not-the-password")
    expect(page.locator(".flash-error")).to_have_text("用户名或密码错误。")
    expect(page.locator("input[name=username]")).to_have_value("liming")
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/login"))


def test_mobile_layout_has_nav_toggle_and_no_horizontal_overflow(
    mobile_page: Any, city_admin: User, tmp_path: Any
) -> None:
    page = mobile_page
    page.goto("/login")
    assert horizontal_overflow(page) == 0
    sign_in(page, "zzb")
    expect(page).to_have_url(re.compile(r"/dashboard$"))

    toggle = page.locator("label.nav-toggle-label")
    nav = page.locator("nav.nav")
    expect(toggle).to_be_visible()
    expect(nav).to_be_hidden()  # collapsed until asked for
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / "mobile-dashboard.png"), full_page=True)

    toggle.click()
    expect(nav).to_be_visible()
    expect(nav.get_by_role("link", name="我的学习")).to_be_visible()
    expect(nav.get_by_role("button", name="退出")).to_be_visible()
    page.screenshot(path=str(tmp_path / "mobile-nav-open.png"), full_page=True)
    assert horizontal_overflow(page) == 0

    # Wide admin tables scroll inside their own box, not the page.
    nav.get_by_role("link", name="系统管理").click()
    page.goto("/admin/users")
    expect(page.locator("table.table")).to_contain_text("南岭干部0")
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / "mobile-users.png"), full_page=True)


def test_admin_navigates_org_tree_and_user_list(page: Any, city_admin: User, tmp_path: Any) -> None:
    sign_in(page, "zzb")
    page.locator("nav.nav").get_by_role("link", name="系统管理").click()
    expect(page).to_have_url(re.compile(r"/admin/orgs$"))
    table = page.locator("table.table")
    table.get_by_role("link", name="江州市").click()
    expect(page.locator("h1")).to_contain_text("江州市")
    expect(table).to_contain_text("南岭县")
    expect(table).to_contain_text("青山县")

    table.get_by_role("link", name="南岭县").click()
    expect(page.locator("h1")).to_contain_text("南岭县")
    expect(page.locator("nav.breadcrumb")).to_contain_text("江州市")
    row = table.locator("tr", has_text="城关镇")
    expect(row).to_contain_text("360121001")
    page.screenshot(path=str(tmp_path / "admin-orgs.png"), full_page=True)

    row.get_by_role("link", name="3").click()  # the head count links to the people of that unit
    expect(page).to_have_url(re.compile(r"/admin/users\?org=360121001$"))
    people = page.locator("table.table tbody tr")
    expect(people).to_have_count(3)
    expect(page.locator("table.table")).not_to_contain_text("青山干部")

    page.locator("input[name=org]").fill("")
    page.locator("input[name=q]").fill("青山")
    page.get_by_role("button", name="搜索").click()
    expect(people).to_have_count(1)
    expect(people.first).to_contain_text("qs000")
    page.screenshot(path=str(tmp_path / "admin-users.png"), full_page=True)

    page.locator("nav.breadcrumb, nav.subnav").get_by_role("link", name="组织机构").click()
    expect(page).to_have_url(re.compile(r"/admin/orgs$"))
