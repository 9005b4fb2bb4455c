"""A person-day's first beat (``verdicts.record_online``): the day is replayed (its verdict goes
from none to credited) and the person's state row keeps the day's tally as the next beat would
read it back from the day verdict row (``verdicts._row_tally``), not dropped and read again.

What must not change with it: the next beats' decisions and the day verdict equal the replay
(``test_person_state``, ``test_recompute``); on PostgreSQL the round does the same
(``test_round_fold``)."""

from __future__ import annotations

import pytest

from lms_core.extensions import db
from plugins.anti_idle import state
from plugins.anti_idle.verdicts import _day_tally, assess_day, settle
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0, S

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])


def test_a_days_first_beat_keeps_the_day_as_its_row_reads_back(me):
    tab = me.open(at=T0, deliver=LECTURE_BYTES)
    me.beat(tab, T0 + 10 * S, [[0, 10]])
    day = me.verdict().day
    kept = state.load_unlocked(me.user.id)
    assert kept.tally_day == day and kept.day_tally is not None
    assert kept.day_tally == _day_tally(me.user.id, day)  # what the next beat would have read


def test_the_kept_day_goes_on_as_the_row_read_back_would(me):
    tab = me.open(at=T0, deliver=LECTURE_BYTES)
    me.play(tab, T0, 120)  # the first beat replays the day, the next ones add to the kept tally
    settle(me.user.id)
    db.session.commit()
    db.session.expire_all()
    online = me.verdict()
    folded = {k: getattr(online, k) for k in ("verdict", "credited_ms", "claimed_ms", "beats", "held_ms")}
    assert folded["beats"] == 12
    replayed = assess_day(me.user.id, online.day)
    assert replayed is not None
    assert {k: getattr(replayed, k) for k in folded} == folded
