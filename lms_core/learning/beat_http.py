"""The heartbeat route's fast path inside uvicorn's HTTP protocol (httptools).

Why: on the ASGI front (``beat_asgi``) about half of a worker's event-loop CPU per beat was
uvicorn's own per-request work, not the beat's: the ASGI scope, a ``RequestResponseCycle``
and an asyncio task per request, ``run_asgi``, ``ProxyHeadersMiddleware``, two ``send``
messages with their header checks (docs/benchmarks.md, "a worker's CPU outside
``record_beat``"). A request that is exactly the beat route (POST, its path, a
``Content-Length`` within :data:`BODY_MAX`, no ``Transfer-Encoding``, no ``Expect``, no
upgrade, nothing else in flight on the connection) is taken here, in the parser's callbacks:
its body collected, the same checks and writer as the ASGI front's (:meth:`BeatASGI.check`,
:meth:`BeatASGI.record_then`), and the answer written whole with one ``transport.write``
when the writer calls back (no task, no future). The bytes are those uvicorn writes for the ASGI
front's answer: its status line, its ``date`` and ``server`` headers, the answer's headers
lower-cased, ``connection: close`` when the connection does not stay open.

Everything else goes through uvicorn's path unchanged, and so does a beat the checks pass on
(at once, as before) or one the writer gives back (to the Flask view, with its body, through
a ``RequestResponseCycle`` of its own). Kept as uvicorn keeps it: keep-alive and
``Connection: close``, pipelined requests answered in order (the beat in flight stands as the
connection's cycle, so a request after it waits in uvicorn's pipeline), the keep-alive timeout
(the same timeout after the last answer; its timer armed once and checked when it fires, see
:meth:`on_response_complete`, for every request on the connection), graceful shutdown, the
client address (``ProxyHeadersMiddleware``'s rules with its own trusted hosts, so the
plugin's address rules read the same address) and the access log.

Selected by :class:`BeatWorker`::

    gunicorn -k lms_core.learning.beat_http.BeatWorker 'lms_core.learning.beat_asgi:create_app()'

``LMS_BEAT_HTTP_FAST=0`` turns the fast path off (every request through uvicorn's path).
"""

from __future__ import annotations

import asyncio
import functools
import time
import urllib.parse
from typing import Any

import httptools
import uvicorn
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string
from uvicorn.server import ServerState
from uvicorn_worker import UvicornWorker

from lms_core.learning import beat_batch, beat_front, beat_trace
from lms_core.learning.beat_asgi import HANDED, BeatASGI

#: The largest beat body taken here: within it uvicorn never pauses reading for a body
#: either (its high-water mark), so collecting it needs no flow control of its own. A
#: larger one (never a real beat) goes uvicorn's way.
BODY_MAX = HIGH_WATER_LIMIT

#: The first uvicorn whose internals the fast path follows (setup.cfg requires it): the
#: protocol's ``_start_asgi_task`` and ``_TrustedHosts.get_trusted_client_address`` came in
#: 0.45, and :func:`proxied`'s reading of repeated ``X-Forwarded-*`` headers in 0.49 (0.48
#: took neither copy, 0.45-0.47 the last address); on an older one a beat's client address
#: would differ from the one uvicorn's path gives the app.
UVICORN_FROM = (0, 49)


def _release(version: str) -> tuple[int, ...]:
    """``"0.55.0"`` -> ``(0, 55)``."""
    return tuple(int(part) for part in version.split(".")[:2])


class _NoEvent:
    """``message_event`` of a beat in flight: uvicorn sets it on a disconnect; nobody waits on it."""

    __slots__ = ()

    def set(self) -> None:
        pass


_NO_EVENT = _NoEvent()


