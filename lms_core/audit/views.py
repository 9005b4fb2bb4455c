"""Auditors' pages: the scoped event log and a person's learning record."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, abort, render_template, request, stream_with_context, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from lms_core.accounts.models import User
from lms_core.audit import day as day_picture
from lms_core.audit.queries import (
    COUNT_SHOWN,
    MAX_EXPORT_ROWS,
    EventLogQuery,
    LogQuery,
    QueryError,
    SessionQuery,
    learning_record_rows,
    rule_choices,
    units_in_scope,
)
from lms_core.audit.viewlog import log_view
from lms_core.authz import require
from lms_core.db import utcnow
from lms_core.events.names import event_label, known_events, object_label
from lms_core.extensions import db
from lms_core.i18n import SHANGHAI
from lms_core.jobs.services import commit
from lms_core.learning.explain import reason_text, verdict_label
from lms_core.unit_of_work import keep_loaded, service_call

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.before_request
@login_required
def _auditors_only() -> None:
    require(current_user, "events.view")


def _units(capability: str) -> list[tuple[str, str]]:
    return units_in_scope(current_user, capability)


VIEWS: dict[str, type[LogQuery]] = {"events": EventLogQuery, "sessions": SessionQuery}


def _log_person_view(query: LogQuery, what: str) -> None:
    """A browser page or export filtered to one person is a look at their record."""
    name = query.username.strip()
    if not name or not name.isprintable():
        return
    person = db.session.execute(select(User).where(User.username == name)).scalar_one_or_none()
    if person is not None:
        detail = type(query).filename
        log_view(current_user, person, what, detail)  # committed by the caller's service_call


def browse(cls: type[LogQuery], view: str, endpoint: str, template: str, **context: Any) -> Any:
    """A page of one view of the browser (plugins' views too: the LRS statements)."""
    query = cls.from_args(current_user._get_current_object(), request.args)
    # A refused filter (a bad cursor or date) is told in Chinese over the empty form: 400.
    # The rows stay loaded through the commit of the look at a person's record.
    with (
        keep_loaded(),
        service_call(
            lambda: _render(view, endpoint, template, query, [], 0, None, context),
            message="%(reason)s",
            errors=(QueryError,),
        ),
    ):
        rows, next_key = query.page()
        total = query.count(limit=COUNT_SHOWN)
        context = {**context, **query.extras(rows)}
        _log_person_view(query, "log")
    return _render(view, endpoint, template, query, rows, total, next_key, context)


def _browse(view: str) -> Any:
    return browse(VIEWS[view], view, f"audit.{view}", f"audit/{view}.html")


def _render(
    view: str,
    endpoint: str,
    template: str,
    query: LogQuery,
    rows: list[Any],
    total: int,
    next_key: str | None,
    context: dict[str, Any],
) -> str:
    choices = sorted(((code, str(name)) for code, name in known_events().items()), key=lambda c: c[1])
    args = {k: v for k, v in request.args.items() if k != "before" and v}
    return render_template(
        template,
        view=view,
        endpoint=endpoint,
        query=query,
        rows=rows,
        total=total,
        next_key=next_key,
        args=args,
        units=_units(query.capability),
        event_choices=choices,
        rule_choices=rule_choices(),
        event_label=event_label,
        object_label=object_label,
        max_export=MAX_EXPORT_ROWS,
        **context,
        count_shown=COUNT_SHOWN,
    )


@bp.route("/events")
def events() -> Any:
    """The domain event log: who did what, where and when."""
    return _browse("events")


@bp.route("/sessions")
def sessions() -> Any:
    """Study sessions with the time reported, credited and deducted."""
    require(current_user, "learning.view")
    return _browse("sessions")


def export(cls: type[LogQuery], fmt: str) -> Any:
    """The whole filtered table of one view as CSV or XLSX, streamed (plugins' views too)."""
    query = cls.from_args(current_user._get_current_object(), request.args)
    query.before = ""  # an export is the whole filtered table, not one page
    try:
        total = query.count(limit=MAX_EXPORT_ROWS - 1)
    except QueryError as exc:
        abort(400, str(exc))
    _log_person_view(query, "export")
    commit()
    query.prepare_export()
    if fmt == "csv":
        body, mimetype = query.export_csv(), "text/csv; charset=utf-8"
    else:
        body = query.export_xlsx()
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = Response(stream_with_context(body), mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename={cls.filename}.{fmt}"  # ASCII: every browser
    # The page's progress bar counts rows against this (the export's own count).
    response.headers["X-Total-Rows"] = str(total)
    return response


def _export(view: str, fmt: str) -> Any:
    return export(VIEWS[view], fmt)


@bp.route("/events.csv")
def events_csv() -> Any:
    return _export("events", "csv")


@bp.route("/events.xlsx")
def events_xlsx() -> Any:
    return _export("events", "xlsx")


@bp.route("/sessions.csv")
def sessions_csv() -> Any:
    require(current_user, "learning.view")
    return _export("sessions", "csv")


@bp.route("/sessions.xlsx")
def sessions_xlsx() -> Any:
    require(current_user, "learning.view")
    return _export("sessions", "xlsx")


@bp.route("/users/<int:user_id>/learning")
def learning_record(user_id: int) -> Any:
    """The ledger of one person's credited study, newest first, with every verdict."""
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    require(current_user, "learning.view", user)
    log_view(current_user, user, "learning")
    commit()
    rows = learning_record_rows(user.id)
    return render_template(
        "audit/learning.html",
        person=user,
        rows=rows,
        verdict_label=verdict_label,
        reason_text=reason_text,
    )


def parse_day(raw: str) -> dt.date:
    """A day in the URL (YYYY-MM-DD, not in the future): 404 otherwise."""
    try:
        day = dt.date.fromisoformat(raw) if len(raw) == 10 and raw.isascii() else None
    except ValueError:
        day = None
    today = utcnow().astimezone(SHANGHAI).date()
    if day is None or not dt.date(2000, 1, 1) <= day <= today:
        abort(404)
    return day


def render_day(person: User, day: dt.date, *, own: bool) -> str:
    """The day picture page, for an auditor (``own`` False) or the person themselves."""
    today = utcnow().astimezone(SHANGHAI).date()
    nxt = day + dt.timedelta(days=1)

    def day_url(d: dt.date) -> str:
        if own:
            return url_for("dashboard.record_day", day=d.isoformat())
        return url_for("audit.person_day", user_id=person.id, day=d.isoformat())

    return render_template(
        "audit/day.html",
        person=person,
        day=day,
        own=own,
        pic=day_picture.picture(person, day),
        kind_names=day_picture.KIND_NAMES,
        hhmm=day_picture.hhmm,
        prev=day - dt.timedelta(days=1),
        next=nxt if nxt <= today else None,
        day_url=day_url,
    )


@bp.route("/users/<int:user_id>/days/<day>")
def person_day(user_id: int, day: str) -> Any:
    """A learner's day, as a picture: sessions, watched segments, hidden spans, checks, evidence, ledger."""
    person = db.session.get(User, user_id)
    if person is None:
        abort(404)
    require(current_user, "learning.view", person)
    the_day = parse_day(day)
    log_view(current_user, person, "day", the_day.isoformat())
    commit()
    return render_day(person, the_day, own=False)
