"""Bulk import of cadres from the HR system's export (CSV or XLSX).

All-or-nothing: every row is validated first; if any row is wrong, the report
lists each bad line and nothing is written. A valid file is applied in one
transaction, and re-importing the same file changes nothing (idempotent per row,
keyed by username).

Every account the import creates can sign in: it gets the admin's initial password
or a generated one-time password (:mod:`lms_core.accounts.initial_passwords`).
Accounts that never signed in get the password of a re-import as well, so a first
import without passwords can be mended by importing again.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from lms_core.accounts import initial_passwords
from lms_core.accounts.models import ImportRun, ImportStatus, RankBand, User
from lms_core.accounts.passwords import hash_password, policy_errors
from lms_core.authz import can
from lms_core.db import utcnow
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.jobs.services import enqueue
from lms_core.orgs.models import OrgUnit
from lms_core.unit_of_work import ServiceError

#: Accepted header names (the HR export uses Chinese; English for hand-made files).
HEADERS = {
    "username": {"username", "用户名", "账号", "登录名"},
    "full_name": {"full_name", "姓名"},
    "org_code": {"org_code", "单位代码", "组织代码", "机构代码"},
    "rank_band": {"rank_band", "职级", "职级档次"},
    "party_member": {"party_member", "政治面貌", "党员"},
    "position": {"position", "职务"},
    "phone": {"phone", "手机", "手机号", "联系电话"},
    #: When a changed 职级 took effect (a promotion's date); the import day if empty.
    "rank_since": {"rank_since", "职级生效日期", "任职时间"},
}
REQUIRED = ("username", "full_name", "org_code")
#: How messages name each column: the HR export's Chinese header (and in English
#: the field too), never the internal key.
COLUMN_LABELS = {
    "username": _l("Username (用户名)"),
    "full_name": _l("Full name (姓名)"),
    "org_code": _l("Org code (单位代码)"),
    "rank_band": _l("Rank (职级)"),
    "party_member": _l("Political status (政治面貌)"),
    "position": _l("Position (职务)"),
    "phone": _l("Phone (手机)"),
    "rank_since": _l("Rank since (职级生效日期)"),
}

#: 职级 as HR systems write them, by the band whose yearly requirement applies
#: (公务员职务与职级并行规定: 调研员 ranks are 县处级, 主任科员 ranks 乡科级).
RANK_NAMES: dict[RankBand, tuple[str, ...]] = {
    RankBand.COUNTY_AND_ABOVE: (
        "县处级及以上",
        "县处级",
        "厅局级",
        "省部级",
        "正部级",
        "副部级",
        "正厅级",
        "副厅级",
        "正局级",
        "副局级",
        "正处级",
        "副处级",
        "正县级",
        "副县级",
        "县处级正职",
        "县处级副职",
        "一级巡视员",
        "二级巡视员",
        "一级调研员",
        "二级调研员",
        "三级调研员",
        "四级调研员",
    ),
    RankBand.TOWNSHIP: (
        "乡科级",
        "正科级",
        "副科级",
        "乡科级正职",
        "乡科级副职",
        "正乡级",
        "副乡级",
        "一级主任科员",
        "二级主任科员",
        "三级主任科员",
        "四级主任科员",
    ),
    RankBand.GENERAL: ("一般干部", "科员", "办事员", "一级科员", "二级科员", "科员级", "办事员级", "试用期"),
}
RANK_VALUES = {name: band for band, names in RANK_NAMES.items() for name in names}
RANK_VALUES.update({band.value: band for band in RankBand})  # the English keys of hand-made files
RANK_VALUES[""] = RankBand.GENERAL
PARTY_TRUE = {"中共党员", "中共预备党员", "党员", "是", "yes", "true", "1", "y"}
PARTY_FALSE = {"群众", "否", "no", "false", "0", "n", "", "民主党派", "无党派人士", "共青团员"}


class ImportFileError(ServiceError):
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
    #: Existing accounts (never signed in) that received a password.
    passwords_set: int = 0
    errors: list[RowError] = field(default_factory=list)
    #: Generated passwords, for the one-time sheet (never stored in plain text).
    issued: list[initial_passwords.Issued] = field(default_factory=list)

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
    if data.startswith(OLE_MAGIC):
        raise ImportFileError(_("This is an old Excel (.xls) file: save it as .xlsx or CSV and upload again."))
    if b"\x00" in data[:4096]:
        raise ImportFileError(_("This file is neither CSV text nor an XLSX workbook."))
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
        raise ImportFileError(
            _(
                "Missing required columns: %(cols)s. The first line must name the columns, "
                "e.g. 用户名, 姓名, 单位代码.",
                cols=", ".join(str(COLUMN_LABELS[k]) for k in missing),
            )
        )
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


#: First bytes of an XLSX (a zip archive) and of an old binary .xls (OLE2).
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: Largest unpacked workbook accepted: a 20 MB upload can unzip to gigabytes (a zip
#: bomb); a real 50,000-line HR sheet unpacks to about 30 MB.
XLSX_MAX_UNPACKED = 200 * 1024 * 1024


def is_xlsx(data: bytes) -> bool:
    return data.startswith(ZIP_MAGIC)


def _xlsx_text(value: Any) -> str:
    """A cell as the text HR meant: 360121001 stays a code, not 360121001.0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    return str(value)


