"""Read duration, dimensions and page counts from stored files, and refuse broken ones.

Small pure-Python parsers, reading only the few structures they need through
``seek``/``read`` (a 2 GB video is never loaded): ISO-BMFF boxes for MP4
(``mvhd``/``mdhd``/``tkhd``), EBML for WebM (Segment Info ``Duration`` ×
``TimecodeScale``), the PDF trailer and page tree, and PNG/JPEG headers.
We do not use ffprobe or a binding to it: the server must not need FFmpeg to
accept an upload, and these formats' headers are small and well specified.

Every parser raises :class:`ProbeError` with a message fit for the uploader
when the file is truncated or malformed; any other exception is a bug.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from flask_babel import gettext as _


class ProbeError(ValueError):
    """The file is truncated or not a well-formed file of its type."""


@dataclass
class Probe:
    duration_ms: int | None = None
    width: int | None = None
    height: int | None = None
    page_count: int | None = None


def _size(fh: BinaryIO) -> int:
    fh.seek(0, 2)
    return fh.tell()


def _read_exact(fh: BinaryIO, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise ProbeError(_("The file is truncated (it ends in the middle of its structure)."))
    return data


# MP4 (ISO base media file format) ------------------------------------------------

#: A ``moov`` larger than this is refused rather than read (real ones are a few MB).
MAX_MOOV_BYTES = 64 * 1024 * 1024
_MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"edts", b"dinf"}


def _mp4_truncated() -> ProbeError:
    return ProbeError(_("The MP4 file is truncated or damaged: its boxes do not fit in the file."))


def _iter_boxes(buf: bytes | memoryview, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """``(type, payload_start, payload_end)`` of the boxes in ``buf[start:end]``."""
    boxes = []
    pos = start
    while pos < end:
        if end - pos < 8:
            raise _mp4_truncated()
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise _mp4_truncated()
            (size,) = struct.unpack_from(">Q", buf, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise _mp4_truncated()
        boxes.append((bytes(kind), pos + header, pos + size))
        pos += size
    return boxes


def _full_box_times(buf: bytes | memoryview, start: int, end: int) -> tuple[int, int]:
    """``(timescale, duration)`` of an ``mvhd`` or ``mdhd`` box."""
    if end - start < 4:
        raise _mp4_truncated()
    version = buf[start]
    fmt, need = (">QQIQ", 28) if version == 1 else (">IIII", 16)
    if end - start < 4 + need:
        raise _mp4_truncated()
    _created, _modified, timescale, duration = struct.unpack_from(fmt, buf, start + 4)
    if version != 1 and duration == 0xFFFFFFFF:
        duration = 0  # "unknown" in version 0
    return timescale, duration


def _parse_trak(buf: bytes, start: int, end: int, file_size: int) -> tuple[bytes, int, int, int, int]:
    """``(handler, timescale, duration, width, height)`` of one track."""
    handler, timescale, duration, width, height = b"", 0, 0, 0, 0
    stack = [(start, end)]
    while stack:
        s, e = stack.pop()
        for kind, ps, pe in _iter_boxes(buf, s, e):
            if kind in _MP4_CONTAINERS:
                stack.append((ps, pe))
            elif kind == b"tkhd" and pe - ps >= 84:
                off = ps + (88 if buf[ps] == 1 else 76)  # after version/flags, times, layer..., matrix
                if off + 8 <= pe:
                    w, h = struct.unpack_from(">II", buf, off)
                    width, height = w >> 16, h >> 16
            elif kind == b"mdhd":
                timescale, duration = _full_box_times(buf, ps, pe)
            elif kind == b"hdlr" and pe - ps >= 12:
                handler = bytes(buf[ps + 8 : ps + 12])
            elif kind in (b"stco", b"co64") and pe - ps >= 8:
                (count,) = struct.unpack_from(">I", buf, ps + 4)
                width_bytes = 8 if kind == b"co64" else 4
                if count:
                    last = ps + 8 + (count - 1) * width_bytes
                    if last + width_bytes > pe:
                        raise _mp4_truncated()
                    (offset,) = struct.unpack_from(">Q" if kind == b"co64" else ">I", buf, last)
                    if offset >= file_size:
                        # The sample table points past the end: the media data was cut off.
                        raise _mp4_truncated()
    return handler, timescale, duration, width, height


def probe_mp4(fh: BinaryIO) -> Probe:
    file_size = _size(fh)
    pos = 0
    moov: bytes | None = None
    has_data = False
    first = True
    while pos < file_size:
        fh.seek(pos)
        header = fh.read(16)
        if len(header) < 8:
            raise _mp4_truncated()
        size, kind = struct.unpack_from(">I4s", header)
        head_len = 8
        if size == 1:
            if len(header) < 16:
                raise _mp4_truncated()
            (size,) = struct.unpack_from(">Q", header, 8)
            head_len = 16
        elif size == 0:
            size = file_size - pos
        if size < head_len or pos + size > file_size:
            raise _mp4_truncated()
        if first and kind != b"ftyp":
            raise ProbeError(_("This is not an MP4 file (it does not start with an ftyp box)."))
        first = False
        if kind == b"moov":
            if size > MAX_MOOV_BYTES:
                raise ProbeError(_("The MP4 index (moov box) is unreasonably large."))
            fh.seek(pos + head_len)
            moov = _read_exact(fh, size - head_len)
        elif kind in (b"mdat", b"moof"):
            has_data = True
        pos += size
    if moov is None:
        raise ProbeError(
            _("The MP4 file has no index (moov box): it is truncated or was not finished. Export it again.")
        )
    if not has_data:
        raise ProbeError(_("The MP4 file contains no media data."))

    probe = Probe()
    movie_scale = movie_duration = 0
    fragment_duration = 0
    track_seconds: list[float] = []
    has_video = False
    for kind, ps, pe in _iter_boxes(moov, 0, len(moov)):
        if kind == b"mvhd":
            movie_scale, movie_duration = _full_box_times(moov, ps, pe)
        elif kind == b"mvex":
            for sub, sps, spe in _iter_boxes(moov, ps, pe):
                if sub == b"mehd" and spe - sps >= 8:
                    fragment_duration = struct.unpack_from(">Q" if moov[sps] == 1 else ">I", moov, sps + 4)[0]
        elif kind == b"trak":
            handler, scale, duration, width, height = _parse_trak(moov, ps, pe, file_size)
            if scale and duration:
                track_seconds.append(duration / scale)
            if handler == b"vide":
                has_video = True
                if width and height and probe.width is None:
                    probe.width, probe.height = width, height
    if not has_video:
        raise ProbeError(_("The MP4 file contains no video track."))
    if movie_scale and movie_duration:
        seconds = movie_duration / movie_scale
    elif movie_scale and fragment_duration:
        seconds = fragment_duration / movie_scale
    elif track_seconds:
        seconds = max(track_seconds)
    else:
        raise ProbeError(_("The MP4 file does not state its duration. Export it again as a standard MP4."))
    probe.duration_ms = round(seconds * 1000)
    return probe


# WebM (EBML / Matroska subset) -------------------------------------------------------

_EBML = 0x1A45DFA3
_DOCTYPE = 0x4282
_SEGMENT = 0x18538067
_INFO = 0x1549A966
_TIMECODE_SCALE = 0x2AD7B1
_DURATION = 0x4489
_TRACKS = 0x1654AE6B
_TRACK_ENTRY = 0xAE
_TRACK_TYPE = 0x83
_VIDEO = 0xE0
_PIXEL_WIDTH = 0xB0
_PIXEL_HEIGHT = 0xBA
_CLUSTER = 0x1F43B675
_CLUSTER_TIMECODE = 0xE7
_SIMPLE_BLOCK = 0xA3
_BLOCK_GROUP = 0xA0
_BLOCK = 0xA1
_BLOCK_DURATION = 0x9B
#: Elements that may follow a Cluster of unknown size at the Segment level.
_SEGMENT_CHILDREN = {0x114D9B74, _INFO, _TRACKS, 0x1C53BB6B, 0x1941A469, 0x1043A770, 0x1254C367, _CLUSTER}
_UNKNOWN = -1


def _webm_truncated() -> ProbeError:
    return ProbeError(_("The WebM file is truncated or damaged: its elements do not fit in the file."))


def _read_vint(fh: BinaryIO, *, keep_marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer: ``(value, length)``; ``_UNKNOWN`` for all-ones sizes."""
    first = fh.read(1)
    if not first:
        raise _webm_truncated()
    b0 = first[0]
    length = 1
    mask = 0x80
    while length <= 8 and not b0 & mask:
        mask >>= 1
        length += 1
    if length > 8 or (keep_marker and length > 4):
        raise ProbeError(_("The WebM file is damaged (invalid element header)."))
    rest = _read_exact(fh, length - 1) if length > 1 else b""
    value = b0 if keep_marker else b0 & (mask - 1)
    for byte in rest:
        value = (value << 8) | byte
    if not keep_marker and value == (1 << (7 * length)) - 1:
        return _UNKNOWN, length
    return value, length


