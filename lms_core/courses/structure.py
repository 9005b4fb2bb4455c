"""Edit, reorder and delete sections and lessons.

A lesson learners have worked on is archived, not deleted: their progress,
sessions, credited intervals, attempts and answers reference it, and study time
is evidence. An archived lesson leaves the outline and stops counting towards
completion (it becomes optional); its records stay, reachable by auditors.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import exists, or_, select

from lms_core.accounts.models import User
from lms_core.courses.models import Lesson, Section
from lms_core.courses.services import CourseError, require_edit
from lms_core.db import utcnow
from lms_core.events.services import emit
from lms_core.extensions import db


def rename_section(author: User, section: Section, title: str) -> None:
    require_edit(author, section.course)
    title = title.strip()
    if not title or len(title) > 200:
        raise CourseError(_("section title is required"))
    section.title = title
    emit("section.updated", actor=author, obj=section, course_id=section.course_id, payload={"title": title})


def _swap(a: Section | Lesson, b: Section | Lesson) -> None:
    # (section_id, position) is unique and not deferrable: go through a free value.
    first, second = a.position, b.position
    a.position = -1 - max(first, second)
    db.session.flush()
    b.position = first
    db.session.flush()
    a.position = second
    db.session.flush()


def move_section(author: User, section: Section, step: int) -> bool:
    """Move one place up (-1) or down (+1); False at either end."""
    require_edit(author, section.course)
    siblings = sorted(section.course.sections, key=lambda s: (s.position, s.id))
    index = siblings.index(section) + step
    if not 0 <= index < len(siblings):
        return False
    _swap(section, siblings[index])
    emit("section.moved", actor=author, obj=section, course_id=section.course_id, payload={"step": step})
    return True


def delete_section(author: User, section: Section) -> None:
    """Only an empty section goes (archived lessons count: they keep their section)."""
    require_edit(author, section.course)
    if section.lessons:
        raise CourseError(_("only an empty section can be deleted: delete or archive its lessons first"))
    emit("section.deleted", actor=author, obj=section, course_id=section.course_id, payload={"title": section.title})
    db.session.delete(section)


def update_lesson(author: User, lesson: Lesson, *, title: str, required: bool) -> None:
    require_edit(author, lesson.course)
    title = title.strip()
    if not title or len(title) > 200:
        raise CourseError(_("lesson title is required"))
    if lesson.archived_at is not None:
        raise CourseError(_("an archived lesson cannot be edited"))
    lesson.title, lesson.required = title, required
    emit(
        "lesson.updated",
        actor=author,
        obj=lesson,
        course_id=lesson.course_id,
        payload={"title": title, "required": required},
    )


def move_lesson(author: User, lesson: Lesson, step: int) -> bool:
    require_edit(author, lesson.course)
    siblings = sorted(
        (item for item in lesson.section.lessons if item.archived_at is None), key=lambda item: (item.position, item.id)
    )
    index = siblings.index(lesson) + step
    if not 0 <= index < len(siblings):
        return False
    _swap(lesson, siblings[index])
    emit("lesson.moved", actor=author, obj=lesson, course_id=lesson.course_id, payload={"step": step})
    return True


def has_learner_records(lesson: Lesson) -> bool:
    """Any progress, session, attempt or survey answer of any learner on the lesson."""
    from lms_core.learning.models import LearningSession, LessonFeedback, LessonProgress
    from lms_core.quizzes.models import Attempt

    return bool(
        db.session.execute(
            select(
                or_(
                    *(
                        exists().where(model.lesson_id == lesson.id)
                        for model in (LessonProgress, LearningSession, Attempt, LessonFeedback)
                    )
                )
            )
        ).scalar()
    )


def delete_lesson(author: User, lesson: Lesson) -> bool:
    """Delete the lesson, or archive it if learners have records on it; True if archived."""
    require_edit(author, lesson.course)
    if lesson.archived_at is not None:
        return True
    if has_learner_records(lesson):
        lesson.archived_at = utcnow()
        lesson.required = False  # no longer counts towards anyone's completion
        emit("lesson.archived", actor=author, obj=lesson, course_id=lesson.course_id, payload={"title": lesson.title})
        return True
    emit("lesson.deleted", actor=author, obj=lesson, course_id=lesson.course_id, payload={"title": lesson.title})
    lesson.section.lessons.remove(lesson)
    db.session.delete(lesson)
    return False
