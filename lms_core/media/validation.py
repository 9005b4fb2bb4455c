"""Decide what an upload is from its first bytes, never from its name or client MIME type.

The name only matters to catch a lie: a file called ``lecture.mp4`` whose bytes are
a PDF is refused, so that an instructor learns the upload is not what they think
(and a renamed executable never becomes a "document").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from lms_core.media.models import MediaKind

#: Bytes of the file's start that :func:`sniff` needs.
HEAD_BYTES = 64


@dataclass(frozen=True)
class MediaType:
    code: str  #: the name used in ``LMS_UPLOAD_ALLOWED``
    mime: str
    kind: MediaKind
    label: Any  #: how it is called in messages (a lazy string: translated when shown)
    extensions: tuple[str, ...]


TYPES: dict[str, MediaType] = {
    t.code: t
    for t in (
        MediaType("mp4", "video/mp4", MediaKind.VIDEO, _l("MP4 video"), (".mp4", ".m4v")),
        MediaType("webm", "video/webm", MediaKind.VIDEO, _l("WebM video"), (".webm",)),
        MediaType("pdf", "application/pdf", MediaKind.DOCUMENT, _l("PDF document"), (".pdf",)),
        MediaType("png", "image/png", MediaKind.IMAGE, _l("PNG image"), (".png",)),
        MediaType("jpeg", "image/jpeg", MediaKind.IMAGE, _l("JPEG image"), (".jpg", ".jpeg")),
    )
}

#: Recognised only to name them in the refusal ("a Windows program"), never accepted.
_KNOWN_REFUSED = (
    (b"MZ", _l("Windows program")),
    (b"\x7fELF", _l("Linux program")),
    (b"PK\x03\x04", _l("ZIP archive (or Office document)")),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", _l("old Office document")),
    (b"Rar!", _l("RAR archive")),
    (b"GIF8", _l("GIF image")),
    (b"RIFF", _l("RIFF file (AVI/WAV/WebP)")),
    (b"#!", _l("script")),
)


class UploadRejected(Exception):
    """An upload that is refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _ebml_doctype(head: bytes) -> bytes | None:
    """The DocType string inside an EBML header (``webm`` or ``matroska``), if in ``head``."""
    marker = head.find(b"\x42\x82")
    if marker < 0 or marker + 3 > len(head):
        return None
    size_byte = head[marker + 2]
    if not size_byte & 0x80:  # only one-byte sizes occur for this short string
        return None
    size = size_byte & 0x7F
    return head[marker + 3 : marker + 3 + size]


#: ISO-BMFF major brands that are still images or audio, not MP4 video.
_NOT_VIDEO_BRANDS = {
    b"heic": _l("HEIF image (iPhone photo)"),
    b"heix": _l("HEIF image (iPhone photo)"),
    b"mif1": _l("HEIF image"),
    b"msf1": _l("HEIF image sequence"),
    b"avif": _l("AVIF image"),
    b"avis": _l("AVIF image sequence"),
    b"M4A ": _l("M4A audio file"),
    b"M4B ": _l("M4B audio book"),
}


def sniff(head: bytes) -> MediaType | None:
    """The type these leading bytes belong to, or ``None``."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return None if head[8:12] in _NOT_VIDEO_BRANDS else TYPES["mp4"]
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return TYPES["webm"] if _ebml_doctype(head) == b"webm" else None
    if head.startswith(b"%PDF-"):
        return TYPES["pdf"]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return TYPES["png"]
    if head.startswith(b"\xff\xd8\xff"):
        return TYPES["jpeg"]
    return None


def describe_unknown(head: bytes) -> str:
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _NOT_VIDEO_BRANDS:
        return str(_NOT_VIDEO_BRANDS[head[8:12]])
    for magic, label in _KNOWN_REFUSED:
        if head.startswith(magic):
            return str(label)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return str(_l("Matroska video (not WebM)"))
    return ""


def check_type(head: bytes, original_name: str, allowed: list[str]) -> MediaType:
    """The upload's type, or :class:`UploadRejected` (415) if unknown, refused or mislabelled."""
    found = sniff(head)
    if found is None:
        what = describe_unknown(head)
        if what:
            raise UploadRejected(415, _("This file is a %(what)s, which cannot be uploaded.", what=what))
        raise UploadRejected(415, _("The file's content is not a supported type (MP4, WebM, PDF, PNG, JPEG)."))
    if found.code not in allowed:
        raise UploadRejected(415, _("%(label)s files are not accepted here.", label=found.label))
    suffix = PurePath(original_name).suffix.lower()
    claimed = next((t for t in TYPES.values() if suffix in t.extensions), None)
    if claimed is not None and claimed is not found:
        raise UploadRejected(
            415,
            _(
                "The file is named %(suffix)s but its content is a %(label)s. Check that you chose the right file.",
                suffix=suffix,
                label=found.label,
            ),
        )
    return found
