"""Durations, sizes and page counts read on the server; broken files refused."""

from __future__ import annotations

import io

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lms_core.demo.media import DOCUMENTS
from lms_core.media import probe
from lms_core.media.probe import ProbeError


def _ffmpeg_duration_ms(path) -> float:
    """FFmpeg's own reading, as an independent reference for our parsers."""
    with av.open(str(path)) as container:
        if container.duration is not None:
            return container.duration / 1000
        stream = container.streams.video[0]
        return float(stream.duration * stream.time_base * 1000)


@pytest.mark.parametrize(
    "name, code, nominal_ms",
    [
        ("mp4", "mp4", 3000),
        ("mp4_index_last", "mp4", 2000),
        ("webm", "webm", 2000),
    ],
)
def test_video_duration_matches_ffmpeg(samples, name, code, nominal_ms):
    path = getattr(samples, name)
    with path.open("rb") as fh:
        result = probe.probe(code, fh)
    assert result.duration_ms == pytest.approx(_ffmpeg_duration_ms(path), abs=1)
    assert abs(result.duration_ms - nominal_ms) <= 100
    assert (result.width, result.height) == (640, 360)


def test_live_webm_without_duration_is_measured_from_its_blocks(samples):
    data = samples.webm_live.read_bytes()
    assert b"\x44\x89" not in data[:4096]  # really no Duration element in the header
    result = probe.probe_webm(io.BytesIO(data))
    assert 1900 <= result.duration_ms <= 2100


def test_pdf_pages_and_images(samples):
    with samples.pdf.open("rb") as fh:
        assert probe.probe_pdf(fh).page_count == len(DOCUMENTS[1].paragraphs)
    with samples.png.open("rb") as fh:
        png = probe.probe_png(fh)
    assert (png.width, png.height) == (40, 30)
    with samples.jpeg.open("rb") as fh:
        jpeg = probe.probe_jpeg(fh)
    assert (jpeg.width, jpeg.height, jpeg.duration_ms) == (64, 48, None)


def test_pdf_page_count_inside_compressed_object_stream():
    import zlib

    inner = b"2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >> endobj"
    body = zlib.compress(inner)
    pdf = (
        b"%%PDF-1.5\n1 0 obj << /Type /ObjStm /Length %d /Filter /FlateDecode >>\nstream\n" % len(body)
        + body
        + b"\nendstream\nendobj\n%%EOF\n"
    )
    assert probe.probe_pdf(io.BytesIO(pdf)).page_count == 2


def test_mp4_with_index_last_cut_before_the_index_is_refused(samples):
    data = samples.mp4_index_last.read_bytes()
    moov = data.rfind(b"moov") - 4
    assert moov > len(data) // 2  # the index really is at the end
    with pytest.raises(ProbeError, match="moov"):
        probe.probe_mp4(io.BytesIO(data[:moov]))


