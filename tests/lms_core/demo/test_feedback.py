"""The demo's survey answers: given through the real service, so /feedback/ is not empty after ``make run``."""

from __future__ import annotations

from sqlalchemy import func, select

from lms_core.demo.feedback import ANSWERS_PER_SURVEY, load_demo_feedback
from lms_core.extensions import db
from lms_core.learning import feedback
from lms_core.learning.models import LessonFeedback
from lms_core.learning.survey import questions
from tests.conftest import login
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course


def test_every_demo_survey_gets_answers_once_and_the_report_shows_them(app, tree, client):
    kit = build_course(tree)
    kit.author.username = "teacher1"
    for i in range(1, ANSWERS_PER_SURVEY + 3):
        UserFactory(username=f"cadre{i:04d}", org_unit=tree.village_a)
    db.session.commit()

    assert load_demo_feedback(echo=lambda _line: None) == ANSWERS_PER_SURVEY
    db.session.commit()
    assert load_demo_feedback(echo=lambda _line: None) == 0  # a survey with answers is left alone
    count = select(func.count()).select_from(LessonFeedback).where(LessonFeedback.lesson_id == kit.survey.id)
    assert db.session.execute(count).scalar_one() == ANSWERS_PER_SURVEY

    rating = questions(kit.survey)[0]
    report = {r.question.id: r for r in feedback.survey_report(kit.course)}[rating.id]
    assert report.count == ANSWERS_PER_SURVEY and 4 <= report.mean <= 5  # the first course is liked best
    login(client, "teacher1")
    html = client.get(f"/feedback/courses/{kit.course.id}/html").get_data(as_text=True)
    assert f"{report.mean:.2f}" in html
