"""A beat committed while the bulk recompute judges its person's chunk (PostgreSQL, two real
connections).

The recompute reads a chunk's raw beats, judges their days, then writes the day verdicts and
drops the people's online tallies (``state.forget_days``): the day verdicts it wrote hold the
whole day. A beat that committed between the chunk's read and its write was in neither: its
credit went into the tally the write dropped, and the day verdict missed it until the day was
recomputed again. The chunk now takes its people's clock rows before it reads (the lock every
round of beats takes, in user order), so such a beat waits for the chunk and then counts on
top of the verdict it wrote.
"""

from __future__ import annotations

import threading

import pytest
import time_machine

from lms_core.accounts.models import User
from lms_core.extensions import db
from lms_core.learning import services as learning
from plugins.anti_idle import envelope as beat_envelope
from plugins.anti_idle import recompute
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0, S
from tests.plugins.anti_idle.test_state_lock_race import DAY, _Side, _waits

pytestmark = [pytest.mark.app_config(LMS_PLUGINS=["anti_idle"]), pytest.mark.backends("postgresql")]


def test_a_beat_during_a_recompute_chunk_keeps_its_credit(app, me, monkeypatch):
    tab = me.open(at=T0, deliver=LECTURE_BYTES)
    me.play(tab, T0, 30)  # three beats, 30 s
    user_id, session_id = me.user.id, tab.session.id
    judged, go_on = threading.Event(), threading.Event()
    write = recompute._write

    def write_later(*args, **kwargs):  # the chunk is read and judged; its write waits
        judged.set()
        go_on.wait(30)
        return write(*args, **kwargs)

    monkeypatch.setattr(recompute, "_write", write_later)

    def fourth_beat() -> None:
        body = {
            "seq": 4,
            "event": "heartbeat",
            "segments": [[30, 40]],
            "position": 40,
            "client": {"visibility": "visible", "rate": 1, "muted": False},
        }
        with beat_envelope.signed(session_id, body) as verdict:
            assert verdict == "valid"
            learning.record_beat(session_id, db.session.get(User, user_id), body)
        db.session.commit()

    recomputing, beating = _Side(app), _Side(app)
    try:
        with time_machine.travel(T0 + 40 * S, tick=False):
            chunk = recomputing.later(lambda: recompute.recompute_since(DAY, commit=db.session.commit))
            assert judged.wait(30)
            beat = beating.later(fourth_beat)
            waited = _waits(beating, beat)
            go_on.set()
            chunk.result(30)
            beat.result(30)
    finally:
        go_on.set()
        recomputing.close()
        beating.close()
    assert me.verdict(DAY).credited_ms == 40_000, "the beat's credit was lost with the dropped tally"
    assert waited, "the beat did not wait for the recompute's chunk"
