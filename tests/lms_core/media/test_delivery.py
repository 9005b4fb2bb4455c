"""Range parsing and counted streaming (no database)."""

from __future__ import annotations

import io

import pytest

from lms_core.media.delivery import STREAM_CHUNK, RangeNotSatisfiable, counted_stream, parse_range


@pytest.mark.parametrize("header, expected", [
    (None, None),
    ("bytes=0-0", (0, 0)),
    ("bytes=100-199", (100, 199)),
    ("bytes=-500", (500, 999)),
    ("bytes=-5000", (0, 999)),
    ("bytes=100-", (100, 999)),
    ("bytes=900-5000", (900, 999)),
    ("bytes=0-1,5-9", (0, 1)),  # multi-range: the first range only
    ("items=0-5", None),  # other units are ignored
])
def test_parse_range(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-2", "bytes=-0", "bytes=abc", "bytes=", "bytes=1-x",
                                    "bytes=--5", "bytes=-"])
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
