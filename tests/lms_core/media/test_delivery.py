"""Range parsing and counted streaming (no database)."""

from __future__ import annotations

import io

import pytest

from lms_core.media.delivery import STREAM_CHUNK, RangeNotSatisfiable, counted_stream, parse_range


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, None),
        ("bytes=0-0", (0, 0)),
        ("bytes=100-199", (100, 199)),
        ("bytes=-500", (500, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=100-", (100, 999)),
        ("bytes=900-5000", (900, 999)),
        ("bytes=0-1,5-9", (0, 1)),  # multi-range: the first range only
        ("items=0-5", None),  # other units are ignored
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(
    "header", ["bytes=1000-", "bytes=5-2", "bytes=-0", "bytes=abc", "bytes=", "bytes=1-x", "bytes=--5", "bytes=-"]
)
def test_unsatisfiable_ranges(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def test_empty_file_has_no_satisfiable_range():
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-0", 0)


def test_counted_stream_counts_only_what_the_client_took():
    data = bytes(range(256)) * (3 * STREAM_CHUNK // 256)
    counted: list[int] = []
    stream = counted_stream(lambda: io.BytesIO(data), 10, len(data) - 10, counted.append)
    first = next(stream)
    assert first == data[10 : 10 + STREAM_CHUNK]
    stream.close()  # the client went away after one chunk was handed to the server
    assert counted == [0]  # the chunk being written when the client left is not counted

    counted.clear()
    stream = counted_stream(lambda: io.BytesIO(data), 10, len(data) - 10, counted.append)
    body = b"".join(stream)
    assert body == data[10:] and counted == [len(data) - 10]


def _gunicorn_wrapper_class():
    from gunicorn.http.wsgi import FileWrapper

    return FileWrapper


def _response_for(tmp_path, header, wrapper=None):
    from flask import Flask, request

    from lms_core.media.delivery import media_response

    path = tmp_path / "blob"
    path.write_bytes(bytes(range(256)) * 4000)  # 1,024,000 bytes
    counted: list[int] = []
    app = Flask(__name__)
    environ = {"wsgi.file_wrapper": wrapper} if wrapper else {}
    with app.test_request_context(headers={"Range": header} if header else {}, environ_overrides=environ):
        import datetime as dt

        response = media_response(
            request,
            opener=lambda: path.open("rb"),
            size=path.stat().st_size,
            mime_type="video/mp4",
            etag="x",
            last_modified=dt.datetime.now(dt.UTC),
            name="blob.mp4",
            on_close=counted.append,
        )
    return response, path.read_bytes(), counted


def _gunicorn_sendfile(body, sock, length):
    """What gunicorn's Response.sendfile does: sendfile from the descriptor's position, then rewind it."""
    import os

    fileno = body.filelike.fileno()
    offset = os.lseek(fileno, 0, os.SEEK_CUR)
    try:
        sock.sendfile(body.filelike, offset=offset, count=length)
    finally:
        os.lseek(fileno, offset, os.SEEK_SET)


def test_server_file_wrapper_is_used_for_sendfile_and_counts_what_was_sent(tmp_path):
    import socket
    import threading

    wrapper_cls = _gunicorn_wrapper_class()
    response, data, counted = _response_for(tmp_path, "bytes=1000-600999", wrapper_cls)
    body = response.response
    assert isinstance(body, wrapper_cls) and response.status_code == 206
    length = int(response.headers["Content-Length"])
    assert length == 600_000
    left, right = socket.socketpair()
    received = bytearray()

    def read_all() -> None:
        while len(received) < length:
            chunk = right.recv(1 << 20)
            if not chunk:
                break
            received.extend(chunk)

    reader = threading.Thread(target=read_all)
    reader.start()
    _gunicorn_sendfile(body, left, length)
    reader.join(timeout=10)
    body.close()
    left.close()
    right.close()
    assert bytes(received) == data[1000:601000]
    assert counted == [600_000]


def test_server_file_wrapper_counts_a_disconnect_midway(tmp_path):
    import socket
    import threading

    response, _data, counted = _response_for(tmp_path, "bytes=0-", _gunicorn_wrapper_class())
    body = response.response
    left, right = socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    got = []

    def read_some_then_leave() -> None:
        got.append(len(right.recv(50_000)))
        right.close()

    reader = threading.Thread(target=read_some_then_leave)
    reader.start()
    with pytest.raises(OSError):
        _gunicorn_sendfile(body, left, 1_024_000)
    reader.join(timeout=10)
    body.close()
    left.close()
    assert got and 0 < counted[0] < 1_024_000  # what left before the client did, not the Content-Length


def test_server_file_wrapper_iterated_without_sendfile_yields_only_the_range(tmp_path):
    response, data, counted = _response_for(tmp_path, "bytes=-300000", _gunicorn_wrapper_class())
    body = response.response
    assert b"".join(iter(body)) == data[-300000:]
    body.close()
    assert counted == [300_000]


def test_without_a_server_wrapper_a_generator_is_used(tmp_path):
    response, data, counted = _response_for(tmp_path, "bytes=10-19")
    assert not hasattr(response.response, "filelike")
    assert b"".join(response.response) == data[10:20]
    assert counted == [10]
