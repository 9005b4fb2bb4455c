"""Authorisation: one function, :func:`can`, used by every view and service."""

from lms_core.authz.core import (
    CORE_CAPABILITIES,
    AccessDenied,
    allowed_or_404,
    can,
    effective_assignments,
    register_scope_resolver,
    require,
    scope_condition,
    scope_roots,
)

__all__ = [
    "CORE_CAPABILITIES",
    "AccessDenied",
    "allowed_or_404",
    "can",
    "effective_assignments",
    "register_scope_resolver",
    "require",
    "scope_condition",
    "scope_roots",
]
