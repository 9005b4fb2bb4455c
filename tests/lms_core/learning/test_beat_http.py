"""The heartbeat route's fast path inside uvicorn's HTTP protocol (learning/beat_http.py).

Two real uvicorn servers on sockets, around the same ASGI front: one with the fast path
(``BeatHttpProtocol``), one with uvicorn's own httptools protocol (the path every request
took before). Two learners beat the same beats at the same frozen times, one through each:
the answers must be the same bytes (the ``date`` header aside), the rows the same, and what
does not fit the fast path (``Expect``, chunked, too large, another path or method, a beat
the writer hands to the view) must be answered as uvicorn's path answers it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httptools
import pytest
import time_machine
import uvicorn
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lms_core.extensions import db
from lms_core.learning import beat_http
from lms_core.learning.models import LearningInterval, RefusedBeat
from plugins.anti_idle.models import Beat
from tests.lms_core.learning.test_beat_asgi import AGENT, people, signed
from tests.lms_core.learning.test_beat_front import T0, Player, beats, rows

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)


class Served:
    """A uvicorn server on a thread, on a socket of its own, serving ``asgi``."""

    def __init__(self, asgi: Any, protocol: type, **config: Any) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        # A long keep-alive: the tests keep one connection across many exchanges, and uvicorn's
        # default 5 s closed it between two beats when the machine was loaded (the next read
        # saw the close: "connection closed with b''"); no test here is about that timer.
        options: dict[str, Any] = {
            "lifespan": "off",
            "log_config": None,
            "loop": "asyncio",
            "access_log": True,
            "timeout_keep_alive": 300,
        }
        self.server = uvicorn.Server(uvicorn.Config(asgi, http=protocol, **(options | config)))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not (self.server.started and self.server.server_state.default_headers):  # the date header set
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)

    def connect(self) -> socket.socket:
        conn = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def servers(asgi) -> Iterator[tuple[Served, Served]]:
    """(the fast path's server, uvicorn's own path's server), around the same ASGI front."""
    fast, plain = Served(asgi, beat_http.BeatHttpProtocol), Served(asgi, HttpToolsProtocol)
    yield fast, plain
    fast.stop()
    plain.stop()


@pytest.fixture
def taken(monkeypatch) -> list[str]:
    """The beats the fast path answered itself ("fast") or handed to the view ("handed")."""
    seen: list[str] = []
    write, hand = beat_http.BeatHttpProtocol._write, beat_http.BeatHttpProtocol._hand

    def spy_write(self: Any, beat: Any, answer: Any) -> None:
        seen.append("fast")
        write(self, beat, answer)

    def spy_hand(self: Any, beat: Any) -> None:
        seen.append("handed")
        hand(self, beat)

    monkeypatch.setattr(beat_http.BeatHttpProtocol, "_write", spy_write)
    monkeypatch.setattr(beat_http.BeatHttpProtocol, "_hand", spy_hand)
    return seen


def request(
    player: Player,
    body: bytes,
    *,
    method: str = "POST",
    path: str | None = None,
    headers: dict[str, str] | None = None,
    repeated: tuple[tuple[str, str], ...] = (),
    version: str = "1.1",
) -> bytes:
    """The raw request a browser sends for a beat (the player's cookie, CSRF header, agent);
    ``repeated``: header lines added as they are, a name more than once if need be."""
    cookie = player.client.get_cookie(player.app.config["SESSION_COOKIE_NAME"])
    sent = {
        "Host": "localhost",
        "User-Agent": AGENT,
        "Cookie": f"{cookie.key}={cookie.value}",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "X-CSRFToken": player.token,
    }
    for name, value in (headers or {}).items():
        sent.pop(name, None)
        if value:
            sent[name] = value
    lines = [*sent.items(), *repeated]
    head = f"{method} {path or player.path} HTTP/{version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in lines)
    if sent.get("Transfer-Encoding") == "chunked":
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return head.encode("latin-1") + b"\r\n" + body


class Reader:
    """Responses read off a connection, one at a time (a 100 Continue is kept apart)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn, self.buffer, self.continues = conn, b"", 0

    def _fill(self) -> bool:
        chunk = self.conn.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> bytes:
        """The next whole response, its ``date`` header taken out."""
        while True:
            while b"\r\n\r\n" not in self.buffer:
                assert self._fill(), f"connection closed with {self.buffer!r}"
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            if head.startswith(b"HTTP/1.1 100 "):
                self.continues += 1
                self.buffer = rest
                continue
            lines = head.split(b"\r\n")
            length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:"))
            while len(rest) < length:
                assert self._fill()
                rest = self.buffer.partition(b"\r\n\r\n")[2]
            self.buffer = rest[length:]
            kept = [line for line in lines if not line.lower().startswith(b"date:")]
            assert len(kept) == len(lines) - 1, "one date header"
            return b"\r\n".join(kept) + b"\r\n\r\n" + rest[:length]

    def closed(self) -> bool:
        """Whether the server closes the connection (nothing more comes)."""
        return not self.buffer and not self._fill()


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def answer(response: bytes) -> dict[str, Any]:
    return json.loads(response.partition(b"\r\n\r\n")[2])


def seq_of(response: bytes) -> int:
    """The seq of an accepted beat's answer (the tests' beats report their seq as their position)."""
    got = answer(response)
    assert got["accepted"] is True, got
    return int(got["position"])


def exchange(server: Served, raw: bytes) -> bytes:
    with server.connect() as conn:
        conn.sendall(raw)
        return Reader(conn).response()


def test_the_fast_path_answers_uvicorns_bytes_and_stores_the_same_rows(app, kit, tree, servers, taken):
    fast, plain = servers
    a, b = people(app, kit, tree, 2)
    one, other = Player(app, kit, a, lean=True), Player(app, kit, b, lean=True)
    with fast.connect() as quick, plain.connect() as slow:  # keep-alive: every beat on one connection
        quick_reader, slow_reader = Reader(quick), Reader(slow)
        for at, body in beats():
            with time_machine.travel(at, tick=False):
                quick.sendall(request(one, signed(one, body)))
                got = quick_reader.response()
                slow.sendall(request(other, signed(other, body)))
                expected = slow_reader.response()
            assert got == expected, body
            assert status(got) == 200 and b"\r\nserver: uvicorn\r\n" in got
    # Each beat answered by the fast path, or handed on by the writer (on PostgreSQL a beat
    # the group path passes to the view, e.g. one replaying its person's day: beat_group.HandOff).
    assert len(taken) == len(beats()) and taken.count("fast") >= len(beats()) - 3
    db.session.expire_all()
    for model in (LearningInterval, RefusedBeat, Beat):
        assert rows(model, one.session_id) == rows(model, other.session_id), model.__name__


def test_pipelined_requests_are_answered_in_order_and_connection_close_is_kept(app, kit, tree, servers, taken):
    fast, _plain = servers
    (a,) = people(app, kit, tree, 1)
    player = Player(app, kit, a, lean=True)
    at = T0 + dt.timedelta(seconds=10)
    page = f"GET /learn/lessons/{kit.video.id} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    with time_machine.travel(at, tick=False), fast.connect() as conn:
        reader = Reader(conn)
        # A beat, a page behind it and a beat behind that, in one write: the page waits for
        # the fast beat, and the second beat, with the page in flight, goes uvicorn's way.
        conn.sendall(
            request(player, signed(player, {"seq": 1, "event": "heartbeat", "position": 1}))
            + page
            + request(player, signed(player, {"seq": 2, "event": "heartbeat", "position": 2}))
        )
        first, second, third = reader.response(), reader.response(), reader.response()
        assert seq_of(first) == 1 and seq_of(third) == 2
        assert status(second) in (200, 302) and b"application/json" not in second
        assert taken == ["fast"]
        # Keep-alive: the connection serves on; a beat asking to close is answered, then closed.
        conn.sendall(request(player, signed(player, {"seq": 3, "event": "heartbeat", "position": 3})))
        assert seq_of(reader.response()) == 3
        close = {"Connection": "close"}
        conn.sendall(request(player, signed(player, {"seq": 4, "event": "heartbeat", "position": 4}), headers=close))
        last = reader.response()
        assert seq_of(last) == 4 and b"\r\nconnection: close\r\n" in last
        assert reader.closed()
    assert taken == ["fast"] * 3
    with time_machine.travel(at, tick=False), fast.connect() as conn:  # HTTP/1.0: closed after the answer
        conn.sendall(request(player, signed(player, {"seq": 5, "event": "heartbeat", "position": 5}), version="1.0"))
        reader = Reader(conn)
        old = reader.response()
        assert seq_of(old) == 5 and b"\r\nconnection: close\r\n" in old and reader.closed()
    assert taken == ["fast"] * 4


@pytest.mark.parametrize(
    "case",
    ["expect", "chunked", "too large", "another path", "another method", "a late beat (to the view)"],
)
def test_what_does_not_fit_is_answered_as_uvicorns_path_answers_it(app, kit, tree, servers, taken, case):
    fast, plain = servers
    a, b = people(app, kit, tree, 2)
    one, other = Player(app, kit, a, lean=True), Player(app, kit, b, lean=True)
    at = T0 + dt.timedelta(seconds=10)
    body: dict[str, Any] = {"seq": 1, "event": "heartbeat", "position": 1}
    options: dict[str, Any] = {}
    if case == "expect":
        options["headers"] = {"Expect": "100-continue"}
    elif case == "chunked":
        options["headers"] = {"Transfer-Encoding": "chunked", "Content-Length": ""}
    elif case == "too large":
        body["padding"] = "x" * (beat_http.BODY_MAX + 1)
    elif case == "another method":
        options["method"] = "PUT"
    elif case == "a late beat (to the view)":
        body["at"] = int((at - dt.timedelta(hours=30)).timestamp() * 1000)
    if case in ("another path", "another method"):
        other = one  # nothing is stored: the same learner's page both ways (it names them)
    with time_machine.travel(at, tick=False):
        if case == "another path":
            options["path"] = one.path + "s"
        got = exchange(fast, request(one, signed(one, body), **options))
        if case == "another path":
            options["path"] = other.path + "s"
        expected = exchange(plain, request(other, signed(other, body), **options))
    assert got == expected
    if case == "a late beat (to the view)":
        assert status(got) == 422 and answer(got)["refused"] == "late" and taken == ["handed"]
        assert db.session.query(RefusedBeat).filter_by(session_id=one.session_id, reason="late").count() == 1
    else:
        assert taken == []


def test_a_handed_beat_keeps_its_place_among_pipelined_requests(app, kit, tree, servers, taken):
    fast, _plain = servers
    (a,) = people(app, kit, tree, 1)
    player = Player(app, kit, a, lean=True)
    at = T0 + dt.timedelta(seconds=10)
    late = int((at - dt.timedelta(hours=30)).timestamp() * 1000)
    with time_machine.travel(at, tick=False), fast.connect() as conn:
        reader = Reader(conn)
        conn.sendall(
            request(player, signed(player, {"seq": 1, "event": "heartbeat", "position": 1, "at": late}))
            + request(player, signed(player, {"seq": 2, "event": "heartbeat", "position": 2}))
        )
        first, second = reader.response(), reader.response()
    assert status(first) == 422 and seq_of(second) == 2
    assert taken == ["handed"]


def test_the_client_address_is_the_one_uvicorns_proxy_headers_give(app, kit, tree, asgi, monkeypatch, taken):
    seen: list[tuple[str, str]] = []
    take = asgi.front.take

    def spy(environ: dict[str, Any]) -> Any:
        seen.append((environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]))
        return take(environ)

    monkeypatch.setattr(asgi.front, "take", spy)
    (a,) = people(app, kit, tree, 1)
    player = Player(app, kit, a, lean=True)
    forwarded = (("X-Forwarded-For", "10.1.2.3, 10.4.5.6"), ("X-Forwarded-Proto", "https"))
    # A header twice (uvicorn from 0.49 joins the addresses and takes the last scheme; 0.48
    # took neither, before it the last address: setup.cfg requires 0.49).
    twice = (
        ("X-Forwarded-For", "10.1.2.3"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-For", "10.4.5.6"),
        ("X-Forwarded-Proto", "https"),
    )
    cases = [  # (forwarded_allow_ips, headers, the address and scheme the app sees)
        ("127.0.0.1", (), ("127.0.0.1", "http")),
        ("127.0.0.1", forwarded, ("10.4.5.6", "https")),
        ("127.0.0.1,10.4.5.6", forwarded, ("10.1.2.3", "https")),
        ("*", forwarded, ("10.1.2.3", "https")),
        ("10.9.9.9", forwarded, ("127.0.0.1", "http")),
        ("*", twice, ("10.1.2.3", "https")),
        ("127.0.0.1", twice, ("10.4.5.6", "https")),
    ]
    seq = 0
    for allowed, headers, expected in cases:
        for protocol in (beat_http.BeatHttpProtocol, HttpToolsProtocol):
            server = Served(asgi, protocol, forwarded_allow_ips=allowed)
            seen.clear()
            try:
                seq += 1
                with time_machine.travel(T0 + dt.timedelta(seconds=seq), tick=False):
                    body = {"seq": seq, "event": "heartbeat", "position": 0}
                    exchange(server, request(player, signed(player, body), repeated=headers))
            finally:
                server.stop()
            # (the fast path's own check, then uvicorn's path's when it passes the beat on)
            assert seen and set(seen) == {expected}, (allowed, headers, protocol)
    # Signed in from 127.0.0.1 with no X-Forwarded-For (Flask-Login's identifier reads it):
    # only the first case's beat is the fast path's; the others go uvicorn's way.
    assert taken == ["fast"]


def test_the_access_log_line_is_uvicorns(app, kit, tree, servers, taken, caplog):
    fast, plain = servers
    a, b = people(app, kit, tree, 2)
    one, other = Player(app, kit, a, lean=True), Player(app, kit, b, lean=True)
    body = {"seq": 1, "event": "heartbeat", "position": 1}
    with caplog.at_level(logging.INFO, logger="uvicorn.access"), time_machine.travel(T0, tick=False):
        exchange(fast, request(one, signed(one, body)))
        exchange(plain, request(other, signed(other, body)))
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert len(lines) == 2 and taken == ["fast"]
    same = [re.sub(r"^127\.0\.0\.1:\d+ ", "127.0.0.1:PORT ", line) for line in lines]
    assert same[0].replace(one.path, "PATH") == same[1].replace(other.path, "PATH")
    assert same[0] == '127.0.0.1:PORT - "POST PATH HTTP/1.1" 200'.replace("PATH", one.path)


def test_a_connection_closed_mid_body_records_nothing_and_the_server_serves_on(app, kit, tree, servers, taken):
    fast, _plain = servers
    (a,) = people(app, kit, tree, 1)
    player = Player(app, kit, a, lean=True)
    with time_machine.travel(T0 + dt.timedelta(seconds=10), tick=False):
        raw = request(player, signed(player, {"seq": 1, "event": "heartbeat", "position": 1}))
        with fast.connect() as conn:
            conn.sendall(raw[:-10])  # the headers and most of the body, then gone
        time.sleep(0.2)  # let the server see the close before the next connection
        again = exchange(fast, raw)  # the same beat, whole this time: new, not a repeat
    assert seq_of(again) == 1 and answer(again)["duplicate"] is False and taken == ["fast"]


def test_the_setting_turns_the_fast_path_off(app, kit, tree, asgi, taken):
    app.config["LMS_BEAT_HTTP_FAST"] = False
    server = Served(asgi, beat_http.BeatHttpProtocol)
    try:
        (a,) = people(app, kit, tree, 1)
        player = Player(app, kit, a, lean=True)
        with time_machine.travel(T0 + dt.timedelta(seconds=10), tick=False):
            got = exchange(server, request(player, signed(player, {"seq": 1, "event": "heartbeat", "position": 1})))
    finally:
        server.stop()
    assert seq_of(got) == 1 and taken == []


def test_an_older_uvicorn_without_what_the_fast_path_uses_gets_uvicorns_path(asgi, monkeypatch):
    """uvicorn before 0.45 kept no ``get_trusted_client_address`` on its trusted hosts (a
    ``set`` before 0.32) and started a request's task inline (no ``_start_asgi_task``), and
    before 0.49 read repeated proxy headers otherwise; setup.cfg requires 0.49, but an install
    may hold another. The fast path then stands aside rather than raise in the parser's or the
    writer's callback or give a beat another client address than uvicorn's path gives it."""
    proxied = SimpleNamespace(loaded_app=ProxyHeadersMiddleware(asgi, "127.0.0.1"))
    bare = SimpleNamespace(loaded_app=asgi)
    assert beat_http.front_of(proxied) is not None and beat_http.front_of(bare) is not None
    monkeypatch.setattr(uvicorn, "__version__", "0.48.0")
    assert beat_http.front_of(bare) is None
    monkeypatch.setattr(uvicorn, "__version__", "0.49.0")
    assert beat_http.front_of(bare) is not None
    monkeypatch.setattr(proxied.loaded_app, "trusted_hosts", {"127.0.0.1"})
    assert beat_http.front_of(proxied) is None
    monkeypatch.delattr(HttpToolsProtocol, "_start_asgi_task")
    assert beat_http.front_of(bare) is None


def test_a_beat_the_writer_gives_back_after_its_client_left_is_still_stored_by_the_view(
    app, kit, tree, servers, asgi, monkeypatch
):
    # As on uvicorn's path (BeatASGI replays the body to the view): the view stores the beat
    # whose client closed its connection while the writer had it, and answers nobody.
    def given_back_late(beat: Any, loop: Any, callback: Any, marks: Any = None) -> None:
        loop.call_later(0.5, callback, None)  # after the close below reaches the server

    monkeypatch.setattr(asgi, "record_then", given_back_late)
    fast, plain = servers
    a, b = people(app, kit, tree, 2)
    one, other = Player(app, kit, a, lean=True), Player(app, kit, b, lean=True)
    with time_machine.travel(T0 + dt.timedelta(seconds=10), tick=False):
        for server, player in ((fast, one), (plain, other)):
            with server.connect() as conn:
                conn.sendall(request(player, signed(player, {"seq": 1, "event": "heartbeat", "position": 1})))
        deadline = time.monotonic() + 30  # the writer gives both back, the view stores them
        while True:
            time.sleep(0.2)
            db.session.expire_all()
            stored = rows(LearningInterval, other.session_id), rows(LearningInterval, one.session_id)
            if all(stored) or time.monotonic() > deadline:
                break
    assert len(stored[0]) == 1, "uvicorn's path"
    assert stored[1] == stored[0], "the fast path"


def test_a_graceful_stop_waits_for_the_answer_a_slow_reader_holds_up(app, kit, tree, asgi, monkeypatch):
    # The client reads slowly: uvicorn's transport has paused writing when the writer answers,
    # so the answer waits for the drain in a task. uvicorn keeps that task with its own
    # (server_state.tasks: what its limit_concurrency counts and its graceful-shutdown timeout
    # cancels), and a graceful stop still answers the beat, closing the connection after it.
    protocols: list[Any] = []
    made, answered = beat_http.BeatHttpProtocol.connection_made, beat_http.BeatHttpProtocol._answered
    settled = threading.Event()

    def keep(self: Any, transport: Any) -> None:
        protocols.append(self)
        made(self, transport)

    def answered_then_told(self: Any, beat: Any, answer: Any) -> None:
        answered(self, beat, answer)
        settled.set()

    record_then = asgi.record_then

    def slow_reader(beat: Any, loop: Any, callback: Any, marks: Any = None) -> None:
        protocols[-1].pause_writing()  # as the transport calls it when its buffer is full
        record_then(beat, loop, callback, marks)

    monkeypatch.setattr(beat_http.BeatHttpProtocol, "connection_made", keep)
    monkeypatch.setattr(beat_http.BeatHttpProtocol, "_answered", answered_then_told)
    monkeypatch.setattr(asgi, "record_then", slow_reader)
    server = Served(asgi, beat_http.BeatHttpProtocol)
    (a,) = people(app, kit, tree, 1)
    player = Player(app, kit, a, lean=True)
    try:
        with time_machine.travel(T0 + dt.timedelta(seconds=10), tick=False), server.connect() as conn:
            conn.sendall(request(player, signed(player, {"seq": 1, "event": "heartbeat", "position": 1})))
            assert settled.wait(timeout=30), "the writer answered"
            (protocol,) = protocols
            state = server.server.server_state
            assert len(state.tasks) == 1, "the answer's task is one of uvicorn's"
            server.server.should_exit = True
            deadline = time.monotonic() + 30
            while protocol.cycle.keep_alive:  # uvicorn's shutdown reached the connection
                assert time.monotonic() < deadline, "the server did not begin its shutdown"
                time.sleep(0.01)
            assert server.thread.is_alive() and not protocol.cycle.response_complete
            protocol.loop.call_soon_threadsafe(protocol.resume_writing)  # the client reads
            reader = Reader(conn)
            got = reader.response()
            assert reader.closed()
    finally:
        server.stop()
    assert not server.thread.is_alive() and not state.tasks
    assert seq_of(got) == 1 and b"\r\nconnection: close\r\n" in got


def _on_loop(protocol: Any, read: Any) -> Any:
    """``read()`` run on the server's loop, after the callback it is in (the answer is written
    before ``on_response_complete`` runs: the client may read it first)."""

    async def there() -> Any:
        return read()

    return asyncio.run_coroutine_threadsafe(there(), protocol.loop).result(timeout=20)


@pytest.mark.parametrize("protocol", [beat_http.BeatHttpProtocol, HttpToolsProtocol])
def test_the_keep_alive_timeout_closes_an_idle_connection_and_only_an_idle_one(app, kit, tree, asgi, protocol):
    # The fast path's protocol keeps a connection's keep-alive timer armed across requests
    # (uvicorn's cancels it when data arrives and makes a new one after each answer) and
    # checks, when it fires, how long the connection has been idle. Both must close it only
    # after a whole timeout without a request: beats spaced closer than the timeout, over
    # longer than it, keep one connection; after the last, the server closes it.
    server = Served(asgi, protocol, timeout_keep_alive=3)
    try:
        (a,) = people(app, kit, tree, 1)
        player = Player(app, kit, a, lean=True)
        played = beats()[:11]
        with server.connect() as conn:
            reader = Reader(conn)
            timers = []
            for k, (at, body) in enumerate(played):
                with time_machine.travel(at, tick=False):
                    conn.sendall(request(player, signed(player, body)))
                    assert status(reader.response()) == 200
                (made,) = server.server.server_state.connections
                timers.append(_on_loop(made, lambda made=made: made.timeout_keep_alive_task))
                if k >= 2:
                    time.sleep(0.5)  # from the third beat on: 9 gaps of 0.5 s, over the 3 s timeout
            assert all(timer is not None for timer in timers)
            if protocol is beat_http.BeatHttpProtocol:
                assert timers[1] is timers[0], "armed once, not made anew per answer"
            else:
                assert timers[1] is not timers[0]
            assert reader.closed()  # idle: the server closes it after the timeout
        _on_loop(made, lambda: None)  # the close has been seen on the loop
        assert made.timeout_keep_alive_task is None
        assert not server.server.server_state.connections
    finally:
        server.stop()


def test_a_connection_the_client_closes_leaves_no_keep_alive_timer(app, kit, tree, asgi):
    server = Served(asgi, beat_http.BeatHttpProtocol, timeout_keep_alive=60)
    try:
        (a,) = people(app, kit, tree, 1)
        player = Player(app, kit, a, lean=True)
        at, body = beats()[0]
        with time_machine.travel(at, tick=False), server.connect() as conn:
            conn.sendall(request(player, signed(player, body)))
            assert status(Reader(conn).response()) == 200
            (made,) = server.server.server_state.connections
            assert _on_loop(made, lambda: made.timeout_keep_alive_task) is not None
        deadline = time.monotonic() + 20
        while _on_loop(made, lambda: made in server.server.server_state.connections):  # until connection_lost
            assert time.monotonic() < deadline, "the close was not seen"
            time.sleep(0.05)
        assert made.timeout_keep_alive_task is None
    finally:
        server.stop()


def test_an_answered_beat_is_let_go_and_a_request_begun_behind_it_is_served(app, kit, tree, servers, taken):
    # The connection drops its references to a beat once answered (10,000 idle connections a
    # worker would otherwise keep a beat's scope, environ and session each for the whole
    # cadence); a request whose head had begun to arrive behind the beat keeps its own.
    fast, _plain = servers
    (a,) = people(app, kit, tree, 1)
    player = Player(app, kit, a, lean=True)
    page = f"GET /learn/lessons/{kit.video.id} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    with time_machine.travel(T0 + dt.timedelta(seconds=10), tick=False), fast.connect() as conn:
        reader = Reader(conn)
        conn.sendall(request(player, signed(player, {"seq": 1, "event": "heartbeat", "position": 1})))
        assert seq_of(reader.response()) == 1
        (made,) = fast.server.server_state.connections
        assert _on_loop(made, lambda: (made.cycle, made.scope, made.headers)) == (None, None, None)
        conn.sendall(request(player, signed(player, {"seq": 2, "event": "heartbeat", "position": 2})) + page[:20])
        assert seq_of(reader.response()) == 2
        kept = _on_loop(made, lambda: made.scope)
        assert kept is not None and "method" not in kept  # the page's, begun behind the beat, its head unread
        conn.sendall(page[20:])
        assert status(reader.response()) in (200, 302)
        conn.sendall(request(player, signed(player, {"seq": 3, "event": "heartbeat", "position": 3})))
        assert seq_of(reader.response()) == 3
    assert taken == ["fast"] * 3


@pytest.mark.parametrize(
    "target",
    [
        b"/learn/sessions/0123456789abcdef0123456789abcdef/beat",
        b"/learn/sessions/0123456789abcdef0123456789abcdef/beat?x=1&y=%20",
        b"/learn/sessions/0123456789abcdef0123456789abcdef/be%61t",
        b"/learn/sessions/x/beat#part",
        b"//learn/sessions/x/beat",
        b"/learn/sessions/x;v=1/beat",
        b"http://localhost/learn/sessions/x/beat?x=1",
        b"*",
    ],
)
def test_a_request_target_splits_as_httptools_parses_it(target):
    parsed = httptools.parse_url(target)
    assert beat_http.BeatHttpProtocol._split_url(target) == (parsed.path, parsed.query or b"")


def test_a_beat_with_a_query_string_is_answered_as_uvicorns_path_answers_it(app, kit, tree, servers, taken):
    fast, plain = servers
    a, b = people(app, kit, tree, 2)
    one, other = Player(app, kit, a, lean=True), Player(app, kit, b, lean=True)
    body = {"seq": 1, "event": "heartbeat", "position": 1}
    with time_machine.travel(T0 + dt.timedelta(seconds=10), tick=False):
        got = exchange(fast, request(one, signed(one, body), path=one.path + "?v=2"))
        expected = exchange(plain, request(other, signed(other, body), path=other.path + "?v=2"))
    assert got == expected and seq_of(got) == 1 and taken == ["fast"]
    db.session.expire_all()
    assert rows(LearningInterval, one.session_id) == rows(LearningInterval, other.session_id)
