"""Demo data for the anti-idle plugin, produced through the real services.

``flask lms anti-idle demo`` (run by ``make run`` after ``flask lms demo``):

* fifteen months of study by 李明 and a few cadres of each county (``demo_study.py``):
  the dashboard's charts, the hours report and "who is behind" have real shapes;
* a course policy for 乡村振兴实践案例 (XC-2026-04) with frequent attention checks
  (first after 10 s of playing, then every 20 s, 15 s to answer, hidden grace 10 s),
  stored as a new policy version like an admin's edit;
* two scripted study mornings of the demo learner 李明 (南岭县), replayed through the
  real heartbeat path (``learning.record_beat`` with the plugin's assessment), the
  media server's delivery counter and the attention-check service, with the clock
  moved to those mornings:
  - yesterday: an honest lecture, then a lesson left playing in a hidden tab with a
    check answered late: the day is deducted (credit stopped until the answer, R07),
    and 李明 has appealed it. The script's answer of the day before does not reach
    into this day: an automated answer voids its own person-day only
    (docs/anti_idle.md), and this morning's first check is owed at once;
  - the day before: a browser driven by automation whose check was answered by a
    script: the day is held for audit (R11 + R07b), waiting for 南岭县审计员.

Idempotent: a person-day that already has a verdict is left alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from lms_core.accounts.models import User
from lms_core.courses.models import Course, Lesson, LessonKind
from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.learning import services as learning
from lms_core.media.services import record_delivery
from plugins.anti_idle import appeals, checks, demo_study, envelope, policy, policy_forms
from plugins.anti_idle.models import DayVerdict

LEARNER = "learner"
CHECK_COURSE = "XC-2026-04"
LECTURE_COURSE = "FZ-2026-02"
CHECK_POLICY = {
    "check_first_after_seconds": 10,
    "check_min_gap_seconds": 20,
    "check_max_gap_seconds": 20,
    "check_window_seconds": 15,
    "hidden_grace_seconds": 10,
}


def _presence(*, hidden_ms: int = 0, playing_ms: int = 10_000, probes: int = 0) -> dict[str, Any]:
    return {
        "v": 1,
        "dt_ms": 10_000,
        "hidden_ms": hidden_ms,
        "hidden_max_ms": hidden_ms,
        "blur_ms": 0,
        "focused": hidden_ms == 0,
        "raf": 0 if hidden_ms else 600,
        "ticks": 40,
        "playing_ms": playing_ms,
        "muted_ms": 0,
        "rate_min": 1,
        "rate_max": 1,
        "path_px": 0,
        "probes": probes,
        "input": {"pointer": 0, "key": 0, "touch": 0, "wheel": 0, "scroll": 0, "untrusted": 0},
    }


class _Clock:
    """Moves the process clock to a scripted moment (the demo only; never in a request)."""

    def __init__(self) -> None:
        import time_machine

        self._tm = time_machine

    def at(self, when: dt.datetime) -> Any:
        return self._tm.travel(when, tick=False)


def _lesson(code: str) -> tuple[Course, Lesson] | None:
    course = db.session.execute(select(Course).where(Course.code == code)).scalar_one_or_none()
    if course is None:
        return None
    lesson = (
        db.session.execute(
            select(Lesson)
            .where(Lesson.course_id == course.id, Lesson.kind == LessonKind.VIDEO)
            .order_by(Lesson.position)
        )
        .scalars()
        .first()
    )
    return (course, lesson) if lesson is not None and lesson.media is not None else None


class _Viewer:
    def __init__(self, clock: _Clock, user: User, course: Course, lesson: Lesson, start: dt.datetime) -> None:
        self.clock, self.user, self.lesson, self.start, self.seq = clock, user, lesson, start, 0
        self.shown_at = 0.0
        enrolment = learning.enrolment_for(user, course.id) or enrolments.enrol(user, course)
        with clock.at(start):
            self.session = learning.start_session(user, lesson, enrolment)
            db.session.commit()
            media = lesson.media
            assert media is not None
            record_delivery(self.session.id, user.id, media.id, media.size_bytes)  # the player fetched the file

    def beat(self, at_s: float, media_from: float, media_to: float, **presence: Any) -> None:
        self.seq += 1
        hidden = presence.get("hidden_ms", 0) > 0
        body = {
            "seq": self.seq,
            "event": "heartbeat",
            "position": media_to,
            "segments": [[media_from, media_to]] if media_to > media_from else [],
            "visible_ms": 0 if hidden else 10_000,
            "client": {
                "visibility": "hidden" if hidden else "visible",
                "rate": 1,
                "muted": False,
                "webdriver": presence.get("probes", 0) & 1 == 1,
                "presence": _presence(**presence),
            },
        }
        with self.clock.at(self.start + dt.timedelta(seconds=at_s)), envelope.signed(self.session.id, body):
            learning.record_beat(self.session.id, self.user, body)
            db.session.commit()

    def check(self, at_s: float) -> Any:
        with self.clock.at(self.start + dt.timedelta(seconds=at_s)):
            check = checks.issue_if_due(self.session, self.user)
            db.session.commit()
        if check is not None:
            self.shown_at = at_s
        return check

    def answer(self, check: Any, at_s: float, *, trusted: bool) -> None:
        with self.clock.at(self.start + dt.timedelta(seconds=at_s)):
            # The player measures the latency from when it showed the check, as here: the
            # check may be older than this session (one left unanswered on an earlier day).
            latency = int((at_s - self.shown_at) * 1000)
            checks.answer_check(
                check.token,
                self.user,
                {
                    "answer": check.expected,
                    "trusted": trusted,
                    "latency_ms": latency,
                    "input_mode": "pointer" if trusted else "none",
                },
            )
            db.session.commit()


def load_demo(echo: Callable[[str], object] = print) -> None:
    from plugins.anti_idle.verdicts import assess_day

    user = db.session.execute(select(User).where(User.username == LEARNER)).scalar_one_or_none()
    check_course, lecture = _lesson(CHECK_COURSE), _lesson(LECTURE_COURSE)
    if user is None or check_course is None or lecture is None:
        echo("anti-idle demo skipped: run `flask lms demo` first")
        return
    if policy.current_policy(check_course[0].id).course_id is None:
        policy_forms.save(
            CHECK_POLICY, course_id=check_course[0].id, actor=None, note="演示：频繁的防挂机提示（每播放 20 秒一次）"
        )
        db.session.commit()
        echo(f"anti-idle: course {CHECK_COURSE} has its own policy (a check every 20 s of playing)")
    today = learning.beijing_day(dt.datetime.now(dt.UTC))
    # Months of study first: each person's clock only moves forward, so the past comes first.
    demo_study.load_study(today, echo=echo)
    clock = _Clock()
    for days_ago, script in ((2, _automated_morning), (1, _hidden_tab_morning)):
        day = today - dt.timedelta(days=days_ago)
        if (
            db.session.execute(
                select(DayVerdict.id).where(DayVerdict.user_id == user.id, DayVerdict.day == day)
            ).first()
            is not None
        ):
            continue
        # 09:00 in Beijing is 01:00 UTC.
        start = dt.datetime.combine(day, dt.time(1, 0), tzinfo=dt.UTC)
        script(clock, user, start, lecture, check_course)
        verdict = assess_day(user.id, day)
        db.session.commit()
        echo(f"anti-idle: {user.full_name} {day.isoformat()} -> {verdict.verdict if verdict else 'nothing'}")


def _hidden_tab_morning(
    clock: _Clock, user: User, start: dt.datetime, lecture: tuple[Course, Lesson], check_course: tuple[Course, Lesson]
) -> None:
    honest = _Viewer(clock, user, *lecture, start)
    for t in range(10, 61, 10):
        honest.beat(t, t - 10, t)
    later = start + dt.timedelta(minutes=5)
    viewer = _Viewer(clock, user, *check_course, later)
    viewer.beat(10, 0, 10)
    check = viewer.check(10.5)
    viewer.beat(20, 10, 20, hidden_ms=10_000)
    viewer.beat(30, 20, 30, hidden_ms=10_000)
    viewer.beat(40, 30, 30)
    if check is not None:
        viewer.answer(check, 41, trusted=True)
    db.session.commit()
    day = db.session.execute(
        select(DayVerdict).where(DayVerdict.user_id == user.id, DayVerdict.day == learning.beijing_day(start))
    ).scalar_one()
    appeals.file_appeal(user, day.id, "那段时间我开着两个显示器，视频一直在另一个屏幕上播放。")
    db.session.commit()


def _automated_morning(
    clock: _Clock, user: User, start: dt.datetime, lecture: tuple[Course, Lesson], check_course: tuple[Course, Lesson]
) -> None:
    viewer = _Viewer(clock, user, *check_course, start)
    viewer.beat(10, 0, 10, probes=1)
    check = viewer.check(10.5)
    if check is not None:
        viewer.answer(check, 11, trusted=False)
    viewer.beat(20, 10, 20, probes=1)
    viewer.beat(30, 20, 30, probes=1)


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Load the anti-idle demo: a course policy with frequent checks, a held day and a void one (idempotent)."""
    load_demo(echo=click.echo)
