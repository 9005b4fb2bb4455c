"""The rows a beat updates keep room on their page for the next version (migration 0030hotroom).

An update that changes no indexed column is HOT (no new index entry, one page) only when
the new version fits on the row's page. With PostgreSQL's default fillfactor, inserts pack
a page full and the first update of each of its rows went to another page, with a new
entry in each of the table's indexes.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.learning.models import LearningSession
from tests.factories import UserFactory
from tests.lms_core.learning.test_beats import T0, beat, open_session

pytestmark = pytest.mark.backends("postgresql")


def _block(session_id: str) -> int:
    """The heap page the session's row is on (its ctid's block number)."""
    ctid = db.session.execute(
        text("SELECT ctid::text FROM learning_sessions WHERE id = :id"), {"id": session_id}
    ).scalar_one()
    return int(ctid.strip("()").split(",")[0])


def _updates(table: str) -> tuple[int, int]:
    """(updates, HOT updates) of ``table`` in this transaction (the test's, rolled back after)."""
    found = db.session.execute(
        text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = :t"), {"t": table}
    ).one()
    return int(found[0]), int(found[1])


def test_a_beat_updates_its_session_row_in_place_on_a_page_filled_by_inserts(kit, tree):
    learner = UserFactory(org_unit=tree.village_a, full_name="赵敏")
    enrolments.enrol(learner, kit.course)
    db.session.commit()
    first = open_session(learner, kit.document)
    page = _block(first.id)
    # more sessions until the inserts move on to the next page: the first page is as full
    # as inserts fill it
    for _ in range(500):
        if _block(open_session(learner, kit.document).id) != page:
            break
    else:
        pytest.fail("500 sessions fit on one page")
    assert db.session.query(LearningSession).filter_by(user_id=learner.id).count() > 10
    before = _updates("learning_sessions")
    r = beat(first, learner, T0 + dt.timedelta(seconds=10), seq=1, visible_ms=10_000)
    assert r.accepted
    updated, hot = (after - was for after, was in zip(_updates("learning_sessions"), before, strict=True))
    assert updated >= 1
    assert hot == updated  # every update of the session row stayed on its page
    assert _block(first.id) == page
