"""A group's beats read and written round by round (learning/beat_group.py, PostgreSQL).

Reference: the same beats posted one by one to the Flask view by other learners of the
same course at the same frozen times. The group must answer the same bytes and leave the
same ledger, sessions, progress, clocks, day totals, raw beats and anti-idle state rows;
on PostgreSQL with far fewer statements than beats (SQLite keeps one beat after another).
"""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from sqlalchemy import inspect, text

from lms_core.extensions import db
from lms_core.learning import beat_batch, beat_rows
from lms_core.learning.models import (
    DailyTotal,
    LearningInterval,
    LearningSession,
    LessonProgress,
    PersonClock,
    RefusedBeat,
)
from plugins.anti_idle.models import Beat, PersonState
from tests.lms_core.learning.test_beat_asgi import people, play_rounds, psycopg_statements, run_group
from tests.lms_core.learning.test_beat_front import NAMING, Player, beats, normalised, rows

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)


def person_rows(model: Any, player: Player) -> list[dict[str, Any]]:
    """A person's rows of a table keyed by person (no ``id`` to order by: by primary key)."""
    keys = [c for c in inspect(model).primary_key]
    query = db.session.query(model).filter(model.user_id == player.user.id).order_by(*keys)
    return [without_row_ids(normalised(row, player.session_id)) for row in query]


def without_row_ids(value: Any) -> Any:
    """The state row's tally names its day verdict's row (an id, numbered in another order)."""
    if isinstance(value, dict):
        return {k: without_row_ids(v) for k, v in value.items() if k != "verdict_id"}
    return value


def assert_same_rows(grouped: list[Player], alone: list[Player]) -> None:
    db.session.expire_all()
    for g, a in zip(grouped, alone, strict=True):
        for model in (LearningInterval, Beat, RefusedBeat):
            assert rows(model, g.session_id) == rows(model, a.session_id), model.__name__
        same_session = [rows(LearningSession, "", where=LearningSession.id == p.session_id) for p in (g, a)]
        assert normalised_session(same_session[0], g) == normalised_session(same_session[1], a)
        for model in (LessonProgress, PersonClock, DailyTotal, PersonState):
            assert person_rows(model, g) == person_rows(model, a), model.__name__


def normalised_session(found: list[dict[str, Any]], player: Player) -> list[dict[str, Any]]:
    return [{k: ("S" if v == player.session_id else v) for k, v in row.items() if k not in NAMING} for row in found]


def play(app: Any, grouped: list[Player], alone: list[Player], chunks: list[list[Any]]) -> int:
    """Each chunk: every grouped person's beats of it in ONE group (arriving in reverse person
    order, a person's own beats in order), and the same beats one by one for the others. A
    beat the group hands back goes to the view right after the group, as the ASGI front
    does. Returns how many were handed back."""
    handed = 0
    for chunk in chunks:
        at = chunk[-1][0]
        group = [(p, body) for p in reversed(grouped) for _at, body in chunk]
        with time_machine.travel(at, tick=False):
            answers = run_group(app, group)
            got = []
            for (p, body), answer in zip(group, answers, strict=True):
                if answer is None:
                    handed += 1
                    response = p.post(at, body)
                    answer = (response.status_code, None, response.data)
                got.append(answer)
            references = [a.post(at, body) for a in reversed(alone) for _at, body in chunk]
        assert [(a[0], a[2]) for a in got] == [(r.status_code, r.data) for r in references]
    return handed


def chunks_of(played: list[Any]) -> list[list[Any]]:
    """The beats in groups: alone, alone, two, five, three, two (with the repeat), the rest."""
    return [played[0:1], played[1:2], played[2:4], played[4:9], played[9:12], played[12:14], played[14:]]


def test_a_group_round_by_round_stores_and_answers_what_one_by_one_does(app, kit, tree):
    users = people(app, kit, tree, 8)
    grouped = [Player(app, kit, u, lean=True) for u in users[:4]]
    alone = [Player(app, kit, u, lean=False) for u in users[4:]]
    played = beats()
    # Two beats of each person in one group twice (two rounds; the second sees the first),
    # the repeated seq 13 among them (acknowledged, stored as refused evidence). Every
    # learner is on the test client's device: R12 (accounts on one device) reads the other
    # people's beats, which a round must have written by then, as one by one had.
    chunks = chunks_of(played)
    assert sum(map(len, chunks)) == len(played)
    handed = play(app, grouped, alone, chunks)
    assert_same_rows(grouped, alone)
    # A day replay (hundreds of ms) is handed to the view on PostgreSQL, not waited for by
    # the round (beat_group.HandOff); SQLite records one beat after another anyway.
    assert (handed > 0) == (db.engine.dialect.name == "postgresql")
    assert rows(LearningInterval, grouped[0].session_id)  # something was credited
    assert person_rows(PersonState, grouped[0])  # and judged by anti-idle


