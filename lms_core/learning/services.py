"""Sessions, heartbeats, crediting and completion.

The flow of one heartbeat (``record_beat``):

1. validate the envelope (session owner, not ended, ``seq`` strictly increasing;
   a ``seq`` at or below the last is acknowledged idempotently as a duplicate, also on a
   session that has ended since: only a new beat of an ended session is refused, 409);
2. clip the claimed media ranges to the media's real duration (read on the server);
3. the core's wall-clock rule, per *person*: a beat may credit only server time
   after the person's clock (how far their credited study already reaches, across
   every session, tab, device and lesson) and up to its own receive time, capped at
   ``LMS_BEAT_MAX_GAP_SECONDS``; so 2x playback, a forged burst, four tabs or two
   devices earn at most real time. Reading time obeys the same rule;
4. every ``lms_assess_interval`` plugin may reduce or void the claim; the credited
   ranges are the intersection of all verdicts, and every verdict is stored;
5. the interval is appended to the ledger and the lesson's progress is derived;
6. completion rules run (with ``lms_completion_verdict``), events are emitted.
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from flask_babel import gettext as _
from sqlalchemy import Integer, String, Table, and_, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, joinedload

from lms_core import jsonsafe
from lms_core.accounts.models import User
from lms_core.accounts.principal import Principal
from lms_core.courses.models import Course, Lesson, LessonKind
from lms_core.db import transient_copy, utcnow
from lms_core.enrolments.models import Enrolment
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.i18n import beijing_day as beijing_day  # re-exported: callers read it from here
from lms_core.learning import beat_group, beat_rows, beat_tx, pg_arrays
from lms_core.learning import segments as segs
from lms_core.learning.assessment import _SEVERITY, CREDIT, REDUCE, VOID, IntervalClaim, Verdict, span_ms
from lms_core.learning.models import (
    DailyTotal,
    LearningSession,
    LessonProgress,
    PersonClock,
    ProgressStatus,
    RefusedBeat,
)

#: Client events a heartbeat may carry (the player sends one on each media event).
BEAT_EVENTS = {"heartbeat", "play", "pause", "seeked", "ended", "hidden", "visible", "terminate"}
MAX_SEGMENTS = 50
#: Video Profile events that become domain events (and xAPI statements).
VIDEO_EVENTS = {"play": "video.played", "pause": "video.paused", "seeked": "video.seeked", "ended": "video.completed"}


class BeatError(ValueError):
    """A heartbeat that cannot be accepted; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class BeatResult:
    accepted: bool
    duplicate: bool
    credited_ms: int
    coverage_bp: int
    position_ms: int
    lesson_completed: bool
    course_completed: bool
    verdict: str
    #: ``late`` when the beat was refused and recorded (made before the late window).
    refused: str | None = None
    #: The plugins' fields for the beat's answer (``Verdict.answer``); None: none.
    answer: dict[str, Any] | None = None


def _dialect() -> str:
    return beat_tx.dialect_name()


# The heartbeat's statements are built once per process (and dialect) with bound
# parameters: building a select and walking it for its cache key on every beat cost
# more CPU than PostgreSQL spends running it (bench/anti_idle_bench.py --profile).


@functools.cache
def _progress_statement(dialect: str, lock: bool) -> Any:
    stmt = select(LessonProgress).where(
        LessonProgress.user_id == bindparam("user_id", type_=Integer),
        LessonProgress.lesson_id == bindparam("lesson_id", type_=Integer),
    )
    return stmt.with_for_update(key_share=True) if lock and dialect == "postgresql" else stmt


@functools.cache
def _clock_statement(dialect: str) -> Any:
    stmt = select(PersonClock).where(PersonClock.user_id == bindparam("user_id", type_=Integer))
    return stmt.with_for_update(key_share=True) if dialect == "postgresql" else stmt


@functools.cache
def _beat_session_statement() -> Any:
    """The session with its lesson, media and enrolment: one statement per heartbeat, not four."""
    return (
        select(LearningSession)
        .where(LearningSession.id == bindparam("session_id", type_=String))
        .options(
            joinedload(LearningSession.lesson, innerjoin=True).joinedload(Lesson.media),
            joinedload(LearningSession.enrolment, innerjoin=True),
        )
    )


@functools.cache
def _locked_beat_session_statement(dialect: str) -> Any:
    stmt = _beat_session_statement()
    return stmt.with_for_update(of=LearningSession, key_share=True) if dialect == "postgresql" else stmt


@functools.cache
def _enrolment_statement() -> Any:
    return select(Enrolment).where(
        Enrolment.user_id == bindparam("user_id", type_=Integer),
        Enrolment.course_id == bindparam("course_id", type_=Integer),
    )


def enrolment_for(user: User, course_id: int) -> Enrolment | None:
    return db.session.execute(_enrolment_statement(), {"user_id": user.id, "course_id": course_id}).scalar_one_or_none()


def progress_for(user_id: int, lesson: Lesson, *, lock: bool = False) -> LessonProgress:
    """The (user, lesson) progress row, created on first use (race-safe)."""
    stmt = _progress_statement(_dialect(), lock)
    params = {"user_id": user_id, "lesson_id": lesson.id}
    row = db.session.execute(stmt, params).scalar_one_or_none()
    if row is not None:
        return row
    try:
        with db.session.begin_nested():
            row = LessonProgress(user_id=user_id, lesson_id=lesson.id, course_id=lesson.course_id, credited_segments=[])
            db.session.add(row)
    except IntegrityError:  # created concurrently by another request
        row = db.session.execute(stmt, params).scalar_one()
    return row


def start_session(
    user: User, lesson: Lesson, enrolment: Enrolment, *, ip: str | None = None, user_agent: str | None = None
) -> LearningSession:
    """Open a learning session for one tab; emits ``lesson.launched`` (does not commit)."""
    session = LearningSession(
        id=secrets.token_hex(16),
        user_id=user.id,
        lesson_id=lesson.id,
        enrolment_id=enrolment.id,
        ip=ip,
        user_agent=(user_agent or "")[:300],
    )
    now = utcnow()
    session.started_at = session.last_beat_at = now
    db.session.add(session)
    db.session.flush()
    progress = progress_for(user.id, lesson)
    if progress.status == ProgressStatus.NOT_STARTED:
        progress.status = ProgressStatus.IN_PROGRESS
    common = {"lesson_id": lesson.id, "registration": enrolment.registration, "session_id": session.id}
    emit(
        "lesson.launched",
        actor=user,
        obj=lesson,
        course_id=lesson.course_id,
        payload={**common, "kind": lesson.kind.value},
    )
    if lesson.kind == LessonKind.VIDEO:
        length = (lesson.media.duration_ms or 0) / 1000 if lesson.media else 0
        emit(
            "video.initialized",
            actor=user,
            obj=lesson,
            course_id=lesson.course_id,
            payload={
                **common,
                "length": length,
                "time": progress.position_ms / 1000,
                "completion_threshold": lesson.completion_threshold_pct / 100,
            },
        )
    return session