def test_mp4_cut_in_the_media_data_is_refused(samples):
    data = samples.mp4.read_bytes()
    with pytest.raises(ProbeError, match="truncated"):
        probe.probe_mp4(io.BytesIO(data[: len(data) * 2 // 3]))


def test_webm_cut_short_is_refused(samples):
    data = samples.webm.read_bytes()
    with pytest.raises(ProbeError):
        probe.probe_webm(io.BytesIO(data[: len(data) // 2]))


def test_pdf_without_eof_marker_is_refused(samples):
    data = samples.pdf.read_bytes()
    with pytest.raises(ProbeError, match="truncated"):
        probe.probe_pdf(io.BytesIO(data[: len(data) - 200]))


def test_truncated_images_are_refused(samples):
    png = samples.png.read_bytes()
    jpeg = samples.jpeg.read_bytes()
    with pytest.raises(ProbeError):
        probe.probe_png(io.BytesIO(png[:-20]))
    with pytest.raises(ProbeError):
        probe.probe_jpeg(io.BytesIO(jpeg[: len(jpeg) // 2]))


def test_mp4_without_video_track_is_refused():
    def box(kind: bytes, payload: bytes) -> bytes:
        return (8 + len(payload)).to_bytes(4, "big") + kind + payload

    mvhd = box(
        b"mvhd", b"\0" * 4 + (0).to_bytes(8, "big") + (1000).to_bytes(4, "big") + (5000).to_bytes(4, "big") + b"\0" * 80
    )
    hdlr = box(b"hdlr", b"\0" * 8 + b"soun" + b"\0" * 12)
    trak = box(b"trak", box(b"mdia", hdlr))
    data = box(b"ftyp", b"isom\0\0\0\0") + box(b"moov", mvhd + trak) + box(b"mdat", b"\0" * 16)
    with pytest.raises(ProbeError, match="no video"):
        probe.probe_mp4(io.BytesIO(data))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_parsers_only_ever_raise_probe_error(samples, data):
    """Cut or corrupt a real file anywhere: the parser answers or refuses, never crashes."""
    code, path = data.draw(
        st.sampled_from(
            [
                ("mp4", samples.mp4),
                ("mp4", samples.mp4_index_last),
                ("webm", samples.webm),
                ("webm", samples.webm_live),
                ("pdf", samples.pdf),
                ("png", samples.png),
                ("jpeg", samples.jpeg),
            ]
        )
    )
    blob = bytearray(path.read_bytes())
    cut = data.draw(st.integers(min_value=0, max_value=len(blob)))
    del blob[cut:]
    for _ in range(data.draw(st.integers(min_value=0, max_value=4))):
        if blob:
            pos = data.draw(st.integers(min_value=0, max_value=min(len(blob) - 1, 4096)))
            blob[pos] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        result = probe.probe(code, io.BytesIO(bytes(blob)))
    except ProbeError:
        return
    assert result.duration_ms is None or result.duration_ms >= 0


def _pdf_with_streams(count: int, inflated: int, *, objstm: bool = True, tree: bool = False) -> bytes:
    """A PDF whose ``count`` compressed streams each inflate to ``inflated`` bytes of zeros."""
    import zlib

    parts = [b"%PDF-1.5\n"]
    kind = b"/Type /ObjStm " if objstm else b""
    body = zlib.compress(b"\0" * inflated, 9)
    for n in range(count):
        parts.append(
            b"%d 0 obj << %s/Length %d /Filter /FlateDecode >>\nstream\n" % (n + 1, kind, len(body))
            + body
            + b"\nendstream\nendobj\n"
        )
    if tree:
        inner = zlib.compress(b"9999 0 obj << /Type /Pages /Kids [] /Count 7 >> endobj")
        parts.append(
            b"9998 0 obj << /Type /ObjStm /Length %d /Filter /FlateDecode >>\nstream\n" % len(inner)
            + inner
            + b"\nendstream\nendobj\n"
        )
    parts.append(b"%%EOF\n")
    return b"".join(parts)


def test_pdf_object_streams_are_inflated_within_a_total_budget():
    bomb = _pdf_with_streams(100, 1024 * 1024)  # 100 MiB of zeros in about 100 KB
    assert len(bomb) < 200_000
    with pytest.raises(ProbeError, match="too many or too large"):
        probe.probe_pdf(io.BytesIO(bomb))
    one_big = _pdf_with_streams(1, probe.PDF_MAX_INFLATED_BYTES + 1)
    with pytest.raises(ProbeError, match="too many or too large"):
        probe.probe_pdf(io.BytesIO(one_big))


def test_pdf_object_stream_count_is_capped():
    many = _pdf_with_streams(probe.PDF_MAX_OBJECT_STREAMS + 1, 10)
    with pytest.raises(ProbeError, match="too many or too large"):
        probe.probe_pdf(io.BytesIO(many))
    assert (
        probe.probe_pdf(io.BytesIO(_pdf_with_streams(probe.PDF_MAX_OBJECT_STREAMS - 1, 10, tree=True))).page_count == 7
    )


def test_content_streams_are_never_inflated_so_big_real_pdfs_still_count():
    # 1,000 page-content / image streams (no /ObjStm), page tree in one object stream.
    pdf = _pdf_with_streams(1000, 1024 * 1024, objstm=False, tree=True)
    assert probe.probe_pdf(io.BytesIO(pdf)).page_count == 7
