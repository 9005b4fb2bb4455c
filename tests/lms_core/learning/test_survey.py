"""Editable survey questions, one answer sheet per person, and the feedback report."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from lms_core.accounts.models import Role
from lms_core.courses.services import CourseError, publish_problems
from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.learning import feedback, survey
from lms_core.learning.models import LessonFeedback, SurveyAnswer, SurveyQuestion, SurveyQuestionKind
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.lms_core.learning.fixtures import build_course

LABELS = ["很不满意", "不满意", "一般", "满意", "很满意"]


@pytest.fixture
def kit(app, tree):
    kit = build_course(tree)
    kit.author.username = "teacher1"
    db.session.commit()
    return kit


def _questions(kit) -> list[SurveyQuestion]:
    db.session.expire_all()  # the requests changed rows this session has loaded
    return survey.questions(kit.survey)


def _author_survey(kit) -> dict[str, SurveyQuestion]:
    """The default two questions, plus a labelled rating, a single and a multiple choice."""
    rating, comment = _questions(kit)
    author = kit.author
    labelled = survey.save_question(
        author, kit.survey, None, kind=SurveyQuestionKind.RATING, text="课程安排是否合理？", options=LABELS, scale=5
    )
    single = survey.save_question(
        author, kit.survey, None, kind=SurveyQuestionKind.SINGLE, text="您的学习方式", options=["手机", "电脑"]
    )
    multiple = survey.save_question(
        author,
        kit.survey,
        None,
        kind=SurveyQuestionKind.MULTIPLE,
        text="希望增加哪些内容？",
        options=["案例", "政策解读", "互动"],
        required=False,
    )
    db.session.commit()
    return {"rating": rating, "comment": comment, "labelled": labelled, "single": single, "multiple": multiple}


def _enrolled(client, kit, tree, username="liming"):
    UserFactory(username=username, org_unit=tree.village_a)
    db.session.commit()
    login(client, username)
    client.post(f"/courses/{kit.course.id}/enrol")


def test_a_new_survey_asks_the_fixed_forms_questions(kit):
    rating, comment = _questions(kit)
    assert (rating.kind, rating.scale, rating.required) == (SurveyQuestionKind.RATING, 5, True)
    assert (comment.kind, comment.required) == (SurveyQuestionKind.TEXT, False)


def test_question_rules(kit):
    author = kit.author
    add = lambda **kw: survey.save_question(author, kit.survey, None, **kw)  # noqa: E731
    with pytest.raises(CourseError, match="2 到 10"):
        add(kind=SurveyQuestionKind.RATING, text="评分", options=[], scale=11)
    with pytest.raises(CourseError, match="每个分值写一个标签"):
        add(kind=SurveyQuestionKind.RATING, text="评分", options=["差", "好"], scale=5)
    with pytest.raises(CourseError, match="2 到 20 个选项"):
        add(kind=SurveyQuestionKind.SINGLE, text="单选", options=["唯一"])
    with pytest.raises(CourseError, match="不能相同"):
        add(kind=SurveyQuestionKind.MULTIPLE, text="多选", options=["甲", "甲"])
    with pytest.raises(CourseError, match="题目"):
        add(kind=SurveyQuestionKind.TEXT, text="  ", options=[])
    with pytest.raises(CourseError):
        add(kind=SurveyQuestionKind.TEXT, text="含\x00字符", options=[])
    # A quiz takes no survey questions.
    with pytest.raises(CourseError):
        survey.save_question(author, kit.quiz, None, kind=SurveyQuestionKind.TEXT, text="问", options=[])
    # Someone else's course: refused.
    stranger = UserFactory(username="other")
    grant(stranger, Role.INSTRUCTOR, kit.course.owner_unit)
    with pytest.raises(PermissionError):
        survey.save_question(stranger, kit.survey, None, kind=SurveyQuestionKind.TEXT, text="问", options=[])


def test_authoring_pages_add_edit_reorder_delete(client, kit):
    login(client, "teacher1")
    page = client.get(f"/teach/lessons/{kit.survey.id}/survey")
    assert page.status_code == 200 and "问卷题目" in page.get_data(as_text=True)
    r = client.post(
        f"/teach/lessons/{kit.survey.id}/survey",
        data={
            "new-kind": "rating",
            "new-text": "讲师讲解是否清楚？",
            "new-scale": "5",
            "new-options": "\n".join(LABELS),
            "new-required": "y",
        },
    )
    assert r.status_code == 302
    added = _questions(kit)[-1]
    assert (added.text, added.options, added.scale) == ("讲师讲解是否清楚？", LABELS, 5)
    # Bad input: a clear 400 in Chinese, nothing added.
    bad = client.post(
        f"/teach/lessons/{kit.survey.id}/survey",
        data={"new-kind": "single", "new-text": "只有一个选项", "new-options": "甲"},
    )
    assert bad.status_code == 400 and "未保存" in bad.get_data(as_text=True)
    assert len(_questions(kit)) == 3
    # Edit: the wording and the scale of an unanswered question.
    r = client.post(
        f"/teach/survey-questions/{added.id}/edit",
        data={
            f"q{added.id}-kind": "rating",
            f"q{added.id}-text": "讲解是否清楚？",
            f"q{added.id}-scale": "3",
            f"q{added.id}-options": "",
        },
    )
    assert r.status_code == 303
    db.session.refresh(added)
    assert (added.text, added.scale, added.options, added.required) == ("讲解是否清楚？", 3, [], False)
    # Reorder: up to the top.
    for _ in range(2):
        client.post(f"/teach/survey-questions/{added.id}/move", data={"direction": "up"})
    assert _questions(kit)[0].id == added.id
    assert client.post(f"/teach/survey-questions/{added.id}/move", data={"direction": "sideways"}).status_code == 400
    # Delete (nobody answered it): gone.
    client.post(f"/teach/survey-questions/{added.id}/delete")
    gone = select(func.count()).select_from(SurveyQuestion).where(SurveyQuestion.id == added.id)
    assert db.session.execute(gone).scalar_one() == 0


def test_learner_answers_and_a_second_submission_edits_visibly(client, kit, tree):
    q = _author_survey(kit)
    _enrolled(client, kit, tree)
    page = client.get(f"/learn/lessons/{kit.survey.id}").get_data(as_text=True)
    assert "很不满意" in page and "希望增加哪些内容？" in page and f'name="q{q["multiple"].id}"' in page
    url = f"/learn/lessons/{kit.survey.id}/feedback"
    answers = {
        f"q{q['rating'].id}": "4",
        f"q{q['comment'].id}": "很有收获",
        f"q{q['labelled'].id}": "5",
        f"q{q['single'].id}": "0",
        f"q{q['multiple'].id}": ["0", "2"],
    }
    # A required question left out: refused, in Chinese, nothing stored.
    missing = {k: v for k, v in answers.items() if k != f"q{q['single'].id}"}
    r = client.post(url, data=missing, follow_redirects=True)
    assert "请回答：您的学习方式" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(LessonFeedback)).scalar_one() == 0
    # Out of range, junk and NUL: refused the same way.
    for field, value in ((f"q{q['labelled'].id}", "6"), (f"q{q['single'].id}", "9"), (f"q{q['single'].id}", "x")):
        r = client.post(url, data={**answers, field: value}, follow_redirects=True)
        assert r.status_code == 200 and "请从给出的选项中选择" in r.get_data(as_text=True)
    r = client.post(url, data={**answers, f"q{q['comment'].id}": "坏\x00字"}, follow_redirects=True)
    assert "无法保存的字符" in r.get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(LessonFeedback)).scalar_one() == 0

    first = client.post(url, data=answers, follow_redirects=True).get_data(as_text=True)
    assert "感谢" in first
    page = client.get(f"/learn/lessons/{kit.survey.id}").get_data(as_text=True)
    assert 'id="survey-mine"' in page and "再次提交将修改这份回答" in page and "保存修改" in page and "很有收获" in page

    second = client.post(
        url, data={**answers, f"q{q['labelled'].id}": "2", f"q{q['multiple'].id}": ["1"]}, follow_redirects=True
    )
    html = second.get_data(as_text=True)
    assert "已修改您之前的回答" in html
    assert "课程安排是否合理？：5（很满意） → 2（不满意）" in html and "案例、互动 → 政策解读" in html
    same = client.post(
        url, data={**answers, f"q{q['labelled'].id}": "2", f"q{q['multiple'].id}": ["1"]}, follow_redirects=True
    )
    assert "您的回答没有变化" in same.get_data(as_text=True)
    # Clearing an optional answer is a change too.
    cleared = client.post(
        url,
        data={**answers, f"q{q['labelled'].id}": "2", f"q{q['multiple'].id}": [], f"q{q['comment'].id}": ""},
        follow_redirects=True,
    )
    assert "（未作答）" in cleared.get_data(as_text=True)
    sheet = db.session.execute(select(LessonFeedback)).scalar_one()
    assert sheet.updated_at is not None
    by_question = {a.question_id: a for a in sheet.answers}
    assert by_question[q["labelled"].id].score == 2 and q["multiple"].id not in by_question
    assert q["comment"].id not in by_question


def _answer(kit, tree, n, form):
    user = UserFactory(org_unit=tree.village_a, username=f"rater{n}")
    enrolment = enrolments.enrol(user, kit.course)
    feedback.submit_answers(user, kit.survey, enrolment, form)
    db.session.commit()


def test_report_mean_distribution_open_answers_and_exports(client, kit, tree):
    q = _author_survey(kit)
    for n, (score, choice, picks, text) in enumerate(
        [(1, "0", ["0"], "案例好"), (4, "1", ["0", "2"], ""), (4, "1", [], "多些互动"), (5, "0", ["1"], "")]
    ):
        form = {
            f"q{q['rating'].id}": [str(score)],
            f"q{q['labelled'].id}": [str(6 - score)],
            f"q{q['single'].id}": [choice],
            f"q{q['multiple'].id}": picks,
            f"q{q['comment'].id}": [text],
        }
        _answer(kit, tree, n, form)
    reports = {r.question.id: r for r in feedback.survey_report(kit.course)}
    rating = reports[q["rating"].id]
    assert (rating.count, rating.mean) == (4, 3.5)
    assert [(label, n) for label, n, _pct in rating.bars] == [("1", 1), ("2", 0), ("3", 0), ("4", 2), ("5", 1)]
    labelled = reports[q["labelled"].id]
    assert [label for label, _n, _p in labelled.bars] == [f"{i} {t}" for i, t in enumerate(LABELS, start=1)]
    assert reports[q["single"].id].bars == [("手机", 2, 50.0), ("电脑", 2, 50.0)]
    assert [(o, n) for o, n, _p in reports[q["multiple"].id].bars] == [("案例", 2), ("政策解读", 1), ("互动", 1)]
    assert [t for _w, t in reports[q["comment"].id].texts] == ["多些互动", "案例好"]

    login(client, "teacher1")
    html = client.get(f"/feedback/courses/{kit.course.id}/html").get_data(as_text=True)
    assert "平均 3.50 分（满分 5）" in html and "多些互动" in html and 'style="width: 50.0%"' in html
    assert client.get(f"/teach/courses/{kit.course.id}/feedback").status_code == 302
    table = feedback.report_table(feedback.survey_report(kit.course))
    raw = client.get(f"/feedback/courses/{kit.course.id}/csv").data
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == table.headers and rows[0][0] == "课时"
    assert rows[1:] == [[str(c) for c in row] for row in table.rows]
    assert ["学情评估", "您的学习方式", "单选题", "手机", "2", "50.0", "", ""] in rows
    book = load_workbook(io.BytesIO(client.get(f"/feedback/courses/{kit.course.id}/xlsx").data))
    sheet_rows = [["" if c is None else c for c in row] for row in book.active.iter_rows(values_only=True)]
    assert sheet_rows[0] == table.headers
    assert sheet_rows[1:] == [[float(c) if isinstance(c, Decimal) else c for c in row] for row in table.rows]
    # One lesson only, and a lesson of another course: 404.
    assert client.get(f"/feedback/courses/{kit.course.id}/html?lesson={kit.survey.id}").status_code == 200
    assert client.get(f"/feedback/courses/{kit.course.id}/html?lesson=999999").status_code == 404
    assert client.get(f"/feedback/courses/{kit.course.id}/pdf").status_code == 404


def test_report_readers_are_authors_and_admins_in_scope(app, kit, tree):
    city_admin = UserFactory(username="city_admin", org_unit=tree.city)
    grant(city_admin, Role.ORG_ADMIN, tree.city)
    county_admin = UserFactory(username="county_admin", org_unit=tree.county_b)
    grant(county_admin, Role.ORG_ADMIN, tree.county_b)
    UserFactory(username="plain", org_unit=tree.village_a)
    db.session.commit()
    expect = {"teacher1": 200, "city_admin": 200, "county_admin": 403, "plain": 403}
    for name, status in expect.items():
        client = app.test_client()
        login(client, name)
        assert client.get(f"/feedback/courses/{kit.course.id}/html").status_code == status, name
    client = app.test_client()
    login(client, "city_admin")
    assert client.get("/feedback/?year=99999").status_code == 200
    login(client := app.test_client(), "plain")
    assert client.get("/feedback/").status_code == 403


def test_an_answered_question_is_archived_and_keeps_its_answers(client, kit, tree):
    q = _author_survey(kit)
    _answer(kit, tree, 1, {f"q{q['rating'].id}": ["3"], f"q{q['labelled'].id}": ["4"], f"q{q['single'].id}": ["1"]})
    with pytest.raises(CourseError, match="已有回答"):
        survey.save_question(
            kit.author, kit.survey, q["labelled"], kind=SurveyQuestionKind.RATING, text="改", options=[], scale=10
        )
    # The wording and labels may still be corrected.
    survey.save_question(
        kit.author,
        kit.survey,
        q["labelled"],
        kind=SurveyQuestionKind.RATING,
        text="课程安排是否合理",
        options=LABELS,
        scale=5,
    )
    db.session.commit()
    login(client, "teacher1")
    r = client.post(f"/teach/survey-questions/{q['labelled'].id}/delete", follow_redirects=True)
    assert "已停用，未删除" in r.get_data(as_text=True)
    db.session.refresh(q["labelled"])
    assert q["labelled"].archived_at is not None
    assert (
        db.session.execute(select(func.count()).where(SurveyAnswer.question_id == q["labelled"].id)).scalar_one() == 1
    )
    # Off the form, still in the report, marked archived.
    assert q["labelled"] not in _questions(kit)
    report = client.get(f"/feedback/courses/{kit.course.id}/html").get_data(as_text=True)
    assert "课程安排是否合理" in report and "已停用" in report
    # A survey whose every question is archived cannot be published.
    for question in _questions(kit):
        survey.delete_question(kit.author, question)
    db.session.commit()
    assert any("问卷" in p for p in publish_problems(kit.course))


def test_the_old_two_field_form_still_lands_in_the_first_questions(kit, tree):
    user = UserFactory(org_unit=tree.village_a, username="old")
    enrolment = enrolments.enrol(user, kit.course)
    feedback.submit_feedback(user, kit.survey, enrolment, 5, "很好")
    db.session.commit()
    rating, comment = _questions(kit)
    answers = {a.question_id: a for a in db.session.execute(select(SurveyAnswer)).scalars()}
    assert answers[rating.id].score == 5 and answers[comment.id].text == "很好"
    with pytest.raises(feedback.FeedbackError):
        feedback.submit_feedback(user, kit.survey, enrolment, 9, "")
