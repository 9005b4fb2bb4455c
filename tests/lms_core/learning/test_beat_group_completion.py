"""A lesson's completion by a beat of a group round (``services._beat_completion``, PostgreSQL).

A beat that newly meets the lesson's rule completes it in the beat's own work: the verdict
hooks get copies of the rows the beat read, the completion's columns go with the beat's
progress write (the round's one statement), its events with the round's. Reference, as in
``test_beat_group``: the same beats posted one by one to the Flask view by other learners at
the same frozen times. Some people's completions are held by a plugin, some complete the
course (their other required lessons done before): the group must answer the same bytes and
leave the same progress, enrolments, events and jobs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from lms_core.enrolments.models import Enrolment
from lms_core.extensions import db
from lms_core.learning import beat_group, beat_tx, services
from lms_core.learning.models import ProgressStatus
from lms_core.pluginhost import hookimpl
from tests.lms_core.learning.test_beat_asgi import people, play_rounds, psycopg_statements, run_group
from tests.lms_core.learning.test_beat_front import T0, Player, beats
from tests.lms_core.learning.test_beat_group import assert_same_rows, chunks_of, play
from tests.lms_core.learning.test_beat_group_events import events_of, jobs_of, shown


class HoldSome:
    """Holds the completion of the people in ``held``; records who was asked, with what."""

    def __init__(self) -> None:
        self.held: set[int] = set()
        self.asked: list[tuple[int, int, int, str]] = []

    @hookimpl
    def lms_completion_verdict(self, user: Any, lesson: Any, progress: Any) -> bool | None:
        self.asked.append((user.id, lesson.id, progress.coverage_bp, str(progress.status)))
        return False if user.id in self.held else None


HOLD = HoldSome()

pytestmark = pytest.mark.app_config(
    LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True, LMS_PLUGIN_OBJECTS={"hold_some": HOLD}
)


@pytest.fixture
def hold() -> HoldSome:
    HOLD.held, HOLD.asked = set(), []
    return HOLD


def other_lessons_done(kit: Any, user: Any) -> None:
    """The course's other required lessons (document, quiz) completed: the video completes the course."""
    for lesson in (kit.document, kit.quiz):
        progress = services.progress_for(user.id, lesson)
        progress.status = ProgressStatus.COMPLETED
        progress.completed_at = T0
    db.session.commit()


def enrolment_rows(player: Player) -> list[tuple[Any, ...]]:
    return [
        (e.completed_at,)
        for e in db.session.execute(select(Enrolment).where(Enrolment.user_id == player.user.id)).scalars()
    ]


def assert_same_outcome(grouped: list[Player], alone: list[Player]) -> list[list[str]]:
    """The grouped players' rows, events, jobs and enrolments are the one-by-one players';
    returns the grouped players' event names, in order."""
    assert_same_rows(grouped, alone)  # progress, ledger, sessions, clocks, ...
    db.session.expire_all()
    for g, a in zip(grouped, alone, strict=True):
        mine, theirs = events_of(g), events_of(a)
        assert shown(mine, g) == shown(theirs, a)
        assert jobs_of(mine) == jobs_of(theirs) and len(jobs_of(mine)) == len(mine)
        assert enrolment_rows(g) == enrolment_rows(a)
    return [[e.name for e in events_of(g)] for g in grouped]


