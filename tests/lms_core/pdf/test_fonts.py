"""The CJK font is installed, covers what our PDFs print, and is embedded (subset) in them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont

from lms_core.demo.media import DOCUMENTS, DemoDocument, generate_demo_media, make_pdf
from lms_core.pdf import fonts


def test_font_is_installed_and_covers_chinese_and_latin() -> None:
    path = fonts.cjk_font_path()
    font = TTFont(path, fontNumber=fonts.COLLECTION_INDEX)
    # TrueType outlines: what fpdf2 subsets.
    assert "glyf" in font
    cmap = font.getBestCmap()
    needed = "基层治理工作手册枫桥经验调训学时证明廉洁从政0123456789ABCxyz/—，。（）：％"
    assert [ch for ch in needed if ord(ch) not in cmap] == []


def test_missing_font_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LMS_CJK_FONT", str(tmp_path / "nope.ttf"))
    with pytest.raises(fonts.FontMissing, match="fonts-wqy-microhei"):
        fonts.cjk_font_path()


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda d: d.filename)
def test_demo_pdf_embeds_a_font_subset(tmp_path: Path, doc: DemoDocument) -> None:
    data = make_pdf(tmp_path / doc.filename, doc).read_bytes()
    # The font program is in the file (FontFile2 = TrueType), not only referenced.
    assert b"/FontFile2" in data
    assert b"STSong-Light" not in data
    # A subset: the tag "ABCDEF+" before the name, and far smaller than the font.
    assert re.search(rb"/BaseFont /[A-Z]{6}\+", data)
    assert len(data) < fonts.cjk_font_path().stat().st_size / 20
    # One paragraph per page, as the media probe expects.
    assert len(re.findall(rb"/Type /Page(?!s)", data)) == len(doc.paragraphs)


def test_demo_pdf_bytes_are_reproducible(tmp_path: Path) -> None:
    doc = DOCUMENTS[0]
    assert make_pdf(tmp_path / "a.pdf", doc).read_bytes() == make_pdf(tmp_path / "b.pdf", doc).read_bytes()


def test_old_demo_pdf_without_embedded_font_is_regenerated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lms_core.demo.media as media

    monkeypatch.setattr(media, "make_video", lambda path, video: path)
    monkeypatch.setattr(media, "make_png", lambda path: path)
    stale = tmp_path / DOCUMENTS[0].filename
    stale.write_bytes(b"%PDF-1.4\n<< /BaseFont /STSong-Light >>\n%%EOF\n")
    generate_demo_media(tmp_path)
    assert b"/FontFile2" in stale.read_bytes()
