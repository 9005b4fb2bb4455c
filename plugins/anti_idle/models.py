"""The anti-idle plugin's tables (all prefixed ``anti_idle_``).

* ``anti_idle_beats``: raw telemetry, one row per heartbeat the core accepted,
  append-only at the database (triggers refuse UPDATE and DELETE).
* ``anti_idle_policies``: versioned policy parameters (site-wide or per course);
  a new version is a new row, old versions stay so every verdict can be replayed.
* ``anti_idle_checks``: attention checks issued by the server and their answers;
  ``anti_idle_check_clocks``: per person, the playing time counted toward the next one.
* ``anti_idle_day_verdicts`` / ``anti_idle_day_lessons``: the derived verdict per
  person and Beijing day, and its split per lesson.
* ``anti_idle_evidence``: one line per deduction or flag, linked to the raw beats.
* ``anti_idle_appeals`` and ``anti_idle_reviews``: learners' appeals and auditors'
  decisions (reviews are append-only).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
    and_,
    case,
    exists,
    false,
    func,
    null,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column

from lms_core.db import SQLITE_ONLY, Base, UTCDateTime, bigint_pk, json_type, utcnow

#: Day verdicts, from the mildest to the most severe.
CREDITED, DEDUCTED, HELD, VOID = "credited", "deducted", "held", "void"
DAY_VERDICTS = (CREDITED, DEDUCTED, HELD, VOID)
#: Attention check outcomes.
CHECK_PENDING, CHECK_PASSED, CHECK_WRONG, CHECK_EXPIRED, CHECK_AUTOMATED = (
    "pending",
    "passed",
    "wrong",
    "expired",
    "automated",
)


class Beat(Base):
    """One heartbeat as the server received it, and what the plugin decided online.

    Raw evidence: written once in the heartbeat's transaction, never changed (the
    database refuses UPDATE and DELETE). Everything a recompute needs is here, so a
    recompute with the same policy version gives the same answer.
    """

    __tablename__ = "anti_idle_beats"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    #: The session's person (the session, person and lesson: one foreign key to the session's
    #: row, see ``__table_args__``).
    user_id: Mapped[int]
    #: The core's learning session (one tab); also the key of its signed media URL.
    session_id: Mapped[str] = mapped_column(String(32))
    #: The beat's course is its lesson's: no column of its own (migration
    #: 0012anti_idle_beat_no_course, docs/anti_idle.md).
    lesson_id: Mapped[int]
    #: The client's sequence number (gap-free per session; the core refuses repeats).
    seq: Mapped[int]
    #: ``video`` | ``document`` ...: the lesson kind at the time.
    lesson_kind: Mapped[str] = mapped_column(String(16))
    #: Client event that sent the beat: heartbeat, play, pause, hidden, visible, ...
    event: Mapped[str] = mapped_column(String(16))
    #: Server receive time of this beat (the authoritative clock) and of the previous
    #: beat of the session (or the session launch), as the core bounded it.
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    wall_start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: When the server created the session (the launch the claim may not precede).
    launched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: The JSON columns are ``json``, not ``jsonb``, on PostgreSQL: written once, read whole
    #: (migration 0013anti_idle_beat_json).
    #: Media ranges claimed, ms ``[[start, end], ...]`` clipped to the real duration.
    claimed: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    position_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    media_duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: Bytes of the media served under this session's signed URL when the beat arrived.
    bytes_served: Mapped[int | None] = mapped_column(BigInteger)
    #: Size of the media file, so bytes can be turned into media seconds delivered.
    media_size: Mapped[int | None] = mapped_column(BigInteger)
    #: Time the page reported visible during the interval (client-reported, corroborating).
    visible_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Raw client signals (visibility, rate, muted, rAF and input counts, probes).
    client: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Online decision: the wall span credited on the person's timeline (None: nothing),
    #: the media ranges and milliseconds credited, and the rule codes that cut it.
    credit_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    credit_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    credited: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    credited_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    #: ``{"R05": ms_deducted, ...}`` for this beat.
    cuts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    #: Rules that fired without removing time (scored per day), e.g. ``["R11"]``.
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Policy version the online decision used.
    policy_version: Mapped[int] = mapped_column(default=0)
    #: Running state after this beat, so the next beat (and a recompute starting on
    #: any day) needs only the previous rows: since when the session's page is hidden,
    #: the end of the last media range it claimed, what the session claimed and has
    #: credited (union of ranges), and the person's credit on the lesson and the day.
    hidden_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_claim_end: Mapped[int | None] = mapped_column(BigInteger)
    session_claimed_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    session_covered: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    lesson_credited_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    day_credited_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The person's focused stream after this beat and until when it holds the focus
    #: (els.FocusState, rule R04f: an unfocused or hidden stream yields to it).
    focus_session: Mapped[str | None] = mapped_column(String(32))
    focus_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("session_id", "seq"),
        Index("ix_anti_idle_beats_user_id_received_at", "user_id", "received_at"),
        Index("ix_anti_idle_beats_user_id_lesson_id_id", "user_id", "lesson_id", "id"),
        #: One check per beat instead of three, and the beat's person and lesson are its
        #: session's (migration 0011anti_idle_beat_session_key). SQLite only: PostgreSQL checks
        #: the same rule once per statement with triggers (migration 0014anti_idle_stmt_key).
        ForeignKeyConstraint(
            ["session_id", "user_id", "lesson_id"],
            ["learning_sessions.id", "learning_sessions.user_id", "learning_sessions.lesson_id"],
            ondelete="CASCADE",
            info=SQLITE_ONLY,
        ).ddl_if(dialect="sqlite"),
    )


class Policy(Base):
    """One version of the anti-idle parameters: site-wide (``course_id`` NULL) or one course's.

    ``id`` is the version number recorded on every verdict. A row holds the complete
    parameter set (a course override is the site policy of the day with the course's
    changes applied), so a version alone says exactly which thresholds were used.
    Rows are never changed: editing makes a new version.
    """

    __tablename__ = "anti_idle_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: NULL: the site-wide policy; otherwise this course's override.
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    #: The full parameter set, ``{name: value}`` (see ``plugins.anti_idle.policy.DEFAULTS``).
    params: Mapped[dict[str, Any]] = mapped_column(json_type())
    #: Why it changed (shown in the policy history).
    note: Mapped[str] = mapped_column(String(500), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_anti_idle_policies_course_id", "course_id"),)


class AttentionCheck(Base):
    """One attention check: issued by the server to one session, answered at most once.

    Times: ``issued_at`` is when the server revealed the challenge to the player;
    the learner has ``window_seconds`` to answer, so the answer is due at ``due_at``
    (= issued + window). While a check is past due and not validly answered, the
    credit path credits nothing for that person (from ``due_at`` to ``answered_at``).
    """

    __tablename__ = "anti_idle_checks"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    #: Single-use token naming the check to the client; the answer is never sent with it.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("learning_sessions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    window_seconds: Mapped[int] = mapped_column(default=60)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: What the player renders (e.g. the digits to draw on a canvas); no answer in it.
    challenge: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    #: The expected answer, server side only.
    expected: Mapped[str] = mapped_column(String(64), default="")
    #: Set once, when the single-use token is redeemed.
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    answer: Mapped[str | None] = mapped_column(String(64))
    #: The answering event's ``isTrusted`` as reported (False: a script clicked).
    trusted: Mapped[bool | None] = mapped_column(Boolean)
    #: Milliseconds from render to answer as measured by the client, and on the server.
    latency_ms: Mapped[int | None] = mapped_column(BigInteger)
    server_latency_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: ``pointer`` | ``keyboard`` | ``touch`` | ``none``: how the control was reached.
    input_mode: Mapped[str | None] = mapped_column(String(16))
    #: pending | passed | wrong | expired | automated (untrusted or faster than a human).
    outcome: Mapped[str] = mapped_column(String(16), default=CHECK_PENDING)
    policy_version: Mapped[int] = mapped_column(default=0)

    # What the person's beats say about the check's window (R07, "offline when a check fell
    # due", docs/anti_idle.md). Derived from the raw beats when read, never stored; computed
    # only for a check not validly answered by its due time (the others need neither), and
    # deferred: loaded by the readers that judge credit (``inputs.person_checks`` and the
    # recompute), not by the beat path's ``last_check``.
    _late_or_open = or_(outcome != CHECK_PASSED, answered_at.is_(None), answered_at > due_at)
    #: No beat of the person reached the server after the check was issued, up to its due time.
    silent: Mapped[bool] = column_property(
        type_coerce(
            case(
                (
                    _late_or_open,
                    ~exists().where(
                        and_(Beat.user_id == user_id, Beat.received_at > issued_at, Beat.received_at <= due_at)
                    ),
                ),
                else_=false(),
            ),
            Boolean(),
        ),
        deferred=True,
    )
    #: The person's first beat received after the due time: from then the check could reach
    #: the player again (it asks after every answered beat) and an answer reach the server.
    reached_at: Mapped[dt.datetime | None] = column_property(
        type_coerce(
            case(
                (
                    _late_or_open,
                    select(func.min(Beat.received_at))
                    .where(Beat.user_id == user_id, Beat.received_at > due_at)
                    .scalar_subquery(),
                ),
                else_=null(),
            ),
            UTCDateTime(),
        ),
        deferred=True,
    )
    del _late_or_open

    __table_args__ = (
        Index("ix_anti_idle_checks_user_id_due_at", "user_id", "due_at"),
        Index("ix_anti_idle_checks_session_id", "session_id"),
    )

    @property
    def valid_answer(self) -> bool:
        return self.outcome == CHECK_PASSED


class CheckClock(Base):
    """Per person: the playing time counted toward their next attention check, kept as a memo.

    ``played_ms`` is the sum of ``claimed_ms`` over the person's ledger intervals
    (``learning_intervals``) with ``wall_end`` after ``reference_at`` (all of them when
    None) and ``id`` up to ``through_id``. A poll adds only the intervals stored since
    (``checks._playing_ms_since``), so it no longer sums the person's history. Derived
    data: deleting a row only makes the next poll sum from the reference again.
    """

    __tablename__ = "anti_idle_check_clocks"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    #: The schedule's reference (the last answer or issue time; None before the first check).
    reference_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    played_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The last interval summed (0: none yet) and its ``wall_end``.
    through_id: Mapped[int] = mapped_column(BigInteger, default=0)
    through_wall_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<CheckClock user={self.user_id} played={self.played_ms} through={self.through_id}>"


class PersonState(Base):
    """Per person: the running state the next beat is judged from, read and written once per beat.

    Derived data, never evidence (the raw beats are): every field is what the person's
    stored beats say, kept here so a beat reads one row instead of querying its history.

    * ``day``, ``day_credited_ms``, ``focus_*``: from the person's last judged beat;
    * ``sessions``: per recent session, least recent first, ``[session_id, hidden_since_us,
      last_event, last_seq, last_claim_end, session_claimed_ms, covered]`` after its last beat;
    * ``lessons``: per recent lesson ``[lesson_id, lesson_credited_ms]``, the person's credit
      on it after their last beat on it (a session or lesson not kept is read from its
      last stored beat);
    * ``day_tally``: the online tally of ``tally_day`` (``verdicts.record_online``),
      including beats not yet folded into the day verdict; NULL when the day verdict
      row holds it all (after a day assessment or a recompute).
    """

    __tablename__ = "anti_idle_person_states"
    #: Rewritten by every beat: kept uncompressed up to a page and with room on each page for
    #: the next version (a HOT update), migration 0009anti_idle_state_storage says why.
    __table_args__ = {"postgresql_with": {"fillfactor": 50, "toast_tuple_target": 8160}}

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date)
    day_credited_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    focus_session: Mapped[str | None] = mapped_column(String(32))
    focus_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: ``json``, not ``jsonb``, on PostgreSQL (migration 0010anti_idle_state_json): the row is
    #: read and written whole by every beat and never queried inside, so it is kept as the
    #: text written, not parsed into ``jsonb`` on each write and printed back on each read.
    sessions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    lessons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    tally_day: Mapped[dt.date | None] = mapped_column(Date)
    day_tally: Mapped[dict[str, Any] | None] = mapped_column(JSON)


#: Held days no auditor has decided: the review queue's partial index predicate.
REVIEW_QUEUE_WHERE = "verdict = 'held' AND review_state NOT IN ('posted', 'voided')"


class DayVerdict(Base):
    """The verdict on one person's Beijing calendar day; derived, recomputable.

    ``credited_ms`` will be posted, ``held_ms`` waits for an auditor, ``deducted_ms``
    was cut by rules (no sanction), ``void_ms`` was withheld by a critical rule. The
    sum of the four is the time claimed. ``input_digest`` hashes the inputs (beats,
    checks, policy) so a recompute can show it judged the same evidence.
    """

    __tablename__ = "anti_idle_day_verdicts"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    #: credited | deducted | held | void
    verdict: Mapped[str] = mapped_column(String(16))
    claimed_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    credited_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    held_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    deducted_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    void_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Sum of the SCORE of the distinct rules that fired (≥ hold threshold: held).
    review_score: Mapped[int] = mapped_column(default=0)
    #: Rule codes that fired, sorted.
    rules: Mapped[list[str]] = mapped_column(json_type(), default=list)
    #: Running tallies the verdict is derived from: ``{"cuts": {rule: ms}, "flags": [...],
    #: "hidden_sessions": [...], "muted_ms": n, "streams": n}`` (see verdicts.tally_beat).
    tally: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    policy_version: Mapped[int] = mapped_column(default=0)
    beats: Mapped[int] = mapped_column(default=0)
    input_digest: Mapped[str] = mapped_column(String(64), default="")
    #: none | pending | posted | voided: where an auditor's review stands.
    review_state: Mapped[str] = mapped_column(String(16), default="none")
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("user_id", "day"),
        Index("ix_anti_idle_day_verdicts_verdict_day", "verdict", "day"),
    )


#: The review queue's held days in its order (appeals.review_list, HELD_WAITING).
Index(
    "ix_anti_idle_day_verdicts_review_queue",
    DayVerdict.review_score.desc(),
    DayVerdict.day,
    DayVerdict.id,
    postgresql_where=text(REVIEW_QUEUE_WHERE),
    sqlite_where=text(REVIEW_QUEUE_WHERE),
)


class DayLesson(Base):
    """One lesson's share of a day verdict (what a held day holds, per lesson)."""

    __tablename__ = "anti_idle_day_lessons"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    day_verdict_id: Mapped[int] = mapped_column(ForeignKey("anti_idle_day_verdicts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"))
    claimed_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    credited_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    deducted_ms: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (
        UniqueConstraint("day_verdict_id", "lesson_id"),
        Index("ix_anti_idle_day_lessons_user_id_lesson_id", "user_id", "lesson_id"),
    )


