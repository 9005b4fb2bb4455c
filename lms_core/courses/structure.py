"""Edit, reorder and delete sections and lessons.

A lesson learners have worked on is archived, not deleted: their progress,
sessions, credited intervals, attempts and answers reference it, and study time
is evidence. An archived lesson leaves the outline and stops counting towards
completion (it becomes optional); its records stay, reachable by auditors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import exists, func, or_, select, union

from lms_core.accounts.models import User
from lms_core.courses.models import Lesson, LessonKind, Section
from lms_core.courses.services import MEDIA_FOR_KIND, CourseError, check_rules, require_edit
from lms_core.db import utcnow
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.i18n import label
from lms_core.media.models import MediaFile


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


#: What a lesson's learners need to do, per kind: the fields an author may change.
KIND_RULES: dict[LessonKind, tuple[str, ...]] = {
    LessonKind.VIDEO: ("completion_threshold_pct",),
    LessonKind.DOCUMENT: ("min_read_seconds",),
    LessonKind.QUIZ: ("passing_score_pct", "max_attempts", "show_correct_answers"),
    LessonKind.SURVEY: (),
}


@dataclass
class LessonEdit:
    """What an edit changed, and how many learners already have records on the lesson."""

    changed: list[str] = field(default_factory=list)
    learners: int = 0

    @property
    def content_changed(self) -> bool:
        """The file or a completion rule changed (not only the title, the section or the optional flag)."""
        return bool(set(self.changed) - {"title", "required", "section"})


def update_lesson(
    author: User,
    lesson: Lesson,
    *,
    title: str,
    required: bool,
    section: Section | None = None,
    media: MediaFile | None = None,
    **rules: Any,
) -> LessonEdit:
    """Change a lesson: title, optional flag, section, its file and its kind's rules (does not commit).

    Learners' records are never touched: progress, sessions, the interval ledger,
    attempts and answers stay as they are. Completion already earned stays; the
    others are judged by the new rules from their next step on (see docs/authoring.md).
    ``rules`` not given (None) keep their value; rules of another kind are refused.
    """
    require_edit(author, lesson.course)
    title = title.strip()
    if not title or len(title) > 200:
        raise CourseError(_("lesson title is required"))
    if lesson.archived_at is not None:
        raise CourseError(_("an archived lesson cannot be edited"))
    edit = LessonEdit(learners=learners_with_records(lesson))
    if (lesson.title, lesson.required) != (title, required):
        edit.changed += [
            name
            for name, old, new in (("title", lesson.title, title), ("required", lesson.required, required))
            if old != new
        ]
        lesson.title, lesson.required = title, required
    if section is not None and section.id != lesson.section_id:
        if section.course_id != lesson.course_id:
            raise CourseError(_("a lesson can only move to a section of its own course"))
        move_to_section(lesson, section)
        edit.changed.append("section")
    if media is not None and media.id != lesson.media_id:
        expected = MEDIA_FOR_KIND.get(lesson.kind)
        if expected is None or media.kind != expected:
            raise CourseError(_("a video lesson needs a video and a document lesson a PDF"))
        lesson.media = media
        lesson.media_id = media.id
        edit.changed.append("media")
    allowed = KIND_RULES[lesson.kind]
    for name, value in rules.items():
        if value is None:
            continue
        if name not in allowed:
            raise CourseError(_("a %(kind)s lesson has no such setting", kind=label(lesson.kind)))
        if getattr(lesson, name) != value:
            setattr(lesson, name, value)
            edit.changed.append(name)
    check_rules(lesson)
    if edit.changed:
        emit(
            "lesson.updated",
            actor=author,
            obj=lesson,
            course_id=lesson.course_id,
            payload={
                "title": title,
                "required": required,
                "changed": edit.changed,
                "media_id": lesson.media_id,
                "learners_with_records": edit.learners,
            },
        )
    return edit


def move_to_section(lesson: Lesson, section: Section) -> None:
    """Put the lesson last in another section of the course (its records go with it)."""
    # (section_id, position) is unique: compute the new place without flushing half a move.
    with db.session.no_autoflush:
        position = max((item.position for item in section.lessons), default=0) + 1
        lesson.section = section
        lesson.position = position
    db.session.flush()


def learners_with_records(lesson: Lesson) -> int:
    """How many people have progress, an attempt or a survey answer on the lesson."""
    from lms_core.learning.models import LessonFeedback, LessonProgress
    from lms_core.quizzes.models import Attempt

    people = union(
        *(
            select(model.user_id).where(model.lesson_id == lesson.id)
            for model in (LessonProgress, Attempt, LessonFeedback)
        )
    ).subquery()
    return int(db.session.execute(select(func.count()).select_from(people)).scalar_one())


def records_by_lesson(course_id: int) -> dict[int, int]:
    """``lesson id → people with records`` for a course's lessons (the course page warns with it)."""
    from lms_core.learning.models import LessonFeedback, LessonProgress
    from lms_core.quizzes.models import Attempt

    rows = union(
        *(
            select(model.lesson_id, model.user_id).where(
                model.lesson_id.in_(select(Lesson.id).where(Lesson.course_id == course_id))
            )
            for model in (LessonProgress, Attempt, LessonFeedback)
        )
    ).subquery()
    counted = select(rows.c.lesson_id, func.count()).group_by(rows.c.lesson_id)
    return {int(lesson_id): int(n) for lesson_id, n in db.session.execute(counted).all()}


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
