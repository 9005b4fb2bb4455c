"""R12 (one device, several accounts) when the accounts beat at the same time on two connections
(PostgreSQL, two real transactions).

R12 reads other people's credited beats from the device's address without their locks (a
person's beat holds only that person's rows, in user order: ``services.lock_clocks``). What
that can and cannot change, checked here (docs/anti_idle.md, "R12 and other people's beats"):

* credit: nothing. R12 removes no time, and each account's credit is judged on its own rows
  under its own lock: both accounts are credited what each would be alone, and their beats
  never wait for each other;
* the online finding: a day assessment inside a beat's transaction (``record_online`` replays
  the day there) sees the other account's *committed* beats only. Two such transactions in
  flight at once each miss the other's beat, an outcome no one-by-one order gives (the later
  one would see the earlier): the overlap crosses ``shared_overlap_seconds`` and neither
  online finding says so;
* the day's assessment once the day is over (``recompute --user --day`` and ``--all``) reads
  a set of beats that no longer changes: both accounts get the same R12 finding, whatever the
  interleaving was, and the day's figures (verdict, credited, held, deducted, void) are the
  online ones, since R12 alone holds nothing.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
import time_machine

from lms_core.accounts.models import User
from lms_core.extensions import db
from lms_core.learning import services as learning
from plugins.anti_idle import envelope as beat_envelope
from plugins.anti_idle import recompute, verdicts
from plugins.anti_idle.models import DayVerdict
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0, Learner, S, other_learner
from tests.plugins.anti_idle.test_state_lock_race import DAY, _Side

pytestmark = [pytest.mark.app_config(LMS_PLUGINS=["anti_idle"]), pytest.mark.backends("postgresql")]

OFFICE_IP = "10.3.0.1"
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0"
PC_A = {"presence": {"device": "a1b2c3"}}
#: The day is over (09:00 Beijing the next morning): its judgement is final.
NEXT_MORNING = dt.datetime(2026, 5, 11, 1, 0, tzinfo=dt.UTC)


def _r12(v: DayVerdict | None) -> dict[str, Any]:
    assert v is not None
    finding = (v.tally.get("day_rules") or {}).get("R12")
    assert finding is not None, v.tally
    return {k: finding[k] for k in ("score", "variant", "amount_ms", "params")}


def _beat_and_judge(user_id: int, session_id: str, ready: threading.Barrier) -> tuple[int, dict[str, Any]]:
    """One account's beat and the day's replay a beat may run online (``record_online`` calls
    ``assess_day`` in the beat's transaction), then the COMMIT once the other side got as far."""
    body = {
        "seq": 6,
        "event": "heartbeat",
        "segments": [[50, 70]],
        "position": 70,
        "client": {"visibility": "visible", "rate": 1, "muted": False, **PC_A},
    }
    with beat_envelope.signed(session_id, body) as verdict:
        assert verdict == "valid"
        result = learning.record_beat(session_id, db.session.get(User, user_id), body)
    finding = _r12(verdicts.assess_day(user_id, DAY))
    ready.wait(30)  # both beats recorded and judged, neither committed
    db.session.commit()
    return result.credited_ms, finding


def _figures(learner: Learner) -> tuple[Any, ...]:
    db.session.expire_all()
    v = db.session.query(DayVerdict).filter_by(user_id=learner.user.id, day=DAY).one()
    return (v.verdict, v.review_score, list(v.rules), v.credited_ms, v.held_ms, v.deducted_ms, _r12(v))


def test_two_accounts_beating_at_once_on_one_device(app, me, tree):
    helper = other_learner(tree, me)
    mine = me.open(at=T0, deliver=LECTURE_BYTES, ip=OFFICE_IP, user_agent=CHROME)
    theirs = helper.open(at=T0, deliver=LECTURE_BYTES, ip=OFFICE_IP, user_agent=CHROME)
    for i in range(1, 6):  # 50 s each, side by side: below the 60 s R12 tolerates
        me.beat(mine, T0 + 10 * i * S, [[10 * (i - 1), 10 * i]], client=PC_A)
        helper.beat(theirs, T0 + 10 * i * S, [[10 * (i - 1), 10 * i]], client=PC_A)
    with time_machine.travel(T0 + 60 * S, tick=False):
        before = [_r12(verdicts.assess_day(p.user.id, DAY)) for p in (me, helper)]
        db.session.commit()
    assert [f["variant"] for f in before] == ["sequential", "sequential"] and before[0]["amount_ms"] <= 60_000

    # The sixth beats (20 s more side by side) on two connections at once.
    ready = threading.Barrier(2)
    keys = [(me.user.id, mine.session.id), (helper.user.id, theirs.session.id)]  # read here, not in the threads
    sides = [_Side(app), _Side(app)]
    try:
        with time_machine.travel(T0 + 70 * S, tick=False):
            pending = [
                side.later(lambda key=key: _beat_and_judge(*key, ready)) for side, key in zip(sides, keys, strict=True)
            ]
            # Neither waits for the other's locks (the barrier would break after 30 s).
            raced = [f.result(60) for f in pending]
    finally:
        ready.abort()
        for side in sides:
            side.close()

    # Credit: each account its own 20 s, as alone.
    assert [credited for credited, _f in raced] == [20_000, 20_000]
    # Online, each assessment saw the other's committed beats only: both still "sequential",
    # though the overlap is now over 60 s; one by one, the later would have found it.
    online = [finding for _c, finding in raced]
    assert [f["variant"] for f in online] == ["sequential", "sequential"]
    # An assessment now, with both beats committed, finds what one by one would have.
    with time_machine.travel(T0 + 71 * S, tick=False):
        now = _r12(verdicts.assess_day(me.user.id, DAY))
        db.session.commit()
    assert now["variant"] == "concurrent" and now["amount_ms"] > 60_000

    # The day's assessment once it is over reads every beat: both accounts concurrent, the same
    # overlap against each, and the day's figures are the online ones (R12 alone holds nothing).
    final = [me.recompute(DAY), helper.recompute(DAY)]
    assert [_r12(v)["variant"] for v in final] == ["concurrent", "concurrent"]
    assert _r12(final[0]) == _r12(final[1]) and _r12(final[0])["amount_ms"] > 60_000
    assert [v.review_score for v in final] == [40, 40] and [v.verdict for v in final] == ["credited", "credited"]
    one_day = [_figures(p) for p in (me, helper)]

    # ``recompute --all`` gives what the one-day assessment gave.
    with time_machine.travel(NEXT_MORNING, tick=False):
        recompute.recompute_since(DAY, commit=db.session.commit)
    assert [_figures(p) for p in (me, helper)] == one_day
