"""训中学情快速评估: learners' answers to survey lessons, the feedback report, and course scores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import func, select

from lms_core.accounts.models import User
from lms_core.authz import scope_condition
from lms_core.courses.models import Course, Lesson, LessonKind, Section
from lms_core.db import utcnow
from lms_core.enrolments.models import Enrolment
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.i18n import SHANGHAI, label
from lms_core.learning.models import LessonFeedback, SurveyAnswer, SurveyQuestion, SurveyQuestionKind
from lms_core.learning.services import evaluate_completion, progress_for
from lms_core.orgs.models import OrgUnit
from lms_core.reports.tables import Table
from lms_core.unit_of_work import ServiceError

MAX_COMMENT = 1000


class FeedbackError(ServiceError):
    pass


@dataclass
class Submitted:
    """What a submission did: a first answer, or which questions an edit changed."""

    created: bool
    #: ``(question text, before, after)`` for every answer the submission changed (an edit).
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    lesson_completed: bool = False
    course_completed: bool = False


def answer_text(question: SurveyQuestion, answer: SurveyAnswer | None) -> str:
    """An answer as a person reads it: ``4（满意）``, the chosen options, or the text."""
    if answer is None:
        return ""
    if question.kind == SurveyQuestionKind.RATING:
        if answer.score is None:
            return ""
        label = question.options[answer.score - 1] if len(question.options) >= answer.score else ""
        return f"{answer.score}（{label}）" if label else str(answer.score)
    if question.kind in (SurveyQuestionKind.SINGLE, SurveyQuestionKind.MULTIPLE):
        return "、".join(question.options[i] for i in answer.choices if 0 <= i < len(question.options))
    return answer.text


def _parse(question: SurveyQuestion, values: list[str]) -> tuple[int | None, list[int], str] | None:
    """One question's form values as ``(score, choices, text)``, None if unanswered; FeedbackError if invalid."""
    values = [v for v in values if v.strip()]
    if not values:
        return None
    if "\x00" in "".join(values):
        raise FeedbackError(_("An answer contains a character that cannot be stored."))
    if question.kind == SurveyQuestionKind.TEXT:
        text = values[0].strip()
        if len(text) > MAX_COMMENT:
            raise FeedbackError(_("comment is longer than %(max)s characters", max=MAX_COMMENT))
        return None, [], text
    numbers = [int(v) for v in values if v.strip().isdigit() and len(v.strip()) < 4]
    if len(numbers) != len(values):
        raise FeedbackError(_("Please choose from the answers offered: %(question)s", question=question.text))
    if question.kind == SurveyQuestionKind.RATING:
        if len(numbers) != 1 or not 1 <= numbers[0] <= question.scale:
            raise FeedbackError(_("Please choose from the answers offered: %(question)s", question=question.text))
        return numbers[0], [], ""
    chosen = sorted(set(numbers))
    if any(not 0 <= i < len(question.options) for i in chosen) or (
        question.kind == SurveyQuestionKind.SINGLE and len(chosen) != 1
    ):
        raise FeedbackError(_("Please choose from the answers offered: %(question)s", question=question.text))
    return None, chosen, ""


