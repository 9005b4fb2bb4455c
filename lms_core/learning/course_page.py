"""What a learner sees of a course, in two queries.

The course page is among the most visited pages (issue 3's benchmark): the course
with its topic, the viewer's enrolment and the instructors' names come in one row;
sections, lessons and the viewer's progress marks in one ordered outer join. Both
statements are built once per process with bind parameters: building a select and
its cache key on every view cost more than running it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, bindparam, select

from lms_core.accounts.models import User
from lms_core.courses.models import Course, Lesson, Section
from lms_core.courses.services import instructor_names_column
from lms_core.enrolments.models import Enrolment
from lms_core.extensions import db
from lms_core.learning.models import LessonProgress, ProgressStatus


@dataclass(frozen=True)
class CourseHead:
    course: Course
    enrolment: Enrolment | None  # the viewer's
    instructors: str  # "张三、李四", in the order they were added as users


@dataclass(frozen=True)
class LessonMark:
    """The viewer's progress on one lesson, as the outline shows it."""

    status: ProgressStatus
    coverage_bp: int


Outline = list[tuple[Section, list[Lesson]]]


@functools.cache
def _head_statement(dialect: str) -> Any:
    return (
        select(Course, Enrolment, instructor_names_column(dialect).label("instructors"))
        .outerjoin(
            Enrolment, and_(Enrolment.course_id == Course.id, Enrolment.user_id == bindparam("user_id", type_=Integer))
        )
        .where(Course.id == bindparam("course_id", type_=Integer))
    )


def course_head(course_id: int, user: User) -> CourseHead | None:
    """The course (with its topic), the user's enrolment and the instructors; None: no such course."""
    statement = _head_statement(db.session.get_bind().dialect.name)
    row = db.session.execute(statement, {"course_id": course_id, "user_id": user.id}).first()
    if row is None:
        return None
    return CourseHead(row[0], row[1], row.instructors or "")


@functools.cache
def _outline_statement() -> Any:
    return (
        select(Section, Lesson, LessonProgress.status, LessonProgress.coverage_bp)
        .outerjoin(Lesson, and_(Lesson.section_id == Section.id, Lesson.archived_at.is_(None)))
        .outerjoin(
            LessonProgress,
            and_(LessonProgress.lesson_id == Lesson.id, LessonProgress.user_id == bindparam("user_id", type_=Integer)),
        )
        .where(Section.course_id == bindparam("course_id", type_=Integer))
        .order_by(Section.position, Section.id, Lesson.position, Lesson.id)
    )


def outline_with_marks(course_id: int, user_id: int) -> tuple[Outline, dict[int, LessonMark]]:
    """Sections with their lessons in order, and the user's marks by lesson id.

    Rows come sorted by section, so each section's lessons are consecutive; a section
    without lessons comes as one row without a lesson, a lesson never opened as one
    without progress.
    """
    outline: Outline = []
    marks: dict[int, LessonMark] = {}
    for section, lesson, status, coverage_bp in db.session.execute(
        _outline_statement(), {"course_id": course_id, "user_id": user_id}
    ):
        if not outline or outline[-1][0] is not section:
            outline.append((section, []))
        if lesson is None:
            continue
        outline[-1][1].append(lesson)
        if status is not None:
            marks[lesson.id] = LessonMark(status, coverage_bp)
    return outline, marks
