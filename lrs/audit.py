"""Auditors read a learner's learning record through the LMS, within their org scope.

The LRS itself knows nothing of org units; the platform does. This page checks
``learning.view`` on the learner (held by auditors and org admins over their
subtree) and then reads the embedded LRS directly: statements whose actor (or
any agent, with ``related_agents``) is the learner's account Agent, as the
platform's xAPI emitter writes it (``homePage`` = ``LMS_PLATFORM_URL``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, render_template
from flask_login import current_user, login_required

from lms_core.accounts.models import User
from lms_core.authz import require
from lms_core.bounded import MAX_INT64, int_arg
from lms_core.extensions import db
from lrs import keys as K
from lrs import statements as st

bp = Blueprint("lrs_audit", __name__, url_prefix="/lrs", template_folder="templates")
PAGE = 50


def learner_agent(user: User) -> dict[str, Any]:
    home = str(current_app.config.get("LMS_PLATFORM_URL", "")).rstrip("/")
    return {"objectType": "Agent", "account": {"homePage": home, "name": user.username}}


@bp.route("/learners/<int:user_id>/statements")
@login_required
def learner_statements(user_id: int) -> Any:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    require(current_user, "learning.view", user)
    cursor = int_arg("before", maximum=MAX_INT64)
    agent = learner_agent(user)
    found, nxt = st.find(st.Query(agent=K.ifi(agent), related_agents=True), PAGE, cursor)
    platform_key = _platform_key()
    rows = [(s, *_recorded_by(s, platform_key)) for s in found]
    return render_template("lrs/learner_statements.html", learner=user, rows=rows, next_cursor=nxt)


def _platform_key() -> str | None:
    """The key of the credential the platform's own emitter writes with (None: not connected)."""
    from lms_core.xapi.credentials import ConnectError, saved_credentials

    if current_app.config.get("LMS_XAPI_KEY"):
        return str(current_app.config["LMS_XAPI_KEY"])
    try:
        saved = saved_credentials()
    except ConnectError:
        return None
    return saved["key"] if saved else None


def _recorded_by(statement: dict[str, Any], platform_key: str | None) -> tuple[str, bool]:
    """Who stored ``statement`` (the authority's name, else its key) and whether it is the platform.

    The authority is set by the LRS from the credential that stored the statement,
    so it cannot be forged by the statement's content; anything stored by another
    credential is about the learner but not the platform's own record.
    """
    authority = statement.get("authority") or {}
    account = authority.get("account") or {}
    key = account.get("name")
    name = authority.get("name") or key or "?"
    return str(name), platform_key is not None and key == platform_key
