"""The learning-log browser's queries: one object per view for the page and its exports.

Scope is applied in SQL (``scope_condition``), so rows outside the auditor's
subtree are never fetched, and an export is exactly the filtered table (the same
statement, the same ``cells``). Pages are keyset-paginated (``before``: the last
row's key, newest first), never ``OFFSET`` over millions of rows; a cursor that
is not one the page produced is a 400.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from flask_babel import gettext as _
from sqlalchemy import Select, Text, and_, cast, false, func, literal_column, or_, select, text
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import True_

from lms_core import csv_export
from lms_core.accounts.models import User
from lms_core.authz import scope_condition
from lms_core.dateformat import format_datetime
from lms_core.events.models import Event
from lms_core.events.names import event_label, object_label, readable_payload
from lms_core.extensions import db
from lms_core.i18n import SHANGHAI
from lms_core.orgs.models import OrgUnit
from lms_core.pluginhost import get_plugin_manager
from lms_core.pluginhost.answers import RuleFilter

MAX_EXPORT_ROWS = 100_000
#: A page counts matching rows only up to this many ("more than 1,000 rows match"): an
#: exact count of a year of a county's events would read every one of them on each page.
COUNT_SHOWN = 1000
#: Rows fetched per round trip while exporting (memory stays flat).
EXPORT_BATCH = 1000
MAX_BIGINT = 2**63 - 1


#: Units offered in the tree picker (a bigger tree falls back to typing the code).
UNIT_CHOICES = 500


class QueryError(ValueError):
    pass


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def time_cursor(moment: dt.datetime, key: object) -> str:
    """A keyset cursor on (time, id): microseconds since 1970 and the row's id."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return f"{(moment - _EPOCH) // dt.timedelta(microseconds=1)}-{key}"


def parse_time_cursor(raw: str, pattern: re.Pattern[str]) -> tuple[dt.datetime, str]:
    """The (time, id) of a cursor :func:`time_cursor` made; ``pattern`` checks the id part."""
    m = pattern.match(raw)
    moment = None
    if m:
        try:
            moment = _EPOCH + dt.timedelta(microseconds=int(m.group(1)))
        except OverflowError:
            moment = None
    if m is None or moment is None or moment.year > 9998:
        raise QueryError(_("This page link is not valid; start again from the first page."))
    return moment, m.group(2)


class Memo(dict[Any, Any]):
    """``fn(key)``, computed once per key: an export names the same few events,
    object kinds and units on every row, so each name is translated once."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self.fn(key)
        return value


#: Event cursors: the id is a positive bigint.
_EVENT_CURSOR = re.compile(r"^(\d{1,17})-([1-9]\d{0,17})$")
#: Session cursors: the id is the session's hex key.
_SESSION_CURSOR = re.compile(r"^(\d{1,17})-([0-9a-f]{1,32})$")


def rule_filters() -> list[RuleFilter]:
    """The plugins' rule filters (``lms_log_rule_filter``), in hook order."""
    return [f for f in get_plugin_manager().hook.lms_log_rule_filter() if f is not None]


def rule_choices() -> list[tuple[str, str]]:
    """``(code, name)`` of every rule the study sessions can be filtered by."""
    return [(code, str(name)) for f in rule_filters() for code, name in f.choices]


def learning_record_rows(user_id: int, limit: int = 200) -> list[Any]:
    """A person's newest credited intervals with their lesson's title, newest first
    (rows of ``wall_end``, ``claimed_ms``, ``credited_ms``, ``verdict``, ``reasons``, ``title``).

    Ordered by ``wall_end`` (then id), the order of ``ix_learning_intervals_user_id_wall_end``:
    PostgreSQL reads the person's newest index entries and stops. Ordered by id, it
    walked the whole ledger's primary key backwards looking for the person's rows.
    """
    from lms_core.courses.models import Lesson
    from lms_core.learning.models import LearningInterval as I

    # Only the columns the page shows, as plain rows: whole ORM objects parsed three
    # more JSON columns per row (segments, client signals) that the page never reads.
    return list(
        db.session.execute(
            select(I.wall_end, I.claimed_ms, I.credited_ms, I.verdict, I.reasons, Lesson.title)
            .join(Lesson, Lesson.id == I.lesson_id)
            .where(I.user_id == user_id)
            .order_by(I.wall_end.desc(), I.id.desc())
            .limit(limit)
        ).all()
    )


