"""A tiny TrueType font built in the test, so PDF tests depend on no font installed on the machine.

Every CJK ideograph, CJK punctuation, full-width form and printable ASCII character maps to
one box glyph: enough for fpdf2 to embed a subset and for the text to be extractable, which
is what the tests check. Production uses the declared CJK font.
"""

from __future__ import annotations

from pathlib import Path

from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen


def _box() -> object:
    pen = TTGlyphPen(None)
    pen.moveTo((100, 0))
    pen.lineTo((100, 800))
    pen.lineTo((900, 800))
    pen.lineTo((900, 0))
    pen.closePath()
    return pen.glyph()


def build_font(path: Path) -> Path:
    fb = FontBuilder(1000, isTTF=True)
    order = [".notdef", "box", "space"]
    fb.setupGlyphOrder(order)
    cmap = {0x20: "space"}
    for lo, hi in (
        (0x21, 0x7E),
        (0x3000, 0x303F),
        (0x4E00, 0x9FFF),
        (0xFF00, 0xFFEF),
        (0x2014, 0x2027),
        (0x00B7, 0x00B7),
        (0x2190, 0x21FF),
        (0x2713, 0x2717),
    ):
        for cp in range(lo, hi + 1):
            cmap[cp] = "box"
    fb.setupCharacterMap(cmap)
    empty = TTGlyphPen(None).glyph()
    fb.setupGlyf({".notdef": _box(), "box": _box(), "space": empty})
    fb.setupHorizontalMetrics({".notdef": (1000, 100), "box": (1000, 100), "space": (500, 0)})
    fb.setupHorizontalHeader(ascent=880, descent=-120)
    fb.setupNameTable({"familyName": "TestCJK", "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=880, sTypoDescender=-120, usWinAscent=880, usWinDescent=120)
    fb.setupPost()
    fb.save(str(path))
    return path
