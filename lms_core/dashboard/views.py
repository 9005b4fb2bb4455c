"""Dashboard and the small JSON API about the current user."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, url_for
from flask_login import current_user, login_required

from lms_core.authz import effective_assignments
from lms_core.pluginhost import get_plugin_manager

bp = Blueprint("dashboard", __name__)


@bp.route("/")
def home() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    return redirect(url_for("auth.login"))


@bp.route("/dashboard")
@login_required
def index() -> Any:
    panels = [p for answer in get_plugin_manager().hook.lms_dashboard_panels(user=current_user)
              for p in (answer or [])]
    panels.sort(key=lambda p: p.order)
    return render_template("dashboard/index.html", panels=panels, grants=effective_assignments(current_user))


@bp.route("/api/v1/me")
@login_required
def me() -> Any:
    """Who the bearer of this session or token is (for machine clients)."""
    user = current_user
    return jsonify({
        "id": user.id,
        "username": user.username,
        "full_name": user.full_name,
        "org_unit": {"code": user.org_unit.code, "name": user.org_unit.name},
        "rank_band": user.rank_band.value,
        "roles": [{"role": g.role, "scope": g.path} for g in effective_assignments(user)],
    })
