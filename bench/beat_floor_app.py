"""The floor servers of bench/beat_floor.py: the least a beat endpoint can do, three steps.

Loaded by gunicorn with ``--pythonpath bench`` (never by the product)::

    gunicorn -k gthread ... 'beat_floor_app:wsgi("append")'
    gunicorn -k uvicorn_worker.UvicornWorker ... 'beat_floor_app:asgi("append")'

Modes, each the one before plus more:

``trivial``
    Read the body, answer 200 with a fixed JSON of the real answer's size. No app, no
    database: what gunicorn (gthread) or uvicorn cost per request on their own.
``checks``
    The lean front's checks, with its own functions (``lms_core/learning/beat_front.py``):
    ``LeanBeats.take`` (path, method, content type and length, the signed session cookie,
    Flask-Login's identifier, the CSRF header), ``beat_of``, in an application context
    ``principal_for`` (cached per process: one narrow SELECT per person per
    ``LMS_AUTH_CACHE_SECONDS``), ``jsonsafe.loads``, the ``lms_beat_received`` hook (the
    anti-idle plugin's envelope HMAC), and the service's body validation
    (``services._parse_beat``). A beat that fails any check answers 4xx.
``append``
    ``checks``, then the raw beat appended to ``bench_floor_beats`` by the process's writer
    thread: the beats waiting together go in one multi-row INSERT (``unnest`` of arrays;
    ``BENCH_FLOOR_APPEND=copy``: one COPY) and one COMMIT (``synchronous_commit`` on), and
    each is answered only after that COMMIT: an acknowledged beat is durable. No assessment,
    no ledger, no session state.

The ASGI app does the checks on the event loop (as the real ASGI front does ``take``) and
waits for the writer without blocking it. The WSGI app waits in its request thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

#: Same size and shape as the real beat's answer (``beat_front.answer``).
ANSWER = (
    b'{"accepted":true,"course_completed":false,"coverage":0.0,"credited_ms":10000,'
    b'"duplicate":false,"lesson_completed":false,"position":0.0,"verdict":"credit"}'
)
REFUSED = b'{"accepted":false}'
_JSON = [("Content-Type", "application/json")]
#: Beats per INSERT/COPY at most (the real group writer's ``LMS_BEAT_GROUP_MAX``).
GROUP_MAX = 64
TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS bench_floor_beats ("
    " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " received_at timestamptz NOT NULL, user_id integer NOT NULL, session_id text NOT NULL,"
    " seq integer NOT NULL, body text NOT NULL);"
    # A batched assessor reads a person's new beats by this: the append pays for it now.
    " CREATE INDEX IF NOT EXISTS bench_floor_beats_person ON bench_floor_beats (user_id, id)"
)
_INSERT = (
    "INSERT INTO bench_floor_beats (received_at, user_id, session_id, seq, body) "
    "SELECT * FROM unnest(%s::timestamptz[], %s::integer[], %s::text[], %s::integer[], %s::text[])"
)
_COPY = "COPY bench_floor_beats (received_at, user_id, session_id, seq, body) FROM STDIN"

Row = tuple[dt.datetime, int, str, int, str]


class Refused(Exception):
    """A beat the real front would not take or that its checks refuse: 4xx."""


class Checks:
    """The real front's checks of one beat, with its own functions (no copies)."""

    def __init__(self) -> None:
        from lms_core import create_app

        self.app = create_app()
        self.front = self.app.extensions["lms.beat_front"]

    def row(self, environ: dict[str, Any], body: bytes) -> Row:
        """The beat's row for the append, once every check passed; raises :class:`Refused`."""
        from flask import g

        from lms_core import jsonsafe
        from lms_core.accounts.principal import principal_for
        from lms_core.learning import beat_front, services
        from lms_core.pluginhost.manager import get_plugin_manager
        from plugins.anti_idle.envelope import VALID

        taken = self.front.take(environ)
        if taken is None:
            raise Refused
        beat = beat_front.beat_of(taken, body, environ)
        if beat is None:
            raise Refused
        with self.app.app_context():
            principal = principal_for(beat.user_id, beat.version)
            if principal is None or principal.must_change_password:
                raise Refused
            try:
                payload = jsonsafe.loads(body)
                get_plugin_manager().hook.lms_beat_received(session_id=beat.session_id, body=body)
                if g.pop("anti_idle_envelope", None) != VALID:
                    raise Refused
                parsed = services._parse_beat(payload)  # noqa: SLF001 - the service's own validation, reused
            except (jsonsafe.JSONRefused, services.BeatError):
                raise Refused from None
        return dt.datetime.now(dt.UTC), beat.user_id, beat.session_id, parsed["seq"], body.decode()


