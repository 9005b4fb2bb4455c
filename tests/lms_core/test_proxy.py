"""Behind a reverse proxy: client addresses come from X-Forwarded-* only when trusted."""

from __future__ import annotations

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from lms_core.accounts.models import LoginAttempt
from lms_core.extensions import db

FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def _attempt_ip(client) -> str:
    client.post("/login", data={"username": "nobody", "password": "wrong-pass-1"}, headers=FORWARDED)
    return db.session.query(LoginAttempt).one().ip


def test_forwarded_headers_are_ignored_by_default(client, app):
    # Otherwise anyone could spoof an address and dodge the per-IP login throttle.
    assert not isinstance(app.wsgi_app, ProxyFix)
    assert _attempt_ip(client) == "127.0.0.1"


@pytest.mark.app_config(LMS_TRUSTED_PROXIES=1)
def test_trusted_proxy_supplies_client_address(client, app):
    assert isinstance(app.wsgi_app, ProxyFix)
    assert (app.wsgi_app.x_for, app.wsgi_app.x_proto, app.wsgi_app.x_host) == (1, 1, 1)
    assert _attempt_ip(client) == "203.0.113.9"


@pytest.mark.app_config(LMS_TRUSTED_PROXIES=1)
def test_only_the_trusted_number_of_hops_is_believed(client):
    # A client-supplied X-Forwarded-For is prepended to by nginx; only the last hop counts.
    client.post(
        "/login",
        data={"username": "nobody", "password": "wrong-pass-1"},
        headers={"X-Forwarded-For": "10.9.9.9, 198.51.100.7"},
    )
    assert db.session.query(LoginAttempt).one().ip == "198.51.100.7"
