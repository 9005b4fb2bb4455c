"""Security headers: the production CSP on HTML, no framing by other sites anywhere."""

from __future__ import annotations

import pytest

from lms_core.security_headers import DEFAULT_POLICY


def test_pages_carry_the_production_policy_and_frame_options(client):
    page = client.get("/login")
    assert page.headers["Content-Security-Policy"] == DEFAULT_POLICY
    assert page.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    directives = dict(d.split(" ", 1) for d in DEFAULT_POLICY.split("; "))
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["frame-ancestors"] == "'self'" and directives["object-src"] == "'none'"
    assert "'unsafe-inline'" not in directives["style-src"]


def test_json_gets_frame_options_but_no_page_policy(client):
    api = client.get("/api/v1/me")
    assert api.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Content-Security-Policy" not in api.headers


@pytest.mark.app_config(LMS_CONTENT_SECURITY_POLICY="default-src 'none'")
def test_the_policy_can_be_replaced(client):
    assert client.get("/login").headers["Content-Security-Policy"] == "default-src 'none'"
