"""Claims (cadre and reviewer), who is behind (with exports), rosters and policy pages."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import func, select

from lms_core import csv_export
from lms_core.accounts.models import User, UserStatus
from lms_core.authz import can, require, scope_condition
from lms_core.db import utcnow
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit
from lms_core.unit_of_work import service_call
from plugins.credit_bank import claims as C
from plugins.credit_bank import labels, queries
from plugins.credit_bank import policy as P
from plugins.credit_bank.models import CREDIT_UNIT_LEDGER_IDS, Account, AccountKind, Claim, ClaimStatus, Transfer
from plugins.credit_bank.services import CLOSE_CODES, local_date
from plugins.credit_bank.views import bp, parse_date, parse_year, this_year

RANK_NAMES = {"county_and_above": "县处级及以上", "township": "乡科级", "general": "一般干部"}


def rank_name(band: str) -> str:
    names = {
        "county_and_above": _("County level and above"),
        "township": _("Township level"),
        "general": _("General staff"),
    }
    return str(names.get(band, band))


# --------------------------------------------------------------------------- claims (cadre)


@bp.route("/claims", methods=["GET", "POST"])
@login_required
def claims() -> Any:
    if request.method == "POST":
        form = request.form
        try:
            start = dt.date.fromisoformat(form.get("start_date", ""))
            end = dt.date.fromisoformat(form.get("end_date", ""))
        except ValueError:
            flash(_("The dates must look like 2025-06-30."), "error")
            return render_template("credit_bank/claims.html", claims=C.claims_of(current_user.id), form=form), 400
        files = [(f.stream, f.filename or "upload") for f in request.files.getlist("evidence") if f and f.filename]
        try:
            C.submit(
                current_user,
                ledger=form.get("ledger", ""),
                title=form.get("title", ""),
                organiser=form.get("organiser", ""),
                start=start,
                end=end,
                files=files,
            )
        except C.ClaimError as exc:
            flash(str(exc), "error")
            return render_template("credit_bank/claims.html", claims=C.claims_of(current_user.id), form=form), 400
        flash(_("Your claim was submitted. Its hours show as under review until it is approved."), "success")
        return redirect(url_for("credit_bank.claims"))
    return render_template("credit_bank/claims.html", claims=C.claims_of(current_user.id), form={})


# --------------------------------------------------------------------------- claims (reviewer)


def _claims_in_scope() -> Any:
    return (
        select(Claim, User)
        .join(User, User.id == Claim.user_id)
        .join(OrgUnit, OrgUnit.id == User.org_unit_id)
        .where(scope_condition(current_user, "credit.review", OrgUnit.path))
    )


@bp.route("/review")
@login_required
def review_queue() -> Any:
    require(current_user, "credit.review")
    rows = db.session.execute(
        _claims_in_scope().where(Claim.status == ClaimStatus.SUBMITTED).order_by(Claim.id).limit(500)
    ).all()
    from lms_core.media.models import MediaFile

    media_ids = {m for c, _u in rows for m in (c.evidence or [])}
    media = (
        {m.id: m for m in db.session.execute(select(MediaFile).where(MediaFile.id.in_(media_ids))).scalars()}
        if media_ids
        else {}
    )
    return render_template("credit_bank/review.html", rows=rows, media=media)


@bp.route("/review/<int:claim_id>", methods=["POST"])
@login_required
def review_claim(claim_id: int) -> Any:
    claim = db.session.get(Claim, claim_id)
    if claim is None:
        abort(404)
    owner = db.session.get(User, claim.user_id)
    require(current_user, "credit.review", owner)
    approve = request.form.get("decision") == "approve"
    result = C.review(claim, current_user, approve=approve, reason=request.form.get("reason", ""))
    if result in ("created", "exists"):
        flash(_("Approved: the hours are posted.") if approve else _("Rejected: the hold is released."), "success")
    else:
        flash(labels.error_text(result), "error")
    return redirect(url_for("credit_bank.review_queue"))


@bp.route("/evidence/<int:claim_id>/<int:media_id>")
@login_required
def evidence(claim_id: int, media_id: int) -> Any:
    """Evidence is shown to its owner and to reviewers and viewers in scope."""
    claim = db.session.get(Claim, claim_id)
    if claim is None or media_id not in (claim.evidence or []):
        abort(404)
    owner = db.session.get(User, claim.user_id)
    if claim.user_id != current_user.id and not (
        can(current_user, "credit.review", owner) or can(current_user, "credit.view", owner)
    ):
        abort(403)
    from lms_core.media.models import MediaFile
    from lms_core.media.storage import get_storage

    media = db.session.get(MediaFile, media_id)
    if media is None:
        abort(404)
    with get_storage().open(media.storage_key) as fh:
        data = fh.read()
    return Response(
        data,
        mimetype=media.mime_type,
        headers={
            "Content-Disposition": "inline",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
        },
    )


# --------------------------------------------------------------------------- who is behind


def behind_rows(year: int, unit_prefix: str, band: str) -> list[dict[str, Any]]:
    """People in scope whose year's counted 学时 are below their yearly target."""
    a = Account
    earned = (
        select(a.owner_id.label("uid"), func.sum(a.credits_posted - a.debits_posted).label("bal"))
        .where(a.period == year, a.kind == AccountKind.COUNTED.value, a.ledger_id.not_in(CREDIT_UNIT_LEDGER_IDS))
        .group_by(a.owner_id)
        .subquery()
    )
    t = Transfer
    closed = (
        select(t.user_id.label("uid"), func.sum(t.amount).label("out"))
        .where(
            t.code.in_(CLOSE_CODES),
            t.effective_date == dt.date(year, 12, 31),
            t.ledger_id.not_in(CREDIT_UNIT_LEDGER_IDS),  # 学时 only: 学分 are another unit
        )
        .group_by(t.user_id)
        .subquery()
    )
    stmt = (
        select(User, OrgUnit, func.coalesce(earned.c.bal, 0), func.coalesce(closed.c.out, 0))
        .join(OrgUnit, OrgUnit.id == User.org_unit_id)
        .outerjoin(earned, earned.c.uid == User.id)
        .outerjoin(closed, closed.c.uid == User.id)
        .where(scope_condition(current_user, "credit.view", OrgUnit.path), User.status == UserStatus.ACTIVE)
    )
    if unit_prefix:
        stmt = stmt.where(OrgUnit.code.startswith(unit_prefix, autoescape=True))
    from plugins.credit_bank import ranks

    found = list(db.session.execute(stmt.order_by(OrgUnit.path, User.username).limit(5000)))
    hists = ranks.histories([u for u, *_rest in found])
    ref = queries.reference_date(year, None)
    rows = []
    for user, unit, bal, out in found:
        hist = hists[user.id]
        user_band = hist.band_on(ref)
        if band and user_band != band:
            continue
        target = queries.annual_target(user, year, hist)
        got = int(bal) + int(out)
        promo = None
        if hist.promotions():
            promo = next(
                (p for p in queries.progress(user, year, hist=hist) if p.window == "after_promotion" and not p.met),
                None,
            )
        if got < target or promo is not None:
            rows.append(
                {
                    "user": user,
                    "unit": unit,
                    "band": user_band,
                    "earned": got,
                    "target": target,
                    "gap": max(0, target - got),
                    "promotion": promo,
                }
            )
    return rows


