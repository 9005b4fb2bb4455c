"""Authoring and catalogue queries."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Boolean, Integer, Text, bindparam, exists, func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from lms_core.accounts.models import User
from lms_core.authz import AccessDenied, can, register_scope_resolver
from lms_core.courses.models import Course, CourseInstructor, Lesson, LessonKind, Section, Topic, search_fold
from lms_core.enrolments.models import Enrolment
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.i18n import label
from lms_core.media.models import MediaFile, MediaKind
from lms_core.orgs.models import OrgUnit
from lms_core.unit_of_work import ServiceError

register_scope_resolver(Course, lambda c: c.owner_unit)
register_scope_resolver(Section, lambda s: s.course.owner_unit)
register_scope_resolver(Lesson, lambda lesson: lesson.course.owner_unit)


class CourseError(ServiceError):
    """Invalid authoring change; the message is shown to the user."""


def instructor_names_column(dialect: str) -> Any:
    """``张三、李四`` for the outer query's ``Course``, by user id, as a correlated subquery.

    PostgreSQL orders inside the aggregate. SQLite before 3.44 (Debian 12 ships 3.40)
    has no ORDER BY in aggregates; it concatenates in the order rows arrive, so they
    come from a subquery ordered by user id.
    """
    people = (
        select(User.id, User.full_name)
        .join(CourseInstructor, CourseInstructor.user_id == User.id)
        .where(CourseInstructor.course_id == Course.id)
    )
    if dialect == "postgresql":
        names = func.string_agg(User.full_name, aggregate_order_by(literal("、"), User.id))
        return people.with_only_columns(names).scalar_subquery()
    # A derived table does not auto-correlate: name the outer Course explicitly.
    ordered = people.order_by(User.id).correlate(Course).subquery()
    return select(func.group_concat(ordered.c.full_name, "、")).scalar_subquery()


def is_instructor(user: Any, course: Course) -> bool:
    return (
        db.session.execute(select(CourseInstructor.user_id).filter_by(course_id=course.id, user_id=user.id)).first()
        is not None
    )


def can_edit(user: Any, course: Course) -> bool:
    """Course authors: the course's instructors, or authors over the owning unit."""
    if not getattr(user, "is_authenticated", False):
        return False
    if can(user, "course.author") and is_instructor(user, course):
        return True
    return can(user, "course.author", course) and can(user, "org.manage", course.owner_unit) or can(user, "site.manage")


def require_edit(user: Any, course: Course) -> None:
    if not can_edit(user, course):
        raise AccessDenied("course.author")


def topic_named(name: str) -> Topic | None:
    name = name.strip()
    if not name:
        return None
    topic = db.session.execute(select(Topic).filter_by(name=name)).scalar_one_or_none()
    if topic is None:
        topic = Topic(name=name)
        db.session.add(topic)
        db.session.flush()
    return topic


def create_course(
    author: User,
    *,
    code: str,
    title: str,
    description: str = "",
    topic: str = "",
    nominal_hours_centi: int = 100,
    required: bool = False,
    owner_unit: OrgUnit | None = None,
) -> Course:
    if not can(author, "course.author"):
        raise AccessDenied("course.author")
    code, title = code.strip(), title.strip()
    if not code or not title:
        raise CourseError(_("code and title are required"))
    if nominal_hours_centi < 0 or nominal_hours_centi > 100_000:
        raise CourseError(_("nominal hours out of range"))
    if db.session.execute(select(Course.id).filter_by(code=code)).first():
        raise CourseError(_("course code %(code)s already exists", code=code))
    course = Course(
        code=code,
        title=title,
        description=description,
        topic=topic_named(topic),
        nominal_hours_centi=nominal_hours_centi,
        required=required,
        owner_unit=owner_unit or author.org_unit,
        created_by_id=author.id,
    )
    course.instructors.append(author)
    db.session.add(course)
    db.session.flush()
    emit("course.created", actor=author, obj=course, course_id=course.id, payload={"code": code, "title": title})
    return course


def update_course(author: User, course: Course, **fields: Any) -> None:
    require_edit(author, course)
    if "topic" in fields:
        course.topic = topic_named(fields.pop("topic") or "")
    for name in ("title", "description", "nominal_hours_centi", "required"):
        if name in fields:
            setattr(course, name, fields[name])
    if not course.title.strip():
        raise CourseError(_("title is required"))
    emit("course.updated", actor=author, obj=course, course_id=course.id)


def set_published(author: User, course: Course, published: bool) -> None:
    require_edit(author, course)
    if published:
        problems = publish_problems(course)
        if problems:
            raise CourseError("; ".join(problems))
    course.published = published
    emit("course.published" if published else "course.unpublished", actor=author, obj=course, course_id=course.id)