class Evidence(Base):
    """One deduction or flag, as a Chinese sentence a cadre understands, with its inputs.

    ``message`` is an English msgid rendered through the plugin's catalogue with
    ``params`` (so the line reads in Chinese by default and in English on request);
    ``span_start``/``span_end`` name the time, ``rule`` and ``threshold`` the rule,
    ``amount_ms`` the time cut, ``beat_ids`` the raw beats it relied on.
    """

    __tablename__ = "anti_idle_evidence"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    day_verdict_id: Mapped[int] = mapped_column(ForeignKey("anti_idle_day_verdicts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    lesson_id: Mapped[int | None] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"))
    #: R01 … R17 (see docs/anti_idle.md).
    rule: Mapped[str] = mapped_column(String(8))
    #: deduct | void | hold | score | info
    action: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16), default="info")
    span_start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    span_end: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    amount_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    score: Mapped[int] = mapped_column(default=0)
    #: The threshold as data, e.g. ``{"grace_s": 60}``.
    threshold: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    message: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    beat_ids: Mapped[list[int]] = mapped_column(json_type(), default=list)
    policy_version: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        Index("ix_anti_idle_evidence_user_id_day", "user_id", "day"),
        Index("ix_anti_idle_evidence_day_verdict_id", "day_verdict_id"),
    )


