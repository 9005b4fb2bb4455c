"""HR import from XLSX, the common 职级 names, and column names in Chinese."""

from __future__ import annotations

import io
import zipfile

import openpyxl
import pytest
from sqlalchemy import select

from lms_core.accounts.importer import RANK_NAMES, RANK_VALUES, ImportFileError, import_users
from lms_core.accounts.models import RankBand, Role, User
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory, grant


@pytest.fixture
def admin(tree):
    user = UserFactory(username="county_admin", org_unit=tree.county_a)
    grant(user, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    return user


def xlsx(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


HEADER = ["用户名", "姓名", "单位代码", "职级", "政治面貌", "职务", "手机"]


def test_xlsx_with_numeric_cells_and_common_rank_names(admin):
    data = xlsx(
        [
            HEADER,
            ["zhangwei", "张伟", 360121001, "正科级", "中共党员", "副镇长", 13900000001],
            ["lina", "李娜", "360121001001", "办事员", None, None, None],
            [None, None, None, None, None, None, None],  # a blank line in the middle
            ["chenjie", "陈杰", 360121.0, "副处级", "群众", "副县长", None],
        ]
    )
    report = import_users(admin, data)
    assert report.ok, report.errors
    db.session.commit()
    assert (report.encoding, report.rows, report.created) == ("XLSX", 3, 3)
    users = {u.username: u for u in db.session.execute(select(User)).scalars()}
    assert (users["zhangwei"].org_unit.code, users["zhangwei"].rank_band, users["zhangwei"].phone) == (
        "360121001",
        RankBand.TOWNSHIP,
        "13900000001",
    )
    assert users["lina"].rank_band == RankBand.GENERAL and users["lina"].party_member is False
    assert users["chenjie"].rank_band == RankBand.COUNTY_AND_ABOVE and users["chenjie"].org_unit.code == "360121"


def test_xlsx_line_numbers_match_the_sheet(admin):
    data = xlsx([HEADER, ["a", "甲", 360121001], ["b", "乙", 999], ["c", "", 360121001]])
    report = import_users(admin, data)
    assert [e.line for e in report.errors] == [3, 4]
    db.session.rollback()


@pytest.mark.parametrize(
    ("name", "band"),
    [
        ("正处级", RankBand.COUNTY_AND_ABOVE),
        ("副处级", RankBand.COUNTY_AND_ABOVE),
        ("二级调研员", RankBand.COUNTY_AND_ABOVE),
        ("正科级", RankBand.TOWNSHIP),
        ("副科级", RankBand.TOWNSHIP),
        ("四级主任科员", RankBand.TOWNSHIP),
        ("科员", RankBand.GENERAL),
        ("办事员", RankBand.GENERAL),
        ("一级科员", RankBand.GENERAL),
        ("township", RankBand.TOWNSHIP),
        ("", RankBand.GENERAL),
    ],
)
def test_common_rank_names_map_to_bands(name, band):
    assert RANK_VALUES[name] == band


def test_every_listed_rank_name_maps_to_its_band():
    for band, names in RANK_NAMES.items():
        assert all(RANK_VALUES[n] == band for n in names)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"PK\x03\x04" + b"\x00" * 200, "已损坏"),
        (bytes.fromhex("d0cf11e0a1b11ae1") + b"\x00" * 500, ".xls"),
    ],
)
def test_unreadable_workbooks_say_why_in_chinese(admin, data, fragment):
    with pytest.raises(ImportFileError) as info:
        import_users(admin, data)
    assert fragment in str(info.value)


def test_workbook_that_unpacks_too_large_is_refused(admin, monkeypatch):
    from lms_core.accounts import importer

    monkeypatch.setattr(importer, "XLSX_MAX_UNPACKED", 1000)
    with pytest.raises(ImportFileError) as info:
        import_users(admin, xlsx([HEADER, ["a", "甲" * 2000, 360121001]]))
    assert "解压后过大" in str(info.value)


def test_workbook_without_required_columns_names_them_in_chinese(admin):
    with pytest.raises(ImportFileError) as info:
        import_users(admin, xlsx([["姓名", "手机"], ["张伟", "1"]]))
    assert "缺少必填列：用户名, 单位代码" in str(info.value)


def test_zip_that_is_not_a_workbook(admin):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(ImportFileError):
        import_users(admin, buffer.getvalue())


def test_page_accepts_xlsx_lists_ranks_and_names_columns_in_chinese(client, admin):
    login(client, "county_admin")
    page = client.get("/admin/import").get_data(as_text=True)
    assert 'id="rank-values"' in page
    for name in ("正处级", "副处级", "正科级", "副科级", "科员", "办事员"):
        assert name in page
    data = xlsx([HEADER, ["zhangwei", "张伟", 360121001, "正科级"], ["lina", "", 360121001, "部长"]])
    r = client.post("/admin/import", data={"file": (io.BytesIO(data), "人员.xlsx")}, content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert "<td>3</td><td>姓名 为空; 职级：无法识别的值 部长（可用的值见导入页面）</td>" in html
    assert "full_name" not in html and "rank_band" not in html
