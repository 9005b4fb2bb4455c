"""learning/beat_front.py: the lean front's cache of verified session cookies.

The signatures themselves are checked against the view in ``test_beat_front.py``; here,
how long a verified cookie is kept and how many: ``_verify`` is counted.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from lms_core.learning import beat_front
from lms_core.learning.beat_front import LeanBeats


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(beat_front, "clock", c)
    return c


def environ(app: Flask, cookie: str, agent: str = "Firefox") -> dict[str, Any]:
    return {
        "PATH_INFO": "/learn/sessions/" + "a" * 32 + "/beat",
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "10",
        "HTTP_COOKIE": f"{app.config['SESSION_COOKIE_NAME']}={cookie}",
        "HTTP_X_CSRFTOKEN": "csrf",
        "REMOTE_ADDR": "10.0.0.1",
        "HTTP_USER_AGENT": agent,
        "wsgi.url_scheme": "http",
    }


def counted(app: Flask, monkeypatch: pytest.MonkeyPatch) -> tuple[LeanBeats, list[str]]:
    """A front whose signature check is counted (and accepts any cookie, for this browser)."""
    verified: list[str] = []
    lean = LeanBeats(app, app.wsgi_app)

    def verify(cookie: str, csrf_header: str | None) -> dict[str, Any] | None:
        verified.append(cookie)
        return {"_user_id": "1:0", "_id": beat_front._identifier(environ(app, cookie))}

    monkeypatch.setattr(lean, "_verify", verify)
    return lean, verified


@pytest.fixture
def front(app: Flask, monkeypatch: pytest.MonkeyPatch) -> tuple[LeanBeats, list[str]]:
    return counted(app, monkeypatch)


def test_a_verified_cookie_is_kept_for_its_seconds(app: Flask, front: Any, clock: Clock) -> None:
    lean, verified = front
    assert lean.take(environ(app, "c1")) is not None
    clock.now += beat_front._CACHE_SECONDS - 0.1
    taken = lean.take(environ(app, "c1"))
    assert taken is not None and taken[1]["_user_id"] == "1:0"
    assert verified == ["c1"]  # the second beat was not verified again
    clock.now += 0.1
    assert lean.take(environ(app, "c1")) is not None
    assert verified == ["c1", "c1"]  # expired at its time: verified again


def test_another_browser_is_verified_and_refused(app: Flask, front: Any, clock: Clock) -> None:
    """The key holds the address and browser: the same cookie from elsewhere is checked again
    (and its Flask-Login identifier differs: refused)."""
    lean, verified = front
    assert lean.take(environ(app, "c1")) is not None
    assert lean.take(environ(app, "c1", agent="curl")) is None
    assert verified == ["c1", "c1"]


def test_the_cache_is_bounded(app: Flask, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    """Full, it starts again empty: a bound on a process's memory, not an eviction policy."""
    monkeypatch.setattr(beat_front, "_CACHE_MAX", 2)
    lean, verified = counted(app, monkeypatch)
    for cookie in ("c1", "c2", "c1", "c2"):
        assert lean.take(environ(app, cookie)) is not None
    assert verified == ["c1", "c2"]
    assert lean.take(environ(app, "c3")) is not None  # full: only c3 is kept now
    assert lean.take(environ(app, "c3")) is not None
    assert lean.take(environ(app, "c1")) is not None
    assert verified == ["c1", "c2", "c3", "c1"]
