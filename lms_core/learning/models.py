"""Learning sessions, the interval ledger, per-lesson progress and feedback.

``learning_intervals`` is the one canonical time ledger: every heartbeat that was
accepted becomes a row with what the client claimed, what the server credited
and why. Every figure shown to a learner, an auditor or the credit bank is
derived from it, so learner and manager can never see different totals.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, Date, ForeignKey, ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms_core.accounts.models import User
from lms_core.courses.models import Lesson
from lms_core.db import SQLITE_ONLY, Base, UTCDateTime, bigint_pk, json_type, str_enum, utcnow
from lms_core.enrolments.models import Enrolment
from lms_core.i18n import enum_labels


class LearningSession(Base):
    """One opening of a lesson in one browser tab, created by the server at launch."""

    __tablename__ = "learning_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random hex; also the media URL's key
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"))
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id", ondelete="CASCADE"))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_beat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seq: Mapped[int] = mapped_column(default=0)
    #: How far this session's time is used up: the next beat may credit time only
    #: after it. It moves to the receive time of a beat that claimed nothing, or to
    #: where a beat's credit ended, so beats queued offline and delivered together
    #: still find the time they were played in (NULL: ``last_beat_at``).
    budget_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    claimed_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    credited_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Credited time not yet reported in a ``study.interval_credited`` event.
    unreported_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))

    lesson: Mapped[Lesson] = relationship()
    user: Mapped[User] = relationship()
    #: Loaded with the session by the heartbeat (one statement for session, lesson, media, enrolment).
    enrolment: Mapped[Enrolment] = relationship()

    __table_args__ = (
        Index("ix_learning_sessions_user_id_started_at", "user_id", "started_at"),
        #: The log browser's study-session order, newest first.
        Index("ix_learning_sessions_started_at_id", "started_at", "id"),
        #: What the ledger's and the raw beats' foreign key refers to (a session, with its person
        #: and lesson): migration 0031ledgerfk.
        Index("uq_learning_sessions_id_user_id_lesson_id", "id", "user_id", "lesson_id", unique=True),
        #: Updated by every beat: room on each page for the next version (a HOT update), as
        #: migration 0030hotroom says.
        {"postgresql_with": {"fillfactor": 70}},
    )

    @property
    def org_unit(self) -> Any:
        return self.user.org_unit


class LearningInterval(Base):
    """One accepted heartbeat: the media ranges claimed and the part credited."""

    __tablename__ = "learning_intervals"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    #: The session, and its person and lesson: one foreign key to the session's row (see
    #: ``__table_args__``), which refers to the user and the lesson in turn.
    session_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int]
    lesson_id: Mapped[int]
    seq: Mapped[int]
    #: Server receive times bounding the interval (the authoritative clock).
    wall_start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    wall_end: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: Media ranges in milliseconds, ``[[start, end], ...]``, as claimed and as credited.
    claimed_segments: Mapped[list[list[int]]] = mapped_column(json_type(), default=list)
    credited_segments: Mapped[list[list[int]]] = mapped_column(json_type(), default=list)
    claimed_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    credited_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    #: ``credit`` | ``reduce`` | ``void``: the most restrictive verdict.
    verdict: Mapped[str] = mapped_column(String(16), default="credit")
    #: Every verdict with its source and reason: ``[{"by", "verdict", "credited_ms", "reason"}]``.
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(json_type(), default=list)
    client: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)  # raw client signals
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("session_id", "seq"),
        Index("ix_learning_intervals_user_id_wall_end", "user_id", "wall_end"),
        #: One check per row instead of three (session, user, lesson), and the interval's person
        #: and lesson are its session's (migration 0031ledgerfk says why). SQLite only: PostgreSQL
        #: checks the same rule once per statement with triggers (migration 0032sessionkey).
        ForeignKeyConstraint(
            ["session_id", "user_id", "lesson_id"],
            ["learning_sessions.id", "learning_sessions.user_id", "learning_sessions.lesson_id"],
            ondelete="CASCADE",
            info=SQLITE_ONLY,
        ).ddl_if(dialect="sqlite"),
    )


class RefusedBeat(Base):
    """A heartbeat that earned nothing and is kept as evidence: a repeat or replay of a
    ``seq`` already accepted, or a beat made longer ago than the late window.

    Append-only like the ledger (triggers refuse UPDATE and DELETE): a replayed beat is
    a fact about the session, not noise to drop. ``beat`` is the beat as parsed (seq,
    event, claimed ranges, client signals), ``made_at`` the time the player claims it
    was made (``at``), ``received_at`` the server's receive time.
    """

    __tablename__ = "learning_refused_beats"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("learning_sessions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"))
    seq: Mapped[int]
    #: ``repeat`` (the last accepted seq again: a network retry), ``replay`` (an older
    #: seq), ``late`` (made before the late window).
    reason: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    made_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    beat: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)

    __table_args__ = (Index("ix_learning_refused_beats_user_id_received_at", "user_id", "received_at"),)


class ProgressStatus(enum.StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


enum_labels(
    ProgressStatus,
    {
        ProgressStatus.NOT_STARTED: _l("Not started"),
        ProgressStatus.IN_PROGRESS: _l("In progress"),
        ProgressStatus.COMPLETED: _l("Completed"),
    },
)


class LessonProgress(Base):
    """Derived, per (user, lesson): resume position, credited coverage, status."""

    __tablename__ = "lesson_progress"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    position_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Union of credited media ranges (ms), merged and sorted.
    credited_segments: Mapped[list[list[int]]] = mapped_column(json_type(), default=list)
    #: Coverage of the media by credited viewing, in basis points (10000 = 100 %).
    coverage_bp: Mapped[int] = mapped_column(default=0)
    read_ms: Mapped[int] = mapped_column(BigInteger, default=0)  # documents: credited visible time
    status: Mapped[ProgressStatus] = mapped_column(str_enum(ProgressStatus, 16), default=ProgressStatus.NOT_STARTED)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "lesson_id"),
        Index("ix_lesson_progress_user_id_course_id", "user_id", "course_id"),
        Index("ix_lesson_progress_lesson_id", "lesson_id"),
        #: Updated by most beats: room for HOT updates (migration 0030hotroom).
        {"postgresql_with": {"fillfactor": 70}},
    )


class DailyTotal(Base):
    """Credited study per person and Beijing calendar day, kept in step with the ledger.

    Derived data (the sum of ``learning_intervals.credited_ms`` for that day), updated
    in the same transaction as each interval, so the year's hours on every dashboard
    cost at most 366 index rows instead of a scan of a year of heartbeats.
    """

    __tablename__ = "learning_daily_totals"
    #: Updated by every crediting beat: room for HOT updates (migration 0030hotroom).
    __table_args__ = {"postgresql_with": {"fillfactor": 80}}

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    credited_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class PersonClock(Base):
    """How far each person's credited study reaches on the server's clock.

    The wall-clock budget belongs to the person, not to a tab: every beat may only
    credit time after ``credited_until`` (and up to its own receive time), then
    moves it forward. So across all of one person's sessions, tabs, devices and
    lessons, credited time never exceeds the real time elapsed. The row is locked
    (``FOR NO KEY UPDATE`` on PostgreSQL: a beat changes no key, ``beat_rows``) by each
    beat, which serialises one person's beats only.
    """

    __tablename__ = "learning_person_clocks"
    #: Updated by every beat: room for HOT updates (migration 0030hotroom).
    __table_args__ = {"postgresql_with": {"fillfactor": 80}}

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    credited_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class LessonFeedback(Base):
    """训中学情快速评估: one learner's answer sheet for one survey lesson.

    One row per person and lesson (a second submission edits the first); the
    answers to each question are :class:`SurveyAnswer` rows. ``rating`` and
    ``comment`` are the fixed 1–5 rating and comment of the surveys before
    questions could be edited: migration 0019 copied them into answers, and
    they are no longer written.
    """

    __tablename__ = "lesson_feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"), index=True)
    #: The lesson being evaluated (a survey lesson evaluates the lesson before it, or the course).
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    rating: Mapped[int | None]
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Last time the learner changed their answer (one answer per person and lesson).
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    answers: Mapped[list[SurveyAnswer]] = relationship(cascade="all, delete-orphan", back_populates="response")

    __table_args__ = (UniqueConstraint("user_id", "lesson_id"),)


class SurveyQuestionKind(enum.StrEnum):
    RATING = "rating"  # a score on a scale of 2–10 points, optionally with a label per point
    SINGLE = "single"
    MULTIPLE = "multiple"
    TEXT = "text"  # an open answer


enum_labels(
    SurveyQuestionKind,
    {
        SurveyQuestionKind.RATING: _l("Rating"),
        SurveyQuestionKind.SINGLE: _l("Single choice"),
        SurveyQuestionKind.MULTIPLE: _l("Multiple choice"),
        SurveyQuestionKind.TEXT: _l("Open answer"),
    },
)


class SurveyQuestion(Base):
    """A question of a survey lesson, edited by the course's authors.

    A question somebody answered is archived, not deleted: it leaves the form,
    and its answers stay in the report.
    """

    __tablename__ = "survey_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"), index=True)
    kind: Mapped[SurveyQuestionKind] = mapped_column(str_enum(SurveyQuestionKind, 16))
    text: Mapped[str] = mapped_column(Text)
    #: Choice questions: the options. Rating questions: one label per point, lowest first (may be empty).
    options: Mapped[list[str]] = mapped_column(json_type(), default=list)
    #: Rating questions: the scale's points, 1 to ``scale``.
    scale: Mapped[int] = mapped_column(default=5)
    required: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=0)
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class SurveyAnswer(Base):
    """One person's answer to one question: a score, chosen option indexes or a text."""

    __tablename__ = "survey_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("lesson_feedback.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("survey_questions.id", ondelete="CASCADE"), index=True)
    score: Mapped[int | None]
    choices: Mapped[list[int]] = mapped_column(json_type(), default=list)
    text: Mapped[str] = mapped_column(Text, default="")

    response: Mapped[LessonFeedback] = relationship(back_populates="answers")

    __table_args__ = (UniqueConstraint("response_id", "question_id"),)
