"""Question banks, attempts and server-side grading."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from lms_core.accounts.models import User
from lms_core.courses import questions as lesson_questions
from lms_core.courses.models import Lesson, LessonKind
from lms_core.courses.services import CourseError, require_edit
from lms_core.db import utcnow
from lms_core.enrolments.models import Enrolment
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.learning.services import evaluate_completion, progress_for
from lms_core.quizzes.models import Attempt, Question, QuestionKind
from lms_core.unit_of_work import ServiceError

TRUE_FALSE_OPTIONS = ["正确", "错误"]


class QuizError(ServiceError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _checked(kind: QuestionKind, text: str, options: list[str], correct: list[int], points: int) -> list[str]:
    """The options as stored; CourseError (in the author's language) for an invalid question."""
    if kind == QuestionKind.TRUE_FALSE:
        options = TRUE_FALSE_OPTIONS
    options = [o.strip() for o in options if o and o.strip()]
    if not text.strip() or len(options) < 2:
        raise CourseError(_("a question needs text and at least two options"))
    if not correct or any(i < 0 or i >= len(options) for i in correct) or len(set(correct)) != len(correct):
        raise CourseError(_("the correct answers must be among the options"))
    if kind != QuestionKind.MULTIPLE and len(correct) != 1:
        raise CourseError(_("single-choice and true/false questions have exactly one correct answer"))
    if points < 1:
        raise CourseError(_("points must be positive"))
    return options


def add_question(
    author: User,
    lesson: Lesson,
    *,
    kind: QuestionKind,
    text: str,
    options: list[str],
    correct: list[int],
    points: int = 1,
) -> Question:
    require_edit(author, lesson.course)
    if lesson.kind != LessonKind.QUIZ:
        raise CourseError(_("questions belong to quiz lessons"))
    options = _checked(kind, text, options, correct, points)
    position = db.session.execute(select(func.max(Question.position)).filter_by(lesson_id=lesson.id)).scalar() or 0
    question = Question(
        lesson_id=lesson.id,
        kind=kind,
        text=text.strip(),
        options=options,
        correct=sorted(correct),
        points=points,
        position=position + 1,
    )
    db.session.add(question)
    db.session.flush()
    return question


def in_attempts(question: Question) -> bool:
    """Whether any attempt (submitted or open) was given this question."""
    orders = db.session.execute(select(Attempt.question_order).where(Attempt.lesson_id == question.lesson_id)).scalars()
    return any(question.id in (order or []) for order in orders)


def update_question(
    author: User,
    question: Question,
    *,
    kind: QuestionKind,
    text: str,
    options: list[str],
    correct: list[int],
    points: int,
) -> None:
    """Change a question (does not commit).

    Once learners were given it, only the wording of the question and its options
    may change: a different key, score or kind would no longer match the attempts
    already graded, whose recorded results stay as they were.
    """
    lesson = lesson_questions.editable_lesson(author, question)
    if question.archived_at is not None:
        raise CourseError(_("an archived question cannot be edited"))
    options = _checked(kind, text, options, correct, points)
    if in_attempts(question) and (
        kind != question.kind
        or len(options) != len(question.options)
        or sorted(correct) != sorted(question.correct)
        or points != question.points
    ):
        raise CourseError(
            _("learners have answered this question: only its wording can change; add a new question instead")
        )
    question.kind, question.text, question.options = kind, text.strip(), options
    question.correct, question.points = sorted(correct), points
    lesson_questions.emit_change(author, lesson, "quiz_question", question.id, "edited")


def delete_question(author: User, question: Question) -> bool:
    """Delete the question, or archive it if learners were given it (their attempts keep it); True if archived."""
    return lesson_questions.remove(author, question, met=in_attempts, key="quiz_question")


def move_question(author: User, question: Question, step: int) -> bool:
    """One place up (-1) or down (+1) among the active questions; False at either end.

    The order is the one new attempts are drawn in (unless the quiz shuffles); attempts
    already started keep their own ``question_order``.
    """
    return lesson_questions.move(author, question, step, active=questions, key="quiz_question")


def questions(lesson: Lesson, *, archived: bool = False) -> list[Question]:
    """The quiz's questions in order; new attempts draw from these. With ``archived``, the
    archived ones too: attempts that were given them are shown and graded with them."""
    stmt = select(Question).filter_by(lesson_id=lesson.id)
    if not archived:
        stmt = stmt.where(Question.archived_at.is_(None))
    return list(db.session.execute(stmt.order_by(Question.position, Question.id)).scalars())


def attempts_of(user: User, lesson: Lesson) -> list[Attempt]:
    return list(
        db.session.execute(
            select(Attempt).filter_by(user_id=user.id, lesson_id=lesson.id).order_by(Attempt.id)
        ).scalars()
    )


def attempts_left(lesson: Lesson, attempts: list[Attempt]) -> int | None:
    """None means unlimited."""
    if lesson.max_attempts == 0:
        return None
    used = sum(1 for a in attempts if a.submitted_at is not None)
    return max(lesson.max_attempts - used, 0)


def open_attempt(user: User, lesson: Lesson, enrolment: Enrolment) -> Attempt:
    """The unfinished attempt, or a new one with a freshly shuffled order."""
    attempts = attempts_of(user, lesson)
    for attempt in attempts:
        if attempt.submitted_at is None:
            return attempt
    if any(a.passed for a in attempts):
        raise QuizError(_("you have already passed this quiz"), 409)
    if attempts_left(lesson, attempts) == 0:
        raise QuizError(_("no attempts left"), 409)
    ids = [q.id for q in questions(lesson)]
    if not ids:
        raise QuizError(_("this quiz has no questions yet"), 409)
    if lesson.shuffle_questions:
        random.SystemRandom().shuffle(ids)
    attempt = Attempt(user_id=user.id, lesson_id=lesson.id, enrolment_id=enrolment.id, question_order=ids, answers={})
    db.session.add(attempt)
    db.session.flush()
    return attempt


@dataclass
class Graded:
    attempt: Attempt
    lesson_completed: bool
    course_completed: bool


def _parse_answer(question: Question, raw: Any) -> list[int]:
    values = raw if isinstance(raw, list) else ([raw] if raw not in (None, "") else [])
    chosen = []
    for value in values:
        try:
            index = int(value)
        except (TypeError, ValueError):
            raise QuizError(_("invalid answer for question %(id)s", id=question.id)) from None
        if not 0 <= index < len(question.options):
            raise QuizError(_("invalid answer for question %(id)s", id=question.id))
        chosen.append(index)
    if question.kind != QuestionKind.MULTIPLE and len(chosen) > 1:
        raise QuizError(_("question %(id)s takes one answer", id=question.id))
    return sorted(set(chosen))


def submit(user: User, attempt: Attempt, answers: dict[str, Any]) -> Graded:
    """Grade an attempt (all-or-nothing per question); emits answered/passed/failed."""
    if attempt.user_id != user.id:
        raise QuizError(_("not your attempt"), 404)
    if attempt.submitted_at is not None:
        raise QuizError(_("this attempt was already submitted"), 409)
    lesson = db.session.get(Lesson, attempt.lesson_id)
    assert lesson is not None
    by_id = {q.id: q for q in questions(lesson, archived=True)}
    enrolment = db.session.get(Enrolment, attempt.enrolment_id)
    assert enrolment is not None
    parsed = {qid: _parse_answer(by_id[qid], answers.get(str(qid))) for qid in attempt.question_order if qid in by_id}
    raw = maximum = 0
    for qid in attempt.question_order:
        question = by_id.get(qid)
        if question is None:
            continue
        chosen = parsed[qid]
        success = chosen == sorted(question.correct)
        maximum += question.points
        raw += question.points if success else 0
        emit(
            "quiz.answered",
            actor=user,
            obj=question,
            course_id=lesson.course_id,
            payload={
                "lesson_id": lesson.id,
                "attempt_id": attempt.id,
                "registration": enrolment.registration,
                "response": chosen,
                "success": success,
            },
        )
    attempt.answers = {str(k): v for k, v in parsed.items()}
    attempt.score_raw, attempt.score_max = raw, maximum
    attempt.passed = maximum > 0 and raw * 100 >= lesson.passing_score_pct * maximum
    attempt.submitted_at = utcnow()
    emit(
        "quiz.passed" if attempt.passed else "quiz.failed",
        actor=user,
        obj=attempt,
        course_id=lesson.course_id,
        payload={
            "lesson_id": lesson.id,
            "registration": enrolment.registration,
            "score_raw": raw,
            "score_max": maximum,
            "scaled": round(raw / maximum, 4) if maximum else 0,
        },
    )
    progress = progress_for(user.id, lesson, lock=True)
    lesson_done = course_done = False
    if attempt.passed:
        lesson_done, course_done = evaluate_completion(user, lesson, progress, enrolment, rule_met=True)
    return Graded(attempt, lesson_done, course_done)


@dataclass
class ReviewLine:
    """One question of a submitted attempt, as the learner sees it afterwards."""

    question: Question
    chosen: list[int]
    success: bool
    #: The right options, or None when the quiz does not reveal them.
    correct: list[int] | None


def review(lesson: Lesson, attempt: Attempt) -> list[ReviewLine]:
    """Which answers of ``attempt`` were right and wrong, in the order it was shown.

    The right answers are included only if the quiz says so
    (``Lesson.show_correct_answers``): with attempts left, they would hand out the key.
    """
    if attempt.submitted_at is None:
        return []
    by_id = {q.id: q for q in questions(lesson, archived=True)}
    lines = []
    for qid in attempt.question_order:
        question = by_id.get(qid)
        if question is None:
            continue
        chosen = [int(i) for i in attempt.answers.get(str(qid), [])]
        lines.append(
            ReviewLine(
                question,
                chosen,
                chosen == sorted(question.correct),
                sorted(question.correct) if lesson.show_correct_answers else None,
            )
        )
    return lines
