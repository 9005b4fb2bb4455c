"""Auditors read a learner's learning record through the LMS, within their org scope.

The LRS itself knows nothing of org units; the platform does. This page checks
``learning.view`` on the learner (held by auditors and org admins over their
subtree) and then reads the embedded LRS directly: statements whose actor (or
any agent, with ``related_agents``) is the learner's account Agent, as the
platform's xAPI emitter writes it (``homePage`` = ``LMS_PLATFORM_URL``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup, escape

from lms_core.accounts.models import User
from lms_core.audit.viewlog import log_view
from lms_core.audit.views import browse, export
from lms_core.authz import can, require
from lms_core.bounded import MAX_INT64, int_arg
from lms_core.extensions import db
from lms_core.jobs.services import commit
from lrs import keys as K
from lrs import statements as st
from lrs.log_query import VERB_NAMES, StatementQuery, platform_key

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
    log_view(current_user, user, "lrs")
    commit()
    cursor = int_arg("before", maximum=MAX_INT64)
    agent = learner_agent(user)
    found, nxt = st.find(st.Query(agent=K.ifi(agent), related_agents=True), PAGE, cursor)
    own_key = platform_key()
    rows = [(s, *_recorded_by(s, own_key)) for s in found]
    return render_template("lrs/learner_statements.html", learner=user, rows=rows, next_cursor=nxt)


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


# The learning-log browser's LRS view (tabs beside the core's event log and study sessions).


def log_tab(context: dict[str, Any]) -> str | None:
    """The browser's "LRS statements" tab (template slot ``audit_log_tabs``), keeping the filters."""
    if not can(current_user, "learning.view"):
        return None
    label = escape(_("LRS statements"))
    if context.get("view") == "statements":
        return Markup('<strong aria-current="page">{}</strong>').format(label)
    href = url_for("lrs_audit.statements", **dict(context.get("args") or {}))
    return Markup('<a href="{}">{}</a>').format(href, label)


def person_link(context: dict[str, Any]) -> str | None:
    """A link from a person's record pages to their LRS statements (slot ``audit_person_links``)."""
    if not can(current_user, "learning.view"):
        return None
    href = url_for("lrs_audit.statements", **dict(context.get("args") or {}))
    return Markup('<a href="{}">{}</a>').format(href, escape(_("LRS statements")))


def _statements_view() -> None:
    require(current_user, "events.view")
    require(current_user, "learning.view")


@bp.route("/statements")
@login_required
def statements() -> Any:
    """LRS statements about learners in the viewer's scope, with who recorded each."""
    _statements_view()
    verbs = sorted(VERB_NAMES.items(), key=lambda v: v[1])
    return browse(StatementQuery, "statements", "lrs_audit.statements", "lrs/log_statements.html", verb_choices=verbs)


@bp.route("/statements.csv")
@login_required
def statements_csv() -> Any:
    _statements_view()
    return export(StatementQuery, "csv")


@bp.route("/statements.xlsx")
@login_required
def statements_xlsx() -> Any:
    _statements_view()
    return export(StatementQuery, "xlsx")
