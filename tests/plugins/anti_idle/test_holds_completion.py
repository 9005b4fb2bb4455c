"""``verdicts.holds_completion``: which days hold a lesson's completion (both databases).

On PostgreSQL the check is a prepared statement on the beat's cursor, not the ORM's
``_holds_completion_statement`` (whose execution was most of a completing beat's cost): the
two must agree on every kind of day, and the check must see a day still pending in the
session, as the ORM's autoflush made it see.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event

from lms_core.extensions import db
from plugins.anti_idle.models import DayLesson, DayVerdict
from plugins.anti_idle.verdicts import _holds_completion_statement, holds_completion
from tests.factories import UserFactory

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])
DAY = dt.date(2026, 5, 10)


def _orm_holds(user_id: int, lesson_id: int) -> bool:
    params = {"user_id": user_id, "lesson_id": lesson_id}
    return db.session.execute(_holds_completion_statement(), params).first() is not None


@pytest.mark.parametrize("review_state", ["none", "pending", "posted", "voided"])
@pytest.mark.parametrize("verdict", ["held", "credited"])
def test_a_held_day_not_posted_holds_the_lessons_it_touched(kit, tree, verdict, review_state):
    person, other = UserFactory(org_unit=tree.village_a), UserFactory(org_unit=tree.village_a)
    db.session.commit()
    day = DayVerdict(user_id=person.id, day=DAY, verdict=verdict, review_state=review_state)
    db.session.add(day)
    db.session.flush()
    # Added, not flushed: the check runs after the session's pending changes.
    db.session.add(DayLesson(day_verdict_id=day.id, user_id=person.id, lesson_id=kit.video.id))
    expected = verdict == "held" and review_state != "posted"
    assert holds_completion(person.id, kit.video.id) is expected
    assert _orm_holds(person.id, kit.video.id) is expected
    for user_id, lesson_id in ((person.id, kit.document.id), (other.id, kit.video.id)):
        assert holds_completion(user_id, lesson_id) is False
        assert _orm_holds(user_id, lesson_id) is False


@pytest.mark.backends("postgresql")
def test_on_postgresql_the_check_is_the_beats_prepared_statement(kit, tree):
    """Not the ORM's execution (cache key, compiled context, result): ~0.2-0.3 ms of CPU per
    completing beat (docs/benchmarks.md, "the completion burst")."""
    person = UserFactory(org_unit=tree.village_a)
    db.session.commit()
    sent: list[str] = []

    def count(_conn, _cursor, statement, *_args):  # noqa: ANN001, ANN002
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert holds_completion(person.id, kit.document.id) is False
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert not [s for s in sent if "anti_idle_day_verdicts" in s], sent


@pytest.mark.backends("postgresql")
def test_a_rounds_holds_are_read_at_once_and_asked_again_once_a_day_is_written(kit, tree):
    """``read_holds`` (``lms_completion_group_read``): the round's pairs in one statement, then
    ``holds_completion`` answers them with none; a person whose day is written in the round
    (``_day_written``: a fold, a replay) is asked of the database again, and sees the write."""
    from lms_core.learning import beat_group, beat_tx
    from plugins.anti_idle import verdicts
    from tests.lms_core.learning.test_beat_asgi import psycopg_statements

    held, free, later = (UserFactory(org_unit=tree.village_a) for _ in range(3))
    db.session.commit()
    day = DayVerdict(user_id=held.id, day=DAY, verdict="held", review_state="pending")
    db.session.add(day)
    db.session.flush()
    db.session.add(DayLesson(day_verdict_id=day.id, user_id=held.id, lesson_id=kit.video.id))
    db.session.flush()
    video, document = kit.video.id, kit.document.id
    info = beat_tx.connection().info
    batch = beat_group.begin(info)
    try:
        pairs = [(u.id, video) for u in (held, free, later)]
        with psycopg_statements() as statements:
            verdicts.read_holds(batch, sorted(pairs))
            answers = [holds_completion(u, lesson) for u, lesson in pairs]
        assert answers == [True, False, False]
        assert len(statements) == 1 and "unnest" in statements[0], statements
        # A pair not read ahead: asked of the database.
        with psycopg_statements() as statements:
            assert holds_completion(held.id, document) is False
        assert len(statements) == 1, statements
        # ``later``'s day becomes held in the round: read ahead no more.
        other = DayVerdict(user_id=later.id, day=DAY, verdict="held", review_state="none")
        db.session.add(other)
        db.session.flush()
        db.session.add(DayLesson(day_verdict_id=other.id, user_id=later.id, lesson_id=video))
        assert holds_completion(later.id, video) is False  # still the read ahead's answer
        verdicts._day_written(later.id)
        with psycopg_statements() as statements:
            assert holds_completion(later.id, video) is True
            assert holds_completion(free.id, video) is False
        assert [s for s in statements if "SELECT" in s] == [verdicts._PG_HOLDS_COMPLETION], statements
    finally:
        beat_group.end(info)