def test_a_groups_completions_are_those_of_one_by_one(app, kit, tree, hold):
    users = people(app, kit, tree, 8)
    # Person 0: completes the course; 1: would, but held; 2: completes the lesson; 3: held.
    for i in (0, 1, 4, 5):
        other_lessons_done(kit, users[i])
    hold.held = {users[i].id for i in (1, 3, 5, 7)}
    grouped = [Player(app, kit, u, lean=True) for u in users[:4]]
    alone = [Player(app, kit, u, lean=False) for u in users[4:]]
    play(app, grouped, alone, chunks_of(beats()))  # the same answer bytes, beat by beat
    names = assert_same_outcome(grouped, alone)
    assert names[0].count("lesson.completed") == 1 and names[0].count("course.completed") == 1
    assert names[0].index("lesson.completed") < names[0].index("course.completed")
    assert enrolment_rows(grouped[0])[0][0] is not None
    assert "lesson.completed" not in names[1] and enrolment_rows(grouped[1]) == [(None,)]
    assert names[2].count("lesson.completed") == 1 and "course.completed" not in names[2]
    assert "lesson.completed" not in names[3]
    # The held are asked at every beat once the rule is met; the others once.
    asked = [sum(1 for who, *_ in hold.asked if who == p.user.id) for p in grouped]
    assert asked[0] == asked[2] == 1 and asked[1] == asked[3] > 1, asked
    # Asked with the lesson and the progress as the beat leaves them (the rule met, not yet completed).
    first = next(a for a in hold.asked if a[0] == grouped[0].user.id)
    assert first[1:] == (kit.video.id, 10_000, "in_progress")


@pytest.mark.backends("postgresql")
def test_completions_in_a_round_keep_its_one_write_on_postgresql(app, kit, tree, hold):
    users = people(app, kit, tree, 6)
    for user in users[:2]:
        other_lessons_done(kit, user)
    hold.held = {users[5].id}
    players = [Player(app, kit, u, lean=True) for u in users]
    played = beats()
    play_rounds(app, players, played[:10])  # the play and nine beats: 90 % of the video seen
    at, body = played[10]  # the tenth: 100 %, the rule (95 %) met by all six at once
    with psycopg_statements() as statements, time_machine.travel(at, tick=False):
        answers = run_group(app, [(p, body) for p in players])
    assert all(a is not None and a[0] == 200 for a in answers), answers
    done = [b'"lesson_completed":true' in a[2] for a in answers if a is not None]
    assert done == [True] * 5 + [False], answers
    # The round's writes stay one statement each, completions and all (each completion cut
    # the round's write in two before: its progress flush, then its course count).
    assert sum(s.startswith("WITH s AS (UPDATE learning_sessions") for s in statements) == 1, statements
    assert sum("UPDATE lesson_progress" in s for s in statements) == 1, statements
    assert sum(s.startswith("WITH e AS (INSERT INTO event_log") for s in statements) == 1, statements
    # A completion's own statements: one read; the two course completions one UPDATE for the
    # round, with the round's write (one each before).
    updates = [s for s in statements if "UPDATE enrolments" in s]
    assert len(updates) == 1 and "unnest" in updates[0], statements
    db.session.expire_all()
    for p in players[:2]:
        assert [e.name for e in events_of(p)].count("course.completed") == 1


def hold_day(user: Any, lesson_id: int, review_state: str, verdict: str = "held") -> None:
    """A past day of the person's, judged ``verdict``, that touched the lesson (anti-idle's hold
    while held and not posted)."""
    from plugins.anti_idle.models import DayLesson, DayVerdict

    day = DayVerdict(user_id=user.id, day=dt.date(2026, 5, 9), verdict=verdict, review_state=review_state)
    db.session.add(day)
    db.session.flush()
    db.session.add(DayLesson(day_verdict_id=day.id, user_id=user.id, lesson_id=lesson_id))
    db.session.commit()


