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


def test_a_beat_updates_its_session_row_in_place_on_a_page_filled_by_inserts(kit, tree):
    learner = UserFactory(org_unit=tree.village_a, full_name="赵敏")
    enrolments.enrol(learner, kit.course)
    db.session.commit()
    # sessions until the inserts move on to another page: the page of the one before is as
    # full as inserts fill it
    last = open_session(learner, kit.document)
    for _ in range(500):
        newest = open_session(learner, kit.document)
        if _block(newest.id) != _block(last.id):
            break
        last = newest
    else:
        pytest.fail("500 sessions fit on one page")
    page = _block(last.id)
    r = beat(last, learner, T0 + dt.timedelta(seconds=10), seq=1, visible_ms=10_000)
    assert r.accepted and db.session.get(LearningSession, last.id).last_seq == 1
    # Its new version is on the same page: a HOT update (the beat changes no indexed column, so
    # only a page without room for the version moves it, with a new entry in each index).
    assert _block(last.id) == page
