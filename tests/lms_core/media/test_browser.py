"""In Chromium: an instructor uploads through the library page (streamed PUT with a
progress bar and the CSRF header); a learner's browser plays the signed URL with Range
requests, and the bytes it fetched are recorded for its playback session."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from lms_core.extensions import db
from lms_core.media import services
from lms_core.media.models import MediaDelivery, MediaFile
from tests.browser.helpers import expect, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.backends("postgresql"), pytest.mark.app_config(WTF_CSRF_ENABLED=True)]


def test_instructor_uploads_and_learner_streams(
    page: Any, live_server: Any, author: Any, learner: Any, samples: Any, tmp_path: Any
) -> None:
    sign_in(page, "teacher")
    page.goto("/media/")
    page.locator("input[type=file]").set_input_files(str(samples.webm))
    with page.expect_response(lambda r: "/api/media" in r.url) as answer:
        page.locator("#upload-form button[type=submit]").click()
    assert answer.value.status == 201, answer.value.text()
    page.wait_for_load_state()
    row = page.locator("table tbody tr").first
    expect(row).to_contain_text("clip.webm")
    expect(row).to_contain_text("0:02")  # the duration read on the server
    page.screenshot(path=str(tmp_path / "media-library.png"), full_page=True)

    db.session.expire_all()
    media = db.session.execute(select(MediaFile)).scalar_one()
    with live_server.app.test_request_context():
        url = services.signed_url(media, learner, "browser-play")
    page.context.clear_cookies()
    sign_in(page, "cadre")
    page.goto("/dashboard")  # same origin: the media requests carry the learner's session cookie
    page.evaluate(
        """url => {
        const v = document.createElement('video');
        v.id = 'v'; v.muted = true; v.preload = 'auto'; v.src = url;
        document.body.appendChild(v);
    }""",
        url,
    )
    page.wait_for_function("document.getElementById('v').readyState >= 1")
    duration = page.evaluate("document.getElementById('v').duration")
    assert duration == pytest.approx(2.0, abs=0.1)
    page.evaluate("document.getElementById('v').currentTime = 1.5")
    page.wait_for_function("document.getElementById('v').readyState >= 2")

    db.session.expire_all()
    row = db.session.execute(select(MediaDelivery).filter_by(session_key="browser-play")).scalar_one()
    assert row.user_id == learner.id and row.media_id == media.id
    assert row.bytes_served > 0 and row.requests >= 1
