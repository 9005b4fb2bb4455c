"""Transcript pages: the public verification page (no sign-in) and a cadre's own transcripts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from lms_core.errors import render_error
from plugins.credit_bank.proofs import credential as cr
from plugins.credit_bank.proofs import keys, pdf
from plugins.credit_bank.proofs.canonical import CanonicalError, parse
from plugins.credit_bank.proofs.credential import Report
from plugins.credit_bank.transcripts import log, services
from plugins.credit_bank.transcripts.forms import IssueForm, ReissueForm, RevokeForm, VerifyForm
from plugins.credit_bank.transcripts.issuer_key import issuer_key
from plugins.credit_bank.transcripts.models import Credential

bp = Blueprint("credit_bank_transcripts", __name__, url_prefix="/credit", template_folder="templates")

#: Largest upload the verification page reads; a transcript is some tens of kilobytes.
MAX_UPLOAD = 5 * 1024 * 1024

CHECK_LABELS = {
    "file_seal": _l("The file carries the issuer's seal over every byte"),
    "format": _l("The file is a credit transcript"),
    "issuer_key": _l("Issued under this platform's key"),
    "credential_signature": _l("The credential's signature is valid"),
    "credential_checkpoint": _l("The credential log checkpoint is signed"),
    "credential_inclusion": _l("The credential is recorded in the credential log"),
    "journal_checkpoint": _l("The journal log checkpoint is signed"),
    "journal_inclusion": _l("Every entry is recorded in the credit journal"),
    "balances": _l("The balances equal the sum of the entries"),
    "credential_log_consistent": _l("The credential log has only grown since (consistency proof)"),
    "journal_log_consistent": _l("The credit journal has only grown since (consistency proof)"),
}
STATE_LABELS = {
    "valid": _l("Valid"),
    "superseded": _l("Replaced by a newer transcript"),
    "revoked": _l("Revoked"),
}


def _issued_at(payload: dict[str, Any]) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(str(payload["issued_at"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except (KeyError, ValueError):
        return None


def _context(report: Report, cred: Credential | None, source: str) -> dict[str, Any]:
    payload = report.payload if report.ok else None
    status = services.status_of(cred) if cred is not None else None
    replacement = status.replaced_by if status is not None else None
    return {
        "report": report,
        "payload": payload,
        "cred": cred,
        "status": status,
        "replacement": replacement,
        "labels": CHECK_LABELS,
        "states": STATE_LABELS,
        "hours": pdf.hours,
        "source": source,
        "local_time": pdf.local_time,
        "issued_at": _issued_at(payload) if payload else None,
        "ledger_names": {x["code"]: x["name"] for x in payload.get("ledgers", [])} if payload else {},
        "kid": keys.key_id(issuer_key().public_key()),
    }


@bp.route("/verify", methods=["GET", "POST"])
def verify() -> Any:
    """Upload a transcript to check it (no sign-in)."""
    if request.method == "POST":
        too_big = render_error(413, _("The file is larger than 5 MB: it is not a transcript issued here."))
        # Before the form reads the body: a larger request is refused without being spooled,
        # and a chunked one without a length is cut off at the same size by Werkzeug.
        if request.content_length is not None and request.content_length > MAX_UPLOAD + 64 * 1024:
            return too_big
        request.max_content_length = MAX_UPLOAD + 64 * 1024
    form = VerifyForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            if form.csrf_token.errors:
                return render_error(400, _("The form has expired or was not sent from this site. Please try again."))
            return render_template("credit_transcripts/verify.html", form=form, kid=_kid()), 400
        with form.file.data.stream as stream:
            data = stream.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            return too_big
        if not data.startswith(b"%PDF-") and data.lstrip()[:1] != b"{":
            return render_error(400, _("This is neither a PDF nor a credential file. Upload the transcript PDF."))
        report = pdf.verify_file(data, issuer_key().public_key())
        if report.ok:
            _add_consistency(report)
        cred = services.find(str(report.payload.get("id", ""))) if report.ok and report.payload else None
        ctx = _context(report, cred, "upload")
        return render_template("credit_transcripts/result.html", **ctx), 200 if report.ok else 422
    return render_template("credit_transcripts/verify.html", form=form, kid=_kid())


def _add_consistency(report: Report) -> None:
    """Online only: the logs the transcript was proven against still extend its checkpoints."""
    assert report.bundle is not None and report.payload is not None
    for code, cp in (
        ("credential_log_consistent", report.bundle["credential_log"]["checkpoint"]),
        ("journal_log_consistent", report.payload["journal"]["checkpoint"]),
    ):
        result = log.consistency_with_latest(cp)
        if result is not None:
            report.add(code, result[0], f"{cp['size']} -> {result[1]}")


@bp.route("/verify/consistency")
def consistency() -> Any:
    """JSON: an RFC 6962 consistency proof between two signed checkpoints of one log."""
    name = request.args.get("log", "")
    try:
        first, second = int(request.args.get("first", "")), int(request.args.get("second", ""))
    except ValueError:
        return jsonify({"error": _("first and second must be checkpoint sizes")}), 400
    if name not in (cr.JOURNAL_LOG, cr.CREDENTIAL_LOG) or not (0 < first <= second < 2**62):
        return jsonify({"error": _("Unknown log or sizes.")}), 400
    proof = log.consistency_proof_between(name, first, second)
    if proof is None:
        return jsonify({"error": _("No signed checkpoints of these sizes.")}), 404
    return jsonify(proof)


def _kid() -> str:
    return keys.key_id(issuer_key().public_key())


@bp.route("/verify/key")
def public_key() -> Response:
    """The issuer's public key, for offline verification (``flask lms credit verify --key``)."""
    return Response(keys.public_text(issuer_key().public_key()) + "\n", mimetype="text/plain")


