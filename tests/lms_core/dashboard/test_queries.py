"""The dashboard's cost does not grow with the learner's courses (no N+1 queries).

The dashboard is the most visited page (docs/benchmarks.md); these tests pin the
query shape found while benchmarking it: courses are loaded with the enrolments,
the session user's roles with the user, and progress in one grouped query.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event

from lms_core.courses.models import Course, Lesson, LessonKind, Section
from lms_core.enrolments.models import Enrolment
from lms_core.extensions import db
from lms_core.learning.models import LessonProgress, ProgressStatus
from lms_core.learning.services import progress_by_course
from tests.conftest import login
from tests.factories import UserFactory


def _course(tree: Any, n: int) -> tuple[Course, list[Lesson]]:
    course = Course(code=f"Q{n}", title=f"课程{n}", published=True, owner_unit_id=tree.city.id)
    section = Section(course=course, title="一", position=0)
    lessons = [
        Lesson(section=section, course=course, title=f"第{i}节", kind=LessonKind.DOCUMENT, position=i, required=i < 2)
        for i in range(3)
    ]  # two required, one optional
    db.session.add(course)
    db.session.flush()
    return course, lessons


def _enrol(user: Any, course: Course) -> None:
    db.session.add(Enrolment(user_id=user.id, course_id=course.id, registration=str(uuid.uuid4())))


def _progress(user: Any, lesson: Lesson, status: ProgressStatus) -> None:
    db.session.add(LessonProgress(user_id=user.id, lesson_id=lesson.id, course_id=lesson.course_id, status=status))


def test_progress_counts_completed_required_lessons_of_this_user_only(tree: Any) -> None:
    me = UserFactory(org_unit=tree.village_a)
    other = UserFactory(org_unit=tree.village_a)
    (c0, l0), (c1, _l1) = _course(tree, 0), _course(tree, 1)
    _progress(me, l0[0], ProgressStatus.COMPLETED)
    _progress(me, l0[1], ProgressStatus.IN_PROGRESS)
    _progress(me, l0[2], ProgressStatus.COMPLETED)  # optional lesson: not counted
    _progress(other, l0[1], ProgressStatus.COMPLETED)  # someone else's
    db.session.commit()
    assert progress_by_course(me.id, [c0.id, c1.id, 999_999]) == {c0.id: (1, 2), c1.id: (0, 2), 999_999: (0, 0)}
    assert progress_by_course(other.id, [c0.id]) == {c0.id: (1, 2)}
    assert progress_by_course(me.id, []) == {}


def _dashboard_queries(app: Any, client: Any) -> tuple[int, str]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        page = client.get("/dashboard")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert page.status_code == 200
    return len(statements), page.get_data(as_text=True)


@pytest.mark.parametrize("courses", [1, 4])
def test_dashboard_query_count_does_not_grow_with_courses(app: Any, client: Any, tree: Any, courses: int) -> None:
    learner = UserFactory(username="liming", org_unit=tree.village_a)
    for n in range(courses):
        course, lessons = _course(tree, n)
        _enrol(learner, course)
        _progress(learner, lessons[0], ProgressStatus.COMPLETED)
    db.session.commit()
    assert login(client, "liming").status_code == 302
    count, html = _dashboard_queries(app, client)
    for n in range(courses):
        assert f"课程{n}" in html
    # user+roles, covering assignments, enrolments+courses, progress, year hours
    assert count <= 5, count
