"""The day verdict's fold and publish inside a group round (``verdicts._fold_kept``, PostgreSQL).

Reference: the same beats posted one by one to the Flask view by other learners of the same
course at the same frozen times (as ``tests/lms_core/learning/test_beat_group.py``). A day
long enough to publish its credit (every 5 min), a pause (folded at once) and a second lesson
joining the day (a new day-lesson row) must leave the same day verdict and day-lesson rows
and the same events in the same order per person; on PostgreSQL the round's folds are one
statement, not an ORM load and flush per fold. SQLite records one beat after another (the
ORM path) and must agree too.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import time_machine

from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.media.services import record_delivery
from plugins.anti_idle import state_pg
from plugins.anti_idle.events import DAY_ASSESSED
from plugins.anti_idle.models import DayLesson, DayVerdict
from tests.lms_core.learning.test_beat_asgi import people, play_rounds, psycopg_statements, run_group
from tests.lms_core.learning.test_beat_front import BEAT_URL, CSRF, KEY, T0, Player, normalised

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)

#: Heartbeats of the document lesson: 35 × 10 s, past the first publish (5 min of credit).
DOC_BEATS = 35


def open_lesson(player: Player, lesson: Any, at: dt.datetime) -> None:
    """The player opens another lesson (a new learning session, as the lesson page starts)."""
    with time_machine.travel(at, tick=False):
        page = player.client.get(f"/learn/lessons/{lesson.id}").data
    url, token, key = BEAT_URL.search(page), CSRF.search(page), KEY.search(page)
    assert url and token and key
    opened = getattr(player, "sessions", [player.session_id])  # the one Player opened first
    player.path, player.token, player.key = url.group(1).decode(), token.group(1).decode(), key.group(1).decode()
    player.session_id = player.path.split("/")[-2]
    player.sessions = [*opened, player.session_id]  # type: ignore[attr-defined]
    if lesson.media_id is not None:
        record_delivery(player.session_id, player.user.id, lesson.media_id, 10**9)


def script(kit: Any) -> list[tuple[str, Any, list[tuple[dt.datetime, dict[str, Any]]]]]:
    """(what, lesson to open first or None, beats): a document read for ~6 min with a pause,
    then the video lesson joining the day."""
    client = {"visibility": "visible"}
    start = T0 + dt.timedelta(minutes=1)
    doc = [(start + dt.timedelta(seconds=1), {"seq": 1, "event": "play", "position": 0})]
    for i in range(1, DOC_BEATS + 1):
        body = {"seq": i + 1, "event": "heartbeat", "visible_ms": 10_000, "client": client}
        doc.append((start + dt.timedelta(seconds=1 + 10 * i), body))
    at = start + dt.timedelta(seconds=2 + 10 * DOC_BEATS)
    doc.append((at, {"seq": DOC_BEATS + 2, "event": "pause", "visible_ms": 1_000, "client": client}))
    video_start = at + dt.timedelta(seconds=30)
    video = [(video_start + dt.timedelta(seconds=1), {"seq": 1, "event": "play", "position": 0})]
    client = {"visibility": "visible", "rate": 1, "muted": False}
    for i in range(1, 4):
        body = {"seq": i + 1, "event": "heartbeat", "segments": [[10 * (i - 1), 10 * i]], "position": 10 * i}
        video.append((video_start + dt.timedelta(seconds=1 + 10 * i), {**body, "client": client}))
    video.append((video_start + dt.timedelta(seconds=35), {"seq": 5, "event": "terminate", "position": 31}))
    return [("document", kit.document, doc), ("video", kit.video, video)]


def play(app: Any, kit: Any, grouped: list[Player], alone: list[Player]) -> int:
    """Every beat: one group of all the grouped players (one round), and the same beat posted
    one by one for the others; a beat the group hands back goes to the view after it, as the
    ASGI front does. Returns how many were handed back."""
    handed = 0
    for _what, lesson, beats in script(kit):
        for p in (*grouped, *alone):
            open_lesson(p, lesson, beats[0][0] - dt.timedelta(seconds=1))
        for at, body in beats:
            group = [(p, on_device(body, f"g{i}")) for i, p in reversed(list(enumerate(grouped)))]
            with time_machine.travel(at, tick=False):
                answers = run_group(app, group)
            got = []
            for (p, sent), answer in zip(group, answers, strict=True):
                if answer is None:
                    handed += 1
                    response = p.post(at, sent)
                    answer = (response.status_code, None, response.data)
                got.append((answer[0], answer[2]))
            references = [a.post(at, on_device(body, f"a{i}")) for i, a in reversed(list(enumerate(alone)))]
            assert [(s, but_check(a)) for s, a in got] == [(r.status_code, but_check(r.data)) for r in references], body
    return handed


def but_check(answer: bytes) -> Any:
    """A beat's answer without anti-idle's ``check`` (whether a check waits for this person: each
    person's schedule is their own draw, and the people compared here are different people)."""
    try:
        parsed = json.loads(answer)
    except ValueError:
        return answer
    if isinstance(parsed, dict):
        parsed.pop("check", None)
    return parsed


def on_device(body: dict[str, Any], device: str) -> dict[str, Any]:
    """The beat as the learner's own device reports it: every learner here shares the test
    client's address and browser, and several accounts on one device (R12) would make each
    day's verdict depend on whose beats were stored first, which differs between the sides."""
    client = body.get("client", {})
    return {**body, "client": {**client, "presence": {"device": device}}}


def day_rows(player: Player) -> dict[str, Any]:
    """The person's day verdict, day-lesson rows and events, without the rows' ids and names."""
    db.session.expire_all()
    verdicts = db.session.query(DayVerdict).filter_by(user_id=player.user.id).order_by(DayVerdict.day).all()
    lessons = db.session.query(DayLesson).filter_by(user_id=player.user.id).order_by(DayLesson.id).all()
    events = [
        e
        for e in db.session.query(Event).order_by(Event.id)
        if e.actor_id == player.user.id or (e.payload or {}).get("user_id") == player.user.id
    ]
    names = {sid: f"S{i}" for i, sid in enumerate(player.sessions)}  # type: ignore[attr-defined]
    return {
        # The input digest hashes the beats' ids and the device each reports: not compared.
        "verdicts": [without(sessions_named(normalised(v, ""), names), "input_digest") for v in verdicts],
        "lessons": [without(normalised(dl, ""), "day_verdict_id") for dl in lessons],
        # The event's object (session, lesson, day verdict) is named by the row's id.
        "events": [
            (
                e.name,
                e.actor_id is None,
                e.org_unit_id,
                e.object_type,
                sessions_named(normalised_payload(e.payload), names),
            )
            for e in events
        ],
    }


def without(row: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != key}


def sessions_named(value: Any, names: dict[str, str]) -> Any:
    """The person's session ids by the order they opened them."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, dict):
        return {k: sessions_named(v, names) for k, v in value.items()}
    if isinstance(value, list):
        named = [sessions_named(v, names) for v in value]
        # The tally's session lists are sorted by id, which are random: by name here.
        return sorted(named) if value and all(v in names for v in value) else named
    return value


def normalised_payload(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in ("user_id", "registration")}


@pytest.mark.parametrize("grouped_first", [True, False], ids=["grouped-lower-ids", "alone-lower-ids"])
def test_a_rounds_folds_and_publishes_write_what_one_by_one_writes(app, kit, tree, monkeypatch, grouped_first):
    users = people(app, kit, tree, 8)
    first, second = users[:4], users[4:]
    grouped_users, alone_users = (first, second) if grouped_first else (second, first)
    grouped = [Player(app, kit, u, lean=True) for u in grouped_users]
    alone = [Player(app, kit, u, lean=False) for u in alone_users]
    kept: list[int] = []
    original = state_pg.keep_fold

    def counting(verdict: dict[str, Any], lessons: list[dict[str, Any]]) -> None:
        kept.append(verdict["id"])
        original(verdict, lessons)

    monkeypatch.setattr(state_pg, "keep_fold", counting)
    play(app, kit, grouped, alone)
    for g, a in zip(grouped, alone, strict=True):
        assert day_rows(g) == day_rows(a)
    reference = day_rows(alone[0])
    published = [e for e in reference["events"] if e[0] == DAY_ASSESSED]
    assert len(published) >= 2, reference["events"]  # the day's first assessment, then its credit
    assert len(reference["lessons"]) == 2  # the video joined the day
    # The rounds folded through the kept path on PostgreSQL (the pause, the publish, the join
    # at least); SQLite has no rounds.
    if db.engine.dialect.name == "postgresql":
        assert len(kept) >= 3 * len(grouped), kept
    else:
        assert kept == []


@pytest.mark.backends("postgresql")
def test_a_rounds_folds_are_one_statement(app, kit, tree):
    users = people(app, kit, tree, 6)
    players = [Player(app, kit, u, lean=True) for u in users]
    (_what, lesson, beats) = script(kit)[0]
    for p in players:
        open_lesson(p, lesson, beats[0][0] - dt.timedelta(seconds=1))
    *before, (at, pause) = beats

    play_rounds(app, players, before)
    with psycopg_statements() as statements, time_machine.travel(at, tick=False):
        answers = run_group(app, [(p, pause) for p in players])  # every person stops: every day is folded
    assert all(a is not None and a[0] == 200 for a in answers), answers
    writes = [
        s
        for s in statements
        if ("anti_idle_day_verdicts" in s or "anti_idle_day_lessons" in s)
        and s.lstrip().upper().startswith(("UPDATE", "INSERT", "WITH"))
    ]
    assert len(writes) == 1, writes
    assert "UPDATE anti_idle_day_verdicts" in writes[0] and "INSERT INTO anti_idle_day_lessons" in writes[0]
    db.session.expire_all()
    folded = db.session.query(DayVerdict).filter(DayVerdict.user_id.in_([u.id for u in users])).all()
    # Written at this round, each with every judged beat of its day (the play beat claims nothing).
    assert len(folded) == len(players) and {v.computed_at for v in folded} == {at}
    assert {v.beats for v in folded} == {v.tally["beats"] for v in folded} == {len(beats) - 1}


def test_a_days_first_beat_is_replayed_in_the_round_as_the_view_replays_it(app, kit, tree):
    # The day's first beat changes its verdict from none to credited: the day is replayed and
    # published. A round does that itself (a one-beat day is cheap) instead of handing the beat
    # to the view, which rolled the whole group back and did it again: the same rows and events.
    users = people(app, kit, tree, 8)
    grouped = [Player(app, kit, u, lean=True) for u in users[:4]]
    alone = [Player(app, kit, u, lean=False) for u in users[4:]]
    _what, lesson, beats = script(kit)[0]
    for p in (*grouped, *alone):
        open_lesson(p, lesson, beats[0][0] - dt.timedelta(seconds=1))
    handed = 0
    for at, body in beats[:3]:  # the play beat (the day's first), then two heartbeats
        group = [(p, on_device(body, f"g{i}")) for i, p in enumerate(grouped)]
        with time_machine.travel(at, tick=False):
            answers = run_group(app, group)
        for (p, sent), answer in zip(group, answers, strict=True):
            if answer is None:
                handed += 1
                answer = (p.post(at, sent).status_code, None, b"")
            assert answer[0] == 200
        for i, a in enumerate(alone):
            assert a.post(at, on_device(body, f"a{i}")).status_code == 200
    for g, a in zip(grouped, alone, strict=True):
        rows = day_rows(g)
        assert rows == day_rows(a)
        assert [e[0] for e in rows["events"]].count(DAY_ASSESSED) == 1  # the first beat's publish, once
        assert len(rows["verdicts"]) == 1
    assert handed == 0
