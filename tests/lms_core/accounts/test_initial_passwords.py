"""No account without a usable password: generated one-time passwords, handed over once."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import openpyxl
import pytest
import time_machine
from sqlalchemy import select

from lms_core.accounts.models import CredentialSheet, ImportRun, Role, User
from lms_core.accounts.passwords import verify_password
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory, grant

HEADER = "用户名,姓名,单位代码,职级"
ROWS = ["zhangwei,张伟,360121001,正科级", "lina,李娜,360121001001,科员", "chenjie,陈杰,360121,副处级"]


def csv_bytes(*rows: str) -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode()


@pytest.fixture
def admin(tree):
    user = UserFactory(username="county_admin", full_name="县管理员", org_unit=tree.county_a)
    grant(user, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    return user


@pytest.fixture
def admin_client(app, admin):
    client = app.test_client()
    assert login(client, "county_admin").status_code == 302
    return client


def _upload(client, data: bytes, name: str = "hr.csv", **form):
    return client.post(
        "/admin/import", data={"file": (io.BytesIO(data), name), **form}, content_type="multipart/form-data"
    )


def _user(username: str) -> User:
    db.session.expire_all()
    return db.session.execute(select(User).filter_by(username=username)).scalar_one()


def _sheet_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'/admin/initial-passwords/(\d+)"', html)]


def _download_csv(client, sheet_id: int) -> list[list[str]]:
    r = client.post(f"/admin/initial-passwords/{sheet_id}", data={"format": "csv"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Disposition"].startswith("attachment;")
    assert r.headers["Cache-Control"] == "no-store"
    body = r.get_data()
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_import_without_password_generates_one_per_account_handed_over_once(admin_client):
    r = _upload(admin_client, csv_bytes(*ROWS))
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "3 个账号已生成一次性密码" in html
    (sheet_id,) = _sheet_ids(html)
    rows = _download_csv(admin_client, sheet_id)
    assert rows[0] == ["用户名", "姓名", "单位", "初始密码"]
    by_name = {row[0]: row for row in rows[1:]}
    assert set(by_name) == {"zhangwei", "lina", "chenjie"}
    assert by_name["lina"][1:3] == ["李娜", "红星村"]
    passwords = {row[3] for row in rows[1:]}
    assert len(passwords) == 3  # one each, not a shared password
    for username, row in by_name.items():
        user = _user(username)
        assert user.must_change_password and verify_password(user.password_hash, row[3])

    again = admin_client.post(f"/admin/initial-passwords/{sheet_id}", data={"format": "csv"})
    assert again.status_code == 410 and "已下载或已过期" in again.get_data(as_text=True)
    sheet = db.session.get(CredentialSheet, sheet_id)
    assert sheet.data == b"" and sheet.downloaded_at is not None and sheet.accounts == 3

    # the new account signs in with it and must choose a new password first
    client = admin_client.application.test_client()
    assert login(client, "lina", by_name["lina"][3]).headers["Location"].endswith("/account/password")


def test_sheet_is_only_for_its_creator_and_expires(app, admin_client, tree):
    html = _upload(admin_client, csv_bytes(ROWS[0])).get_data(as_text=True)
    (sheet_id,) = _sheet_ids(html)
    other = UserFactory(username="other_admin", org_unit=tree.county_a)
    grant(other, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    client = app.test_client()
    login(client, "other_admin")
    assert client.post(f"/admin/initial-passwords/{sheet_id}", data={"format": "csv"}).status_code == 410
    assert client.post("/admin/initial-passwords/999", data={"format": "csv"}).status_code == 410
    assert admin_client.post(f"/admin/initial-passwords/{sheet_id}", data={"format": "pdf"}).status_code == 400
    # listed on the import page until downloaded
    assert sheet_id in _sheet_ids(admin_client.get("/admin/import").get_data(as_text=True))
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=25), tick=False):
        assert sheet_id not in _sheet_ids(admin_client.get("/admin/import").get_data(as_text=True))
        assert admin_client.post(f"/admin/initial-passwords/{sheet_id}", data={"format": "csv"}).status_code == 410


def test_reimport_sets_passwords_of_accounts_that_never_signed_in(admin_client):
    # an account created earlier without any password (as the old import did)
    admin = _user("county_admin")
    signed_in = UserFactory(username="chenjie", org_unit=admin.org_unit, last_login_at=dt.datetime.now(dt.UTC))
    UserFactory(username="zhangwei", full_name="张伟", org_unit=_user("county_admin").org_unit, password_hash=None)
    db.session.commit()
    before = signed_in.password_hash

    r = _upload(admin_client, csv_bytes(*ROWS), initial_password="Chu-shi-mi-ma-1")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "1 个从未登录的账号已设置初始密码" in html
    assert _sheet_ids(html) == []  # a typed password: nothing to hand over
    zhang = _user("zhangwei")
    assert verify_password(zhang.password_hash, "Chu-shi-mi-ma-1") and zhang.must_change_password
    assert _user("chenjie").password_hash == before  # has signed in: left alone
    assert verify_password(_user("lina").password_hash, "Chu-shi-mi-ma-1")


def test_reimport_without_password_fills_only_missing_passwords_unless_asked(admin_client):
    admin = _user("county_admin")
    UserFactory(username="zhangwei", full_name="张伟", org_unit=admin.org_unit, password_hash=None)
    UserFactory(username="lina", full_name="李娜", org_unit=admin.org_unit)  # has a password, never signed in
    db.session.commit()
    lina_hash = _user("lina").password_hash

    html = _upload(admin_client, csv_bytes(*ROWS[:2])).get_data(as_text=True)
    (sheet_id,) = _sheet_ids(html)
    assert [row[0] for row in _download_csv(admin_client, sheet_id)[1:]] == ["zhangwei"]
    assert _user("lina").password_hash == lina_hash

    html = _upload(admin_client, csv_bytes(*ROWS[:2]), reissue="y").get_data(as_text=True)
    (sheet_id,) = _sheet_ids(html)
    lines = _download_csv(admin_client, sheet_id)[1:]
    assert sorted(row[0] for row in lines) == ["lina", "zhangwei"]
    assert verify_password(_user("lina").password_hash, dict((r[0], r[3]) for r in lines)["lina"])


@pytest.mark.app_config(LMS_IMPORT_BACKGROUND_LINES=2)
def test_worker_import_offers_its_sheet_on_the_run_page(admin_client):
    r = _upload(admin_client, csv_bytes(*ROWS))
    assert r.status_code == 303
    html = admin_client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'data-status="done"' in html
    (sheet_id,) = _sheet_ids(html)
    (run,) = db.session.execute(select(ImportRun)).scalars()
    assert db.session.get(CredentialSheet, sheet_id).import_run_id == run.id
    download = admin_client.post(f"/admin/initial-passwords/{sheet_id}", data={"format": "xlsx"})
    assert download.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(download.get_data()), read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert rows[0] == ("用户名", "姓名", "单位", "初始密码") and len(rows) == 4
    for username, _name, _unit, password in rows[1:]:
        assert verify_password(_user(username).password_hash, password)
    html = admin_client.get(r.headers["Location"]).get_data(as_text=True)
    assert _sheet_ids(html) == [] and 'id="sheet-downloaded"' in html


def test_add_person_without_password_shows_a_one_time_password(admin_client):
    r = admin_client.post(
        "/admin/users/new",
        data={"username": "zhaolei", "full_name": "赵磊", "org_code": "360121001", "rank_band": "township"},
    )
    assert r.status_code == 302
    html = admin_client.get(r.headers["Location"]).get_data(as_text=True)
    match = re.search(r"赵磊（zhaolei）的初始密码：([A-Za-z0-9]+)", html)
    assert match, html
    user = _user("zhaolei")
    assert verify_password(user.password_hash, match.group(1)) and user.must_change_password
    # shown once: the next page does not repeat it
    assert match.group(1) not in admin_client.get(r.headers["Location"]).get_data(as_text=True)


def test_add_person_with_typed_password_must_change_it(admin_client):
    r = admin_client.post(
        "/admin/users/new",
        data={
            "username": "zhaolei",
            "full_name": "赵磊",
            "org_code": "360121001",
            "rank_band": "township",
            "password": "Chu-shi-2026",
        },
    )
    assert r.status_code == 302
    user = _user("zhaolei")
    assert verify_password(user.password_hash, "Chu-shi-2026") and user.must_change_password
