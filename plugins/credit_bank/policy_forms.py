"""What the policy pages share: the version they start from, and recording a new one.

The requirement rules form (requirement_form.py), the conversion rules form
(conversion.py) and the JSON editor (admin_views.policy_page) each edit one part of
the policy document. All three start from the version in force today (Beijing time)
and end by recording a new version with its ``credit.policy_added`` event; the two
forms also read the same posted fields (effective date, note) and check the date the
same way. Their templates share ``credit_bank/_policy_page.html`` likewise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import request
from flask_babel import gettext as _
from flask_login import current_user

from lms_core.authz import require
from lms_core.db import utcnow
from lms_core.unit_of_work import service_call
from plugins.credit_bank import policy as P
from plugins.credit_bank.models import Policy
from plugins.credit_bank.services import local_date

#: The dates a version may take effect on (policy.add_version refuses others too).
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2100, 12, 31)


def in_force_today() -> tuple[dt.date, Policy, dict[str, Any]]:
    """For a site admin (403 otherwise): today in Beijing, the version in force and its rules."""
    require(current_user, "credit.policy")
    today = local_date(utcnow())
    current = P.in_force(today)
    return today, current, P.rules_of(current)


def posted_text(name: str, limit: int) -> str:
    """A posted text field as typed, without NUL bytes (PostgreSQL refuses them), cut at ``limit``."""
    return str(request.form.get(name) or "").replace("\x00", "")[:limit]


def record_version(rules: Any, effective: dt.date, note: str | None, changed: str | None = None) -> Policy:
    """Record ``rules`` as a new version and its ``credit.policy_added`` event.

    ``changed`` names the part a form page edited (``"requirements"``, ``"conversion"``);
    the JSON editor replaces the whole document and gives none. Raises
    :class:`policy.PolicyError`.
    """
    from lms_core.events.services import emit

    row = P.add_version(rules, effective, current_user.id, note)
    payload = {"effective_from": effective.isoformat()}
    if changed is not None:
        payload["changed"] = changed
    emit(
        "credit.policy_added",
        actor=current_user,
        object_type="credit_policies",
        object_id=row.version,
        payload=payload,
    )
    return row


def save_form(
    rules: dict[str, Any],
    errors: dict[str, str],
    *,
    changed: str,
    default_note: str,
    render: Callable[[], Any],
) -> Policy | None:
    """A form page's "save as a new version": the posted date and note, then the new version.

    A missing or impossible date puts its message on ``effective_from`` and returns None
    (the page answers 400 with the form as typed). A refusal by the policy's own checks
    rolls back and answers ``render()`` at 400 with the reason in the page's banner.
    """
    try:
        effective: dt.date | None = dt.date.fromisoformat(posted_text("effective_from", 10))
    except ValueError:
        effective = None
    if effective is None or not FIRST_DAY <= effective <= LAST_DAY:
        errors["effective_from"] = _("Enter the date the new rules take effect, like 2026-01-01.")
        return None

    def refused(exc: Exception) -> Any:
        errors["form"] = str(exc)
        return render()

    with service_call(on_error=refused, errors=(P.PolicyError,)):
        row = record_version(rules, effective, posted_text("note", 500) or default_note, changed)
    return row
