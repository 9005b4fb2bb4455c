"""Sign-in, sign-out, password change, language choice and API tokens."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from lms_core.accounts import services
from lms_core.accounts.forms import ChangePasswordForm, LoginForm, TokenForm
from lms_core.accounts.models import ApiToken, TokenScope
from lms_core.accounts.request_auth import authenticated_token
from lms_core.extensions import db, login_manager
from lms_core.i18n import LOCALE_COOKIE, SUPPORTED_LOCALES
from lms_core.jobs.services import commit
from lms_core.unit_of_work import service_call

bp = Blueprint("accounts", __name__)

#: Endpoints a user who must change their password may still reach.
_PASSWORD_CHANGE_ALLOWED = {"accounts.password", "accounts.logout", "accounts.login", "accounts.set_language", "static"}


@login_manager.unauthorized_handler
def _unauthorized() -> Any:
    """401 JSON for API clients; otherwise the sign-in page, coming back here afterwards.

    ``next`` is a relative path: :func:`_safe_next` refuses absolute URLs, so
    Flask-Login's default (the full URL) always lost the page the user wanted.
    """
    from lms_core.errors import render_error, wants_json

    if wants_json():
        return render_error(401)
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("accounts.login", next=target))


@bp.before_app_request
def _force_password_change() -> Any:
    """After an admin reset (or an HR import) the temporary password must be replaced first."""
    endpoint = request.endpoint or ""
    if endpoint in _PASSWORD_CHANGE_ALLOWED or endpoint.endswith(".static"):
        return None
    if authenticated_token() is not None:
        return None  # a live token: machine clients authenticate with it, not the password
    if current_user.is_authenticated and current_user.must_change_password:
        from lms_core.errors import render_error, wants_json

        if wants_json():
            return render_error(403, _("Please choose a new password first."))
        flash(_("Please choose a new password."), "warning")
        return redirect(url_for("accounts.password"))
    return None


def _safe_next(target: str | None) -> str:
    """Only same-site relative redirects (no open redirect through ``next``)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm()
    status, retry_after = 200, 0
    if form.validate_on_submit():
        result = services.authenticate(form.username.data or "", form.password.data or "", request.remote_addr or "?")
        outcome, retry_after = result.outcome, result.retry_after
        if outcome == services.LoginOutcome.OK and result.user is not None:
            login_user(result.user)
            commit()
            if result.user.must_change_password:
                flash(_("Please choose a new password."), "warning")
                return redirect(url_for("accounts.password"))
            return redirect(_safe_next(request.args.get("next")))
        if outcome == services.LoginOutcome.THROTTLED:
            flash(_("Too many failed sign-ins from your network. Please wait a few minutes."), "error")
            status = 429
        elif outcome == services.LoginOutcome.WAIT:
            flash(
                _(
                    "Too many wrong passwords for this username. Please wait %(seconds)s seconds and try again.",
                    seconds=result.retry_after,
                ),
                "error",
            )
            status = 429
        elif outcome == services.LoginOutcome.DISABLED:
            flash(_("This account is disabled."), "error")
            status = 403
        else:
            flash(_("Wrong username or password."), "error")
            status = 401
    elif request.method == "POST":
        status = 400
    response = make_response(render_template("auth/login.html", form=form), status)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    """Sign out, and end every copy of this session.

    The cookie is signed, not stored: clearing it here does nothing to a copy
    saved elsewhere. Bumping ``session_version`` (part of the session identity)
    makes every cookie issued so far stale, on every device; a token-authenticated
    call has no session to end and leaves the browser sessions alone.
    """
    if current_user.is_authenticated:
        from lms_core.events.services import emit

        if authenticated_token() is None:
            current_user.session_version += 1
        emit("user.logged_out", actor=current_user, obj=current_user)
        commit()
    logout_user()
    return redirect(url_for("accounts.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password() -> Any:
    form = ChangePasswordForm()

    def page() -> str:
        return render_template("auth/password.html", form=form, show_tokens=tokens_allowed(current_user))

    if form.validate_on_submit():
        with service_call(
            page, field_for=lambda exc: form.current if isinstance(exc, services.WrongPassword) else form.new
        ):
            services.change_own_password(current_user, form.current.data or "", form.new.data or "")
        # The session identity includes session_version, which just changed.
        login_user(current_user._get_current_object())
        flash(_("Your password has been changed."), "success")
        return redirect(url_for("dashboard.index"))
    return page(), 400 if form.errors else 200


@bp.route("/lang/<code>")
def set_language(code: str) -> Any:
    if code not in SUPPORTED_LOCALES:
        abort(404)
    response = redirect(_safe_next(request.args.get("next")))
    response.set_cookie(LOCALE_COOKIE, code, max_age=365 * 86400, samesite="Lax", httponly=True)
    if current_user.is_authenticated:
        current_user.locale = code
        db.session.commit()
    return response


def tokens_allowed(user: Any) -> bool:
    """API tokens are for people with a role beyond learner, or for all if the site says so."""
    from flask import current_app

    from lms_core.accounts.models import Role

    return bool(current_app.config["LMS_LEARNER_API_TOKENS"]) or any(a.role != Role.LEARNER for a in user.roles)


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens() -> Any:
    if not tokens_allowed(current_user):
        abort(404)
    form = TokenForm()
    new_token = None
    if form.validate_on_submit():
        _token, new_token = services.create_token(current_user, form.name.data or "", scope=TokenScope(form.scope.data))
        commit()
    rows = (
        db.session.execute(select(ApiToken).filter_by(user_id=current_user.id).order_by(ApiToken.id.desc()))
        .scalars()
        .all()
    )
    status = 400 if form.errors else 200
    return render_template("auth/tokens.html", form=form, tokens=rows, new_token=new_token), status


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int) -> Any:
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        abort(404)
    services.revoke_token(current_user, token)
    commit()
    flash(_("Token revoked."), "success")
    return redirect(url_for("accounts.tokens"))