def _export_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    header = [
        _("Org unit"),
        _("Username"),
        _("Full name"),
        _("Rank"),
        _("Posted hours"),
        _("Yearly target"),
        _("Hours short"),
        _("Promotion deadline"),
        _("Hours short since promotion"),
    ]
    body = [
        [
            r["unit"].name,
            r["user"].username,
            r["user"].full_name,
            rank_name(r["band"]),
            labels.hours(r["earned"]),
            labels.hours(r["target"]),
            labels.hours(r["gap"]),
            r["promotion"].deadline.isoformat() if r["promotion"] else "",
            labels.hours(r["promotion"].required - r["promotion"].earned) if r["promotion"] else "",
        ]
        for r in rows
    ]
    return header, body


def _safe_cell(v: Any) -> Any:
    # A cell starting with = + - @ tab CR is a formula to a spreadsheet: the shared rule.
    return csv_export.safe_cell(v)


@bp.route("/behind")
@login_required
def behind() -> Any:
    require(current_user, "credit.view")
    year = parse_year(request.args.get("year"))
    unit_prefix = (request.args.get("unit") or "").replace("\x00", "")[:64]
    band = request.args.get("band") or ""
    if band and band not in P.RANK_BANDS:
        abort(400, description=_("Unknown rank band."))
    rows = behind_rows(year, unit_prefix, band)
    fmt = request.args.get("format")
    if fmt in ("csv", "xlsx"):
        header, body = _export_table(rows)
        name = f"credit-behind-{year}.{fmt}"
        if fmt == "csv":
            buf = io.StringIO()
            w = csv_export.writer(buf)  # neutralises formula cells (CSV injection)
            w.writerow(header)
            w.writerows(body)
            return Response(
                "\ufeff" + buf.getvalue(),
                mimetype="text/csv; charset=utf-8",
                headers={"Content-Disposition": f"attachment; filename={name}"},
            )
        import openpyxl

        wb = openpyxl.Workbook()
        sheet: Any = wb.active
        sheet.append(header)
        for line in body:
            sheet.append([_safe_cell(c) for c in line])
        out = io.BytesIO()
        wb.save(out)
        return Response(
            out.getvalue(),
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f"attachment; filename={name}"},
        )
    # Per unit (by code: 东山社区 is the name of a village in many townships), in code order.
    summary: dict[tuple[str, str, str], int] = {}
    for row in rows:
        key = (row["unit"].code, row["unit"].name, row["band"])
        summary[key] = summary.get(key, 0) + 1
    return render_template(
        "credit_bank/behind.html",
        rows=rows,
        year=year,
        unit=unit_prefix,
        band=band,
        summary=sorted(summary.items()),
        rank_name=rank_name,
        bands=P.RANK_BANDS,
    )