#: Bounds of heartbeat numbers: a week of media in seconds, and what fits the ledger's
#: 32-bit columns (milliseconds, sequence numbers). ``Infinity``, ``NaN``, ``1e308`` and
#: ``2**70`` are refused with a 400 before anything is stored.
MAX_BEAT_SECONDS = 7 * 24 * 3600
MAX_VISIBLE_MS = MAX_BEAT_SECONDS * 1000
MAX_SEQ = 2**31 - 1
#: Year 9999: a claimed making time beyond it is not a time.
MAX_MADE_AT_MS = 253_402_300_799_000


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _seconds(value: Any, what: str) -> float:
    """A media time in seconds: finite, within [0, MAX_BEAT_SECONDS]."""
    if not _is_number(value) or not 0 <= value <= MAX_BEAT_SECONDS:  # NaN fails both comparisons
        raise BeatError(
            _("%(what)s must be a number of seconds between 0 and %(max)s", what=what, max=MAX_BEAT_SECONDS)
        )
    return float(value)


def _parse_beat(beat: Any) -> dict[str, Any]:
    if not isinstance(beat, dict):
        raise BeatError(_("heartbeat must be a JSON object"))
    seq = beat.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= MAX_SEQ:
        raise BeatError(_("seq must be an integer between 1 and %(max)s", max=MAX_SEQ))
    event = beat.get("event", "heartbeat")
    if not isinstance(event, str) or event not in BEAT_EVENTS:
        raise BeatError(_("unknown event %(event)s", event=repr(str(event)[:40])))
    position = _seconds(beat.get("position", 0), "position")
    raw_segments = beat.get("segments", [])
    if not isinstance(raw_segments, list) or len(raw_segments) > MAX_SEGMENTS:
        raise BeatError(_("segments must be a list of at most %(max)s [from, to] pairs", max=MAX_SEGMENTS))
    claimed = []
    for seg in raw_segments:
        if not isinstance(seg, list) or len(seg) != 2:
            raise BeatError(_("each segment must be [from, to] in seconds"))
        start, end = (_seconds(x, "each segment bound") for x in seg)
        claimed.append((round(start * 1000), round(end * 1000)))
    visible_ms = beat.get("visible_ms", 0)
    if not _is_number(visible_ms) or not 0 <= visible_ms <= MAX_VISIBLE_MS:
        raise BeatError(_("visible_ms must be a number between 0 and %(max)s", max=MAX_VISIBLE_MS))
    client = beat.get("client", {})
    if not isinstance(client, dict) or len(str(client)) > 4000:
        raise BeatError(_("client must be a small JSON object"))
    problem = jsonsafe.find_problem(client, max_depth=10)
    if problem:
        raise BeatError(_("client: %(problem)s", problem=problem))
    extra: dict[str, Any] = {k: _seconds(beat[k], k) for k in ("time_from", "time_to") if _is_number(beat.get(k))}
    made_at = beat.get("at")
    if made_at is not None:
        # When the player made the beat (``Date.now()``, ms): what the late window is judged by.
        if not _is_number(made_at) or not 0 <= made_at <= MAX_MADE_AT_MS:
            raise BeatError(_("at must be a time in milliseconds since 1970"))
        extra["made_at"] = dt.datetime.fromtimestamp(made_at / 1000, dt.UTC)
    return {
        "seq": seq,
        "event": event,
        "position_ms": round(position * 1000),
        "claimed": claimed,
        "visible_ms": int(visible_ms),
        "client": client,
        **extra,
    }


