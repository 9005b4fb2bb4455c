"""Scripted beat sequences under frozen time, through the real heartbeat path.

A scenario opens sessions (tabs, devices), serves media bytes to a session's signed
URL as the media view would, sends beats at chosen server times, and answers
attention checks. Afterwards it reads what the core credited (the ledger), the
online day verdict, and checks that a recompute from the raw beats agrees.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import time_machine
from flask import current_app, g
from flask_babel import force_locale
from sqlalchemy import func, select

from lms_core.accounts.models import User
from lms_core.courses import services as courses
from lms_core.courses.models import Lesson, LessonKind
from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.jobs.models import Job, JobStatus
from lms_core.jobs.services import claim_next, run_job
from lms_core.learning import services as learning
from lms_core.learning.models import LearningInterval, LearningSession
from lms_core.media.models import MediaKind
from lms_core.media.services import record_delivery
from plugins.anti_idle import els, rejudge
from plugins.anti_idle import envelope as beat_envelope
from plugins.anti_idle.evidence import render
from plugins.anti_idle.inputs import day_bounds
from plugins.anti_idle.models import CHECK_PASSED, AttentionCheck, DayVerdict, Evidence
from plugins.anti_idle.verdicts import assess_day, replay_day, settle
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import media_row

#: 2026-05-10 09:00 Beijing.
T0 = dt.datetime(2026, 5, 10, 1, 0, tzinfo=dt.UTC)
S = dt.timedelta(seconds=1)
#: The test lecture: one hour, 3.6 MB (1 kB per second of video).
LECTURE_MS = 3_600_000
LECTURE_BYTES = 3_600_000


@dataclass
class Tab:
    session: LearningSession
    seq: int = 0
    position: float = 0.0


@dataclass
class Learner:
    user: User
    lecture: Lesson
    short: Lesson
    document: Lesson
    tabs: list[Tab] = field(default_factory=list)

    # --- actions -------------------------------------------------------------------
    def open(
        self,
        lesson: Lesson | None = None,
        at: dt.datetime = T0,
        *,
        deliver: int | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> Tab:
        lesson = lesson or self.lecture
        with time_machine.travel(at, tick=False):
            enrolment = learning.enrolment_for(self.user, lesson.course_id)
            session = learning.start_session(self.user, lesson, enrolment, ip=ip, user_agent=user_agent)
            db.session.commit()
            if deliver and lesson.media_id:
                record_delivery(session.id, self.user.id, lesson.media_id, deliver)
        tab = Tab(session)
        self.tabs.append(tab)
        return tab

    def deliver(self, tab: Tab, nbytes: int, at: dt.datetime) -> None:
        with time_machine.travel(at, tick=False):
            record_delivery(tab.session.id, self.user.id, tab.session.lesson.media_id, nbytes)

    def beat(
        self,
        tab: Tab,
        at: dt.datetime,
        segments: list[list[float]] | None = None,
        *,
        event: str = "heartbeat",
        seq: int | None = None,
        envelope: str = "signed",
        **extra: Any,
    ) -> learning.BeatResult:
        """One beat as the player sends it: ``envelope`` "signed" (by the page's key, as
        the player does), "unsigned" (plain HTTP) or "forged" (a wrong signature)."""
        tab.seq = seq if seq is not None else tab.seq + 1
        body: dict[str, Any] = {
            "seq": tab.seq,
            "event": event,
            "segments": segments or [],
            "client": {"visibility": "visible", "rate": 1, "muted": False},
        }
        if segments:
            tab.position = segments[-1][1]
        body["position"] = extra.pop("position", tab.position)
        client = extra.pop("client", None)
        if client:
            body["client"] = {**body["client"], **client}
        body.update(extra)
        self.run_jobs(at)
        with time_machine.travel(at, tick=False):
            if envelope == "signed":
                with beat_envelope.signed(tab.session.id, body) as verdict:
                    assert verdict == "valid"
                    result = learning.record_beat(tab.session.id, self.user, body)
            else:
                raw = json.dumps(body).encode()
                if envelope == "forged":  # signed, then altered on the way
                    raw = beat_envelope.sign(tab.session.id, raw).replace(b'"seq": ', b'"seq":  ', 1)
                g.anti_idle_envelope = beat_envelope.verify(tab.session.id, raw)
                result = learning.record_beat(tab.session.id, self.user, body)
            db.session.commit()
        return result

    def play(
        self,
        tab: Tab,
        start: dt.datetime,
        seconds: int,
        *,
        from_pos: float | None = None,
        every: int = 10,
        rate: float = 1.0,
        client: dict[str, Any] | None = None,
        event_first: str = "heartbeat",
    ) -> dt.datetime:
        """Play ``seconds`` of wall time at ``rate`` from ``from_pos``, a beat every ``every`` s."""
        pos = tab.position if from_pos is None else from_pos
        at = start
        done = 0
        first = True
        while done < seconds:
            step = min(every, seconds - done)
            at = at + step * S
            end = min(pos + step * rate, LECTURE_MS / 1000)
            self.beat(
                tab,
                at,
                [[pos, end]],
                event=event_first if first else "heartbeat",
                client={"rate": rate, **(client or {})},
            )
            pos, done, first = end, done + step, False
        return at

    def issue_check(self, tab: Tab, at: dt.datetime, window: int = 60) -> AttentionCheck:
        check = AttentionCheck(
            token=secrets.token_urlsafe(24),
            session_id=tab.session.id,
            user_id=self.user.id,
            lesson_id=tab.session.lesson_id,
            issued_at=at,
            window_seconds=window,
            due_at=at + window * S,
            expected="7",
        )
        db.session.add(check)
        db.session.flush()
        rejudge.schedule(self.user.id, els.beijing_day(at), check.due_at, check.id)  # as checks._create does
        db.session.commit()
        return check

    def run_jobs(self, until: dt.datetime) -> int:
        """Run the queued day re-judgements due by ``until``, each at its own time, as
        ``flask lms worker`` beside the server would (the inline runner leaves them)."""
        ran = 0
        while True:
            due = db.session.execute(
                select(Job.run_after)
                .where(Job.kind == rejudge.JOB, Job.status == JobStatus.QUEUED, Job.run_after <= until)
                .order_by(Job.run_after, Job.id)
                .limit(1)
            ).scalar_one_or_none()
            if due is None:
                return ran
            with time_machine.travel(due, tick=False):
                job = claim_next("scenario", kinds=[rejudge.JOB])
                assert job is not None
                assert run_job(job)
            ran += 1

    def answer(
        self,
        check: AttentionCheck,
        at: dt.datetime,
        *,
        trusted: bool = True,
        latency_ms: int = 2500,
        correct: bool = True,
    ) -> None:
        check.answered_at = at
        check.answer = "7" if correct else "3"
        check.trusted = trusted
        check.latency_ms = latency_ms
        check.input_mode = "pointer"
        human = trusted and latency_ms >= 400
        check.outcome = CHECK_PASSED if correct and human else ("automated" if not human else "wrong")
        db.session.commit()

    # --- what counted ----------------------------------------------------------------
    def credited_s(self) -> float:
        total = (
            db.session.query(func.coalesce(func.sum(LearningInterval.credited_ms), 0))
            .filter(LearningInterval.user_id == self.user.id)
            .scalar()
        )
        return int(total) / 1000

    def verdict(self, day: dt.date | None = None) -> DayVerdict:
        day = day or dt.date(2026, 5, 10)
        # The online tally not yet folded into the day verdict row (verdicts.record_online
        # writes it only when it matters) is what the online assessment says: fold it.
        settle(self.user.id)
        db.session.commit()
        return db.session.query(DayVerdict).filter_by(user_id=self.user.id, day=day).one()

    def recompute(self, day: dt.date | None = None) -> DayVerdict:
        """Recompute the day; assert the replay agrees with every online decision."""
        day = day or dt.date(2026, 5, 10)
        # The next morning, 09:00 Beijing: the day is over, so its judgement is final.
        later = day_bounds(day)[1] + dt.timedelta(hours=9)
        self.run_jobs(later)  # the windows that ended since the last beat
        online = self.verdict(day)
        before = (online.verdict, online.credited_ms, online.held_ms, online.deducted_ms, online.void_ms)
        assert replay_day(self.user.id, day).mismatches == []
        with time_machine.travel(later, tick=False):
            v = assess_day(self.user.id, day)
            db.session.commit()
        assert v is not None
        assert (v.verdict, v.credited_ms, v.held_ms, v.deducted_ms, v.void_ms) == before
        return v


def make_learner(tree: Any, kit: Any, name: str = "张伟") -> Learner:
    """A learner enrolled in a course with a one-hour lecture, the kit's short video and a document."""
    media = media_row(MediaKind.VIDEO, LECTURE_MS, sha="f")
    media.size_bytes = LECTURE_BYTES
    section = kit.video.section
    lecture = courses.add_lesson(kit.author, section, title="专题讲座", kind=LessonKind.VIDEO, media=media)
    user = UserFactory(org_unit=tree.village_a, full_name=name)
    enrolments.enrol(user, kit.course)
    db.session.commit()
    return Learner(user, lecture, kit.video, kit.document)


def other_learner(tree: Any, learner: Learner, name: str = "李娜") -> Learner:
    user = UserFactory(org_unit=tree.village_a, full_name=name)
    enrolments.enrol(user, learner.lecture.course)
    db.session.commit()
    return Learner(user, learner.lecture, learner.short, learner.document)


def zh(line: Evidence) -> str:
    """An evidence line as a learner reads it (Chinese, in a request context)."""
    with current_app.test_request_context(), force_locale("zh_Hans_CN"):
        return render(line)
