"""Python's collector in an ASGI worker holding N keep-alive connections (issue 8, tail).

A minimal ASGI app on uvicorn (httptools, uvloop, as the beat workers), with the workers'
start-up tuning (``gc.collect``, ``gc.freeze``, first threshold 20,000). A client process
opens N connections, sends one request on each and keeps them open, then asks ``/gc``: the
objects the collector tracks, and the CPU of a full collection with the connections up, and
again once what survived it is frozen (``LMS_BEAT_GC_REFREEZE``). With ``--leak`` it then
freezes, closes the N connections and asks ``/leak``: how much cyclic garbage the frozen
connections left (what ``gc.unfreeze(); gc.collect()`` finds).

    .venv/bin/python bench/gc_connections.py --connections 10000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
from typing import Any

REQUEST = b"POST /beat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"


def _cpu_ms(gen: int) -> float:
    started = time.thread_time()
    gc.collect(gen)
    return round((time.thread_time() - started) * 1000, 2)


def _figures(path: str) -> dict[str, Any]:
    if path == "/gc":
        out: dict[str, Any] = {"tracked": len(gc.get_objects()), "frozen": gc.get_freeze_count()}
        out["full_collection_cpu_ms"] = _cpu_ms(2)
        out["full_collection_again_cpu_ms"] = _cpu_ms(2)
        gc.freeze()
        out["full_collection_after_freeze_cpu_ms"] = _cpu_ms(2)
        gc.unfreeze()
        gc.collect()
        gc.freeze()  # frozen: the survivors (the connections) too, for /leak
        return out
    if path == "/leak":
        frozen = gc.get_freeze_count()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        return {"frozen_after_close": frozen, "cyclic_garbage_found": found}
    return {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                gc.collect()
                gc.freeze()
                gc.set_threshold(20_000, 10, 10)
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = json.dumps(_figures(scope["path"])).encode() if scope["path"] in ("/gc", "/leak") else b"ok"
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _ask(port: int, path: str) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    answer = json.loads(await reader.read(65536))
    writer.close()
    return answer


async def client(port: int, connections: int, leak: bool) -> None:
    kept = []
    for _ in range(connections):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)
        await writer.drain()
        await reader.readuntil(b"ok")
        kept.append(writer)
    print(json.dumps({"connections": connections, **await _ask(port, "/gc")}), flush=True)
    for writer in kept:
        writer.close()
    if leak:
        await asyncio.sleep(2)
        print(json.dumps({"connections_closed": connections, **await _ask(port, "/leak")}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=18_321)
    parser.add_argument("--leak", action="store_true")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        import uvicorn

        # Kept alive for the whole run (the benches' gunicorn: --keep-alive 30, beats every 10 s).
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=args.port,
            loop="uvloop",
            http="httptools",
            log_level="warning",
            timeout_keep_alive=3600,
            backlog=4096,
        )
        return 0
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--port", str(args.port)])  # noqa: S603
    try:
        time.sleep(3)
        import uvloop

        uvloop.run(client(args.port, args.connections, args.leak))
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