def person_clock(user_id: int) -> PersonClock:
    """The person's clock row, locked for this transaction (created on first use, race-safe).

    Locking it serialises the beats of one person (never of two people), which is
    what makes the per-person budget hold under concurrent tabs on PostgreSQL.
    """
    stmt = _clock_statement(_dialect())
    clock = db.session.execute(stmt, {"user_id": user_id}).scalar_one_or_none()
    if clock is not None:
        return clock
    try:
        with db.session.begin_nested():
            db.session.add(PersonClock(user_id=user_id, credited_until=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    except IntegrityError:  # created concurrently: take the other transaction's row
        pass
    return db.session.execute(stmt, {"user_id": user_id}).scalar_one()


@functools.cache
def _clocks_lock_statement() -> Any:
    return (
        select(PersonClock.user_id)
        .where(PersonClock.user_id.in_(bindparam("user_ids", expanding=True)))
        .order_by(PersonClock.user_id)
        .with_for_update(key_share=True)
    )


def lock_clocks(user_ids: Iterable[int]) -> None:
    """Lock these people's clock rows (those that exist) for this transaction, in user order.

    For a writer, other than a beat, of a person's rows that a beat reads and later writes
    back without locking them itself (the anti-idle state row): holding the clocks, it
    cannot write between such a beat's read and its write, and a beat that comes after it
    reads its change (each statement's snapshot is taken after the clock was granted).
    User order, as a round of beats locks its people (``beat_rows``): the two cannot
    deadlock, if this comes before the writer's other writes that beats also make (day
    verdicts, say). A no-op on SQLite, which runs one writer at a time.
    """
    ids = sorted(set(user_ids))
    if ids and _dialect() == "postgresql":
        db.session.execute(_clocks_lock_statement(), {"user_ids": ids})


#: The verdict of each severity (``_SEVERITY``'s inverse): the worst of a beat's verdicts.
_LABELS = sorted(_SEVERITY, key=_SEVERITY.__getitem__)


def _wall_reason(claim: IntervalClaim, credited_ms: int, claimed_ms: int) -> dict[str, Any]:
    """The core's wall-clock reduction as a reason; the figures are kept apart so pages can
    explain them in the reader's language (learning/explain.py)."""
    wall_ms = claim.wall_ms
    return {
        "by": "core",
        "verdict": REDUCE,
        "code": "wall_clock",
        "credited_ms": credited_ms,
        "claimed_ms": claimed_ms,
        "wall_ms": wall_ms,
        "reason": f"claimed {claimed_ms} ms of media in {wall_ms} ms of server time",
    }


def _ask_plugins(
    claim: IntervalClaim, credited: list[segs.Segment], reasons: list[dict[str, Any]]
) -> tuple[list[segs.Segment], int, int | None, dict[str, Any] | None]:
    """Every ``lms_assess_interval`` implementation on ``claim``: the core's ``credited``
    ranges intersected with each plugin's, each verdict appended to ``reasons``; returns
    (credited ranges, the plugins' worst severity, the smallest ``credited_ms`` a plugin set or
    None, the plugins' fields for the answer), for :func:`_assess`. The straight beat's
    :func:`_assess_one` asks them the same way with one range instead of lists
    (``test_assess_one.py`` holds the two equal)."""
    severity = 0
    time_ms: int | None = None
    answer: dict[str, Any] | None = None
    for impl in beat_tx.plugin_manager().hook.lms_assess_interval.get_hookimpls():
        verdict: Verdict | None = impl.function(claim=claim)  # type: ignore[assignment]
        if verdict is None:
            continue
        answer, time_ms = _answer_and_time(verdict, answer, time_ms)
        plugin_credit = segs.normalise(verdict.credited)
        credited = _intersect(credited, plugin_credit)
        severity = max(severity, _SEVERITY[verdict.verdict])
        reasons.append(_plugin_reason(impl.plugin_name, verdict, segs.total(plugin_credit)))
    return credited, severity, time_ms, answer


def _answer_and_time(
    verdict: Verdict, answer: dict[str, Any] | None, time_ms: int | None
) -> tuple[dict[str, Any] | None, int | None]:
    """The plugins' answer fields (an earlier plugin's win) and the smallest ``credited_ms``
    set so far, with ``verdict``'s added (:func:`_ask_plugins` and :func:`_assess_one`)."""
    if verdict.answer:
        answer = {**verdict.answer, **answer} if answer else dict(verdict.answer)
    if verdict.credited_ms is not None:
        time_ms = verdict.credited_ms if time_ms is None else min(time_ms, verdict.credited_ms)
    return answer, time_ms


def _plugin_reason(name: str, verdict: Verdict, credited_ms: int) -> dict[str, Any]:
    """A plugin's verdict as the interval's ``reasons`` keep it (:func:`_ask_plugins` and
    :func:`_assess_one` write the same entry)."""
    return {
        "by": name,
        "verdict": verdict.verdict,
        "code": verdict.code,
        "credited_ms": credited_ms,
        "reason": verdict.reason,
    }


def _assess(
    claim: IntervalClaim, budget_ms: int
) -> tuple[list[segs.Segment], int, str, list[dict[str, Any]], dict[str, Any] | None]:
    """Core wall-clock rule, then the plugins; returns (credited ranges, credited ms, verdict,
    reasons, the plugins' fields for the answer).

    The credited time is the ranges' measure, or more when every plugin that says so
    (``Verdict.credited_ms``, slow playback) allows it, within the beat's wall budget.
    """
    claimed = list(claim.claimed)
    core_credit = segs.truncate(claimed, budget_ms)
    reasons: list[dict[str, Any]] = []
    core_ms, claimed_ms = segs.total(core_credit), segs.total(claimed)  # once each (a beat's hot path)
    severity = 0
    if core_ms < claimed_ms:
        severity = _SEVERITY[REDUCE]
        reasons.append(_wall_reason(claim, core_ms, claimed_ms))
    credited, plugins, time_ms, answer = _ask_plugins(claim, core_credit, reasons)
    label = _LABELS[max(severity, plugins)]
    if label == VOID:
        credited = []
    credited_ms = segs.total(credited)
    if time_ms is not None and credited_ms:
        credited_ms = max(credited_ms, min(time_ms, budget_ms))
    return credited, credited_ms, label, reasons, answer


def _assess_one(
    claim: IntervalClaim, claimed_ms: int, budget_ms: int
) -> tuple[int, str, list[dict[str, Any]], dict[str, Any] | None]:
    """:func:`_assess` of a claim of one range ``(0, claimed_ms)`` (``claimed_ms`` > 0: a
    straight beat's reading time), without the ranges' lists: (credited ms, verdict, reasons,
    the plugins' fields for the answer). The core's range is ``(0, min(claimed, budget))``
    (``segs.truncate`` of one range); the plugins are called as :func:`_ask_plugins` calls
    them, and while every verdict credits one range the credited ranges stay one range
    ``[lo, hi)`` (the intersection of two ranges), without ``segs.normalise``, ``_intersect``
    and ``segs.total`` on one-element lists (two, one and three calls a beat: ~4 % of the
    writer's profile). A verdict of other ranges takes the lists from there on.
    ``test_assess_one.py`` compares it with :func:`_assess` verdict by verdict."""
    core_ms = min(claimed_ms, budget_ms) if budget_ms > 0 else 0
    reasons: list[dict[str, Any]] = []
    severity = 0
    if core_ms < claimed_ms:
        severity = _SEVERITY[REDUCE]
        reasons.append(_wall_reason(claim, core_ms, claimed_ms))
    lo, hi = 0, core_ms  # the credited range while ``credited`` is None (empty when hi <= lo)
    credited: list[segs.Segment] | None = None
    time_ms: int | None = None
    answer: dict[str, Any] | None = None
    for impl in beat_tx.plugin_manager().hook.lms_assess_interval.get_hookimpls():
        verdict: Verdict | None = impl.function(claim=claim)  # type: ignore[assignment]
        if verdict is None:
            continue
        answer, time_ms = _answer_and_time(verdict, answer, time_ms)
        ranges = verdict.credited
        if credited is None and len(ranges) == 1 and len(ranges[0]) == 2:
            # ``segs.normalise`` of one range (clipped at 0), then its intersection with ours.
            start, end = max(int(ranges[0][0]), 0), int(ranges[0][1])
            plugin_ms = end - start if end > start else 0
            if plugin_ms:
                lo, hi = max(lo, start), min(hi, end)
            else:
                hi = lo
        else:
            plugin_credit = segs.normalise(ranges)
            plugin_ms = segs.total(plugin_credit)
            if credited is None:
                credited = [(lo, hi)] if hi > lo else []
            credited = _intersect(credited, plugin_credit)
        severity = max(severity, _SEVERITY[verdict.verdict])
        reasons.append(_plugin_reason(impl.plugin_name, verdict, plugin_ms))
    label = _LABELS[severity]  # the core's and the plugins' worst
    if label == VOID:
        credited_ms = 0
    elif credited is None:
        credited_ms = hi - lo if hi > lo else 0
    else:
        credited_ms = segs.total(credited)
    if time_ms is not None and credited_ms:
        credited_ms = max(credited_ms, min(time_ms, budget_ms))
    return credited_ms, label, reasons, answer


def _intersect(a: list[segs.Segment], b: list[segs.Segment]) -> list[segs.Segment]:
    out = []
    for s1, e1 in a:
        for s2, e2 in b:
            start, end = max(s1, s2), min(e1, e2)
            if end > start:
                out.append((start, end))
    return segs.normalise(out)


def _beat_state(session_id: str, user: User | Principal, seq: int) -> beat_rows.BeatState:
    """The beat's rows, locked (one statement); a first beat creates the rows it lacks.

    An ended session refuses a *new* beat (``seq`` above its last) with a 409, but not a beat
    it already has: the player's queue hand-over (the next page re-sends a gone page's queue,
    its ``terminate`` included, when the answer to it was lost with the page) and any retry
    after a lost answer send a stored beat again, and it gets the answer of any repeat or
    replay (``_record_general``: acknowledged as a duplicate, nothing credited, kept as
    evidence), whether or not its session ended in between. The ``seq`` is compared under
    the session's lock, so a retry racing the session's ``terminate`` gets the same answer
    whichever commits first."""
    beat_tx.session().flush()  # pending ORM changes first: a Core read on the connection does not autoflush
    state = beat_rows.read(session_id, user.id)
    if state is None:
        session = (
            db.session.execute(_locked_beat_session_statement(_dialect()), {"session_id": session_id})
            .unique()
            .scalar_one_or_none()
        )
        if session is None or session.user_id != user.id:
            raise BeatError(_("unknown learning session"), 404)
        if session.ended_at is not None:
            # Without the person's rows no beat of theirs was ever stored: this one is new.
            raise BeatError(_("this learning session has ended; reload the lesson"), 409)
        # A person's first beat: no clock row yet (both race-safe).
        progress_for(user.id, session.lesson, lock=True)
        person_clock(user.id)
        state = beat_rows.read(session_id, user.id)
        if state is None:
            raise BeatError(_("unknown learning session"), 404)
    if state.ended_at is not None and seq > state.last_seq:
        raise BeatError(_("this learning session has ended; reload the lesson"), 409)
    return state


#: ``_ONE_MS * n`` is ``timedelta(milliseconds=n)`` for an int ``n``, without the constructor's
#: keyword parsing and unit arithmetic (~2,900 instructions a call, once a beat).
_ONE_MS = dt.timedelta(milliseconds=1)


@functools.lru_cache(maxsize=16)
def _hours(hours: float) -> dt.timedelta:
    """A setting's hours as a ``timedelta``, built once per value (not once per beat)."""
    return dt.timedelta(hours=hours)


@functools.lru_cache(maxsize=16)
def _seconds_delta(seconds: float) -> dt.timedelta:
    """A setting's seconds as a ``timedelta``, built once per value (not once per beat)."""
    return dt.timedelta(seconds=seconds)


@functools.cache
def _registration_statement() -> Any:
    return select(Enrolment.registration).where(Enrolment.id == bindparam("enrolment_id", type_=Integer))


def _registration(enrolment_id: int) -> str:
    """The enrolment's registration (the beat's read leaves it out: few beats' events need it)."""
    return str(db.session.connection().execute(_registration_statement(), {"enrolment_id": enrolment_id}).scalar_one())


#: Off: every beat takes the general path (``_record_general``); the equivalence tests
#: (tests/lms_core/learning/test_beat_straight.py) run the same beats both ways.
STRAIGHT = True
#: A client signal's value types taken without ``jsonsafe.find_problem`` (it finds no problem
#: in an int, a bool or ``None``; a string is checked below); others: its own check.
_PLAIN = (int, bool, type(None))


def _report_credited(user: User | Principal, state: beat_rows.BeatState, unreported_ms: int) -> None:
    """The session's credited time not yet reported, as one ``study.interval_credited`` event
    (both beat paths report at 5 minutes; the general one also at any other event)."""
    emit(
        "study.interval_credited",
        actor=user,
        object_type="learning_sessions",
        object_id=state.session_id,
        course_id=state.course_id,
        payload={"lesson_id": state.lesson_id, "seconds": unreported_ms / 1000},
    )


def _straight_beat(raw: Any) -> tuple[int, int, dict[str, Any], dt.datetime | None] | None:
    """``(seq, visible_ms, client, made_at)`` of a beat that is certainly valid and of the
    common case (a heartbeat claiming reading time: no media ranges, position 0), else
    ``None`` (the general path parses it, and refuses it if it is invalid).

    Every test here is ``_parse_beat``'s or stricter, so a body taken here is one
    ``_parse_beat`` accepts, with the values it would give: ``seq`` and ``visible_ms`` exact
    ints (no float, no bool), ``segments`` absent or ``[]``, ``position`` absent or 0, ``at``
    a number in range (the making time, for the late window), ``client`` an object that
    passes ``_parse_beat``'s own checks (a flat one of ASCII strings without NUL, ints,
    booleans and nulls passes them without being walked)."""
    if type(raw) is not dict:
        return None
    seq = raw.get("seq")
    visible_ms = raw.get("visible_ms")
    client = raw.get("client", {})
    segments = raw.get("segments", [])
    position = raw.get("position", 0)
    if (
        type(seq) is not int
        or not 1 <= seq <= MAX_SEQ
        or type(visible_ms) is not int
        or not 0 < visible_ms <= MAX_VISIBLE_MS
        or raw.get("event", "heartbeat") != "heartbeat"
        or type(client) is not dict
        or type(segments) is not list
        or segments
        or type(position) not in (int, float)
        or position != 0
        or "time_from" in raw
        or "time_to" in raw
    ):
        return None
    made_at = raw.get("at")
    if made_at is not None:
        if type(made_at) not in (int, float) or not 0 <= made_at <= MAX_MADE_AT_MS:
            return None
        made_at = dt.datetime.fromtimestamp(made_at / 1000, dt.UTC)
    if len(client) > 30 or not _flat_client(client):
        if len(str(client)) > 4000 or jsonsafe.find_problem(client, max_depth=10):
            return None
    elif len(str(client)) > 4000:
        return None
    return seq, visible_ms, client, made_at


def _flat_client(client: dict[str, Any]) -> bool:
    """A flat object of ASCII strings without NUL, ints, booleans and nulls (what
    ``jsonsafe.find_problem`` accepts without walking it)."""
    for key, value in client.items():
        if type(key) is not str or not key.isascii() or "\x00" in key:
            return False
        if type(value) is str:
            if not value.isascii() or "\x00" in value:
                return False
        elif type(value) not in _PLAIN:
            return False
    return True


def _record_straight(
    state: beat_rows.BeatState,
    user: User | Principal,
    seq: int,
    visible_ms: int,
    client: dict[str, Any],
    now: dt.datetime,
) -> BeatResult:
    """:func:`_record_general` for the steady state's beat, in a straight line.

    Taken only for a beat of ``_straight_beat`` (a valid heartbeat claiming ``visible_ms`` of
    reading, nothing else) of a document lesson's open session with ``seq`` above the last:
    the general path then runs no late check (no making time), no refusal, no media clipping,
    no position change, no video or terminate event, and its progress change is ``read_ms``
    alone. This computes the same values from the round's row without the parsed beat's dict,
    the claim's keyword arguments, the media ranges' arithmetic or the write's objects, calls
    the same hook (``_assess``) and completion (``_beat_completion``), and hands the round's
    write its rows as tuples. Kept equal to the general path by
    tests/lms_core/learning/test_beat_straight.py (random sequences both ways, every row,
    event, verdict and answer compared)."""
    max_gap = _seconds_delta(beat_tx.config()["LMS_BEAT_MAX_GAP_SECONDS"])
    wall_start = max(state.budget_from or state.last_beat_at, now - max_gap)
    credit_from = max(wall_start, state.credited_until)
    has_media = state.media_id is not None
    claimed = ((0, visible_ms),)
    claim = object.__new__(IntervalClaim)
    claim.__dict__.update(
        user_id=user.id,
        lesson_id=state.lesson_id,
        session_id=state.session_id,
        seq=seq,
        lesson_kind=state.kind,
        event="heartbeat",
        wall_start=wall_start,
        wall_end=now,
        claimed=claimed,
        position_ms=0,
        media_duration_ms=state.duration_ms if has_media else None,
        bytes_served=state.bytes_served if has_media else None,
        client=client,
        visible_ms=visible_ms,
        credit_from=credit_from,
        session_started_at=state.started_at,
        media_size=state.size_bytes if has_media else None,
        course_id=state.course_id,
        previous_seq=state.last_seq,
    )
    budget_ms = max(0, span_ms(now - credit_from) + 1000)  # the general path's one second of tolerance
    credited_ms, label, reasons, answer = _assess_one(claim, visible_ms, budget_ms)
    read_ms = state.read_ms + credited_ms
    changes: dict[str, Any] = {}
    credited_until: dt.datetime | None = None
    budget_from = now
    if credited_ms:
        changes["read_ms"] = read_ms
        until = credit_from + _ONE_MS * credited_ms
        # What this beat did not use stays available to the session's next (late) beat.
        credited_until, budget_from = until, min(now, until)
    unreported_ms = state.unreported_ms + credited_ms
    if unreported_ms >= 300_000:
        _report_credited(user, state, unreported_ms)
        unreported_ms = 0
    coverage_bp, position_ms = state.coverage_bp, state.position_ms
    lesson_done, course_done = _beat_completion(
        user, state, changes, state.credited_segments, coverage_bp, read_ms, position_ms
    )
    beat_rows.write_straight(
        state,
        now,
        seq,
        budget_from,
        visible_ms,
        credited_ms,
        unreported_ms,
        changes,
        credited_until,
        beijing_day(now),
        (
            state.session_id,
            user.id,
            state.lesson_id,
            seq,
            wall_start,
            now,
            [],
            [],
            visible_ms,
            credited_ms,
            label,
            reasons,
            client,
            utcnow(),
        ),
    )
    return BeatResult(
        True, False, credited_ms, coverage_bp, position_ms, lesson_done, course_done, label, answer=answer
    )


def record_beat(session_id: str, user: User | Principal, raw: Any) -> BeatResult:
    """Validate, assess and credit one heartbeat; commits nothing (the view commits).

    The session, progress and clock rows are read and written by Core statements
    (``beat_rows``: one locked read, one write), not as ORM objects.
    """
    straight = _straight_beat(raw) if STRAIGHT else None
    if straight is not None:
        seq, visible_ms, client, made_at = straight
        state = _beat_state(session_id, user, seq)
        if state.kind == LessonKind.DOCUMENT and seq > state.last_seq:
            now = utcnow()
            if made_at is None or now - made_at <= _hours(beat_tx.config()["LMS_BEAT_LATE_WINDOW_HOURS"]):
                return _record_straight(state, user, seq, visible_ms, client, now)
        beat = _parse_beat(raw)  # valid (``_straight_beat`` took it): raises nothing
    else:
        beat = _parse_beat(raw)
        state = _beat_state(session_id, user, beat["seq"])
    return _record_general(state, user, beat)


def _record_general(state: beat_rows.BeatState, user: User | Principal, beat: dict[str, Any]) -> BeatResult:
    """``record_beat`` for any valid beat: the reference the straight path is kept equal to."""
    # The lesson's kind as read (a ``str``): ``LessonKind`` is a ``StrEnum``, so it compares
    # equal to its members without an enum look-up per beat.
    kind: str = state.kind
    now = utcnow()
    config = beat_tx.config()
    window = _hours(config["LMS_BEAT_LATE_WINDOW_HOURS"])
    if "made_at" in beat and now - beat["made_at"] > window:
        # Made more than the late window ago (a queue left on a device for days): it earns
        # nothing, and is kept as evidence; the view answers 422 after this is committed.
        _refuse(state, user, beat, "late", now)
        return BeatResult(False, False, 0, 0, 0, False, False, VOID, refused="late")
    if beat["seq"] <= state.last_seq:
        # A retry of a beat we already have (network retry, pagehide + unload): acknowledged,
        # earns nothing, and kept as evidence (an older seq than the last is a replay). Not
        # kept: the beat that ended the session, again. The player sends its ``terminate`` as
        # the page goes away, and when the answer has not reached the page by then (a busy
        # server, a slow network) the next lesson page re-sends it from the device's queue: a
        # refused row, an evidence line and a day replay (``learning.beat_refused``) for each
        # would record the player's protocol, not a retry or a replay, and add work to a
        # platform that is already slow.
        repeat = beat["seq"] == state.last_seq
        if not (repeat and state.ended_at is not None):
            _refuse(state, user, beat, "repeat" if repeat else "replay", now)
        completed = state.status == ProgressStatus.COMPLETED
        return BeatResult(False, True, 0, state.coverage_bp, state.position_ms, completed, False, CREDIT)

    max_gap = _seconds_delta(config["LMS_BEAT_MAX_GAP_SECONDS"])
    wall_start = max(state.budget_from or state.last_beat_at, now - max_gap)
    # The person's budget: only time after their clock, whichever tab or device spent it.
    credit_from = max(wall_start, state.credited_until)
    has_media = state.media_id is not None
    duration = state.duration_ms if has_media else None
    if kind == LessonKind.VIDEO:
        claimed = segs.normalise(beat["claimed"], 0, duration)
    elif kind == LessonKind.DOCUMENT and beat["visible_ms"] > 0:
        claimed = [(0, beat["visible_ms"])]  # reading time, judged like viewing
    else:
        claimed = []
    claim = IntervalClaim.of(
        user_id=user.id,
        lesson_id=state.lesson_id,
        session_id=state.session_id,
        seq=beat["seq"],
        lesson_kind=kind,
        event=beat["event"],
        wall_start=wall_start,
        wall_end=now,
        claimed=tuple(claimed),
        position_ms=beat["position_ms"],
        media_duration_ms=duration,
        bytes_served=state.bytes_served if has_media else None,
        client=beat["client"],
        visible_ms=beat["visible_ms"],
        credit_from=credit_from,
        session_started_at=state.started_at,
        media_size=state.size_bytes if has_media else None,
        course_id=state.course_id,
        previous_seq=state.last_seq,
    )
    # Clock jitter between the browser's timer and ours: one second, lent once per
    # person (the clock moves past ``now`` and the next beat pays it back), never
    # once per beat, so a burst of beats cannot add it up.
    tolerance_ms = 1000
    budget_ms = max(0, span_ms(now - credit_from) + tolerance_ms)

    credited_ms = 0
    credited: list[segs.Segment] = []
    label = CREDIT
    reasons: list[dict[str, Any]] = []
    answer = None
    if claimed:
        credited, credited_ms, label, reasons, answer = _assess(claim, budget_ms)
    # The progress columns that change (the ORM wrote only those, and no UPDATE when none did).
    changes: dict[str, Any] = {}
    segments, coverage_bp, read_ms = state.credited_segments, state.coverage_bp, state.read_ms
    if kind == LessonKind.VIDEO:
        segments = [list(s) for s in segs.union(state.credited_segments, credited)]
        coverage_bp = segs.coverage_bp(segs.normalise(segments), duration or 0)
        if segments != state.credited_segments:
            changes["credited_segments"] = segments
        if coverage_bp != state.coverage_bp:
            changes["coverage_bp"] = coverage_bp
    elif kind == LessonKind.DOCUMENT:
        read_ms += credited_ms
        if credited_ms:
            changes["read_ms"] = read_ms
        credited = []  # reading time is no media range
    credited_until = None
    if credited_ms:
        credited_until = credit_from + _ONE_MS * credited_ms
        # What this beat did not use stays available to the session's next (late) beat.
        budget_from = min(now, credited_until)
    else:
        budget_from = now
    position_ms = state.position_ms
    if beat["position_ms"] and (duration is None or beat["position_ms"] <= duration):
        position_ms = beat["position_ms"]
        if position_ms != state.position_ms:
            changes["position_ms"] = position_ms

    event = beat["event"]
    video_event = kind == LessonKind.VIDEO and event in VIDEO_EVENTS
    if video_event or event == "terminate":
        # These events carry the enrolment's registration (their xAPI statements' context):
        # read for them only, not by every beat's locked read.
        common = {
            "lesson_id": state.lesson_id,
            "registration": _registration(state.enrolment_id),
            "session_id": state.session_id,
        }
        lesson_ref: dict[str, Any] = {
            "object_type": "lessons",
            "object_id": state.lesson_id,
            "course_id": state.course_id,
        }
    if video_event:
        payload: dict[str, Any] = {**common, "time": beat["position_ms"] / 1000}
        if event in ("pause", "ended"):
            payload.update(
                played_segments=segs.to_xapi(segs.normalise(segments)),
                progress=round(coverage_bp / 10000, 4),
                length=(duration or 0) / 1000,
            )
        if event == "seeked":
            payload.update(time_from=beat.get("time_from", 0), time_to=beat.get("time_to", beat["position_ms"] / 1000))
        emit(VIDEO_EVENTS[event], actor=user, payload=payload, **lesson_ref)
    ended_at = None
    if event == "terminate":
        ended_at = now
        duration_s = round((now - state.started_at).total_seconds(), 1)
        emit(
            "lesson.terminated",
            actor=user,
            payload={**common, "time": beat["position_ms"] / 1000, "duration_s": duration_s},
            **lesson_ref,
        )
    unreported_ms = state.unreported_ms + credited_ms
    claimed_ms = segs.total(claimed)
    if unreported_ms and (event != "heartbeat" or unreported_ms >= 300_000):
        _report_credited(user, state, unreported_ms)
        unreported_ms = 0

    # Decided before the write: a completion's two progress columns go with the beat's own
    # (one UPDATE of the row, in the round's one statement on the group path).
    lesson_done, course_done = _beat_completion(user, state, changes, segments, coverage_bp, read_ms, position_ms)
    beat_rows.write(
        beat_rows.BeatWrite(
            state=state,
            now=now,
            seq=beat["seq"],
            budget_from=budget_from,
            claimed_total_ms=claimed_ms,
            credited_ms=credited_ms,
            unreported_ms=unreported_ms,
            ended_at=ended_at,
            progress=changes,
            credited_until=credited_until,
            day=beijing_day(now),
            interval={
                "session_id": state.session_id,
                "user_id": user.id,
                "lesson_id": state.lesson_id,
                "seq": beat["seq"],
                "wall_start": wall_start,
                "wall_end": now,
                "claimed_segments": [list(s) for s in claimed] if kind == LessonKind.VIDEO else [],
                "credited_segments": [list(s) for s in credited],
                "claimed_ms": claimed_ms if kind == LessonKind.VIDEO else beat["visible_ms"],
                "credited_ms": credited_ms,
                "verdict": label,
                "reasons": reasons,
                "client": beat["client"],
                "created_at": utcnow(),
            },
        )
    )
    return BeatResult(
        True, False, credited_ms, coverage_bp, position_ms, lesson_done, course_done, label, answer=answer
    )


def _beat_completion(
    user: User | Principal,
    state: beat_rows.BeatState,
    changes: dict[str, Any],
    segments: list[list[int]],
    coverage_bp: int,
    read_ms: int,
    position_ms: int,
) -> tuple[bool, bool]:
    """``evaluate_completion`` for a beat, from the values the beat read and decided, without
    ORM objects: the verdict hooks get transient copies of the lesson and progress (built only
    when the rule is newly met), the completion's columns join the beat's progress ``changes``
    (written by the beat's own write), its events go with the beat's, and the course's check
    is one read. Loading the three rows as ORM objects and flushing the progress row cost
    ~3.9 ms of CPU per completion, and on the group path cut the round's write in two
    (docs/benchmarks.md, "a lesson's completion on the group path")."""
    if state.status == ProgressStatus.COMPLETED:
        return True, False
    met = completion_rule_met(state.kind, coverage_bp, read_ms, state.completion_threshold_pct, state.min_read_seconds)
    if not met:
        return False, False
    # Transient copies filled as the ORM's loader fills a row (``transient_copy``): the
    # constructors' attribute events cost ~60 µs of CPU per completion.
    lesson = transient_copy(
        Lesson,
        {
            "id": state.lesson_id,
            "course_id": state.course_id,
            "kind": LessonKind(state.kind),
            "media_id": state.media_id,
            "completion_threshold_pct": state.completion_threshold_pct,
            "min_read_seconds": state.min_read_seconds,
        },
    )
    progress = transient_copy(
        LessonProgress,
        {
            "id": state.progress_id,
            "user_id": state.user_id,
            "lesson_id": state.lesson_id,
            "course_id": state.course_id,
            "position_ms": position_ms,
            "credited_segments": segments,
            "coverage_bp": coverage_bp,
            "read_ms": read_ms,
            "status": ProgressStatus(state.status),
            "completed_at": None,
        },
    )
    if _held(user, lesson, progress):
        return False, False
    registration, enrolment_done, required, hours, others_done, total = _completion_facts(state)
    now = utcnow()
    changes["status"] = ProgressStatus.COMPLETED.value
    changes["completed_at"] = now
    _emit_lesson_completed(user, state.lesson_id, state.course_id, state.kind, registration)
    if enrolment_done or total == 0 or others_done + (1 if required else 0) < total:
        return True, False
    _complete_enrolment(state.enrolment_id, now)
    _emit_course_completed(user, state.course_id, registration, hours)
    return True, True


@functools.cache
def _completion_facts_statement() -> Any:
    """What a beat's completion reads, in one statement: the enrolment's registration and
    whether it is complete, whether the lesson is required, the course's hours, and
    ``course_counts`` without the lesson itself (the beat completes it: its row is written
    with the beat's). One person's rows: a round holds no other write of theirs."""
    lesson_id = bindparam("lesson_id", type_=Integer)
    counted = aliased(Lesson)
    total = (
        select(func.count())
        .select_from(counted)
        .where(counted.course_id == Lesson.course_id, counted.required.is_(True))
        .scalar_subquery()
    )
    others = (
        select(func.count())
        .select_from(LessonProgress)
        .join(counted, counted.id == LessonProgress.lesson_id)
        .where(
            LessonProgress.user_id == Enrolment.user_id,
            counted.course_id == Lesson.course_id,
            counted.required.is_(True),
            LessonProgress.status == bindparam("completed", type_=String),
            LessonProgress.lesson_id != lesson_id,
        )
        .scalar_subquery()
    )
    return (
        select(
            Enrolment.registration,
            Enrolment.completed_at.is_not(None),
            Lesson.required,
            Course.nominal_hours_centi,
            others,
            total,
        )
        .select_from(Enrolment)
        .join(Lesson, Lesson.id == lesson_id)
        .join(Course, Course.id == Lesson.course_id)
        .where(Enrolment.id == bindparam("enrolment_id", type_=Integer))
    )


@functools.cache
def _enrolment_complete_statement() -> Any:
    t = cast(Table, Enrolment.__table__)
    return (
        update(t)
        .where(t.c.id == bindparam("enrolment_id", type_=Integer))
        .values(completed_at=bindparam("completed_at", type_=t.c.completed_at.type))
    )


@functools.cache
def _pg_text(build: Any) -> str:
    """A statement built once (``build()``) as psycopg's text, for the beat's own cursor."""
    from sqlalchemy.dialects.postgresql import psycopg

    return str(build().compile(dialect=psycopg.dialect()))  # type: ignore[no-untyped-call]


#: Where a round's completion facts are kept (``batch.read``): ``(enrolment id, lesson id)`` to
#: :func:`_completion_facts`'s tuple, read by :func:`completion_group_read`.
_FACTS = "lms.completion_facts"

#: :func:`_completion_facts_statement` for many ``(enrolment id, lesson id)`` pairs (a round's):
#: the same columns and counts, one row per pair found.
_PG_FACTS_MANY = (
    "SELECT k.enrolment_id, k.lesson_id, e.registration, e.completed_at IS NOT NULL, l.required, "
    "c.nominal_hours_centi, "
    "(SELECT count(*) FROM lesson_progress AS p JOIN lessons AS o ON o.id = p.lesson_id "
    "WHERE p.user_id = e.user_id AND o.course_id = l.course_id AND o.required IS true "
    "AND p.status = 'completed' AND p.lesson_id != k.lesson_id), "
    "(SELECT count(*) FROM lessons AS o WHERE o.course_id = l.course_id AND o.required IS true) "
    "FROM unnest(%(e)s::bigint[], %(l)s::bigint[]) AS k(enrolment_id, lesson_id) "
    "JOIN enrolments AS e ON e.id = k.enrolment_id JOIN lessons AS l ON l.id = k.lesson_id "
    "JOIN courses AS c ON c.id = l.course_id"
)

#: How far past ``now`` a round's beat may be recorded and still find its completion read
#: ahead (the round's other beats run first): a beat recorded later that meets its rule
#: reads for itself, as a beat outside a round does.
_READ_AHEAD_SLACK_MS = 5_000


def completion_group_read(batch: Any, states: Iterable[beat_rows.BeatState]) -> None:
    """A group round's completions read ahead (PostgreSQL): the beats that may meet their
    lesson's rule in this round, bounded from the rows the round read (a beat credits at
    most the wall time since its person's clock, and at most ``LMS_BEAT_MAX_GAP_SECONDS``,
    plus the clock's one second), get their course facts in one statement, and each plugin
    may read what its ``lms_completion_verdict`` needs for them in one go
    (``lms_completion_group_read``). Two statements a round in all, not two per completing
    beat (docs/benchmarks.md, "a round's completions with one read").

    What is read is one person's rows (their enrolment and their other lessons' progress),
    which no other beat of the round writes (a round has one beat per person); a beat whose
    completion was not read ahead reads for itself, as before."""
    now = utcnow()
    max_gap_ms = int(float(beat_tx.config()["LMS_BEAT_MAX_GAP_SECONDS"]) * 1000)
    may: list[beat_rows.BeatState] = []
    for st in states:
        if st.status == ProgressStatus.COMPLETED:
            continue
        gain = min(max(0, span_ms(now - st.credited_until)), max_gap_ms) + 1000 + _READ_AHEAD_SLACK_MS
        if st.kind == LessonKind.DOCUMENT:
            if st.read_ms + gain >= st.min_read_seconds * 1000:
                may.append(st)
        elif st.kind == LessonKind.VIDEO:
            duration = st.duration_ms if st.media_id is not None else None
            if not duration or st.coverage_bp + gain * 10_000 // duration + 1 >= st.completion_threshold_pct * 100:
                may.append(st)
    if not may:
        return
    params = {
        "e": pg_arrays.literal([st.enrolment_id for st in may]),
        "l": pg_arrays.literal([st.lesson_id for st in may]),
    }
    cur = beat_rows.cursor()
    cur.execute(_PG_FACTS_MANY, params, prepare=True)
    batch.read[_FACTS] = {
        (enrolment_id, lesson_id): (str(registration), bool(done), bool(required), int(hours or 0), int(o), int(t))
        for enrolment_id, lesson_id, registration, done, required, hours, o, t in cur.fetchall()
    }
    beat_tx.plugin_manager().hook.lms_completion_group_read(
        batch=batch, lessons=sorted({(st.user_id, st.lesson_id) for st in may})
    )


def _completion_facts(state: beat_rows.BeatState) -> tuple[str, bool, bool, int, int, int]:
    batch = beat_group.active() if beat_rows.is_pg() else None
    if batch is not None:
        ahead = batch.read.get(_FACTS)
        if ahead is not None:
            found = ahead.get((state.enrolment_id, state.lesson_id))
            if found is not None:
                return found
    params = {"lesson_id": state.lesson_id, "enrolment_id": state.enrolment_id, "completed": "completed"}
    if beat_rows.is_pg():
        # The beat's cursor, not ``beat_rows._pg``: the read names ``lesson_progress`` but needs
        # none of the round's kept writes (its person's other lessons' rows are not among
        # them), so it does not set off their write in the middle of the round.
        cur = beat_rows.cursor()
        cur.execute(_pg_text(_completion_facts_statement), params, prepare=True)
        row = cur.fetchone()
    else:
        row = db.session.connection().execute(_completion_facts_statement(), params).one()
    registration, done, required, hours, others, total = row
    return str(registration), bool(done), bool(required), int(hours or 0), int(others), int(total)


#: The core's enrolment completions in a round's batch (``beat_group.Batch``).
_ENROLMENTS = "core.enrolments"

#: :func:`_enrolment_complete_statement` for a round's completed enrolments, one row each.
_PG_COMPLETE_MANY = (
    "UPDATE enrolments AS t SET completed_at = v.completed_at "
    "FROM unnest(%(e)s::bigint[], %(at)s::timestamptz[]) AS v(id, completed_at) WHERE t.id = v.id"
)


def _complete_many(items: list[tuple[int, dt.datetime]]) -> None:
    """A round's completed enrolments (:func:`_complete_enrolment`) in one statement. A round
    has one beat per person, so an enrolment comes at most once."""
    params = {
        "e": pg_arrays.literal([enrolment_id for enrolment_id, _ in items]),
        "at": pg_arrays.literal([at for _, at in items]),
    }
    beat_rows.cursor().execute(_PG_COMPLETE_MANY, params, prepare=True)


def _complete_enrolment(enrolment_id: int, at: dt.datetime) -> None:
    """Mark the enrolment complete. In a group round (PostgreSQL) the update is kept for the
    round's write, one statement for all the round's course completions rather than one each
    (docs/benchmarks.md, "a round's course completions in one statement"): kept under the
    ``enrolments`` table, so any statement that names the table later in the round (another
    beat's ORM read, say) writes it first and sees the enrolment complete; the round's own
    course facts (``_completion_facts``) read only their person's enrolment, which no other
    beat of the round completes, and the round is written before the next round reads."""
    params = {"enrolment_id": enrolment_id, "completed_at": at}
    if beat_rows.is_pg():
        batch = beat_group.active()
        if batch is not None:
            batch.add(_ENROLMENTS, _complete_many, (enrolment_id, at), ("enrolments",))
        else:
            beat_rows.cursor().execute(_pg_text(_enrolment_complete_statement), params, prepare=True)
    else:
        db.session.connection().execute(_enrolment_complete_statement(), params)
    loaded = beat_tx.session().identity_map.get((Enrolment, (enrolment_id,), None))
    if loaded is not None:  # an ORM copy already in the session (a test, a demo) is stale now
        beat_tx.session().expire(loaded)


@functools.cache
def _refused_insert() -> Any:
    return insert(cast(Table, RefusedBeat.__table__))


def _refuse(
    state: beat_rows.BeatState, user: User | Principal, beat: dict[str, Any], reason: str, now: dt.datetime
) -> None:
    """Keep a beat that earns nothing (repeat, replay, late) as evidence, and say so in the log.

    The event (in this transaction) lets a plugin add the refusal to the person-day's
    evidence lines once committed.
    """
    made_at = beat.get("made_at")
    kept = {k: beat[k] for k in ("seq", "event", "position_ms", "claimed", "visible_ms", "client")}
    db.session.connection().execute(
        _refused_insert(),
        {
            "session_id": state.session_id,
            "user_id": state.user_id,
            "lesson_id": state.lesson_id,
            "seq": beat["seq"],
            "reason": reason,
            "received_at": now,
            "made_at": made_at,
            "beat": kept,
        },
    )
    emit(
        "learning.beat_refused",
        actor=user,
        object_type="learning_sessions",
        object_id=state.session_id,
        course_id=state.course_id,
        payload={
            "user_id": state.user_id,
            "lesson_id": state.lesson_id,
            "seq": beat["seq"],
            "reason": reason,
            "received_at": now.isoformat(),
            "made_at": made_at.isoformat() if made_at else None,
        },
    )


def lesson_rule_met(lesson: Lesson, progress: LessonProgress) -> bool:
    """The core's completion rule for a lesson kind (quizzes and surveys complete elsewhere)."""
    return completion_rule_met(
        lesson.kind, progress.coverage_bp, progress.read_ms, lesson.completion_threshold_pct, lesson.min_read_seconds
    )


def completion_rule_met(kind: str, coverage_bp: int, read_ms: int, threshold_pct: int, min_read_seconds: int) -> bool:
    """:func:`lesson_rule_met` from the values (a beat has them without ORM objects)."""
    if kind == LessonKind.VIDEO:
        return coverage_bp >= threshold_pct * 100
    if kind == LessonKind.DOCUMENT:
        return read_ms >= min_read_seconds * 1000
    return False


def _held(user: User | Principal, lesson: Lesson, progress: LessonProgress) -> bool:
    """Does any ``lms_completion_verdict`` hold the completion?"""
    answers = beat_tx.plugin_manager().hook.lms_completion_verdict(user=user, lesson=lesson, progress=progress)
    return any(a is False for a in answers)


def _emit_lesson_completed(
    user: User | Principal, lesson_id: int, course_id: int, kind: str, registration: str
) -> None:
    emit(
        "lesson.completed",
        actor=user,
        object_type="lessons",
        object_id=lesson_id,
        course_id=course_id,
        payload={"lesson_id": lesson_id, "registration": registration, "kind": str(kind)},
    )


def _emit_course_completed(user: User | Principal, course_id: int, registration: str, hours_centi: int) -> None:
    emit(
        "course.completed",
        actor=user,
        object_type="courses",
        object_id=course_id,
        course_id=course_id,
        payload={"registration": registration, "nominal_hours_centi": hours_centi},
    )


def evaluate_completion(
    user: User | Principal,
    lesson: Lesson,
    progress: LessonProgress,
    enrolment: Enrolment,
    *,
    rule_met: bool | None = None,
) -> tuple[bool, bool]:
    """Complete the lesson (and the course) if the rule is met and no plugin holds it."""
    if progress.status == ProgressStatus.COMPLETED:
        return True, False
    met = lesson_rule_met(lesson, progress) if rule_met is None else rule_met
    if not met:
        return False, False
    if _held(user, lesson, progress):
        return False, False
    progress.status = ProgressStatus.COMPLETED
    progress.completed_at = utcnow()
    _emit_lesson_completed(user, lesson.id, lesson.course_id, lesson.kind, enrolment.registration)
    db.session.flush()
    return True, check_course_completion(user, enrolment)


def check_course_completion(user: User | Principal, enrolment: Enrolment) -> bool:
    """Mark the enrolment complete when every required lesson is complete."""
    if enrolment.completed_at is not None:
        return False
    done, total = course_counts(user.id, enrolment.course_id)
    if total == 0 or done < total:
        return False
    enrolment.completed_at = utcnow()
    course = db.session.get(Course, enrolment.course_id)
    _emit_course_completed(
        user, enrolment.course_id, enrolment.registration, course.nominal_hours_centi if course else 0
    )
    return True


def course_counts(user_id: int, course_id: int) -> tuple[int, int]:
    """(completed required lessons, required lessons) for one learner and course."""
    done, total = db.session.execute(_course_counts_statement(), {"user_id": user_id, "course_id": course_id}).one()
    return int(done), int(total)


@functools.cache
def _course_counts_statement() -> Any:
    """``course_counts``'s two counts in one statement built once (a lesson's completion asks
    it; built on each call, the two selects cost more CPU than PostgreSQL spends on them)."""
    course_id = bindparam("course_id", type_=Integer)
    total = (
        select(func.count())
        .select_from(Lesson)
        .where(Lesson.course_id == course_id, Lesson.required.is_(True))
        .scalar_subquery()
    )
    done = (
        select(func.count())
        .select_from(LessonProgress)
        .join(Lesson, Lesson.id == LessonProgress.lesson_id)
        .where(
            LessonProgress.user_id == bindparam("user_id", type_=Integer),
            Lesson.course_id == course_id,
            Lesson.required.is_(True),
            LessonProgress.status == ProgressStatus.COMPLETED,
        )
        .scalar_subquery()
    )
    return select(done, total)


def progress_by_course(user_id: int, course_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(done, total) required lessons per course, in one grouped query.

    One query, not two: the dashboard calls this on every view. A lesson has at
    most one progress row per user (unique constraint), so counting the joined
    completed rows counts completed lessons.
    """
    if not course_ids:
        return {}
    rows = db.session.execute(
        select(Lesson.course_id, func.count(Lesson.id), func.count(LessonProgress.id))
        .outerjoin(
            LessonProgress,
            and_(
                LessonProgress.lesson_id == Lesson.id,
                LessonProgress.user_id == user_id,
                LessonProgress.status == ProgressStatus.COMPLETED,
            ),
        )
        .where(Lesson.course_id.in_(course_ids), Lesson.required.is_(True))
        .group_by(Lesson.course_id)
    ).all()
    counts = {cid: (int(done), int(total)) for cid, total, done in rows}
    return {cid: counts.get(cid, (0, 0)) for cid in course_ids}


def year_total_expr(user_id: Any, first_day: Any, last_day: Any) -> Any:
    """SQL for the credited milliseconds between two Beijing days (inclusive), from the daily totals.

    The one definition of "study hours in a period": the dashboard binds it into its
    cached statement, reports call it with values.
    """
    return (
        select(func.coalesce(func.sum(DailyTotal.credited_ms), 0))
        .where(DailyTotal.user_id == user_id, DailyTotal.day >= first_day, DailyTotal.day <= last_day)
        .scalar_subquery()
    )


def credited_ms_in_year(user_id: int, year: int) -> int:
    """The year's credited study (Beijing calendar), from the daily totals."""
    return int(
        db.session.execute(select(year_total_expr(user_id, dt.date(year, 1, 1), dt.date(year, 12, 31)))).scalar_one()
    )


def new_registration() -> str:
    return str(uuid.uuid4())
