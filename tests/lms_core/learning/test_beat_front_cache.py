"""learning/beat_front.py: the lean front's cache of verified session cookies.

The signatures themselves are checked against the view in ``test_beat_front.py``; here,
how long a verified cookie is kept (while its signatures hold, not longer) and how many:
``_verify`` is counted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from flask import Flask
from itsdangerous import URLSafeTimedSerializer

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


#: How long the counted verification says its signatures go on holding.
HOLDS = 30.0


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

    def verify(cookie: str, csrf_header: str | None) -> tuple[dict[str, Any], float] | None:
        verified.append(cookie)
        return {"_user_id": "1:0", "_id": beat_front._identifier(environ(app, cookie))}, HOLDS

    monkeypatch.setattr(lean, "_verify", verify)
    return lean, verified


@pytest.fixture
def front(app: Flask, monkeypatch: pytest.MonkeyPatch) -> tuple[LeanBeats, list[str]]:
    return counted(app, monkeypatch)


def test_a_verified_cookie_is_kept_while_its_signatures_hold(app: Flask, front: Any, clock: Clock) -> None:
    lean, verified = front
    assert lean.take(environ(app, "c1")) is not None
    clock.now += 10  # the player's next beat
    assert lean.take(environ(app, "c1")) is not None
    clock.now += HOLDS - 10 - 0.1
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
    """Full, the oldest entry goes, one for each new one: not every player's cookie verified
    again at once (a cadence of ~0.25 ms more a beat at 10,000 learners a worker)."""
    monkeypatch.setattr(beat_front, "_CACHE_MAX", 2)
    lean, verified = counted(app, monkeypatch)
    for cookie in ("c1", "c2", "c1", "c2"):
        assert lean.take(environ(app, cookie)) is not None
    assert verified == ["c1", "c2"]
    assert lean.take(environ(app, "c3")) is not None  # full: c1, the oldest, goes
    assert lean.take(environ(app, "c3")) is not None
    assert lean.take(environ(app, "c2")) is not None  # still kept
    assert lean.take(environ(app, "c1")) is not None
    assert verified == ["c1", "c2", "c3", "c1"]


# -- real signatures: the entry ends when the first of them would be refused ----------------

T0 = dt.datetime(2026, 5, 11, 1, 0, tzinfo=dt.UTC)


def signed(app: Flask, at: dt.datetime, *, csrf_at: dt.datetime | None = None) -> tuple[str, str]:
    """``(session cookie, CSRF header)`` as the app signs them, at ``at`` (the token at ``csrf_at``)."""
    session = {"_user_id": "1:0", "_id": beat_front._identifier(environ(app, "")), "csrf_token": "t" * 40}
    with time_machine.travel(at, tick=False):
        cookie = app.session_interface.get_signing_serializer(app).dumps(session)  # type: ignore[attr-defined]
    with time_machine.travel(csrf_at or at, tick=False):
        token = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(session["csrf_token"])  # type: ignore[arg-type]
    return cookie, token


def real(app: Flask, monkeypatch: pytest.MonkeyPatch) -> tuple[LeanBeats, list[str]]:
    """A front with the real signature check, counted."""
    lean = LeanBeats(app, app.wsgi_app)
    verified: list[str] = []
    original = lean._verify

    def verify(cookie: str, csrf_header: str | None) -> tuple[dict[str, Any], float] | None:
        verified.append(cookie)
        return original(cookie, csrf_header)

    monkeypatch.setattr(lean, "_verify", verify)
    return lean, verified


def at_time(app: Flask, lean: LeanBeats, clock: Clock, when: dt.datetime, cookie: str, token: str) -> Any:
    """``take`` at ``when``: the wall clock there, the cache's clock as far from its start."""
    clock.now = 500.0 + (when - T0).total_seconds()
    with time_machine.travel(when, tick=False):
        return lean.take({**environ(app, cookie), "HTTP_X_CSRFTOKEN": token})