def _elements(fh: BinaryIO, start: int, end: int, file_size: int) -> list[tuple[int, int, int]]:
    """``(id, data_start, data_end)`` of the children in ``[start, end)`` (known sizes only)."""
    out = []
    pos = start
    while pos < end:
        fh.seek(pos)
        eid, _n = _read_vint(fh, keep_marker=True)
        size, _m = _read_vint(fh, keep_marker=False)
        data = fh.tell()
        if size == _UNKNOWN:
            raise _webm_truncated()
        if data + size > min(end, file_size):
            raise _webm_truncated()
        out.append((eid, data, data + size))
        pos = data + size
    return out


def _uint(fh: BinaryIO, start: int, end: int) -> int:
    if end - start > 8:
        raise ProbeError(_("The WebM file is damaged (an integer field is too long)."))
    fh.seek(start)
    return int.from_bytes(_read_exact(fh, end - start), "big") if end > start else 0


def _float(fh: BinaryIO, start: int, end: int) -> float:
    fh.seek(start)
    raw = _read_exact(fh, end - start)
    if len(raw) == 4:
        return float(struct.unpack(">f", raw)[0])
    if len(raw) == 8:
        return float(struct.unpack(">d", raw)[0])
    raise ProbeError(_("The WebM file is damaged (bad Duration field)."))