def submit_answers(user: User, lesson: Lesson, enrolment: Enrolment, form: Mapping[str, list[str]]) -> Submitted:
    """Record (or edit) the person's answers to the survey; ``form`` maps ``q<id>`` to its values.

    One answer sheet per person and lesson: a second submission edits the first,
    and the result lists what changed. Answers to questions archived since stay.
    Every required question must be answered; nothing is written otherwise.
    A survey lesson completes on submission. Does not commit.
    """
    from lms_core.learning.survey import questions

    asked = questions(lesson)
    if not asked:
        raise FeedbackError(_("This survey has no questions yet."))
    parsed: dict[int, tuple[int | None, list[int], str] | None] = {}
    for question in asked:
        parsed[question.id] = _parse(question, form.get(f"q{question.id}", []))
        if parsed[question.id] is None and question.required:
            raise FeedbackError(_("Please answer: %(question)s", question=question.text))
    mine = select(LessonFeedback).filter_by(user_id=user.id, lesson_id=lesson.id).with_for_update()
    sheet = db.session.execute(mine).scalar_one_or_none()
    created = sheet is None
    if sheet is None:
        sheet = LessonFeedback(
            user_id=user.id, lesson_id=lesson.id, course_id=lesson.course_id, rating=None, comment=""
        )
        db.session.add(sheet)
        db.session.flush()
    existing = {a.question_id: a for a in sheet.answers}
    result = Submitted(created=created)
    for question in asked:
        before = answer_text(question, existing.get(question.id))
        value = parsed[question.id]
        answer = existing.get(question.id)
        if value is None:
            if answer is not None:
                sheet.answers.remove(answer)
        else:
            if answer is None:
                answer = SurveyAnswer(question_id=question.id)
                sheet.answers.append(answer)
            answer.score, answer.choices, answer.text = value
        after = answer_text(question, answer if value is not None else None)
        if not created and before != after:
            result.changes.append((question.text, before, after))
    if result.changes:
        sheet.updated_at = utcnow()
    rating, scale, comment = None, 5, ""
    for q in asked:
        value = parsed[q.id]
        if value is None:
            continue
        if q.kind == SurveyQuestionKind.RATING and rating is None:
            rating, scale = value[0], q.scale
        elif q.kind == SurveyQuestionKind.TEXT and not comment:
            comment = value[2]
    emit(
        "survey.submitted",
        actor=user,
        obj=lesson,
        course_id=lesson.course_id,
        payload={
            "lesson_id": lesson.id,
            "registration": enrolment.registration,
            # The first rated item and open answer, for the xAPI statement's score and response.
            "rating": rating,
            "rating_max": scale,
            "comment": comment,
            "updated": bool(result.changes),
            "answers": {
                str(q.id): answer_text(q, next((a for a in sheet.answers if a.question_id == q.id), None))
                for q in asked
            },
        },
    )
    if lesson.kind == LessonKind.SURVEY:
        result.lesson_completed, result.course_completed = evaluate_completion(
            user, lesson, progress_for(user.id, lesson, lock=True), enrolment, rule_met=True
        )
    return result


def submit_feedback(user: User, lesson: Lesson, enrolment: Enrolment, rating: int, comment: str) -> tuple[bool, bool]:
    """The fixed form's answer (a rating and a comment) given to the survey's first rated and open questions.

    For callers that only know the old form (scripts, tests of other parts).
    """
    from lms_core.learning.survey import questions

    form: dict[str, list[str]] = {}
    asked = questions(lesson)
    rated = next((q for q in asked if q.kind == SurveyQuestionKind.RATING), None)
    text = next((q for q in asked if q.kind == SurveyQuestionKind.TEXT), None)
    if rated is None:
        raise FeedbackError(_("This survey has no questions yet."))
    if not 1 <= rating <= rated.scale:
        raise FeedbackError(_("Please choose from the answers offered: %(question)s", question=rated.text))
    form[f"q{rated.id}"] = [str(rating)]
    if text is not None:
        form[f"q{text.id}"] = [comment or ""]
    done = submit_answers(user, lesson, enrolment, form)
    return done.lesson_completed, done.course_completed


@dataclass
class QuestionReport:
    """One question's answers, as the report page draws them and the export writes them."""

    lesson: Lesson
    question: SurveyQuestion
    #: People who answered the question.
    count: int = 0
    #: Rating questions: the mean score, two decimals (None without answers).
    mean: float | None = None
    #: ``(label, answers, percent of the question's answers)``: one bar per point or option.
    bars: list[tuple[str, int, float]] = field(default_factory=list)
    #: Open questions: ``(Beijing time, text)``, newest first.
    texts: list[tuple[str, str]] = field(default_factory=list)