# --------------------------------------------------------------------------- rosters


@dataclass(frozen=True)
class FileImport:
    """What differs between the bank's file imports; the page, limits and errors are shared."""

    capability: str
    title: Any
    columns: Any  #: the help line naming the columns
    summary_id: str
    summary: Any  #: "%(c)d …, %(e)d already there, %(x)d refused."
    run: Callable[[bytes, str, Any, Callable[[Any], bool]], list[Any]]


#: Largest file accepted (the request is read up to one byte more to tell).
MAX_IMPORT_BYTES = 10 * 1024 * 1024

ROSTER_IMPORT = FileImport(
    capability="credit.import",
    title=_l("Import class roster"),
    columns=_l(
        "CSV (UTF-8) or XLSX with the columns 用户名, 培训班名称, 主办单位, 开始日期, 结束日期, 学时类别, 学时. "
        "Without 学时, the policy's rate per day applies. Importing the same row again changes nothing."
    ),
    summary_id="roster-summary",
    summary=_l("%(c)d posted, %(e)d already there, %(x)d refused."),
    run=C.import_roster,
)


def _rank_rows(data: bytes, filename: str, actor: Any, allowed: Callable[[Any], bool]) -> list[Any]:
    from plugins.credit_bank import ranks

    return ranks.import_rows(data, filename, actor, allowed)


RANKS_IMPORT = FileImport(
    capability="credit.ranks",
    title=_l("Import rank changes"),
    columns=_l(
        "CSV (UTF-8) or XLSX with the columns 用户名, 职级 (县处级及以上, 乡科级 or 一般干部), 职级生效日期 "
        "and optionally 说明. Importing the same row again changes nothing."
    ),
    summary_id="ranks-summary",
    summary=_l("%(c)d recorded, %(e)d already there, %(x)d refused."),
    run=_rank_rows,
)


def _file_import(kind: FileImport) -> Any:
    """One page for both imports: upload, size and format checks, per-line results."""
    require(current_user, kind.capability)

    def page(results: list[Any] | None, status: int = 200) -> Any:
        return render_template("credit_bank/file_import.html", kind=kind, results=results), status

    if request.method != "POST":
        return page(None)
    f = request.files.get("file")
    if f is None or not f.filename:
        flash(_("Choose a CSV or XLSX file."), "error")
        return page(None, 400)
    try:
        data = f.stream.read(MAX_IMPORT_BYTES + 1)
    finally:
        f.close()  # a large upload is spooled to a temporary file: release it now
    if len(data) > MAX_IMPORT_BYTES:
        flash(_("The file is larger than 10 MB."), "error")
        return page(None, 413)
    try:
        results = kind.run(data, f.filename, current_user, lambda u: can(current_user, kind.capability, u))
    except C.ClaimError as exc:
        flash(str(exc), "error")
        return page(None, 400)
    return page(results)


