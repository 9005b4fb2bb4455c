"""A lesson's completion after a beat (``services._beat_completion``): what it reads, and when.

Once a lesson's rule is met but a plugin holds its completion, every beat asks the hooks
again, with copies of the lesson and progress rows as the beat read and changed them: no
statement of the core's for that. The completion still happens at the beat after the hold
is lifted, with its events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event as sa_event

from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.learning import services
from lms_core.learning.models import LessonProgress, ProgressStatus
from lms_core.pluginhost import hookimpl
from tests.lms_core.learning.test_beats import T0, beat, learner, open_session  # noqa: F401 - a fixture

__all__ = ["learner"]


class Holding:
    """Holds every lesson's completion while ``holding``; records what it was asked with."""

    def __init__(self) -> None:
        self.holding = True
        self.asked: list[tuple[int, int, str]] = []

    @hookimpl
    def lms_completion_verdict(self, user: Any, lesson: Any, progress: Any) -> bool | None:
        self.asked.append((lesson.id, progress.read_ms, str(progress.status)))
        return False if self.holding else None


HOLD = Holding()


@pytest.fixture
def hold():
    HOLD.holding, HOLD.asked = True, []
    return HOLD


@pytest.fixture
def completion_statements(monkeypatch: Any) -> Iterator[list[str]]:
    """The statements sent while ``_beat_completion`` runs (filled as beats go)."""
    sent: list[str] = []
    running = [False]
    original = services._beat_completion

    def counted(*args: Any) -> Any:
        running[0] = True
        try:
            return original(*args)
        finally:
            running[0] = False

    def listen(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if running[0]:
            sent.append(statement)

    monkeypatch.setattr(services, "_beat_completion", counted)
    sa_event.listen(db.engine, "before_cursor_execute", listen)
    yield sent
    sa_event.remove(db.engine, "before_cursor_execute", listen)


@pytest.mark.app_config(LMS_PLUGIN_OBJECTS={"hold": HOLD})
def test_a_held_completion_reads_nothing_per_beat_and_completes_when_released(
    kit, learner, hold, completion_statements
):
    sent = completion_statements
    s = open_session(learner, kit.document)
    at = T0
    for seq in range(1, 4):  # 30 s read: the rule (30 s) is met at the third beat
        at += dt.timedelta(seconds=10)
        r = beat(s, learner, at, seq=seq, visible_ms=10_000)
    assert not r.lesson_completed
    assert hold.asked == [(kit.document.id, 30_000, "in_progress")]
    # The hooks are given copies of the rows the beat read: no statement for them (one read
    # of the three rows as ORM objects before; three ``session.get`` before that).
    assert sent == []
    at += dt.timedelta(seconds=10)
    r = beat(s, learner, at, seq=4, visible_ms=10_000)
    assert not r.lesson_completed and hold.asked[-1] == (kit.document.id, 40_000, "in_progress")
    assert sent == []

    hold.holding = False  # e.g. an auditor posted the held day: the next beat completes
    at += dt.timedelta(seconds=10)
    r = beat(s, learner, at, seq=5, visible_ms=10_000)
    assert r.lesson_completed and len(hold.asked) == 3
    progress = db.session.query(LessonProgress).filter_by(user_id=learner.id, lesson_id=kit.document.id).one()
    assert progress.status == ProgressStatus.COMPLETED and progress.read_ms == 50_000
    completed = db.session.query(Event).filter_by(name="lesson.completed", actor_id=learner.id).all()
    assert [e.payload["lesson_id"] for e in completed] == [kit.document.id]
    assert services.course_counts(learner.id, kit.course.id)[0] == 1
    at += dt.timedelta(seconds=10)
    r = beat(s, learner, at, seq=6, visible_ms=10_000)
    assert r.lesson_completed and len(hold.asked) == 3  # completed: nobody is asked again


def test_course_counts_count_required_lessons_and_completed_ones(kit, learner):
    done, total = services.course_counts(learner.id, kit.course.id)
    assert done == 0 and total >= 2
    s = open_session(learner, kit.document)
    at = T0
    for seq in range(1, 4):
        at += dt.timedelta(seconds=10)
        beat(s, learner, at, seq=seq, visible_ms=10_000)
    assert services.course_counts(learner.id, kit.course.id) == (1, total)