def read_xlsx(data: bytes) -> list[tuple[int, list[str]]]:
    """The first worksheet's rows with their line numbers (1 is the header)."""
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise ImportFileError(_("This XLSX file is damaged and cannot be read.")) from None
    if unpacked > XLSX_MAX_UNPACKED:
        raise ImportFileError(_("This XLSX file is too large once unpacked."))
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0]
            return [
                (number, [_xlsx_text(v).replace("\x00", "") for v in row])
                for number, row in enumerate(sheet.iter_rows(values_only=True), start=1)
            ]
        finally:
            book.close()
    except ImportFileError:
        raise
    except Exception:  # openpyxl raises many kinds (KeyError, ValueError, XML errors) on bad files
        raise ImportFileError(_("This XLSX file is damaged and cannot be read.")) from None


def read_table(data: bytes) -> tuple[str, list[tuple[int, list[str]]]]:
    """The file's format or encoding, and its rows with line numbers, header first."""
    if is_xlsx(data):
        return "XLSX", read_xlsx(data)
    text, encoding = decode(data)
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text))
    return encoding, [(reader.line_num, cells) for cells in reader]


def _parse_rows(text: str) -> tuple[list[_Row], list[RowError]]:
    """Parse CSV text (kept for the parser's property tests)."""
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text))
    return _parse_table([(reader.line_num, cells) for cells in reader])


def _parse_table(table: Iterable[tuple[int, list[str]]]) -> tuple[list[_Row], list[RowError]]:
    lines = iter(table)
    try:
        _first, header = next(lines)
    except StopIteration:
        raise ImportFileError(_("The file is empty.")) from None
    mapping = _map_header(header)
    rows, errors = [], []
    seen: dict[str, int] = {}
    for line, cells in lines:
        if not any(c.strip() for c in cells):
            continue
        values: dict[str, Any] = {k: _cell(cells, mapping, k) for k in HEADERS}
        problems = [_("%(col)s is empty", col=COLUMN_LABELS[k]) for k in REQUIRED if not values[k]]
        if len(values["username"]) > 64:
            problems.append(_("%(col)s is longer than %(n)d characters", col=COLUMN_LABELS["username"], n=64))
        if len(values["full_name"]) > 100:
            problems.append(_("%(col)s is longer than %(n)d characters", col=COLUMN_LABELS["full_name"], n=100))
        for key, limit in (("position", 100), ("phone", 32), ("org_code", 64)):
            if len(values[key]) > limit:
                problems.append(_("%(col)s is longer than %(n)d characters", col=COLUMN_LABELS[key], n=limit))
        raw_rank = values["rank_band"]
        rank = RANK_VALUES.get(raw_rank.lower() if raw_rank.isascii() else raw_rank)
        if rank is None:
            problems.append(
                _(
                    "%(col)s: unknown value %(v)s (the accepted values are listed on the import page)",
                    col=COLUMN_LABELS["rank_band"],
                    v=values["rank_band"],
                )
            )
        values["rank_band"] = rank
        since = values["rank_since"].replace("/", "-")[:10]
        values["rank_since"] = None
        if since:
            from lms_core.i18n import SHANGHAI

            with contextlib.suppress(ValueError):  # a bad date is reported just below
                values["rank_since"] = dt.date.fromisoformat(since)
            if (
                values["rank_since"] is None
                or not dt.date(2000, 1, 1) <= values["rank_since"] <= utcnow().astimezone(SHANGHAI).date()
            ):
                values["rank_since"] = None
                problems.append(
                    _(
                        "%(col)s: %(v)s is not a date like 2025-06-30, up to today",
                        col=COLUMN_LABELS["rank_since"],
                        v=since,
                    )
                )
        party = values["party_member"].lower()
        if party in PARTY_TRUE:
            values["party_member"] = True
        elif party in PARTY_FALSE:
            values["party_member"] = False
        else:
            problems.append(
                _("%(col)s: unknown value %(v)s", col=COLUMN_LABELS["party_member"], v=values["party_member"])
            )
        if values["username"] in seen:
            problems.append(
                _(
                    "%(col)s %(v)s repeats line %(n)d",
                    col=COLUMN_LABELS["username"],
                    v=values["username"],
                    n=seen[values["username"]],
                )
            )
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
    return [values[i : i + LOOKUP_CHUNK] for i in range(0, len(values), LOOKUP_CHUNK)]


