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
    return render_template("lrs/learner_statements.html", learner=user, statements=found, next_cursor=nxt)
