"""Survey lessons' questions, edited by the course's authors.

A survey has rated items (1 to N points, optionally a label per point), single
and multiple choice questions and open questions, in the author's order. A
question somebody has answered is archived rather than deleted: it leaves the
form, and its answers stay in the feedback report. Its kind and scale are then
fixed (an answer of 4 must keep meaning what it meant), its wording and labels
may still be corrected.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import exists, select

from lms_core.accounts.models import User
from lms_core.courses import questions as lesson_questions
from lms_core.courses.models import Lesson, LessonKind
from lms_core.courses.services import CourseError, require_edit
from lms_core.extensions import db
from lms_core.learning.models import SurveyAnswer, SurveyQuestion, SurveyQuestionKind

MAX_QUESTIONS = 50
MAX_QUESTION_TEXT = 1000
MAX_OPTIONS = 20
MAX_OPTION_TEXT = 200
SCALE_RANGE = (2, 10)


class SurveyError(CourseError):
    """An invalid question; the message is shown to the author."""


def questions(lesson: Lesson, *, archived: bool = False) -> list[SurveyQuestion]:
    """The lesson's questions in order; with ``archived``, the archived ones too (they come last)."""
    stmt = select(SurveyQuestion).where(SurveyQuestion.lesson_id == lesson.id)
    if not archived:
        stmt = stmt.where(SurveyQuestion.archived_at.is_(None))
    rows = db.session.execute(stmt.order_by(SurveyQuestion.position, SurveyQuestion.id)).scalars().all()
    return sorted(rows, key=lambda q: (q.archived_at is not None, q.position, q.id))


def lines(text: str) -> list[str]:
    """Options typed one per line: blank lines dropped, each stripped."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def has_answers(question: SurveyQuestion) -> bool:
    return bool(db.session.execute(select(exists().where(SurveyAnswer.question_id == question.id))).scalar())


def _clean(kind: SurveyQuestionKind, text: str, options: list[str], scale: int) -> tuple[str, list[str], int]:
    text = (text or "").strip()
    if not text:
        raise SurveyError(_("the question text is required"))
    if len(text) > MAX_QUESTION_TEXT or "\x00" in text:
        raise SurveyError(_("the question text is longer than %(max)s characters", max=MAX_QUESTION_TEXT))
    if any(len(o) > MAX_OPTION_TEXT or "\x00" in o for o in options):
        raise SurveyError(_("an option is longer than %(max)s characters", max=MAX_OPTION_TEXT))
    if kind == SurveyQuestionKind.RATING:
        low, high = SCALE_RANGE
        if not low <= scale <= high:
            raise SurveyError(_("a rating scale has %(low)s to %(high)s points", low=low, high=high))
        if options and len(options) != scale:
            raise SurveyError(_("give one label per point (%(n)s lines), lowest first, or none", n=scale))
        return text, options, scale
    if kind in (SurveyQuestionKind.SINGLE, SurveyQuestionKind.MULTIPLE):
        if not 2 <= len(options) <= MAX_OPTIONS:
            raise SurveyError(_("a choice question needs 2 to %(max)s options, one per line", max=MAX_OPTIONS))
        if len(set(options)) != len(options):
            raise SurveyError(_("the options must differ from each other"))
        return text, options, 5
    return text, [], 5


def save_question(
    author: User,
    lesson: Lesson,
    question: SurveyQuestion | None,
    *,
    kind: SurveyQuestionKind,
    text: str,
    options: list[str],
    scale: int = 5,
    required: bool = True,
) -> SurveyQuestion:
    """Add a question (``question`` None) or change one; does not commit."""
    require_edit(author, lesson.course)
    if lesson.kind != LessonKind.SURVEY:
        raise SurveyError(_("only a survey lesson has survey questions"))
    text, options, scale = _clean(kind, text, options, scale)
    if question is None:
        current = questions(lesson)
        if len(current) >= MAX_QUESTIONS:
            raise SurveyError(_("a survey has at most %(max)s questions", max=MAX_QUESTIONS))
        question = SurveyQuestion(
            lesson_id=lesson.id, position=max((q.position for q in current), default=0) + 1, archived_at=None
        )
        db.session.add(question)
        action = "added"
    else:
        if question.archived_at is not None:
            raise SurveyError(_("an archived question cannot be edited"))
        answered = has_answers(question)
        if answered and (kind != question.kind or scale != question.scale or len(options) != len(question.options)):
            raise SurveyError(
                _("this question has answers: its type, scale and number of options stay; add a new question instead")
            )
        action = "edited"
    question.kind, question.text, question.options, question.scale = kind, text, options, scale
    question.required = required
    db.session.flush()
    lesson_questions.emit_change(author, lesson, "survey_question", question.id, action, kind=kind.value)
    return question


def move_question(author: User, question: SurveyQuestion, step: int) -> bool:
    """One place up (-1) or down (+1) among the active questions; False at either end."""
    return lesson_questions.move(author, question, step, active=questions, key="survey_question", error=SurveyError)


def delete_question(author: User, question: SurveyQuestion) -> bool:
    """Delete the question, or archive it if anyone answered it; True if archived."""
    return lesson_questions.remove(author, question, met=has_answers, key="survey_question")