def survey_report(course: Course, lesson: Lesson | None = None) -> list[QuestionReport]:
    """Every survey question of the course (or of one lesson), archived ones included, with their answers."""
    from lms_core.learning.survey import questions

    lessons = [
        item
        for item in db.session.execute(
            select(Lesson)
            .join(Section, Section.id == Lesson.section_id)
            .where(Lesson.course_id == course.id, Lesson.kind == LessonKind.SURVEY)
            .order_by(Section.position, Lesson.position, Lesson.id)
        ).scalars()
        if lesson is None or item.id == lesson.id
    ]
    reports: list[QuestionReport] = []
    zone = SHANGHAI
    for item in lessons:
        for question in questions(item, archived=True):
            answers = db.session.execute(
                select(SurveyAnswer, LessonFeedback.created_at, LessonFeedback.updated_at)
                .join(LessonFeedback, LessonFeedback.id == SurveyAnswer.response_id)
                .where(SurveyAnswer.question_id == question.id)
                .order_by(LessonFeedback.id.desc())
            ).all()
            report = QuestionReport(item, question, count=len(answers))
            if question.kind == SurveyQuestionKind.TEXT:
                report.texts = [
                    ((updated or created).astimezone(zone).strftime("%Y-%m-%d %H:%M"), a.text)
                    for a, created, updated in answers
                    if a.text
                ]
            elif question.kind == SurveyQuestionKind.RATING:
                scores = [a.score for a, _c, _u in answers if a.score is not None]
                report.mean = round(sum(scores) / len(scores), 2) if scores else None
                for point in range(1, question.scale + 1):
                    label = question.options[point - 1] if len(question.options) >= point else ""
                    n = scores.count(point)
                    report.bars.append((f"{point} {label}".strip(), n, _pct(n, len(scores))))
            else:
                counts = [0] * len(question.options)
                for a, _c, _u in answers:
                    for i in a.choices:
                        if 0 <= i < len(counts):
                            counts[i] += 1
                report.bars = [(o, n, _pct(n, len(answers))) for o, n in zip(question.options, counts, strict=True)]
            reports.append(report)
    return reports


def _pct(n: int, total: int) -> float:
    return round(100 * n / total, 1) if total else 0.0


def report_table(reports: list[QuestionReport]) -> Table:
    """The report as rows (the page and both exports read this same table)."""
    table = Table(
        [
            _("Lesson"),
            _("Question"),
            _("Question type"),
            _("Answer"),
            _("Answers"),
            _("Share (%)"),
            _("Average"),
            _("Answered at"),
        ]
    )
    for r in reports:
        title = r.question.text + (f"（{_('archived')}）" if r.question.archived_at else "")
        head = [r.lesson.title, title, label(r.question.kind)]
        mean = "" if r.mean is None else Decimal(str(r.mean)).quantize(Decimal("0.01"))
        if r.question.kind == SurveyQuestionKind.TEXT:
            table.rows.append([*head, _("(people who answered)"), r.count, "", "", ""])
            table.keys.append({"question": r.question.id, "kind": "count"})
            for when, text in r.texts:
                table.rows.append([*head, text, "", "", "", when])
                table.keys.append({"question": r.question.id, "kind": "text"})
            continue
        table.rows.append([*head, _("(people who answered)"), r.count, "", mean, ""])
        table.keys.append({"question": r.question.id, "kind": "count"})
        for text, n, pct in r.bars:
            table.rows.append([*head, text, n, Decimal(str(pct)).quantize(Decimal("0.1")), "", ""])
            table.keys.append({"question": r.question.id, "kind": "bar", "pct": pct})
    return table


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
    scaled = 1 + 4.0 * (SurveyAnswer.score - 1) / (SurveyQuestion.scale - 1)
    mean = func.avg(scaled)
    responses = func.count(func.distinct(LessonFeedback.user_id))
    stmt = (
        select(
            Course.id,
            Course.code,
            Course.title,
            OrgUnit.name,
            responses.label("responses"),
            func.count(SurveyAnswer.id),
            mean.label("mean"),
        )
        .join(LessonFeedback, LessonFeedback.course_id == Course.id)
        .join(SurveyAnswer, SurveyAnswer.response_id == LessonFeedback.id)
        .join(SurveyQuestion, SurveyQuestion.id == SurveyAnswer.question_id)
        .join(OrgUnit, OrgUnit.id == Course.owner_unit_id)
        .where(
            when >= begin_utc,
            when < end_utc,
            SurveyQuestion.kind == SurveyQuestionKind.RATING,
            SurveyQuestion.scale > 1,
            SurveyAnswer.score.is_not(None),
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
    return dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI).astimezone(dt.UTC)
