"""Type detection by magic bytes; names only catch mislabelled files."""

from __future__ import annotations

import pytest

from lms_core.media.validation import TYPES, UploadRejected, check_type, sniff

ALL = ["mp4", "webm", "pdf", "png", "jpeg"]


def test_sniff_each_sample(samples):
    expected = {"mp4": "mp4", "webm": "webm", "webm_live": "webm", "pdf": "pdf", "png": "png", "jpeg": "jpeg"}
    for attr, code in expected.items():
        head = getattr(samples, attr).read_bytes()[:64]
        assert sniff(head) is TYPES[code], attr


def test_pdf_named_mp4_is_refused_with_a_clear_message(samples):
    head = samples.pdf.read_bytes()[:64]
    with pytest.raises(UploadRejected) as exc:
        check_type(head, "lecture.mp4", ALL)
    assert exc.value.status == 415
    assert ".mp4" in exc.value.message and "PDF" in exc.value.message


def test_executable_named_pdf_is_refused():
    with pytest.raises(UploadRejected) as exc:
        check_type(b"MZ\x90\x00\x03" + b"\0" * 59, "readme.pdf", ALL)
    assert exc.value.status == 415 and "Windows program" in exc.value.message


def test_unknown_content_and_types_outside_the_allow_list(samples):
    with pytest.raises(UploadRejected) as exc:
        check_type(b"hello, world" * 6, "notes.pdf", ALL)
    assert exc.value.status == 415
    with pytest.raises(UploadRejected) as exc:
        check_type(samples.png.read_bytes()[:64], "cover.png", ["mp4", "pdf"])
    assert exc.value.status == 415 and "PNG" in exc.value.message


def test_matroska_is_not_webm():
    head = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska" + b"\0" * 40
    assert sniff(head) is None
    with pytest.raises(UploadRejected, match="Matroska"):
        check_type(head, "x.mkv", ALL)


def test_unknown_extension_is_decided_by_content(samples):
    assert check_type(samples.mp4.read_bytes()[:64], "lecture.video", ALL) is TYPES["mp4"]
    assert check_type(samples.jpeg.read_bytes()[:64], "photo.JPG", ALL) is TYPES["jpeg"]


def test_heif_photo_and_m4a_audio_are_not_mp4_video():
    heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 40
    m4a = b"\0\0\0\x20ftypM4A \0\0\0\0M4A mp42isom" + b"\0" * 32
    assert sniff(heic) is None and sniff(m4a) is None
    with pytest.raises(UploadRejected, match="HEIF image"):
        check_type(heic, "IMG_0001.mp4", ALL)
    with pytest.raises(UploadRejected, match="M4A audio"):
        check_type(m4a, "lecture.mp4", ALL)
