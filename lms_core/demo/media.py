"""Demo media made on this machine: short playable lecture videos, PDFs and a cover image.

Nothing is downloaded. Videos are encoded with PyAV (``av`` on PyPI, whose wheels
carry the FFmpeg libraries, so no system FFmpeg is needed): H.264/AAC in MP4 with
the index at the front (``+faststart``) so phones can start playing before the
whole file arrived, and one VP8/Opus WebM. Each frame shows the lesson number,
the elapsed time as large digits and a progress bar, so seeking and resuming
can be checked by eye; the audio is a quiet tone with a tick every second.

PDFs are a few pages of Chinese text written with fpdf2, embedding a subset of the
platform's CJK font (``lms_core.pdf.fonts``): a font that is only referenced (the
standard ``STSong-Light``) shows as blank pages in Chromium's PDF viewer.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO


@dataclass(frozen=True)
class DemoVideo:
    filename: str
    title: str
    seconds: int
    number: int
    rgb: tuple[int, int, int]
    tone_hz: int


@dataclass(frozen=True)
class DemoDocument:
    filename: str
    title: str
    paragraphs: tuple[str, ...]


VIDEOS = (
    DemoVideo("lecture-01-grassroots-governance.mp4", "基层治理能力提升专题讲座（一）", 45, 1, (30, 70, 140), 220),
    DemoVideo("lecture-02-rule-of-law.mp4", "法治政府建设专题讲座", 60, 2, (120, 40, 40), 262),
    DemoVideo("lecture-03-digital-government.mp4", "数字政府与政务服务", 30, 3, (30, 110, 80), 294),
    DemoVideo("lecture-04-rural-revitalisation.webm", "乡村振兴实践案例", 30, 4, (110, 80, 20), 330),
)

DOCUMENTS = (
    DemoDocument(
        "handbook-grassroots-governance.pdf",
        "基层治理工作手册（学习材料）",
        (
            "一、总体要求。基层治理是国家治理的基石。各级干部要坚持以人民为中心，"
            "把服务群众、造福群众作为出发点和落脚点，推动治理重心向基层下移。",
            "二、网格化管理。以村（社区）为单元划分网格，明确网格员职责，"
            "做到情况清、底数明、服务到位，小事不出村、大事不出镇。",
            "三、矛盾纠纷化解。坚持和发展新时代枫桥经验，健全调解、仲裁、行政裁决、"
            "行政复议、诉讼有机衔接的多元化纠纷解决机制。",
            "四、数字赋能。依托政务服务平台，推进高频事项网上办、掌上办、就近办，让数据多跑路、群众少跑腿。",
            "五、作风建设。力戒形式主义、官僚主义，切实为基层减负，把更多时间和精力用在抓落实上。",
            "思考题：结合本单位实际，谈谈如何提升网格化服务管理的精细化水平。",
        ),
    ),
    DemoDocument(
        "reader-integrity-in-office.pdf",
        "廉洁从政学习读本",
        (
            "第一章 廉洁从政的基本要求。领导干部要严格遵守廉洁自律准则，秉公用权、廉洁从政，自觉接受组织和群众监督。",
            "第二章 典型案例剖析。通过案例学习，深刻认识违纪违法行为的危害，做到知敬畏、存戒惧、守底线。",
            "第三章 家风建设。领导干部要重视家庭、家教、家风，管好家属和身边工作人员。",
            "学习提示：本读本为学习参考材料，请结合在线课程一并学习，并完成课后测验。",
        ),
    ),
)

COVER_IMAGE = "cover-default.png"


# Video -------------------------------------------------------------------------------

WIDTH, HEIGHT, FPS = 640, 360, 15
SAMPLE_RATE = 24_000


@dataclass(frozen=True)
class Raster:
    """Picture size, frame rate and video bit rate of an encoded lecture.

    The demo's is the default; the detection benchmark plays a 20-minute lecture to many
    learners at once on a shared machine and takes a much smaller one (the same drawing,
    scaled), since its rules need real playback and real bytes, not a sharp picture.
    """

    width: int = WIDTH
    height: int = HEIGHT
    fps: int = FPS
    bit_rate: int = 400_000

    def px(self, value: int) -> int:
        """A length drawn for the demo's 360 lines, scaled to this picture (at least 1 px)."""
        return value if self.height == HEIGHT else max(1, round(value * self.height / HEIGHT))


DEMO_RASTER = Raster()

#: Segments of a seven-segment digit: (x, y, w, h) in units of the stroke width.
_SEGMENTS = {
    "a": (1, 0, 3, 1),
    "b": (4, 1, 1, 3),
    "c": (4, 5, 1, 3),
    "d": (1, 8, 3, 1),
    "e": (0, 5, 1, 3),
    "f": (0, 1, 1, 3),
    "g": (1, 4, 3, 1),
}
_DIGITS = ("abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg", "abc", "abcdefg", "abcdfg")


