"""Demo survey answers, so that ``/feedback/`` has something to show after ``make run``.

Given through the real service (``feedback.submit_answers``), as a learner's form
would: the cadres enrol, answer each demo survey with a rating and, some of them,
a comment. The courses get different averages on purpose, so the report's "worst
first" order means something. Idempotent: a survey that has answers is left alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sqlalchemy import select

from lms_core.accounts.models import User
from lms_core.courses.models import Course, Lesson, LessonKind
from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.learning import feedback
from lms_core.learning.models import LessonFeedback, SurveyQuestionKind
from lms_core.learning.survey import questions

#: How many cadres answer each demo survey.
ANSWERS_PER_SURVEY = 12
#: Comments a cadre may leave (the open question is optional: most leave none).
COMMENTS = [
    "案例很贴近基层实际，建议多安排一些现场教学。",
    "讲得清楚，材料可以提前发给学员预习。",
    "视频时间偏长，建议分成几段。",
    "希望增加互动答疑环节。",
    "内容实用，回去就能用上。",
]


def load_demo_feedback(echo: Callable[[str], object] = print) -> int:
    """Answer every demo survey that has no answers yet; returns the number of answer sheets. Does not commit."""
    rng = random.Random(11)  # noqa: S311 - demo data, not security
    cadres = list(
        db.session.execute(
            select(User).where(User.username.like("cadre%")).order_by(User.username).limit(ANSWERS_PER_SURVEY)
        ).scalars()
    )
    surveys = db.session.execute(
        select(Lesson).join(Course).where(Lesson.kind == LessonKind.SURVEY, Course.published).order_by(Lesson.id)
    ).scalars()
    sheets = 0
    for index, lesson in enumerate(surveys):
        if db.session.execute(select(LessonFeedback.id).filter_by(lesson_id=lesson.id).limit(1)).first():
            continue
        # The first course is liked best, each later one a little less.
        lowest, highest = max(1, 4 - index), 5 if index == 0 else 4
        for cadre in cadres:
            enrolment = enrolments.enrol(cadre, lesson.course)
            form: dict[str, list[str]] = {}
            for question in questions(lesson):
                if question.kind == SurveyQuestionKind.RATING:
                    form[f"q{question.id}"] = [str(rng.randint(lowest, min(highest, question.scale)))]
                elif question.kind == SurveyQuestionKind.TEXT and rng.random() < 0.4:
                    form[f"q{question.id}"] = [rng.choice(COMMENTS)]
            feedback.submit_answers(cadre, lesson, enrolment, form)
            sheets += 1
        echo(f"  survey answers: {lesson.course.title} · {lesson.title}")
    return sheets