def _cluster_end_time(fh: BinaryIO, start: int, end: int, file_size: int) -> tuple[int, int]:
    """``(end of the last block in timecode units, where the cluster ends)``; handles unknown sizes."""
    pos, base, last = start, 0, 0
    limit = file_size if end == _UNKNOWN else end
    while pos < limit:
        fh.seek(pos)
        eid, _n = _read_vint(fh, keep_marker=True)
        if end == _UNKNOWN and eid in _SEGMENT_CHILDREN:
            return last, pos
        size, _m = _read_vint(fh, keep_marker=False)
        data = fh.tell()
        if size == _UNKNOWN or data + size > limit:
            raise _webm_truncated()
        if eid == _CLUSTER_TIMECODE:
            base = _uint(fh, data, data + size)
        elif eid in (_SIMPLE_BLOCK, _BLOCK_GROUP):
            block_start, block_end, duration = data, data + size, 0
            if eid == _BLOCK_GROUP:
                block_start = block_end = -1
                for sub, s, e in _elements(fh, data, data + size, file_size):
                    if sub == _BLOCK:
                        block_start, block_end = s, e
                    elif sub == _BLOCK_DURATION:
                        duration = _uint(fh, s, e)
            if block_start >= 0:
                fh.seek(block_start)
                _track, _tn = _read_vint(fh, keep_marker=False)
                if fh.tell() + 2 > block_end:
                    raise _webm_truncated()
                (relative,) = struct.unpack(">h", _read_exact(fh, 2))
                last = max(last, base + relative + duration)
        pos = data + size
    return last, limit


