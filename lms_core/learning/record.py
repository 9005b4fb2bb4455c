"""学习档案: a learner's own study by year (lessons, sessions, credited time).

Credited time comes from the ledger (``learning_intervals``), dated like the daily
totals (the Beijing day an interval was credited), so the lessons of a year add up
to the year's total on the dashboard.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from lms_core.courses.models import Course, Lesson
from lms_core.extensions import db
from lms_core.i18n import SHANGHAI
from lms_core.learning.models import LearningInterval, LearningSession, LessonProgress, ProgressStatus
from lms_core.learning.services import credited_ms_in_year

#: Sessions listed per year page (the counts cover all of them).
SESSION_LIMIT = 100


def year_bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    """The Beijing calendar year as a UTC half-open range."""
    start = dt.datetime(year, 1, 1, tzinfo=SHANGHAI).astimezone(dt.UTC)
    return start, dt.datetime(year + 1, 1, 1, tzinfo=SHANGHAI).astimezone(dt.UTC)


@dataclass
class LessonLine:
    course_title: str
    lesson_title: str
    credited_ms: int
    sessions: int
    completed_at: dt.datetime | None


@dataclass
class YearRecord:
    year: int
    years: list[int]  #: years with any study, newest first (always includes ``year``)
    credited_ms: int
    lessons: list[LessonLine]
    sessions: list[tuple[LearningSession, str, str]]  #: session, lesson title, course title
    session_count: int
    completed: int


def years_with_study(user_id: int, current: int) -> list[int]:
    first = db.session.execute(
        select(func.min(LearningSession.started_at)).where(LearningSession.user_id == user_id)
    ).scalar_one()
    if first is None:
        return [current]
    if first.tzinfo is None:  # SQLite returns aggregates naive (UTC)
        first = first.replace(tzinfo=dt.UTC)
    start = min(first.astimezone(SHANGHAI).year, current)
    return list(range(current, start - 1, -1))


def year_record(user_id: int, year: int, current: int) -> YearRecord:
    start, end = year_bounds(year)
    credited = dict(
        db.session.execute(
            select(LearningInterval.lesson_id, func.sum(LearningInterval.credited_ms))
            .where(
                LearningInterval.user_id == user_id, LearningInterval.wall_end >= start, LearningInterval.wall_end < end
            )
            .group_by(LearningInterval.lesson_id)
        ).all()
    )
    session_counts = dict(
        db.session.execute(
            select(LearningSession.lesson_id, func.count())
            .where(
                LearningSession.user_id == user_id,
                LearningSession.started_at >= start,
                LearningSession.started_at < end,
            )
            .group_by(LearningSession.lesson_id)
        ).all()
    )
    completions = dict(
        db.session.execute(
            select(LessonProgress.lesson_id, LessonProgress.completed_at).where(
                LessonProgress.user_id == user_id,
                LessonProgress.status == ProgressStatus.COMPLETED,
                LessonProgress.completed_at >= start,
                LessonProgress.completed_at < end,
            )
        ).all()
    )
    lesson_ids = set(credited) | set(session_counts) | set(completions)
    titles = (
        {
            row.id: row
            for row in db.session.execute(
                select(Lesson.id, Lesson.title, Course.title.label("course_title"))
                .join(Course, Course.id == Lesson.course_id)
                .where(Lesson.id.in_(lesson_ids))
            ).all()
        }
        if lesson_ids
        else {}
    )
    lessons = sorted(
        (
            LessonLine(
                titles[i].course_title,
                titles[i].title,
                int(credited.get(i) or 0),
                int(session_counts.get(i) or 0),
                completions.get(i),
            )
            for i in lesson_ids
            if i in titles
        ),
        key=lambda line: (line.course_title, line.lesson_title),
    )
    sessions = [
        (s, lesson_title, course_title)
        for s, lesson_title, course_title in db.session.execute(
            select(LearningSession, Lesson.title, Course.title)
            .join(Lesson, Lesson.id == LearningSession.lesson_id)
            .join(Course, Course.id == Lesson.course_id)
            .where(
                LearningSession.user_id == user_id,
                LearningSession.started_at >= start,
                LearningSession.started_at < end,
            )
            .order_by(LearningSession.started_at.desc())
            .limit(SESSION_LIMIT)
        ).all()
    ]
    return YearRecord(
        year=year,
        years=years_with_study(user_id, current),
        credited_ms=credited_ms_in_year(user_id, year),
        lessons=lessons,
        sessions=sessions,
        session_count=sum(session_counts.values()),
        completed=len(completions),
    )
