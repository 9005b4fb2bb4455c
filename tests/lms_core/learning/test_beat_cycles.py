"""The steady beat makes no cyclic garbage (issue 8, cycles).

Objects in a reference cycle are freed by Python's collector only. A worker taking ~1,000
beats/s that made a few such objects a beat ran a young collection every few seconds that
freed ~20,000 of them at once, ~100 ms with the GIL held: every beat in flight waited (the
stall log at the issue's scale). The cycle was each group's ORM session, kept alive through
its ``info`` (beat_tx: ~43 objects a group). Here steady beats run with the collector off;
the one collection after them must find nothing unreachable, so a new cycle on the beat
path fails this test (``bench/gc_garbage.py`` says by type and allocation site what it is).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine

from lms_core.extensions import db
from lms_core.learning import beat_http, services
from tests.lms_core.learning.test_beat_asgi import people, play_rounds, run_group, signed
from tests.lms_core.learning.test_beat_front import Player, beats
from tests.lms_core.learning.test_beat_http import Reader, Served, request, status

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)


@contextlib.contextmanager
def collector_off() -> Iterator[list[int]]:
    """The collector off inside the block; after it, one collection's unreachable count (in the list).

    What existed before the block is frozen (as a worker freezes its start-up heap, beat_asgi's
    ``tune_gc``): garbage the block makes of older objects (an earlier test's app, let go by a
    per-process cache as this test's takes its place) is not the steady beat's."""
    gc.collect()
    gc.freeze()
    gc.disable()
    found: list[int] = []
    try:
        yield found
        found.append(gc.collect())
    finally:
        gc.unfreeze()
        gc.enable()


def warming(played: list[Any]) -> list[Any]:
    """The play and the first beats: the person's rows created, the process's caches filled."""
    return played[:5]


def prime_completion_statement(app: Any) -> None:
    """A lesson completed in the measured beats reads its course's facts with one statement,
    built once per process (``functools.cache``) and compiled once per engine (SQLAlchemy's
    compiled cache): both make a few cyclic temporaries (an ``aliased`` entity, ~20 objects),
    once, not per beat. Done here first, so what the test counts is the steady beat's."""
    with app.app_context():
        params = {"lesson_id": 0, "enrolment_id": 0, "completed": "completed"}
        db.session.execute(services._completion_facts_statement(), params).all()
        db.session.rollback()


def steady(played: list[Any]) -> list[Any]:
    """The rest of the 1x viewing: one beat every 10 s, each its own group."""
    return played[5:11]


def test_steady_groups_of_beats_make_no_cyclic_garbage(app, kit, tree):
    players = [Player(app, kit, u, lean=True) for u in people(app, kit, tree, 5)]
    played = beats()
    play_rounds(app, players, warming(played))
    prime_completion_statement(app)
    with time_machine.travel(steady(played)[0][0], tick=False) as traveller, collector_off() as found:
        for at, body in steady(played):
            traveller.move_to(at)
            answers = run_group(app, [(p, body) for p in players])
            assert all(a is not None and a[0] == 200 for a in answers), answers
    assert found == [0]


@pytest.fixture
def handed(monkeypatch) -> list[Any]:
    """The beats the fast path handed to the view (none is expected here)."""
    seen: list[Any] = []
    hand = beat_http.BeatHttpProtocol._hand

    def spy(self: Any, beat: Any) -> None:
        seen.append(beat)
        hand(self, beat)

    monkeypatch.setattr(beat_http.BeatHttpProtocol, "_hand", spy)
    return seen


def test_steady_beats_through_the_http_front_make_no_cyclic_garbage(app, kit, tree, asgi, handed):
    server = Served(asgi, beat_http.BeatHttpProtocol)
    try:
        (user,) = people(app, kit, tree, 1)
        player = Player(app, kit, user, lean=True)
        played = beats()
        with server.connect() as conn, time_machine.travel(played[0][0], tick=False) as traveller:
            reader = Reader(conn)

            def beat(at: Any, body: dict[str, Any]) -> None:
                traveller.move_to(at)
                conn.sendall(request(player, signed(player, body)))
                assert status(reader.response()) == 200

            for at, body in warming(played):
                beat(at, body)
            prime_completion_statement(app)
            handed.clear()
            with collector_off() as found:
                for at, body in steady(played):
                    beat(at, body)
        assert not handed  # the fast path and the writer's group answered every beat, not the view
        assert found == [0]
    finally:
        server.stop()