def probe_webm(fh: BinaryIO) -> Probe:
    file_size = _size(fh)
    fh.seek(0)
    eid, _n = _read_vint(fh, keep_marker=True)
    if eid != _EBML:
        raise ProbeError(_("This is not a WebM file (no EBML header)."))
    size, _m = _read_vint(fh, keep_marker=False)
    head_start = fh.tell()
    if size == _UNKNOWN or head_start + size > file_size:
        raise _webm_truncated()
    doctype = b""
    for sub, s, e in _elements(fh, head_start, head_start + size, file_size):
        if sub == _DOCTYPE and e - s <= 16:
            fh.seek(s)
            doctype = _read_exact(fh, e - s).rstrip(b"\0")
    if doctype != b"webm":
        raise ProbeError(_("This is not a WebM file (its DocType is not webm)."))

    fh.seek(head_start + size)
    eid, _n = _read_vint(fh, keep_marker=True)
    if eid != _SEGMENT:
        raise ProbeError(_("The WebM file has no Segment: it is damaged."))
    seg_size, _m = _read_vint(fh, keep_marker=False)
    seg_start = fh.tell()
    if seg_size == _UNKNOWN:
        seg_end = file_size
    else:
        seg_end = seg_start + seg_size
        if seg_end > file_size:
            raise _webm_truncated()

    scale, duration = 1_000_000, None
    probe = Probe()
    has_video = has_cluster = False
    last_block = 0
    pos = seg_start
    while pos < seg_end:
        fh.seek(pos)
        eid, _n = _read_vint(fh, keep_marker=True)
        size, _m = _read_vint(fh, keep_marker=False)
        data = fh.tell()
        if eid == _CLUSTER:
            has_cluster = True
            cluster_end = _UNKNOWN if size == _UNKNOWN else data + size
            if cluster_end != _UNKNOWN and cluster_end > seg_end:
                raise _webm_truncated()
            if duration is None:  # only walk the blocks when the header gave no duration
                block_end, pos = _cluster_end_time(fh, data, cluster_end, seg_end)
                last_block = max(last_block, block_end)
            else:
                pos = cluster_end if cluster_end != _UNKNOWN else _cluster_end_time(fh, data, _UNKNOWN, seg_end)[1]
            continue
        if size == _UNKNOWN or data + size > seg_end:
            raise _webm_truncated()
        if eid == _INFO:
            for sub, s, e in _elements(fh, data, data + size, file_size):
                if sub == _TIMECODE_SCALE:
                    scale = _uint(fh, s, e)
                elif sub == _DURATION:
                    duration = _float(fh, s, e)
        elif eid == _TRACKS:
            for entry, s, e in _elements(fh, data, data + size, file_size):
                if entry != _TRACK_ENTRY:
                    continue
                fields = _elements(fh, s, e, file_size)
                kinds = [_uint(fh, fs, fe) for fid, fs, fe in fields if fid == _TRACK_TYPE]
                if kinds and kinds[0] == 1:
                    has_video = True
                    for fid, fs, fe in fields:
                        if fid == _VIDEO:
                            for vid, vs, ve in _elements(fh, fs, fe, file_size):
                                if vid == _PIXEL_WIDTH:
                                    probe.width = _uint(fh, vs, ve)
                                elif vid == _PIXEL_HEIGHT:
                                    probe.height = _uint(fh, vs, ve)
        pos = data + size
    if not has_video:
        raise ProbeError(_("The WebM file contains no video track."))
    if not has_cluster:
        raise ProbeError(_("The WebM file contains no media data."))
    if not scale:
        raise ProbeError(_("The WebM file is damaged (TimecodeScale is zero)."))
    units = duration if duration is not None else float(last_block)
    if not units or units < 0 or units != units:  # NaN check without math
        raise ProbeError(_("The WebM file does not state its duration and has no timed blocks."))
    probe.duration_ms = round(units * scale / 1_000_000)
    return probe


# PDF ----------------------------------------------------------------------------------

#: Page counting decompresses object streams only in files up to this size.
PDF_COUNT_MAX_BYTES = 64 * 1024 * 1024
#: At most this many compressed object streams are opened to find the page tree...
PDF_MAX_OBJECT_STREAMS = 256
#: ...and at most this many bytes inflated from all of them together. Without a total,
#: 100 small streams of zeros cost 5.8 s of CPU per upload; a real PDF's object
#: streams inflate to a few MB.
PDF_MAX_INFLATED_BYTES = 32 * 1024 * 1024
_PAGES_COUNT = re.compile(rb"/Type\s*/Pages\b(?:(?!endobj).){0,400}?/Count\s+(\d+)", re.S)
_COUNT_PAGES = re.compile(rb"/Count\s+(\d+)(?:(?!endobj).){0,400}?/Type\s*/Pages\b", re.S)
_STREAM = re.compile(rb"stream\r?\n(.*?)endstream", re.S)
#: How far before ``stream`` its dictionary is looked for (``/Type /ObjStm``).
_DICT_LOOKBACK = 512


