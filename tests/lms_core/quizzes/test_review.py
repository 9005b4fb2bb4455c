"""After an attempt the learner sees which answers were wrong; the right ones only if the quiz says so."""

from __future__ import annotations

import re

import pytest

from lms_core.extensions import db
from lms_core.quizzes.models import Attempt, Question
from tests.conftest import login
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course


@pytest.fixture
def kit(app, tree):
    kit = build_course(tree)
    UserFactory(username="liming", org_unit=tree.village_a)
    db.session.commit()
    return kit


def _answer_with_one_mistake(client, kit) -> None:
    """Right on 1+1 and true/false, wrong on the even numbers (chooses only 2)."""
    client.get(f"/learn/lessons/{kit.quiz.id}")
    attempt = db.session.query(Attempt).filter(Attempt.submitted_at.is_(None)).one()
    by_text = {q.text: q for q in db.session.query(Question).all()}
    form = {f"q_{by_text['1+1=?'].id}": "1", f"q_{by_text['选出偶数'].id}": "0", f"q_{by_text['地球是圆的'].id}": "0"}
    r = client.post(f"/learn/lessons/{kit.quiz.id}/quiz/{attempt.id}", data=form)
    assert r.status_code == 302


def _review(html: str) -> str:
    assert 'id="attempt-review"' in html
    return html.split('id="attempt-review"', 1)[1].split("</section>", 1)[0]


def test_wrong_answers_are_marked_but_right_ones_hidden_by_default(client, kit):
    login(client, "liming")
    client.post(f"/courses/{kit.course.id}/enrol")
    _answer_with_one_mistake(client, kit)
    review = _review(client.get(f"/learn/lessons/{kit.quiz.id}").get_data(as_text=True))
    even = db.session.query(Question).filter_by(text="选出偶数").one()
    line = re.search(rf'id="review-{even.id}">(.*?)</li>', review, re.S).group(1)
    assert "✗ 错误" in line and "您的答案" in line and "正确答案" not in line
    assert review.count("✓ 正确") == 2 and review.count("✗ 错误") == 1
    assert "不显示正确答案" in review


def test_quiz_setting_reveals_the_right_answers(client, kit):
    kit.author.username = "teacher"
    db.session.commit()
    teacher = client.application.test_client()
    login(teacher, "teacher")
    page = teacher.get(f"/teach/lessons/{kit.quiz.id}/questions").get_data(as_text=True)
    assert 'id="quiz-settings"' in page
    assert (
        teacher.post(f"/teach/lessons/{kit.quiz.id}/quiz-settings", data={"show_correct_answers": "y"}).status_code
        == 302
    )
    db.session.expire_all()
    assert db.session.get(type(kit.quiz), kit.quiz.id).show_correct_answers

    login(client, "liming")
    client.post(f"/courses/{kit.course.id}/enrol")
    _answer_with_one_mistake(client, kit)
    review = _review(client.get(f"/learn/lessons/{kit.quiz.id}").get_data(as_text=True))
    even = db.session.query(Question).filter_by(text="选出偶数").one()
    line = re.search(rf'id="review-{even.id}">(.*?)</li>', review, re.S).group(1)
    assert "正确答案：2、4" in line  # the full-width colon of a Chinese label (templating.colon)


def test_a_learner_cannot_change_the_setting(client, kit):
    login(client, "liming")
    assert (
        client.post(f"/teach/lessons/{kit.quiz.id}/quiz-settings", data={"show_correct_answers": "y"}).status_code
        == 403
    )
    db.session.expire_all()
    assert not db.session.get(type(kit.quiz), kit.quiz.id).show_correct_answers


def test_no_review_before_any_attempt(client, kit):
    login(client, "liming")
    client.post(f"/courses/{kit.course.id}/enrol")
    assert 'id="attempt-review"' not in client.get(f"/learn/lessons/{kit.quiz.id}").get_data(as_text=True)
