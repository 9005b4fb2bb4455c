"""One-time initial passwords: generated per account, handed to the admin once.

An account without a password cannot sign in, and nobody would be told. So every
account created by import or by 添加人员 gets a password: the one the admin typed,
or one generated here. Generated passwords are offered once, as a CSV or XLSX
sheet, to the admin who created the accounts; the users must change them at their
first sign-in (``User.must_change_password``).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import secrets
from dataclasses import asdict, dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import update
from werkzeug.security import generate_password_hash

from lms_core import csv_export
from lms_core.accounts.models import CredentialSheet, User
from lms_core.db import utcnow
from lms_core.extensions import db

#: Letters and digits that cannot be mistaken for each other when read off paper
#: (no 0/O, 1/l/I): 54 symbols, so 12 of them carry about 69 bits.
ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
LENGTH = 12
#: A sheet not downloaded within this time is wiped unread.
SHEET_LIFETIME = dt.timedelta(hours=24)


def generate() -> str:
    """A random password with letters and digits (the policy wants both kinds)."""
    while True:
        candidate = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        if any(c.isdigit() for c in candidate) and any(c.isalpha() for c in candidate):
            return candidate


def hash_generated(password: str) -> str:
    """Hash of a *generated* password: PBKDF2 with few rounds, not scrypt.

    The slow hash protects guessable human passwords; a 69-bit random one-time
    password cannot be guessed at any hash speed (the same reasoning as the API
    tokens' SHA-256). scrypt per row would take 20 minutes for a city's 5,000-line
    file; this takes seconds. The user replaces it at first sign-in with a
    password hashed the slow way.
    """
    return generate_password_hash(password, method="pbkdf2:sha256:1000")


@dataclass
class Issued:
    """One line of a sheet."""

    username: str
    full_name: str
    org_unit: str
    password: str


def issue(user: User, issued: list[Issued], *, org_name: str) -> None:
    """Give ``user`` a generated password they must change; note it for the sheet."""
    password = generate()
    user.password_hash = hash_generated(password)
    user.must_change_password = True
    user.session_version = (user.session_version or 1) + 1 if user.id else 1
    issued.append(Issued(user.username, user.full_name, org_name, password))


def _fernet() -> Fernet:
    secret = current_app.config["SECRET_KEY"]
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"lms credential sheets").derive(
        secret.encode() if isinstance(secret, str) else secret
    )
    return Fernet(base64.urlsafe_b64encode(key))


def store(actor: User, issued: list[Issued], *, import_run_id: int | None = None) -> CredentialSheet:
    """Keep ``issued`` encrypted for ``actor`` to download once. Flushes, does not commit."""
    now = utcnow()
    # Sheets nobody fetched in time are wiped here, so no ciphertext lingers.
    db.session.execute(
        update(CredentialSheet).where(CredentialSheet.expires_at <= now, CredentialSheet.data != b"").values(data=b"")
    )
    payload = json.dumps([asdict(i) for i in issued], ensure_ascii=False).encode()
    sheet = CredentialSheet(
        created_by_id=actor.id,
        import_run_id=import_run_id,
        created_at=now,
        expires_at=now + SHEET_LIFETIME,
        accounts=len(issued),
        data=_fernet().encrypt(payload),
    )
    db.session.add(sheet)
    db.session.flush()
    return sheet


class SheetGone(LookupError):
    """Already downloaded, expired, or not the reader's."""


def available(sheet: CredentialSheet | None, reader: User) -> bool:
    return (
        sheet is not None
        and sheet.created_by_id == reader.id
        and bool(sheet.data)
        and sheet.downloaded_at is None
        and sheet.expires_at > utcnow()
    )


def take(sheet: CredentialSheet | None, reader: User) -> list[Issued]:
    """The sheet's lines, wiping them (the caller commits). Raises :class:`SheetGone`."""
    if sheet is None or not available(sheet, reader):
        raise SheetGone
    try:
        lines = json.loads(_fernet().decrypt(sheet.data))
    except InvalidToken:  # the secret key changed since: nothing can be read any more
        sheet.data = b""
        raise SheetGone from None
    sheet.data = b""
    sheet.downloaded_at = utcnow()
    return [Issued(**line) for line in lines]


def headers() -> list[str]:
    return [_("Username"), _("Full name"), _("Org unit"), _("Initial password")]


def as_csv(lines: list[Issued]) -> bytes:
    """UTF-8 with BOM, so Excel shows the names correctly."""
    buffer = io.StringIO()
    writer = csv_export.writer(buffer)  # names come from HR files: no formulas
    writer.writerow(headers())
    writer.writerows([line.username, line.full_name, line.org_unit, line.password] for line in lines)
    return ("\ufeff" + buffer.getvalue()).encode()


def as_xlsx(lines: list[Issued]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet(_("Initial passwords"))
    sheet.append(headers())
    for line in lines:
        # Text cells: a password of digits must not become a number in Excel, and a
        # name from an HR file such as "=HYPERLINK(...)" must not become a formula
        # (openpyxl writes any string starting with "=" as one).
        cells = []
        for value in (line.username, line.full_name, line.org_unit, line.password):
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"
            cells.append(cell)
        sheet.append(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
