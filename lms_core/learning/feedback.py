"""训中学情快速评估: post-lesson ratings, and the reports per lesson and per instructor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import case, func, select

from lms_core.accounts.models import User
from lms_core.courses.models import Course, CourseInstructor, Lesson, LessonKind
from lms_core.db import utcnow
from lms_core.enrolments.models import Enrolment
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.learning.models import LessonFeedback
from lms_core.learning.services import evaluate_completion, progress_for

MAX_COMMENT = 1000


class FeedbackError(ValueError):
    pass


def submit_feedback(user: User, lesson: Lesson, enrolment: Enrolment, rating: int, comment: str) -> tuple[bool, bool]:
    """Record (or update) a rating; a survey lesson completes on submission."""
    if not 1 <= rating <= 5:
        raise FeedbackError(_("rating must be 1 to 5"))
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise FeedbackError(_("comment is longer than %(max)s characters", max=MAX_COMMENT))
    mine = select(LessonFeedback).filter_by(user_id=user.id, lesson_id=lesson.id)
    row = db.session.execute(mine).scalar_one_or_none()
    if row is None:
        row = LessonFeedback(
            user_id=user.id, lesson_id=lesson.id, course_id=lesson.course_id, rating=rating, comment=comment
        )
        db.session.add(row)
        updated = False
    else:
        # The same row, edited: one answer per person and lesson, and the page says so.
        updated = (row.rating, row.comment) != (rating, comment)
        row.rating, row.comment = rating, comment
        if updated:
            row.updated_at = utcnow()
    emit(
        "survey.submitted",
        actor=user,
        obj=lesson,
        course_id=lesson.course_id,
        payload={
            "lesson_id": lesson.id,
            "registration": enrolment.registration,
            "rating": rating,
            "comment": comment,
            "updated": updated,
        },
    )
    if lesson.kind == LessonKind.SURVEY:
        return evaluate_completion(user, lesson, progress_for(user.id, lesson, lock=True), enrolment, rule_met=True)
    return False, False


@dataclass
class RatingRow:
    key: int
    label: str
    count: int
    average: float
    #: How many gave 1, 2, 3, 4 and 5 (the report draws it as a stacked bar).
    distribution: tuple[int, ...] = (0, 0, 0, 0, 0)

    @property
    def shares(self) -> list[tuple[int, int, float]]:
        """``(rating, responses, percent of responses)`` for each rating 1–5."""
        return [(n + 1, c, 100 * c / self.count if self.count else 0.0) for n, c in enumerate(self.distribution)]


def _rating_columns() -> list[Any]:
    return [
        func.count(LessonFeedback.id),
        func.avg(LessonFeedback.rating),
        *(func.sum(case((LessonFeedback.rating == k, 1), else_=0)) for k in range(1, 6)),
    ]


def _row(r: Any) -> RatingRow:
    return RatingRow(r[0], r[1], int(r[2]), round(float(r[3]), 2), tuple(int(c or 0) for c in r[4:9]))


def ratings_by_lesson(course: Course) -> list[RatingRow]:
    rows = db.session.execute(
        select(Lesson.id, Lesson.title, *_rating_columns())
        .join(LessonFeedback, LessonFeedback.lesson_id == Lesson.id)
        .where(Lesson.course_id == course.id)
        .group_by(Lesson.id, Lesson.title)
        .order_by(Lesson.id)
    ).all()
    return [_row(r) for r in rows]


def ratings_by_instructor(course_ids: list[int] | None = None) -> list[RatingRow]:
    stmt = (
        select(User.id, User.full_name, *_rating_columns())
        .join(CourseInstructor, CourseInstructor.user_id == User.id)
        .join(LessonFeedback, LessonFeedback.course_id == CourseInstructor.course_id)
        .group_by(User.id, User.full_name)
        .order_by(User.full_name)
    )
    if course_ids is not None:
        stmt = stmt.where(CourseInstructor.course_id.in_(course_ids))
    return [_row(r) for r in db.session.execute(stmt).all()]


def comments(course: Course, limit: int = 50) -> list[LessonFeedback]:
    return list(
        db.session.execute(
            select(LessonFeedback)
            .where(LessonFeedback.course_id == course.id, LessonFeedback.comment != "")
            .order_by(LessonFeedback.id.desc())
            .limit(limit)
        ).scalars()
    )