class _Beat:
    """A beat taken by the fast path; while in flight it is the connection's ``cycle`` (what
    uvicorn reads of one: ``response_complete``, ``disconnected``, ``keep_alive``,
    ``message_event``), so a pipelined request waits behind it and a disconnect reaches it."""

    __slots__ = (
        "body",
        "disconnected",
        "environ",
        "keep_alive",
        "marks",
        "response_complete",
        "scope",
        "seen",
        "taken",
    )

    message_event = _NO_EVENT

    def __init__(
        self,
        scope: dict[str, Any],
        seen: dict[str, Any],
        taken: tuple[str, dict[str, Any]],
        environ: dict[str, Any],
        keep_alive: bool,
        marks: beat_trace.Marks | None,
    ) -> None:
        self.scope = scope  # the server's scope (the view's, if handed on)
        self.seen = seen  # ... as the app saw it: after the proxy headers
        self.taken = taken
        self.environ = environ
        self.keep_alive = keep_alive
        self.marks = marks
        self.body = b""
        self.disconnected = False
        self.response_complete = False


def front_of(config: Config) -> tuple[BeatASGI, Any] | None:
    """The server's beat front and its proxy headers' trusted hosts (``None``: no proxy
    headers), or ``None``: no fast path (another app, another wrapping, a uvicorn without
    what the fast path uses, or ``LMS_BEAT_HTTP_FAST`` off)."""
    # What the fast path takes from inside uvicorn besides the parser's callbacks: the
    # protocol's ``_start_asgi_task`` (a handed beat's cycle) and the trusted hosts'
    # ``get_trusted_client_address`` (``proxied``), and the proxy headers read as uvicorn
    # reads them from 0.49 (:data:`UVICORN_FROM`). Without them (setup.cfg requires that
    # uvicorn, but an install may hold another) a beat behind a trusted proxy raised in the
    # parser's callback (uvicorn answers 400), a handed one in the writer's callback (no
    # answer at all), or a beat's client address was not uvicorn's: every request goes
    # uvicorn's way.
    if _release(uvicorn.__version__) < UVICORN_FROM or not hasattr(HttpToolsProtocol, "_start_asgi_task"):
        return None
    app = config.loaded_app
    trusted = None
    if isinstance(app, ProxyHeadersMiddleware):
        trusted = app.trusted_hosts
        if not hasattr(trusted, "get_trusted_client_address"):
            return None
        app = app.app
    if not isinstance(app, BeatASGI) or not app.app.config.get("LMS_BEAT_HTTP_FAST", True):
        return None
    return app, trusted


def proxied(scope: dict[str, Any], trusted: Any) -> dict[str, Any]:
    """``scope`` with the client and scheme ``ProxyHeadersMiddleware`` gives the app (uvicorn
    0.55: its ``__call__`` for an ``http`` scope, line for line): a copy where they differ,
    else ``scope`` itself (the app reads it, never writes it; no copy per beat)."""
    if trusted is None:
        return scope
    client_addr = scope.get("client")
    client_host = client_addr[0] if client_addr else None
    if client_host in trusted:
        x_forwarded_proto_value: bytes | None = None
        x_forwarded_for_values: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"x-forwarded-proto":
                x_forwarded_proto_value = value
            elif name == b"x-forwarded-for":
                x_forwarded_for_values.append(value)
        if x_forwarded_proto_value is not None:
            x_forwarded_proto = x_forwarded_proto_value.decode("latin1").strip()
            if x_forwarded_proto in {"http", "https", "ws", "wss"}:
                scope = {**scope, "scheme": x_forwarded_proto}
        if x_forwarded_for_values:
            x_forwarded_for = b", ".join(x_forwarded_for_values).decode("latin1")
            host, port = trusted.get_trusted_client_address(x_forwarded_for)
            if host:
                scope = {**scope, "client": (host, port)}
    return scope


class BeatHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the beat route's fast path (module docstring)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._front = front_of(config)
        #: ``LMS_BEAT_TRACE``'s tracer (set when the front is made), or ``None``: read per beat.
        self._trace = None if self._front is None else self._front[0].trace
        #: The beat whose body is being read, or ``None``.
        self._reading: _Beat | None = None
        #: When the connection last went idle (the loop's clock), or ``None`` while a request
        #: is on it: what the keep-alive timer reads when it fires (see
        #: :meth:`on_response_complete`).
        self._idle_since: float | None = None

    # -- the keep-alive timeout, checked when its timer fires ----------------------------
    #
    # uvicorn cancels the connection's keep-alive timer when data arrives and arms a new one
    # when the answer is written: a ``TimerHandle`` made and cancelled per request, in the
    # loop's heap of one timer per connection (10,000 per worker at the 20,000
    # learners). Here the timer stays armed across requests: data arriving only marks the
    # connection busy, an answer marks the time it went idle, and the timer, when it fires,
    # closes the connection if it has been idle for the whole timeout, or arms itself again for
    # what is left. The connection closes when uvicorn's would: ``timeout_keep_alive`` after
    # its last answer, never while a request is on it.

    def _unset_keepalive_if_required(self) -> None:
        # uvicorn calls this when data arrives (and before arming the timer): busy, not disarmed.
        self._idle_since = None

    def on_response_complete(self) -> None:
        """uvicorn's, with the keep-alive timer armed only if it is not already."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._idle_since = None
        flow = self.flow
        if flow.read_paused:  # (``FlowControl.resume_reading`` does nothing else: no call per answer)
            flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def timeout_keep_alive_handler(self) -> None:
        """Close the connection if it has been idle for the whole timeout; else wait what is left."""
        self.timeout_keep_alive_task = None
        idle_since = self._idle_since
        if idle_since is None or self.transport.is_closing():
            return  # a request is on it (its answer arms the timer again), or it is closing
        left = idle_since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.timeout_keep_alive_task = self.loop.call_later(left, self.timeout_keep_alive_handler)
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        timer = self.timeout_keep_alive_task
        if timer is not None:
            timer.cancel()
            self.timeout_keep_alive_task = None

    # -- the parser's callbacks ----------------------------------------------------------

    def on_headers_complete(self) -> None:
        beat = self._take() if self._front is not None else None
        if beat is None:
            super().on_headers_complete()
            return
        self._reading = beat
        self.cycle = beat  # type: ignore[assignment]  # in flight: see _Beat

    def on_body(self, body: bytes) -> None:
        beat = self._reading
        if beat is None:
            super().on_body(body)
        else:
            beat.body += body

    def on_message_complete(self) -> None:
        beat = self._reading
        if beat is None:
            super().on_message_complete()
            return
        self._reading = None
        self._record(beat)

    # -- the fast path -------------------------------------------------------------------

    def _take(self) -> _Beat | None:
        """The request as a beat for the fast path (every check before its body), or ``None``."""
        parser = self.parser
        cycle = self.cycle
        if (
            self.url.find(b"/beat") == -1  # (not ``in``: see _split_url)
            or parser.get_method() != b"POST"
            or not (cycle is None or cycle.response_complete)
            or self.pipeline
            or parser.should_upgrade()
            or self.expect_100_continue
            or (
                self.limit_concurrency is not None
                and (len(self.connections) >= self.limit_concurrency or len(self.tasks) >= self.limit_concurrency)
            )
        ):
            return None
        assert self._front is not None
        beats, trusted = self._front
        marks = None if self._trace is None else beat_trace.Marks(time.perf_counter())
        # The scope as uvicorn completes it (HttpToolsProtocol.on_headers_complete), for the
        # view if the beat is handed on.
        scope: dict[str, Any] = self.scope  # type: ignore[assignment]
        http_version = parser.get_http_version()
        raw_path, query = self._split_url(self.url)
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        if not path.endswith("/beat"):
            return None
        scope["method"] = "POST"
        if http_version != "1.1":
            scope["http_version"] = http_version
        scope["path"] = self.root_path + path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        scope["query_string"] = query
        seen = scope if trusted is None else proxied(scope, trusted)
        checked = beats.check(seen)
        if checked is None:
            return None  # uvicorn's path: the app checks it again and passes it to the site
        # The body's framing, read off the environ the checks built (its header keys, repeated
        # headers joined with ","): one ``Content-Length`` of at most BODY_MAX, no
        # ``Transfer-Encoding``, no ``Expect``; else uvicorn's path (no second pass over the headers).
        environ = checked[1]
        length = environ.get("CONTENT_LENGTH")
        if (
            length is None
            or not (length.isascii() and length.isdigit())
            or int(length) > BODY_MAX
            or "HTTP_TRANSFER_ENCODING" in environ
            or "HTTP_EXPECT" in environ
        ):
            return None
        keep_alive = http_version != "1.0" and parser.should_keep_alive()
        return _Beat(scope, seen, checked[0], checked[1], keep_alive, marks)

    @staticmethod
    def _split_url(url: bytes) -> tuple[bytes, bytes]:
        """The request target's path and query, as ``httptools.parse_url`` gives them
        (uvicorn's ``on_headers_complete``). A beat's target is a bare path (``/`` first, no
        ``?``, ``#`` or ``%``): that path is the whole target and the query empty, without
        parsing it (~2 µs a beat); any other form is parsed.

        Not ``in``: ``bytes.__contains__`` first tries its argument as an integer (a byte
        value) and, for bytes, builds and clears a ``TypeError`` with its message before
        searching: ~1,800 instructions each. Nor three ``bytes.find``: each parses its
        arguments with ``PyArg_ParseTuple`` (~620 instructions a call, callgrind); one
        ``translate`` deleting the three bytes, compared by length, is half their time."""
        if url[:1] == b"/" and len(url.translate(None, b"?%#")) == len(url):
            return url, b""
        parsed = httptools.parse_url(url)
        return parsed.path, parsed.query or b""

    def _record(self, beat: _Beat) -> None:
        """The whole beat read: to its writer; answered when the writer calls back."""
        assert self._front is not None
        beats = self._front[0]
        lean = beat_front.beat_of(beat.taken, beat.body, beat.environ)
        if lean is None:
            self._hand(beat)
            return
        if beat.marks is not None:
            beat.marks.checked = time.perf_counter()
        try:
            beats.record_then(lean, self.loop, functools.partial(self._answered, beat), beat.marks)
        except Exception:  # noqa: BLE001 - as BeatASGI._record: the view does it again
            self._hand(beat)

    def _answered(self, beat: _Beat, answer: beat_batch.Answer | None) -> None:
        """The writer's answer, on the loop (``None``: to the view)."""
        if answer is None:
            self._hand(beat)
        elif beat.disconnected:
            pass  # the client went away: recorded, nobody to answer (as uvicorn's send)
        elif self.flow.write_paused:
            # Kept with uvicorn's own tasks (as ``_start_asgi_task`` keeps a cycle's): counted
            # against ``limit_concurrency``, cancelled when the graceful shutdown times out, and
            # held (the loop keeps only a weak reference to a task).
            task = self.loop.create_task(self._write_drained(beat, answer))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)
        else:
            self._write(beat, answer)

    async def _write_drained(self, beat: _Beat, answer: beat_batch.Answer) -> None:
        await self.flow.drain()
        if not beat.disconnected:
            self._write(beat, answer)

    def _write(self, beat: _Beat, answer: beat_batch.Answer) -> None:
        """The answer as uvicorn's ``RequestResponseCycle.send`` writes it, in one write."""
        status, headers, content = answer
        if self.access_log:
            scope = beat.seen
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(scope),  # type: ignore[arg-type]
                scope["method"],
                get_path_with_query_string(scope),  # type: ignore[arg-type]
                scope["http_version"],
                status,
            )
        defaults = self.server_state.default_headers
        parts = [STATUS_LINE[status], _default[1] if _default[0] is defaults else _default_block(defaults)]
        has_connection_close = False
        lines = _LINES
        for header in headers:
            got = lines.get(header)
            if got is None:
                got = _line(header)
            line, closes = got
            parts.append(line)
            if closes:
                beat.keep_alive = False
                has_connection_close = True
        if not beat.keep_alive and not has_connection_close:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", content)
        self.transport.write(b"".join(parts))
        beat.response_complete = True
        if not beat.keep_alive:
            self.transport.close()
        self.on_response_complete()
        self._let_go(beat)
        if beat.marks is not None:  # (marks only while tracing: no property read per beat)
            trace = self._front[0].trace if self._front is not None else None
            if trace is not None:
                trace.beat(beat.taken[0], beat.body, beat.marks, time.perf_counter(), "group")

    def _let_go(self, beat: _Beat) -> None:
        """Drop the connection's references to an answered beat and the request it read.

        uvicorn keeps a request's scope, headers and cycle on the connection until the next
        request begins; for a beat that is its environ, the scope's copy and the signed session
        too, a few kB per connection for the whole cadence (10,000 connections per worker at the
        issue's 20,000 learners): old objects the garbage collector walks again and again. Only
        what no later request has taken over: a request begun behind the beat keeps its own."""
        if self.cycle is beat:  # type: ignore[comparison-overlap]
            self.cycle = None  # type: ignore[assignment]
        if self.scope is beat.scope:
            self.scope = None  # type: ignore[assignment]
            self.headers = None  # type: ignore[assignment]

    def _hand(self, beat: _Beat) -> None:
        """The beat to the Flask view through uvicorn's path, with the body it sent (as
        ``BeatASGI`` hands one on: the scope marked ``HANDED``)."""
        scope = {**beat.scope, HANDED: True}
        cycle = RequestResponseCycle(
            scope=scope,  # type: ignore[arg-type]
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=beat.keep_alive,
            on_response=self.on_response_complete,
        )
        cycle.body = bytearray(beat.body)
        cycle.more_body = False
        cycle.message_event.set()
        if beat.disconnected:
            # The client went away while the writer had the beat: the view still gets its body
            # (as ``BeatASGI``'s ``_replay`` gives it) and stores the beat or its refusal, and
            # only then sees the disconnect; its answer goes nowhere (uvicorn's ``send``).
            receive = cycle.receive

            async def body_then_gone() -> Any:
                message = await receive()
                cycle.disconnected = True
                return message

            cycle.receive = body_then_gone  # type: ignore[method-assign]
        beat.response_complete = True
        if self.cycle is beat:  # type: ignore[comparison-overlap]
            self.cycle = cycle
        self._start_asgi_task(cycle, self.app)
        trace = self._front[0].trace if self._front is not None else None
        if trace is not None and beat.marks is not None:
            trace.beat(beat.taken[0], beat.body, beat.marks, time.perf_counter(), "view")


