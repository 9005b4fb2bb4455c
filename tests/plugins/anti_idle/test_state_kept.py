"""The state objects a process wrote, kept under the row's ``xmin`` (``state_pg._KEPT``).

A round's read takes them instead of decoding the row's JSON only while the row is still
the version this process wrote: another writer (another worker, a recompute's
``forget_day``, a tool), a rolled-back write or a restart must give the stored row, never
the kept objects. Each test here fails when the read takes the kept objects without
comparing the ``xmin`` (or when ``forget_day`` does not drop them).
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from lms_core.extensions import db
from lms_core.learning import beat_group
from plugins.anti_idle import state, state_pg
from tests.lms_core.learning.test_beat_asgi import people, play_rounds
from tests.lms_core.learning.test_beat_front import Player, beats
from tests.plugins.anti_idle.test_state_round_trip import _states

pytestmark = [
    pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True),
    pytest.mark.backends("postgresql"),
]


def _write(person: state.State) -> None:
    """A round's write of ``person`` (``state.save`` in a round: the objects kept once written)."""
    if person.day_tally is None:
        person.tally_day = None  # as ``state._values`` stores it
    state_pg._write_many([(state._values(person), None, (person.sessions, person.lessons, person.day_tally))])


def _read(user_id: int, course_id: int) -> state.State:
    """A round's read of the person (``prefetch`` and ``take``), as ``state.load_for_beat`` makes it."""
    now = dt.datetime.now(dt.UTC)
    batch = beat_group.Batch()
    state_pg.prefetch(batch, [(user_id, course_id, False)], now)
    found = state_pg.take(batch, user_id, course_id, now, now, video=False)
    assert found is not None
    return state._state_of(user_id, found[0])


def _state(user_id: int, n: int) -> state.State:
    return state.State(
        user_id=user_id,
        exists=True,
        day=dt.date(2026, 12, 7),
        day_credited_ms=n,
        sessions={"s1": [None, "heartbeat", n, n * 1000, n * 1000, [[0, n * 1000]]]},
        lessons={"7": n * 1000},
        tally_day=dt.date(2026, 12, 7),
        day_tally={"tally": {"beats": n}, "dirty": True},
    )


@pytest.fixture
def person(app, kit, tree):
    state_pg.forget_all()
    user = people(app, kit, tree, 1)[0]
    yield user
    state_pg.forget_all()


def test_the_next_round_takes_the_written_objects(app, kit, person):
    written = _state(person.id, 1)
    _write(written)
    db.session.commit()
    read = _read(person.id, kit.course.id)
    assert read == written
    assert read.day_tally is written.day_tally  # kept, not decoded
    # Taken once: the beat that took them changes them in place; the next read decodes.
    read.day_tally["dirty"] = False
    db.session.commit()
    assert _read(person.id, kit.course.id).day_tally == {"tally": {"beats": 1}, "dirty": True}


def test_a_row_written_by_another_connection_is_read_from_the_row(app, kit, person):
    _write(_state(person.id, 1))
    db.session.commit()
    # Another worker's beat (its own connection and transaction) writes the row.
    with db.engine.begin() as other:
        other.execute(
            text("UPDATE anti_idle_person_states SET day_tally = CAST(:t AS json) WHERE user_id = :u"),
            {"t": '{"tally": {"beats": 2}, "dirty": true}', "u": person.id},
        )
    assert _read(person.id, kit.course.id).day_tally == {"tally": {"beats": 2}, "dirty": True}


def test_a_rolled_back_write_is_not_taken(app, kit, person):
    _write(_state(person.id, 1))
    db.session.commit()
    _read(person.id, kit.course.id)  # the kept objects taken, as a beat does
    _write(_state(person.id, 2))  # the next round writes ...
    db.session.rollback()  # ... and rolls back
    assert _read(person.id, kit.course.id) == _state(person.id, 1)


def test_a_rolled_back_savepoint_is_not_taken(app, kit, person):
    _write(_state(person.id, 1))
    db.session.execute(text("SAVEPOINT kept"))  # as a beat's own savepoint in a round
    _write(_state(person.id, 2))
    db.session.execute(text("ROLLBACK TO SAVEPOINT kept"))
    assert _read(person.id, kit.course.id) == _state(person.id, 1)


def test_forget_day_in_the_same_transaction_drops_the_kept_tally(app, kit, person):
    # The same transaction's later write has the same ``xmin``: ``forget_day`` drops the kept objects.
    written = _state(person.id, 1)
    _write(written)
    state.forget_day(person.id, written.tally_day)
    read = _read(person.id, kit.course.id)
    assert (read.tally_day, read.day_tally) == (None, None)


def test_a_restarted_process_reads_the_row(app, kit, person):
    _write(_state(person.id, 1))
    db.session.commit()
    state_pg.forget_all()
    assert _read(person.id, kit.course.id) == _state(person.id, 1)


def test_an_admins_policy_change_is_read_with_the_kept_objects(app, kit, person):
    from plugins.anti_idle import policy

    _write(_state(person.id, 1))
    db.session.commit()
    before = _take(person.id, kit.course.id)[1]
    written = _state(person.id, 2)
    _write(written)
    db.session.commit()
    changed = policy.new_version({}, course_id=kit.course.id, note="test course")
    db.session.commit()
    found = _take(person.id, kit.course.id)
    assert found[0][7] is written.day_tally  # the kept objects ...
    assert found[1] == changed.version != before  # ... with the version now in force


@pytest.fixture
def moved_clock(monkeypatch):
    """The kept objects' clock, moved by the test: ``moved_clock[0]`` seconds."""
    now = [1000.0]
    monkeypatch.setattr(state_pg, "clock", lambda: now[0])
    state_pg.forget_all()  # the young generation starts on this clock
    return now


