"""Account services: sign-in with throttling, passwords, roles and API tokens."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import joinedload

from lms_core.accounts import throttle
from lms_core.accounts.models import (
    ApiToken,
    LoginAttempt,
    RankBand,
    Role,
    RoleAssignment,
    TokenScope,
    User,
    UserStatus,
)
from lms_core.accounts.passwords import hash_password, policy_errors, verify_password
from lms_core.accounts.principal import Principal, principal_for, wants_principal
from lms_core.authz import AccessDenied, can
from lms_core.db import utcnow
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit
from lms_core.unit_of_work import ServiceError

TOKEN_PREFIX = "lms_"  # noqa: S105 - a public marker of token strings, not a secret


class AccountError(ServiceError):
    """Invalid account change; the message is shown to the user."""


class LoginOutcome(StrEnum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    WAIT = "wait"  # too many wrong passwords for this username lately (existing or not)
    DISABLED = "disabled"
    THROTTLED = "throttled"  # too many failures from this IP


@dataclass
class LoginResult:
    outcome: LoginOutcome
    user: User | None = None
    #: For ``WAIT`` and ``THROTTLED``: seconds before trying again is worth it.
    retry_after: int = 0


def by_username(username: str) -> User | None:
    return db.session.execute(select(User).filter_by(username=username.strip())).scalar_one_or_none()


def authenticate(username: str, password: str, ip: str) -> LoginResult:
    """Check credentials behind the per-IP cap and the progressive delays; commits.

    Every attempt is logged with its outcome. While a delay runs the password is
    not even checked, so guessing gains nothing; unknown usernames go through
    exactly the same steps and answers as real ones (see accounts.throttle).
    """
    cfg = current_app.config
    username = username.strip()[:64]
    ip = ip[:64]
    now = utcnow()

    def log(outcome: LoginOutcome) -> None:
        db.session.add(
            LoginAttempt(
                username=username, ip=ip, success=outcome == LoginOutcome.OK, outcome=outcome.value, created_at=now
            )
        )

    if throttle.ip_failures(ip, now) >= cfg["LMS_LOGIN_IP_LIMIT"]:
        log(LoginOutcome.THROTTLED)
        db.session.commit()
        return LoginResult(LoginOutcome.THROTTLED, retry_after=60 * int(cfg["LMS_LOGIN_IP_WINDOW_MINUTES"]))
    wait = throttle.wait_seconds(username, ip, now)
    if wait:
        log(LoginOutcome.WAIT)
        db.session.commit()
        return LoginResult(LoginOutcome.WAIT, retry_after=wait)
    user = by_username(username)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok:
        log(LoginOutcome.BAD_CREDENTIALS)
        db.session.commit()
        return LoginResult(LoginOutcome.BAD_CREDENTIALS)
    if not user.is_active:
        log(LoginOutcome.DISABLED)
        db.session.commit()
        return LoginResult(LoginOutcome.DISABLED)
    log(LoginOutcome.OK)
    user.previous_login_at, user.last_login_at = user.last_login_at, now
    emit("user.logged_in", actor=user, obj=user)
    return LoginResult(LoginOutcome.OK, user=user)  # the caller commits after login_user()


@functools.cache
def _session_user_statement() -> Select[User]:
    """The user with their unit and roles, in one query (every page asks ``can()``).

    Built once per process: on every request, building the select and its cache key
    cost more than running it.
    """
    return select(User).options(joinedload(User.roles)).where(User.id == bindparam("user_id"))


def load_session_user(session_id: str) -> User | Principal | None:
    """Flask-Login user loader: ``<id>:<session_version>``; stale versions log out.

    The heartbeat endpoint gets a :class:`~lms_core.accounts.principal.Principal`
    (no ORM user, cached per process; see that module for how revocation reaches it).
    """
    try:
        user_id, version = (int(part) for part in session_id.split(":", 1))
    except ValueError:
        return None
    if wants_principal():
        return principal_for(user_id, version)
    user = db.session.execute(_session_user_statement(), {"user_id": user_id}).unique().scalar_one_or_none()
    if user is None or user.session_version != version or not user.is_active:
        return None
    return user


def set_password(user: User, new_password: str, *, actor: User | None, must_change: bool = False) -> None:
    """Validate and set a password; ends the user's other sessions and revokes their tokens.

    Tokens go too: whoever held the old password (the reason for a reset, often)
    could have minted one, and it would outlive the new password. Does not commit.
    """
    errors = policy_errors(
        new_password, min_length=current_app.config["LMS_PASSWORD_MIN_LENGTH"], username=user.username
    )
    if errors:
        raise AccountError(" ".join(errors))
    user.password_hash = hash_password(new_password)
    user.session_version += 1
    user.must_change_password = must_change
    user.failed_logins = 0
    user.locked_until = None
    name = "user.password_changed" if actor is user else "user.password_reset"
    emit(name, actor=actor, obj=user, org_unit_id=user.org_unit_id)
    revoke_all_tokens(user, actor=actor, reason=name)


class WrongPassword(AccountError):
    """The current password given to change it does not match."""


def change_own_password(user: User, current: str, new_password: str) -> None:
    if not verify_password(user.password_hash, current):
        raise WrongPassword(_("Current password is wrong."))
    set_password(user, new_password, actor=user)


def reset_password(actor: User, user: User) -> str:
    """Admin reset: a random temporary password the user must change at next login."""
    if not can(actor, "user.manage", user):
        raise AccessDenied("user.manage")
    temporary = secrets.token_urlsafe(9) + "-1a"
    set_password(user, temporary, actor=actor, must_change=True)
    return temporary


def create_user(
    *,
    username: str,
    full_name: str,
    org_unit: OrgUnit,
    password: str | None = None,
    rank_band: RankBand = RankBand.GENERAL,
    party_member: bool = False,
    position: str | None = None,
    phone: str | None = None,
    actor: User | None = None,
    password_hash: str | None = None,
    must_change_password: bool = False,
) -> User:
    """Add a user (flushes, does not commit)."""
    username = username.strip()
    if not username or not full_name.strip():
        raise AccountError(_("username and full name are required"))
    if by_username(username) is not None:
        raise AccountError(_("username %(username)s is taken", username=username))
    user = User(
        username=username,
        full_name=full_name.strip(),
        org_unit=org_unit,
        rank_band=rank_band,
        party_member=party_member,
        position=position,
        phone=phone,
        must_change_password=must_change_password,
    )
    if password is not None:
        errors = policy_errors(password, min_length=current_app.config["LMS_PASSWORD_MIN_LENGTH"], username=username)
        if errors:
            raise AccountError(" ".join(errors))
        user.password_hash = hash_password(password)
    elif password_hash is not None:
        user.password_hash = password_hash
    db.session.add(user)
    db.session.flush()
    emit("user.created", actor=actor, obj=user, org_unit_id=org_unit.id, payload={"username": username})
    return user


def set_status(actor: User, user: User, status: UserStatus) -> None:
    if not can(actor, "user.manage", user):
        raise AccessDenied("user.manage")
    if user.id == actor.id:
        raise AccountError(_("you cannot change your own status"))
    user.status = status
    user.session_version += 1
    emit("user.status_changed", actor=actor, obj=user, org_unit_id=user.org_unit_id, payload={"status": status.value})


def grant_role(actor: User | None, user: User, role: Role, unit: OrgUnit) -> RoleAssignment:
    """Grant ``role`` over ``unit``'s subtree.

    An org admin may only grant within their own subtree and never ``site_admin``.
    """
    if actor is not None:
        if not can(actor, "role.assign", unit):
            raise AccessDenied("role.assign")
        if role == Role.SITE_ADMIN and not can(actor, "site.manage"):
            raise AccessDenied("site.manage")
    existing = db.session.execute(
        select(RoleAssignment).filter_by(user_id=user.id, role=role, org_unit_id=unit.id)
    ).scalar_one_or_none()
    if existing:
        return existing
    assignment = RoleAssignment(user=user, role=role, org_unit=unit)
    db.session.add(assignment)
    db.session.flush()
    emit("role.granted", actor=actor, obj=user, org_unit_id=unit.id, payload={"role": role.value, "unit": unit.code})
    return assignment


def may_revoke_role(actor: User, assignment: RoleAssignment) -> bool:
    """Whether ``actor`` may take ``assignment`` back (see :func:`revoke_role`)."""
    if not can(actor, "role.assign", assignment.org_unit):
        return False
    return assignment.role != Role.SITE_ADMIN or can(actor, "site.manage")


def revoke_role(actor: User, assignment: RoleAssignment) -> None:
    """Take a role back; as with granting, ``site_admin`` needs a site admin."""
    if not may_revoke_role(actor, assignment):
        raise AccessDenied("role.assign")
    emit(
        "role.revoked",
        actor=actor,
        obj=assignment.user,
        org_unit_id=assignment.org_unit_id,
        payload={"role": assignment.role.value, "unit": assignment.org_unit.code},
    )
    db.session.delete(assignment)


# API tokens ----------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    user: User, name: str, *, scope: TokenScope, expires_at: dt.datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token; the plain value is returned once and never stored.

    ``scope`` has no default: whoever mints a token says whether it may write.

    SHA-256 rather than a slow hash is right here: the token has 256 bits of
    entropy, so there is nothing to brute-force, and it is checked on every request.
    """
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name.strip() or "token",
        prefix=plain[:10],
        token_hash=_digest(plain),
        expires_at=expires_at,
        scope=TokenScope(scope),
    )
    db.session.add(token)
    db.session.flush()
    emit(
        "api_token.created",
        actor=user,
        obj=token,
        payload={"name": token.name, "prefix": token.prefix, "scope": token.scope.value},
    )
    return token, plain


