"""Quiz questions edited and deleted; a question learners were given is archived, their attempts keep it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lms_core.courses.services import CourseError, publish_problems
from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.quizzes import services as quizzes
from lms_core.quizzes.models import Question, QuestionKind
from tests.conftest import login
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course


@pytest.fixture
def kit(app, tree, client):
    kit = build_course(tree)
    kit.author.username = "teacher"
    db.session.commit()
    login(client, "teacher")
    return kit


def _single(kit) -> Question:
    return next(q for q in quizzes.questions(kit.quiz) if q.kind == QuestionKind.SINGLE)


def test_an_unanswered_question_is_edited_freely_and_deleted(client, kit):
    q = _single(kit)
    r = client.post(
        f"/teach/quiz-questions/{q.id}/edit",
        data={
            f"q{q.id}-kind": "multiple",
            f"q{q.id}-text": "选出正确的",
            f"q{q.id}-options": "1\n2\n3",
            f"q{q.id}-correct": "2,3",
            f"q{q.id}-points": "2",
        },
    )
    assert r.status_code == 303
    db.session.expire_all()
    q = db.session.get(Question, q.id)
    assert (q.kind, q.text, q.correct, q.points) == (QuestionKind.MULTIPLE, "选出正确的", [1, 2], 2)
    bad = client.post(
        f"/teach/quiz-questions/{q.id}/edit",
        data={f"q{q.id}-kind": "single", f"q{q.id}-text": "x", f"q{q.id}-options": "1\n2", f"q{q.id}-correct": "5"},
        follow_redirects=True,
    )
    assert "未保存" in bad.get_data(as_text=True)
    client.post(f"/teach/quiz-questions/{q.id}/delete")
    assert db.session.execute(select(func.count()).where(Question.id == q.id)).scalar_one() == 0


def test_a_question_in_attempts_is_archived_and_old_attempts_keep_it(client, kit, tree):
    learner = UserFactory(org_unit=tree.village_a, username="liming")
    enrolment = enrolments.enrol(learner, kit.course)
    attempt = quizzes.open_attempt(learner, kit.quiz, enrolment)
    graded = quizzes.submit(learner, attempt, {str(i): ["0"] for i in attempt.question_order})
    db.session.commit()
    score = (graded.attempt.score_raw, graded.attempt.score_max)
    q = _single(kit)
    with pytest.raises(CourseError, match="只能修改文字"):
        quizzes.update_question(kit.author, q, kind=q.kind, text=q.text, options=q.options, correct=[0], points=1)
    quizzes.update_question(
        kit.author, q, kind=q.kind, text="1 + 1 = ?", options=q.options, correct=q.correct, points=1
    )
    db.session.commit()
    r = client.post(f"/teach/quiz-questions/{q.id}/delete", follow_redirects=True)
    assert "已停用，未删除" in r.get_data(as_text=True)
    db.session.expire_all()
    q = db.session.get(Question, q.id)
    assert q.archived_at is not None and q not in quizzes.questions(kit.quiz)
    # The graded attempt still shows the question, with its recorded result.
    lines = quizzes.review(kit.quiz, graded.attempt)
    assert q.id in [line.question.id for line in lines]
    assert (graded.attempt.score_raw, graded.attempt.score_max) == score
    # A new attempt no longer draws it.
    other = UserFactory(org_unit=tree.village_a, username="other")
    fresh = quizzes.open_attempt(other, kit.quiz, enrolments.enrol(other, kit.course))
    assert q.id not in fresh.question_order
    page = client.get(f"/teach/lessons/{kit.quiz.id}/questions").get_data(as_text=True)
    assert 'id="archived-questions"' in page and "1 + 1 = ?" in page
    # With every question archived, the quiz cannot be published again.
    for question in quizzes.questions(kit.quiz):
        quizzes.delete_question(kit.author, question)
    assert any("还没有题目" in p for p in publish_problems(kit.course))


def test_questions_are_reordered_and_new_attempts_follow(client, kit, tree):
    """↑/↓ on the questions page: one place per click, the ends refuse quietly, bad input is a Chinese 400."""
    kit.quiz.shuffle_questions = False
    db.session.commit()
    before = [q.id for q in quizzes.questions(kit.quiz)]
    assert len(before) >= 2
    last = before[-1]
    r = client.post(f"/teach/quiz-questions/{last}/move", data={"direction": "up"})
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/teach/lessons/{kit.quiz.id}/questions")
    db.session.expire_all()
    after = [q.id for q in quizzes.questions(kit.quiz)]
    assert after == [*before[:-2], last, before[-2]]
    # At the top already: nothing moves.
    client.post(f"/teach/quiz-questions/{after[0]}/move", data={"direction": "up"})
    db.session.expire_all()
    assert [q.id for q in quizzes.questions(kit.quiz)] == after
    bad = client.post(f"/teach/quiz-questions/{last}/move", data={"direction": "sideways"})
    assert bad.status_code == 400 and "请选择" in bad.get_data(as_text=True)
    # A learner's new attempt is drawn in the new order.
    learner = UserFactory(org_unit=tree.village_a, username="wangfang")
    attempt = quizzes.open_attempt(learner, kit.quiz, enrolments.enrol(learner, kit.course))
    assert attempt.question_order == after


def test_an_archived_question_cannot_be_moved(client, kit, tree):
    learner = UserFactory(org_unit=tree.village_a, username="liming")
    attempt = quizzes.open_attempt(learner, kit.quiz, enrolments.enrol(learner, kit.course))
    quizzes.submit(learner, attempt, {})
    q = _single(kit)
    quizzes.delete_question(kit.author, q)
    db.session.commit()
    r = client.post(f"/teach/quiz-questions/{q.id}/move", data={"direction": "up"}, follow_redirects=True)
    assert "未修改" in r.get_data(as_text=True)
