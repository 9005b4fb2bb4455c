"""The events of a group's rounds (``events.emit`` inside ``learning/beat_group.py``, PostgreSQL).

A round keeps the events its beats emit (the video events, ``lesson.terminated``,
``study.interval_credited``, the plugin's) and inserts them with their dispatch jobs in one
statement at the round's write. Reference, as in ``test_beat_group``: the same beats posted
one by one to the Flask view by other learners of the course at the same frozen times. The
group must leave the same events, in the same order of ids per person, each with its
dispatch job, run after the COMMIT.
"""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from lms_core.events.models import Event
from lms_core.events.services import DISPATCH_JOB
from lms_core.extensions import db
from lms_core.jobs.models import Job
from tests.lms_core.learning.test_beat_asgi import people, play_rounds, psycopg_statements, run_group
from tests.lms_core.learning.test_beat_front import Player, beats, normalised
from tests.lms_core.learning.test_beat_group import chunks_of, play

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)


def events_of(player: Player) -> list[Event]:
    """The person's events (theirs as actor, or about them: the plugin's day events), by id."""
    found = db.session.execute(select(Event).order_by(Event.id)).scalars()
    uid = player.user.id
    return [e for e in found if e.actor_id == uid or (e.payload or {}).get("user_id") == uid]


def shown(events: list[Event], player: Player) -> list[dict[str, Any]]:
    """What an event says, without what names this person, session or row."""
    out = []
    for e in events:
        row = normalised(e, player.session_id)
        payload = dict(row.get("payload") or {})
        payload.pop("user_id", None)
        row["payload"] = payload
        if row["object_type"] not in ("lessons", "learning_sessions"):
            row["object_id"] = "N"  # the person's own enrolment or day verdict: numbered in another order
        out.append(row)
    return out


def jobs_of(events: list[Event]) -> list[tuple[str, str]]:
    """Each event's dispatch jobs: (kind, status), one per event, in the events' order."""
    jobs = db.session.execute(select(Job).where(Job.kind == DISPATCH_JOB).order_by(Job.id)).scalars()
    by_event: dict[int, list[Job]] = {}
    for job in jobs:
        by_event.setdefault(int(job.payload["event_id"]), []).append(job)
    return [(j.kind, str(j.status)) for e in events for j in by_event.get(e.id, [])]


def test_a_groups_events_are_the_events_of_one_by_one(app, kit, tree):
    users = people(app, kit, tree, 8)
    grouped = [Player(app, kit, u, lean=True) for u in users[:4]]
    alone = [Player(app, kit, u, lean=False) for u in users[4:]]
    play(app, grouped, alone, chunks_of(beats()))
    db.session.expire_all()
    for g, a in zip(grouped, alone, strict=True):
        mine, theirs = events_of(g), events_of(a)
        names = [e.name for e in mine]
        # The play, seek, pause and terminate beats' events and the credit reported on them.
        assert {"video.played", "video.seeked", "video.paused", "lesson.terminated"} <= set(names), names
        assert "study.interval_credited" in names
        assert shown(mine, g) == shown(theirs, a)
        assert [e.ip for e in mine] == [e.ip for e in theirs]
        # One dispatch job per event, run after the COMMIT (inline in tests) as one by one.
        assert jobs_of(mine) == jobs_of(theirs)
        assert len(jobs_of(mine)) == len(mine)


@pytest.mark.backends("postgresql")
def test_a_rounds_events_are_one_insert_on_postgresql(app, kit, tree):
    users = people(app, kit, tree, 6)
    players = [Player(app, kit, u, lean=True) for u in users]
    played = beats()
    seek = next(i for i, (_at, body) in enumerate(played) if body["event"] == "seeked")
    play_rounds(app, players, played[:seek])
    db.session.expire_all()
    before = [len(events_of(p)) for p in players]
    at, body = played[seek]
    with psycopg_statements() as statements, time_machine.travel(at, tick=False):
        answers = run_group(app, [(p, body) for p in players])
    assert all(a is not None and a[0] == 200 for a in answers), answers
    db.session.expire_all()
    added = [len(events_of(p)) - n for p, n in zip(players, before, strict=True)]
    # Each person's seek (and the credit reported with it): six people, one round, one INSERT.
    assert all(n >= 1 for n in added), added
    inserts = [s for s in statements if "INSERT INTO event_log" in s]
    assert len(inserts) == 1, inserts
    assert not [s for s in statements if s.lstrip().startswith("INSERT INTO jobs")], statements
