"""Catalogue search by pinyin and initials, folded into courses.search_text."""

from __future__ import annotations

import re

import pytest

from lms_core.courses import services as courses
from lms_core.courses.models import course_search_text, pinyin_lines
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course


def test_pinyin_lines_full_and_initials():
    assert pinyin_lines("法治政府建设") == "fazhizhengfujianshe\nfzzfjs"
    assert pinyin_lines("2024年重庆：银行") == "nianchongqing yinhang\nncq yh"  # runs, polyphones by context
    assert pinyin_lines("ABC 123") == ""
    folded = course_search_text("FZ01", "法治政府", "依法行政")
    assert folded.splitlines() == ["fz01", "法治政府", "依法行政", "fazhizhengfu", "fzzf"]


@pytest.fixture
def catalogue(app, tree, client):
    kit = build_course(tree)
    author = kit.author
    for code, title in (("FZ01", "法治政府建设专题"), ("DJ01", "党的建设"), ("JC01", "基层治理")):
        course = courses.create_course(author, code=code, title=title)
        section = courses.add_section(author, course, "一")
        courses.add_lesson(author, section, title="测验", kind=kit.quiz.kind)
        from lms_core.quizzes import services as quizzes
        from lms_core.quizzes.models import QuestionKind

        lesson = section.lessons[0]
        quizzes.add_question(author, lesson, kind=QuestionKind.TRUE_FALSE, text="对吗", options=[], correct=[0])
        courses.set_published(author, course, True)
    UserFactory(username="liming", org_unit=tree.village_a)
    db.session.commit()
    login(client, "liming")
    return client


def _found(client, q: str) -> set[str]:
    html = client.get("/courses/", query_string={"q": q}).get_data(as_text=True)
    return {t for t in ("法治政府建设专题", "党的建设", "基层治理") if re.search(re.escape(t), html)}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("fazhi", {"法治政府建设专题"}),
        ("fzzf", {"法治政府建设专题"}),
        ("FZZF", {"法治政府建设专题"}),
        ("ｆｚｚｆ", {"法治政府建设专题"}),  # full-width letters from a Chinese keyboard
        ("jianshe", {"法治政府建设专题", "党的建设"}),
        ("jczl", {"基层治理"}),
        ("法治", {"法治政府建设专题"}),
        ("zzzz", set()),
    ],
)
def test_catalogue_finds_pinyin_and_initials(catalogue, q, expected):
    assert _found(catalogue, q) == expected


def test_renaming_a_course_refreshes_its_pinyin(catalogue, tree):
    from sqlalchemy import select

    from lms_core.courses.models import Course

    course = db.session.execute(select(Course).filter_by(code="JC01")).scalar_one()
    course.title = "乡村振兴"
    db.session.commit()
    assert "乡村振兴" in catalogue.get("/courses/?q=xczx").get_data(as_text=True)
    assert "乡村振兴" not in catalogue.get("/courses/?q=jczl").get_data(as_text=True)
