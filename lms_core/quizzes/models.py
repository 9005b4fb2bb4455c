"""Questions and attempts."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from lms_core.db import Base, UTCDateTime, json_type, str_enum, utcnow
from lms_core.i18n import enum_labels


class QuestionKind(enum.StrEnum):
    SINGLE = "single"
    MULTIPLE = "multiple"
    TRUE_FALSE = "true_false"


enum_labels(
    QuestionKind,
    {
        QuestionKind.SINGLE: _l("Single choice"),
        QuestionKind.MULTIPLE: _l("Multiple choice"),
        QuestionKind.TRUE_FALSE: _l("True / false"),
    },
)


class Question(Base):
    __tablename__ = "quiz_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"), index=True)
    kind: Mapped[QuestionKind] = mapped_column(str_enum(QuestionKind, 16))
    text: Mapped[str] = mapped_column(Text)
    #: Option texts in author order; true/false questions use ["正确", "错误"].
    options: Mapped[list[str]] = mapped_column(json_type(), default=list)
    #: Indexes into ``options`` of the correct answers (never sent to the browser).
    correct: Mapped[list[int]] = mapped_column(json_type(), default=list)
    points: Mapped[int] = mapped_column(default=1)
    position: Mapped[int] = mapped_column(default=0)
    #: Removed by the author after learners answered it: out of new attempts, kept for the old ones.
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Attempt(Base):
    __tablename__ = "quiz_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"))
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id", ondelete="CASCADE"))
    #: Question ids in the order shown to this attempt (randomised per attempt).
    question_order: Mapped[list[int]] = mapped_column(json_type(), default=list)
    answers: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    score_raw: Mapped[int | None]
    score_max: Mapped[int | None]
    passed: Mapped[bool | None]
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_quiz_attempts_user_id_lesson_id", "user_id", "lesson_id"),)