#: The server's default headers (uvicorn makes a new list every second, for its ``date``) and
#: their lines, as ``RequestResponseCycle.send`` writes them: built once a second, not per answer.
_default: list[Any] = [None, b""]


def _default_block(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    if _default[0] is not default_headers:
        _default[:] = [default_headers, b"".join(b"%s: %s\r\n" % (name, value) for name, value in default_headers)]
    return _default[1]


#: Answer header -> its line as ``RequestResponseCycle.send`` writes it (the name lower-cased)
#: and whether it asks to close the connection: the answers' headers repeat (their names, types,
#: lengths), so each is encoded once.
_LINES: dict[tuple[bytes, bytes], tuple[bytes, bool]] = {}
#: A bound on distinct headers kept: past it, lines are made, not kept.
_LINES_MAX = 4096


def _line(header: tuple[bytes, bytes]) -> tuple[bytes, bool]:
    name, value = header
    name = name.lower()
    closes = name == b"connection" and b"close" in [token.lower().strip() for token in value.split(b",")]
    got = (b"%s: %s\r\n" % (name, value), closes)
    if len(_LINES) < _LINES_MAX:
        _LINES[header] = got
    return got


class BeatWorker(UvicornWorker):
    """gunicorn's uvicorn worker with the beat route's fast path (:class:`BeatHttpProtocol`)."""

    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "http": "lms_core.learning.beat_http:BeatHttpProtocol"}
