"""Auditors' pages: the scoped event log and a person's learning record."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, abort, flash, render_template, request, stream_with_context, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from lms_core.accounts.models import User
from lms_core.audit import day as day_picture
from lms_core.audit.queries import EventLogQuery, QueryError
from lms_core.audit.viewlog import log_view
from lms_core.authz import require
from lms_core.bounded import page_arg
from lms_core.db import utcnow
from lms_core.events.names import event_label, known_events, object_label
from lms_core.extensions import db
from lms_core.i18n import SHANGHAI
from lms_core.jobs.services import commit
from lms_core.learning.explain import is_sentence, reason_text, verdict_label
from lms_core.learning.models import LearningInterval

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.before_request
@login_required
def _auditors_only() -> None:
    require(current_user, "events.view")


def _query() -> EventLogQuery:
    args = request.args
    return EventLogQuery(
        viewer=current_user._get_current_object(),
        name=args.get("name", "")[:100],
        username=args.get("username", "")[:64],
        org_code=args.get("org", "")[:64],
        course_code=args.get("course", "")[:64],
        date_from=args.get("from", "")[:10],
        date_to=args.get("to", "")[:10],
        page=page_arg(),
    )


@bp.route("/events")
def events() -> Any:
    query = _query()
    try:
        rows, total = query.rows(), query.count()
    except QueryError as exc:
        flash(str(exc), "error")
        return _render_events(query, [], 0), 400
    return _render_events(query, rows, total)


def _render_events(query: EventLogQuery, rows: list[Any], total: int) -> str:
    choices = sorted(((code, str(name)) for code, name in known_events().items()), key=lambda c: c[1])
    return render_template(
        "audit/events.html",
        query=query,
        rows=rows,
        total=total,
        event_choices=choices,
        event_label=event_label,
        object_label=object_label,
    )


@bp.route("/events.csv")
def events_csv() -> Any:
    query = _query()
    try:
        query.statement()
    except QueryError as exc:
        abort(400, str(exc))
    response = Response(stream_with_context(query.export_csv()), mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = "attachment; filename=event-log.csv"  # ASCII: every browser
    return response


@bp.route("/users/<int:user_id>/learning")
def learning_record(user_id: int) -> Any:
    """The ledger of one person's credited study, newest first, with every verdict."""
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    require(current_user, "learning.view", user)
    log_view(current_user, user, "learning")
    commit()
    from lms_core.courses.models import Lesson

    rows = db.session.execute(
        select(LearningInterval, Lesson.title)
        .join(Lesson, Lesson.id == LearningInterval.lesson_id)
        .where(LearningInterval.user_id == user.id)
        .order_by(LearningInterval.id.desc())
        .limit(200)
    ).all()
    return render_template(
        "audit/learning.html",
        person=user,
        rows=rows,
        verdict_label=verdict_label,
        reason_text=reason_text,
        is_sentence=is_sentence,
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
