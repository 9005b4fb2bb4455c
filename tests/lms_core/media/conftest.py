"""Sample media for the media tests, encoded once per session with the demo generator."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from lms_core.accounts.models import Role
from lms_core.demo import media as demo
from lms_core.extensions import db
from tests.factories import UserFactory, grant


class _NoSeek(io.RawIOBase):
    """A write-only sink that cannot seek, like a browser's MediaRecorder output."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


@dataclass
class Samples:
    mp4: Path  #: 3 s, index (moov) first
    mp4_index_last: Path  #: 2 s, index written after the media data
    webm: Path  #: 2 s, with Segment Info Duration
    webm_live: Path  #: 2 s, no Duration, unknown sizes
    pdf: Path
    png: Path
    jpeg: Path


def _jpeg(path: Path) -> Path:
    import av

    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        frame = av.VideoFrame(64, 48, "yuvj420p")
        for plane in frame.planes:
            plane.update(bytes([120]) * plane.buffer_size)
        frame.pts = 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    folder = tmp_path_factory.mktemp("media-samples")
    clip = demo.DemoVideo("clip", "测试视频", 3, 7, (40, 80, 160), 300)
    short = demo.DemoVideo("short", "测试视频", 2, 8, (160, 40, 40), 400)
    sink = _NoSeek()
    demo.encode_video(sink, short, webm=True)
    live = folder / "live.webm"
    live.write_bytes(bytes(sink.data))
    return Samples(
        mp4=demo.make_video(folder / "clip.mp4", clip),
        mp4_index_last=demo.make_video(folder / "index-last.mp4", short, faststart=False),
        webm=demo.make_video(folder / "clip.webm", short),
        webm_live=live,
        pdf=demo.make_pdf(folder / "doc.pdf", demo.DOCUMENTS[1]),
        png=demo.make_png(folder / "cover.png", 40, 30),
        jpeg=_jpeg(folder / "photo.jpg"),
    )


@pytest.fixture
def author(tree):
    user = UserFactory(username="teacher", full_name="王老师", org_unit=tree.city)
    grant(user, Role.INSTRUCTOR, tree.city)
    db.session.commit()
    return user


@pytest.fixture
def learner(tree):
    user = UserFactory(username="cadre", full_name="李干部", org_unit=tree.village_a)
    db.session.commit()
    return user


@pytest.fixture
def client(app):
    """A client that asks for English, so the tests can read the messages."""
    c = app.test_client()
    c.set_cookie("lms_lang", "en")
    return c
