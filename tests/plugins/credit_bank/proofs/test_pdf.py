"""The transcript PDF: Chinese in an embedded font subset, the attached credential, the seal.

Tamper tests: every single byte of a sealed transcript, flipped, fails verification.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugins.credit_bank.proofs import credential as cr
from plugins.credit_bank.proofs import pdf
from tests.plugins.credit_bank.proofs import sample
from tests.plugins.credit_bank.proofs.fontfixture import build_font

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


@pytest.fixture(scope="module")
def font(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_font(tmp_path_factory.mktemp("font") / "test-cjk.ttf")


@pytest.fixture(scope="module")
def transcript(font: Path) -> bytes:
    return sample.sealed_pdf(KEY, font, sample.build(KEY, extra_leaves=2))


def _streams(data: bytes) -> list[bytes]:
    out = []
    for m in re.finditer(rb"/Filter /FlateDecode\n/Length (\d+)[^>]*>>\nstream\n", data):
        out.append(zlib.decompress(data[m.end() : m.end() + int(m.group(1))]))
    return out


def test_transcript_verifies(transcript: bytes) -> None:
    rep = pdf.verify_file(transcript, KEY.public_key())
    assert rep.ok, rep.checks
    assert [c.code for c in rep.checks][0] == "file_seal"
    assert rep.payload is not None and rep.payload["subject"]["full_name"] == "张三"


def test_chinese_is_drawn_in_an_embedded_font_subset(transcript: bytes) -> None:
    assert b"/FontFile2" in transcript and b"/Encoding /Identity-H" in transcript
    assert re.search(rb"/BaseFont /[A-Z]{6}\+TestCJK", transcript)  # subset tag
    # The ToUnicode map lets a reader copy the Chinese text back out.
    cmaps = b"".join(s for s in _streams(transcript) if b"beginbfchar" in s or b"beginbfrange" in s)
    cmaps += b"".join(re.findall(rb"begincmap.*?endcmap", transcript, re.S))
    for ch in "张三网络培训学时":
        assert f"<{ord(ch):04X}>".encode() in cmaps, ch


def test_the_real_declared_font_renders_too() -> None:
    data = sample.sealed_pdf(KEY, None, sample.build(KEY))
    assert pdf.verify_file(data, KEY.public_key()).ok
    assert b"WenQuanYi" in data or b"wqy" in data.lower()
    assert len(data) < 200_000  # a subset, not the font's megabytes


def test_the_credential_is_attached_and_the_qr_is_drawn(transcript: bytes) -> None:
    assert b"/EmbeddedFiles" in transcript and b"(credential.json)" in transcript and b"/AF [" in transcript
    raw = pdf.extract_bundle(transcript[: -pdf.SEAL_LENGTH])
    assert raw is not None and b'"lms-credit-bundle/1"' in raw
    # The QR code is drawn as one filled rectangle per horizontal run of dark modules.
    url = sample.build(KEY)["credential"]["payload"]["verify_url"]
    runs = sum(
        len(re.findall(r"1+", "".join(str(int(m)) for m in row)))
        for row in segno.make(url, error="m").matrix_iter(border=2)
    )
    page = max(_streams(transcript), key=lambda s: s.count(b" re "))
    assert runs > 100 and page.count(b" re f") >= runs


def test_flipping_any_byte_breaks_the_seal(transcript: bytes) -> None:
    pub = KEY.public_key()
    assert pdf.check_seal(transcript, pub)[0]
    failures = 0
    for i in range(len(transcript)):
        edited = bytearray(transcript)
        edited[i] ^= 0x01
        failures += not pdf.check_seal(bytes(edited), pub)[0]
    assert failures == len(transcript)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_altered_byte_fails_full_verification(transcript: bytes, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(transcript) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != transcript[i]))
    edited = bytearray(transcript)
    edited[i] = new
    assert not pdf.verify_file(bytes(edited), KEY.public_key()).ok


def test_truncated_extended_or_resealed_by_another_key_fails(transcript: bytes) -> None:
    pub = KEY.public_key()
    assert not pdf.verify_file(transcript[:-1], pub).ok
    assert not pdf.verify_file(transcript + b"\n", pub).ok
    assert not pdf.verify_file(transcript[: -pdf.SEAL_LENGTH], pub).ok
    resealed = pdf.seal(transcript[: -pdf.SEAL_LENGTH], OTHER)
    assert not pdf.verify_file(resealed, pub).ok
    assert not pdf.verify_file(transcript, OTHER.public_key()).ok


def test_edited_embedded_json_fails_even_if_the_length_is_kept(transcript: bytes) -> None:
    body = transcript[: -pdf.SEAL_LENGTH]
    raw = pdf.extract_bundle(body)
    assert raw is not None
    edited_raw = raw.replace('"full_name": "张三"'.encode(), '"full_name": "李四"'.encode())
    assert edited_raw != raw and len(edited_raw) == len(raw)
    edited = transcript.replace(raw, edited_raw)
    rep = pdf.verify_file(edited, KEY.public_key())
    checks = {c.code: c.ok for c in rep.checks}
    assert not rep.ok and checks["file_seal"] is False and checks["credential_signature"] is False


def test_a_bare_bundle_verifies_without_the_pdf(transcript: bytes) -> None:
    raw = pdf.extract_bundle(transcript[: -pdf.SEAL_LENGTH])
    assert raw is not None
    assert pdf.verify_file(raw, KEY.public_key()).ok
    assert not pdf.verify_file(raw.replace(b"550", b"650"), KEY.public_key()).ok


@pytest.mark.parametrize("junk", [b"", b"%PDF-1.4\n%%EOF\n", b"\x00" * 100, b"{}", b"[" * 100_000, "张三".encode()])
def test_junk_is_a_failed_report(junk: bytes) -> None:
    rep = pdf.verify_file(junk, KEY.public_key())
    assert not rep.ok


def test_amounts_are_exact_decimals() -> None:
    assert [pdf.hours(x) for x in (0, 5, 1250, 200, -50, 12345678)] == [
        "0.00",
        "0.05",
        "12.50",
        "2.00",
        "-0.50",
        "123456.78",
    ]
    assert cr.T_PENDING == 1  # the verifier's copy of the ledger's flag bits
