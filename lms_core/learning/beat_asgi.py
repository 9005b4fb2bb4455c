"""An ASGI front for the site: ordinary heartbeats answered on the event loop, the rest by Flask.

Why: under gunicorn's gthread workers the server alone costs ~0.31 ms of CPU per request on
this machine before any app code runs; uvicorn's worker (uvloop, httptools) ~0.05 ms
(docs/anti_idle.md, "Heartbeat ingestion"). Beats are most of the site's requests, so they
are parsed and checked here, on the worker's event loop, and only their database work goes
to a thread.

What is answered here is exactly what the lean WSGI front answers (``beat_front``: the same
``take`` checks on the same environ, built from the ASGI scope as a WSGI server would, the
same :func:`beat_front.record` and the same answer bytes). Everything else, and every beat
that front would pass on (refused, late, an error, a sign-in to judge), goes to the Flask
app unchanged through a2wsgi's WSGI adapter, with the body it sent. So this app can serve
the whole site, or only the beat route behind a proxy::

    gunicorn -k uvicorn_worker.UvicornWorker 'lms_core.learning.beat_asgi:create_app()'

Beats are recorded by the worker's group writer (``beat_batch``): the beats that arrive
together share one transaction and one COMMIT, and each is answered after it. With
``LMS_BEAT_GROUP_MAX = 0`` each beat is recorded alone, in its own transaction, on a
thread pool.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from a2wsgi import WSGIMiddleware
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from lms_core.learning import beat_batch, beat_front, beat_stalls, beat_trace, proxy_kept
from lms_core.unit_of_work import bare_transaction

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Threads per worker for the Flask app (a2wsgi) and, with group commit off, for beats.
THREADS = 10
#: Scope key of a beat this front took and then handed to the view (refused, late, failed).
HANDED = "lms.beat_handed"


def record_alone(app: Flask, beat: beat_front.Beat) -> beat_batch.Answer | None:
    """One beat in its own transaction (group commit off); ``None``: the view answers it."""
    with app.app_context():
        try:
            with bare_transaction(beat_front.refusals()) as refused:
                result = beat_front.record(beat)
        except Exception:  # noqa: BLE001 - rolled back; the view does it again and answers (500/503)
            return None
        if refused:
            return None
        return beat_batch.answer_parts(app, result)


class BeatASGI:
    """The ASGI app: the lean beat path on the event loop, a2wsgi to Flask for the rest."""

    def __init__(self, app: Flask, *, threads: int = THREADS) -> None:
        self.app = app
        self.front: beat_front.LeanBeats = app.extensions["lms.beat_front"]
        hops = int(app.config.get("LMS_TRUSTED_PROXIES") or 0)
        self._proxy: proxy_kept.KeptProxyFix | None = None
        self._site_app: Any = app.wsgi_app  # the whole WSGI stack: ProxyFix, the lean front, Flask
        self._view_app: Any = self.front.wsgi_app  # Flask itself, behind the lean front
        if hops:
            # The beat path reads the environ as Flask would see it: after the same ProxyFix.
            fixes = {"x_for": hops, "x_proto": hops, "x_host": hops, "x_port": hops, "x_prefix": hops}
            # (its writes kept per the values it reads: lms_core/learning/proxy_kept.py)
            self._proxy = proxy_kept.KeptProxyFix(hops)
            self._view_app = ProxyFix(self._view_app, **fixes)
        self.site = WSGIMiddleware(self._dispatch, workers=threads)  # type: ignore[arg-type]
        self._alone = ThreadPoolExecutor(threads, thread_name_prefix="beat")
        #: ``LMS_BEAT_TRACE``: timestamps along each beat's path (bench/beat_tail.py); off: ``None``.
        self._trace = beat_trace.tracer_for(app.config)
        app.extensions["lms.beat_trace"] = self._trace
        #: ``LMS_BEAT_STALL_LOG``: the worker's rare events (collections, loop lag, slow groups); off: ``None``.
        self._stalls = beat_stalls.stall_log_for(app.config)
        app.extensions["lms.beat_stalls"] = self._stalls
        # a2wsgi reads the process's SCRIPT_NAME on every request (``unicode_to_wsgi``); read once here.
        script_name = os.environ.get("SCRIPT_NAME", "")
        self._script_name = script_name.encode(sys.getfilesystemencoding(), "surrogateescape").decode("iso-8859-1")

    def _environ(self, scope: Scope) -> dict[str, Any]:
        """The WSGI environ a2wsgi's ``build_environ(scope, None)`` makes for a beat, key for key
        (``tests/lms_core/learning/test_beat_asgi_environ.py``), for less CPU: the process's
        ``SCRIPT_NAME`` read once, not per request, and each header's environ key looked up,
        not rebuilt (5.1 -> 2.6 µs a beat, process time)."""
        script_name = scope.get("root_path", "")
        if not script_name.isascii():  # (an ASCII text is its own latin1 of its utf8)
            script_name = script_name.encode("utf8").decode("latin1")
        path_info = scope["path"]
        if not path_info.isascii():
            path_info = path_info.encode("utf8").decode("latin1")
        if path_info.startswith(script_name):
            path_info = path_info[len(script_name) :]
        if self._script_name:
            script_name = self._script_name
        server_addr, server_port = scope.get("server") or ("localhost", 80)
        environ: dict[str, Any] = {
            "asgi.scope": scope,
            "REQUEST_METHOD": scope["method"],
            "SCRIPT_NAME": script_name,
            "PATH_INFO": path_info,
            "QUERY_STRING": scope["query_string"].decode("ascii"),
            "SERVER_PROTOCOL": _PROTOCOLS.get(scope["http_version"]) or f"HTTP/{scope['http_version']}",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.get("scheme", "http"),
            "wsgi.input": None,
            "wsgi.errors": sys.stdout,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "SERVER_NAME": server_addr,
            "SERVER_PORT": str(server_port or 0),
        }
        client = scope.get("client")
        if client is not None:
            environ["REMOTE_ADDR"], port = client
            environ["REMOTE_PORT"] = str(port)
        keys = _HEADER_KEYS
        for name, value in scope.get("headers", ()):
            key = keys.get(name)
            if key is None:
                key = _header_key(name)
            text = value.decode("latin1")
            if key in environ:
                text = environ[key] + "," + text
            environ[key] = text
        return environ

    @property
    def trace(self) -> beat_trace.Tracer | None:
        """``LMS_BEAT_TRACE``'s tracer, or ``None`` (off)."""
        return self._trace

    def check(self, scope: Scope) -> tuple[tuple[str, dict[str, Any]], dict[str, Any]] | None:
        """``(taken, environ)`` if the request is the lean path's (:meth:`LeanBeats.take` on
        the environ Flask would see, after the same ProxyFix), else ``None``: the site answers
        it. Every check before the body; shared with the HTTP fast path (``beat_http``)."""
        environ = self._environ(scope)
        if self._proxy is not None:
            environ = self._proxy(environ)
        taken = self.front.take(environ)
        return None if taken is None else (taken, environ)

    def record_soon(
        self, beat: beat_front.Beat, loop: asyncio.AbstractEventLoop, marks: beat_trace.Marks | None = None
    ) -> asyncio.Future[beat_batch.Answer | None]:
        """The beat queued for its writer (or, group commit off, a thread): the future on
        ``loop`` answers after its COMMIT (``None``: the view answers it)."""
        if int(self.app.config.get("LMS_BEAT_GROUP_MAX", 256)) > 0:
            return beat_batch.waiter(self.app, beat, loop, marks)
        return loop.run_in_executor(self._alone, record_alone, self.app, beat)

    def record_then(
        self,
        beat: beat_front.Beat,
        loop: asyncio.AbstractEventLoop,
        callback: Callable[[beat_batch.Answer | None], None],
        marks: beat_trace.Marks | None = None,
    ) -> None:
        """:meth:`record_soon` for a caller that takes the answer in a callback (``beat_http``):
        ``callback(answer)`` on ``loop`` after its COMMIT (``None``: the view answers it, also
        when the writer failed). With group commit the writer's one call into the loop per group
        calls it (``beat_batch.then``: no future per beat); without, the thread's future does."""
        if int(self.app.config.get("LMS_BEAT_GROUP_MAX", 256)) > 0:
            beat_batch.then(self.app, beat, loop, callback, marks)
            return

        def settled(future: asyncio.Future[beat_batch.Answer | None]) -> None:
            callback(None if future.cancelled() or future.exception() is not None else future.result())

        self.record_soon(beat, loop, marks).add_done_callback(settled)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] != "POST" or not path.endswith("/beat") or HANDED in scope:
            # (a beat the HTTP fast path took and then handed on comes with HANDED: to the view)
            await self.site(scope, receive, send)  # type: ignore[arg-type]
            return
        marks = None if self._trace is None else beat_trace.Marks(time.perf_counter())
        checked = self.check(scope)
        if checked is None:
            await self.site(scope, receive, send)  # type: ignore[arg-type]
            return
        taken, environ = checked
        body = await _body(receive)
        if body is None:
            return  # the client went away before sending its beat
        beat = beat_front.beat_of(taken, body, environ)
        if marks is not None:
            marks.checked = time.perf_counter()
        answer = None if beat is None else await self._record(beat, marks)
        if answer is None:  # to the view (not the lean front again: it would only redo the same)
            await self.site({**scope, HANDED: True}, _replay(body, receive), send)  # type: ignore[arg-type]
            if marks is not None and self._trace is not None:
                self._trace.beat(taken[0], body, marks, time.perf_counter(), "view")
            return
        status, headers, content = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        if marks is not None and self._trace is not None:
            self._trace.beat(taken[0], body, marks, time.perf_counter(), "group")

    def _dispatch(self, environ: dict[str, Any], start_response: Any) -> Any:
        """The WSGI app a2wsgi runs: a beat this front handed on goes straight to Flask's view."""
        scope = environ.get("asgi.scope") or {}
        return (self._view_app if scope.get(HANDED) else self._site_app)(environ, start_response)

    async def _record(self, beat: beat_front.Beat, marks: beat_trace.Marks | None = None) -> beat_batch.Answer | None:
        """The beat's answer once committed, or ``None``: the view answers it (its own 4xx or
        503 page, in Chinese, rather than a bare 500 from the server)."""
        try:
            return await self.record_soon(beat, asyncio.get_running_loop(), marks)
        except Exception:  # noqa: BLE001 - the writer failed: the view does it again (a stored seq answers as a repeat)
            return None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                tune_gc(self.app.config)
                if self._stalls is not None:  # after tune_gc: its gc notes see the refreeze
                    self._stalls.start(asyncio.get_running_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Beats already queued are still committed and answered first.
                await asyncio.get_running_loop().run_in_executor(None, beat_batch.stop, self.app)
                self._alone.shutdown(wait=True)
                if self._trace is not None:
                    self._trace.close()
                if self._stalls is not None:
                    self._stalls.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def tune_gc(config: Any) -> None:
    """The worker's garbage collector, once the app is built (``LMS_BEAT_GC_FREEZE``, ``LMS_BEAT_GC_GEN0``),
    and its threads' GIL switch interval (``LMS_BEAT_SWITCH_INTERVAL_US``).

    Why: the ASGI front's worker holds one big heap (the app, its modules, SQLAlchemy's
    compiled statements, the per-process caches) and makes many short-lived objects per beat.
    Python's full collections walk the whole heap with the GIL held, so neither the event loop
    nor the writer runs meanwhile: every beat in flight waits (bench/beat_tail.py).
    """
    gen0 = int(config.get("LMS_BEAT_GC_GEN0") or 0)
    if gen0 > 0:
        _first, second, third = gc.get_threshold()
        gc.set_threshold(gen0, second, third)
    if config.get("LMS_BEAT_GC_FREEZE"):
        gc.collect()  # what start-up left as garbage is freed, not frozen
        gc.freeze()
    if config.get("LMS_BEAT_GC_REFREEZE") and _refreeze not in gc.callbacks:
        gc.callbacks.append(_refreeze)
    switch_us = int(config.get("LMS_BEAT_SWITCH_INTERVAL_US") or 0)
    if switch_us > 0:
        # The writer thread, back from PostgreSQL, asks for the GIL; the event loop holding it
        # gives it up only after this interval (or when it blocks in its poll).
        sys.setswitchinterval(switch_us / 1_000_000)


#: With ``LMS_BEAT_GC_REFREEZE``: at most this often, a full collection walks the frozen objects too.
THAW_SECONDS = 3600.0
_last_thaw = time.monotonic()


def _refreeze(phase: str, info: dict[str, Any]) -> None:
    """After each full collection, what survived it is frozen too (``LMS_BEAT_GC_REFREEZE``).

    The keep-alive connections a worker opens after start-up (~27 tracked objects each: the
    protocol, its transport, parser, buffers, timers) age into the oldest generation, and
    every full collection walks them again: ~100 ms of CPU with the GIL held at 10,000
    connections, ~0.01 ms once they are frozen (``bench/gc_connections.py``). A frozen object
    is not collected as cyclic garbage; a closed connection is freed by its reference counts
    (10,000 closed after a freeze: no cyclic garbage left), and whatever else ends up as
    frozen garbage is found by the one full collection an hour (:data:`THAW_SECONDS`) that
    starts with :func:`gc.unfreeze`: it walks the whole heap, then everything left is frozen
    again."""
    global _last_thaw  # noqa: PLW0603 - the process's collector is one
    if info.get("generation") != 2:
        return
    if phase == "start":
        now = time.monotonic()
        if now - _last_thaw >= THAW_SECONDS:
            _last_thaw = now
            gc.unfreeze()
    else:
        gc.freeze()


#: ``SERVER_PROTOCOL`` of the ASGI ``http_version``s (others are formatted).
_PROTOCOLS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}
#: Header name (bytes, as the server gives it) -> its WSGI environ key; filled as names arrive.
_HEADER_KEYS: dict[bytes, str] = {}
#: A bound on distinct names kept (clients may send any): past it, keys are computed, not kept.
_HEADER_KEYS_MAX = 512


def _header_key(name: bytes) -> str:
    """A header's environ key, as a2wsgi's ``build_environ`` names it."""
    text = name.decode("latin1")
    if text == "content-length":
        key = "CONTENT_LENGTH"
    elif text == "content-type":
        key = "CONTENT_TYPE"
    else:
        key = f"HTTP_{text}".upper().replace("-", "_")
    if len(_HEADER_KEYS) < _HEADER_KEYS_MAX:
        _HEADER_KEYS[name] = key
    return key


async def _body(receive: Receive) -> bytes | None:
    """The request's whole body (the server holds it to its Content-Length), or ``None`` on a disconnect."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for Flask: the body already read, then the connection's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def create_app(config: dict[str, Any] | None = None) -> BeatASGI:
    """The whole site as an ASGI app (gunicorn: ``'lms_core.learning.beat_asgi:create_app()'``)."""
    from lms_core import create_app as create_flask_app

    return BeatASGI(create_flask_app(config))
