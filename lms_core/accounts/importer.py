"""Bulk import of cadres from the HR system's CSV export.

All-or-nothing: every row is validated first; if any row is wrong, the report
lists each bad line and nothing is written. A valid file is applied in one
transaction, and re-importing the same file changes nothing (idempotent per row,
keyed by username).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from lms_core.accounts.models import ImportRun, ImportStatus, RankBand, User
from lms_core.accounts.passwords import hash_password, policy_errors
from lms_core.authz import can
from lms_core.db import utcnow
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.jobs.services import enqueue
from lms_core.orgs.models import OrgUnit

#: Accepted header names (the HR export uses Chinese; English for hand-made files).
HEADERS = {
    "username": {"username", "用户名", "账号", "登录名"},
    "full_name": {"full_name", "姓名"},
    "org_code": {"org_code", "单位代码", "组织代码", "机构代码"},
    "rank_band": {"rank_band", "职级", "职级档次"},
    "party_member": {"party_member", "政治面貌", "党员"},
    "position": {"position", "职务"},
    "phone": {"phone", "手机", "手机号", "联系电话"},
}
REQUIRED = ("username", "full_name", "org_code")

RANK_VALUES = {
    "county_and_above": RankBand.COUNTY_AND_ABOVE, "县处级及以上": RankBand.COUNTY_AND_ABOVE,
    "县处级": RankBand.COUNTY_AND_ABOVE, "厅局级": RankBand.COUNTY_AND_ABOVE,
    "township": RankBand.TOWNSHIP, "乡科级": RankBand.TOWNSHIP,
    "general": RankBand.GENERAL, "一般干部": RankBand.GENERAL, "": RankBand.GENERAL,
}
PARTY_TRUE = {"中共党员", "中共预备党员", "党员", "是", "yes", "true", "1", "y"}
PARTY_FALSE = {"群众", "否", "no", "false", "0", "n", "", "民主党派", "无党派人士", "共青团员"}


class ImportFileError(ValueError):
    """The file as a whole cannot be read (encoding, header, size)."""


@dataclass
class RowError:
    line: int
    message: str


@dataclass
class ImportReport:
    encoding: str = ""
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def decode(data: bytes) -> tuple[str, str]:
    """Text and encoding name: UTF-8 (with or without BOM), else GB18030 (GBK's superset).

    Strict decoding, not guessing: Chinese text that decodes as both is vanishingly
    rare, while a wrong guess would silently store mojibake names.
    """
    if not data.strip():
        raise ImportFileError(_("The file is empty."))
    if b"\x00" in data[:4096]:
        raise ImportFileError(_("This is not a CSV text file."))
    try:
        return data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "GBK"
    except UnicodeDecodeError:
        raise ImportFileError(_("The file is neither UTF-8 nor GBK text.")) from None


def _map_header(header: list[str]) -> dict[str, int]:
    mapping: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = raw.strip().lower()
        for key, aliases in HEADERS.items():
            if name in aliases:
                if key in mapping:
                    raise ImportFileError(_("Column %(name)s appears twice.", name=raw))
                mapping[key] = index
    missing = [k for k in REQUIRED if k not in mapping]
    if missing:
        raise ImportFileError(_("Missing required columns: %(cols)s. Expected e.g. 用户名,姓名,单位代码.",
                                cols=", ".join(missing)))
    return mapping


@dataclass
class _Row:
    line: int
    values: dict[str, Any]


def _delimiter(text: str) -> str:
    """Comma, tab or semicolon: whichever splits the header into the most known columns.

    Not ``csv.Sniffer``: it guesses quoting rules from the data too, and on a short
    file it can decide that ``""`` is not an escaped quote, silently changing names.
    """
    header = text.split("\n", 1)[0]
    known = set().union(*HEADERS.values())
    best, best_hits = ",", 0
    for delimiter in (",", "\t", ";"):
        hits = sum(cell.strip().strip('"').lower() in known for cell in header.split(delimiter))
        if hits > best_hits:
            best, best_hits = delimiter, hits
    return best


def _cell(cells: list[str], mapping: dict[str, int], key: str) -> str:
    index = mapping.get(key)
    return cells[index].strip() if index is not None and index < len(cells) else ""


def _parse_rows(text: str) -> tuple[list[_Row], list[RowError]]:
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(_("The file is empty.")) from None
    mapping = _map_header(header)
    rows, errors = [], []
    seen: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        values: dict[str, Any] = {k: _cell(cells, mapping, k) for k in HEADERS}
        problems = [_("%(col)s is empty", col=k) for k in REQUIRED if not values[k]]
        if len(values["username"]) > 64 or len(values["full_name"]) > 100:
            problems.append(_("username or name too long"))
        raw_rank = values["rank_band"]
        rank = RANK_VALUES.get(raw_rank.lower() if raw_rank.isascii() else raw_rank)
        if rank is None:
            problems.append(_("unknown rank %(v)s", v=values["rank_band"]))
        values["rank_band"] = rank
        party = values["party_member"].lower()
        if party in PARTY_TRUE:
            values["party_member"] = True
        elif party in PARTY_FALSE:
            values["party_member"] = False
        else:
            problems.append(_("unknown party status %(v)s", v=values["party_member"]))
        if values["username"] in seen:
            problems.append(_("username repeats line %(n)d", n=seen[values["username"]]))
        seen.setdefault(values["username"], line)
        if problems:
            errors.append(RowError(line, "; ".join(problems)))
        else:
            rows.append(_Row(line, values))
    return rows, errors


#: Values per IN (...) lookup: PostgreSQL takes at most 65,535 parameters per
#: statement, and a city's HR export can hold more people than that.
LOOKUP_CHUNK = 5000


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i:i + LOOKUP_CHUNK] for i in range(0, len(values), LOOKUP_CHUNK)]


def import_users(actor: User, data: bytes, *, initial_password: str | None = None,
                 min_password_length: int = 8, initial_password_hash: str | None = None) -> ImportReport:
    """Validate and apply an HR export. Does not commit; the caller commits if ``report.ok``.

    ``initial_password_hash`` (from :func:`queue_import`) stands for an initial password
    whose policy was checked and which was hashed when the file was uploaded.
    """
    report = ImportReport()
    text, report.encoding = decode(data)
    rows, report.errors = _parse_rows(text)
    report.rows = len(rows) + len(report.errors)
    if initial_password:
        problems = policy_errors(initial_password, min_length=min_password_length)
        if problems:
            raise ImportFileError(" ".join(problems))
    codes = {r.values["org_code"] for r in rows}
    units = {u.code: u for chunk in _chunks(sorted(codes))
             for u in db.session.execute(select(OrgUnit).where(OrgUnit.code.in_(chunk))).scalars()}
    usernames = [r.values["username"] for r in rows]
    existing = {u.username: u for chunk in _chunks(usernames)
                for u in db.session.execute(select(User).where(User.username.in_(chunk))).scalars()}
    for row in rows:
        unit = units.get(row.values["org_code"])
        if unit is None:
            report.errors.append(RowError(row.line, _("unknown org code %(c)s", c=row.values["org_code"])))
        elif not can(actor, "user.import", unit):
            report.errors.append(RowError(row.line, _("no permission for org %(c)s", c=unit.code)))
        else:
            user = existing.get(row.values["username"])
            if user is not None and not can(actor, "user.manage", user):
                report.errors.append(RowError(
                    row.line, _("user %(u)s belongs to another org outside your scope", u=user.username)))
    report.errors.sort(key=lambda e: e.line)
    if report.errors:
        return report

    # One hash for the whole batch: scrypt per row would take minutes for a county,
    # and every imported account must change this password at first sign-in.
    shared_hash = hash_password(initial_password) if initial_password else initial_password_hash
    fields = ("full_name", "rank_band", "party_member", "position", "phone")
    for row in rows:
        v = row.values
        unit = units[v["org_code"]]
        user = existing.get(v["username"])
        if user is None:
            user = User(username=v["username"], full_name=v["full_name"], org_unit=unit,
                        rank_band=v["rank_band"], party_member=v["party_member"],
                        position=v["position"] or None, phone=v["phone"] or None,
                        password_hash=shared_hash, must_change_password=shared_hash is not None)
            db.session.add(user)
            report.created += 1
            continue
        changes = {}
        for name in fields:
            new = v[name] if name in ("rank_band", "party_member") else (v[name] or None)
            if name == "full_name":
                new = v[name]
            if getattr(user, name) != new:
                changes[name] = new
        if user.org_unit_id != unit.id:
            changes["org_unit_id"] = unit.id
        if changes:
            for name, new in changes.items():
                setattr(user, name, new)
            report.updated += 1
        else:
            report.unchanged += 1
    db.session.flush()
    emit("users.imported", actor=actor, payload={
        "encoding": report.encoding, "rows": report.rows, "created": report.created,
        "updated": report.updated, "unchanged": report.unchanged})
    return report


#: Job kind of a queued import (see :func:`import_job`).
IMPORT_JOB = "accounts.import"


def count_lines(data: bytes) -> int:
    """Data lines in a file (without the header): cheap, decides where the import runs."""
    return max(len([line for line in data.splitlines() if line.strip()]) - 1, 0)


def queue_import(actor: User, data: bytes, *, filename: str, initial_password: str | None,
                 min_password_length: int) -> ImportRun:
    """Store the file and queue its import for a worker. Does not commit.

    What can be checked at once is checked here (encoding, header, the initial
    password's policy), so the uploader sees those errors on the upload page.
    """
    _parse_rows(decode(data)[0])  # raises ImportFileError for the file as a whole
    password_hash = None
    if initial_password:
        problems = policy_errors(initial_password, min_length=min_password_length)
        if problems:
            raise ImportFileError(" ".join(problems))
        password_hash = hash_password(initial_password)
    run = ImportRun(created_by=actor, data=data, filename=filename[:255], lines=count_lines(data),
                    password_hash=password_hash)
    db.session.add(run)
    db.session.flush()
    enqueue(IMPORT_JOB, {"run_id": run.id})
    return run


def report_dict(report: ImportReport) -> dict[str, Any]:
    return {"encoding": report.encoding, "rows": report.rows, "created": report.created,
            "updated": report.updated, "unchanged": report.unchanged,
            "errors": [[e.line, e.message] for e in report.errors]}


def import_job(payload: dict[str, Any]) -> None:
    """Worker side of :func:`queue_import`: all lines or none, and the run's outcome.

    The users and the run's ``done`` status are committed together. A run that already
    ended is left alone, so a job retried after a crash does not import twice.
    """
    run_id = int(payload["run_id"])
    run = db.session.get(ImportRun, run_id)
    if run is None or run.status in (ImportStatus.DONE, ImportStatus.FAILED):
        return
    run.status = ImportStatus.RUNNING
    db.session.commit()  # visible on the run's page while the lines are applied
    run = db.session.get(ImportRun, run_id)
    assert run is not None
    outcome: dict[str, Any]
    try:
        report = import_users(run.created_by, run.data, initial_password_hash=run.password_hash)
    except ImportFileError as exc:
        db.session.rollback()
        status, outcome = ImportStatus.FAILED, {"file_error": str(exc)}
    else:
        outcome = report_dict(report)
        if report.ok:
            status = ImportStatus.DONE
        else:
            db.session.rollback()
            status = ImportStatus.FAILED
    run = db.session.get(ImportRun, run_id)
    assert run is not None
    run.status, run.report, run.finished_at = status, outcome, utcnow()
    run.data, run.password_hash = b"", None  # personal data and the hash are not kept
