"""The course page and the catalogue cost a fixed number of queries (no N+1).

With the dashboard (tests/lms_core/dashboard/test_queries.py) these are the pages benchmarked for
issue 3 (docs/benchmarks.md); the shapes pinned here are the ones measured there.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event

from lms_core.courses.models import Course, CourseInstructor, Lesson, LessonKind, Section, Topic
from lms_core.enrolments.models import Enrolment
from lms_core.extensions import db
from lms_core.learning.models import LessonProgress, ProgressStatus
from tests.conftest import login
from tests.factories import UserFactory


def _queries(client: Any, path: str) -> tuple[int, str]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        page = client.get(path)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert page.status_code == 200
    return len(statements), page.get_data(as_text=True)


def _course(tree: Any, n: int, *, sections: int, topic: Topic, instructor: Any) -> tuple[Course, list[Lesson]]:
    course = Course(code=f"P{n}", title=f"课程{n}", published=True, owner_unit_id=tree.city.id, topic=topic)
    lessons = []
    for s in range(sections):
        section = Section(course=course, title=f"第{s + 1}章", position=s)
        lessons += [
            Lesson(
                section=section, course=course, title=f"第{s + 1}章第{i + 1}节", kind=LessonKind.DOCUMENT, position=i
            )
            for i in range(2)
        ]
    Section(course=course, title="空章", position=sections)  # a section without lessons still shows
    db.session.add(course)
    db.session.flush()
    db.session.add(CourseInstructor(course_id=course.id, user_id=instructor.id))
    return course, lessons


@pytest.mark.parametrize("sections", [1, 4])
def test_course_page_query_count_does_not_grow_with_its_outline(client: Any, tree: Any, sections: int) -> None:
    learner = UserFactory(username="liming", org_unit=tree.village_a)
    teacher = UserFactory(full_name="王讲师", org_unit=tree.city)
    course, lessons = _course(tree, 0, sections=sections, topic=Topic(name="党史"), instructor=teacher)
    db.session.add(Enrolment(user_id=learner.id, course_id=course.id, registration=str(uuid.uuid4())))
    db.session.add(
        LessonProgress(
            user_id=learner.id, lesson_id=lessons[0].id, course_id=course.id, status=ProgressStatus.COMPLETED
        )
    )
    db.session.commit()
    assert login(client, "liming").status_code == 302
    count, html = _queries(client, f"/courses/{course.id}")
    # session user; course+topic+enrolment+instructor names; outline+progress
    assert count <= 3, count
    assert all(lesson.title in html for lesson in lessons)
    assert "空章" in html and "党史" in html and "王讲师" in html
    assert f"1/{len(lessons)}" in html  # the course progress bar counts this learner's completed lesson


@pytest.mark.parametrize("courses", [2, 25])
def test_catalogue_query_count_does_not_grow_with_courses(client: Any, tree: Any, courses: int) -> None:
    learner = UserFactory(username="liming", org_unit=tree.village_a)
    teacher = UserFactory(full_name="王讲师", org_unit=tree.city)
    topic = Topic(name="党史")
    made = [_course(tree, n, sections=1, topic=topic, instructor=teacher)[0] for n in range(courses)]
    db.session.add(Enrolment(user_id=learner.id, course_id=made[0].id, registration=str(uuid.uuid4())))
    db.session.commit()
    assert login(client, "liming").status_code == 302
    count, html = _queries(client, "/courses/?q=课程")
    # session user; the page of courses (+ enrolled flags, instructor names, total); topics
    assert count <= 3, count
    assert html.count("王讲师") == min(courses, 20) and html.count("党史") >= min(courses, 20)
    assert html.count("<strong>") == 1  # "enrolled" on the one course this learner is enrolled in


def test_instructor_names_come_in_user_order(client: Any, tree: Any) -> None:
    UserFactory(username="liming", org_unit=tree.village_a)
    first = UserFactory(full_name="王讲师", org_unit=tree.city)
    second = UserFactory(full_name="李教授", org_unit=tree.city)
    course, _lessons = _course(tree, 0, sections=1, topic=Topic(name="党史"), instructor=second)
    db.session.add(CourseInstructor(course_id=course.id, user_id=first.id))  # added last, listed first
    db.session.commit()
    assert first.id < second.id
    assert login(client, "liming").status_code == 302
    assert "王讲师、李教授" in client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert "王讲师、李教授" in client.get("/courses/").get_data(as_text=True)
