"""The transcript PDF: drawn with fpdf2, carrying the credential bundle, sealed by the issuer.

The file is built in two steps:

1. ``render`` draws the transcript (Chinese in an embedded subset of the CJK font, a QR code
   drawn as vector squares linking to the public verification page) and attaches the
   credential bundle as ``credential.json`` (an associated file, as PDF/A-3 does), uncompressed
   so any PDF tool can extract the exact signed bytes;
2. ``seal`` appends one fixed-size line after the document's ``%%EOF``::

       %LMS-CREDIT-SEAL ed25519 <key id, 16 hex> <signature, 86 base64url>\\n%%EOF\\n

   The signature covers every byte before that line (the same idea as a PDF signature's
   ByteRange, which signs all but its own placeholder). PDF readers ignore a comment after
   ``%%EOF`` and the final ``%%EOF`` keeps strict readers happy.

``verify_file`` checks the seal (so any altered byte of the file fails), then extracts the
bundle and checks it (``credential.verify_bundle``). Nothing here touches Flask or a database.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fpdf import FPDF
from fpdf.enums import WrapMode, XPos, YPos
from fpdf.fonts import FontFace

from lms_core.i18n import SHANGHAI
from lms_core.pdf.fonts import register_cjk_font
from plugins.credit_bank.proofs import keys
from plugins.credit_bank.proofs.canonical import CanonicalError, parse
from plugins.credit_bank.proofs.credential import Report, verify_bundle

ATTACHMENT_NAME = "credential.json"
_SEAL_RE = re.compile(rb"\n%LMS-CREDIT-SEAL ed25519 ([0-9a-f]{16}) ([A-Za-z0-9_-]{86})\n%%EOF\n\Z")
#: Length of the seal line and the final %%EOF, including the newline that precedes it.
SEAL_LENGTH = len(b"\n%LMS-CREDIT-SEAL ed25519 ") + 16 + 1 + 86 + len(b"\n%%EOF\n")
#: Largest bundle the verifier will read (a year's transcript is tens of kilobytes).
MAX_BUNDLE = 8 * 1024 * 1024

Translate = Callable[[str], str]


def _identity(s: str) -> str:
    return s


def hours(centi: int) -> str:
    """Centi-学时 as a decimal string, exactly (no float): 1250 -> "12.50"."""
    sign = "-" if centi < 0 else ""
    return f"{sign}{abs(centi) // 100}.{abs(centi) % 100:02d}"


def local_time(iso: str) -> str:
    """A stored UTC ISO time shown in Asia/Shanghai."""
    when = dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return when.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _qr(pdf: FPDF, url: str, x: float, y: float, size: float) -> None:
    qr = segno.make(url, error="m")
    rows = [list(row) for row in qr.matrix_iter(border=2)]
    cell = size / len(rows)
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(rows):
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                pdf.rect(x + start * cell, y + r * cell, (c - start) * cell, cell, style="F")
            else:
                c += 1


def render(payload: Mapping[str, Any], bundle: bytes, _: Translate = _identity, font_path: Path | None = None) -> bytes:
    """Draw the transcript for ``payload`` and attach ``bundle``; returns the unsealed PDF.

    Args:
        payload: the signed transcript payload (see ``credential``); ``lines`` and ``ledgers``
            give what is drawn.
        bundle: the exact bundle bytes to attach.
        _: translation of the English labels (the Flask layer passes the catalogue's gettext; the
            name ``_`` lets the catalogue extraction find them).
        font_path: a TrueType font covering Chinese, instead of the platform's declared CJK font
            (``lms_core.pdf.fonts``). Only the glyphs used are embedded either way.
    """
    names = {str(x["code"]): str(x["name"]) for x in payload.get("ledgers", [])}
    subject = payload["subject"]
    pdf = FPDF(format="A4")
    pdf.set_title(_("Credit transcript"))
    pdf.set_author(str(payload["issuer"]["name"]))
    # Dates from the payload, not the clock: the same payload always draws the same file.
    issued = dt.datetime.strptime(payload["issued_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    pdf.set_creation_date(issued)
    pdf.set_lang("zh-CN")
    pdf.set_auto_page_break(True, margin=18)
    if font_path is None:
        register_cjk_font(pdf, "cjk")
    else:
        pdf.add_font("cjk", "", str(font_path))
    pdf.add_page()
    pdf.set_font("cjk", size=18)
    pdf.cell(0, 11, _("Credit transcript"), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("cjk", size=10)
    pdf.cell(0, 6, str(payload["issuer"]["name"]), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)

    def field(label: str, value: str) -> None:
        pdf.set_font("cjk", size=10)
        pdf.cell(36, 7, label)
        pdf.multi_cell(0, 7, value, wrapmode=WrapMode.CHAR, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    field(_("Full name"), str(subject["full_name"]))
    field(_("Username"), str(subject["username"]))
    if subject.get("org_unit"):
        field(_("Organisation"), str(subject["org_unit"]))
    field(_("Year"), str(payload["year"]))
    field(_("Issued at"), local_time(payload["issued_at"]) + " " + _("(Beijing time)"))
    field(_("Credential number"), str(payload["id"]))
    if payload.get("supersedes"):
        field(_("Replaces"), str(payload["supersedes"]))
    pdf.ln(2)

    heading = FontFace(emphasis="", fill_color=(230, 236, 245))
    pdf.set_font("cjk", size=12)
    pdf.cell(
        0,
        8,
        _("Balances by credit type (in 学时; 学分 for the credit bank credits)"),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_font("cjk", size=10)
    with pdf.table(
        col_widths=(40, 20, 20, 20),
        headings_style=heading,
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
        wrapmode=WrapMode.CHAR,
        line_height=6,
    ) as table:
        row = table.row()
        for h in (_("Credit type"), _("Posted"), _("Under review"), _("Recorded, not counted")):
            row.cell(h)
        for b in payload["balances"]:
            row = table.row()
            row.cell(names.get(str(b["ledger"]), str(b["ledger"])))
            for k in ("posted", "pending", "overflow"):
                row.cell(hours(int(b[k])))
    pdf.ln(4)

    pdf.set_font("cjk", size=12)
    pdf.cell(0, 8, _("Entries"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("cjk", size=9)
    with pdf.table(
        col_widths=(16, 18, 44, 12, 12),
        headings_style=heading,
        wrapmode=WrapMode.CHAR,
        line_height=5,
        text_align=("LEFT", "LEFT", "LEFT", "RIGHT", "RIGHT"),
    ) as table:
        row = table.row()
        for h in (_("Date"), _("Credit type"), _("Item"), _("Hours"), _("Journal no.")):
            row.cell(h)
        for line in payload.get("lines", []):
            row = table.row()
            row.cell(str(line["date"]))
            row.cell(names.get(str(line["ledger"]), str(line["ledger"])))
            row.cell(str(line["title"]))
            row.cell(hours(int(line["amount"])))
            row.cell(str(line["seq"]))
        if not payload.get("lines"):
            row = table.row()
            row.cell(_("No entries in this year."), colspan=5)
    pdf.ln(5)

    # Verification block: QR on the left, how to check on the right; kept on one page.
    if pdf.get_y() > pdf.h - 70:
        pdf.add_page()
    top = pdf.get_y()
    _qr(pdf, str(payload["verify_url"]), pdf.l_margin, top, 38)
    pdf.set_xy(pdf.l_margin + 42, top)
    pdf.set_font("cjk", size=9)
    cp = payload["journal"]["checkpoint"]
    text = "\n".join(
        [
            _("Scan the code, or upload this file on the verification page:"),
            str(payload["verify_url"]),
            _("Any change to this file makes verification fail."),
            _("Journal checkpoint: %(size)s entries, %(time)s") % {"size": cp["size"], "time": local_time(cp["time"])},
            _("Issuer key: %(kid)s") % {"kid": cp["kid"]},
        ]
    )
    pdf.multi_cell(0, 5, text, wrapmode=WrapMode.CHAR)
    pdf.embed_file(
        bytes=bundle,
        basename=ATTACHMENT_NAME,
        mime_type="application/json",
        desc=_("Signed credential (RFC 8785 JSON, Ed25519)"),
        associated_file_relationship="Data",
        modification_date=issued,
    )
    return bytes(pdf.output())


def seal(body: bytes, key: Ed25519PrivateKey) -> bytes:
    """Append the issuer's signature over every byte of ``body``."""
    sig = keys.sign(key, "pdf", body)
    line = b"\n%LMS-CREDIT-SEAL ed25519 " + keys.key_id(key.public_key()).encode() + b" " + keys.b64u(sig).encode()
    out = body + line + b"\n%%EOF\n"
    assert len(out) - len(body) == SEAL_LENGTH
    return out