def _yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    r, g, b = rgb
    y = 16 + (65.738 * r + 129.057 * g + 25.064 * b) / 256
    u = 128 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256
    v = 128 + (112.439 * r - 94.154 * g - 18.285 * b) / 256
    return round(y), round(u), round(v)


def _rect(plane: bytearray, stride: int, x: int, y: int, w: int, h: int, value: int) -> None:
    row = bytes([value]) * w
    for yy in range(y, y + h):
        start = yy * stride + x
        plane[start : start + w] = row


def _digit(plane: bytearray, stride: int, x: int, y: int, digit: int, unit: int, value: int) -> None:
    for seg in _DIGITS[digit]:
        sx, sy, sw, sh = _SEGMENTS[seg]
        _rect(plane, stride, x + sx * unit, y + sy * unit, sw * unit, sh * unit, value)


def _second_plane(video: DemoVideo, seconds: int, base_y: int, r: Raster = DEMO_RASTER) -> bytes:
    """The parts of a frame that change once a second: title band and the MM:SS digits."""
    w, px = r.width, r.px
    plane = bytearray([base_y]) * (w * r.height)
    _rect(plane, w, 0, 0, w, px(60), min(235, base_y + 60))
    _digit(plane, w, px(24), px(8), video.number % 10, px(5), 16)
    unit = px(12)
    minutes, secs = divmod(seconds, 60)
    x = (w - (4 * 6 + 2) * unit) // 2
    top = px(120)
    for d in (minutes // 10, minutes % 10, None, secs // 10, secs % 10):
        if d is None:
            _rect(plane, w, x + unit // 2, top + 2 * unit, unit, unit, 235)
            _rect(plane, w, x + unit // 2, top + 6 * unit, unit, unit, 235)
            x += 2 * unit
            continue
        _digit(plane, w, x, top, d, unit, 235)
        x += 6 * unit
    return bytes(plane)


def _luma_frame(video: DemoVideo, index: int, second_plane: bytes, base_y: int, r: Raster = DEMO_RASTER) -> bytearray:
    w, h, px = r.width, r.height, r.px
    plane = bytearray(second_plane)
    # Progress bar and a moving marker (changes every frame, so motion is visible).
    total = video.seconds * r.fps
    margin, bar = px(20), px(12)
    _rect(plane, w, margin, h - px(40), w - 2 * margin, bar, min(235, base_y + 30))
    _rect(plane, w, margin, h - px(40), max(1, (w - 2 * margin) * (index + 1) // total), bar, 235)
    marker_x = margin + (index * px(7)) % (w - 3 * margin)
    _rect(plane, w, marker_x, h - px(70), margin, margin, 200)
    return plane


def _tone(hz: int) -> bytes:
    """Two seconds of mono float samples: a quiet tone with a 100 ms tick each second."""
    samples = array("f")
    for n in range(2 * SAMPLE_RATE):
        t = n / SAMPLE_RATE
        tick = 0.25 * math.sin(2 * math.pi * 880 * t) if (n % SAMPLE_RATE) < SAMPLE_RATE // 10 else 0.0
        samples.append(0.08 * math.sin(2 * math.pi * hz * t) + tick)
    return samples.tobytes()


def make_video(path: Path, video: DemoVideo, *, faststart: bool = True, raster: Raster = DEMO_RASTER) -> Path:
    """Encode ``video`` to ``path`` (MP4 H.264/AAC or WebM VP8/Opus, from the suffix).

    ``faststart`` puts the MP4 index before the media data (tests turn it off to
    get the layout of a file still being written, index last).
    """
    tmp = path.with_name(path.name + ".part")
    encode_video(str(tmp), video, webm=path.suffix == ".webm", faststart=faststart, raster=raster)
    tmp.replace(path)
    return path


def encode_video(
    out: str | BinaryIO, video: DemoVideo, *, webm: bool, faststart: bool = True, raster: Raster = DEMO_RASTER
) -> None:
    """Encode ``video`` into a file name or a writable binary object.

    Into a non-seekable object the muxers write a "live" file, as a browser's
    MediaRecorder does: WebM without a Duration and with unknown element sizes.
    """
    import av

    r = raster
    options = {"movflags": "+faststart"} if faststart and not webm else {}
    with av.open(out, mode="w", format="webm" if webm else "mp4", options=options) as container:
        container.metadata["title"] = video.title
        vstream: Any = container.add_stream("libvpx" if webm else "libx264", rate=r.fps)
        vstream.width, vstream.height, vstream.pix_fmt = r.width, r.height, "yuv420p"
        vstream.codec_context.gop_size = 2 * r.fps  # a keyframe every 2 s keeps seeking cheap
        if webm:
            vstream.codec_context.bit_rate = r.bit_rate
            vstream.options = {"deadline": "realtime", "cpu-used": "8"}
        else:
            vstream.options = {"preset": "ultrafast", "crf": "30", "profile": "baseline", "tune": "stillimage"}
        astream: Any = container.add_stream("libopus" if webm else "aac", rate=SAMPLE_RATE)
        astream.codec_context.layout = "mono"

        y, u, v = _yuv(video.rgb)
        chroma_u = bytes([u]) * (r.width * r.height // 4)
        chroma_v = bytes([v]) * (r.width * r.height // 4)
        second = b""
        for index in range(video.seconds * r.fps):
            if index % r.fps == 0:
                second = _second_plane(video, index // r.fps, y, r)
            frame = av.VideoFrame(r.width, r.height, "yuv420p")
            frame.planes[0].update(bytes(_luma_frame(video, index, second, y, r)))
            frame.planes[1].update(chroma_u)
            frame.planes[2].update(chroma_v)
            frame.pts = index
            for packet in vstream.encode(frame):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)

        tone = _tone(video.tone_hz)
        per_frame = astream.codec_context.frame_size or 1024
        total = video.seconds * SAMPLE_RATE
        sent = 0
        while sent < total:
            n = min(per_frame, total - sent)
            start = (sent % SAMPLE_RATE) * 4
            aframe = av.AudioFrame(format="flt", layout="mono", samples=n)
            aframe.sample_rate = SAMPLE_RATE
            aframe.planes[0].update(tone[start : start + 4 * n].ljust(aframe.planes[0].buffer_size, b"\0"))
            aframe.pts = sent
            for packet in astream.encode(aframe):
                container.mux(packet)
            sent += n
        for packet in astream.encode():
            container.mux(packet)


# PDF ---------------------------------------------------------------------------------


def _wrap(text: str, width: int) -> list[str]:
    lines, line, used = [], "", 0.0
    for ch in text:
        w = 0.5 if ord(ch) < 0x80 else 1.0
        if used + w > width:
            lines.append(line)
            line, used = "", 0.0
        line += ch
        used += w
    if line:
        lines.append(line)
    return lines


def make_pdf(path: Path, doc: DemoDocument) -> Path:
    """A small multi-page PDF of ``doc`` in Chinese, with a page number footer.

    One paragraph per page keeps the demo documents several pages long. The text is
    set in the platform's CJK font (:func:`lms_core.pdf.fonts.cjk_font_path`), of
    which fpdf2 embeds the subset of glyphs used: every viewer shows the same text.
    The creation date is fixed so the same document always has the same bytes (media
    are content-addressed).
    """
    from fpdf import FPDF

    from lms_core.pdf.fonts import FAMILY, register_cjk_font

    pdf = FPDF(format="A4", unit="pt")
    pdf.set_creation_date(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    pdf.set_title(doc.title)
    pdf.set_producer("cadre-lms demo")
    pdf.set_auto_page_break(False)
    register_cjk_font(pdf)
    total = len(doc.paragraphs)
    for number, paragraph in enumerate(doc.paragraphs):
        pdf.add_page()
        y = 62.0
        if number == 0:
            pdf.set_font(FAMILY, size=20)
            pdf.text(72, y, doc.title)
            y += 48
        pdf.set_font(FAMILY, size=14)
        for line in _wrap("\u3000\u3000" + paragraph, 32):
            pdf.text(72, y, line)
            y += 24
        pdf.set_font(FAMILY, size=10)
        pdf.text(280, 802, f"— {number + 1} / {total} —")
    pdf.output(str(path))
    return path


# PNG ---------------------------------------------------------------------------------


def make_png(path: Path, width: int = 480, height: int = 270) -> Path:
    """A course cover: a red-to-gold gradient (RGB, written with zlib)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = bytearray()
    for yy in range(height):
        rows.append(0)
        for xx in range(width):
            t = (xx + yy) / (width + height)
            rows += bytes((200 - int(20 * t), int(30 + 150 * t), int(30 + 20 * t)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(rows), 6))
    path.write_bytes(data + chunk(b"IEND", b""))
    return path


def _embeds_font(path: Path) -> bool:
    """Whether a PDF embeds its font: those written before fonts were embedded are redone."""
    return b"/FontFile2" in path.read_bytes()


def generate_demo_media(target_dir: Path | str) -> list[Path]:
    """Write the demo videos, PDFs and cover image into ``target_dir``; returns their paths.

    Files already present are kept (generation is idempotent and, after the first
    run, instant).
    """
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for video in VIDEOS:
        path = target / video.filename
        paths.append(path if path.exists() else make_video(path, video))
    for doc in DOCUMENTS:
        path = target / doc.filename
        paths.append(path if path.exists() and _embeds_font(path) else make_pdf(path, doc))
    cover = target / COVER_IMAGE
    paths.append(cover if cover.exists() else make_png(cover))
    return paths
