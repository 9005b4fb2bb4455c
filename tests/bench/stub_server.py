"""A small asyncio HTTP server for the load generators' tests (test_open_loop.py,
test_open_loop_c.py): it checks each beat's signature, records what it received and from whom,
and answers as the test says, late, wrongly, or not at all.

:func:`listen` serves on the caller's loop (a generator driven on the same loop);
:func:`serving` on a loop of its own in a thread (a generator in other processes: the C
programs, ``open_loop.drive_split``), started and stopped around the ``with`` block.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: The learners' signing key (every test learner signs with it).
KEY = "ab" * 32


@dataclass
class Seen:
    """What the server received."""

    beats: dict[str, list[int]] = field(default_factory=dict)  # peer -> seqs kept (answered or held), in order
    received: dict[str, list[int]] = field(default_factory=dict)  # peer -> every beat's seq, dropped ones too
    paths: list[str] = field(default_factory=list)
    bad_signatures: int = 0
    pipelined: int = 0  # a request that arrived while the connection's last one was unanswered
    connections: dict[str, int] = field(default_factory=dict)  # peer -> connections made
    dropped: int = 0  # requests whose connection was closed unanswered


#: How the server answers one request: ``(peer, connection's nth request, seq) -> (status, body)``
#: (after the server's delay) or ``(status, body, delay)``; None: close the connection
#: unanswered; ``"hold"``: never answer. ``seq`` is 0 for a request that is not a beat.
Answer = Callable[[str, int, int], "tuple[int, bytes] | tuple[int, bytes, float] | str | None"]


def ok(_peer: str, _nth: int, seq: int) -> tuple[int, bytes]:
    """200 with the beat's seq."""
    return 200, b'{"seq":%d}' % seq


class StubServer(asyncio.Protocol):
    """One connection: each request (several in one read too) checked, recorded and answered."""

    def __init__(self, seen: Seen, answer: Answer = ok, delay: float = 0.0) -> None:
        self.seen, self.answer, self.delay = seen, answer, delay
        self.buf = b""
        self.waiting = False
        self.nth = 0
        self.transport: Any = None
        self.peer = ""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername")[0]
        self.seen.connections[self.peer] = self.seen.connections.get(self.peer, 0) + 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = self.buf[:end].decode()
            length = int(next(x for x in head.split("\r\n") if x.startswith("Content-Length:")).split(":")[1])
            if len(self.buf) < end + 4 + length:
                return
            body, self.buf = self.buf[end + 4 : end + 4 + length], self.buf[end + 4 + length :]
            if self.waiting:
                self.seen.pipelined += 1
            self.waiting = True
            self.nth += 1
            path = head.split(" ")[1]
            self.seen.paths.append(path)
            seq = 0
            if path.endswith("/beat"):
                signed, sig = body[: body.rindex(b',"sig":')] + b"}", json.loads(body)["sig"]
                if hmac.new(KEY.encode(), signed, hashlib.sha256).hexdigest() != sig:
                    self.seen.bad_signatures += 1
                seq = json.loads(body)["seq"]
                self.seen.received.setdefault(self.peer, []).append(seq)
            answer = self.answer(self.peer, self.nth, seq)
            if answer is None:
                self.seen.dropped += 1
                self.transport.close()
                return
            if seq:
                self.seen.beats.setdefault(self.peer, []).append(seq)
            if answer == "hold":
                continue
            status, text, *late = answer
            asyncio.get_running_loop().call_later(late[0] if late else self.delay, self._reply, status, text)

    def _reply(self, status: int, body: bytes) -> None:
        self.waiting = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(
                b"HTTP/1.1 %d X\r\nserver: t\r\ncontent-length: %d\r\n\r\n" % (status, len(body)) + body
            )


async def listen(seen: Seen, answer: Answer = ok, delay: float = 0.0) -> asyncio.Server:
    """The server on the running loop, on a free local port (``server.sockets[0]``)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: StubServer(seen, answer, delay), "127.0.0.1", 0)


@dataclass
class Serving:
    """The threaded server's port and what it saw."""

    port: int
    seen: Seen


@contextlib.contextmanager
def serving(answer: Answer = ok, delay: float = 0.0) -> Iterator[Serving]:
    """The server on a loop of its own, in a thread, for the ``with`` block."""
    seen = Seen()
    ready = threading.Event()
    box: dict[str, Any] = {}

    def main() -> None:
        async def go() -> None:
            server = await listen(seen, answer, delay)
            box["port"], box["stop"] = server.sockets[0].getsockname()[1], asyncio.get_running_loop().create_future()
            ready.set()
            await box["stop"]
            server.close()

        asyncio.run(go())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(10), "the test server did not start"
    try:
        yield Serving(box["port"], seen)
    finally:
        stop = box["stop"]
        stop.get_loop().call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
