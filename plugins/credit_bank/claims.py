"""Offline training claims (线下培训学时申报) and class rosters: the offline inputs.

A claim is a cadre's request with evidence files (PDF or images, checked by content through
the core's media validation). Submitting places a hold (审核中) of the policy's per-day rate
times the days; an org admin whose scope covers the cadre approves (posts) or rejects
(voids) it. A roster imported by an org department posts directly, idempotent per row.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from typing import IO, Any

from flask_babel import gettext as _
from sqlalchemy import select

from lms_core.db import utcnow
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.settings import services as settings
from plugins.credit_bank import ledger as L
from plugins.credit_bank import policy as P
from plugins.credit_bank import services as S
from plugins.credit_bank.models import Claim, ClaimStatus, TransferCode

#: Evidence may be a PDF or a photo (content-sniffed, whatever the file is called).
EVIDENCE_TYPES = ("pdf", "png", "jpeg")
MAX_DAYS = 366


class ClaimError(ValueError):
    """A claim that cannot be accepted; the message is for the cadre (translated)."""


def claim_amount(days: int, on: dt.date) -> tuple[int, int]:
    pol = P.in_force(on)
    return P.offline_amount(P.rules_of(pol), days), pol.version


def store_evidence(files: list[tuple[IO[bytes], str]], uploader: Any) -> list[int]:
    """Validate each file by content (PDF/PNG/JPEG only) and store it; returns media ids."""
    from lms_core.media.services import store_upload
    from lms_core.media.validation import HEAD_BYTES, UploadRejected, sniff

    ids = []
    for stream, name in files:
        head = stream.read(HEAD_BYTES)
        stream.seek(0)
        kind = sniff(head)
        if kind is None or kind.code not in EVIDENCE_TYPES:
            raise ClaimError(_("Evidence must be a PDF or a PNG/JPEG image: %(name)s is not.", name=name[:100]))
        try:
            ids.append(store_upload(stream, name, uploader).id)
        except UploadRejected as exc:
            raise ClaimError(exc.message) from exc
    return ids


def submit(
    user: Any,
    *,
    ledger: str,
    title: str,
    organiser: str,
    start: dt.date,
    end: dt.date,
    files: list[tuple[IO[bytes], str]],
) -> Claim:
    """Record a claim and its hold (commits). Raises :class:`ClaimError`."""
    title, organiser = title.replace("\x00", "").strip()[:200], organiser.replace("\x00", "").strip()[:200]
    if ledger not in P.HOUR_CODES:  # a class earns 学时; 学分 come only by conversion
        raise ClaimError(_("Choose a credit type."))
    if not title or not organiser:
        raise ClaimError(_("The class name and the organiser are required."))
    if end < start:
        raise ClaimError(_("The class cannot end before it starts."))
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise ClaimError(_("A claim covers at most one year; split longer programmes."))
    if start.year != end.year:
        raise ClaimError(_("A class spanning two years is claimed as two claims, one per year."))
    if end > S.local_date(utcnow()):
        raise ClaimError(_("Claims are for classes already attended."))
    if not files:
        raise ClaimError(_("Attach at least one evidence file (certificate or attendance record)."))
    if len(files) > int(settings.get("credit_bank", "claim_max_files")):
        raise ClaimError(_("Too many files."))
    media_ids = store_evidence(files, user)
    amount, version = claim_amount(days, end)
    claim = Claim(
        user_id=user.id,
        ledger_code=ledger,
        title=title,
        organiser=organiser,
        start_date=start,
        end_date=end,
        days=days,
        amount=amount,
        policy_version=version,
        evidence=media_ids,
        status=ClaimStatus.SUBMITTED,
        transfer_id="",
        created_at=utcnow(),
    )
    db.session.add(claim)
    db.session.flush()
    claim.transfer_id = L.transfer_id(f"claim:{claim.id}")
    timeout = int(settings.get("credit_bank", "claim_timeout_days")) * 86400
    res = S.earn(
        key=f"claim:{claim.id}",
        user_id=user.id,
        ledger=ledger,
        amount=amount,
        day=end,
        code=TransferCode.OFFLINE_CLASS.value,
        issuer=L.ISSUER_OFFLINE,
        policy_version=version,
        actor_id=user.id,
        evidence_ref=f"claim:{claim.id}",
        memo=title,
        pending=True,
        timeout_seconds=timeout,
        commit=False,
    )
    if res.status not in (L.CREATED, L.EXISTS):
        db.session.rollback()
        raise ClaimError(_("The claim could not be recorded: %(why)s", why=res.status))
    emit(
        "credit.claim_submitted",
        actor=user,
        object_type="credit_claims",
        object_id=claim.id,
        payload={"amount": amount, "ledger": ledger, "days": days},
    )
    db.session.commit()
    return claim


def review(claim: Claim, reviewer: Any, *, approve: bool, reason: str) -> str:
    """Approve (post) or reject (void) a submitted claim (commits). Returns the ledger result."""
    reason = reason.replace("\x00", "").strip()[:1000]
    if claim.status != ClaimStatus.SUBMITTED:
        return (
            "pending_transfer_already_posted"
            if claim.status == ClaimStatus.APPROVED
            else "pending_transfer_already_voided"
        )
    if not approve and not reason:
        return "reason_required"
    result = S.resolve(key=f"claim:{claim.id}", post=approve, actor_id=reviewer.id, memo=reason or None, commit=False)
    if result not in (L.CREATED, L.EXISTS):
        db.session.rollback()
        return result
    claim.status = ClaimStatus.APPROVED if approve else ClaimStatus.REJECTED
    claim.reviewer_id = reviewer.id
    claim.reviewed_at = utcnow()
    claim.review_reason = reason or None
    emit(
        "credit.claim_approved" if approve else "credit.claim_rejected",
        actor=reviewer,
        object_type="credit_claims",
        object_id=claim.id,
        payload={"user_id": claim.user_id, "reason": reason},
    )
    db.session.commit()
    return result


def claims_of(user_id: int) -> list[Claim]:
    return list(
        db.session.execute(select(Claim).where(Claim.user_id == user_id).order_by(Claim.id.desc()).limit(200)).scalars()
    )


# --------------------------------------------------------------------------- rosters

#: Roster columns: Chinese headers as an org department writes them (English accepted too).
ROSTER_COLUMNS = {
    "username": ("用户名", "username"),
    "title": ("培训班名称", "title"),
    "organiser": ("主办单位", "organiser"),
    "start": ("开始日期", "start"),
    "end": ("结束日期", "end"),
    "ledger": ("学时类别", "ledger"),
    "hours": ("学时", "hours"),
}
LEDGER_BY_NAME = {
    "网络培训学时": "WL_XS",
    "集中培训学时": "JZ_XS",
    "党员学习学时": "DY_XS",
    "专技继续教育学时": "ZJ_XS",
}
MAX_ROWS = 20_000


@dataclass
class RowResult:
    line: int
    status: str  #: created | exists | error
    message: str = ""


def read_rows(data: bytes, filename: str) -> list[dict[str, str]]:
    """Rows of a CSV (UTF-8, BOM allowed, or GB18030) or XLSX file, keyed by column name."""
    if data[:4] == b"PK\x03\x04":
        import openpyxl

        try:
            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds on a damaged file
            raise ClaimError(_("The XLSX file could not be read.")) from exc
        ws = wb.active
        if ws is None:
            raise ClaimError(_("The XLSX file has no sheet."))
        it = ws.iter_rows(values_only=True)
        header = [str(c or "").strip() for c in next(it, [])]
        rows: list[dict[str, str]] = []
        for values in it:
            if len(rows) >= MAX_ROWS:
                raise ClaimError(_("At most %(n)d rows per file.", n=MAX_ROWS))
            rows.append({header[i]: _cell(v) for i, v in enumerate(values) if i < len(header)})
        wb.close()
        return rows
    if b"\x00" in data:
        raise ClaimError(_("The file is neither CSV nor XLSX."))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise ClaimError(_("The CSV file must be UTF-8 or GB18030 text.")) from exc
    reader = csv.DictReader(io.StringIO(text))
    rows = []
    try:
        for row in reader:
            if len(rows) >= MAX_ROWS:
                raise ClaimError(_("At most %(n)d rows per file.", n=MAX_ROWS))
            rows.append({(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items()})
    except csv.Error as exc:
        raise ClaimError(_("The CSV file could not be read.")) from exc
    return rows


def _cell(v: Any) -> str:
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return "" if v is None else str(v).strip()


def _get(row: dict[str, str], field: str) -> str:
    for name in ROSTER_COLUMNS[field]:
        if row.get(name):
            return row[name].replace("\x00", "")
    return ""


def import_roster(data: bytes, filename: str, actor: Any, may_credit: Any) -> list[RowResult]:
    """Post each row's 学时 to the person (idempotent per row: a re-import answers "exists").

    ``may_credit(user)`` says whether the importer's scope covers that person.
    """
    from lms_core.accounts.models import User

    results = []
    for n, row in enumerate(read_rows(data, filename), start=2):
        username = _get(row, "username")
        try:
            start = dt.date.fromisoformat(_get(row, "start")[:10])
            end = dt.date.fromisoformat(_get(row, "end")[:10] or _get(row, "start")[:10])
        except ValueError:
            results.append(RowResult(n, "error", _("Dates must look like 2025-06-30.")))
            continue
        ledger_raw = _get(row, "ledger") or "集中培训学时"
        ledger = LEDGER_BY_NAME.get(ledger_raw, ledger_raw if ledger_raw in P.HOUR_CODES else "")
        title = _get(row, "title")[:200]
        user = db.session.execute(select(User).where(User.username == username[:64])).scalar_one_or_none()
        if user is None or not may_credit(user):
            results.append(RowResult(n, "error", _("No such person in your scope: %(u)s", u=username[:64])))
            continue
        if (
            not ledger
            or not title
            or end < start
            or (end - start).days >= MAX_DAYS
            or start.year < 2000
            or end.year > 2100
        ):
            results.append(RowResult(n, "error", _("Check the class name, the dates and the credit type.")))
            continue
        hours_raw = _get(row, "hours")
        pol = P.in_force(end)
        if hours_raw:
            try:
                centi = round(float(hours_raw) * 100)
            except ValueError:
                results.append(RowResult(n, "error", _("学时 must be a number such as 12 or 7.5.")))
                continue
            if not 0 < centi <= 100_000:
                results.append(RowResult(n, "error", _("学时 must be between 0.01 and 1000.")))
                continue
        else:
            centi = P.offline_amount(P.rules_of(pol), (end - start).days + 1)
        # The row's identity: the person, the class and its dates (not the file or line),
        # so the same row imported again, in any file, is recognised.
        digest = hashlib.sha256(
            "|".join([str(user.id), ledger, title, start.isoformat(), end.isoformat()]).encode()
        ).hexdigest()[:32]
        res = S.earn(
            key=f"roster:{digest}",
            user_id=user.id,
            ledger=ledger,
            amount=centi,
            day=end,
            code=TransferCode.IMPORT.value,
            issuer=L.ISSUER_ROSTER,
            policy_version=pol.version,
            actor_id=actor.id,
            evidence_ref=f"roster:{filename[:100]}",
            memo=title,
        )
        results.append(
            RowResult(
                n,
                res.status if res.status in (L.CREATED, L.EXISTS) else "error",
                "" if res.status in (L.CREATED, L.EXISTS) else res.status,
            )
        )
    created = sum(1 for r in results if r.status == L.CREATED)
    emit(
        "credit.roster_imported",
        actor=actor,
        payload={"file": filename[:100], "rows": len(results), "created": created},
    )
    db.session.commit()
    return results
