"""gunicorn settings for serving the LRS: ``gunicorn -c python:lrs.gunicorn_conf 'lrs:create_app()'``.

TCP_NODELAY: gunicorn writes a response's headers and body in separate sends; on a
keep-alive connection Nagle's algorithm then holds the body back until the client
acknowledges the headers, which a delayed-ACK client does only after ~40 ms. xAPI
clients keep connections open and send many small requests, so without this every
single-statement POST costs 40 ms of idle waiting. Accepted sockets inherit the
option from the listening socket on Linux.
"""

from __future__ import annotations

import socket
from typing import Any

worker_class = "gthread"


def when_ready(server: Any) -> None:
    for listener in server.LISTENERS:
        sock = getattr(listener, "sock", None)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def post_fork(server: Any, worker: Any) -> None:
    when_ready(server)
