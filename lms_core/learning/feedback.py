"""训中学情快速评估: post-lesson ratings, and the reports per lesson and per instructor."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import case, func, select

from lms_core.accounts.models import User
from lms_core.authz import scope_condition
from lms_core.courses.models import Course, CourseInstructor, Lesson, LessonKind
from lms_core.db import utcnow
from lms_core.enrolments.models import Enrolment
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.i18n import TIMEZONE
from lms_core.learning.models import LessonFeedback
from lms_core.learning.services import evaluate_completion, progress_for
from lms_core.orgs.models import OrgUnit

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


@dataclass(frozen=True)
class CourseFeedbackScore:
    """One course's feedback score over a period (a row of :func:`course_feedback_scores`)."""

    course_id: int
    code: str
    title: str
    #: The unit that owns the course (its name).
    unit: str
    #: People who answered at least one rated question of the course in the period.
    responses: int
    #: Rated answers counted (a survey with three rated items gives three per person).
    ratings: int
    #: Mean of all rated answers put on a 1–5 scale (a 1–10 item's 10 counts as 5), two decimals.
    mean: float


def course_feedback_scores(
    viewer: User,
    start: dt.date,
    end: dt.date,
    *,
    root: OrgUnit | None = None,
    min_responses: int = 1,
    limit: int | None = None,
) -> list[CourseFeedbackScore]:
    """Courses by their learners' feedback, worst first: for "the courses with the worst scores".

    - **Scope**: courses whose owning unit lies in ``viewer``'s ``reports.view`` scope
      (org admins and auditors their subtree, site admins everything), filtered in
      SQL; ``root`` narrows further to one unit's subtree.
    - **Period**: answers whose last change (the first submission, or the latest
      edit: one answer per person and lesson) falls on a Beijing day in
      ``[start, end)``; ``end`` is exclusive, so a year is ``date(y,1,1)`` to ``date(y+1,1,1)``.
    - **Score**: every rated answer of the course's surveys, put on a 1–5 scale
      (``1 + 4 * (score - 1) / (points - 1)``, so scales of 3, 5 or 10 points mix
      fairly), averaged over answers. Choice and open questions do not count.
    - **Rows**: courses with at least ``min_responses`` people answering, ordered by
      mean ascending, then fewer responses first, then course id; at most ``limit``.
    """
    begin_utc, end_utc = (_beijing_midnight_utc(day) for day in (start, end))
    when = func.coalesce(LessonFeedback.updated_at, LessonFeedback.created_at)
    mean = func.avg(LessonFeedback.rating * 1.0)  # today's surveys rate 1–5 already
    responses = func.count(func.distinct(LessonFeedback.user_id))
    stmt = (
        select(
            Course.id,
            Course.code,
            Course.title,
            OrgUnit.name,
            responses.label("responses"),
            func.count(LessonFeedback.id),
            mean.label("mean"),
        )
        .join(LessonFeedback, LessonFeedback.course_id == Course.id)
        .join(OrgUnit, OrgUnit.id == Course.owner_unit_id)
        .where(
            when >= begin_utc,
            when < end_utc,
            LessonFeedback.rating.is_not(None),
            scope_condition(viewer, "reports.view", OrgUnit.path),
        )
        .group_by(Course.id, Course.code, Course.title, OrgUnit.name)
        .having(responses >= max(min_responses, 1))
        .order_by(mean, responses, Course.id)
    )
    if root is not None:
        stmt = stmt.where(OrgUnit.path.startswith(root.path, autoescape=True))
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        CourseFeedbackScore(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), round(float(r[6]), 2))
        for r in db.session.execute(stmt).all()
    ]


def _beijing_midnight_utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(TIMEZONE)).astimezone(dt.UTC)