class Appeal(Base):
    """A learner's appeal against a day's verdict (or one evidence line), with a reason."""

    __tablename__ = "anti_idle_appeals"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day_verdict_id: Mapped[int] = mapped_column(ForeignKey("anti_idle_day_verdicts.id", ondelete="CASCADE"))
    evidence_id: Mapped[int | None] = mapped_column(ForeignKey("anti_idle_evidence.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(Text)
    #: open | upheld | rejected
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_anti_idle_appeals_status_created_at", "status", "created_at"),
        Index("ix_anti_idle_appeals_user_id", "user_id"),
    )


class Review(Base):
    """An auditor's decision on a held day: post or void the held time, with a reason.

    Append-only (the database refuses UPDATE and DELETE): a later decision is a new row.
    """

    __tablename__ = "anti_idle_reviews"

    id: Mapped[int] = mapped_column(bigint_pk(), primary_key=True)
    day_verdict_id: Mapped[int] = mapped_column(ForeignKey("anti_idle_day_verdicts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: post | void
    decision: Mapped[str] = mapped_column(String(8))
    #: Seconds posted or voided by this decision.
    seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str] = mapped_column(Text)
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("anti_idle_appeals.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_anti_idle_reviews_day_verdict_id", "day_verdict_id"),)


class SubtreeYear(Base):
    """Report rollup: the day verdicts of the people at or under one unit in one year, summed (derived, rebuilt).

    Rebuilt with the core's report rollups (``lms_report_rollups``), summed up the tree
    (``lms_core.reports.figures.summed_up``); people count under their current unit. The
    dashboard reads its root's row instead of every person's verdicts (or every unit's row).
    """

    __tablename__ = "anti_idle_subtree_years"

    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    #: The year of the verdicts' Beijing day.
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    claimed_ms: Mapped[int] = mapped_column(BigInteger)
    held_ms: Mapped[int] = mapped_column(BigInteger)
    #: Deducted plus void.
    cut_ms: Mapped[int] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"<SubtreeYear unit={self.unit_id} year={self.year}>"


class SubtreeRuleYear(Base):
    """Report rollup: time one rule took from the people at or under one unit in one year, per action (derived)."""

    __tablename__ = "anti_idle_subtree_rule_years"

    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    rule: Mapped[str] = mapped_column(String(8), primary_key=True)
    #: deduct | void | hold
    action: Mapped[str] = mapped_column(String(16), primary_key=True)
    amount_ms: Mapped[int] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"<SubtreeRuleYear unit={self.unit_id} year={self.year} {self.rule} {self.action}>"
