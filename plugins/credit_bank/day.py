"""The credit bank's layer of a learner's day picture: the journal lines dated that day."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from lms_core.audit.day import DayLayer, Section
from lms_core.extensions import db
from lms_core.i18n import SHANGHAI
from plugins.credit_bank.labels import code_name, hours
from plugins.credit_bank.models import T_PENDING, T_POST_PENDING, T_VOID_PENDING, Transfer


def _status(t: Transfer, resolved: dict[str, int]) -> str:
    return str(_status_text(t, resolved))


def _status_text(t: Transfer, resolved: dict[str, int]) -> Any:
    if t.flags & T_POST_PENDING:
        return _("Posted after review")
    if t.flags & T_VOID_PENDING:
        return _("Voided after review")
    if t.flags & T_PENDING:
        done = resolved.get(t.id)
        if done is None:
            return _("Held, pending review")
        return _("Held, then posted") if done & T_POST_PENDING else _("Held, then voided")
    if t.reverses_id:
        return _("Reversal")
    return _("Posted")


def layer(person: Any, day: dt.date) -> DayLayer:
    rows = list(
        db.session.execute(
            select(Transfer).where(Transfer.user_id == person.id, Transfer.effective_date == day).order_by(Transfer.seq)
        ).scalars()
    )
    pending = [t.id for t in rows if t.flags & T_PENDING]
    resolved: dict[str, int] = {}
    if pending:
        for pid, flags in db.session.execute(
            select(Transfer.pending_id, Transfer.flags).where(Transfer.pending_id.in_(pending))
        ).all():
            if pid is not None:
                resolved[pid] = flags
    lines = [
        [
            (t.recorded_at if t.recorded_at.tzinfo else t.recorded_at.replace(tzinfo=dt.UTC))
            .astimezone(SHANGHAI)
            .strftime("%Y-%m-%d %H:%M"),
            code_name(t.code),
            hours(t.amount),
            _status(t, resolved),
            t.memo or "",
        ]
        for t in rows
    ]
    return DayLayer(
        sections=[
            Section(
                key="ledger",
                title=_("Credit ledger entries of the day"),
                headers=[_("Recorded"), _("Kind"), _("Hours (学时)"), _("Status"), _("Note")],
                rows=lines,
            )
        ]
    )
