"""HTTP delivery of stored media: byte ranges, conditional requests, counted streaming.

We do not use ``send_file`` here although it handles ranges: behind gunicorn its
range wrapper cannot seek the server's file wrapper and reads from byte 0 up to
the requested offset (a seek to minute 50 reads the first 49 minutes), and it
gives us no way to count the bytes that actually left.

Two ways out, both counting what was really sent:

* Under a server that offers ``wsgi.file_wrapper`` as a class (gunicorn), the body
  is an instance of a subclass of it, positioned at the range start, so the server
  uses ``sendfile(2)`` for exactly ``Content-Length`` bytes (zero copy). Python's
  ``socket.sendfile`` sets the file position after the last byte sent, also when
  the client disconnects, by calling ``file.seek()``; gunicorn then rewinds the
  descriptor with ``os.lseek``, so ``tell()`` cannot be trusted, but the seek
  goes through our :class:`_TrackedFile`, which remembers it. Servers
  that cannot sendfile (TLS, a storage stream without a file descriptor) iterate
  the same object, which yields only the range.
* Elsewhere (Werkzeug's server, the test client) a generator reads 256 KiB chunks
  and counts each chunk after the server has written it.

"Sent" means handed to the kernel: a client that disconnects can have left up to
its socket buffers unread (a few MB on Linux), which is why the anti-idle check
compares deliveries with claimed coverage with a tolerance, not byte for byte.

Multi-range requests (``bytes=0-1,5-9``) are answered with the first range only,
as a single-part 206 whose ``Content-Range`` says what was sent; video players
never send them and a multipart/byteranges body would break the byte accounting.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

from flask import Request, Response

log = logging.getLogger(__name__)

#: Bytes read and written per step while streaming.
STREAM_CHUNK = 256 * 1024


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first byte range in ``header`` as ``(start, end_inclusive)``; ``None`` for no range.

    Raises:
        RangeNotSatisfiable: a ``bytes=`` range that is malformed, inverted, starts
            at or past the end of the file, or a zero-length suffix.
    """
    if header is None:
        return None
    unit, sep, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes":
        return None  # unknown units are ignored (RFC 9110, 14.2)
    first = spec.split(",")[0].strip() if sep else ""
    first_s, dash, last_s = first.partition("-")
    first_s, last_s = first_s.strip(), last_s.strip()
    if (
        not dash
        or not (first_s or last_s)
        or not (_is_digits(first_s) or not first_s)
        or not (_is_digits(last_s) or not last_s)
    ):
        raise RangeNotSatisfiable(header)
    if not first_s:  # suffix: the last N bytes
        length = _byte_pos(last_s)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return max(0, size - length), size - 1
    start = _byte_pos(first_s)
    end = _byte_pos(last_s) if last_s else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(header)
    return start, min(end, size - 1)


#: Digits beyond this are past the end of any file; ``int()`` of thousands of digits
#: raises (Python's 4300-digit limit) and costs quadratic time before that.
_MAX_POS_DIGITS = 18


def _is_digits(text: str) -> bool:
    # ASCII only: str.isdigit() also accepts "²", which int() then refuses.
    return text.isascii() and text.isdigit()


def _byte_pos(digits: str) -> int:
    """A byte position from a Range header; an absurdly long one counts as "past any end"."""
    if len(digits.lstrip("0")) > _MAX_POS_DIGITS:
        return 10**_MAX_POS_DIGITS
    return int(digits)


