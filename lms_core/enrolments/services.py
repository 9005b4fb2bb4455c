"""Self-enrolment and assigned training (调训)."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Date, Integer, and_, bindparam, func, literal, or_, select
from sqlalchemy.orm import joinedload

from lms_core.accounts.models import RankBand, User, UserStatus
from lms_core.authz import AccessDenied, can, register_scope_resolver
from lms_core.courses.models import Course
from lms_core.db import utcnow
from lms_core.enrolments.models import Assignment, Enrolment, EnrolmentSource
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.jobs.services import enqueue
from lms_core.learning.services import new_registration
from lms_core.orgs.models import OrgUnit
from lms_core.unit_of_work import ServiceError

MATERIALIZE_JOB = "enrolments.materialize"
BATCH = 1000
#: An identical assignment sent again within this window is a double submit, not a new 调训.
RESUBMIT_WINDOW = dt.timedelta(minutes=10)

register_scope_resolver(Assignment, lambda a: a.org_unit)


class EnrolmentError(ServiceError):
    """Invalid enrolment or assignment; the message is shown to the user."""


def enrol(user: User, course: Course) -> Enrolment:
    """Self-enrol in a published course (idempotent; does not commit)."""
    existing = db.session.execute(
        select(Enrolment).filter_by(user_id=user.id, course_id=course.id)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    if not course.published:
        raise EnrolmentError(_("this course is not open for enrolment"))
    if not can(user, "learning.participate"):
        raise AccessDenied("learning.participate")
    enrolment = Enrolment(
        user_id=user.id, course_id=course.id, registration=new_registration(), source=EnrolmentSource.SELF
    )
    db.session.add(enrolment)
    db.session.flush()
    emit(
        "course.enrolled",
        actor=user,
        obj=enrolment,
        course_id=course.id,
        payload={"registration": enrolment.registration, "assigned": False, "deadline": None},
    )
    return enrolment


def assign(
    actor: User,
    course: Course,
    unit: OrgUnit,
    *,
    deadline: dt.datetime,
    rank_band: RankBand | None = None,
    note: str = "",
) -> Assignment:
    """Assign a course to everyone in ``unit``'s subtree (optionally one rank band)."""
    if not can(actor, "course.assign", unit):
        raise AccessDenied("course.assign")
    if not course.published:
        raise EnrolmentError(_("only published courses can be assigned"))
    if deadline <= utcnow():
        raise EnrolmentError(_("the deadline must be in the future"))
    _refuse_a_resubmission(course, unit, deadline=deadline, rank_band=rank_band, note=note.strip())
    assignment = Assignment(
        course_id=course.id,
        org_unit_id=unit.id,
        rank_band=rank_band,
        deadline=deadline,
        note=note.strip(),
        created_by_id=actor.id,
    )
    db.session.add(assignment)
    db.session.flush()
    emit(
        "course.assigned",
        actor=actor,
        obj=assignment,
        course_id=course.id,
        org_unit_id=unit.id,
        payload={
            "unit": unit.code,
            "rank_band": rank_band.value if rank_band else None,
            "deadline": deadline.isoformat(),
        },
    )
    enqueue(MATERIALIZE_JOB, {"assignment_id": assignment.id})
    return assignment


def _refuse_a_resubmission(
    course: Course, unit: OrgUnit, *, deadline: dt.datetime, rank_band: RankBand | None, note: str
) -> None:
    """A double click or a browser resubmit must not send the same 调训 twice.

    The course row is locked first (PostgreSQL; SQLite serialises writers anyway), so two
    copies of one form arriving together are checked one after the other.
    """
    db.session.execute(select(Course.id).where(Course.id == course.id).with_for_update())
    same = select(Assignment.id).where(
        Assignment.course_id == course.id,
        Assignment.org_unit_id == unit.id,
        Assignment.rank_band.is_(None) if rank_band is None else Assignment.rank_band == rank_band,
        Assignment.deadline == deadline,
        Assignment.note == note,
        Assignment.created_at >= utcnow() - RESUBMIT_WINDOW,
    )
    if db.session.execute(same.limit(1)).first() is not None:
        raise EnrolmentError(
            _(
                "this course was just assigned to %(unit)s with the same deadline; "
                "it was not sent again (see the assignments below)",
                unit=unit.name,
            )
        )


