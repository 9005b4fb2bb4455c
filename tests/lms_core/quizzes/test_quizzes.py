"""Quiz attempts: randomised order, server-side grading, attempt limits, completion."""

from __future__ import annotations

import pytest

from lms_core.enrolments import services as enrolments
from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.learning.models import LessonProgress, ProgressStatus
from lms_core.quizzes import services as quizzes
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course

RIGHT = {"single": ["1"], "multiple": ["0", "2"], "true_false": ["0"]}


@pytest.fixture
def setup(app, tree):
    kit = build_course(tree)
    learner = UserFactory(org_unit=tree.village_a)
    enrolment = enrolments.enrol(learner, kit.course)
    db.session.commit()
    return kit, learner, enrolment


def answers_for(attempt, right=True):
    out = {}
    for qid in attempt.question_order:
        q = db.session.get(quizzes.Question, qid)
        out[str(qid)] = RIGHT[q.kind.value] if right else ["2"] if q.kind.value != "true_false" else ["1"]
    return out


def test_correct_answers_pass_and_complete_lesson(setup):
    kit, learner, enrolment = setup
    attempt = quizzes.open_attempt(learner, kit.quiz, enrolment)
    assert sorted(attempt.question_order) == sorted(q.id for q in quizzes.questions(kit.quiz))
    graded = quizzes.submit(learner, attempt, answers_for(attempt))
    db.session.commit()
    assert graded.attempt.passed and graded.attempt.score_raw == 3 and graded.lesson_completed
    progress = db.session.query(LessonProgress).filter_by(user_id=learner.id, lesson_id=kit.quiz.id).one()
    assert progress.status == ProgressStatus.COMPLETED
    assert db.session.query(Event).filter_by(name="quiz.answered").count() == 3
    assert db.session.query(Event).filter_by(name="quiz.passed").count() == 1


def test_partial_multiple_choice_scores_zero(setup):
    kit, learner, enrolment = setup
    attempt = quizzes.open_attempt(learner, kit.quiz, enrolment)
    answers = answers_for(attempt)
    multiple = next(
        qid for qid in attempt.question_order if db.session.get(quizzes.Question, qid).kind.value == "multiple"
    )
    answers[str(multiple)] = ["0"]
    graded = quizzes.submit(learner, attempt, answers)
    assert graded.attempt.score_raw == 2 and graded.attempt.passed  # 2/3 >= 60 %


def test_attempt_limit_enforced(setup):
    kit, learner, enrolment = setup
    for _ in range(2):
        attempt = quizzes.open_attempt(learner, kit.quiz, enrolment)
        assert not quizzes.submit(learner, attempt, answers_for(attempt, right=False)).attempt.passed
        db.session.commit()
    with pytest.raises(quizzes.QuizError) as err:
        quizzes.open_attempt(learner, kit.quiz, enrolment)
    assert err.value.status == 409


def test_double_submit_and_foreign_attempt_rejected(setup, tree):
    kit, learner, enrolment = setup
    attempt = quizzes.open_attempt(learner, kit.quiz, enrolment)
    quizzes.submit(learner, attempt, answers_for(attempt))
    with pytest.raises(quizzes.QuizError):
        quizzes.submit(learner, attempt, answers_for(attempt))
    other = UserFactory(org_unit=tree.village_a)
    with pytest.raises(quizzes.QuizError):
        quizzes.submit(other, attempt, {})


@pytest.mark.parametrize("bad", [["9"], ["x"], ["0", "1"]])
def test_invalid_answers_rejected(setup, bad):
    kit, learner, enrolment = setup
    attempt = quizzes.open_attempt(learner, kit.quiz, enrolment)
    single = next(qid for qid in attempt.question_order if db.session.get(quizzes.Question, qid).kind.value == "single")
    answers = answers_for(attempt)
    answers[str(single)] = bad
    with pytest.raises(quizzes.QuizError):
        quizzes.submit(learner, attempt, answers)


def test_order_is_randomised_between_attempts(setup):
    kit, learner, enrolment = setup
    orders = set()
    for _ in range(30):
        attempt = quizzes.open_attempt(learner, kit.quiz, enrolment)
        orders.add(tuple(attempt.question_order))
        db.session.delete(attempt)
        db.session.flush()
    assert len(orders) > 1
