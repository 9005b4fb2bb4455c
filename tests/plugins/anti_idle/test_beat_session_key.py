"""A raw beat refers to its session, person and lesson by one key (migration
0011anti_idle_beat_session_key): it cannot name another person's or lesson's session."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from lms_core.extensions import db
from plugins.anti_idle.models import Beat
from tests.plugins.anti_idle.harness import T0, other_learner

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])


def _beat(session_id: str, user_id: int, lesson_id: int, course_id: int) -> dict[str, object]:
    return {
        "session_id": session_id,
        "user_id": user_id,
        "lesson_id": lesson_id,
        "course_id": course_id,
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
    sid, course = tab.session.id, kit.course.id
    assert _refused(_beat(sid, other.user.id, me.document.id, course))  # another person's session
    assert _refused(_beat(sid, me.user.id, me.short.id, course))  # another lesson's session
    assert _refused(_beat("0" * 32, me.user.id, me.document.id, course))  # no such session
    assert _refused(_beat(sid, me.user.id, me.document.id, 10**9))  # no such course (its own key)
    assert not _refused(_beat(sid, me.user.id, me.document.id, course))
    assert db.session.query(Beat).filter_by(session_id=sid).count() == 1