@bp.route("/verify/status.json")
def status_list() -> Response:
    """The signed status list: revoked and re-issued transcripts, for ``credit verify --status``."""
    import json

    body = json.dumps(services.status_list(), ensure_ascii=False, indent=1, sort_keys=True)
    return Response(
        body + "\n",
        mimetype="application/json",
        headers={"Content-Disposition": "attachment; filename=credit-status.json", "Cache-Control": "no-store"},
    )


@bp.route("/verify/<credential_id>")
def verify_link(credential_id: str) -> Any:
    """Where the QR code leads: the transcript as this server recorded it, and its status now."""
    if len(credential_id) > 64:
        return render_error(400, _("This verification link is malformed."))
    cred = services.find(credential_id)
    if cred is None:
        try:
            import uuid

            uuid.UUID(credential_id)
        except ValueError:
            return render_error(400, _("This verification link is malformed."))
        return render_error(404, _("No transcript with this number was issued here."))
    try:
        bundle = parse(cred.bundle.encode("utf-8"))
    except CanonicalError:
        abort(500)
    from plugins.credit_bank.proofs.credential import verify_bundle

    report = verify_bundle(bundle, issuer_key().public_key())
    if report.ok:
        _add_consistency(report)
    return render_template("credit_transcripts/result.html", **_context(report, cred, "link"))


@bp.route("/transcripts", methods=["GET", "POST"])
@login_required
def mine() -> Any:
    """A cadre's own transcripts: issue one for a year, download the issued files."""
    form = IssueForm()
    if request.method == "GET" and form.year.data is None:
        form.year.data = dt.datetime.now(dt.UTC).year
    if form.validate_on_submit():
        try:
            cred = services.issue_transcript(current_user, int(form.year.data), actor=current_user)
        except services.TranscriptError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Transcript issued. Download it below."), "success")
            return redirect(url_for(".mine", _anchor=f"t-{cred.id}"))
    elif request.method == "POST":
        return render_template(
            "credit_transcripts/mine.html", form=form, items=services.for_user(current_user.id), states=STATE_LABELS
        ), 400
    return render_template(
        "credit_transcripts/mine.html", form=form, items=services.for_user(current_user.id), states=STATE_LABELS
    )