def set_quiz_settings(author: User, lesson: Lesson, *, show_correct_answers: bool) -> None:
    """Change a quiz's review setting (does not commit)."""
    require_edit(author, lesson.course)
    if lesson.show_correct_answers != show_correct_answers:
        lesson.show_correct_answers = show_correct_answers
        emit(
            "lesson.updated",
            actor=author,
            obj=lesson,
            course_id=lesson.course_id,
            payload={"show_correct_answers": show_correct_answers},
        )


def publish_problems(course: Course) -> list[str]:
    """Reasons the course cannot be published yet."""
    problems = []
    lessons = [lesson for s in course.sections for lesson in s.lessons if lesson.archived_at is None]
    if not lessons:
        problems.append(_("the course has no lessons"))
    for lesson in lessons:
        if lesson.kind in (LessonKind.VIDEO, LessonKind.DOCUMENT) and lesson.media_id is None:
            problems.append(_("lesson %(title)s has no file", title=lesson.title))
        if lesson.kind == LessonKind.QUIZ and not lesson_has_questions(lesson):
            problems.append(_("quiz %(title)s has no questions", title=lesson.title))
        if lesson.kind == LessonKind.SURVEY and not survey_has_questions(lesson):
            problems.append(_("survey %(title)s has no questions", title=lesson.title))
    return problems


def lesson_has_questions(lesson: Lesson) -> bool:
    from lms_core.quizzes.models import Question

    active = exists().where(Question.lesson_id == lesson.id, Question.archived_at.is_(None))
    return bool(db.session.execute(select(active)).scalar())


def survey_has_questions(lesson: Lesson) -> bool:
    from lms_core.learning.models import SurveyQuestion

    active = exists().where(SurveyQuestion.lesson_id == lesson.id, SurveyQuestion.archived_at.is_(None))
    return bool(db.session.execute(select(active)).scalar())


def add_section(author: User, course: Course, title: str) -> Section:
    require_edit(author, course)
    if not title.strip():
        raise CourseError(_("section title is required"))
    position = max((s.position for s in course.sections), default=0) + 1
    section = Section(course=course, title=title.strip(), position=position)
    db.session.add(section)
    db.session.flush()
    return section


#: Column defaults apply only at flush; the rules are checked before that.
LESSON_RULE_DEFAULTS: dict[str, Any] = {
    "completion_threshold_pct": 95,
    "min_read_seconds": 60,
    "passing_score_pct": 60,
    "max_attempts": 3,
    "shuffle_questions": True,
    "show_correct_answers": False,
}
MEDIA_FOR_KIND = {LessonKind.VIDEO: MediaKind.VIDEO, LessonKind.DOCUMENT: MediaKind.DOCUMENT}


def add_lesson(
    author: User,
    section: Section,
    *,
    title: str,
    kind: LessonKind,
    media: MediaFile | None = None,
    required: bool = True,
    **rules: Any,
) -> Lesson:
    course = section.course
    require_edit(author, course)
    if not title.strip():
        raise CourseError(_("lesson title is required"))
    expected = MEDIA_FOR_KIND.get(kind)
    if media is not None and media.kind != expected:
        if expected is None:
            raise CourseError(_("a %(kind)s lesson takes no file", kind=label(kind)))
        raise CourseError(_("a %(kind)s lesson needs a %(file)s file", kind=label(kind), file=label(expected)))
    position = max((lesson.position for lesson in section.lessons), default=0) + 1
    lesson = Lesson(
        section=section,
        course_id=course.id,
        title=title.strip(),
        kind=kind,
        media=media,
        required=required,
        position=position,
    )
    for name, default in LESSON_RULE_DEFAULTS.items():
        value = rules.get(name)
        setattr(lesson, name, default if value is None else value)
    check_rules(lesson)
    db.session.add(lesson)
    db.session.flush()
    if kind == LessonKind.SURVEY:
        _add_default_survey_questions(lesson)
    emit("lesson.created", actor=author, obj=lesson, course_id=course.id, payload={"kind": kind.value})
    return lesson


def _add_default_survey_questions(lesson: Lesson) -> None:
    """A new survey starts with the fixed form's questions: a 1–5 rating and an optional comment.

    The author edits from there (``learning.survey``). Here, not there: ``learning.survey``
    checks edit rights with this module's ``require_edit``, and a survey made here would
    otherwise close an import cycle.
    """
    from lms_core.learning.models import SurveyQuestion, SurveyQuestionKind

    for position, (kind, text, required) in enumerate(
        (
            (SurveyQuestionKind.RATING, _("How useful was this lesson? (1 = not at all, 5 = very)"), True),
            (SurveyQuestionKind.TEXT, _("Comments and suggestions"), False),
        ),
        start=1,
    ):
        db.session.add(
            SurveyQuestion(
                lesson_id=lesson.id, kind=kind, text=text, options=[], scale=5, required=required, position=position
            )
        )
    db.session.flush()