def test_a_person_who_keeps_beating_keeps_their_objects_past_the_period(app, kit, tree, moved_clock):
    # Kept objects used to be dropped all at once every ``_KEPT_FOR`` (every person's, in a
    # worker): the drop itself held the GIL (~28 ms for 10,000 people) and every beat of the
    # next cadence decoded its row again. A person who beats takes and rewrites their entry,
    # so no period drops it.
    a, b = people(app, kit, tree, 2)
    _write(_state(a.id, 1))
    db.session.commit()
    moved_clock[0] += state_pg._KEPT_FOR - 10  # a's next beat, just before the period ends
    _read(a.id, kit.course.id)
    written = _state(a.id, 2)
    _write(written)
    db.session.commit()
    moved_clock[0] += 15  # someone else's round, the period past since the first write
    _write(_state(b.id, 1))
    db.session.commit()
    assert _take(a.id, kit.course.id)[0][7] is written.day_tally  # kept, not decoded


def test_objects_nobody_took_for_the_period_are_dropped(app, kit, tree, moved_clock):
    # The bound that makes the ``xmin`` comparison safe (and the memory bounded) still holds:
    # an entry lives at most ``_KEPT_FOR`` seconds.
    a, b, c = people(app, kit, tree, 3)
    first = _state(a.id, 1)
    _write(first)
    db.session.commit()
    moved_clock[0] += state_pg._KEPT_FOR / 2 + 1
    second = _state(b.id, 1)
    _write(second)  # a turn: a's objects are now the old generation's
    db.session.commit()
    moved_clock[0] += state_pg._KEPT_FOR / 2 + 1
    _write(_state(c.id, 1))  # another: a's are dropped, b's old
    db.session.commit()
    read = _take(a.id, kit.course.id)[0]
    assert read[7] == first.day_tally and read[7] is not first.day_tally  # decoded from the row
    assert _take(b.id, kit.course.id)[0][7] is second.day_tally  # taken from the old generation


def _take(user_id: int, course_id: int) -> Any:
    now = dt.datetime.now(dt.UTC)
    batch = beat_group.Batch()
    state_pg.prefetch(batch, [(user_id, course_id, False)], now)
    found = state_pg.take(batch, user_id, course_id, now, now, video=False)
    assert found is not None
    return found


def test_kept_objects_are_what_the_stored_row_decodes_to_after_real_rounds(app, kit, tree):
    # Beats played in group rounds (the objects kept are those ``state.advance`` and
    # ``verdicts.record_online`` left): after each round, every person's kept objects equal
    # their row's JSON decoded (no tuple for a list, no number for a string), so taking them
    # gives the next beat what decoding would.
    state_pg.forget_all()
    users = people(app, kit, tree, 3)
    players = [Player(app, kit, u, lean=True) for u in users]
    hits = 0
    for at_body in beats():
        play_rounds(app, players, [at_body])
        for user in users:
            kept = state_pg._KEPT.get(user.id)
            if kept is None:
                continue
            hits += 1
            row = db.session.execute(
                text(
                    "SELECT sessions::text, lessons::text, day_tally::text, xmin::text::bigint "
                    "FROM anti_idle_person_states WHERE user_id = :u"
                ),
                {"u": user.id},
            ).one()
            assert kept[0] == row[3]
            decoded = state._state_of(
                user.id, (None, 0, None, None, *[state_pg._json_loads(t) for t in row[:2]], None, None)
            )
            assert (kept[1], kept[2], kept[3]) == (decoded.sessions, decoded.lessons, state_pg._json_loads(row[2]))
            assert (list(kept[1]), list(kept[2])) == (list(decoded.sessions), list(decoded.lessons))
    assert hits  # the rounds kept objects
    state_pg.forget_all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    written=st.lists(_states, min_size=1, max_size=4),
    steps=st.lists(st.sampled_from(["commit", "warm", "cold", "stale", "rollback", "other"]), min_size=1, max_size=4),
)
def test_warm_cold_and_stale_reads_give_the_stored_state(app, kit, tree, written, steps):
    # Random states written by rounds, with the kept objects warm (taken), cold (a restart),
    # stale (someone else's or a rolled-back version): every read gives the row as stored,
    # the same as decoding it.
    state_pg.forget_all()
    user = people(app, kit, tree, 1)[0]
    stored: Any = None
    for person, step in zip(written, steps * len(written), strict=False):
        person.user_id = user.id
        _write(person)
        if step == "rollback":
            db.session.rollback()
        else:
            db.session.commit()
            stored = copy.deepcopy(person)
        if step == "cold":
            state_pg.forget_all()
        elif step == "stale":
            # Kept objects under a version the row does not have (another worker's write since).
            state_pg._KEPT[user.id] = (-1, {}, {}, {"stale": True})
        elif step == "other" and stored is not None:
            with db.engine.begin() as other:
                other.execute(
                    text("UPDATE anti_idle_person_states SET day_credited_ms = day_credited_ms WHERE user_id = :u"),
                    {"u": user.id},
                )
        if stored is None:
            continue
        read = _read(user.id, kit.course.id)
        assert read == stored
        # Least recent first, as written (a dict's equality does not see the order).
        assert (list(read.sessions), list(read.lessons)) == (list(stored.sessions), list(stored.lessons))
        # Each read decodes what it is handed into its own objects: the next write starts again.
        _write(read)
        db.session.commit()
        state_pg.forget_all()
        assert _read(user.id, kit.course.id) == stored
    state_pg.forget_all()