def check_seal(data: bytes, pub: Ed25519PublicKey) -> tuple[bool, str, bytes]:
    """(ok, detail, body): whether the trailing seal is the issuer's signature over the rest."""
    m = _SEAL_RE.search(data[-SEAL_LENGTH:]) if len(data) > SEAL_LENGTH else None
    if not m:
        return False, "no seal", data
    body = data[:-SEAL_LENGTH]
    if m.group(1).decode() != keys.key_id(pub):
        return False, "sealed by another key", body
    try:
        sig = keys.unb64u(m.group(2).decode())
    except ValueError:
        return False, "seal is not canonical", body
    return keys.verify(pub, "pdf", body, sig), "", body


_EMBEDDED_RE = re.compile(
    rb"<<\n/Length (\d+)\n/Params <<[^>]*>>\n/Subtype /application#2Fjson\n/Type /EmbeddedFile\n>>\nstream\n"
)


def extract_bundle(body: bytes) -> bytes | None:
    """The attached ``credential.json`` bytes, as written by ``render`` (None if absent)."""
    m = _EMBEDDED_RE.search(body)
    if not m:
        return None
    length = int(m.group(1))
    if length > MAX_BUNDLE:
        return None
    data = body[m.end() : m.end() + length]
    return data if len(data) == length else None


def verify_file(data: bytes, pub: Ed25519PublicKey) -> Report:
    """Verify a transcript: a sealed PDF, or a bare bundle (``credential.json``).

    For a PDF the seal is checked first; the bundle inside is then checked on its own, so an
    edited attachment fails twice (the seal, and the credential signature or the proofs).
    """
    rep = Report()
    if data.startswith(b"%PDF-"):
        ok, detail, body = check_seal(data, pub)
        rep.add("file_seal", ok, detail)
        raw = extract_bundle(body)
        if raw is None:
            rep.add("format", False, "no credential attached")
            return rep
    else:
        raw = data
    try:
        bundle = parse(raw)
    except CanonicalError as exc:
        rep.add("format", False, str(exc))
        return rep
    inner = verify_bundle(bundle, pub)
    rep.checks.extend(inner.checks)
    rep.bundle = inner.bundle
    return rep


def bundle_bytes(bundle: Mapping[str, Any]) -> bytes:
    """The bundle as attached: readable JSON (indented). The signed parts are canonicalised
    again by the verifier, so layout here does not affect any signature."""
    return json.dumps(bundle, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