@bp.route("/roster", methods=["GET", "POST"])
@login_required
def roster_import() -> Any:
    """Class rosters (offline training) from a CSV/XLSX file, idempotent per row."""
    return _file_import(ROSTER_IMPORT)


# --------------------------------------------------------------------------- policy


@bp.route("/policy", methods=["GET", "POST"])
@login_required
def policy_page() -> Any:
    require(current_user, "credit.policy")
    status = 200
    draft = None
    if request.method == "POST":
        draft = request.form.get("rules", "")
        effective = parse_date(request.form.get("effective_from")) or local_date(utcnow())
        if len(draft) > 200_000:
            flash(_("The policy is too long."), "error")
            status = 400
        else:
            from plugins.credit_bank.policy_forms import record_version

            try:
                row = record_version(draft, effective, request.form.get("note"))
            except P.PolicyError as exc:
                flash(_("The policy was not saved: %(why)s", why=str(exc)), "error")
                status = 400
            else:
                db.session.commit()
                flash(_("Policy version %(v)d saved.", v=row.version), "success")
                return redirect(url_for("credit_bank.policy_page"))
    versions = P.versions()
    current = P.in_force(local_date(utcnow()))
    text = draft if draft is not None else json.dumps(P.rules_of(current), ensure_ascii=False, indent=2)
    return render_template(
        "credit_bank/policy.html", versions=versions, current=current, text=text, year=this_year()
    ), status


# --------------------------------------------------------------------------- promotion history


@bp.route("/users/<int:user_id>/ranks", methods=["GET", "POST"])
@login_required
def ranks_page(user_id: int) -> Any:
    """A cadre's rank history: record a change (promotion) or correct an entry."""
    from plugins.credit_bank import ranks

    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    require(current_user, "credit.ranks", user)
    if request.method == "GET":
        from lms_core.audit.viewlog import log_view
        from lms_core.jobs.services import commit

        log_view(current_user, user, "ranks")  # a look at the cadre's record (issue 12, part 8)
        commit()
    status = 200
    form = request.form if request.method == "POST" else {}
    if request.method == "POST":
        corrects_raw = (form.get("corrects") or "").strip()
        corrects = int(corrects_raw) if corrects_raw.isdigit() and len(corrects_raw) < 10 else None
        if corrects_raw and corrects is None:
            abort(400, description=_("Unknown entry."))
        try:
            effective = dt.date.fromisoformat(form["effective_date"]) if form.get("effective_date") else None
        except ValueError:
            effective = None
            flash(_("The dates must look like 2025-06-30."), "error")
            status = 400
        if status == 200:
            with service_call(lambda: _ranks_page(user, form), message="%(reason)s", errors=(ranks.RankError,)):
                ranks.record(
                    user,
                    band=form.get("band") or None,
                    effective=effective,
                    actor=current_user,
                    reason=form.get("reason", ""),
                    corrects=corrects,
                    withdraw=form.get("withdraw") == "1",
                )
            flash(_("The rank change was recorded."), "success")
            return redirect(url_for("credit_bank.ranks_page", user_id=user.id))
    return _ranks_page(user, form, status)


def _ranks_page(user: User, form: Any, status: int = 200) -> Any:
    from plugins.credit_bank import ranks

    rows = ranks.entries(user.id)
    corrected = {r.corrects_id: r.id for r in rows if r.corrects_id}
    hist = ranks.history(user)
    promotions = {d for d, _b in hist.promotions()}
    return render_template(
        "credit_bank/ranks.html",
        person=user,
        rows=list(reversed(rows)),
        corrected=corrected,
        promotions=promotions,
        band_now=hist.band_on(ranks.today()),
        band_name=ranks.band_name,
        reason_text=ranks.reason_text,
        bands=list(ranks.ORDER)[::-1],
        form=form,
        today=ranks.today(),
    ), status


@bp.route("/ranks/import", methods=["GET", "POST"])
@login_required
def ranks_import() -> Any:
    """Rank changes from a CSV/XLSX file (用户名, 职级, 职级生效日期, 说明)."""
    return _file_import(RANKS_IMPORT)