def units_in_scope(viewer: Any, capability: str) -> list[tuple[str, str]]:
    """The org tree picker: units in the viewer's scope, indented by depth (code, label).

    Empty when there are more than ``UNIT_CHOICES`` (the page then asks for a code).
    """
    units = db.session.execute(
        select(OrgUnit.code, OrgUnit.name, OrgUnit.path)
        .where(scope_condition(viewer, capability, OrgUnit.path))
        .order_by(OrgUnit.path)
        .limit(UNIT_CHOICES + 1)
    ).all()
    if not units or len(units) > UNIT_CHOICES:
        return []
    top = min(p.count("/") for _c, _n, p in units)
    return [(code, "\u3000" * (path.count("/") - top) + name) for code, name, path in units]


def _day(value: str, *, end: bool) -> dt.datetime | None:
    """A Beijing calendar day as a UTC bound (end: the next midnight)."""
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value) if value.isascii() else None
    except ValueError:
        day = None
    if day is None or not dt.date(1970, 1, 2) <= day <= dt.date(9998, 12, 30):
        raise QueryError(_("Invalid date %(value)s: use YYYY-MM-DD.", value=value))
    if end:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI).astimezone(dt.UTC)


def local(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _clean(value: str, limit: int) -> str:
    cleaned = (value or "")[:limit].strip()
    if not cleaned.isprintable():
        raise QueryError(_("The filter contains characters that are not allowed."))
    return cleaned


def _plan_with_values() -> None:
    """Plan the browser's queries for their values each time (PostgreSQL, this transaction).

    psycopg prepares a statement from its sixth run on a connection, and after five runs
    of a prepared statement PostgreSQL may switch to one generic plan for any value. In
    a generic plan the scope's ``path LIKE $1 || '%'`` is estimated at one unit, so a
    county's month of events was read unit by unit and all 8,600 rows sorted for the
    newest 51 (36.5 ms of PostgreSQL CPU per page at full size), where the plan for the
    actual path walks ``ix_event_log_created_at_id`` backwards and stops after about 500
    (1.7 ms). Planning each time costs about 1 ms.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


@dataclass
class LogQuery:
    """Filters shared by every view of the browser."""

    viewer: Any
    username: str = ""
    org_code: str = ""
    #: A course's code; a lesson is given by its id (the lesson picker lists the course's lessons).
    course_code: str = ""
    lesson: str = ""
    date_from: str = ""
    date_to: str = ""
    #: Keyset cursor: the key of the last row of the previous page ('' = first page).
    before: str = ""
    size: int = 50

    #: The capability whose scope limits the rows.
    capability: ClassVar[str] = "events.view"
    #: Stem of the export's file name (ASCII: every browser).
    filename: ClassVar[str] = "log"

    @classmethod
    def from_args(cls, viewer: Any, args: Any, **extra: Any) -> Any:
        return cls(
            viewer=viewer,
            username=args.get("username", "")[:64],
            org_code=args.get("org", "")[:64],
            course_code=args.get("course", "")[:64],
            lesson=args.get("lesson", "")[:20],
            date_from=args.get("from", "")[:10],
            date_to=args.get("to", "")[:10],
            before=args.get("before", "")[:80],
            **extra,
        )

    # --- shared filter resolution -------------------------------------------------------
    def unit(self) -> OrgUnit | None:
        code = _clean(self.org_code, 64)
        if not code:
            return None
        unit = db.session.execute(select(OrgUnit).filter_by(code=code)).scalar_one_or_none()
        if unit is None:
            raise QueryError(_("Unknown org unit code %(code)s.", code=code))
        return unit

    def course_id(self) -> int | None:
        from lms_core.courses.models import Course

        code = _clean(self.course_code, 64)
        if not code:
            return None
        course_id = db.session.execute(select(Course.id).where(Course.code == code)).scalar_one_or_none()
        if course_id is None:
            raise QueryError(_("Unknown course code %(code)s.", code=code))
        return int(course_id)

    def lesson_id(self) -> int | None:
        raw = self.lesson.strip()
        if not raw:
            return None
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 10):
            raise QueryError(_("Give the lesson by its number."))
        return int(raw)

    def person_named(self) -> str:
        return _clean(self.username, 64)

    def bounds(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        return _day(self.date_from, end=False), _day(self.date_to, end=True)

    # --- what each view provides ----------------------------------------------------------
    def statement(self, *, flat: bool = False) -> Select[Any]:
        """The filtered rows. ``flat``: plain columns only (the export's and the count's
        form, no ORM objects to build per row); the same FROM, filters and order."""
        raise NotImplementedError

    def count_statement(self) -> Select[Any]:
        """The filtered rows as a constant each, for counting: PostgreSQL can then count
        from an index alone, without the columns or joins a row shows."""
        # The statement's FROM is explicit (select_from and joins), so the columns can go.
        return self.statement(flat=True).with_only_columns(literal_column("1"))

    def _keyset(self, stmt: Select[Any]) -> Select[Any]:
        raise NotImplementedError

    def key_of(self, row: Any) -> str:
        raise NotImplementedError

    def headers(self) -> list[str]:
        raise NotImplementedError

    def cells(self, row: Any) -> list[Any]:
        raise NotImplementedError

    def extras(self, rows: list[Any]) -> dict[str, Any]:
        """What the page's template needs beside its rows (looked up once per page)."""
        return {}

    def export_cells(self, row: Any) -> list[Any]:
        """An exported row (``statement(flat=True)``) as its cells: the page's cells unless
        the view's flat rows differ from its page rows."""
        return self.cells(row)

    # --- shared machinery -------------------------------------------------------------------
    def count(self, limit: int | None = None) -> int:
        """Rows matching the filters; with ``limit``, counting stops after ``limit + 1`` rows."""
        _plan_with_values()
        stmt = self.count_statement()
        if limit is not None:
            stmt = stmt.limit(limit + 1)
            if limit <= COUNT_SHOWN and db.session.get_bind().dialect.name == "postgresql":
                # A page's count stops after about a thousand rows: two parallel workers
                # started for it cost more CPU than they save (a county's LRS count: 87.7 ms
                # of PostgreSQL CPU per page with them, 29.5 ms in the backend alone
                # without). Until the transaction ends, so the page's query runs serial too.
                db.session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        return int(db.session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())

    def page(self) -> tuple[list[Any], str | None]:
        """One page, newest first, and the cursor of the next page (None: this is the last)."""
        _plan_with_values()
        rows = list(db.session.execute(self._keyset(self.statement()).limit(self.size + 1)).all())
        more = len(rows) > self.size
        rows = rows[: self.size]
        return rows, (self.key_of(rows[-1]) if more and rows else None)

    def prepare_export(self) -> Select[Any]:
        """Build the export's statement now, inside the request (the scope reads the viewer),
        so the streamed body only runs it."""
        self._export_stmt = self._keyset(self.statement(flat=True)).limit(MAX_EXPORT_ROWS)
        return self._export_stmt

    def _export_batches(self) -> Iterator[Sequence[Any]]:
        """The export's rows, ``EXPORT_BATCH`` at a time, from a server-side cursor
        (``yield_per`` streams on PostgreSQL): memory holds one batch, not the table.

        Run on the session's connection as Core rows (no ORM row processing). On
        PostgreSQL ``cursor_tuple_fraction`` = 1 for this transaction: a cursor is
        planned by default for its first 10 % of rows (an index walk with a lookup per
        row), but an export reads every row, where scanning and sorting is much cheaper.
        """
        stmt = getattr(self, "_export_stmt", None)
        if stmt is None:
            stmt = self.prepare_export()
        conn = db.session.connection()
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")
        yield from conn.execution_options(yield_per=EXPORT_BATCH).execute(stmt).partitions()

    def export_csv(self) -> Iterator[str]:
        """CSV with a UTF-8 BOM (Excel on Windows shows Chinese correctly), newest first, streamed."""
        yield csv_export.BOM
        buf = io.StringIO()
        writer = csv_export.writer(buf)
        writer.writerow(self.headers())
        cells = self.export_cells
        for batch in self._export_batches():
            writer.writerows(map(cells, batch))
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
        yield buf.getvalue()

    def export_xlsx(self) -> Iterator[bytes]:
        """The same rows as an .xlsx: openpyxl's write-only mode streams rows to a temporary
        file (memory stays flat), which is then sent in chunks."""
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet(title=self.filename[:31])
        sheet.append([csv_export.safe_cell(h) for h in self.headers()])
        safe, cells = csv_export.safe_cell, self.export_cells
        for batch in self._export_batches():
            for row in batch:
                sheet.append([safe(c) for c in cells(row)])
        with tempfile.TemporaryFile() as out:
            book.save(out)
            out.seek(0)
            while chunk := out.read(64 * 1024):
                yield chunk


# --- the domain event log ------------------------------------------------------------------


@dataclass
class EventLogQuery(LogQuery):
    name: str = ""  # prefix, e.g. "video." or "user.logged_in"
    filename: ClassVar[str] = "event-log"

    @classmethod
    def from_args(cls, viewer: Any, args: Any, **extra: Any) -> Any:
        return super().from_args(viewer, args, name=args.get("name", "")[:100], **extra)

    def statement(self, *, flat: bool = False) -> Select[Any]:
        actor = aliased(User)
        # The page renders Event objects; the export and the count take plain columns.
        first: list[Any] = [Event]
        if flat:
            first = [
                Event.id,
                Event.created_at,
                Event.name,
                Event.object_type,
                Event.object_id,
                Event.ip,
                # As text: most events carry no payload, and "{}" needs no JSON parsing.
                cast(Event.payload, Text).label("payload"),
            ]
        stmt = (
            select(*first, actor.username, actor.full_name, OrgUnit.name.label("unit_name"))
            .outerjoin(OrgUnit, OrgUnit.id == Event.org_unit_id)
            .outerjoin(actor, actor.id == Event.actor_id)
        )
        return self._filtered(stmt)

    def count_statement(self) -> Select[Any]:
        # Without the joins that only name things: even unused, the outer join to the
        # actor kept PostgreSQL from counting a county's year from
        # ix_event_log_org_unit_id_created_at alone (1.3 s instead of 0.15 s).
        return self._filtered(select(literal_column("1")).select_from(Event))

    def _filtered(self, stmt: Select[Any]) -> Select[Any]:
        # Scope and the unit filter as the ids of the units they allow: PostgreSQL then
        # reads a county's rows from ix_event_log_org_unit_id_created_at, where a
        # condition on the joined unit's path made it scan the whole log.
        allowed = aliased(OrgUnit)
        units = scope_condition(self.viewer, self.capability, allowed.path)
        if unit := self.unit():
            units = and_(units, allowed.path.startswith(unit.path, autoescape=True))
        if not isinstance(units, True_):  # a site admin with no unit filter: every event, unit or none
            stmt = stmt.where(Event.org_unit_id.in_(select(allowed.id).where(units)))
        name = _clean(self.name, 100)
        if name:
            stmt = stmt.where(Event.name.startswith(name, autoescape=True))
        if username := self.person_named():
            # The person's id, looked up first: a condition on Event.actor_id can use
            # ix_event_log_actor_id_created_at, one on the joined username cannot.
            person = db.session.execute(select(User.id).where(User.username == username)).scalar_one_or_none()
            stmt = stmt.where(Event.actor_id == person) if person is not None else stmt.where(false())
        if (course_id := self.course_id()) is not None:
            stmt = stmt.where(Event.course_id == course_id)
        if (lesson_id := self.lesson_id()) is not None:
            stmt = stmt.where(Event.object_type == "lessons", Event.object_id == str(lesson_id))
        start, end = self.bounds()
        if start:
            stmt = stmt.where(Event.created_at >= start)
        if end:
            stmt = stmt.where(Event.created_at < end)
        return stmt

    def _keyset(self, stmt: Select[Any]) -> Select[Any]:
        # Newest first by time (ix_event_log_created_at_id; for one person
        # ix_event_log_actor_id_created_at): a date range is then a range of the index,
        # where ordering by id walked the whole log back from its last row.
        if self.before:
            moment, raw = parse_time_cursor(self.before, _EVENT_CURSOR)
            last = int(raw)  # at most 18 digits: within a bigint
            stmt = stmt.where(or_(Event.created_at < moment, and_(Event.created_at == moment, Event.id < last)))
        return stmt.order_by(Event.created_at.desc(), Event.id.desc())

    def key_of(self, row: Any) -> str:
        return time_cursor(row[0].created_at, row[0].id)

    def rows(self) -> list[Any]:
        return self.page()[0]

    def extras(self, rows: list[Any]) -> dict[str, Any]:
        return {"sessions": session_names(row[0].object_id for row in rows if row[0].object_type == SESSIONS)}

    def headers(self) -> list[str]:
        return [
            _("No."),
            _("Time (Beijing)"),
            _("Event"),
            _("Event code"),
            _("Username"),
            _("Full name"),
            _("Org unit"),
            _("Object"),
            _("IP address"),
            _("Details"),
        ]

    def cells(self, row: Any) -> list[Any]:
        """One exported row (``statement(flat=True)``) as the CSV's cells."""
        labels = self.__dict__.get("_labels")
        if labels is None:
            labels = self.__dict__["_labels"] = (Memo(event_label), Memo(lambda t: object_label(t, None)))
        events, kinds = labels
        event_id, created_at, name, kind, object_id, ip, payload, username, full_name, unit_name = row
        return [
            event_id,
            local(created_at),
            events[name],
            name,
            username or "",
            full_name or "",
            unit_name or "",
            (f"{kinds[kind]} #{object_id}" if object_id else kinds[kind]) if kind else "",
            ip or "",
            readable_payload(json.loads(payload)) if payload and payload != "{}" else "",
        ]


#: ``Event.object_type`` of a study session (its id is a random hex key).
SESSIONS = "learning_sessions"


def session_names(ids: Iterable[str | None]) -> dict[str, str]:
    """``{session id: "《lesson》 opened at 14:02 (Beijing)"}``: what a person can tell
    a study session by. Its hex id means nothing to a reader; the page keeps it in a
    title for the auditor who cross-references the export or the database."""
    from lms_core.courses.models import Lesson
    from lms_core.learning.models import LearningSession

    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    found = db.session.execute(
        select(LearningSession.id, LearningSession.started_at, Lesson.title)
        .join(Lesson, Lesson.id == LearningSession.lesson_id)
        .where(LearningSession.id.in_(wanted))
    ).all()
    return {
        sid: _("%(lesson)s, opened %(time)s", lesson=title, time=format_datetime(started, "yyyy-MM-dd HH:mm"))
        for sid, started, title in found
    }


# --- study sessions --------------------------------------------------------------------------


@dataclass
class SessionQuery(LogQuery):
    """Study sessions (one tab opening one lesson) with the time claimed, credited and deducted."""

    #: A rule code offered by a plugin (``lms_log_rule_filter``): sessions it left evidence on.
    rule: str = ""
    capability: ClassVar[str] = "learning.view"
    filename: ClassVar[str] = "study-sessions"

    @classmethod
    def from_args(cls, viewer: Any, args: Any, **extra: Any) -> Any:
        return super().from_args(viewer, args, rule=args.get("rule", "")[:16], **extra)

    def rule_condition(self, session: Any) -> Any:
        """The plugin's condition for the chosen rule (None: no rule chosen); 400 if unknown."""
        code = _clean(self.rule, 16)
        if not code:
            return None
        for f in rule_filters():
            if any(code == c for c, _name in f.choices):
                return f.sessions(code, session)
        raise QueryError(_("Unknown rule; choose one from the list."))

    def statement(self, *, flat: bool = False) -> Select[Any]:
        from lms_core.courses.models import Course, Lesson
        from lms_core.learning.models import LearningSession

        s = LearningSession
        first: list[Any] = [s]
        if flat:  # the export's row: the session's columns it shows, no ORM object
            first = [s.started_at, s.ended_at, s.last_beat_at, s.claimed_ms, s.credited_ms, s.ip]
        columns: list[Any] = [*first, User.id, User.username, User.full_name, OrgUnit.name, Course.title, Lesson.title]
        stmt = (
            select(*columns)
            .select_from(s)
            .join(User, User.id == s.user_id)
            .join(OrgUnit, OrgUnit.id == User.org_unit_id)
            .join(Lesson, Lesson.id == s.lesson_id)
            .join(Course, Course.id == Lesson.course_id)
            .where(scope_condition(self.viewer, self.capability, OrgUnit.path))
        )
        if username := self.person_named():
            stmt = stmt.where(User.username == username)
        if unit := self.unit():
            stmt = stmt.where(OrgUnit.path.startswith(unit.path, autoescape=True))
        if (course_id := self.course_id()) is not None:
            stmt = stmt.where(Lesson.course_id == course_id)
        if (lesson_id := self.lesson_id()) is not None:
            stmt = stmt.where(s.lesson_id == lesson_id)
        if (condition := self.rule_condition(s)) is not None:
            stmt = stmt.where(condition)
        start, end = self.bounds()
        if start:
            stmt = stmt.where(s.started_at >= start)
        if end:
            stmt = stmt.where(s.started_at < end)
        return stmt

    def _keyset(self, stmt: Select[Any]) -> Select[Any]:
        from lms_core.learning.models import LearningSession as S

        if self.before:
            moment, sid = parse_time_cursor(self.before, _SESSION_CURSOR)
            stmt = stmt.where(or_(S.started_at < moment, and_(S.started_at == moment, S.id < sid)))
        # ix_learning_sessions_started_at_id serves this order (and a person's, their index).
        return stmt.order_by(S.started_at.desc(), S.id.desc())

    def key_of(self, row: Any) -> str:
        return time_cursor(row[0].started_at, row[0].id)

    def headers(self) -> list[str]:
        return [
            _("Started (Beijing)"),
            _("Last activity (Beijing)"),
            _("Full name"),
            _("Username"),
            _("Org unit"),
            _("Course"),
            _("Lesson"),
            _("Reported (s)"),
            _("Credited (s)"),
            _("Deducted (s)"),
            _("IP address"),
        ]

    def cells(self, row: Any) -> list[Any]:
        """A page's row (the session object first) as its cells."""
        session, *rest = row
        return self.export_cells(
            (
                session.started_at,
                session.ended_at,
                session.last_beat_at,
                session.claimed_ms,
                session.credited_ms,
                session.ip,
                *rest,
            )
        )

    def export_cells(self, row: Any) -> list[Any]:
        """An exported row (``statement(flat=True)``) as its cells; the page's go through here too."""
        started, ended, last_beat, claimed_ms, credited_ms, ip, _uid, username, full_name, unit, course, lesson = row
        claimed, credited = claimed_ms // 1000, credited_ms // 1000
        return [
            local(started),
            local(ended or last_beat),
            full_name or "",
            username or "",
            unit or "",
            course,
            lesson,
            claimed,
            credited,
            max(claimed - credited, 0),
            ip or "",
        ]
