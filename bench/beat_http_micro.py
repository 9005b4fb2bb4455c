#!/usr/bin/env python3
"""The beat's HTTP layer in one process: uvicorn's path against the fast path (issue 8, http).

The same raw beat request is fed to a uvicorn httptools protocol on a fake transport, on a
uvloop loop, until its answer is written: once through uvicorn's own ``HttpToolsProtocol``
(the ASGI scope, a ``RequestResponseCycle`` and a task, ``ProxyHeadersMiddleware``,
``BeatASGI.__call__``, two ``send`` messages) and once through ``beat_http.BeatHttpProtocol``
(the parser's callbacks, one write). What both share is stubbed the same way: the lean
checks (``LeanBeats.take``: a fixed signed session) and the writer (``record_soon``: a future
already settled with a fixed answer); the environ is built for real on both. So the
difference is the HTTP layer's own CPU per beat. Rounds alternate A, B, A, B; CPU is
``time.process_time``.

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

from lms_core.learning import beat_asgi, beat_front, beat_http  # noqa: E402

BODY = b'{"seq":7,"event":"heartbeat","position":12.5,"segments":[[2.5,12.5]],"client":{"visibility":"visible"}}'
ANSWER = b'{"accepted":true,"duplicate":false,"credited_ms":10000,"coverage":12.5,"position":12.5}\n'


class Transport:
    """What the protocol uses of an asyncio transport; counts the bytes written."""

    def __init__(self) -> None:
        self.written = 0
        self.closing = False

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
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)


def front() -> beat_asgi.BeatASGI:
    from lms_core import create_app

    instance = tempfile.mkdtemp(prefix="beat_http_micro.")
    app = create_app({"SECRET_KEY": "micro", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance}/x.db"})
    beats = beat_asgi.BeatASGI(app)
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

    beats.record_soon = record_soon  # type: ignore[method-assign]
    return beats


def request() -> bytes:
    head = (
        "POST /learn/sessions/0123456789abcdef0123456789abcdef/beat HTTP/1.1\r\n"
        "Host: lms.example.cn\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0\r\n"
        "Accept: */*\r\nAccept-Language: zh-CN,zh;q=0.9\r\nOrigin: https://lms.example.cn\r\n"
        "Referer: https://lms.example.cn/learn/lessons/1\r\nCookie: session=" + "x" * 180 + "\r\n"
        "X-CSRFToken: " + "y" * 90 + "\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY


def run(loop: asyncio.AbstractEventLoop, protocol_class: type, beats: beat_asgi.BeatASGI, n: int) -> float:
    """CPU seconds per beat for ``n`` beats on one keep-alive connection."""
    config = Config(beats, http=protocol_class, lifespan="off", log_config=None, access_log=False)
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Sun, 06 Dec 2026 13:00:00 GMT"), *config.encoded_headers]
    protocol = protocol_class(config, state, {}, loop)
    transport = Transport()
    protocol.connection_made(transport)
    raw = request()

    async def one() -> None:
        before = transport.written
        protocol.data_received(raw)
        while transport.written == before:
            await asyncio.sleep(0)

    async def many() -> float:
        await one()  # warm
        written = transport.written
        started = time.process_time()
        for _ in range(n):
            await one()
        spent = time.process_time() - started
        per = (transport.written - written) / n
        assert per > len(ANSWER), per
        return spent / n

    result = loop.run_until_complete(many())
    protocol._unset_keepalive_if_required()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--beats", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    beats = front()
    beat_asgi.tune_gc(beats.app.config)  # as the worker at start-up (gc.freeze, gen0 20,000)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    results: dict[str, list[float]] = {"uvicorn": [], "fast": []}
    print(f"load average {os.getloadavg()[0]:.2f}")
    for _ in range(args.rounds):
        for name, cls in (("uvicorn", HttpToolsProtocol), ("fast", beat_http.BeatHttpProtocol)):
            results[name].append(run(loop, cls, beats, args.beats) * 1e6)
            print(f"  {name:8s} {results[name][-1]:6.1f} µs CPU per beat")
    for name, values in results.items():
        print(f"{name:8s} median {sorted(values)[len(values) // 2]:6.1f} µs  ({', '.join(f'{v:.1f}' for v in values)})")
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
