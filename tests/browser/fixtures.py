"""Browser test fixtures: the real app in a live HTTP server, driven by Chromium.

Why PostgreSQL only (``@pytest.mark.backends("postgresql")`` on the tests): the
live server answers requests from its own threads while the test thread seeds
data, which is the production shape of the platform; SQLite's single-writer
file would be tested here only for its locking, and every page the browser
visits is already covered on SQLite by the client-level tests.

Chromium is Debian's (``/usr/bin/chromium``); nothing is ever downloaded
(``playwright install`` is not used). When it is missing the browser tests are
skipped on a developer machine but *fail* when ``LMS_TEST_REQUIRE_BROWSER=1``
(set by ``make test`` and ``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from lms_core.security_headers import DEFAULT_POLICY

CHROMIUM = os.environ.get("LMS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: The tests look for Chinese text; without a CJK font the screenshots show boxes.
DEFAULT_TIMEOUT_MS = 15_000


def _chromium_path() -> str | None:
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One Chromium for the whole session (start-up costs about a second)."""
    path = _chromium_path()
    if path is None:
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("LMS_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


#: The production policy plus ``'unsafe-eval'``, which Playwright itself needs: its
#: ``wait_for_function`` evaluates the predicate with ``eval`` inside the page. Inline
#: scripts, handlers and other hosts stay refused, so the pages are still checked.
TEST_CSP = DEFAULT_POLICY.replace("script-src 'self'", "script-src 'self' 'unsafe-eval'")


@dataclass
class LiveServer:
    url: str
    app: Flask


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """Serve ``app`` (the test database, CSRF on) on 127.0.0.1 from a thread.

    A threaded werkzeug server: every request gets its own thread and therefore
    its own app context and database session, as under gunicorn.
    """
    app.config["LMS_CONTENT_SECURITY_POLICY"] = TEST_CSP
    in_flight = _InFlight(app)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, in_flight, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        # A closing page still sends its last requests (the player's pagehide beat, a
        # plugin's poll). Their handler threads are daemons the server does not join:
        # left running, they hold a database connection while the next test truncates
        # the tables (a deadlock) or while the app disposes its engine (a leaked
        # connection). Wait for them before the app fixture tears down.
        in_flight.wait_idle(timeout=10)


class _InFlight:
    """WSGI middleware counting requests whose response has not been closed yet."""

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app
        self._count = 0
        self._idle = threading.Condition()

    def _done(self) -> None:
        with self._idle:
            self._count -= 1
            self._idle.notify_all()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        with self._idle:
            self._count += 1
        try:
            response = self.wsgi_app(environ, start_response)
        except BaseException:
            self._done()
            raise
        return _ClosingIterable(response, self._done)

    def wait_idle(self, timeout: float) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._count == 0, timeout=timeout)


class _ClosingIterable:
    """Passes a WSGI response through and reports when the server closed it."""

    def __init__(self, response: Any, on_close: Any) -> None:
        self._response = response
        self._on_close = on_close

    def __iter__(self) -> Any:
        return iter(self._response)

    def close(self) -> None:
        try:
            if hasattr(self._response, "close"):
                self._response.close()
        finally:
            self._on_close()


#: Runs before any page script: records every Content-Security-Policy violation
#: (an inline script or handler, an external host) where the test can read it.
_CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' at ' +
                              (e.sourceFile || document.location.pathname) + ':' + e.lineNumber);
});
"""


def csp_violations(page: Any) -> list[str]:
    """Violations seen so far: console reports plus the current document's events."""
    try:
        in_page = page.evaluate("window.__cspViolations || []")
    except Exception:  # a page that is closing or navigating: the console still has them
        in_page = []
    return [*page.csp_console, *(v for v in in_page if v not in page.csp_console)]


def _new_page(browser: Any, **options: Any) -> Iterator[Any]:
    """A page that fails its test if any page it showed broke the Content-Security-Policy.

    Every browser test therefore checks the pages it visits: a template with an
    inline script or an ``onclick`` (core or plugin) fails there, not in production.
    """
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **options)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.add_init_script(_CSP_RECORDER)
    page = context.new_page()
    page.csp_console = []
    page.on(
        "console",
        lambda msg: (
            page.csp_console.append(f"{page.url}: {msg.text}") if "Content Security Policy" in msg.text else None
        ),
    )
    try:
        yield page
        seen = csp_violations(page)
        if seen:
            pytest.fail("Content-Security-Policy violations:\n" + "\n".join(seen), pytrace=False)
    finally:
        context.close()


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A fresh browser context (no cookies) with a desktop viewport."""
    yield from _new_page(browser, viewport={"width": 1280, "height": 800}, base_url=live_server.url)


@pytest.fixture
def mobile_page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """An iPhone-sized context: 390x844 CSS pixels, touch, device scale 3."""
    yield from _new_page(
        browser,
        viewport={"width": 390, "height": 844},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
        base_url=live_server.url,
    )
