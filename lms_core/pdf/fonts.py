"""The CJK font every generated PDF embeds.

PDF viewers do not reliably map a referenced-but-not-embedded CJK font (the
standard ``STSong-Light``) to a local typeface: Chromium's viewer shows blank pages.
So every PDF the platform writes embeds a subset of one TrueType font (fpdf2 keeps
only the glyphs used, some tens of KiB per document).

The font is WenQuanYi Micro Hei: Simplified (and Traditional) Chinese plus Latin
letters and digits in one face, TrueType outlines (which fpdf2 subsets), licensed
Apache-2.0 or GPL-3+ with the font-embedding exception, so embedding it in the PDFs
we hand out is allowed. It comes from Debian's ``fonts-wqy-microhei`` package, which
``make install`` (hence ``make run`` and ``make test``) installs. ``LMS_CJK_FONT``
points at another TrueType font (or collection) where that package is not available.

Usage (fpdf2)::

    pdf = FPDF()
    register_cjk_font(pdf)
    pdf.set_font(FAMILY, size=12)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Debian package that ships the font (installed by the Makefile's ``fonts`` target).
DEBIAN_PACKAGE = "fonts-wqy-microhei"

#: Where Debian puts it.
DEFAULT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")

#: The face inside the collection: 0 is the proportional "WenQuanYi Micro Hei"
#: (1 is its monospaced twin).
COLLECTION_INDEX = 0

#: Family name under which PDF writers register the font.
FAMILY = "cjk"


class FontMissing(RuntimeError):
    """The CJK font is not installed: PDFs with Chinese text cannot be written."""


def cjk_font_path() -> Path:
    """Path of the TrueType font (collection) to embed for Chinese text in PDFs.

    Raises :class:`FontMissing` (naming the package to install) rather than
    silently writing PDFs whose Chinese text no viewer can show.
    """
    override = os.environ.get("LMS_CJK_FONT")
    path = Path(override) if override else DEFAULT_PATH
    if not path.is_file():
        raise FontMissing(
            f"CJK font not found at {path}: install Debian's {DEBIAN_PACKAGE} "
            "(make install does) or set LMS_CJK_FONT to a TrueType font"
        )
    return path


def register_cjk_font(pdf: Any, family: str = FAMILY) -> str:
    """Register the CJK font with an ``fpdf.FPDF`` under ``family``; returns the family.

    fpdf2 embeds only the glyphs a document uses (a subset), so a page of Chinese
    adds tens of KiB, not the font's megabytes.
    """
    path = cjk_font_path()
    index = COLLECTION_INDEX if path.suffix.lower() == ".ttc" else 0
    pdf.add_font(family, fname=str(path), collection_font_number=index)
    return family
