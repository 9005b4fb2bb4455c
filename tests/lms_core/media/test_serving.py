"""Signed, per-user media URLs; HTTP Range; bytes counted per playback session."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import time_machine
from flask import current_app
from sqlalchemy import select

from lms_core.accounts.models import UserStatus
from lms_core.extensions import db
from lms_core.media import services
from lms_core.media.models import MediaDelivery
from tests.conftest import login
from tests.factories import UserFactory


@pytest.fixture
def video(app, author, samples):
    media = services.store_upload(io.BytesIO(samples.mp4.read_bytes()), "讲座 1.mp4", author)
    db.session.commit()
    return media


@pytest.fixture
def data(samples) -> bytes:
    return samples.mp4.read_bytes()


def url_for_learner(video, learner, session_key="sess-1", ttl=None):
    with current_app.test_request_context():
        return services.signed_url(video, learner, session_key, ttl)


def deliveries() -> list[tuple[str, int, int, int]]:
    db.session.expire_all()
    rows = db.session.execute(select(MediaDelivery).order_by(MediaDelivery.session_key)).scalars()
    return [(r.session_key, r.user_id, r.bytes_served, r.requests) for r in rows]


def test_full_get_headers(app, client, video, learner, data):
    login(client, "cadre")
    r = client.get(url_for_learner(video, learner))
    assert r.status_code == 200
    assert r.data == data
    assert r.headers["Content-Type"] == "video/mp4"
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["Content-Length"] == str(len(data))
    assert r.headers["ETag"] == f'"{video.sha256}"'
    assert r.headers["Last-Modified"].endswith("GMT")
    assert r.headers["Content-Disposition"].startswith("inline;")
    assert "filename*=UTF-8''%E8%AE%B2%E5%BA%A7%201.mp4" in r.headers["Content-Disposition"]


@pytest.mark.parametrize(
    "header, first, last",
    [
        ("bytes=0-0", 0, 0),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=-500", "size-500", "size-1"),
        ("bytes=100-", 100, "size-1"),
        ("bytes=0-1,10-20", 0, 1),
    ],
)
def test_ranges(client, video, learner, data, header, first, last):
    size = len(data)

    def resolve(v):
        return size + int(v[4:]) if isinstance(v, str) else v

    first, last = resolve(first), resolve(last)
    login(client, "cadre")
    r = client.get(url_for_learner(video, learner), headers={"Range": header})
    assert r.status_code == 206
    assert r.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert r.headers["Content-Length"] == str(last - first + 1)
    assert r.data == data[first : last + 1]


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=50-10", "bytes=abc", "bytes=-0"])
def test_invalid_range_is_416(client, video, learner, data, header):
    login(client, "cadre")
    r = client.get(url_for_learner(video, learner), headers={"Range": header})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{len(data)}"
    assert deliveries() == []


def test_conditional_requests(client, video, learner, data):
    url = url_for_learner(video, learner)
    etag = f'"{video.sha256}"'
    login(client, "cadre")
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert client.get(url, headers={"If-Modified-Since": later}).status_code == 304
    # A stale If-Range means the client's copy changed: whole file, not the range.
    stale = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert stale.status_code == 200 and len(stale.data) == len(data)
    fresh = client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206 and fresh.data == data[:10]
    assert client.get(url, headers={"If-Match": '"other"'}).status_code == 412


def test_pdf_is_served_inline(client, app, author, learner, samples):
    media = services.store_upload(io.BytesIO(samples.pdf.read_bytes()), "读本.pdf", author)
    db.session.commit()
    login(client, "cadre")
    r = client.get(url_for_learner(media, learner))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/pdf"
    assert r.headers["Content-Disposition"].startswith("inline;")


def test_tampered_expired_and_foreign_urls_are_403(app, client, video, learner, author, data):
    url = url_for_learner(video, learner)
    token = url.rsplit("/", 1)[1]
    tampered = url[: -len(token)] + token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    login(client, "cadre")
    assert client.get(tampered).status_code == 403
    # A token for another media id, forged without the key, fails too.
    other = services.URLSafeSerializer("not-the-secret", salt="lms.media.url").dumps(
        [video.id, learner.id, "sess-1", 2_000_000_000]
    )
    assert client.get(f"/media/s/{other}").status_code == 403

    short = url_for_learner(video, learner, ttl=60)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61), tick=False):
        assert client.get(short).status_code == 403
    ok = client.get(short)
    assert ok.status_code == 200 and ok.data  # read: only bytes taken are counted

    # Someone else signed in (a colleague the link was forwarded to) is refused.
    client.post("/logout")
    login(client, "teacher")
    assert client.get(url).status_code == 403
    assert [row[1] for row in deliveries()] == [learner.id]  # only the learner's own request counted


def test_disabled_user_url_stops_working(client, video, learner):
    url = url_for_learner(video, learner)
    login(client, "cadre")
    assert client.get(url, headers={"Range": "bytes=0-0"}).status_code == 206
    learner.status = UserStatus.DISABLED
    db.session.commit()
    assert client.get(url).status_code == 403


def test_bytes_are_recorded_per_session(app, client, video, learner, data):
    other = UserFactory(username="cadre2", org_unit=learner.org_unit)
    db.session.commit()
    login(client, "cadre")
    other_client = app.test_client()
    login(other_client, "cadre2")
    url = url_for_learner(video, learner, "play-A")
    # Bodies are read (``.data``): only bytes the client actually took are counted.
    assert len(client.get(url, headers={"Range": "bytes=0-0"}).data) == 1
    assert len(client.get(url, headers={"Range": "bytes=1000-1999"}).data) == 1000
    assert len(client.get(url, headers={"Range": "bytes=-500"}).data) == 500
    assert client.get(url, headers={"Range": "bytes=99999999-"}).status_code == 416  # nothing sent
    assert client.head(url).data == b""  # HEAD sends no body
    client.get(url_for_learner(video, learner, "play-B")).data  # noqa: B018 - read the body
    other_client.get(url_for_learner(video, other, "play-C"), headers={"Range": "bytes=100-"}).data  # noqa: B018
    assert deliveries() == [
        ("play-A", learner.id, 1 + 1000 + 500, 3),
        ("play-B", learner.id, len(data), 1),
        ("play-C", other.id, len(data) - 100, 1),
    ]
    assert services.bytes_served("play-A", video.id) == 1501
    assert services.bytes_served("play-B") == len(data)


def test_author_preview_redirects_to_a_signed_url(client, video, author, learner):
    login(client, "cadre")
    assert client.get(f"/media/{video.id}/preview").status_code == 403
    client.post("/logout")
    login(client, "teacher")
    r = client.get(f"/media/{video.id}/preview")
    assert r.status_code == 302 and "/media/s/" in r.headers["Location"]
    assert client.get(r.headers["Location"]).status_code == 200


def test_a_signed_url_needs_the_session_of_its_user(app, client, video, learner, author, data):
    """No session, another user, or the user after logout: refused; nothing counted."""
    url = url_for_learner(video, learner)
    assert client.get(url).status_code == 403  # no session at all
    assert client.get(url, headers={"Range": "bytes=0-99"}).status_code == 403
    assert client.get(url, headers={"Authorization": "Bearer junk"}).status_code == 403
    login(client, "teacher")
    assert client.get(url).status_code == 403  # someone else
    client.post("/logout")
    login(client, "cadre")
    saved = app.test_client()
    saved.set_cookie("session", client.get_cookie("session").value)
    r = client.get(url, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.data == data[:100]  # the player's Range requests still work
    client.post("/logout")
    assert client.get(url).status_code == 403  # after logout
    assert saved.get(url).status_code == 403  # and with a copy of the old cookie
    assert [row[2] for row in deliveries()] == [100]
