#!/usr/bin/env python3
"""The beat's HTTP layer in one process: uvicorn's path against the fast path (issue 8, http).

The same raw beat request is fed to a uvicorn httptools protocol on a fake transport, on a
uvloop loop, until its answer is written: once through uvicorn's own ``HttpToolsProtocol``
(the ASGI scope, a ``RequestResponseCycle`` and a task, ``ProxyHeadersMiddleware``,
``BeatASGI.__call__``, two ``send`` messages) and once through ``beat_http.BeatHttpProtocol``
(the parser's callbacks, one write). What both share is stubbed the same way: the lean
checks (``LeanBeats.take``: a fixed signed session) and the writer (``record_soon``: a future
already settled with a fixed answer; ``record_then``: the callback called soon with it); the
environ is built for real on both. So the difference is the HTTP layer's own CPU per beat.
Rounds alternate A, B, A, B; CPU is
``time.process_time``.

``--connections 1,2000,10000``: the beats take turns on that many connections (issue 8,
loop), as a worker's 1,000 to 10,000 learners' do; ``eager`` is the fast path with uvicorn's
own keep-alive timer (``bench/beat_http_eager.py``), the A of the lazy timer's A/B.

    .venv/bin/python bench/beat_http_micro.py --beats 20000 --rounds 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop  # noqa: E402
from uvicorn.config import Config  # noqa: E402
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: E402
from uvicorn.server import ServerState  # noqa: E402

from bench.beat_http_eager import EagerProtocol  # noqa: E402
from lms_core.learning import beat_asgi, beat_front, beat_http  # noqa: E402

BODY = b'{"seq":7,"event":"heartbeat","position":12.5,"segments":[[2.5,12.5]],"client":{"visibility":"visible"}}'
ANSWER = b'{"accepted":true,"duplicate":false,"credited_ms":10000,"coverage":12.5,"position":12.5}\n'


class Transport:
    """What the protocol uses of an asyncio transport; counts the bytes written."""

    def __init__(self, port: int = 50000) -> None:
        self.written = 0
        self.closing = False
        self.port = port

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", self.port)}.get(name, default)


#: ``front(checks="real")``: the signed session cookie and CSRF header :func:`request` sends.
SIGNED: dict[str, str] = {}


def front(checks: str = "stub") -> beat_asgi.BeatASGI:
    """The beat front with the writer stubbed; its checks (``LeanBeats.take``) stubbed with a
    fixed signed session (``stub``), or run for real (``real``: :func:`request` then sends a
    cookie and a CSRF token the app signed, verified once and then found in the cache, as a
    player's every later beat is)."""
    from lms_core import create_app

    instance = tempfile.mkdtemp(prefix="beat_http_micro.")
    app = create_app({"SECRET_KEY": "micro", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance}/x.db"})
    beats = beat_asgi.BeatASGI(app)
    if checks == "real":
        from itsdangerous import URLSafeTimedSerializer

        seen = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": AGENT}
        signed = {"_user_id": "1:1", "_id": beat_front._identifier(seen), "csrf_token": "t" * 40}
        with app.app_context():
            SIGNED["cookie"] = app.session_interface.get_signing_serializer(app).dumps(signed)  # type: ignore[attr-defined]
        SIGNED["csrf"] = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(signed["csrf_token"])  # type: ignore[arg-type]
    else:
        SIGNED.clear()
        session = {"_user_id": "1:1"}
        beats.front.take = lambda environ: ("0" * 32, session)  # type: ignore[method-assign]
    answer = (
        200,
        [(b"Content-Type", b"application/json"), (b"Content-Length", b"%d" % len(ANSWER)), *beat_front._HEADERS_ASGI],
        ANSWER,
    )

    def record_soon(beat: Any, loop: asyncio.AbstractEventLoop, marks: Any = None) -> asyncio.Future[Any]:
        future = loop.create_future()
        future.set_result(answer)
        return future

    def record_then(beat: Any, loop: asyncio.AbstractEventLoop, callback: Any, marks: Any = None) -> None:
        loop.call_soon(callback, answer)  # as the writer's one call into the loop would

    beats.record_soon = record_soon  # type: ignore[method-assign]
    beats.record_then = record_then  # type: ignore[method-assign]
    return beats


AGENT = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"


def request() -> bytes:
    cookie, csrf = SIGNED.get("cookie", "x" * 180), SIGNED.get("csrf", "y" * 90)
    head = (
        "POST /learn/sessions/0123456789abcdef0123456789abcdef/beat HTTP/1.1\r\n"
        f"Host: lms.example.cn\r\nUser-Agent: {AGENT}\r\n"
        "Accept: */*\r\nAccept-Language: zh-CN,zh;q=0.9\r\nOrigin: https://lms.example.cn\r\n"
        "Referer: https://lms.example.cn/learn/lessons/1\r\nCookie: session=" + cookie + "\r\n"
        "X-CSRFToken: " + csrf + "\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY


def run(
    loop: asyncio.AbstractEventLoop, protocol_class: type, beats: beat_asgi.BeatASGI, n: int, connections: int = 1
) -> float:
    """CPU seconds per beat for ``n`` beats, taken in turn on ``connections`` keep-alive
    connections (each learner's connection beats once in a turn, as 10,000 learners per
    worker do: every beat finds its connection's objects cold and its keep-alive timer armed
    among the others')."""
    config = Config(beats, http=protocol_class, lifespan="off", log_config=None, access_log=False)
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Sun, 06 Dec 2026 13:00:00 GMT"), *config.encoded_headers]
    opened = []
    for i in range(connections):
        protocol = protocol_class(config, state, {}, loop)
        transport = Transport(10_000 + i)
        protocol.connection_made(transport)
        opened.append((protocol, transport))
    raw = request()

    async def one(protocol: Any, transport: Transport) -> None:
        before = transport.written
        protocol.data_received(raw)
        while transport.written == before:
            await asyncio.sleep(0)

    async def many() -> float:
        for protocol, transport in opened:  # warm: every connection has answered once, its timer armed
            await one(protocol, transport)
        written = sum(transport.written for _p, transport in opened)
        turns = -(-n // connections)
        started = time.process_time()
        for _ in range(turns):
            for protocol, transport in opened:
                await one(protocol, transport)
        spent = time.process_time() - started
        per = (sum(transport.written for _p, transport in opened) - written) / (turns * connections)
        assert per > len(ANSWER), per
        return spent / (turns * connections)

    result = loop.run_until_complete(many())
    for protocol, transport in opened:
        transport.closing = True
        protocol.connection_lost(None)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--beats", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--kinds",
        default="uvicorn,eager,fast",
        help="protocols: uvicorn's own, the fast path with uvicorn's keep-alive timer (eager), the fast path",
    )
    parser.add_argument(
        "--connections",
        default="1",
        help="keep-alive connections the beats take turns on, comma-separated for several runs (e.g. 1,2000,10000)",
    )
    parser.add_argument("--checks", choices=["stub", "real"], default="stub", help="LeanBeats.take stubbed or real")
    args = parser.parse_args(argv)
    beats = front(args.checks)
    beat_asgi.tune_gc(beats.app.config)  # as the worker at start-up (gc.freeze, gen0 20,000)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    counts = [int(c) for c in args.connections.split(",")]
    kinds = [("uvicorn", HttpToolsProtocol), ("eager", EagerProtocol), ("fast", beat_http.BeatHttpProtocol)]
    kinds = [kind for kind in kinds if kind[0] in args.kinds.split(",")]
    results: dict[str, list[float]] = {f"{name} x{c}": [] for c in counts for name, _cls in kinds}
    print(f"load average {os.getloadavg()[0]:.2f}")
    for _ in range(args.rounds):
        for c in counts:
            for name, cls in kinds:
                key = f"{name} x{c}"
                results[key].append(run(loop, cls, beats, args.beats, c) * 1e6)
                print(f"  {key:16s} {results[key][-1]:6.1f} µs CPU per beat")
    for name, values in results.items():
        print(
            f"{name:16s} median {sorted(values)[len(values) // 2]:6.1f} µs  ({', '.join(f'{v:.1f}' for v in values)})"
        )
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
