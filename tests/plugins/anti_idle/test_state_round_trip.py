"""The person state's round trip in a group round (``state_pg.prefetch`` and ``_write_many``).

What a round reads and writes of the state row must be what one beat after another reads and
writes (``tests/lms_core/learning/test_beat_group.py``); here, what makes it cheap.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import time_machine

from tests.lms_core.learning.test_beat_asgi import people, play_rounds, psycopg_statements, run_group
from tests.lms_core.learning.test_beat_front import Player, beats

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)


@pytest.mark.backends("postgresql")
def test_a_rounds_statements_are_not_parsed_again_by_psycopg(app, kit, tree, monkeypatch):
    # psycopg keeps its conversion of a statement's named placeholders only for a text of at
    # most 4096 bytes and 50 parameters, and parses a longer one again on every execution
    # (the plugin's round write with the raw beats is 4.4 kB: ~0.6 ms of Python per write).
    users = people(app, kit, tree, 3)
    players = [Player(app, kit, u, lean=True) for u in users]
    played = beats()
    play_rounds(app, players, played[:2])
    parsed: list[bytes] = []
    original = psycopg._queries._query2pg_nocache  # type: ignore[attr-defined]

    def counting(query: bytes, *args: Any) -> Any:
        parsed.append(query)
        return original(query, *args)

    monkeypatch.setattr(psycopg._queries, "_query2pg_nocache", counting)
    at, body = played[2]
    with psycopg_statements() as statements, time_machine.travel(at, tick=False):
        answers = run_group(app, [(p, body) for p in players])
    assert all(a is not None and a[0] == 200 for a in answers), answers
    assert any("INSERT INTO anti_idle_beats" in s for s in statements), statements  # the round wrote
    assert parsed == []
