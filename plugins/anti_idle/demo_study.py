"""Fifteen months of study by a few demo cadres, through the real heartbeat path.

Run by ``flask lms anti-idle demo`` (``make run``) so that the dashboard's monthly trend,
hours per cadre, completion and deduction charts, the hours report and "who is behind"
show real shapes. Nothing is written into a table here: each sitting opens a learning
session, the media server's delivery counter is told the file was fetched, signed beats
go through ``learning.record_beat`` (judged by this plugin's assessment), attention
checks are issued and answered by the check service, quizzes are taken through the quiz
service; completions then emit ``course.completed``, which the credit bank posts.

* Who: 李明 and the first cadres (by username) of each county, more in 东湖区 than in
  安义县, so the units differ; each studies one to three days a month, more in spring,
  autumn and at the year's end, less at the Spring Festival and in August.
* What: the demo courses' reading material (documents have no lesson cap, the demo
  videos are under a minute) for 5 to 16 minutes a sitting, and now and then a whole
  course: its videos, its reading and its quiz, answered correctly.
* Beats a minute apart, the longest gap the server credits (``LMS_BEAT_MAX_GAP_SECONDS``),
  not the player's 10 s: the same credit for a sixth of the beats, so ``make run`` stays quick.
* A few days go wrong as they do in life: reading left open through a meeting (R08,
  deducted), and days studied with an automation tool (R11) that also scripted the
  reader's input (R08b): held for the auditor. (李明's scripted mornings, demo.py, add a
  check answered late, R07, and an automated answer, R07b.)

Deterministic (a seeded generator, dates counted back from today) and idempotent: a
person-day that already has a learning session is left alone.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from lms_core.accounts.models import User
from lms_core.courses.models import Course, Lesson, LessonKind
from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.jobs.services import commit
from lms_core.learning import services as learning
from lms_core.learning.models import LearningSession, LessonProgress, ProgressStatus
from lms_core.media.services import record_delivery
from lms_core.orgs.models import OrgUnit
from lms_core.quizzes import services as quizzes
from plugins.anti_idle import checks, envelope

#: Cadres studying per county (code): the units' hours per cadre differ.
STUDIERS = {"360102": 3, "360121": 2, "360122": 2, "360123": 1}
#: How much a month is studied (January first): Spring Festival, summer, the year-end rush.
MONTH_WEIGHT = (0.8, 0.4, 1.2, 1.3, 1.1, 1.0, 0.7, 0.5, 1.1, 1.0, 1.4, 1.6)
MONTHS = 15
#: 李明's scripted mornings (plugins/anti_idle/demo.py) are the two days before today;
#: his and everyone's study stops before them.
LAST_DAY_BEFORE_TODAY = 3
#: Courses 李明 does not study here: his scripted mornings watch these lectures, and the
#: lesson cap (R10) counts a person's credit on a video over all time.
SCRIPTED_COURSES = ("FZ-2026-02", "XC-2026-04")
BEAT_SECONDS = 60


def _presence(*, seconds: int, playing: bool, idle_s: int = 5, scripted: bool = False) -> dict[str, Any]:
    return {
        "v": 1,
        "dt_ms": seconds * 1000,
        "hidden_ms": 0,
        "hidden_max_ms": 0,
        "blur_ms": 0,
        "focused": True,
        "raf": 60 * seconds,
        "ticks": 4 * seconds,
        "playing_ms": seconds * 1000 if playing else 0,
        "muted_ms": 0,
        "rate_min": 1,
        "rate_max": 1,
        "path_px": 0 if playing else 40 * seconds,
        "probes": 1 if scripted else 0,
        "idle_ms": idle_s * 1000,
        "input": {
            "pointer": 0 if playing else 3,
            "key": 0,
            "touch": 0,
            "wheel": 0 if playing else 2,
            "scroll": 0 if playing else 4,
            "untrusted": 3 if scripted else 0,
        },
    }


class _Clock:
    """The process clock held at a scripted moment (the demo only; never in a request)."""

    def __init__(self, traveller: Any) -> None:
        self._traveller = traveller

    def at(self, moment: dt.datetime) -> None:
        self._traveller.move_to(moment)


@contextmanager
def _frozen(start: dt.datetime) -> Iterator[_Clock]:
    import time_machine

    with time_machine.travel(start, tick=False) as traveller:
        yield _Clock(traveller)


@dataclass
class _Sitting:
    """One lesson opened by one cadre at one moment: a learning session and its beats."""

    clock: _Clock
    user: User
    lesson: Lesson
    start: dt.datetime
    session: LearningSession
    seq: int = 0

    @classmethod
    def open(cls, clock: _Clock, user: User, lesson: Lesson, start: dt.datetime, ip: str) -> _Sitting:
        clock.at(start)
        course = db.session.get(Course, lesson.course_id)
        assert course is not None and lesson.media is not None
        enrolment = learning.enrolment_for(user, course.id) or enrolments.enrol(user, course)
        session = learning.start_session(user, lesson, enrolment, ip=ip, user_agent=USER_AGENT)
        # Its own short transaction, as after a response (commits the session too); the
        # day's other work is committed once at its end (one dispatch of its events).
        record_delivery(session.id, user.id, lesson.media.id, lesson.media.size_bytes)  # the file was fetched
        return cls(clock, user, lesson, start, session)

    def beat(self, at_s: int, seconds: int, body: dict[str, Any]) -> learning.BeatResult:
        self.seq += 1
        body = {"seq": self.seq, "event": "heartbeat", **body}
        self.clock.at(self.start + dt.timedelta(seconds=at_s))
        with envelope.signed(self.session.id, body):
            return learning.record_beat(self.session.id, self.user, body)

    def read(self, minutes: int, *, idle_from: int | None = None, scripted: bool = False) -> None:
        """Read a document for ``minutes``; after minute ``idle_from`` the reader touches nothing."""
        for minute in range(1, minutes + 1):
            idle_s = 5 if idle_from is None or minute <= idle_from else (minute - idle_from) * 60
            client = _client(_presence(seconds=BEAT_SECONDS, playing=False, idle_s=idle_s, scripted=scripted))
            self.beat(
                minute * BEAT_SECONDS, BEAT_SECONDS, {"position": 0, "segments": [], "visible_ms": 60_000, **client}
            )

    def watch(self, *, until_s: int | None = None, scripted: bool = False) -> None:
        """Watch a video (to ``until_s`` or its end) in beats of up to a minute, answering each attention check."""
        duration = (self.lesson.media.duration_ms or 0) // 1000 if self.lesson.media else 0
        duration = min(duration, until_s or duration)
        at = 0
        while at < duration:
            step = min(BEAT_SECONDS, duration - at)
            client = _client(_presence(seconds=step, playing=True, scripted=scripted))
            self.beat(
                at + step,
                step,
                {"position": at + step, "segments": [[at, at + step]], "visible_ms": step * 1000, **client},
            )
            self._answer_open_check(at + step)
            at += step

    def _answer_open_check(self, now_s: int) -> None:
        self.clock.at(self.start + dt.timedelta(seconds=now_s))
        check = checks.issue_if_due(self.session, self.user)  # the player's poll
        if check is None:
            return
        after = 3  # a person reads the prompt and clicks within a few seconds
        self.clock.at(self.start + dt.timedelta(seconds=now_s + after))
        checks.answer_check(
            check.token,
            self.user,
            {"answer": check.expected, "trusted": True, "latency_ms": after * 1000, "input_mode": "pointer"},
        )


USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
)


def _client(presence: dict[str, Any]) -> dict[str, Any]:
    return {
        "client": {
            "visibility": "visible",
            "rate": 1,
            "muted": False,
            "webdriver": bool(presence["probes"] & 1),
            "presence": presence,
        }
    }


def _studiers() -> list[User]:
    """李明 and the first cadres (by username) of each county in ``STUDIERS``."""
    people = []
    learner = db.session.execute(select(User).where(User.username == "learner")).scalar_one_or_none()
    if learner is not None:
        people.append(learner)
    for code, count in STUDIERS.items():
        county = db.session.execute(select(OrgUnit).where(OrgUnit.code == code)).scalar_one_or_none()
        if county is None:
            continue
        people += (
            db.session.execute(
                select(User)
                .join(OrgUnit, OrgUnit.id == User.org_unit_id)
                .where(User.username.like("cadre%"), OrgUnit.path.startswith(county.path))
                .order_by(User.username)
                .limit(count)
            )
            .scalars()
            .all()
        )
    return people


def _lessons() -> dict[str, list[Lesson]]:
    """Published demo courses by code, with their required lessons in order."""
    out: dict[str, list[Lesson]] = {}
    for course in db.session.execute(select(Course).where(Course.published.is_(True)).order_by(Course.code)).scalars():
        lessons = db.session.execute(
            select(Lesson).where(Lesson.course_id == course.id, Lesson.required.is_(True)).order_by(Lesson.position)
        ).scalars()
        out[course.code] = list(lessons)
    return out


def _study_days(rng: random.Random, diligence: float, today: dt.date) -> list[dt.date]:
    """One to three days a month (by the month's weight) over the last ``MONTHS`` months, before the scripted days."""
    last = today - dt.timedelta(days=LAST_DAY_BEFORE_TODAY)
    days = []
    year, month = today.year, today.month
    for _ in range(MONTHS):
        weight = MONTH_WEIGHT[month - 1] * diligence
        count = max(0, min(3, round(weight * 2 * rng.uniform(0.6, 1.2))))
        first = dt.date(year, month, 1)
        span = ((first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - first).days
        for day in sorted(rng.sample(range(1, span + 1), count)):
            d = first.replace(day=day)
            if d <= last and d.weekday() < 5:  # working days only
                days.append(d)
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return sorted(days)


def _studied(user: User, day: dt.date) -> bool:
    start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC) - dt.timedelta(hours=8)  # Beijing midnight
    return (
        db.session.execute(
            select(LearningSession.id).where(
                LearningSession.user_id == user.id,
                LearningSession.started_at >= start,
                LearningSession.started_at < start + dt.timedelta(days=1),
            )
        ).first()
        is not None
    )


def _completed(user: User, lesson: Lesson) -> bool:
    status = db.session.execute(
        select(LessonProgress.status).where(LessonProgress.user_id == user.id, LessonProgress.lesson_id == lesson.id)
    ).scalar_one_or_none()
    return status == ProgressStatus.COMPLETED


def _may_study(user: User, course_id: int, moment: dt.datetime) -> bool:
    """Not before an enrolment made later (an assignment materialised today): no completion before enrolling."""
    enrolment = learning.enrolment_for(user, course_id)
    if enrolment is None:
        return True
    enrolled = enrolment.enrolled_at if enrolment.enrolled_at.tzinfo else enrolment.enrolled_at.replace(tzinfo=dt.UTC)
    return enrolled <= moment


def _take_quiz(user: User, lesson: Lesson) -> None:
    course = db.session.get(Course, lesson.course_id)
    assert course is not None
    enrolment = learning.enrolment_for(user, course.id) or enrolments.enrol(user, course)
    attempt = quizzes.open_attempt(user, lesson, enrolment)
    answers = {str(q.id): list(q.correct) for q in quizzes.questions(lesson)}
    quizzes.submit(user, attempt, answers)


#: Days that go wrong: (person index in ``_studiers()``, months before this one) -> what
#: happened on the person's first study day of that month.
MISHAPS = {
    (1, 2): "idle",
    (5, 3): "scripted",
    (3, 13): "idle",
    (6, 6): "idle",
    (8, 5): "scripted",
    (4, 12): "scripted",
}


def load_study(today: dt.date, echo: Callable[[str], object] = print) -> int:
    """Study the missing days; returns how many person-days were added."""
    people = _studiers()
    by_code = _lessons()
    if not people or not by_code:
        return 0
    added = 0
    for index, user in enumerate(people):
        rng = random.Random(f"demo-study:{user.username}")  # noqa: S311 - demo data, the same on every machine
        diligence = 1.3 if index % 4 == 1 else 1.0 if index % 4 != 3 else 0.7
        codes = [c for c in by_code if not (user.username == "learner" and c in SCRIPTED_COURSES)]
        ip = f"10.36.{1 + index // 200}.{10 + index % 200}"  # each cadre's own office PC
        seen: set[int] = set()
        for day in _study_days(rng, diligence, today):
            back = (today.year - day.year) * 12 + today.month - day.month
            mishap = MISHAPS.get((index, back)) if back not in seen else None
            seen.add(back)
            if _studied(user, day):
                continue
            hour = rng.choice((1, 2, 6, 7))  # 09:00, 10:00, 14:00 or 15:00 in Beijing
            start = dt.datetime.combine(day, dt.time(hour, rng.randrange(0, 50)), tzinfo=dt.UTC)
            _study_day(user, day, start, rng, codes, by_code, ip, mishap)
            added += 1
    echo(f"anti-idle: {added} demo person-day(s) of study over {MONTHS} months ({len(people)} cadres)")
    return added


def _study_day(
    user: User,
    day: dt.date,
    start: dt.datetime,
    rng: random.Random,
    codes: list[str],
    by_code: dict[str, list[Lesson]],
    ip: str,
    mishap: str | None,
) -> None:
    with _frozen(start) as clock:
        at = start
        # A course not yet completed (in the demo's order), taken whole: videos, reading, quiz.
        course_done = False
        for code in codes:
            lessons = by_code[code]
            if all(_completed(user, lesson) for lesson in lessons) or not _may_study(user, lessons[0].course_id, at):
                continue
            if rng.random() < 0.45:
                at = _take_course(clock, user, lessons, at, ip)
                course_done = True
            break
        # And the reading of the day.
        documents = [
            lesson
            for code in codes
            for lesson in by_code[code]
            if lesson.kind == LessonKind.DOCUMENT and _may_study(user, lesson.course_id, at)
        ]
        if mishap == "scripted":
            # An automation tool (navigator.webdriver) plays the start of a lecture already seen
            # (within the lesson cap), then "reads" with scripted input: R11 + R08b, the day is held.
            videos = [
                lesson
                for code in codes
                for lesson in by_code[code]
                if lesson.kind == LessonKind.VIDEO and lesson.media is not None and _completed(user, lesson)
            ]
            if videos:
                at += dt.timedelta(minutes=1)
                _Sitting.open(clock, user, videos[0], at, ip).watch(until_s=10, scripted=True)
        if documents and (mishap in ("idle", "scripted") or not course_done or rng.random() < 0.5):
            doc = rng.choice(documents)
            sitting = _Sitting.open(clock, user, doc, at + dt.timedelta(minutes=1), ip)
            minutes = rng.randrange(3, 10)
            if mishap == "idle":
                sitting.read(25, idle_from=3)  # left open through a meeting
            else:
                sitting.read(minutes, scripted=mishap == "scripted")
        commit()  # the day's work, and its events dispatched (the credit of a completed course)


def _take_course(clock: _Clock, user: User, lessons: list[Lesson], at: dt.datetime, ip: str) -> dt.datetime:
    for lesson in lessons:
        at += dt.timedelta(minutes=1)
        if lesson.kind == LessonKind.VIDEO and lesson.media is not None:
            _Sitting.open(clock, user, lesson, at, ip).watch()
            at += dt.timedelta(seconds=(lesson.media.duration_ms or 0) // 1000 + 30)
        elif lesson.kind == LessonKind.DOCUMENT and lesson.media is not None:
            _Sitting.open(clock, user, lesson, at, ip).read(2)
            at += dt.timedelta(minutes=3)
        elif lesson.kind == LessonKind.QUIZ:
            clock.at(at)
            _take_quiz(user, lesson)
    return at