def import_users(
    actor: User,
    data: bytes,
    *,
    initial_password: str | None = None,
    min_password_length: int = 8,
    initial_password_hash: str | None = None,
    reissue: bool = False,
) -> ImportReport:
    """Validate and apply an HR export. Does not commit; the caller commits if ``report.ok``.

    ``initial_password_hash`` (from :func:`queue_import`) stands for an initial password
    whose policy was checked and which was hashed when the file was uploaded. Without
    either, each new account gets a generated password, listed in ``report.issued``
    for the one-time sheet. Accounts that never signed in get the given password; with
    ``reissue`` (or when they have none) a generated one.
    """
    report = ImportReport()
    report.encoding, table = read_table(data)
    rows, report.errors = _parse_table(table)
    report.rows = len(rows) + len(report.errors)
    if initial_password:
        problems = policy_errors(initial_password, min_length=min_password_length)
        if problems:
            raise ImportFileError(" ".join(problems))
    codes = {r.values["org_code"] for r in rows}
    units = {
        u.code: u
        for chunk in _chunks(sorted(codes))
        for u in db.session.execute(select(OrgUnit).where(OrgUnit.code.in_(chunk))).scalars()
    }
    usernames = [r.values["username"] for r in rows]
    existing = {
        u.username: u
        for chunk in _chunks(usernames)
        for u in db.session.execute(select(User).where(User.username.in_(chunk))).scalars()
    }
    for row in rows:
        unit = units.get(row.values["org_code"])
        if unit is None:
            report.errors.append(
                RowError(
                    row.line,
                    _(
                        "%(col)s: no org unit has the code %(c)s",
                        col=COLUMN_LABELS["org_code"],
                        c=row.values["org_code"],
                    ),
                )
            )
        elif not can(actor, "user.import", unit):
            report.errors.append(
                RowError(
                    row.line,
                    _(
                        "%(col)s: %(c)s (%(name)s) is outside your area",
                        col=COLUMN_LABELS["org_code"],
                        c=unit.code,
                        name=unit.name,
                    ),
                )
            )
        else:
            user = existing.get(row.values["username"])
            if user is not None and not can(actor, "user.manage", user):
                report.errors.append(
                    RowError(
                        row.line,
                        _(
                            "%(col)s: %(u)s already belongs to an org unit outside your area",
                            col=COLUMN_LABELS["username"],
                            u=user.username,
                        ),
                    )
                )
    report.errors.sort(key=lambda e: e.line)
    if report.errors:
        return report

    # One hash for the whole batch: scrypt per row would take minutes for a county,
    # and every imported account must change this password at first sign-in.
    shared_hash = hash_password(initial_password) if initial_password else initial_password_hash
    fields = ("full_name", "rank_band", "party_member", "position", "phone")
    rank_changes: list[dict[str, Any]] = []
    #: New accounts with a 职级生效日期: their first rank entry (ids are known after the flush).
    created_ranks: list[tuple[User, str, dt.date]] = []
    for row in rows:
        v = row.values
        unit = units[v["org_code"]]
        user = existing.get(v["username"])
        if user is None:
            user = User(
                username=v["username"],
                full_name=v["full_name"],
                org_unit=unit,
                rank_band=v["rank_band"],
                party_member=v["party_member"],
                position=v["position"] or None,
                phone=v["phone"] or None,
                password_hash=shared_hash,
                must_change_password=True,
            )
            if shared_hash is None:
                initial_passwords.issue(user, report.issued, org_name=unit.name)
            db.session.add(user)
            report.created += 1
            if v["rank_since"] is not None:
                created_ranks.append((user, v["rank_band"].value, v["rank_since"]))
            continue
        changes = {}
        before_rank = user.rank_band
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
            if "rank_band" in changes:
                # Listeners keep a rank history (the credit bank's promotion rule needs the date).
                from lms_core.i18n import SHANGHAI

                since = v["rank_since"] or utcnow().astimezone(SHANGHAI).date()
                rank_changes.append(
                    {
                        "user_id": user.id,
                        "from": before_rank.value,
                        "to": v["rank_band"].value,
                        "since": since.isoformat(),
                    }
                )
        else:
            report.unchanged += 1
        if user.last_login_at is None:
            # Never signed in: nobody can be locked out by a new initial password, and
            # this is how an earlier import without passwords is mended.
            if shared_hash is not None:
                user.password_hash, user.must_change_password = shared_hash, True
                user.session_version += 1
                report.passwords_set += 1
            elif reissue or not user.password_hash:
                initial_passwords.issue(user, report.issued, org_name=unit.name)
                report.passwords_set += 1
    db.session.flush()
    # "from": None: the rank before the date is not known (a new account, not a promotion).
    rank_changes += [
        {"user_id": u.id, "from": None, "to": band, "since": since.isoformat()} for u, band, since in created_ranks
    ]
    emit(
        "users.imported",
        actor=actor,
        payload={
            "encoding": report.encoding,
            "rows": report.rows,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "passwords_set": report.passwords_set,
            "passwords_generated": len(report.issued),
            **({"rank_changes": rank_changes} if rank_changes else {}),
        },
    )
    return report


