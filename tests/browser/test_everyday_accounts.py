"""Everyday account pages in Chromium: 上次登录, initial passwords, import, confirmations."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from lms_core.extensions import db
from tests.browser.helpers import expect, sign_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.backends("postgresql"), pytest.mark.app_config(WTF_CSRF_ENABLED=True)]


def test_dashboard_shows_the_sign_in_before_this_one(page: Any, tree: Any, tmp_path: Any) -> None:
    user = UserFactory(username="liming", full_name="李明", org_unit=tree.village_a)
    user.last_login_at = dt.datetime(2026, 3, 1, 1, 5, tzinfo=dt.UTC)  # 09:05 in Shanghai
    db.session.commit()
    sign_in(page, "liming")
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    line = page.locator("#previous-sign-in")
    expect(line).to_contain_text("上次登录")
    expect(line).to_contain_text("2026年3月1日")
    expect(line).to_contain_text("09:05")
    page.screenshot(path=str(tmp_path / "dashboard-1280.png"), full_page=True)


@pytest.fixture
def county_admin(tree: Any) -> Any:
    from lms_core.accounts.models import Role
    from tests.factories import grant

    admin = UserFactory(username="xian_admin", full_name="县组织部", org_unit=tree.county_a)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    return admin


def _xlsx(rows: list[list[Any]]) -> bytes:
    import io

    import openpyxl

    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1280, "height": 800}])
def test_import_xlsx_without_password_hands_over_passwords_once(
    page: Any, county_admin: Any, tmp_path: Any, viewport: dict[str, int]
) -> None:
    import io

    import openpyxl

    from lms_core.accounts.passwords import verify_password
    from tests.browser.helpers import horizontal_overflow

    page.set_viewport_size(viewport)
    sign_in(page, "xian_admin")
    page.goto("/admin/import")
    page.locator("#rank-values summary").click()
    expect(page.locator("#rank-values")).to_contain_text("正科级")
    page.locator("input[type=file]").set_input_files(
        files=[
            {
                "name": "人员名单.xlsx",
                "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "buffer": _xlsx(
                    [
                        ["用户名", "姓名", "单位代码", "职级"],
                        ["zhangwei", "张伟", 360121001, "副科级"],
                        ["lina", "李娜", 360121001001, "科员"],
                    ]
                ),
            }
        ]
    )
    page.get_by_role("button", name="导入").click()
    expect(page.locator("#import-result")).to_contain_text("新增 2")
    sheet = page.locator(".initial-passwords")
    expect(sheet).to_contain_text("2 个账号已生成一次性密码")
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / f"import-{viewport['width']}.png"), full_page=True)
    with page.expect_download() as info:
        sheet.get_by_role("button", name="下载 XLSX").click()
    with open(info.value.path(), "rb") as downloaded:
        book = openpyxl.load_workbook(io.BytesIO(downloaded.read()), read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    book.close()
    assert rows[0] == ("用户名", "姓名", "单位", "初始密码")
    from sqlalchemy import select

    from lms_core.accounts.models import User

    db.session.expire_all()
    for username, _name, _unit, password in rows[1:]:
        user = db.session.execute(select(User).filter_by(username=username)).scalar_one()
        assert verify_password(user.password_hash, password) and user.must_change_password

    # offered once: a second download is refused in Chinese
    page.goto("/admin/import")
    expect(page.locator(".initial-passwords")).to_have_count(0)


def test_add_person_without_password_shows_it_once(page: Any, county_admin: Any, tmp_path: Any) -> None:
    sign_in(page, "xian_admin")
    page.goto("/admin/users/new")
    page.locator("input[name=username]").fill("zhaolei")
    page.locator("input[name=full_name]").fill("赵磊")
    page.locator("input[name=org_code]").fill("360121001")
    expect(page.locator("main form")).to_contain_text("留空则生成一次性密码")
    page.get_by_role("button", name="保存").click()
    flash = page.locator(".flash-warning")
    expect(flash).to_contain_text("赵磊（zhaolei）的初始密码：")
    page.screenshot(path=str(tmp_path / "user-new-1280.png"), full_page=True)
    page.reload()
    expect(page.locator(".flash-warning")).to_have_count(0)


def test_disable_and_reset_ask_in_a_dialog(page: Any, county_admin: Any, tree: Any, tmp_path: Any) -> None:
    from lms_core.accounts.models import User, UserStatus

    cadre = UserFactory(username="wangfang", full_name="王芳", org_unit=tree.village_a)
    db.session.commit()
    before = cadre.password_hash
    sign_in(page, "xian_admin")
    page.goto(f"/admin/users/{cadre.id}")
    questions: list[str] = []

    def dismiss(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="停用").click()
    page.wait_for_timeout(300)  # a dismissed dialog submits nothing: give a wrong submit time to land
    assert questions and "确定停用 王芳 的账号吗" in questions[0]
    db.session.expire_all()
    assert db.session.get(User, cadre.id).status == UserStatus.ACTIVE

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="重置密码").click()
    expect(page.locator(".flash-success")).to_contain_text("王芳")
    db.session.expire_all()
    assert db.session.get(User, cadre.id).password_hash != before
    page.screenshot(path=str(tmp_path / "user-1280.png"), full_page=True)


def test_confirmation_page_when_the_script_does_not_run(
    browser: Any, live_server: Any, county_admin: Any, tree: Any, tmp_path: Any
) -> None:
    from lms_core.accounts.models import User, UserStatus

    cadre = UserFactory(username="wangfang", full_name="王芳", org_unit=tree.village_a)
    db.session.commit()
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 390, "height": 844}, locale="zh-CN", base_url=live_server.url
    )
    page = context.new_page()
    try:
        sign_in(page, "xian_admin")
        page.goto(f"/admin/users/{cadre.id}")
        page.get_by_role("button", name="停用").click()
        expect(page.locator("#confirm")).to_contain_text("确定停用 王芳（wangfang）的账号吗")
        page.screenshot(path=str(tmp_path / "confirm-390.png"), full_page=True)
        db.session.expire_all()
        assert db.session.get(User, cadre.id).status == UserStatus.ACTIVE
        page.locator("#confirm").get_by_role("button", name="停用").click()
        expect(page.locator(".flash-success")).to_be_visible()
        db.session.expire_all()
        assert db.session.get(User, cadre.id).status == UserStatus.DISABLED
    finally:
        context.close()
