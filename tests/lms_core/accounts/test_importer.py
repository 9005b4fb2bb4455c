"""Bulk import of cadres from the HR system's CSV export (service and admin page)."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from lms_core.accounts.importer import ImportFileError, decode, import_users
from lms_core.accounts.models import RankBand, Role, User
from lms_core.accounts.passwords import verify_password
from lms_core.events.models import Event
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory, grant

HEADER = "用户名,姓名,单位代码,职级,政治面貌,职务,手机"
ROWS = [
    "zhangwei,张伟,360121001,乡科级,中共党员,副镇长,13900000001",
    "lina,李娜,360121001001,一般干部,群众,村干部,",
    "chenjie,陈杰,360121,县处级及以上,中共党员,县长,13900000003",
]


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


@pytest.fixture(autouse=True)
def english(app):
    """Service messages in English (outside a request they follow the default, Chinese)."""
    with app.test_request_context(headers={"Cookie": "lms_lang=en"}):
        yield


@pytest.fixture
def admin(tree):
    user = UserFactory(username="county_admin", org_unit=tree.county_a)
    grant(user, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    return user


def _count(model=User) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def _run(actor, data: bytes, **kwargs):
    report = import_users(actor, data, **kwargs)
    if report.ok:
        db.session.commit()
    else:
        db.session.rollback()
    return report


@pytest.mark.parametrize(("encoding", "label"), [("utf-8", "UTF-8"), ("utf-8-sig", "UTF-8"), ("gbk", "GBK")])
def test_import_each_encoding(admin, encoding, label):
    report = _run(admin, csv_text(*ROWS).encode(encoding))
    assert report.ok, report.errors
    assert (report.encoding, report.rows, report.created, report.updated, report.unchanged) == (label, 3, 3, 0, 0)
    user = db.session.execute(select(User).filter_by(username="zhangwei")).scalar_one()
    assert (user.full_name, user.org_unit.code, user.rank_band, user.party_member, user.position, user.phone) == (
        "张伟",
        "360121001",
        RankBand.TOWNSHIP,
        True,
        "副镇长",
        "13900000001",
    )
    lina = db.session.execute(select(User).filter_by(username="lina")).scalar_one()
    assert (lina.rank_band, lina.party_member, lina.phone) == (RankBand.GENERAL, False, None)
    (event,) = db.session.execute(select(Event).filter_by(name="users.imported")).scalars()
    assert event.payload["created"] == 3 and event.actor_id == admin.id


def test_second_import_changes_nothing_then_updates(admin):
    data = csv_text(*ROWS).encode("utf-8")
    _run(admin, data)
    again = _run(admin, data)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    changed = csv_text(ROWS[0].replace("副镇长", "镇长").replace("360121001,", "360121001001,"), *ROWS[1:])
    report = _run(admin, changed.encode("gbk"))
    assert (report.created, report.updated, report.unchanged) == (0, 1, 2)
    db.session.expire_all()
    user = db.session.execute(select(User).filter_by(username="zhangwei")).scalar_one()
    assert user.position == "镇长" and user.org_unit.code == "360121001001"
    assert _count() == 4  # admin + 3


def test_initial_password_is_set_and_must_be_changed(admin):
    _run(admin, csv_text(ROWS[0]).encode(), initial_password="Chu-shi-mi-ma-1")
    user = db.session.execute(select(User).filter_by(username="zhangwei")).scalar_one()
    assert verify_password(user.password_hash, "Chu-shi-mi-ma-1") and user.must_change_password
    with pytest.raises(ImportFileError):
        import_users(admin, csv_text(ROWS[1]).encode(), initial_password="weak")


def test_english_headers_tabs_and_blank_lines(admin):
    text = "username\tfull_name\torg_code\trank_band\n\nwangqiang\t王强\t360121001\ttownship\n\n"
    report = _run(admin, text.encode())
    assert report.ok and report.created == 1


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("zhaoliu,赵六,999999,一般干部,群众,,", "no org unit has the code 999999"),
        (",赵六,360121001,一般干部,群众,,", "Username (用户名) is empty"),
        ("zhaoliu,,360121001,一般干部,群众,,", "Full name (姓名) is empty"),
        ("zhaoliu,赵六,,一般干部,群众,,", "Org code (单位代码) is empty"),
        ("zhaoliu,赵六,360121001,部长级,群众,,", "Rank (职级): unknown value 部长级"),
        ("zhaoliu,赵六,360121001,一般干部,外星人,,", "Political status (政治面貌): unknown value 外星人"),
        ("zhangwei,张伟二,360121001,一般干部,群众,,", "zhangwei repeats line 2"),
        ("zhaoliu,赵六,360122001,一般干部,群众,,", "360122001 (石岗镇) is outside your area"),  # other county
        ("zhaoliu,赵六,3601,一般干部,群众,,", "3601 (江州市) is outside your area"),  # the city above
        ("zhaoliu," + "赵" * 101 + ",360121001,一般干部,群众,,", "longer than 100 characters"),
    ],
)
def test_one_bad_line_writes_nothing(admin, line, fragment):
    before = _count()
    report = _run(admin, csv_text(ROWS[0], line, ROWS[1]).encode("gbk"))
    assert not report.ok
    assert [e.line for e in report.errors] == [3]
    assert fragment in report.errors[0].message
    assert _count() == before
    assert _count(Event) == 0


def test_existing_user_outside_scope_is_refused(admin, tree):
    UserFactory(username="zhangwei", org_unit=tree.town_b)
    db.session.commit()
    report = _run(admin, csv_text(ROWS[0]).encode())
    assert [e.line for e in report.errors] == [2] and "outside your area" in report.errors[0].message
    db.session.expire_all()
    assert db.session.execute(select(User).filter_by(username="zhangwei")).scalar_one().org_unit_id == tree.town_b.id


def test_every_bad_line_is_reported(admin):
    report = _run(admin, csv_text("a,,360121001", "b,B,nope", ROWS[0], "c,C,360121001,职级?").encode())
    assert [e.line for e in report.errors] == [2, 3, 5]
    assert report.rows == 4


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (b"   \r\n  ", "empty"),
        (csv_text(*ROWS).encode("utf-16"), "neither CSV"),
        (bytes(range(256)) * 4, "neither CSV"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(1, 200)), None),  # binary without NUL early on
        ("姓名,单位代码\r\n张伟,360121001\r\n".encode(), "用户名"),  # missing the username column
        ("用户名,姓名,姓名,单位代码\r\n".encode(), "appears twice"),
        (b"username,full_name,org_code\r\n", None),  # header only: nothing to import
    ],
)
def test_unreadable_files(admin, data, fragment):
    before = _count()
    try:
        report = import_users(admin, data)
    except ImportFileError as exc:
        if fragment:
            assert fragment in str(exc)
    else:
        assert fragment is None and report.created == 0 and (report.rows == 0 or not report.ok)
    db.session.rollback()
    assert _count() == before


def test_decode_prefers_utf8_and_falls_back_to_gbk():
    assert decode("张伟".encode("utf-8-sig")) == ("张伟", "UTF-8")
    assert decode("张伟".encode("gbk")) == ("张伟", "GBK")
    with pytest.raises(ImportFileError):
        decode(b"\xff\xfe\x00a")


# the admin page ---------------------------------------------------------------


@pytest.fixture
def admin_client(client, admin):
    client.set_cookie("lms_lang", "en")
    login(client, "county_admin")
    return client


def _upload(client, data: bytes, **form):
    return client.post(
        "/admin/import", data={"file": (io.BytesIO(data), "hr.csv"), **form}, content_type="multipart/form-data"
    )


def test_page_imports_and_reports(admin_client):
    r = _upload(admin_client, csv_text(*ROWS).encode("gbk"), initial_password="Chu-shi-mi-ma-1")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'id="import-result"' in html and "GBK" in html and "3 new" in html
    assert _count() == 4
    html = _upload(admin_client, csv_text(*ROWS).encode("utf-8-sig")).get_data(as_text=True)
    assert "3 unchanged" in html


def test_page_reports_each_bad_line_and_writes_nothing(admin_client):
    before = _count()
    r = _upload(admin_client, csv_text(ROWS[0], "x,X,999", ROWS[1], "y,,360121").encode())
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "Nothing was imported: 2 of 4 lines have errors." in html
    assert "<td>3</td><td>Org code (单位代码): no org unit has the code 999</td>" in html
    assert "<td>5</td><td>Full name (姓名) is empty</td>" in html
    assert _count() == before


@pytest.mark.app_config(LMS_IMPORT_MAX_BYTES=200)
def test_page_file_errors(admin_client):
    before = _count()
    big = csv_text(*(ROWS * 10)).encode()
    r = _upload(admin_client, big)
    assert r.status_code == 413 and "too large" in r.get_data(as_text=True)
    r = _upload(admin_client, "用户名,姓名\r\n".encode("utf-16"))
    assert r.status_code == 400 and 'id="import-error"' in r.get_data(as_text=True)
    r = _upload(admin_client, b"")
    assert r.status_code == 400
    r = admin_client.post("/admin/import", data={}, content_type="multipart/form-data")
    assert r.status_code == 400 and "choose a CSV or XLSX file" in r.get_data(as_text=True)
    assert _count() == before


def test_lookups_are_chunked_for_large_files(admin, monkeypatch):
    """PostgreSQL refuses more than 65,535 parameters; large files are looked up in chunks."""
    from lms_core.accounts import importer

    monkeypatch.setattr(importer, "LOOKUP_CHUNK", 2)
    rows = [f"u{i},名{i},{'360121001' if i % 2 else '360121001001'},一般干部,群众" for i in range(7)]
    first = _run(admin, csv_text(*rows).encode())
    assert (first.created, first.updated, first.unchanged) == (7, 0, 0)
    rows[3] = rows[3].replace("名3", "名三")
    again = _run(admin, csv_text(*rows).encode())
    assert (again.created, again.updated, again.unchanged) == (0, 1, 6)


# Files above LMS_IMPORT_BACKGROUND_LINES go to a worker (inline jobs in tests run right after commit).


@pytest.mark.app_config(LMS_IMPORT_BACKGROUND_LINES=2)
def test_large_file_is_imported_by_a_worker(admin_client, admin):
    from lms_core.accounts.models import ImportRun, ImportStatus

    r = _upload(admin_client, csv_text(*ROWS).encode("gbk"), initial_password="Chu-shi-mi-ma-1")
    assert r.status_code == 303 and "/admin/imports/" in r.headers["Location"]
    page = admin_client.get(r.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-status="done"' in html and "3 new" in html and "GBK" in html
    assert _count() == 4
    zhang = db.session.execute(select(User).filter_by(username="zhangwei")).scalar_one()
    assert zhang.must_change_password and verify_password(zhang.password_hash, "Chu-shi-mi-ma-1")
    (run,) = db.session.execute(select(ImportRun)).scalars()
    assert (run.status, run.lines, run.data, run.password_hash) == (ImportStatus.DONE, 3, b"", None)
    assert "hr.csv" in admin_client.get("/admin/import").get_data(as_text=True)  # listed on the import page


@pytest.mark.app_config(LMS_IMPORT_BACKGROUND_LINES=2)
def test_large_file_with_bad_lines_imports_nothing_and_reports_them(admin_client):
    from lms_core.accounts.models import ImportRun, ImportStatus

    before = _count()
    r = _upload(admin_client, csv_text(ROWS[0], "x,X,999", ROWS[1], "y,,360121").encode())
    html = admin_client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'data-status="failed"' in html and "Nothing was imported: 2 of 4 lines have errors." in html
    assert "<td>3</td><td>Org code (单位代码): no org unit has the code 999</td>" in html
    assert _count() == before
    (run,) = db.session.execute(select(ImportRun)).scalars()
    assert run.status == ImportStatus.FAILED and run.data == b""


@pytest.mark.app_config(LMS_IMPORT_BACKGROUND_LINES=2)
def test_large_file_errors_found_at_upload_queue_nothing(admin_client):
    from lms_core.accounts.models import ImportRun

    r = _upload(admin_client, csv_text(*ROWS, header="用户名,姓名,手机").encode())
    assert r.status_code == 400 and 'id="import-error"' in r.get_data(as_text=True)
    r = _upload(admin_client, csv_text(*ROWS).encode(), initial_password="weak")
    assert r.status_code == 400 and 'id="import-error"' in r.get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(ImportRun)).scalar_one() == 0


@pytest.mark.app_config(LMS_IMPORT_BACKGROUND_LINES=2, LMS_INLINE_JOBS=False)
def test_queued_run_is_visible_to_its_uploader_only_and_runs_once(admin_client, admin, tree):
    from lms_core.accounts.importer import import_job
    from lms_core.accounts.models import ImportRun, ImportStatus

    location = _upload(admin_client, csv_text(*ROWS).encode()).headers["Location"]
    html = admin_client.get(location).get_data(as_text=True)
    assert 'data-status="queued"' in html and 'http-equiv="refresh"' in html
    other = UserFactory(username="other_admin", org_unit=tree.county_b)
    grant(other, Role.ORG_ADMIN, tree.county_b)
    db.session.commit()
    admin_client.post("/logout")
    login(admin_client, "other_admin")
    assert admin_client.get(location).status_code == 404
    (run,) = db.session.execute(select(ImportRun)).scalars()
    import_job({"run_id": run.id})
    db.session.commit()
    import_job({"run_id": run.id})  # a retried job does nothing more
    db.session.commit()
    assert run.status == ImportStatus.DONE and _count() == 5  # 2 admins + 3 imported
