"""A raw beat refers to its session, person and lesson by one key (migration
0011anti_idle_beat_session_key): it cannot name another person's or lesson's session. Its
course is its lesson's (migration 0012anti_idle_beat_no_course): it has no column of its own."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from lms_core.courses import services as courses
from lms_core.courses import structure
from lms_core.courses.models import Lesson
from lms_core.courses.services import CourseError
from lms_core.extensions import db
from plugins.anti_idle.models import Beat
from tests.plugins.anti_idle.harness import T0, other_learner

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])


def _beat(session_id: str, user_id: int, lesson_id: int) -> dict[str, object]:
    return {
        "session_id": session_id,
        "user_id": user_id,
        "lesson_id": lesson_id,
        "seq": 1,
        "lesson_kind": "document",
        "event": "heartbeat",
        "received_at": T0,
        "wall_start": T0,
        "launched_at": T0,
    }


def _refused(row: dict[str, object]) -> bool:
    try:
        with db.session.begin_nested():
            db.session.execute(insert(Beat), [row])
    except IntegrityError:
        return True
    return False


def test_a_raw_beat_names_its_sessions_person_and_lesson(kit, tree, me):
    other = other_learner(tree, me)
    tab = me.open(me.document, at=T0)
    sid = tab.session.id
    assert _refused(_beat(sid, other.user.id, me.document.id))  # another person's session
    assert _refused(_beat(sid, me.user.id, me.short.id))  # another lesson's session
    assert _refused(_beat("0" * 32, me.user.id, me.document.id))  # no such session
    assert not _refused(_beat(sid, me.user.id, me.document.id))
    assert db.session.query(Beat).filter_by(session_id=sid).count() == 1


def test_a_raw_beats_course_is_its_lessons_which_never_changes(kit, tree, me):
    """The course a beat was received in is its lesson's course, now and later: the beat has no
    course column, and a lesson cannot move to another course."""
    assert "course_id" not in Beat.__table__.c
    tab = me.open(me.document, at=T0)
    assert not _refused(_beat(tab.session.id, me.user.id, me.document.id))
    course_of = (
        select(Lesson.course_id).join(Beat, Beat.lesson_id == Lesson.id).where(Beat.session_id == tab.session.id)
    )
    assert db.session.scalars(course_of).one() == kit.course.id
    other = courses.create_course(kit.author, code="ELSEWHERE", title="别的课程")
    section = courses.add_section(kit.author, other, "别的章节")
    with pytest.raises(CourseError):
        structure.update_lesson(
            kit.author, me.document, title=me.document.title, required=me.document.required, section=section
        )
    assert db.session.scalars(course_of).one() == kit.course.id