def _targets(assignment: Assignment) -> Any:
    unit = assignment.org_unit
    stmt = (
        select(User)
        .join(OrgUnit, OrgUnit.id == User.org_unit_id)
        .where(OrgUnit.path.startswith(unit.path, autoescape=True), User.status == UserStatus.ACTIVE)
    )
    if assignment.rank_band is not None:
        stmt = stmt.where(User.rank_band == assignment.rank_band)
    return stmt


def _apply(assignment: Assignment, user: User, enrolment: Enrolment | None) -> Enrolment:
    """Make ``user``'s enrolment reflect the assignment (keeps the earliest deadline)."""
    if enrolment is None:
        enrolment = Enrolment(
            user_id=user.id,
            course_id=assignment.course_id,
            registration=new_registration(),
            source=EnrolmentSource.ASSIGNED,
            assignment_id=assignment.id,
            deadline=assignment.deadline,
        )
        db.session.add(enrolment)
        db.session.flush()
        emit(
            "course.enrolled",
            actor=user,
            obj=enrolment,
            course_id=assignment.course_id,
            payload={
                "registration": enrolment.registration,
                "assigned": True,
                "deadline": assignment.deadline.isoformat(),
            },
        )
        return enrolment
    if (
        enrolment.source != EnrolmentSource.ASSIGNED
        or enrolment.deadline is None
        or assignment.deadline < enrolment.deadline
    ):
        enrolment.source = EnrolmentSource.ASSIGNED
        enrolment.assignment_id = assignment.id
        enrolment.deadline = assignment.deadline
        enrolment.notice_read_at = None  # a new task or an earlier deadline: tell the learner
    return enrolment


def materialize(assignment_id: int, progress: Any = None) -> int:
    """Create or update the enrolments of an assignment, in batches; returns how many were touched.

    Idempotent: run again, it changes nothing. Commits per batch so a county of
    tens of thousands does not hold one huge transaction.
    """
    assignment = db.session.get(Assignment, assignment_id)
    if assignment is None:
        return 0
    touched = 0
    last_id = 0
    while True:
        users = (
            db.session.execute(_targets(assignment).where(User.id > last_id).order_by(User.id).limit(BATCH))
            .scalars()
            .all()
        )
        if not users:
            break
        ids = [u.id for u in users]
        existing = {
            e.user_id: e
            for e in db.session.execute(
                select(Enrolment).where(Enrolment.course_id == assignment.course_id, Enrolment.user_id.in_(ids))
            ).scalars()
        }
        for user in users:
            before = existing.get(user.id)
            state = (before.source, before.deadline) if before else None
            after = _apply(assignment, user, before)
            if state != (after.source, after.deadline):
                touched += 1
        last_id = ids[-1]
        db.session.commit()
        if progress:
            progress(len(users))
    return touched


def materialize_job(payload: dict[str, Any]) -> None:
    materialize(int(payload["assignment_id"]))


def ensure_assigned(user: User) -> int:
    """Apply assignments that cover ``user`` but have no enrolment yet (new hires, moves).

    Runs on the learner's pages, so a cadre who joined a county after an assignment
    still sees it as required at once, without waiting for a batch job.
    """
    path = user.org_unit.path
    covering = (
        select(Assignment)
        .join(OrgUnit, OrgUnit.id == Assignment.org_unit_id)
        .where(
            literal(path).startswith(OrgUnit.path),
            or_(Assignment.rank_band.is_(None), Assignment.rank_band == user.rank_band),
            ~select(Enrolment.id)
            .where(
                and_(
                    Enrolment.user_id == user.id,
                    Enrolment.course_id == Assignment.course_id,
                    Enrolment.source == EnrolmentSource.ASSIGNED,
                )
            )
            .exists(),
        )
    )
    found = db.session.execute(covering).scalars().all()
    for assignment in found:
        existing = db.session.execute(
            select(Enrolment).filter_by(user_id=user.id, course_id=assignment.course_id)
        ).scalar_one_or_none()
        _apply(assignment, user, existing)
    return len(found)


