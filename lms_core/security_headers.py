"""Response headers that keep pages out of other sites' frames and scripts out of pages.

The Content-Security-Policy allows scripts and style sheets from this origin only:
no inline ``<script>``, no ``on…=`` attributes, no ``javascript:`` URLs, no external
hosts (the platform vendors its assets under ``themes/``). Inline ``style="…"``
*attributes* stay allowed (``style-src-attr``): progress bars set their width that
way, and an attribute cannot run code. What a template may and may not do is in
docs/security.md.

The policy goes on HTML responses only: served media (a PDF in the document
viewer's frame) must not inherit it, since Chromium's PDF viewer runs as part of
that document. ``X-Frame-Options`` goes on every response.
"""

from __future__ import annotations

from flask import Flask, Response, current_app

#: The default policy; ``LMS_CONTENT_SECURITY_POLICY`` replaces it (e.g. to add a
#: report-uri). Same-origin frames are allowed: the document lesson shows its PDF in one.
DEFAULT_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "media-src 'self' blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "frame-src 'self'",
        "frame-ancestors 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)


def init_app(app: Flask) -> None:
    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            policy = current_app.config.get("LMS_CONTENT_SECURITY_POLICY") or DEFAULT_POLICY
            headers.setdefault("Content-Security-Policy", policy)
        return response
