"""Uploads through the form and the raw API: stored once, refused cleanly, authorised."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from sqlalchemy import select

from lms_core.accounts.models import TokenScope
from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.media.models import MediaFile, MediaKind
from lms_core.media.storage import get_storage
from tests.conftest import login


def _media_dir(app):
    return get_storage(app).root


def _stored_files(app) -> list:
    root = _media_dir(app)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def assert_nothing_stored(app):
    assert db.session.execute(select(MediaFile)).scalars().all() == []
    assert _stored_files(app) == []  # neither a stored file nor a spool file left behind
    assert db.session.execute(select(Event).filter_by(name="media.uploaded")).scalars().all() == []


def put(client, data: bytes, name: str, **headers):
    return client.put(
        "/api/media",
        query_string={"name": name},
        data=data,
        headers={"Content-Type": "application/octet-stream", **headers},
    )


def test_form_upload_stores_video_with_server_side_duration(client, app, author, samples):
    login(client, "teacher")
    data = samples.mp4.read_bytes()
    r = client.post(
        "/media/upload",
        data={"file": (io.BytesIO(samples.mp4.read_bytes()), "讲座.mp4", "text/plain")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 302
    media = db.session.execute(select(MediaFile)).scalar_one()
    assert media.sha256 == hashlib.sha256(data).hexdigest()
    assert media.kind == MediaKind.VIDEO and media.mime_type == "video/mp4"  # not the client's text/plain
    assert 2900 <= media.duration_ms <= 3100 and (media.width, media.height) == (640, 360)
    assert media.original_name == "讲座.mp4" and media.uploaded_by_id == author.id
    stored = get_storage(app).local_path(media.storage_key)
    assert stored.read_bytes() == data
    assert stored.relative_to(_media_dir(app).resolve()).parts[:2] == (media.sha256[:2], media.sha256[2:4])
    event = db.session.execute(select(Event).filter_by(name="media.uploaded")).scalar_one()
    assert event.actor_id == author.id and event.object_id == str(media.id)
    assert event.payload["duration_ms"] == media.duration_ms and event.payload["deduplicated"] is False
    page = client.get("/media/")
    assert page.status_code == 200 and "讲座.mp4" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "attr, kind, extra",
    [
        ("webm", MediaKind.VIDEO, {"duration_ms": (1900, 2100)}),
        ("pdf", MediaKind.DOCUMENT, {"page_count": (4, 4)}),
        ("png", MediaKind.IMAGE, {"width": (40, 40)}),
        ("jpeg", MediaKind.IMAGE, {"height": (48, 48)}),
    ],
)
def test_api_upload_each_type(client, author, samples, attr, kind, extra):
    login(client, "teacher")
    path = getattr(samples, attr)
    r = put(client, path.read_bytes(), path.name)
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["kind"] == kind.value
    for field, (low, high) in extra.items():
        assert low <= body[field] <= high


def test_same_content_is_stored_once(client, app, author, samples):
    login(client, "teacher")
    data = samples.pdf.read_bytes()
    first = put(client, data, "manual.pdf")
    second = put(client, data, "manual-copy.pdf")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json()["id"] == second.get_json()["id"]
    assert db.session.execute(select(MediaFile)).scalars().all()[0].original_name == "manual.pdf"
    assert len(_stored_files(app)) == 1
    events = db.session.execute(select(Event).filter_by(name="media.uploaded")).scalars().all()
    assert [e.payload["deduplicated"] for e in events] == [False, True]


def test_bearer_token_client_can_upload_without_csrf(client, app, author, samples):
    from lms_core.accounts import services as accounts

    _token, secret = accounts.create_token(author, "uploader", scope=TokenScope.READ_WRITE)
    db.session.commit()
    r = put(client, samples.png.read_bytes(), "cover.png", Authorization=f"Bearer {secret}")
    assert r.status_code == 201


@pytest.mark.app_config(LMS_UPLOAD_MAX_BYTES=20_000)
def test_oversized_upload_is_413_and_nothing_is_stored(client, app, author, samples):
    login(client, "teacher")
    data = samples.mp4.read_bytes()
    assert len(data) > 20_000
    r = put(client, data, "big.mp4")  # declared length over the limit: refused before reading
    assert r.status_code == 413 and "larger than the limit" in r.get_json()["error"]
    # Without a declared length (chunked upload, de-chunked by the server) the limit
    # is enforced while streaming.
    r = client.put(
        "/api/media?name=big.mp4",
        input_stream=io.BytesIO(data),
        headers={"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert r.status_code == 413, r.get_json()
    r = client.post(
        "/media/upload",
        data={"file": (io.BytesIO(samples.mp4.read_bytes()), "big.mp4")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 413
    assert_nothing_stored(app)


@pytest.mark.parametrize(
    "case, status, message",
    [
        ("pdf_named_mp4", 415, "content is a PDF"),
        ("exe_named_pdf", 415, "Windows program"),
        ("truncated_mp4", 400, "moov"),
        ("truncated_pdf", 400, "truncated"),
        ("empty", 400, "empty"),
        ("text", 415, "not a supported type"),
    ],
)
def test_bad_uploads_are_refused_and_leave_nothing(client, app, author, samples, case, status, message):
    index_last = samples.mp4_index_last.read_bytes()
    pdf = samples.pdf.read_bytes()
    data, name = {
        "pdf_named_mp4": (pdf, "lecture.mp4"),
        "exe_named_pdf": (b"MZ\x90\x00" + b"\0" * 2000, "handbook.pdf"),
        "truncated_mp4": (index_last[: index_last.rfind(b"moov") - 4], "lecture.mp4"),
        "truncated_pdf": (pdf[:-300], "handbook.pdf"),
        "empty": (b"", "nothing.mp4"),
        "text": (b"just some words\n" * 20, "notes.txt"),
    }[case]
    login(client, "teacher")
    r = put(client, data, name)
    assert r.status_code == status
    assert message in r.get_json()["error"]
    form = client.post("/media/upload", data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")
    assert form.status_code == (400 if case == "empty" else status)  # an empty file part is "no file"
    assert_nothing_stored(app)


def test_learner_cannot_upload(client, app, learner, samples):
    login(client, "cadre")
    assert put(client, samples.png.read_bytes(), "x.png").status_code == 403
    assert (
        client.post(
            "/media/upload",
            data={"file": (io.BytesIO(samples.png.read_bytes()), "x.png")},
            content_type="multipart/form-data",
        ).status_code
        == 403
    )
    assert client.get("/media/").status_code == 403
    assert_nothing_stored(app)


def test_anonymous_cannot_upload(client, app, samples):
    assert put(client, samples.png.read_bytes(), "x.png").status_code == 401
    assert_nothing_stored(app)


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_csrf_is_enforced_for_session_uploads(client, app, author, samples):
    client.get("/login")
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    r = client.post("/login", data={"username": "teacher", "password": "Passw0rd!", "csrf_token": token})
    assert r.status_code == 302
    page = client.get("/media/").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    data = samples.png.read_bytes()
    assert put(client, data, "x.png").status_code == 400
    assert (
        client.post(
            "/media/upload",
            data={"file": (io.BytesIO(samples.png.read_bytes()), "x.png")},
            content_type="multipart/form-data",
        ).status_code
        == 400
    )
    assert_nothing_stored(app)
    assert put(client, data, "x.png", **{"X-CSRFToken": token}).status_code == 201
    form = {"file": (io.BytesIO(samples.jpeg.read_bytes()), "y.jpg"), "csrf_token": token}
    r = client.post("/media/upload", data=form, content_type="multipart/form-data")
    assert r.status_code == 302


def test_form_file_parts_are_spooled_next_to_the_store_not_in_tmp(client, app, author, samples, monkeypatch):
    import tempfile

    from lms_core.media import views

    folders = []
    real = tempfile.TemporaryFile

    def recording(*args, **kwargs):
        folders.append(kwargs.get("dir"))
        return real(*args, **kwargs)

    monkeypatch.setattr(views.tempfile, "TemporaryFile", recording)
    login(client, "teacher")
    r = client.post(
        "/media/upload",
        data={"file": (io.BytesIO(samples.webm.read_bytes()), "clip.webm")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 302
    assert folders == [get_storage(app).spool_dir()]
    assert [p.name for p in get_storage(app).spool_dir().iterdir()] == []


def test_a_pdf_of_many_compressed_streams_is_refused_in_chinese(app, author):
    import zlib

    body = zlib.compress(b"\0" * (1024 * 1024), 9)
    stream = (
        b"1 0 obj << /Type /ObjStm /Length %d /Filter /FlateDecode >>\nstream\n" % len(body)
        + body
        + b"\nendstream\nendobj\n"
    )
    bomb = b"%PDF-1.5\n" + stream * 100 + b"%%EOF\n"
    client = app.test_client()  # Chinese, the default
    login(client, "teacher")
    r = put(client, bomb, "读本.pdf")
    assert r.status_code == 400
    assert "压缩对象流过多或过大" in r.get_json()["error"]
    assert_nothing_stored(app)
