"""Course → sections → lessons."""

from __future__ import annotations

import datetime as dt
import enum
import re
import unicodedata
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms_core.accounts.models import User
from lms_core.db import Base, UTCDateTime, str_enum, utcnow
from lms_core.i18n import enum_labels
from lms_core.media.models import MediaFile
from lms_core.orgs.models import OrgUnit


class LessonKind(enum.StrEnum):
    VIDEO = "video"
    DOCUMENT = "document"  # PDF shown inline
    QUIZ = "quiz"
    SURVEY = "survey"  # 训中学情快速评估: a 1–5 rating and a comment


enum_labels(
    LessonKind,
    {
        LessonKind.VIDEO: _l("Video"),
        LessonKind.DOCUMENT: _l("Document"),
        LessonKind.QUIZ: _l("Quiz"),
        LessonKind.SURVEY: _l("Survey"),
    },
)


class Topic(Base):
    """专题: the catalogue's subject grouping."""

    __tablename__ = "course_topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class Course(Base):
    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("course_topics.id", ondelete="SET NULL"))
    #: Nominal 学时 in hundredths (integer units, never floats): 150 = 1.5 学时.
    nominal_hours_centi: Mapped[int] = mapped_column(default=100)
    #: Catalogue classification: 必修 (required) or 选修 (elective). Assigned training
    #: (调训) makes a course required for its learners whatever this says.
    required: Mapped[bool] = mapped_column(default=False)
    published: Mapped[bool] = mapped_column(default=False)
    #: The unit that owns the course; instructors and admins are scoped by it.
    owner_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    #: Code, title and description folded by :func:`search_fold`, kept in step on every
    #: flush (see ``_fill_search_text``). The catalogue matches the folded query with a
    #: plain LIKE on this one column: a seventh of the database time of ILIKE over three
    #: columns (which lower-cases every row on every search), and full-width letters and
    #: digits typed on a Chinese keyboard match their ASCII forms.
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")

    topic: Mapped[Topic | None] = relationship(lazy="joined")
    owner_unit: Mapped[OrgUnit] = relationship()
    sections: Mapped[list[Section]] = relationship(
        back_populates="course", order_by="Section.position", cascade="all, delete-orphan"
    )
    #: Loaded on access; pages that only show names use ``services.instructor_names_column`` (in their query).
    instructors: Mapped[list[User]] = relationship(secondary="course_instructors")

    __table_args__ = (Index("ix_courses_published_title", "published", "title"),)

    @property
    def nominal_hours(self) -> float:
        return self.nominal_hours_centi / 100


def search_fold(text: str) -> str:
    """The form both stored search text and queries are compared in: NFKC (full-width
    ``ＡＢＣ１２３`` → ``ABC123``, compatibility ideographs → unified) then case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


#: Runs of Chinese characters (CJK unified ideographs, extension A, compatibility).
_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def pinyin_lines(text: str) -> str:
    """The pinyin of ``text``'s Chinese runs, in full and as initials, one line each.

    Chinese users search by pinyin (``fazhi``) and by initials (``fzzf``) as often as by
    characters: both are folded into the search column so the catalogue's LIKE finds
    them without a second query. pypinyin's phrase dictionary picks the reading of
    polyphones from context (重庆 → chongqing). Imported on first use: its
    dictionaries take a second to load, and only writes need them.
    """
    runs = _HAN_RUN.findall(text)
    if not runs:
        return ""
    from pypinyin import Style, lazy_pinyin

    full = " ".join("".join(lazy_pinyin(run)) for run in runs)
    initials = " ".join("".join(lazy_pinyin(run, style=Style.FIRST_LETTER)) for run in runs)
    return f"{full}\n{initials}"


def course_search_text(code: str | None, title: str | None, description: str | None) -> str:
    # One field per line, so that a query cannot match across the end of one field and the start of the
    # next. The title's pinyin follows (not the description's: its initials would match almost any short query).
    fields = "\n".join((code or "", title or "", description or ""))
    pinyin = pinyin_lines(unicodedata.normalize("NFKC", title or ""))
    return search_fold(f"{fields}\n{pinyin}" if pinyin else fields)


@event.listens_for(Course, "before_insert")
@event.listens_for(Course, "before_update")
def _fill_search_text(mapper: Any, connection: Any, course: Course) -> None:
    course.search_text = course_search_text(course.code, course.title, course.description)


class CourseInstructor(Base):
    __tablename__ = "course_instructors"

    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index("ix_course_instructors_user_id", "user_id"),)


class Section(Base):
    __tablename__ = "course_sections"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(default=0)

    course: Mapped[Course] = relationship(back_populates="sections")
    lessons: Mapped[list[Lesson]] = relationship(
        back_populates="section", order_by="Lesson.position", cascade="all, delete-orphan"
    )


class Lesson(Base):
    __tablename__ = "lessons"

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(ForeignKey("course_sections.id", ondelete="CASCADE"))
    #: Denormalised from the section: progress and reports group by course constantly.
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[LessonKind] = mapped_column(str_enum(LessonKind, 16))
    position: Mapped[int] = mapped_column(default=0)
    #: Counts towards course completion (optional lessons do not).
    required: Mapped[bool] = mapped_column(default=True)
    media_id: Mapped[int | None] = mapped_column(ForeignKey("media_files.id", ondelete="RESTRICT"))
    #: Video: share of the media that credited viewing must cover, in percent.
    completion_threshold_pct: Mapped[int] = mapped_column(default=95)
    #: Document: minimum time the document must be open and visible, in seconds.
    min_read_seconds: Mapped[int] = mapped_column(default=60)
    #: Quiz: passing score in percent, attempts allowed (0 = unlimited), question order shuffled.
    passing_score_pct: Mapped[int] = mapped_column(default=60)
    max_attempts: Mapped[int] = mapped_column(default=3)
    shuffle_questions: Mapped[bool] = mapped_column(default=True)
    #: Quiz: after an attempt, show the right answers too (the wrong ones are always marked).
    show_correct_answers: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Deleted by the author while learners had records on it: out of the outline and of
    #: completion, kept for those records (see ``courses.structure``).
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    section: Mapped[Section] = relationship(back_populates="lessons")
    course: Mapped[Course] = relationship()
    media: Mapped[MediaFile | None] = relationship()  # loaded by the player only

    __table_args__ = (
        Index("ix_lessons_course_id", "course_id"),
        Index("ix_lessons_section_id", "section_id"),
        UniqueConstraint("section_id", "position"),
    )
