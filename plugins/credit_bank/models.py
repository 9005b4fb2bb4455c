"""The credit bank's tables: ledgers, accounts, the append-only journal, policies, claims.

Amounts are integers in hundredths of a 学时 ("centi"): 2.00 学时 is ``200``. Never floats.

The ledger follows TigerBeetle's model:

* one **ledger** per credit type; a transfer never crosses ledgers;
* an **account** belongs to one ledger and has a kind (a cadre's counted or overflow account
  for one year, an issuer's source account, the expiry sink) and four cached sums
  (``debits_posted``, ``credits_posted``, ``debits_pending``, ``credits_pending``);
* the **journal** (``credit_transfers``) is append-only: the migration installs triggers that
  refuse UPDATE and DELETE on SQLite and PostgreSQL. The account sums are a cache of the
  journal; ``flask lms credit replay`` recomputes them from it.

A cadre's balance on a credit-normal account is ``credits_posted - debits_posted``.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from lms_core.db import Base, UTCDateTime, bigint_pk, json_type, str_enum, utcnow


class AccountKind(enum.StrEnum):
    """What an account stands for (its owner and period depend on the kind)."""

    COUNTED = "counted"  #: cadre × ledger × year; counts toward requirements; never negative
    OVERFLOW = "overflow"  #: cadre × ledger × year; earned but not counted because of a cap
    ISSUER = "issuer"  #: issuer × ledger; the source every credit comes from (goes negative)
    EXPIRED = "expired"  #: ledger-wide sink for credit lapsed at year-end close


#: Account flag: debits (posted + pending) may never exceed posted credits (TigerBeetle's
#: ``debits_must_not_exceed_credits``). Set on counted accounts.
FLAG_NON_NEGATIVE = 1
#: Account flag: the period was closed at year-end; no new transfer may touch it.
FLAG_CLOSED = 2

#: Transfer flags (TigerBeetle's names).
T_PENDING = 1  #: a two-phase hold: moves the amount into the *_pending sums
T_POST_PENDING = 2  #: posts a pending transfer (``pending_id``), amount ≤ the pending amount
T_VOID_PENDING = 4  #: voids a pending transfer (``pending_id``)
T_LINKED = 8  #: member of a linked group (``group_id``): all commit or none


class TransferCode(enum.StrEnum):
    """Why a transfer was made (shown to the cadre through the catalogue)."""

    COURSE_COMPLETE = "course_complete"
    STUDY_TIME = "study_time"
    OFFLINE_CLASS = "offline_class"
    IMPORT = "import"
    FIXED = "fixed"
    CAP_OVERFLOW = "cap_overflow"
    CARRY_FORWARD = "carry_forward"
    EXPIRY = "expiry"
    REVERSAL = "reversal"
    ADJUSTMENT = "adjustment"
    CONVERSION_OUT = "conversion_out"
    CONVERSION_IN = "conversion_in"


#: The ledgers (credit types): id, code, English msgid. Ids are stable (they are in the journal).
LEDGERS: tuple[tuple[int, str, str], ...] = (
    (1, "WL_XS", "Online training hours"),  # 网络培训学时
    (2, "JZ_XS", "Classroom training hours"),  # 集中培训学时
    (3, "DY_XS", "Party member study hours"),  # 党员学习学时
    (4, "ZJ_XS", "Professional continuing education hours"),  # 专技继续教育学时
    (5, "XF", "Credit bank credits"),  # 学分银行学分: 学时 become 学分 by the policy's conversions
)

#: Ledgers counted in 学分 rather than 学时 (amounts in 0.01 学分). They never add up with the
#: 学时 ledgers: the dashboard's yearly 学时, offline claims and rosters are 学时 only.
CREDIT_UNIT_LEDGERS = frozenset({"XF"})
#: The 学时 ledgers, in display order.
HOUR_LEDGERS = tuple(c for _, c, _n in LEDGERS if c not in CREDIT_UNIT_LEDGERS)
#: Ids of the 学分 ledgers: SQL sums of 学时 (reports, who is behind) leave them out.
CREDIT_UNIT_LEDGER_IDS = tuple(i for i, c, _n in LEDGERS if c in CREDIT_UNIT_LEDGERS)


class Ledger(Base):
    """One credit type (网络培训学时, 集中培训学时, ...). Reference data seeded by the migration."""

    __tablename__ = "credit_ledgers"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    #: English msgid; the page shows its catalogue translation.
    name: Mapped[str] = mapped_column(String(100))
    scale: Mapped[int] = mapped_column(SmallInteger, default=2)


class Account(Base):
    """An account with its cached sums (a cache of the journal, checked by replay)."""

    __tablename__ = "credit_accounts"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    ledger_id: Mapped[int] = mapped_column(ForeignKey("credit_ledgers.id", ondelete="RESTRICT"))
    kind: Mapped[AccountKind] = mapped_column(str_enum(AccountKind, 16))
    #: users.id for cadre accounts, an issuer number for issuer accounts, 0 for the sink.
    owner_id: Mapped[int] = mapped_column(BigInteger)
    #: Calendar year (Asia/Shanghai) for cadre accounts; 0 for system accounts.
    period: Mapped[int] = mapped_column(Integer)
    flags: Mapped[int] = mapped_column(Integer, default=0)
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_credit_accounts_key", "ledger_id", "kind", "owner_id", "period", unique=True),
        Index("ix_credit_accounts_owner", "owner_id", "period"),
        CheckConstraint(
            "debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0",
            name="sums_non_negative",
        ),
        # The database's last line of defence for counted accounts (the service checks first,
        # under a row lock, so that a refusal is a clean result rather than an error).
        CheckConstraint(
            "(flags & 1) = 0 OR debits_posted + debits_pending <= credits_posted", name="non_negative_balance"
        ),
    )

    @property
    def balance(self) -> int:
        """Posted balance of a credit-normal account (centi-学时)."""
        return self.credits_posted - self.debits_posted


class Transfer(Base):
    """One journal line. Append-only: the database refuses UPDATE and DELETE.

    Fields (the canonical form is :func:`plugins.credit_bank.ledger.transfer_as_dict`):

    * ``seq``: the journal position, assigned by the database in commit order of inserts;
      replay folds the journal in ``seq`` order.
    * ``id``: the caller's idempotency key, a UUID (uuid5 of the business key: the event id,
      the claim id, the roster row). Unique.
    * ``ledger_id``, ``debit_account_id``, ``credit_account_id``, ``amount`` (> 0, centi-学时).
    * ``flags``: ``T_PENDING``/``T_POST_PENDING``/``T_VOID_PENDING``/``T_LINKED``.
    * ``pending_id``: for post/void, the id of the pending transfer it resolves.
    * ``timeout_at``: for a pending transfer, when it lapses (NULL = never).
    * ``group_id``: linked group; every member of a group committed together.
    * ``reverses_id``: for a reversal, the id of the transfer it corrects.
    * ``code``: :class:`TransferCode`; ``effective_date`` (Asia/Shanghai date deciding the year);
      ``policy_version`` used to compute the amount; ``user_id`` the cadre concerned (for
      statements), ``actor_id`` who caused it, ``evidence_ref`` (``event:123``, ``claim:7``, ...),
      ``memo`` (the reason, shown to the cadre); ``recorded_at`` (server clock, UTC).
    * ``body_hash``: SHA-256 of the caller-supplied body, to tell a retry from a different
      request with the same id.
    """

    __tablename__ = "credit_transfers"

    seq: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    # No foreign keys (they cost ~25 us of PostgreSQL CPU per row): the same-ledger trigger
    # refuses a row whose accounts do not exist on its ledger, and a trigger on
    # credit_accounts refuses deleting an account or changing its identity (0007).
    ledger_id: Mapped[int] = mapped_column(SmallInteger)
    debit_account_id: Mapped[int] = mapped_column(bigint_pk())
    credit_account_id: Mapped[int] = mapped_column(bigint_pk())
    amount: Mapped[int] = mapped_column(BigInteger)
    flags: Mapped[int] = mapped_column(Integer, default=0)
    #: Unique: a pending transfer is resolved (posted or voided) at most once, enforced here.
    pending_id: Mapped[str | None] = mapped_column(String(36))
    timeout_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    group_id: Mapped[str | None] = mapped_column(String(36))
    reverses_id: Mapped[str | None] = mapped_column(String(36))
    code: Mapped[str] = mapped_column(String(32))
    effective_date: Mapped[dt.date] = mapped_column(Date)
    policy_version: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(Integer)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    evidence_ref: Mapped[str | None] = mapped_column(String(200))
    memo: Mapped[str | None] = mapped_column(Text)
    body_hash: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="distinct_accounts"),
        Index("ix_credit_transfers_user_date", "user_id", "effective_date"),
        Index("ix_credit_transfers_debit", "debit_account_id", "seq"),
        Index("ix_credit_transfers_credit", "credit_account_id", "seq"),
        # BRIN: the snapshot build finds the lines visible since its last day (0011).
        Index("ix_credit_transfers_visible", "effective_date", "recorded_at", postgresql_using="brin"),
        # Partial: almost every row has neither, and a NULL entry is still an index write.
        Index(
            "uq_credit_transfers_pending_id",
            "pending_id",
            unique=True,
            postgresql_where=text("pending_id IS NOT NULL"),
            sqlite_where=text("pending_id IS NOT NULL"),
        ),
        Index(
            "ix_credit_transfers_reverses_id",
            "reverses_id",
            postgresql_where=text("reverses_id IS NOT NULL"),
            sqlite_where=text("reverses_id IS NOT NULL"),
        ),
    )


class FailedTransfer(Base):
    """An id whose transfer was refused for a balance reason (TigerBeetle's ``id_already_failed``).

    Only refusals that could succeed later (exceeds credits, pending expired...) are kept: a
    retry of the same id must keep failing, or a once-refused correction could slip through
    later. Refusals for a malformed request keep no record.
    """

    __tablename__ = "credit_failed_transfers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    error: Mapped[str] = mapped_column(String(64))
    body_hash: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Policy(Base):
    """One version of the credit policy (conversion, caps, requirements, year-end).

    Append-only like the journal: a change is a new version with its own effective date;
    every transfer records the version it was computed with.
    """

    __tablename__ = "credit_policies"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    effective_from: Mapped[dt.date] = mapped_column(Date)
    rules: Mapped[dict[str, Any]] = mapped_column(json_type())
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ClaimStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


class Claim(Base):
    """An offline training claim (线下培训学时申报): a cadre's request with evidence files.

    Submitting it places a pending transfer (审核中); approval posts it, rejection voids it.
    """

    __tablename__ = "credit_claims"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    ledger_code: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    organiser: Mapped[str] = mapped_column(String(200))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    policy_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[ClaimStatus] = mapped_column(str_enum(ClaimStatus, 16), default=ClaimStatus.SUBMITTED)
    #: media_files ids of the validated evidence (PDF or images).
    evidence: Mapped[list[int]] = mapped_column(json_type(), default=list)
    transfer_id: Mapped[str] = mapped_column(String(36))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    review_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


#: Scope a site admin grants to an API token so that it may post transfers
#: (``POST /api/v1/credit/transfers``). A read-write token alone may not.
SCOPE_TRANSFERS = "credit:transfers"


class TokenScopeGrant(Base):
    """A credit-bank scope granted to one core API token (``flask lms credit grant-token``).

    Kept by the plugin rather than in the core's token scopes: only the credit bank knows what
    its scopes mean. Revoking or expiring the token ends the grant with it.
    """

    __tablename__ = "credit_token_scopes"

    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    granted_by: Mapped[int | None] = mapped_column(Integer)
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


#: The journal's columns apart from ``seq`` (assigned by the database), in one order for
#: the ledger's write (``ledger_pg``) and the replay (transcripts.log); a new column is added
#: here once (and its array type in ``ledger_pg._JOURNAL_ARRAYS``).
JOURNAL_COLUMNS = (
    "id",
    "ledger_id",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "flags",
    "pending_id",
    "timeout_at",
    "group_id",
    "reverses_id",
    "code",
    "effective_date",
    "policy_version",
    "user_id",
    "actor_id",
    "evidence_ref",
    "memo",
    "body_hash",
    "recorded_at",
)


class SubtreePeople(Base):
    """Report rollup: active cadres *without* a rank history at or under a unit, per band, party and position.

    Derived, rebuilt with the core's report rollups (``lms_report_rollups``), summed up
    the tree (``lms_core.reports.figures.summed_up``): the dashboard compares the root's
    children and reads their rows by primary key, and computes each group's yearly
    target once from these columns (what ``annual_target`` reads), instead of grouping
    100,000 people per page. Cadres with a rank history are few and stay live: their
    band depends on the year.
    """

    __tablename__ = "credit_bank_subtree_people"

    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    rank_band: Mapped[str] = mapped_column(String(32), primary_key=True)
    party_member: Mapped[bool] = mapped_column(primary_key=True)
    #: The position text ('' for none): the requirements match keywords in it.
    position: Mapped[str] = mapped_column(String(100), primary_key=True)
    people: Mapped[int]

    def __repr__(self) -> str:
        return f"<SubtreePeople unit={self.unit_id} {self.rank_band} {self.party_member} {self.position!r}>"


class SubtreeEarned(Base):
    """Report rollup: posted counted credit of a year (plus what a year-end close moved out) under a unit, per band.

    Same people as :class:`SubtreePeople` (active, no rank history); centi-hours.
    """

    __tablename__ = "credit_bank_subtree_earned"

    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    rank_band: Mapped[str] = mapped_column(String(32), primary_key=True)
    earned: Mapped[int] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"<SubtreeEarned unit={self.unit_id} {self.period} {self.rank_band}>"


class BalanceDay(Base):
    """An account's sums at the end of one Beijing day: the daily balance snapshot.

    A journal line is *visible* on day D when it is effective on or before D and was
    recorded before the end of D (the "as of" rule of :mod:`plugins.credit_bank.queries`);
    it becomes visible on ``max(effective_date, Beijing date of recorded_at)``. A row
    ``(account, day)`` holds the account's sums over every line visible at the end of
    ``day``, and exists for each day on which a line touching the account became visible:
    for any date D, the account's figures are those of its latest row on or before D.

    Written by :func:`plugins.credit_bank.snapshots.build` for whole past days only (no line
    can become visible on a day that has ended), append-only like the journal, and checked
    against a recomputation from the journal by ``flask lms credit replay``.
    """

    __tablename__ = "credit_balance_days"

    account_id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True, autoincrement=False)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    debits_posted: Mapped[int] = mapped_column(BigInteger)
    credits_posted: Mapped[int] = mapped_column(BigInteger)
    debits_pending: Mapped[int] = mapped_column(BigInteger)
    credits_pending: Mapped[int] = mapped_column(BigInteger)
    #: Posted debits made by the year-end close (carried forward or expired).
    closed_out: Mapped[int] = mapped_column(BigInteger)


class BalanceBuild(Base):
    """One run of the snapshot builder: every day up to ``through`` has its rows."""

    __tablename__ = "credit_balance_builds"

    through: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    built_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
