"""The person state's round trip in a group round (``state_pg.prefetch`` and ``_write_many``).

What a round reads and writes of the state row must be what one beat after another reads and
writes (``tests/lms_core/learning/test_beat_group.py``); here, what makes it cheap.
"""

from __future__ import annotations

import datetime as dt
import string
from typing import Any

import psycopg
import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from lms_core.extensions import db
from lms_core.learning import beat_group
from lms_core.learning.beat_rows import json_text
from plugins.anti_idle import state, state_pg
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


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # lone surrogates are not JSON text
_int = st.integers(-(2**63), 2**63 - 1)
_json = st.recursive(
    st.none() | st.booleans() | _int | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=20,
)
_ms = st.integers(0, 2**40)
_session = st.tuples(
    st.none() | _ms,
    st.sampled_from(["play", "heartbeat", "pause", "hidden"]),
    st.integers(0, 2**31),
    _ms,
    _ms,
    st.lists(st.tuples(_ms, _ms).map(list), max_size=3),
).map(list)
#: Hypothesis takes naive bounds; the zone comes from ``timezones``.
_at = st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2040, 1, 1), timezones=st.just(dt.UTC))  # noqa: DTZ001
_states = st.builds(
    state.State,
    user_id=st.just(0),
    exists=st.just(True),
    day=st.dates(dt.date(2020, 1, 1), dt.date(2040, 1, 1)),
    day_credited_ms=_ms,
    focus_session=st.none() | st.text(string.hexdigits, min_size=1, max_size=32),
    focus_until=st.none() | _at,
    sessions=st.dictionaries(
        st.text(string.hexdigits, min_size=1, max_size=32), _session, max_size=state.SESSIONS_KEPT
    ),
    lessons=st.dictionaries(st.integers(1, 2**31).map(str), _ms, max_size=state.LESSONS_KEPT),
    tally_day=st.none() | st.dates(dt.date(2020, 1, 1), dt.date(2040, 1, 1)),
    day_tally=st.none() | st.dictionaries(_text, _json, max_size=6),
)


@pytest.mark.backends("postgresql")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(written=st.lists(_states, min_size=1, max_size=3))
def test_a_state_written_by_a_round_is_read_back_by_the_next_round_as_it_was(app, kit, tree, written):
    # A person's states written one after another by rounds (``_write_many``, the row
    # overwritten) and read back by a round (``prefetch``, ``take``): the last one, each part
    # as it was, and the stored text of each JSON part the full serialisation of its value.
    user = people(app, kit, tree, 1)[0]
    for person in written:
        person.user_id = user.id
        if person.day_tally is None:
            person.tally_day = None  # as ``state._values`` stores it
        state_pg._write_many([(state._values(person), None)])
    now = dt.datetime.now(dt.UTC)
    batch = beat_group.Batch()
    state_pg.prefetch(batch, [(user.id, kit.course.id, False)], now)
    found = state_pg.take(batch, user.id, kit.course.id, now, now, video=False)
    assert found is not None
    read = state._state_of(user.id, found[0])
    assert read == written[-1]
    # Least recent first, as written (a dict's equality does not see the order).
    assert (list(read.sessions), list(read.lessons)) == (list(written[-1].sessions), list(written[-1].lessons))
    values = state._values(written[-1])
    stored = db.session.execute(
        text("SELECT sessions::text, lessons::text, day_tally::text FROM anti_idle_person_states WHERE user_id = :u"),
        {"u": user.id},
    ).one()
    assert list(stored) == [
        None if values[k] is None else json_text(values[k]) for k in ("sessions", "lessons", "day_tally")
    ]


@pytest.mark.backends("postgresql")
def test_the_state_read_gives_the_policy_in_force_and_the_checks_in_id_order(app, kit, tree):
    # The state read's policy version is ``policy.policy_version_statement``'s (the course's
    # newest override, else the newest site-wide version, else none) for the beat's course, and
    # its checks come in id order (``_unpack`` keeps them as listed), on both forms of the read.
    from secrets import token_urlsafe

    from lms_core.learning.models import LearningSession
    from plugins.anti_idle import policy
    from plugins.anti_idle.models import AttentionCheck
    from tests.lms_core.learning.fixtures import build_course

    other = build_course(tree, code="C00A").course  # its own media rows (build_course: by the code)
    user = people(app, kit, tree, 1)[0]
    state_pg._write_many([(state._values(state.State(user_id=user.id, exists=True, day=dt.date(2026, 1, 1))), None)])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sid = "c" * 32
    enrolment_id = db.session.execute(
        text("SELECT id FROM enrolments WHERE user_id = :u AND course_id = :c"), {"u": user.id, "c": kit.course.id}
    ).scalar_one()
    db.session.add(
        LearningSession(
            id=sid, user_id=user.id, lesson_id=kit.video.id, enrolment_id=enrolment_id, started_at=now, last_beat_at=now
        )
    )
    db.session.flush()
    # Issued latest first: the ids' order is not the times'.
    for minutes in (3, 2, 1):
        issued = now - dt.timedelta(minutes=minutes)
        db.session.add(
            AttentionCheck(
                token=token_urlsafe(24),
                session_id=sid,
                user_id=user.id,
                lesson_id=kit.video.id,
                issued_at=issued if minutes != 2 else now - dt.timedelta(minutes=4),
                window_seconds=60,
                due_at=now + dt.timedelta(minutes=minutes),
                expected="7",
            )
        )
    db.session.commit()
    ids = list(db.session.execute(text("SELECT id, issued_at FROM anti_idle_checks ORDER BY id")).all())

    def read(course_id: int) -> tuple[int | None, list[dt.datetime]]:
        batch = beat_group.Batch()
        state_pg.prefetch(batch, [(user.id, course_id, False)], now)
        many = state_pg.take(batch, user.id, course_id, now, now, video=False)
        one = state_pg.load(user.id, course_id, now, now)
        db.session.rollback()  # the reads' row locks
        assert many is not None and one is not None
        assert (many[1], [c.issued_at for c in many[2]]) == (one[1], [c.issued_at for c in one[2]])
        return many[1], [c.issued_at for c in many[2]]

    def in_force(course_id: int) -> int | None:
        return db.session.execute(policy.policy_version_statement(), {"course_id": course_id}).scalar()

    def versions() -> tuple[int | None, int | None]:
        return read(kit.course.id)[0], read(other.id)[0]

    assert read(kit.course.id) == (None, [at.astimezone(dt.UTC) for _, at in ids])
    site = policy.new_version({"hidden_grace_seconds": 90})
    db.session.commit()
    assert versions() == (site.version, site.version)
    course = policy.new_version({"hidden_grace_seconds": 30}, course_id=kit.course.id)
    db.session.commit()
    assert versions() == (course.version, site.version)
    newer_site = policy.new_version({"hidden_grace_seconds": 80})
    db.session.commit()
    assert versions() == (course.version, newer_site.version)  # an override outranks a newer site version
    newer_course = policy.new_version({"hidden_grace_seconds": 20}, course_id=kit.course.id)
    db.session.commit()
    assert versions() == (newer_course.version, newer_site.version)
    assert versions() == (in_force(kit.course.id), in_force(other.id))
