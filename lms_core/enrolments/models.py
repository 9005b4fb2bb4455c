"""Enrolments and training assignments."""

from __future__ import annotations

import datetime as dt
import enum

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms_core.accounts.models import RankBand, User
from lms_core.courses.models import Course
from lms_core.db import Base, UTCDateTime, str_enum, utcnow
from lms_core.i18n import enum_labels
from lms_core.orgs.models import OrgUnit


class EnrolmentSource(enum.StrEnum):
    SELF = "self"
    ASSIGNED = "assigned"


enum_labels(
    EnrolmentSource, {EnrolmentSource.SELF: _l("Self-enrolled"), EnrolmentSource.ASSIGNED: _l("Assigned (调训)")}
)


class Assignment(Base):
    """调训: a course assigned to an org subtree, optionally one rank band, with a deadline."""

    __tablename__ = "course_assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"), index=True)
    rank_band: Mapped[RankBand | None] = mapped_column(str_enum(RankBand, 32))
    deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    course: Mapped[Course] = relationship()
    org_unit: Mapped[OrgUnit] = relationship()


class Enrolment(Base):
    __tablename__ = "enrolments"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    #: UUID; the xAPI registration of every statement about this enrolment.
    registration: Mapped[str] = mapped_column(String(36), unique=True)
    source: Mapped[EnrolmentSource] = mapped_column(str_enum(EnrolmentSource, 16), default=EnrolmentSource.SELF)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("course_assignments.id", ondelete="SET NULL"))
    deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    enrolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: When the learner dismissed the dashboard notice of this 调训 task; cleared when an
    #: assignment (re)applies to the enrolment, so a new task shows until read.
    notice_read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()
    course: Mapped[Course] = relationship()

    __table_args__ = (
        UniqueConstraint("user_id", "course_id"),
        Index("ix_enrolments_course_id", "course_id"),
    )

    @property
    def org_unit(self) -> OrgUnit:
        """Authorisation scope: the learner's unit."""
        return self.user.org_unit