def _too_costly() -> ProbeError:
    return ProbeError(
        _(
            "The PDF has too many or too large compressed object streams to be checked "
            "(at most %(n)s streams, %(mb)s MB unpacked). Save it again as a standard PDF "
            "and upload it again.",
            n=PDF_MAX_OBJECT_STREAMS,
            mb=PDF_MAX_INFLATED_BYTES // (1024 * 1024),
        )
    )


def _pdf_page_count(data: bytes) -> int | None:
    """The page count from the page tree, in plain objects or in compressed object streams.

    Only streams whose dictionary says ``/Type /ObjStm`` can hold the page tree, so
    content and image streams are never inflated; object streams are inflated within
    :data:`PDF_MAX_OBJECT_STREAMS` and :data:`PDF_MAX_INFLATED_BYTES`.

    Raises:
        ProbeError: the object streams exceed those limits.
    """
    counts = [int(m.group(1)) for rx in (_PAGES_COUNT, _COUNT_PAGES) for m in rx.finditer(data)]
    if not counts:  # the page tree may sit in compressed object streams
        opened, inflated = 0, 0
        for m in _STREAM.finditer(data):
            if b"/ObjStm" not in data[max(0, m.start() - _DICT_LOOKBACK) : m.start()].rsplit(b"endobj", 1)[-1]:
                continue
            opened += 1
            if opened > PDF_MAX_OBJECT_STREAMS:
                raise _too_costly()
            budget = PDF_MAX_INFLATED_BYTES - inflated
            try:
                inner = zlib.decompressobj().decompress(m.group(1), budget + 1)
            except zlib.error:
                continue
            inflated += len(inner)
            if inflated > PDF_MAX_INFLATED_BYTES:
                raise _too_costly()
            counts += [int(c.group(1)) for rx in (_PAGES_COUNT, _COUNT_PAGES) for c in rx.finditer(inner)]
    return max(counts) if counts else None


def probe_pdf(fh: BinaryIO) -> Probe:
    size = _size(fh)
    fh.seek(0)
    if not fh.read(5) == b"%PDF-":
        raise ProbeError(_("This is not a PDF file."))
    fh.seek(max(0, size - 2048))
    if b"%%EOF" not in fh.read():
        raise ProbeError(_("The PDF file is truncated (no end-of-file marker). Upload the complete file."))
    probe = Probe()
    if size <= PDF_COUNT_MAX_BYTES:
        fh.seek(0)
        probe.page_count = _pdf_page_count(fh.read())
    return probe


# Images -------------------------------------------------------------------------------


def probe_png(fh: BinaryIO) -> Probe:
    size = _size(fh)
    fh.seek(0)
    head = fh.read(24)
    if len(head) < 24 or head[12:16] != b"IHDR":
        raise ProbeError(_("The PNG file is damaged (no IHDR header)."))
    fh.seek(max(0, size - 12))
    if fh.read(12)[4:8] != b"IEND":
        raise ProbeError(_("The PNG file is truncated (no IEND chunk)."))
    width, height = struct.unpack_from(">II", head, 16)
    return Probe(width=width, height=height)


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def probe_jpeg(fh: BinaryIO) -> Probe:
    size = _size(fh)
    fh.seek(max(0, size - 4096))
    if b"\xff\xd9" not in fh.read():
        raise ProbeError(_("The JPEG file is truncated (no end-of-image marker)."))
    fh.seek(2)
    while True:
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            raise ProbeError(_("The JPEG file is damaged (no frame header)."))
        if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:
            continue
        (length,) = struct.unpack(">H", _read_exact(fh, 2))
        if marker[1] in _SOF:
            seg = _read_exact(fh, 5)
            height, width = struct.unpack_from(">HH", seg, 1)
            return Probe(width=width, height=height)
        if marker[1] == 0xDA or length < 2:
            raise ProbeError(_("The JPEG file is damaged (no frame header)."))
        fh.seek(length - 2, 1)


PROBES = {"mp4": probe_mp4, "webm": probe_webm, "pdf": probe_pdf, "png": probe_png, "jpeg": probe_jpeg}


def probe(code: str, fh: BinaryIO) -> Probe:
    """Check and measure a file of type ``code`` (see :data:`validation.TYPES`)."""
    return PROBES[code](fh)
