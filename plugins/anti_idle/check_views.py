"""Attention-check endpoints for the player (JSON; CSRF token in the ``X-CSRFToken`` header)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms_core.extensions import db
from lms_core.learning.models import LearningSession
from lms_core.unit_of_work import json_call
from plugins.anti_idle import checks
from plugins.anti_idle.views import bp


@bp.route("/sessions/<session_id>/check", methods=["POST"])
@login_required
def poll_check(session_id: str) -> Any:
    """The person's open check, or a new one if it is due now; ``{"check": null}`` otherwise."""
    session = db.session.get(LearningSession, session_id[:32])
    if session is None or session.user_id != current_user.id:
        return jsonify({"error": _("Unknown learning session.")}), 404
    with json_call():
        check = checks.issue_if_due(session, current_user)
        view = checks.client_view(check) if check is not None else None
    return jsonify({"check": view})


@bp.route("/checks/<token>/answer", methods=["POST"])
@login_required
def answer_check(token: str) -> Any:
    """Redeem a check once; answers ``{"outcome", "message"}``."""
    # The player shows ``message`` (a wrong answer, an expired check) to the learner.
    with json_call(errors=(checks.CheckError,), on_error=lambda exc: {"error": str(exc), "message": str(exc)}):
        judged = checks.answer_check(token, current_user, request.get_json(silent=True))
    return jsonify({"outcome": judged.outcome, "message": judged.message})
