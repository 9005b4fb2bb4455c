"""What quiz and survey questions share as parts of a lesson: moving one, removing one.

Both are ordered lists on a lesson that its course's editors change; a question that
learners already met (an attempt drew it, someone answered it) is archived, never
deleted, so their records keep it. Each step emits ``lesson.updated`` naming the
question under the kind's payload key (``quiz_question``, ``survey_question``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from flask_babel import gettext as _

from lms_core.accounts.models import User
from lms_core.courses.models import Lesson
from lms_core.courses.ordering import move_one_place
from lms_core.courses.services import CourseError, require_edit
from lms_core.db import utcnow
from lms_core.events.services import emit
from lms_core.extensions import db


class LessonQuestion(Protocol):
    id: int
    lesson_id: int
    position: int
    archived_at: dt.datetime | None


Q = TypeVar("Q", bound=LessonQuestion)


def editable_lesson(author: User, question: LessonQuestion) -> Lesson:
    """The question's lesson, once the author may edit its course (else ``AccessDenied``)."""
    lesson = db.session.get(Lesson, question.lesson_id)
    assert lesson is not None
    require_edit(author, lesson.course)
    return lesson


def emit_change(author: User, lesson: Lesson, key: str, question_id: int, action: str, **payload: Any) -> None:
    emit(
        "lesson.updated",
        actor=author,
        obj=lesson,
        course_id=lesson.course_id,
        payload={key: question_id, "action": action, **payload},
    )


def move(
    author: User,
    question: Q,
    step: int,
    *,
    active: Callable[[Lesson], Sequence[Q]],
    key: str,
    error: type[CourseError] = CourseError,
) -> bool:
    """One place up (-1) or down (+1) among ``active(lesson)``; False at either end."""
    lesson = editable_lesson(author, question)
    items = active(lesson)
    if question not in items:
        raise error(_("an archived question cannot be moved"))
    if not move_one_place(items, question, step):
        return False
    emit_change(author, lesson, key, question.id, "moved")
    return True


def remove(author: User, question: LessonQuestion, *, met: Callable[[Any], bool], key: str) -> bool:
    """Delete the question, or archive it when ``met(question)`` (learners have it); True if archived."""
    lesson = editable_lesson(author, question)
    archived = met(question)
    if archived:
        question.archived_at = question.archived_at or utcnow()
    else:
        db.session.delete(question)
    emit_change(author, lesson, key, question.id, "archived" if archived else "deleted")
    return archived