def _http_date_seconds(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(microsecond=0)


def _disposition(name: str) -> str:
    fallback = "".join(c for c in name if c.isascii() and c.isprintable() and c not in '"\\;') or "media"
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def counted_stream(
    opener: Callable[[], BinaryIO], start: int, length: int, on_close: Callable[[int], None]
) -> Iterator[bytes]:
    """Yield ``length`` bytes from ``start``; ``on_close(sent)`` runs however the stream ends."""
    sent = 0
    try:
        with opener() as fh:
            fh.seek(start)
            remaining = length
            while remaining > 0:
                chunk = fh.read(min(STREAM_CHUNK, remaining))
                if not chunk:
                    break
                yield chunk
                # Resumed only after the server wrote the chunk to the client.
                sent += len(chunk)
                remaining -= len(chunk)
    finally:
        try:
            on_close(sent)
        except Exception:  # the response is gone; losing one counter must not crash the worker
            log.exception("could not record %s delivered bytes", sent)


_wrapper_classes: dict[type, type] = {}


class _TrackedFile:
    """A file proxy remembering the last position set through ``seek``."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.position = 0

    def fileno(self) -> int:
        return self._fh.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = self._fh.seek(offset, whence)
        return self.position

    def tell(self) -> int:
        return self._fh.tell()

    def read(self, size: int = -1) -> bytes:
        return self._fh.read(size)

    def close(self) -> None:
        self._fh.close()


def _counted_wrapper_class(base: type) -> type:
    """A subclass of the server's file wrapper that serves one range and counts it."""
    cls = _wrapper_classes.get(base)
    if cls is not None:
        return cls

    class CountedFileWrapper(base):
        def __init__(self, filelike: _TrackedFile, start: int, length: int, on_close: Callable[[int], None]) -> None:
            super().__init__(filelike, STREAM_CHUNK)
            # gunicorn's wrapper binds ``self.close = filelike.close``; ours must run.
            self.__dict__.pop("close", None)
            self.filelike = filelike
            self._start, self._length, self._on_close = start, length, on_close
            self._iterated: int | None = None
            self._closed = False

        def __iter__(self) -> Iterator[bytes]:
            self._iterated = 0
            remaining = self._length
            while remaining > 0:
                chunk = self.filelike.read(min(STREAM_CHUNK, remaining))
                if not chunk:
                    break
                yield chunk
                self._iterated += len(chunk)
                remaining -= len(chunk)

        def close(self) -> None:
            if self._closed:
                return
            self._closed = True
            try:
                if self._iterated is not None:
                    sent = self._iterated
                else:  # socket.sendfile seeked past the last byte it sent
                    sent = min(max(self.filelike.position - self._start, 0), self._length)
            except (OSError, ValueError):
                sent = 0
            finally:
                self.filelike.close()
            try:
                self._on_close(sent)
            except Exception:
                log.exception("could not record %s delivered bytes", sent)

    _wrapper_classes[base] = CountedFileWrapper
    return CountedFileWrapper


def _body(
    request: Request, opener: Callable[[], BinaryIO], start: int, length: int, on_close: Callable[[int], None]
) -> Any:
    wrapper = request.environ.get("wsgi.file_wrapper")
    if isinstance(wrapper, type):
        fh = _TrackedFile(opener())
        try:
            fh.seek(start)
            return _counted_wrapper_class(wrapper)(fh, start, length, on_close)
        except Exception:
            fh.close()
            raise
    return counted_stream(opener, start, length, on_close)


def media_response(
    request: Request,
    *,
    opener: Callable[[], BinaryIO],
    size: int,
    mime_type: str,
    etag: str,
    last_modified: dt.datetime,
    name: str,
    on_close: Callable[[int], None],
) -> Response:
    """A 200/206/304/412/416 response for ``request`` on a file of ``size`` bytes."""
    last_modified = _http_date_seconds(last_modified)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{etag}"',
        "Last-Modified": last_modified.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        # Every byte shown in a playback session is fetched in it, so the delivery
        # count is comparable with the viewing claimed; and the URL is per user.
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": _disposition(name),
    }

    if request.if_match and not request.if_match.contains(etag) and not request.if_match.star_tag:
        return Response(status=412, headers=headers)
    if request.if_unmodified_since and last_modified > request.if_unmodified_since:
        return Response(status=412, headers=headers)
    if request.if_none_match:
        if request.if_none_match.star_tag or request.if_none_match.contains_weak(etag):
            return Response(status=304, headers=headers)
    elif request.if_modified_since and last_modified <= request.if_modified_since:
        return Response(status=304, headers=headers)

    range_header = request.headers.get("Range")
    if range_header and "If-Range" in request.headers:
        if_range = request.if_range
        if if_range.etag is not None:
            matches = if_range.etag == etag
        else:
            matches = if_range.date is not None and if_range.date == last_modified
        if not matches:
            range_header = None  # the client's copy is stale: send the whole file

    try:
        byte_range = parse_range(range_header, size)
    except RangeNotSatisfiable:
        headers["Content-Range"] = f"bytes */{size}"
        return Response(status=416, headers=headers)

    if byte_range is None:
        start, length, status = 0, size, 200
    else:
        start, end = byte_range
        length, status = end - start + 1, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(length)
    body = _body(request, opener, start, length, on_close)
    return Response(body, status=status, headers=headers, mimetype=mime_type, direct_passthrough=True)
