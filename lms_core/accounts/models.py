"""Users, scoped role assignments, API tokens and the login-attempt log."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Protocol

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms_core.db import Base, UTCDateTime, json_type, str_enum, utcnow
from lms_core.i18n import enum_labels
from lms_core.orgs.models import OrgUnit


class RankBand(enum.StrEnum):
    """职级档次; yearly study requirements differ by band."""

    COUNTY_AND_ABOVE = "county_and_above"  # 县处级及以上
    TOWNSHIP = "township"  # 乡科级
    GENERAL = "general"  # 一般干部


class UserStatus(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"  # left the service or suspended by an admin


class Role(enum.StrEnum):
    """Roles are granted on an org subtree (``RoleAssignment.org_unit``)."""

    LEARNER = "learner"
    INSTRUCTOR = "instructor"
    AUDITOR = "auditor"  # read-only over the subtree's learning records
    ORG_ADMIN = "org_admin"
    SITE_ADMIN = "site_admin"


enum_labels(
    RankBand,
    {
        RankBand.COUNTY_AND_ABOVE: _l("County-level and above"),
        RankBand.TOWNSHIP: _l("Township-level"),
        RankBand.GENERAL: _l("General cadre"),
    },
)
enum_labels(UserStatus, {UserStatus.ACTIVE: _l("Active"), UserStatus.DISABLED: _l("Disabled")})
enum_labels(
    Role,
    {
        Role.LEARNER: _l("Learner"),
        Role.INSTRUCTOR: _l("Instructor"),
        Role.AUDITOR: _l("Auditor"),
        Role.ORG_ADMIN: _l("Org admin"),
        Role.SITE_ADMIN: _l("Site admin"),
    },
)


class _SignInKey(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def session_version(self) -> int: ...


class SignedIn:
    """Flask-Login's user protocol, shared by :class:`User` and the heartbeat path's
    :class:`~lms_core.accounts.principal.Principal` (each says itself whether it ``is_active``).

    Not ``flask_login.UserMixin``: its ``is_authenticated`` follows ``is_active`` and its
    ``__eq__`` compares ``get_id()``, which would change how mapped users compare.
    """

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self: _SignInKey) -> str:
        """The session's identity: a password change bumps ``session_version`` and ends every other sign-in."""
        return f"{self.id}:{self.session_version}"


class User(SignedIn, Base):
    """A person: a cadre, instructor, auditor or administrator."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    #: One field for the whole name, as Chinese names are written (no first/last split).
    full_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    rank_band: Mapped[RankBand] = mapped_column(str_enum(RankBand, 32), default=RankBand.GENERAL)
    party_member: Mapped[bool] = mapped_column(default=False)
    status: Mapped[UserStatus] = mapped_column(str_enum(UserStatus, 16), default=UserStatus.ACTIVE)
    position: Mapped[str | None] = mapped_column(String(100))  # 职务
    phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str | None] = mapped_column(String(16))
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Bumped on password change or reset; part of the session identity, so every
    #: other session of the user ends at once.
    session_version: Mapped[int] = mapped_column(default=1)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: The sign-in before ``last_login_at``: what "上次登录" shows, since the latest
    #: sign-in is always the one the user is looking at the page with.
    previous_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    org_unit: Mapped[OrgUnit] = relationship(lazy="joined")
    roles: Mapped[list[RoleAssignment]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (Index("ix_users_org_unit_id", "org_unit_id"),)

    @property
    def is_active(self) -> bool:
        return self.status == UserStatus.ACTIVE


class RoleAssignment(Base):
    """``user`` holds ``role`` over the subtree rooted at ``org_unit``."""

    __tablename__ = "role_assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(str_enum(Role, 16))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user: Mapped[User] = relationship(back_populates="roles")
    org_unit: Mapped[OrgUnit] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("user_id", "role", "org_unit_id"),
        Index("ix_role_assignments_org_unit_id", "org_unit_id"),
    )


class TokenScope(enum.StrEnum):
    """What a token may do; chosen when it is created."""

    READ = "read"  # GET and HEAD only: a report or sync client that must never change data
    READ_WRITE = "read_write"  # every right of its user, writes included


enum_labels(TokenScope, {TokenScope.READ: _l("Read only"), TokenScope.READ_WRITE: _l("Read and write")})


class ApiToken(Base):
    """A bearer token for a machine client; only its SHA-256 is stored.

    Revoked with every password change or reset of its user: a token minted by
    whoever held the old password must not outlive it.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    #: First characters of the token, shown in the UI to tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    scope: Mapped[TokenScope] = mapped_column(str_enum(TokenScope, 16), default=TokenScope.READ)

    user: Mapped[User] = relationship()


class LoginAttempt(Base):
    """Every login attempt; the throttles count recent failures from here.

    Kept in the database rather than in process memory so that several app nodes
    behind one proxy share the count. ``username`` is what was typed, whether or
    not such an account exists, so the delays treat unknown names exactly like
    real ones (see lms_core.accounts.throttle).
    """

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    success: Mapped[bool]
    #: The answer given (``LoginOutcome``); only checked wrong passwords
    #: (``bad_credentials``) lengthen the delays, so refused attempts cannot.
    outcome: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_login_attempts_ip_created_at", "ip", "created_at"),
        Index("ix_login_attempts_username_created_at", "username", "created_at"),
    )


class ImportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # every line applied
    FAILED = "failed"  # nothing applied: see the report


enum_labels(
    ImportStatus,
    {
        ImportStatus.QUEUED: _l("Queued"),
        ImportStatus.RUNNING: _l("Running"),
        ImportStatus.DONE: _l("Done"),
        ImportStatus.FAILED: _l("Failed"),
    },
)


class ImportRun(Base):
    """An HR import too large for the upload request, run by a worker (all or nothing).

    The file is kept only until the run ends: it holds personal data, and the report
    (counts and per-line errors) is what stays.
    """

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[ImportStatus] = mapped_column(str_enum(ImportStatus), default=ImportStatus.QUEUED)
    filename: Mapped[str] = mapped_column(String(255), default="")
    lines: Mapped[int] = mapped_column(default=0)  # data lines in the file, for the progress page
    data: Mapped[bytes] = mapped_column(LargeBinary)
    #: Hash of the initial password for new accounts (the plain text is never stored).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    report: Mapped[dict[str, Any] | None] = mapped_column(json_type())

    #: Also give generated passwords to listed accounts that never signed in (see importer).
    reissue_passwords: Mapped[bool] = mapped_column(default=False)

    created_by: Mapped[User] = relationship()


class CredentialSheet(Base):
    """One-time initial passwords waiting for the admin who created the accounts.

    Generated passwords must reach someone, once: the sheet holds them encrypted
    (Fernet, key derived from the app's secret key) until its creator downloads it,
    then the ciphertext is wiped. An undownloaded sheet expires; the admin then
    re-imports with "issue new passwords" ticked.
    """

    __tablename__ = "credential_sheets"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    import_run_id: Mapped[int | None] = mapped_column(ForeignKey("import_runs.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    downloaded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: How many accounts the sheet lists (kept after the passwords are wiped).
    accounts: Mapped[int] = mapped_column(default=0)
    data: Mapped[bytes] = mapped_column(LargeBinary)

    created_by: Mapped[User] = relationship()
