"""One survey answer per person and lesson: a second submission edits the first, visibly."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lms_core.extensions import db
from lms_core.learning.models import LessonFeedback
from tests.conftest import login
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course


@pytest.fixture
def client_in(app, tree, client):
    kit = build_course(tree)
    UserFactory(username="liming", org_unit=tree.village_a)
    db.session.commit()
    login(client, "liming")
    client.post(f"/courses/{kit.course.id}/enrol")
    return kit, client


def test_second_submission_edits_the_first_and_says_so(client_in):
    kit, client = client_in
    url = f"/learn/lessons/{kit.survey.id}/feedback"
    first = client.post(url, data={"rating": "4", "comment": "很有收获"}, follow_redirects=True)
    assert "感谢" in first.get_data(as_text=True)
    page = client.get(f"/learn/lessons/{kit.survey.id}").get_data(as_text=True)
    assert 'id="survey-mine"' in page and "再次提交将修改这份回答" in page and "保存修改" in page
    assert "很有收获" in page and 'value="4" required checked' in page

    second = client.post(url, data={"rating": "2", "comment": "很有收获"}, follow_redirects=True)
    html = second.get_data(as_text=True)
    assert "已修改您之前的回答：评分 4 → 2" in html and "最后修改于" in html
    rows = db.session.execute(select(func.count()).select_from(LessonFeedback)).scalar_one()
    assert rows == 1
    row = db.session.execute(select(LessonFeedback)).scalar_one()
    assert (row.rating, row.comment) == (2, "很有收获") and row.updated_at is not None

    same = client.post(url, data={"rating": "2", "comment": "很有收获"}, follow_redirects=True)
    assert "您的回答没有变化" in same.get_data(as_text=True)
    comment = client.post(url, data={"rating": "2", "comment": "建议增加案例"}, follow_redirects=True)
    assert "意见已更新" in comment.get_data(as_text=True)
