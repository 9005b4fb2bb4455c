"""How the current request was authenticated: the session cookie or an API token.

Flask-Login asks the session cookie first and the ``Authorization`` header only
when the cookie names no one, so the mere presence of a ``Bearer`` header says
nothing. What skips a cookie-only rule (CSRF on the raw upload, the forced
password change) is a token that *actually* authenticated this request, which
:func:`load_token_user` records in ``g``.
"""

from __future__ import annotations

from typing import Any

from flask import g, request
from flask_babel import gettext as _
from flask_login import current_user

from lms_core.accounts import services
from lms_core.accounts.lean_tokens import bearer_digest
from lms_core.accounts.models import ApiToken, TokenScope, User
from lms_core.accounts.token_principal import LeanToken, TokenPrincipal, token_principal_for, wants_token_principal

#: Methods a read-only token may use.
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def load_token_user(req: Any) -> User | TokenPrincipal | None:
    """Flask-Login request loader for ``Authorization: Bearer lms_...``."""
    header = req.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    if wants_token_principal():
        # A GET to a view marked lean_token_read: one cached narrow read, no ORM rows.
        digest = bearer_digest(header)
        found = token_principal_for(digest) if digest is not None else None
        if found is None:
            return None
        g.lms_api_token = found[1]
        return found[0]
    token = services.token_for(header[7:].strip())
    if token is None:
        return None
    g.lms_api_token = token
    return token.user


def authenticated_token() -> ApiToken | LeanToken | None:
    """The API token that authenticated this request, or ``None`` (cookie, or no one)."""
    if not current_user.is_authenticated:  # loads the user: the cookie, then the header
        return None
    token: ApiToken | LeanToken | None = g.get("lms_api_token")
    return token


def refuse_read_only_writes() -> Any:
    """``before_app_request``: a read-only token may not change anything (403)."""
    if request.method in _READ_METHODS or "Authorization" not in request.headers:
        return None
    token = authenticated_token()
    if token is not None and token.scope != TokenScope.READ_WRITE:
        from lms_core.errors import render_error

        return render_error(403, _("This API token is read-only: it cannot change data."))
    return None