class Appender:
    """The process's writer thread: groups of waiting beats, one INSERT (or COPY) and one COMMIT each."""

    def __init__(self) -> None:
        self.dsn = os.environ["LMS_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        self.copy = os.environ.get("BENCH_FLOOR_APPEND", "insert") == "copy"
        self.queue: queue.Queue[tuple[Row, Future[None]]] = queue.Queue()
        self.pid = 0
        self.lock = threading.Lock()

    def submit(self, row: Row) -> Future[None]:
        """A future that answers once the row is committed."""
        future: Future[None] = Future()
        with self.lock:
            if self.pid != os.getpid():  # started lazily in each forked worker
                self.pid = os.getpid()
                threading.Thread(target=self._run, name="floor-append", daemon=True).start()
        self.queue.put((row, future))
        return future

    def _run(self) -> None:
        import psycopg

        conn = psycopg.connect(self.dsn)
        while True:
            group = [self.queue.get()]
            while len(group) < GROUP_MAX:
                try:
                    group.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            rows = [row for row, _f in group]
            try:
                with conn.cursor() as cur:
                    if self.copy:
                        with cur.copy(_COPY) as copy:
                            for row in rows:
                                copy.write_row(row)
                    else:
                        cur.execute(_INSERT, [list(column) for column in zip(*rows, strict=True)])
                conn.commit()
            except Exception as exc:  # noqa: BLE001 - every waiting beat gets the failure, none is lost silently
                conn.rollback()
                for _row, future in group:
                    future.set_exception(exc)
                continue
            for _row, future in group:
                future.set_result(None)


# --- WSGI (gunicorn gthread) ------------------------------------------------------------

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wsgi(mode: str) -> WSGIApp:
    """The floor as a WSGI app (``mode``: trivial, checks, append)."""
    checks = Checks() if mode in ("checks", "append") else None
    appender = Appender() if mode == "append" else None

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH") or "0"
        body = environ["wsgi.input"].read(int(length)) if length.isdigit() else b""
        answer, status = ANSWER, "200 OK"
        if checks is not None and environ["REQUEST_METHOD"] == "POST":
            try:
                row = checks.row(environ, body)
            except Refused:
                answer, status = REFUSED, "400 Bad Request"
            else:
                if appender is not None:
                    appender.submit(row).result()  # durable before the answer
        start_response(status, [*_JSON, ("Content-Length", str(len(answer)))])
        return [answer]

    return app


# --- ASGI (uvicorn workers) -------------------------------------------------------------


def asgi(mode: str) -> Callable[..., Any]:
    """The floor as an ASGI app (``mode``: trivial, checks, append)."""
    checks = Checks() if mode in ("checks", "append") else None
    appender = Appender() if mode == "append" else None
    build_environ = None
    if checks is not None:
        from a2wsgi.wsgi import build_environ  # the real ASGI front's environ (beat_asgi)

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[1]  # startup / shutdown
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        answer, status = ANSWER, 200
        if checks is not None and build_environ is not None and scope["method"] == "POST":
            try:
                row = checks.row(build_environ(scope, None), body)  # type: ignore[arg-type]
            except Refused:
                answer, status = REFUSED, 400
            else:
                if appender is not None:
                    await asyncio.wrap_future(appender.submit(row))  # durable before the answer
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return app
