"""The plugin's HTTP endpoints (thin: parse, call a service, render)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms_core.courses.models import Lesson
from lms_core.extensions import db

bp = Blueprint(
    "anti_idle",
    __name__,
    url_prefix="/anti-idle",
    template_folder="templates",
    static_folder="static",
    static_url_path="/anti-idle/static",
)
#: Machine-readable endpoints under the platform's /api/v1 (session cookie or Bearer token).
api = Blueprint("anti_idle_api", __name__, url_prefix="/api/v1")


@api.route("/me/study")
@login_required
def my_study() -> Any:
    """What will count for me on one lesson: credited and held seconds, verdict, coverage, completion."""
    from plugins.anti_idle.study import lesson_study

    raw = request.args.get("lesson", "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        abort(400, _("Give the lesson as ?lesson=<id>."))
    lesson = db.session.get(Lesson, int(raw))
    if lesson is None:
        abort(404, _("No such lesson."))
    return jsonify(lesson_study(current_user.id, lesson.id))
