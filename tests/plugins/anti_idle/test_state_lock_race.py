"""A beat's round and a recompute dropping the day's tally from the person's state row
(``state.forget_days``, ``verdicts.assess_day``) racing on one person (PostgreSQL, two real
connections, both orders).

The round reads the person's state row without locking it (``state_pg.prefetch``): the core's
round read before it holds the person's clock row (``beat_rows``), and every other writer of the
state row takes the clock first (``learning.services.lock_clocks``). So:

* the round read first: the recompute's forget waits for the round to commit, then drops the
  tally the round wrote (the day verdict the recompute rewrote holds it all);
* the forget first: the round waits for it to commit, then reads the row without the tally.

Either way the recompute's change is never overwritten by a beat that read the row before it.
Without the clock lock in ``forget_days`` (``assess_day``) both orders lose it: the round
writes back the tally it read, over the forget.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import text

from lms_core.extensions import db
from lms_core.learning import beat_group, beat_rows
from plugins.anti_idle import state, state_pg
from plugins.anti_idle.verdicts import assess_day
from tests.lms_core.learning.test_beat_asgi import people, psycopg_statements, run_group
from tests.lms_core.learning.test_beat_front import Player, beats
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0, S
from tests.plugins.anti_idle.lock_waits import lock_wait

pytestmark = [pytest.mark.app_config(LMS_PLUGINS=["anti_idle"]), pytest.mark.backends("postgresql")]

DAY = dt.date(2026, 5, 10)


class _Side:
    """One transaction on a connection of its own: an app context (so a ``db.session``) pushed
    in a thread of its own, as a writer thread or a CLI process has (a statement may wait for
    the other side's locks)."""

    def __init__(self, app: Flask) -> None:
        self._thread = ThreadPoolExecutor(1)
        self._ctx = app.app_context()
        self.now(lambda: self._ctx.push())
        self.pid = self.now(lambda: db.session.execute(text("SELECT pg_backend_pid()")).scalar_one())

    def later(self, work: Callable[[], Any]) -> Future[Any]:
        return self._thread.submit(work)

    def now(self, work: Callable[[], Any]) -> Any:
        return self.later(work).result(30)

    def close(self) -> None:
        def end() -> None:
            db.session.rollback()
            db.session.remove()
            self._ctx.pop()

        self.now(end)
        self._thread.shutdown()


def _waits(side: _Side, pending: Future[Any]) -> bool:
    """Whether ``pending`` (``side``'s statement) is waiting for a lock (within ~5 s); False if
    it ended without waiting."""
    return lock_wait(side.pid, pending) == "lock"


def _round_read(user_id: int, session_id: str, course_id: int) -> state.State:
    """A round's reads for the person's beat: the core's rows (session, progress, clock) locked,
    then the plugin's state row (``beat_batch._read_round``, ``state.load_for_beat``)."""
    batch = beat_group.Batch()
    assert beat_rows.prefetch(batch, [(session_id, user_id)])  # the person's rows, locked
    state_pg.prefetch(batch, [(user_id, course_id, False)], T0 - S)
    found = state_pg.take(batch, user_id, course_id, T0, T0, video=False)
    assert found is not None
    return state._state_of(user_id, found[0])


def _round_write(person: state.State) -> None:
    """The round's write of the state the beat made from what it read: one more beat on the
    day's tally it read (a tally from the day verdict row if the row had none), then commit."""
    beats = 0 if person.day_tally is None else int(person.day_tally["beats"])
    person.tally_day, person.day_tally = DAY, {"beats": beats + 1, "dirty": True}
    state_pg._write_many([(state._values(person), None, None)])
    db.session.commit()


#: The state row's writers other than a beat, as they drop the day's tally from it: the bulk
#: recompute's chunk (``recompute._write``), and one day's assessment (``verdicts.assess_day``:
#: the CLI's ``recompute --user U --day D``, a refused beat's or an answer's re-judging).
FORGETS: dict[str, Callable[[int], Any]] = {
    "recompute chunk": lambda user_id: state.forget_days([(user_id, DAY)]),
    "day assessment": lambda user_id: assess_day(user_id, DAY),
}


@pytest.fixture
def learner(app, kit, me):
    """``me`` with a session, progress and clock (three beats), and a state row holding a
    tally of one beat of ``DAY``."""
    state_pg.forget_all()
    tab = me.open(at=T0, deliver=LECTURE_BYTES)
    me.play(tab, T0, 30)  # three beats of the lecture: the day has raw beats to assess
    person = state.State(me.user.id, exists=True, day=DAY, tally_day=DAY, day_tally={"beats": 1, "dirty": True})
    state_pg._write_many([(state._values(person), None, None)])
    db.session.commit()
    yield me.user.id, tab.session.id, kit.course.id
    state_pg.forget_all()


def _stored_tally(user_id: int) -> Any:
    db.session.rollback()
    return db.session.execute(
        text("SELECT day_tally FROM anti_idle_person_states WHERE user_id = :u"), {"u": user_id}
    ).scalar_one()


@pytest.mark.parametrize("forget", FORGETS)
def test_a_forget_after_the_round_read_waits_and_wins(app, learner, forget):
    user_id, session_id, course_id = learner
    beat, recompute = _Side(app), _Side(app)
    try:
        read = beat.now(lambda: _round_read(user_id, session_id, course_id))
        assert read.day_tally == {"beats": 1, "dirty": True}
        forgetting = recompute.later(lambda: (FORGETS[forget](user_id), db.session.commit()))
        waited = _waits(recompute, forgetting)
        beat.now(lambda: _round_write(read))
        forgetting.result(30)
    finally:
        beat.close()
        recompute.close()
    # The round wrote two beats of tally; the forget came after it and dropped it.
    assert _stored_tally(user_id) is None, "the beat wrote over the recompute's forget"
    assert waited, "the forget did not wait for the round that had read the row"


@pytest.mark.parametrize("forget", FORGETS)
def test_a_round_after_the_forget_waits_and_reads_the_row_without_the_tally(app, learner, forget):
    user_id, session_id, course_id = learner
    beat, recompute = _Side(app), _Side(app)
    try:
        recompute.now(lambda: FORGETS[forget](user_id))
        reading = beat.later(lambda: _round_read(user_id, session_id, course_id))
        waited = _waits(beat, reading)
        recompute.now(db.session.commit)
        read = reading.result(30)
        seen = read.day_tally
        beat.now(lambda: _round_write(read))
    finally:
        beat.close()
        recompute.close()
    # The round read the forgotten row: its tally starts again (one beat), not from two.
    assert seen is None, "the round read the row as it was before the forget"
    assert _stored_tally(user_id) == {"beats": 1, "dirty": True}
    assert waited, "the round did not wait for the forget"


def test_the_round_read_leaves_the_state_row_unlocked(app, learner):
    """The state row's own lock is gone (one ``Heap/LOCK`` WAL record a beat): while a round
    holds its rows, another transaction can lock the state row at once."""
    user_id, session_id, course_id = learner
    beat = _Side(app)
    try:
        beat.now(lambda: _round_read(user_id, session_id, course_id))
        with db.engine.begin() as other:
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            locked = other.execute(
                text("SELECT user_id FROM anti_idle_person_states WHERE user_id = :u FOR UPDATE NOWAIT"),
                {"u": user_id},
            ).scalar_one()
        assert locked == user_id
    finally:
        beat.close()


@pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)
def test_a_round_updates_the_state_rows_its_read_found_and_upserts_new_ones(app, kit, tree):
    """A person's first judged beat creates their row (``INSERT … ON CONFLICT``); a later round
    updates the rows its read found with one plain ``UPDATE`` (no speculative insert, no row lock
    of its own: ``state_pg._save_many_sql``)."""
    players = [Player(app, kit, u, lean=True) for u in people(app, kit, tree, 3)]
    rounds = []
    for at, body in beats()[:4]:  # play, then the day's first heartbeat (its row made), then two more
        with psycopg_statements() as statements, time_machine.travel(at, tick=False):
            answers = run_group(app, [(p, body) for p in players])
        assert all(a is not None and a[0] == 200 for a in answers), answers
        rounds.append(
            [s for s in statements if "INTO anti_idle_person_states" in s or "anti_idle_person_states AS t" in s]
        )
    assert [w.count("ON CONFLICT (user_id)") for w in rounds[1]] == [1, 1, 1]
    for writes in rounds[2:]:
        assert len(writes) == 1 and "UPDATE anti_idle_person_states AS t" in writes[0], writes
        assert "ON CONFLICT" not in writes[0]
    assert db.session.execute(text("SELECT count(*) FROM anti_idle_person_states")).scalar_one() == 3


def test_a_round_write_of_a_row_that_is_gone_fails_the_round(app, learner):
    """A row the round read found and no longer there (its person deleted meanwhile, say) is not
    skipped silently: the write fails, and the round is done again beat by beat (``beat_batch``)."""
    user_id, _session_id, _course_id = learner
    person = state.load_unlocked(user_id)
    db.session.execute(text("DELETE FROM anti_idle_person_states WHERE user_id = :u"), {"u": user_id})
    with pytest.raises(RuntimeError, match="1 of the round's state rows were not found"):
        state_pg._write_many([(state._values(person), None, None, True)])