def test_a_rounds_completions_read_ahead_are_those_of_one_by_one(app, kit, tree, hold):
    """Anti-idle's own holds (a held day not posted; a posted one; a credited one), people who
    complete the course and people who do not, all in the same course, each person's beats
    up to five to a group (the completing beat in a later round of its group): the same
    answers, rows, enrolments, events and jobs as one by one."""
    users = people(app, kit, tree, 10)
    # 0: completes the course; 1: would, held by anti-idle; 2: completes the lesson; 3: held;
    # 4: a posted held day, completes; the other five the same, one by one.
    for offset in (0, 5):
        for i in (0, 1):
            other_lessons_done(kit, users[offset + i])
        hold_day(users[offset + 1], kit.video.id, "pending")
        hold_day(users[offset + 3], kit.video.id, "none")
        hold_day(users[offset + 4], kit.video.id, "posted")
        hold_day(users[offset + 2], kit.video.id, "none", verdict="credited")
    grouped = [Player(app, kit, u, lean=True) for u in users[:5]]
    alone = [Player(app, kit, u, lean=False) for u in users[5:]]
    play(app, grouped, alone, chunks_of(beats()))  # the completing beat in the second round of a group
    names = assert_same_outcome(grouped, alone)
    assert [n.count("lesson.completed") for n in names] == [1, 0, 1, 0, 1], names
    assert [n.count("course.completed") for n in names] == [1, 0, 0, 0, 0], names


@pytest.mark.backends("postgresql")
def test_a_rounds_completions_are_read_with_two_statements_not_two_each(app, kit, tree, hold):
    """Six people meet the rule in one round (two complete the course, one is held by anti-idle's
    held day, one by another plugin): the course facts and anti-idle's holds are each read once
    for the round, at its read, not once per completing beat (two statements each before)."""
    users = people(app, kit, tree, 6)
    for user in users[:2]:
        other_lessons_done(kit, user)
    hold_day(users[4], kit.video.id, "pending")
    hold.held = {users[5].id}
    players = [Player(app, kit, u, lean=True) for u in users]
    played = beats()
    play_rounds(app, players, played[:10])
    at, body = played[10]  # the rule (95 %) met by all six at once
    with psycopg_statements() as statements, time_machine.travel(at, tick=False):
        answers = run_group(app, [(p, body) for p in players])
    assert all(a is not None and a[0] == 200 for a in answers), answers
    done = [b'"lesson_completed":true' in a[2] for a in answers if a is not None]
    assert done == [True] * 4 + [False, False], answers
    facts = [s for s in statements if "e.completed_at IS NOT NULL" in s or "enrolments.registration" in s]
    holds = [s for s in statements if "FROM anti_idle_day_verdicts" in s or "FROM anti_idle_day_lessons" in s]
    assert len(facts) == 1 and "unnest" in facts[0], facts
    assert len(holds) == 1 and "unnest" in holds[0], holds
    assert sum("UPDATE enrolments" in s for s in statements) == 1, statements
    # The other plugin is still asked once per completing beat, anti-idle answered from the read.
    assert sorted(who for who, *_ in hold.asked) == sorted(u.id for u in users)


@pytest.mark.backends("postgresql")
def test_a_rounds_course_completions_are_kept_and_seen_by_a_later_read(app, kit, tree):
    """Inside a round a course completion's ``UPDATE enrolments`` is kept for the round's write
    (one statement for the round's completions); a statement naming ``enrolments`` later in
    the round (here an ORM read) writes them first, so it sees the enrolments complete."""
    users = people(app, kit, tree, 3)
    ids = [e.id for e in (services.enrolment_for(u, kit.course.id) for u in users) if e is not None]
    info = beat_tx.connection().info
    beat_group.begin(info)
    try:
        with psycopg_statements() as statements:
            services._complete_enrolment(ids[0], T0)
            services._complete_enrolment(ids[1], T0)
            assert not any("enrolments" in s for s in statements), statements  # kept, not sent
            done = db.session.execute(select(Enrolment.id, Enrolment.completed_at).where(Enrolment.id.in_(ids))).all()
    finally:
        beat_group.end(info)
    assert sorted(done) == sorted([(ids[0], T0), (ids[1], T0), (ids[2], None)])
    updates = [i for i, s in enumerate(statements) if "UPDATE enrolments" in s]
    reads = [i for i, s in enumerate(statements) if s.startswith("SELECT enrolments.id")]
    assert len(updates) == 1 and reads and updates[0] < reads[0], statements
