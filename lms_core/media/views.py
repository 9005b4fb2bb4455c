"""Instructors' media library and uploads; signed, ranged media delivery.

Uploads never pass through Flask's global ``MAX_CONTENT_LENGTH`` (64 MiB) nor the
global CSRF hook: both would read the body before the view can raise the limit
for this request. These views are exempted from the hook and check CSRF
themselves (the form's token, or the ``X-CSRFToken`` header on the raw API when
the caller is authenticated by its session cookie; clients authenticated by an
API token carry no cookie a third site could ride on).
"""

from __future__ import annotations

import secrets
import tempfile
from typing import IO, Any
from urllib.parse import unquote

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from lms_core.accounts.request_auth import authenticated_token
from lms_core.authz import require
from lms_core.errors import wants_json
from lms_core.extensions import csrf, db
from lms_core.media import services
from lms_core.media.delivery import media_response
from lms_core.media.forms import UploadForm
from lms_core.media.models import MediaFile
from lms_core.media.storage import get_storage
from lms_core.media.validation import UploadRejected
from lms_core.unit_of_work import json_call, service_call

bp = Blueprint("media", __name__)

#: Room for multipart boundaries and form fields around the file itself.
_MULTIPART_SLACK = 1024 * 1024


def _require_author() -> None:
    if not current_user.is_authenticated:
        abort(401)
    require(current_user, "course.author")


def _spool_file(
    total_content_length: int | None,
    content_type: str | None,
    filename: str | None = None,
    content_length: int | None = None,
) -> IO[bytes]:
    """Where Werkzeug puts a multipart file part: the media spool folder, not ``/tmp``.

    ``/tmp`` is often a RAM-backed tmpfs, where a 2 GB part would sit in memory.
    The file is anonymous (unlinked at once), so nothing is left behind.
    """
    return tempfile.TemporaryFile(dir=get_storage().spool_dir())


def allow_large_upload() -> None:
    """Let this request's body reach ``LMS_UPLOAD_MAX_BYTES`` and spool file parts to disk.

    Call it first thing in a view that accepts an upload; that view must also be
    ``@csrf.exempt`` (the global CSRF hook would parse the body under the global
    64 MiB limit before the view runs) and check CSRF itself, e.g. with a FlaskForm.
    """
    request.max_content_length = int(current_app.config["LMS_UPLOAD_MAX_BYTES"]) + _MULTIPART_SLACK
    request._get_file_stream = _spool_file  # type: ignore[method-assign]


def media_json(media: MediaFile) -> dict[str, Any]:
    return {
        "id": media.id,
        "sha256": media.sha256,
        "size": media.size_bytes,
        "mime_type": media.mime_type,
        "kind": media.kind.value,
        "duration_ms": media.duration_ms,
        "width": media.width,
        "height": media.height,
        "page_count": media.page_count,
        "original_name": media.original_name,
        "preview_url": url_for("media.preview", media_id=media.id),
    }


@bp.route("/media/", methods=["GET"])
def library() -> Any:
    _require_author()
    return render_template(
        "media/library.html",
        form=UploadForm(),
        items=services.library(current_user),
        max_bytes=current_app.config["LMS_UPLOAD_MAX_BYTES"],
    )


@bp.route("/media/upload", methods=["POST"])
@csrf.exempt
def upload() -> Any:
    """Browser form upload (multipart; Werkzeug spools the file part to disk, not RAM)."""
    _require_author()
    allow_large_upload()
    form = UploadForm()
    if form.validate_on_submit():
        storage_file = form.file.data
        # A refused file keeps its status (413, 415): told on the file field, or as JSON to a script.
        refused = (
            json_call(errors=(UploadRejected,))
            if wants_json()
            else service_call(lambda: _refused_upload(form, 400), field=form.file, errors=(UploadRejected,))
        )
        with refused:
            media = services.store_upload(
                storage_file.stream, storage_file.filename or "", current_user, content_length=None
            )
        if wants_json():
            return jsonify(media_json(media)), 201
        flash(_("Uploaded %(name)s.", name=media.original_name), "success")
        return redirect(url_for("media.library"))
    return _refused_upload(form, 400)


def _refused_upload(form: UploadForm, status: int) -> Any:
    """The upload form again with its errors (or them as JSON for a script)."""
    if wants_json():
        message = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        return jsonify({"error": message or _("The request was not understood."), "status": status}), status
    return render_template(
        "media/library.html",
        form=form,
        items=services.library(current_user),
        max_bytes=current_app.config["LMS_UPLOAD_MAX_BYTES"],
    ), status


@bp.route("/api/media", methods=["POST", "PUT"])
@csrf.exempt
def api_upload() -> Any:
    """Raw upload for large files: the body is the file, streamed from ``request.stream``.

    The name comes from ``?name=`` or an ``X-File-Name`` header (URL-encoded).
    Answers 201 with the media as JSON (200 when the content was already stored).
    """
    _require_author()
    allow_large_upload()
    # Only a token that authenticated this request is exempt: with a cookie, a
    # third site's form could add any Authorization header it likes.
    if authenticated_token() is None and current_app.config.get("WTF_CSRF_ENABLED", True):
        try:
            validate_csrf(request.headers.get("X-CSRFToken"))
        except ValidationError as exc:
            raise CSRFError(str(exc)) from exc
    name = request.args.get("name") or unquote(request.headers.get("X-File-Name", ""))
    if not name:
        abort(400, _("Give the file name in ?name= or the X-File-Name header."))
    with json_call(errors=(UploadRejected,)):
        stored = services.store(request.stream, name, current_user, content_length=request.content_length)
    return jsonify(media_json(stored.media)), 201 if stored.created else 200


@bp.route("/media/<int:media_id>/preview")
def preview(media_id: int) -> Any:
    """Authors preview a file through a short-lived signed URL (a fresh playback session)."""
    _require_author()
    media = services.visible_to(current_user, media_id)
    if media is None:  # absent, or someone else's upload not used in a course one may edit
        abort(404)
    return redirect(services.signed_url(media, current_user, f"preview-{secrets.token_hex(8)}", ttl=3600))


@bp.route("/media/s/<token>")
def serve(token: str) -> Any:
    """Serve a file to the user its signed URL was issued to (HTTP Range, counted bytes)."""
    try:
        grant = services.verify_token(token)
    except services.InvalidMediaUrl:
        abort(403)
    # The URL is not a bearer credential: it serves only the signed-in user it was
    # issued to (an active one: the session loader refuses the others). A URL
    # copied out of the page, or kept after logout, gets nothing.
    if not current_user.is_authenticated or current_user.id != grant.user_id:
        abort(403)
    media = db.session.get(MediaFile, grant.media_id)
    if media is None:
        abort(404)
    storage = get_storage()
    try:
        size = storage.size(media.storage_key)
    except FileNotFoundError:
        current_app.logger.error("media %s is missing from storage (%s)", media.id, media.storage_key)
        abort(404)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    key, media_id, user_id = media.storage_key, media.id, grant.user_id

    def record(sent: int) -> None:
        if not sent:  # HEAD, or a client that left before the first byte
            return
        with app.app_context():
            services.record_delivery(grant.session_key, user_id, media_id, sent)

    return media_response(
        request,
        opener=lambda: storage.open(key),
        size=size,
        mime_type=media.mime_type,
        etag=media.sha256,
        last_modified=media.created_at,
        name=media.original_name,
        on_close=record,
    )