def token_for(plain: str) -> ApiToken | None:
    """The live token whose value is ``plain`` (not revoked, not expired, user active)."""
    if not plain.startswith(TOKEN_PREFIX) or len(plain) > 200:
        return None
    token = db.session.execute(select(ApiToken).filter_by(token_hash=_digest(plain))).scalar_one_or_none()
    now = utcnow()
    if token is None or token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
        return None
    if not token.user.is_active:
        return None
    # Touch at most once a minute: a write per API call would serialise clients.
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1):
        token.last_used_at = now
        db.session.commit()
    return token


def user_for_token(plain: str) -> User | None:
    token = token_for(plain)
    return token.user if token is not None else None


def revoke_token(user: User, token: ApiToken) -> None:
    if token.user_id != user.id and not can(user, "site.manage"):
        raise AccessDenied("api_token")
    token.revoked_at = utcnow()
    emit("api_token.revoked", actor=user, obj=token, payload={"prefix": token.prefix})


def revoke_all_tokens(user: User, *, actor: User | None, reason: str) -> int:
    """Revoke every live token of ``user`` (one event each); returns how many. Does not commit."""
    now = utcnow()
    live = (
        db.session.execute(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)))
        .scalars()
        .all()
    )
    for token in live:
        token.revoked_at = now
        emit(
            "api_token.revoked",
            actor=actor,
            obj=token,
            org_unit_id=user.org_unit_id,
            payload={"prefix": token.prefix, "reason": reason},
        )
    return len(live)
