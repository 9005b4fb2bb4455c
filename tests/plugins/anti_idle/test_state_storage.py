"""How PostgreSQL stores the person's state row (migration 0009anti_idle_state_storage).

The row is rewritten by every beat. Past ~2 kB PostgreSQL's default compresses it with
pglz on each write (about a quarter of PostgreSQL's work for a round's writes, callgrind);
the table's ``toast_tuple_target`` keeps it inline and uncompressed up to a page.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from lms_core.extensions import db
from plugins.anti_idle import state
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])

#: PostgreSQL's TOAST_TUPLE_THRESHOLD (8 kB pages): a longer row is compressed by default.
TOAST_THRESHOLD = 2032


@pytest.mark.backends("postgresql")
def test_a_busy_days_state_row_is_stored_uncompressed(me):
    at = T0
    for _ in range(state.SESSIONS_KEPT + 24):  # a session per lesson page opened: the row grows
        tab = me.open(at=at, deliver=LECTURE_BYTES)
        at = me.play(tab, at, 20, from_pos=0)
    size, sessions, tally = db.session.execute(
        text(
            "SELECT pg_column_size(st.*), pg_column_compression(st.sessions), pg_column_compression(st.day_tally) "
            "FROM anti_idle_person_states AS st WHERE st.user_id = :user_id"
        ),
        {"user_id": me.user.id},
    ).one()
    assert size > TOAST_THRESHOLD  # past the point where the default compresses ...
    assert (sessions, tally) == (None, None)  # ... and stored as written