def my_enrolments(user: User) -> list[Enrolment]:
    """Required (assigned) first by deadline, then the rest by enrolment date."""
    # The dashboard shows every course's title: load them in the same query instead of
    # one query per course (plus one for its instructors, which the list never shows).
    rows = (
        db.session.execute(
            select(Enrolment)
            .where(Enrolment.user_id == user.id)
            .options(joinedload(Enrolment.course).lazyload(Course.instructors))
        )
        .scalars()
        .all()
    )
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(
        rows, key=lambda e: (e.source != EnrolmentSource.ASSIGNED, e.completed_at is not None, e.deadline or far, -e.id)
    )


@dataclass(frozen=True)
class CourseLine:
    """One row of the learner's course list: what the dashboard shows, nothing more."""

    course_id: int
    title: str
    assigned: bool
    deadline: dt.datetime | None
    completed_at: dt.datetime | None
    done: int  #: completed required lessons
    total: int  #: required lessons
    #: An assigned task the learner has not acknowledged yet (the dashboard's notices).
    unread: bool = False


@functools.cache
def _course_lines_statement() -> Any:
    """Built once per process with bind parameters: constructing this select and its
    cache key on every dashboard view cost more than running it."""
    from lms_core.courses.models import Lesson
    from lms_core.learning.models import LessonProgress, ProgressStatus
    from lms_core.learning.services import year_total_expr

    user_id = bindparam("user_id", type_=Integer)
    total = (
        select(func.count(Lesson.id))
        .where(Lesson.course_id == Enrolment.course_id, Lesson.required.is_(True))
        .correlate(Enrolment)
        .scalar_subquery()
    )
    done = (
        select(func.count(LessonProgress.id))
        .join(Lesson, Lesson.id == LessonProgress.lesson_id)
        .where(
            Lesson.course_id == Enrolment.course_id,
            Lesson.required.is_(True),
            LessonProgress.user_id == user_id,
            LessonProgress.status == ProgressStatus.COMPLETED,
        )
        .correlate(Enrolment)
        .scalar_subquery()
    )
    year_ms = year_total_expr(user_id, bindparam("first_day", type_=Date), bindparam("last_day", type_=Date))
    return (
        select(
            Enrolment.id,
            Enrolment.course_id,
            Course.title,
            Enrolment.source,
            Enrolment.deadline,
            Enrolment.completed_at,
            done,
            total,
            year_ms,
            Enrolment.notice_read_at,
        )
        .join(Course, Course.id == Enrolment.course_id)
        .where(Enrolment.user_id == user_id)
    )


def course_lines(user: User, year: int) -> tuple[list[CourseLine], int | None]:
    """The learner's courses with progress, in one statement of plain columns.

    The dashboard is the most visited page: correlated counts instead of a second
    grouped query, and no ORM entities (the same definition of progress as
    ``learning.services.progress_by_course``). The year's credited milliseconds
    (Beijing calendar, from the daily totals) ride along as an uncorrelated
    subquery, evaluated once; they are ``None`` when the learner has no courses
    (no row to carry them).
    """
    rows = db.session.execute(
        _course_lines_statement(),
        {"user_id": user.id, "first_day": dt.date(year, 1, 1), "last_day": dt.date(year, 12, 31)},
    ).all()
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    rows = sorted(
        rows, key=lambda r: (r.source != EnrolmentSource.ASSIGNED, r.completed_at is not None, r.deadline or far, -r.id)
    )
    lines = [
        CourseLine(
            r.course_id,
            r.title,
            r.source == EnrolmentSource.ASSIGNED,
            r.deadline,
            r.completed_at,
            int(r[6] or 0),
            int(r[7] or 0),
            r.source == EnrolmentSource.ASSIGNED and r.notice_read_at is None and r.completed_at is None,
        )
        for r in rows
    ]
    return lines, (int(rows[0][8] or 0) if rows else None)


def mark_notice_read(user: User, course_id: int) -> bool:
    """Dismiss the dashboard notice of an assigned course (does not commit); False if there is none."""
    enrolment = db.session.execute(
        select(Enrolment).filter_by(user_id=user.id, course_id=course_id)
    ).scalar_one_or_none()
    if enrolment is None or enrolment.source != EnrolmentSource.ASSIGNED:
        return False
    if enrolment.notice_read_at is None:
        enrolment.notice_read_at = utcnow()
    return True