#: Job kind of a queued import (see :func:`import_job`).
IMPORT_JOB = "accounts.import"


def count_lines(data: bytes) -> int:
    """Data lines in a file (without the header): cheap, decides where the import runs."""
    if is_xlsx(data):
        return max(len([cells for _line, cells in read_xlsx(data) if any(c.strip() for c in cells)]) - 1, 0)
    return max(len([line for line in data.splitlines() if line.strip()]) - 1, 0)


def queue_import(
    actor: User,
    data: bytes,
    *,
    filename: str,
    initial_password: str | None,
    min_password_length: int,
    reissue: bool = False,
) -> ImportRun:
    """Store the file and queue its import for a worker. Does not commit.

    What can be checked at once is checked here (encoding, header, the initial
    password's policy), so the uploader sees those errors on the upload page.
    """
    _parse_table(read_table(data)[1])  # raises ImportFileError for the file as a whole
    password_hash = None
    if initial_password:
        problems = policy_errors(initial_password, min_length=min_password_length)
        if problems:
            raise ImportFileError(" ".join(problems))
        password_hash = hash_password(initial_password)
    run = ImportRun(
        created_by=actor,
        data=data,
        filename=filename[:255],
        lines=count_lines(data),
        password_hash=password_hash,
        reissue_passwords=reissue,
    )
    db.session.add(run)
    db.session.flush()
    enqueue(IMPORT_JOB, {"run_id": run.id})
    return run


def report_dict(report: ImportReport) -> dict[str, Any]:
    return {
        "encoding": report.encoding,
        "rows": report.rows,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "passwords_set": report.passwords_set,
        "passwords_generated": len(report.issued),
        "errors": [[e.line, e.message] for e in report.errors],
    }


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
        report = import_users(
            run.created_by, run.data, initial_password_hash=run.password_hash, reissue=run.reissue_passwords
        )
    except ImportFileError as exc:
        db.session.rollback()
        status, outcome = ImportStatus.FAILED, {"file_error": str(exc)}
    else:
        outcome = report_dict(report)
        if report.ok:
            status = ImportStatus.DONE
            if report.issued:  # committed with the accounts: no account without its password
                initial_passwords.store(run.created_by, report.issued, import_run_id=run.id)
        else:
            db.session.rollback()
            status = ImportStatus.FAILED
    run = db.session.get(ImportRun, run_id)
    assert run is not None
    run.status, run.report, run.finished_at = status, outcome, utcnow()
    run.data, run.password_hash = b"", None  # personal data and the hash are not kept
