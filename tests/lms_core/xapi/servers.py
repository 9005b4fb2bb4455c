"""Real HTTP servers on 127.0.0.1 for the xAPI tests.

* :class:`Recorder`: answers canned responses and records every request
  exactly as it arrived on the wire (to show what tincan sends).
* :class:`FakeLRS`: a deliberately small statements-only LRS, used to drive
  error paths (5xx, 4xx for one statement) that a conformant LRS never shows on
  demand. Delivery to the real LRS is tested in ``test_delivery_lrs.py``.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """A WSGI app served over HTTP in a daemon thread; ``start``/``stop`` can repeat."""

    def __init__(self, app: Callable[..., Any], port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> ServerThread:
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = self._thread = None


@dataclass
class Seen:
    method: str
    path: str
    args: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """Records requests; ``responses[(method, path)] = (status, headers, body)``."""

    responses: dict[tuple[str, str], tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.seen.append(
            Seen(
                request.method,
                request.path,
                request.args.to_dict(flat=False),
                {k.lower(): v for k, v in request.headers.items()},
                request.get_data(),
            )
        )
        status, headers, body = self.responses.get((request.method, request.path), (204, {}, b""))
        return Response(body, status=status, headers=headers)(environ, start_response)


@dataclass
class FakeLRS:
    """Statements only: POST (single or array), PUT, GET by id; Basic auth; 409 on conflicts.

    ``fail_status`` makes every statements request answer that status;
    ``reject_marker`` makes any batch containing a statement whose verb id ends
    with it answer 400, as a strict LRS does for one invalid statement.
    """

    key: str = "lms-core"
    secret: str = "s3cret-key"
    statements: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_status: int | None = None
    reject_marker: str | None = None
    posts: int = 0
    #: Statements accepted over all requests, duplicates included.
    received: int = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.handle(Request(environ))(environ, start_response)

    def _error(self, status: int, message: str) -> Response:
        return Response(json.dumps({"error": message}), status=status, content_type="application/json")

    def handle(self, request: Request) -> Response:
        if request.headers.get("X-Experience-API-Version") != "1.0.3":
            return self._error(400, "X-Experience-API-Version 1.0.3 required")
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != (self.key, self.secret):
            return self._error(401, "bad credentials")
        if request.path != "/xapi/statements":
            return self._error(404, "not here")
        if self.fail_status:
            return self._error(self.fail_status, "failing on purpose")
        if request.method == "GET":
            found = self.statements.get(request.args.get("statementId", ""))
            return Response(json.dumps(found), content_type="application/json") if found else self._error(404, "no")
        body = json.loads(request.get_data().decode("utf-8"))
        batch = body if isinstance(body, list) else [body]
        if request.method == "PUT":
            wanted = request.args.get("statementId")
            if not wanted or len(batch) != 1 or batch[0].get("id", wanted) != wanted:
                return self._error(400, "statementId mismatch")
            batch[0]["id"] = wanted
        self.posts += request.method == "POST"
        for statement in batch:
            if self.reject_marker and statement.get("verb", {}).get("id", "").endswith(self.reject_marker):
                return self._error(400, f"invalid statement {statement.get('id')}")
            old = self.statements.get(statement.get("id", ""))
            if old is not None and old != statement:
                return self._error(409, f"statement {statement['id']} exists with other content")
        ids = []
        self.received += len(batch)
        for statement in batch:
            statement.setdefault("id", str(uuid.uuid4()))
            self.statements.setdefault(statement["id"], statement)
            ids.append(statement["id"])
        if request.method == "PUT":
            return Response(status=204)
        return Response(json.dumps(ids), content_type="application/json")