@pytest.mark.app_config(WTF_CSRF_ENABLED=True, PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=10))
def test_an_expired_cookie_is_refused_though_it_was_verified(
    app: Flask, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    lean, verified = real(app, monkeypatch)
    cookie, token = signed(app, T0)
    minute = dt.timedelta(minutes=1)
    assert at_time(app, lean, clock, T0 + minute, cookie, token) is not None
    assert at_time(app, lean, clock, T0 + 9 * minute, cookie, token) is not None
    assert verified == [cookie]  # kept from the first beat
    # Past the cookie's max age: the entry has ended with it, and the signature is refused.
    assert at_time(app, lean, clock, T0 + 10 * minute + dt.timedelta(seconds=2), cookie, token) is None
    assert verified == [cookie, cookie]


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_an_expired_csrf_token_ends_the_entry_first(app: Flask, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    app.config["WTF_CSRF_TIME_LIMIT"] = 120  # create_app ties it to the session (None); a deployment may not
    lean, verified = real(app, monkeypatch)
    cookie, token = signed(app, T0, csrf_at=T0 + dt.timedelta(seconds=30))
    assert at_time(app, lean, clock, T0 + dt.timedelta(seconds=40), cookie, token) is not None
    assert at_time(app, lean, clock, T0 + dt.timedelta(seconds=149), cookie, token) is not None
    assert verified == [cookie]
    assert at_time(app, lean, clock, T0 + dt.timedelta(seconds=152), cookie, token) is None
    assert verified == [cookie, cookie]


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_a_tampered_cookie_is_verified_each_time_and_refused(
    app: Flask, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    lean, verified = real(app, monkeypatch)
    cookie, token = signed(app, T0)
    at = T0 + dt.timedelta(seconds=10)
    assert at_time(app, lean, clock, at, cookie, token) is not None
    body, _dot, signature = cookie.rpartition(".")
    tampered = f"{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    for _ in range(2):
        assert at_time(app, lean, clock, at, tampered, token) is None
    assert at_time(app, lean, clock, at, cookie, token[:-2] + "xx") is None  # a tampered token too
    assert verified == [cookie, tampered, tampered, cookie]


def test_the_https_referrer_check_is_kept_by_referrer_and_host(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over HTTPS the referrer must be of the same origin (Flask-WTF's rule): its answer is kept
    by the referrer and the host it was compared with, and is the same as computed afresh."""
    import flask_wtf.csrf

    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    monkeypatch.setitem(app.config, "WTF_CSRF_SSL_STRICT", True)
    original = flask_wtf.csrf.same_origin
    compared: list[str] = []

    def same_origin(current: str, compare: str) -> bool:
        compared.append(current)
        return original(current, compare)

    monkeypatch.setattr(flask_wtf.csrf, "same_origin", same_origin)
    lean = LeanBeats(app, app.wsgi_app)

    def ok(referrer: str | None, host: str = "lms.example.cn") -> bool:
        env = {"wsgi.url_scheme": "https", "HTTP_HOST": host, "SERVER_NAME": "lms", "SERVER_PORT": "443"}
        if referrer is not None:
            env["HTTP_REFERER"] = referrer
        return lean._referrer_ok(env)

    same, other = "https://lms.example.cn/learn/lessons/3", "https://evil.example/learn/lessons/3"
    for _ in range(3):
        assert ok(same)
        assert not ok(other)
        assert not ok("https://lms.example.cn:8443/learn/lessons/3")
        assert not ok("http://lms.example.cn/learn/lessons/3")
        assert not ok(same, host="other.example.cn")
        assert ok("https://other.example.cn/x", host="other.example.cn")
        assert not ok(None)
        assert not ok("")
    assert len(compared) == 6  # each referrer and host compared once, then kept
    with pytest.raises(ValueError):  # a malformed referrer: not kept, raised each time as before
        ok("https://[::1/learn")
    with pytest.raises(ValueError):
        ok("https://[::1/learn")
    assert len(compared) == 8
