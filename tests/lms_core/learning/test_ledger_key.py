"""A ledger interval refers to its session, person and lesson by one key (migration 0031ledgerfk).

The three foreign keys it replaced let an interval name a session of another person or
lesson; the composite key to ``learning_sessions (id, user_id, lesson_id)`` does not.
"""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.learning.models import LearningInterval
from tests.factories import UserFactory
from tests.lms_core.learning.test_beats import T0, open_session


def _interval(session_id: str, user_id: int, lesson_id: int) -> dict[str, object]:
    return {
        "session_id": session_id,
        "user_id": user_id,
        "lesson_id": lesson_id,
        "seq": 1,
        "wall_start": T0,
        "wall_end": T0,
        "claimed_segments": [],
        "credited_segments": [],
        "claimed_ms": 0,
        "credited_ms": 0,
        "verdict": "credit",
        "reasons": [],
        "client": {},
        "created_at": T0,
    }


def _refused(row: dict[str, object]) -> bool:
    try:
        with db.session.begin_nested():
            db.session.execute(insert(LearningInterval), [row])
    except IntegrityError:
        return True
    return False


def test_an_interval_names_its_sessions_person_and_lesson(kit, tree):
    learner, other = (UserFactory(org_unit=tree.village_a, full_name=name) for name in ("钱进", "孙丽"))
    for user in (learner, other):
        enrolments.enrol(user, kit.course)
    db.session.commit()
    session = open_session(learner, kit.document)
    assert _refused(_interval(session.id, other.id, kit.document.id))  # another person's session
    assert _refused(_interval(session.id, learner.id, kit.video.id))  # another lesson's session
    assert _refused(_interval("0" * 32, learner.id, kit.document.id))  # no such session
    assert not _refused(_interval(session.id, learner.id, kit.document.id))
    assert db.session.query(LearningInterval).filter_by(session_id=session.id).count() == 1