@bp.route("/transcripts/<credential_id>.pdf")
@login_required
def download(credential_id: str) -> Any:
    cred = services.find(credential_id)
    # Someone else's transcript is "not found", not "forbidden": ids are not to be probed.
    if cred is None or (cred.user_id != current_user.id and not _may_manage(cred.user_id)):
        return render_error(404, _("No transcript with this number was issued here."))
    name = f"transcript-{cred.year}-{cred.id[:8]}.pdf"
    resp = Response(cred.pdf, mimetype="application/pdf")
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    resp.headers["Cache-Control"] = "private, no-store"
    current_app.logger.info("transcript %s downloaded by its owner", cred.id)
    return resp


# --------------------------------------------------------------------------- administrators


def _may_manage(user_id: int) -> bool:
    from lms_core.accounts.models import User
    from lms_core.authz import can
    from lms_core.extensions import db

    owner = db.session.get(User, user_id)
    return owner is not None and can(current_user, "credit.transcripts", owner)


def _managed_user(user_id: int) -> Any:
    """The cadre, if the signed-in administrator may revoke and re-issue their transcripts."""
    from lms_core.accounts.models import User
    from lms_core.authz import require
    from lms_core.extensions import db

    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    require(current_user, "credit.transcripts", user)
    return user


def _managed_credential(user: Any, credential_id: str) -> Credential:
    cred = services.find(credential_id)
    if cred is None or cred.user_id != user.id:
        abort(404)
    return cred


def _person_page(user: Any, reissue: ReissueForm, status: int = 200) -> Any:
    return render_template(
        "credit_transcripts/person.html",
        person=user,
        items=services.for_user(user.id),
        states=STATE_LABELS,
        reissue=reissue,
    ), status


@bp.route("/users/<int:user_id>/transcripts")
@login_required
def person_transcripts(user_id: int) -> Any:
    """An administrator in scope: a cadre's transcripts, to revoke or re-issue."""
    from lms_core.audit.viewlog import log_view
    from lms_core.jobs.services import commit

    user = _managed_user(user_id)
    log_view(current_user, user, "transcripts")  # a look at the cadre's record (issue 12, part 8)
    commit()
    form = ReissueForm()
    if form.year.data is None:
        form.year.data = dt.datetime.now(dt.UTC).year
    return _person_page(user, form)


@bp.route("/users/<int:user_id>/transcripts/reissue", methods=["POST"])
@login_required
def reissue(user_id: int) -> Any:
    """Issue a new transcript for a year (the previous one for that year shows as replaced)."""
    user = _managed_user(user_id)
    form = ReissueForm()
    if not form.validate_on_submit():
        return _person_page(user, form, 400)
    try:
        cred = services.issue_transcript(user, int(form.year.data), actor=current_user, reason=form.reason.data.strip())
    except services.TranscriptError as exc:
        flash(str(exc), "error")
        return _person_page(user, form, 400)
    flash(_("A new transcript was issued; the previous one for that year now shows as replaced."), "success")
    return redirect(url_for(".person_transcripts", user_id=user.id, _anchor=f"t-{cred.id}"))


@bp.route("/users/<int:user_id>/transcripts/<credential_id>/revoke", methods=["GET", "POST"])
@login_required
def revoke(user_id: int, credential_id: str) -> Any:
    """Revoke one transcript: a confirmation page with the reason, then the revocation."""
    user = _managed_user(user_id)
    cred = _managed_credential(user, credential_id)
    status = services.status_of(cred)
    form = RevokeForm()
    if status.state == "revoked":
        flash(_("This transcript is already revoked."), "error")
        return redirect(url_for(".person_transcripts", user_id=user.id))
    if form.validate_on_submit():
        try:
            services.revoke(cred, form.reason.data, actor=current_user)
        except services.TranscriptError as exc:
            flash(str(exc), "error")
        else:
            flash(_("The transcript was revoked. The verification page now says so, with the reason."), "success")
            return redirect(url_for(".person_transcripts", user_id=user.id, _anchor=f"t-{cred.id}"))
    code = 400 if request.method == "POST" else 200
    return render_template(
        "credit_transcripts/revoke.html", person=user, cred=cred, status=status, states=STATE_LABELS, form=form
    ), code