def check_rules(lesson: Lesson) -> None:
    if not 1 <= lesson.completion_threshold_pct <= 100:
        raise CourseError(_("completion threshold must be 1–100 %"))
    if not 0 <= lesson.passing_score_pct <= 100:
        raise CourseError(_("passing score must be 0–100 %"))
    if lesson.max_attempts < 0 or lesson.min_read_seconds < 0:
        raise CourseError(_("attempts and reading time cannot be negative"))


def add_instructor(author: User, course: Course, instructor: User) -> None:
    require_edit(author, course)
    if instructor not in course.instructors:
        course.instructors.append(instructor)


def _like_pattern(text: str) -> str:
    """``%text%`` for LIKE with the wildcards in ``text`` taken literally (escape ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@functools.cache
def _catalogue_statement(dialect: str, text: bool, topic: bool, required: bool, instructor: bool) -> Any:
    """The catalogue's select for one combination of filters, built once per process.

    Values arrive as bind parameters; building the select and its cache key on every
    search cost more than running it. Plain columns (no Course entities), with the
    viewer's enrolment as an EXISTS and the total as a window count: one query and
    one scan for the whole page.
    """
    enrolled = exists().where(
        Enrolment.course_id == Course.id, Enrolment.user_id == bindparam("user_id", type_=Integer)
    )
    stmt = (
        select(
            Course.id,
            Course.code,
            Course.title,
            Topic.name.label("topic_name"),
            Course.nominal_hours_centi,
            Course.required,
            enrolled.label("enrolled"),
            instructor_names_column(dialect).label("instructors"),
            func.count().over().label("total"),
        )
        .outerjoin(Topic, Topic.id == Course.topic_id)
        .where(Course.published.is_(True))
    )
    if text:
        stmt = stmt.where(Course.search_text.like(bindparam("text", type_=Text), escape="\\"))
    if topic:
        stmt = stmt.where(Course.topic_id == bindparam("topic_id", type_=Integer))
    if required:
        stmt = stmt.where(Course.required == bindparam("required", type_=Boolean))
    if instructor:
        stmt = stmt.where(
            exists().where(
                CourseInstructor.course_id == Course.id,
                CourseInstructor.user_id == User.id,
                User.full_name.ilike(bindparam("instructor", type_=Text), escape="\\"),
            )
        )
    return (
        stmt.order_by(Course.required.desc(), Course.title, Course.id)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


@dataclass
class CatalogueQuery:
    """One query object for the catalogue page (and any export of it).

    ``run`` answers rows with ``id, code, title, topic_name, nominal_hours_centi,
    required, enrolled, instructors`` (``enrolled``: whether ``viewer_id`` is
    enrolled; ``instructors``: their names, or None).
    """

    text: str = ""
    topic_id: int | None = None
    required: bool | None = None
    instructor: str = ""
    page: int = 1
    size: int = 20
    viewer_id: int | None = None

    def _params(self) -> tuple[tuple[bool, bool, bool, bool], dict[str, Any]]:
        text = search_fold(self.text.strip())
        shape = (bool(text), bool(self.topic_id), self.required is not None, bool(self.instructor))
        params: dict[str, Any] = {
            "user_id": self.viewer_id,
            "limit": self.size,
            "offset": (max(self.page, 1) - 1) * self.size,
        }
        if text:
            params["text"] = _like_pattern(text)
        if self.topic_id:
            params["topic_id"] = self.topic_id
        if self.required is not None:
            params["required"] = self.required
        if self.instructor:
            params["instructor"] = _like_pattern(self.instructor)
        return shape, params

    def run(self) -> tuple[list[Any], int]:
        """One page of courses and the total, in one scan (a window count rides along)."""
        shape, params = self._params()
        stmt = _catalogue_statement(db.session.get_bind().dialect.name, *shape)
        rows = _read(stmt, params).all()
        if rows:
            return list(rows), int(rows[0].total)
        if self.page <= 1:
            return [], 0
        # Past the last page: no row carried the total, so count separately.
        counted = select(func.count()).select_from(stmt.limit(None).offset(None).order_by(None).subquery())
        return [], int(db.session.execute(counted, params).scalar_one())


@functools.cache
def _topics_statement() -> Any:
    return select(Topic.id, Topic.name).order_by(Topic.name)


def topics() -> list[Any]:
    """Every topic as ``(id, name)`` rows, by name (the catalogue's filter)."""
    return list(_read(_topics_statement()))


def _read(statement: Any, params: dict[str, Any] | None = None) -> Any:
    """Run a column-only SELECT on the session's connection (same transaction).

    The ORM's execution path (compile state, entity setup) costs about a third more
    per query than Core's and buys nothing for rows of plain columns. Pending ORM
    changes are flushed first, as ``Session.execute`` would do.
    """
    db.session.flush()
    return db.session.connection().execute(statement, params or {})


def lessons_of(course: Course) -> list[Lesson]:
    """The course's lessons in order, archived ones left out."""
    return [lesson for s in course.sections for lesson in s.lessons if lesson.archived_at is None]
