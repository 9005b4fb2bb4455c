"""Role-based, org-scoped permissions with a plugin override.

A capability (``user.view``, ``org.manage`` ...) is held by roles. A role is
granted on an org subtree. ``can(user, capability, obj)`` is true when the user
holds a role that has the capability over a unit at or above the object's org
unit. Plugins may override through ``lms_has_capability`` (most restrictive wins).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import abort, current_app
from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy import event as sa_event

from lms_core.accounts.models import Role, RoleAssignment, User
from lms_core.extensions import db
from lms_core.orgs.models import OrgUnit

A = Role
#: The core's capabilities and the roles that hold them by default.
CORE_CAPABILITIES: dict[str, set[str]] = {
    #: Opening the admin area; auditors read there (every write checks its own capability).
    "admin.access": {A.AUDITOR, A.ORG_ADMIN, A.SITE_ADMIN},
    "org.view": {A.AUDITOR, A.ORG_ADMIN, A.SITE_ADMIN},
    "org.manage": {A.ORG_ADMIN, A.SITE_ADMIN},
    "user.view": {A.AUDITOR, A.ORG_ADMIN, A.SITE_ADMIN},
    "user.manage": {A.ORG_ADMIN, A.SITE_ADMIN},
    "user.import": {A.ORG_ADMIN, A.SITE_ADMIN},
    "role.assign": {A.ORG_ADMIN, A.SITE_ADMIN},
    "events.view": {A.AUDITOR, A.ORG_ADMIN, A.SITE_ADMIN},
    "learning.view": {A.AUDITOR, A.ORG_ADMIN, A.SITE_ADMIN},
    #: 调训 and hours reports over the subtree (read-only).
    "reports.view": {A.AUDITOR, A.ORG_ADMIN, A.SITE_ADMIN},
    "learning.participate": {A.LEARNER},
    "course.author": {A.INSTRUCTOR, A.SITE_ADMIN},
    "course.assign": {A.ORG_ADMIN, A.SITE_ADMIN},
    "site.manage": {A.SITE_ADMIN},
}


class AccessDenied(PermissionError):
    """Raised by services when an actor lacks a capability."""


@dataclass(frozen=True)
class Grant:
    role: str
    path: str  # org path prefix the role covers


ScopeResolver = Callable[[Any], OrgUnit | None]
_resolvers: list[tuple[type, ScopeResolver]] = []


def register_scope_resolver(cls: type, resolver: ScopeResolver) -> None:
    """Teach :func:`can` which org unit an object of ``cls`` belongs to.

    Packages and plugins register their models (a course belongs to its owning
    unit, an enrolment to its learner's unit ...). Objects with an ``org_unit``
    attribute need no resolver.
    """
    _resolvers.append((cls, resolver))


def org_unit_of(obj: Any) -> OrgUnit | None:
    if isinstance(obj, OrgUnit):
        return obj
    for cls, resolver in _resolvers:
        if isinstance(obj, cls):
            return resolver(obj)
    unit = getattr(obj, "org_unit", None)
    if isinstance(unit, OrgUnit):
        return unit
    raise TypeError(f"no org scope known for {type(obj).__name__}; register a scope resolver")


_GRANTS_MEMO = "_lms_grants"


def effective_assignments(user: User) -> list[Grant]:
    """The user's grants, including the implicit learner role on their own unit.

    Memoised on the loaded user object: a page asks ``can`` dozens of times. The
    memo is dropped whenever its inputs may change (see :func:`_forget_grants`),
    so a role swap, a move to another unit or an org move (which rewrites paths
    and expires the session) takes effect at once, also in long-lived CLI and
    worker sessions.
    """
    cached: list[Grant] | None = user.__dict__.get(_GRANTS_MEMO)
    if cached is not None:
        return cached
    grants = [Grant(a.role, a.org_unit.path) for a in user.roles]
    grants.append(Grant(Role.LEARNER, user.org_unit.path))
    user.__dict__[_GRANTS_MEMO] = grants
    return grants


def _forget_grants(target: Any, *args: Any) -> None:
    if target is not None:  # expiry may reach an instance already garbage-collected
        target.__dict__.pop(_GRANTS_MEMO, None)


# Expiry covers commits, expire_all() after an org move and refreshes; the
# attribute events cover changes made in the current transaction.
for _instance_event in ("expire", "refresh"):
    sa_event.listen(User, _instance_event, _forget_grants)
for _attribute in (User.roles, User.org_unit, User.org_unit_id):
    for _attribute_event in ("append", "remove") if _attribute is User.roles else ("set",):
        sa_event.listen(_attribute, _attribute_event, _forget_grants)


def _holders(capability: str) -> set[str]:
    registry: dict[str, set[str]] = current_app.extensions["lms_capabilities"]
    try:
        return registry[capability]
    except KeyError:
        raise KeyError(f"unknown capability {capability!r}") from None


def _role_check(user: User, capability: str, obj: Any) -> bool:
    holders = _holders(capability)
    grants = [g for g in effective_assignments(user) if g.role in holders]
    if not grants:
        return False
    if any(g.role == Role.SITE_ADMIN for g in grants) or obj is None:
        return True
    unit = org_unit_of(obj)
    if unit is None:  # an object with no org (a site-wide thing): only site admins
        return False
    if not any(unit.path.startswith(g.path) for g in grants):
        return False
    if capability == "user.manage" and isinstance(obj, User):
        return _covers_roles_of(grants, obj)
    return True


def _covers_roles_of(grants: list[Grant], target: User) -> bool:
    """Managing an account (reset its password, disable it) is taking it over.

    So an org admin may manage only people whose every role lies inside the
    admin's own scope: a county admin must not reset the password of a city
    auditor or a site admin who happens to belong to a unit in that county.
    """
    for assignment in target.roles:
        if assignment.role == Role.SITE_ADMIN:
            return False  # only site admins (who returned earlier) manage site admins
        if not any(assignment.org_unit.path.startswith(g.path) for g in grants):
            return False
    return True


def can(user: Any, capability: str, obj: Any = None) -> bool:
    """May ``user`` exercise ``capability`` on ``obj`` (or at all, if ``obj`` is None)?"""
    # Resolve Flask-Login's ``current_user`` proxy once, not on every attribute access.
    user = user._get_current_object() if hasattr(user, "_get_current_object") else user
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    from lms_core.pluginhost import get_plugin_manager

    caller = get_plugin_manager().hook.lms_has_capability
    # No shipped plugin answers this hook, and a page asks can() a few dozen times
    # (the nav alone about twenty): an empty dispatch is skipped, not run.
    if caller.get_hookimpls():
        answers = caller(user=user, capability=capability, obj=obj)
        if any(a is False for a in answers):
            return False
        if any(a is True for a in answers):
            _holders(capability)  # still reject unknown capability names
            return True
    return _role_check(user, capability, obj)


def require(user: Any, capability: str, obj: Any = None) -> None:
    """Abort with 403 (or raise in services) unless :func:`can` allows it."""
    if not can(user, capability, obj):
        abort(403)


def allowed_or_404(model: type[Any], object_id: int, user: Any, capability: str) -> Any:
    """The row ``model[object_id]`` if ``user`` may ``capability`` on it: 404 when absent, 403 when not allowed."""
    obj = db.session.get(model, object_id)
    if obj is None:
        abort(404)
    require(user, capability, obj)
    return obj


def scope_condition(user: User, capability: str, path_column: Any) -> ColumnElement[bool]:
    """SQL condition restricting ``path_column`` (an ``OrgUnit.path``) to the user's scope.

    Lists and reports filter with this, so an auditor of one county never receives
    another county's rows, not just never sees them rendered.
    """
    if not user.is_active:
        return false()
    holders = _holders(capability)
    grants = [g for g in effective_assignments(user) if g.role in holders]
    if any(g.role == Role.SITE_ADMIN for g in grants):
        return true()
    if not grants:
        return false()
    # Drop prefixes covered by a shorter one, to keep the SQL small.
    paths = sorted({g.path for g in grants}, key=len)
    kept: list[str] = []
    for p in paths:
        if not any(p.startswith(k) for k in kept):
            kept.append(p)
    return or_(*(path_column.startswith(p, autoescape=True) for p in kept))


def assignment_scope(assignment: RoleAssignment) -> OrgUnit:
    return assignment.org_unit


def scope_roots(user: User, capability: str) -> list[OrgUnit]:
    """The top units of ``user``'s grants for ``capability``, nested grants dropped.

    Taken from the grants, not from "the shallowest units in scope": someone who
    audits a county and administers a township of another county starts from both.
    Pickers and trees (the org admin page, the 调训 unit tree) start from these.
    """
    holders = current_app.extensions["lms_capabilities"][capability]
    grants = [g for g in effective_assignments(user) if g.role in holders]
    if any(g.role == Role.SITE_ADMIN for g in grants):
        stmt = select(OrgUnit).where(OrgUnit.parent_id.is_(None))
    else:
        kept: list[str] = []
        for path in sorted({g.path for g in grants}, key=len):
            if not any(path.startswith(k) for k in kept):
                kept.append(path)
        if not kept:
            return []
        stmt = select(OrgUnit).where(OrgUnit.path.in_(kept))
    return list(db.session.execute(stmt.order_by(OrgUnit.depth, OrgUnit.code)).scalars())