@pytest.mark.backends("postgresql")
def test_a_round_is_one_read_and_one_write_per_side_on_postgresql(app, kit, tree):
    users = people(app, kit, tree, 6)
    players = [Player(app, kit, u, lean=True) for u in users]
    played = beats()
    play_rounds(app, players, played[:2])  # the play (first rows created) and a first beat, one group each
    at, body = played[2]
    with psycopg_statements() as statements, time_machine.travel(at, tick=False):
        answers = run_group(app, [(p, body) for p in players])
    assert all(a is not None and a[0] == 200 for a in answers), answers
    # Six people's beats: the core's read and write, the plugin's read and write, one each.
    # (Any other statement is the day verdict's, which this short day folds at each beat.)
    batched = ("learning_", "lesson_progress", "anti_idle_beats", "anti_idle_person_states")
    on_beat_rows = [s for s in statements if any(t in s for t in batched)]
    assert len(on_beat_rows) == 4, on_beat_rows
    # Each table's rows as one typed array per column (pg_arrays), in the reads and the writes.
    assert sum("unnest(" in s for s in on_beat_rows) == 4, on_beat_rows
    assert not any("jsonb_populate_recordset" in s for s in on_beat_rows), on_beat_rows


@pytest.mark.backends("postgresql")
def test_a_round_updates_each_session_once(app, kit, tree):
    # The append-only tables' session key (lms_core.db.session_key_ddl) updates a session its
    # transaction has not written yet (a no-op, to hold it against a concurrent delete). The
    # core's write updates every session of the round, so it must come first: after the
    # plugin's raw beats each session was updated twice (2.00 updates a beat in the ingest
    # bench's table statistics, one more WAL record and page write a beat). Counted by a row
    # trigger of the test's own on a sequence (the statistics views' pending counts include
    # earlier transactions not yet flushed).
    users = people(app, kit, tree, 6)
    players = [Player(app, kit, u, lean=True) for u in users]
    played = beats()
    play_rounds(app, players, played[:2])
    at, body = played[2]
    for statement in _COUNT_UPDATES:
        db.session.execute(text(statement))
    db.session.commit()
    try:
        with psycopg_statements() as statements, time_machine.travel(at, tick=False):
            answers = run_group(app, [(p, body) for p in players])
        assert all(a is not None and a[0] == 200 for a in answers), answers
        counted = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM test_session_updates"
        updated = db.session.execute(text(counted)).scalar_one()
    finally:
        db.session.rollback()
        for statement in _UNCOUNT_UPDATES:
            db.session.execute(text(statement))
        db.session.commit()
    core = next(i for i, s in enumerate(statements) if s.startswith("WITH s AS (UPDATE learning_sessions"))
    raw = next(i for i, s in enumerate(statements) if "INSERT INTO anti_idle_beats" in s)
    assert core < raw, statements
    assert updated == len(players)  # six sessions, six updates


_COUNT_UPDATES = (
    "CREATE SEQUENCE test_session_updates",
    "CREATE FUNCTION test_count_session_update() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN PERFORM nextval('test_session_updates'); RETURN NULL; END $$",
    "CREATE TRIGGER test_count_session_update AFTER UPDATE ON learning_sessions "
    "FOR EACH ROW EXECUTE FUNCTION test_count_session_update()",
)
_UNCOUNT_UPDATES = (
    "DROP TRIGGER IF EXISTS test_count_session_update ON learning_sessions",
    "DROP FUNCTION IF EXISTS test_count_session_update()",
    "DROP SEQUENCE IF EXISTS test_session_updates",
)


@pytest.mark.backends("postgresql")
def test_a_failed_round_write_is_done_again_beat_by_beat(app, kit, tree, monkeypatch):
    # Four and four, as above: every learner shares the test client's device, and R12
    # (several accounts on one device) must see as many accounts on both sides.
    users = people(app, kit, tree, 8)
    grouped = [Player(app, kit, u, lean=True) for u in users[:4]]
    alone = [Player(app, kit, u, lean=False) for u in users[4:]]
    original = beat_rows._write_many
    failures = []

    def failing_once(items: Any) -> None:
        if not failures:
            failures.append(len(items))
            raise RuntimeError("the round's write failed")
        original(items)

    monkeypatch.setattr(beat_rows, "_write_many", failing_once)
    play(app, grouped, alone, chunks_of(beats()))
    assert len(failures) == 1  # it failed once, and every beat was done again
    assert_same_rows(grouped, alone)


def test_rounds_keep_a_persons_beats_in_arrival_order():
    requests = requests_for_ids([1, 1, 2, 1, 2])
    assert beat_batch._rounds(requests) == [[0, 2], [1, 4], [3]]


def requests_for_ids(user_ids: list[int]) -> list[Any]:
    from concurrent.futures import Future

    from lms_core.learning.beat_front import Beat as LeanBeat

    return [beat_batch._Request(LeanBeat("s", uid, 1, b"{}", None), Future()) for uid in user_ids]
