"""Person-day verdicts: credited, deducted, held for audit, or void, with a review score.

Two paths reach the same numbers:

* online, each judged beat adds to its day's tallies (``record_online``), so a day
  that crosses the hold threshold holds completion at once;
* ``assess_day`` replays the day's raw beats through the same ELS function,
  rebuilds the tallies, writes the evidence lines and publishes
  ``anti_idle.day_assessed`` when the figures changed.

The verdict is derived from the tallies by one function (``derive``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import Date, Integer, String, bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError

from lms_core.db import UTCDateTime
from lms_core.events.services import emit
from lms_core.extensions import db
from lms_core.learning import beat_group, beat_tx, pg_arrays
from lms_core.learning import segments as segs
from lms_core.learning.models import RefusedBeat
from lms_core.learning.services import lock_clocks
from plugins.anti_idle import day_rules, els, state, state_pg
from plugins.anti_idle.events import DAY_ASSESSED, DAY_REVIEWED
from plugins.anti_idle.evidence import build_lines, refusal_lines
from plugins.anti_idle.inputs import (
    CHECK_LOOKBACK,
    STATE_COLUMNS,
    check_inputs,
    day_bounds,
    person_checks,
    prior_from,
)
from plugins.anti_idle.models import (
    CHECK_PASSED,
    CREDITED,
    DEDUCTED,
    HELD,
    VOID,
    AttentionCheck,
    Beat,
    DayLesson,
    DayVerdict,
    Evidence,
    Review,
)
from plugins.anti_idle.policy import PolicyVersion, current_policy, policy_by_version

#: Rules whose time is withheld as void (critical), held, or only tolerated.
VOID_RULES = frozenset({"R03", "R03e", "R14", "R07b"})
HOLD_RULES = frozenset({"R10a"})
_UNCOUNTED = VOID_RULES | HOLD_RULES
#: Credit re-published online at most every this much new credit (plus every change of verdict).
EMIT_EVERY_MS = 300_000


@dataclass
class Tally:
    """What a day's verdict is derived from (stored as ``DayVerdict.tally``)."""

    claimed_ms: int = 0
    credited_ms: int = 0
    cuts: dict[str, int] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    hidden_sessions: set[str] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)
    muted_ms: int = 0
    beats: int = 0
    #: Findings of the day rules (``day_rules.judge``) at the last day assessment; the
    #: online path keeps them until the next one.
    day_rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The checks lapsed and validly answered as that assessment judged them
    #: (``day_rules.horizon``); None: not known (a tally from before it was kept).
    horizon: dict[str, list[int]] | None = None

    def add(self, beat: Beat | Mapping[str, Any]) -> None:
        get = beat.get if isinstance(beat, Mapping) else (lambda k, d=None: getattr(beat, k, d))
        claimed = [tuple(s) for s in get("claimed", [])]
        claimed_ms = (
            segs.total(segs.normalise(claimed)) if get("lesson_kind") == "video" else sum(b - a for a, b in claimed)
        )
        self.add_judged(
            claimed_ms, int(get("credited_ms", 0)), get("cuts"), get("flags"), get("session_id"), get("client")
        )

    def add_judged(
        self,
        claimed_ms: int,
        credited_ms: int,
        cuts: Mapping[str, int] | None,
        flags: Iterable[str] | None,
        session_id: Any,
        client: Mapping[str, Any] | None,
    ) -> None:
        """``add`` for a judged beat whose claim is measured already (the bulk recompute's rows)."""
        self.claimed_ms += claimed_ms
        self.credited_ms += credited_ms
        self.beats += 1
        session = str(session_id)
        if cuts:
            for rule, amount in cuts.items():
                self.cuts[rule] = self.cuts.get(rule, 0) + int(amount)
            if cuts.get("R05"):
                self.hidden_sessions.add(session)
        if flags:
            self.flags.update(flags)
        if claimed_ms:
            self.sessions.add(session)
        if client and client.get("muted") is True:
            self.muted_ms += credited_ms

    def to_json(self) -> dict[str, Any]:
        # The sums that most beats move first, what few beats change after them: the person's
        # state row keeps this (``state.day_tally``), and PostgreSQL logs an update of a row in
        # place without the bytes that end both versions alike.
        return {
            "claimed_ms": self.claimed_ms,
            "credited_ms": self.credited_ms,
            "muted_ms": self.muted_ms,
            "beats": self.beats,
            "cuts": dict(sorted(self.cuts.items())),
            "flags": sorted(self.flags),
            "hidden_sessions": sorted(self.hidden_sessions),
            "sessions": sorted(self.sessions),
            "day_rules": self.day_rules,
            "horizon": self.horizon,
        }

    @classmethod
    def shared(cls, data: Mapping[str, Any]) -> Tally:
        """A tally read from ``to_json``'s output without copying its maps: for reading only
        (``derive``, ``_moved``), never changed; its ``cuts`` and ``day_rules`` are ``data``'s."""
        return cls(
            data["claimed_ms"],
            data["credited_ms"],
            data["cuts"],
            set(data["flags"]),
            set(data["hidden_sessions"]),
            set(data["sessions"]),
            data["muted_ms"],
            data["beats"],
            data["day_rules"],
            data["horizon"],
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tally:
        return cls(
            claimed_ms=int(data.get("claimed_ms", 0)),
            credited_ms=int(data.get("credited_ms", 0)),
            cuts={k: int(v) for k, v in (data.get("cuts") or {}).items()},
            flags=set(data.get("flags") or []),
            hidden_sessions=set(data.get("hidden_sessions") or []),
            sessions=set(data.get("sessions") or []),
            muted_ms=int(data.get("muted_ms", 0)),
            beats=int(data.get("beats", 0)),
            day_rules={str(k): dict(v) for k, v in (data.get("day_rules") or {}).items()},
            horizon=data.get("horizon"),
        )


@dataclass(slots=True)  # not frozen: a frozen init cost ~4 µs a beat; nothing changes one
class Derived:
    verdict: str
    score: int
    rules: list[str]
    credited_ms: int
    held_ms: int
    deducted_ms: int
    void_ms: int
    #: Score per rule, for the evidence lines.
    scores: dict[str, int]


#: ``scores_of``'s R10 threshold: a day claiming more scores (``derive`` skips ``scores_of``
#: for a day claiming no more and with nothing cut, flagged or found: one constant for both).
_R10_CLAIMED_MS = 12 * 3600 * 1000


def scores_of(t: Tally, policy: Mapping[str, Any]) -> dict[str, int]:
    """The SCORE of each distinct rule that fired on the day (design §3.4)."""
    s: dict[str, int] = {}
    cuts = t.cuts
    if cuts.get("R01", 0) >= 60_000:
        s["R01"] = 30
    if cuts.get("R03"):
        s["R03"] = 50
    if cuts.get("R14"):
        s["R14"] = 50
    if cuts.get("R04", 0) > 600_000:
        s["R04"] = 40
    if len(t.hidden_sessions) >= 3 and cuts.get("R05", 0) * 2 > t.claimed_ms:
        s["R05"] = 10
    if "R07b" in t.flags:
        s["R07b"] = 40
    if t.claimed_ms > _R10_CLAIMED_MS:
        s["R10"] = 30
    if "R11" in t.flags:
        s["R11"] = 40
    if "R13" in t.flags:
        s["R13"] = 25
    if cuts.get("R16", 0) >= 30_000:
        s["R16"] = 15
    if "R08b" in t.flags:
        s["R08b"] = 20
    if "R03b" in t.flags:  # a signature that does not match: someone altered or forged beats
        s["R03b"] = 50
    if "R13d" in t.flags:
        s["R13d"] = 25
    for rule, finding in t.day_rules.items():
        if int(finding.get("score", 0)) > 0:
            s[rule] = int(finding["score"])
    # Muting alone is never held against anyone; it only adds to a score of behaviour
    # (not to a shared device, which a training room also shows).
    if set(s) - {"R12", "R12d"} and t.credited_ms > 300_000 and t.muted_ms * 5 > t.credited_ms * 4:
        s["R06"] = 10
    return s


def derive(t: Tally, policy: Mapping[str, Any]) -> Derived:
    cuts = t.cuts  # empty on most days: the sums below are then 0 (derive runs on every beat)
    if not cuts and not t.flags and not t.day_rules and 0 <= t.claimed_ms <= _R10_CLAIMED_MS:
        # A day nothing was cut or flagged on, no day rule found anything and not claiming
        # over 12 hours: ``scores_of`` has nothing to score (each of its rules reads a cut, a
        # flag, a finding or the claim over 12 hours; R06 only adds to another), and no rule
        # names the day. Every beat of an honest day (tests/plugins/anti_idle/test_derive_plain.py).
        scores: dict[str, int] = {}
        score = 0
    else:
        scores = scores_of(t, policy)
        score = sum(scores.values())
    # The cuts' amounts are integers: summed over the day's cuts (one or two) rather than over
    # the rules, the same totals.
    void_ms = min(t.claimed_ms - t.credited_ms, sum([v for r, v in cuts.items() if r in VOID_RULES]) if cuts else 0)
    held_ms = min(
        t.claimed_ms - t.credited_ms - void_ms, sum([v for r, v in cuts.items() if r in HOLD_RULES]) if cuts else 0
    )
    credited = t.credited_ms
    deducted = max(0, t.claimed_ms - credited - void_ms - held_ms)
    counted = {r: v for r, v in cuts.items() if r not in _UNCOUNTED}
    if counted.get("R04", 0) <= int(policy["parallel_flag_seconds"]) * 1000:
        counted.pop("R04", None)  # a device handoff: counted once, not a deduction
    # Credit whose presence was never proven (R07h, day_rules.unverified) waits for an auditor.
    # Credit given while an offline check's new window was open, that no answer then
    # confirmed (R07o, day_rules.relief_lapsed): deducted, as R07 would have.
    findings = t.day_rules
    revoked = min(credited, sum(int(f.get("deduct_ms", 0)) for f in findings.values()) if findings else 0)
    credited, deducted = credited - revoked, deducted + revoked
    unverified = min(credited, sum(int(f.get("hold_ms", 0)) for f in findings.values()) if findings else 0)
    held_ms, credited = held_ms + unverified, credited - unverified
    if score >= int(policy["hold_score"]):
        held_ms, credited = held_ms + credited, 0
    if credited == 0 and held_ms == 0 and void_ms > 0:
        verdict = VOID
    elif held_ms > 0:
        verdict = HELD
    elif void_ms > 0 or revoked > 0 or any(counted.values()):
        verdict = DEDUCTED
    else:
        verdict = CREDITED
    rules = (
        sorted(set(cuts) | set(scores) | t.flags | set(t.day_rules)) if scores or cuts or t.flags or t.day_rules else []
    )
    return Derived(verdict, score, rules, credited, held_ms, deducted, void_ms, scores)


def _payload(v: DayVerdict) -> dict[str, Any]:
    return {
        "user_id": v.user_id,
        "day": v.day.isoformat(),
        "verdict": v.verdict,
        "credited_seconds": v.credited_ms // 1000,
        "held_seconds": v.held_ms // 1000,
        "deducted_seconds": v.deducted_ms // 1000,
        "policy_version": v.policy_version,
        "review_score": v.review_score,
    }


def _publish(v: DayVerdict) -> None:
    payload = _payload(v)
    # Marked published before ``emit``, whose flush then writes the row once (set after it,
    # the tally went out in a second UPDATE of the row at the commit).
    v.tally = {**v.tally, "published": payload}
    emit(
        DAY_ASSESSED,
        actor=None,
        object_type=DayVerdict.__tablename__,
        object_id=v.id,
        org_unit_id=_org_of(v.user_id),
        payload=dict(payload),
    )


def _org_of(user_id: int) -> int | None:
    from lms_core.accounts.models import User

    return db.session.execute(select(User.org_unit_id).where(User.id == user_id)).scalar_one_or_none()


def _apply(v: DayVerdict, t: Tally, policy: PolicyVersion) -> None:
    d = derive(t, policy.params)
    v.verdict, v.review_score, v.rules = d.verdict, d.score, d.rules
    v.claimed_ms, v.credited_ms, v.held_ms = t.claimed_ms, d.credited_ms, d.held_ms
    v.deducted_ms, v.void_ms, v.beats = d.deducted_ms, d.void_ms, t.beats
    v.policy_version = max(v.policy_version or 0, policy.version)
    v.tally = {**t.to_json(), "published": (v.tally or {}).get("published")}
    v.computed_at = dt.datetime.now(dt.UTC)


def _verdict_row(user_id: int, day: dt.date) -> DayVerdict:
    _day_written(user_id)
    stmt = select(DayVerdict).where(DayVerdict.user_id == user_id, DayVerdict.day == day)
    row = db.session.execute(stmt).scalar_one_or_none()
    if row is not None:
        return row
    try:
        with db.session.begin_nested():
            db.session.add(DayVerdict(user_id=user_id, day=day, verdict=CREDITED, tally={}))
    except IntegrityError:
        pass
    return db.session.execute(stmt).scalar_one()


#: Events after which the day verdict row is brought up to date at once (the learner
#: stopped: the day's figures they and the auditors see are current).
FOLD_EVENTS = frozenset({"pause", "ended", "terminate"})


def _day_tally(user_id: int, day: dt.date) -> dict[str, Any]:
    """The online tally of a person-day as its day verdict row holds it (start of the day's
    first beat, or after an assessment rewrote the row).

    Columns, not ORM objects: in a group round the fold writes the row by a Core statement
    (``state_pg.keep_fold``), which an object left in the session's identity map would not see.
    """
    v = db.session.execute(_day_row_statement(), {"user_id": user_id, "day": day}).first()
    lessons: dict[str, list[int]] = {}
    if v is not None:
        for lesson_id, claimed, credited, deducted in db.session.execute(_day_lessons_statement(), {"vid": v.id}):
            lessons[str(lesson_id)] = [claimed, credited, deducted]
    return {  # the parts most beats change first (``Tally.to_json``)
        "lessons": lessons,
        "derived": None,
        "tally": _online_tally(v.tally if v is not None else None),
        "published": _marks((v.tally or {}).get("published")) if v is not None else None,
        "policy_version": (v.policy_version or 0) if v is not None else 0,
        "verdict_id": v.id if v is not None else None,
        "dirty": False,
    }


# The online tally is written with the person's state row on every beat (``state.day_tally``),
# so it keeps only what the online path reads; the day verdict row keeps the rest
# (docs/benchmarks.md, "The person state's day tally, smaller").

#: What the online tally keeps of a day rule's finding: what ``derive`` and ``scores_of``
#: read (``score``, ``deduct_ms``, ``hold_ms``), and the ``end`` of the findings ``_moved``
#: reads it of (:data:`_TAKEN_BACK`'s). The day verdict row
#: keeps each finding whole (its span, parameters and beats, for the evidence and the
#: auditors), and a fold leaves the row's findings as they are (``fold``,
#: ``state_pg._FOLD_MANY``): only an assessment finds them, and whatever rewrites the row
#: drops the online tally, so while it lives the row's findings are the ones it was cut from.
_FINDING_KEYS = ("score", "deduct_ms", "hold_ms")

#: The day rules that take credit back over a window (``_moved`` reads their findings' ``end``).
_TAKEN_BACK = ("R07h", "R07o")

#: What the online tally keeps of the day's last published event (``published``): the figures
#: ``record_online`` compares the day's new ones with to know when to publish again. The
#: event itself is the day verdict row's (``tally["published"]``), never read from here.
_MARK_KEYS = ("verdict", "credited_seconds", "held_seconds")


def _online_tally(row_tally: Mapping[str, Any] | None) -> dict[str, Any]:
    """A day verdict row's ``tally`` as the online tally keeps it: as ``Tally.to_json`` writes
    it (its keys in that order, not the order PostgreSQL's ``jsonb`` gave them back; without the
    row's ``published``), each day rule's finding cut to :data:`_FINDING_KEYS` (and ``end`` for
    :data:`_TAKEN_BACK`). An empty row's stays empty (a day not yet assessed)."""
    if not row_tally:
        return {}
    tally = Tally.from_json(row_tally).to_json()
    if tally["day_rules"]:
        tally["day_rules"] = {rule: _cut_finding(rule, finding) for rule, finding in tally["day_rules"].items()}
    return tally


def _cut_finding(rule: str, finding: Mapping[str, Any]) -> dict[str, Any]:
    keys = (*_FINDING_KEYS, "end") if rule in _TAKEN_BACK else _FINDING_KEYS
    return {key: finding[key] for key in keys if key in finding}


def _marks(published: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A published event's :data:`_MARK_KEYS` (None: the day was never published)."""
    if not published:
        return None
    return {key: published[key] for key in _MARK_KEYS if key in published}


def _figures(derived: Sequence[Any] | Mapping[str, Any]) -> tuple[str, int, list[str], int, int, int, int]:
    """The online tally's ``derived`` (``record_online``): verdict, score, rules, credited,
    held, deducted and void ms. A list; a state row written before it was one holds a dict."""
    if isinstance(derived, Mapping):
        d = derived
        return (d["verdict"], d["score"], d["rules"], d["credited_ms"], d["held_ms"], d["deducted_ms"], d["void_ms"])
    verdict, score, rules, credited, held, deducted, void = derived
    return verdict, score, rules, credited, held, deducted, void


@functools.cache
def _day_row_statement() -> Any:
    return select(DayVerdict.id, DayVerdict.tally, DayVerdict.policy_version).where(
        DayVerdict.user_id == bindparam("user_id", type_=Integer), DayVerdict.day == bindparam("day", type_=Date)
    )


@functools.cache
def _day_lessons_statement() -> Any:
    dl = DayLesson
    # The ORM load's predicate and (no) order: the state row keeps the lessons in this order.
    return select(dl.lesson_id, dl.claimed_ms, dl.credited_ms, dl.deducted_ms).where(
        dl.day_verdict_id == bindparam("vid", type_=Integer)
    )


def fold(user_id: int, day: dt.date, online: dict[str, Any]) -> DayVerdict:
    """Write a person-day's online tally (``state.day_tally``) into its day verdict and lesson rows.

    The figures are those ``derive`` gave at the day's last beat, under that beat's
    policy, exactly as writing them on every beat did.
    """
    _day_written(user_id)
    v = db.session.get(DayVerdict, online["verdict_id"]) if online.get("verdict_id") else None
    if v is None:
        v = _verdict_row(user_id, day)
    t = Tally.from_json(online["tally"])
    if online["derived"] is not None:
        verdict, score, rules, credited, held, deducted, void = _figures(online["derived"])
        v.verdict, v.review_score, v.rules = verdict, score, list(rules)
        v.credited_ms, v.held_ms, v.deducted_ms, v.void_ms = credited, held, deducted, void
    v.claimed_ms, v.beats = t.claimed_ms, t.beats
    v.policy_version = max(v.policy_version or 0, int(online["policy_version"]))
    row = v.tally or {}
    # The row's day rule findings, whole (the online tally keeps them cut: ``_FINDING_KEYS``).
    v.tally = {**t.to_json(), "day_rules": row.get("day_rules") or {}, "published": row.get("published")}
    v.computed_at = dt.datetime.now(dt.UTC)
    rows = {
        dl.lesson_id: dl
        for dl in db.session.execute(select(DayLesson).where(DayLesson.day_verdict_id == v.id)).scalars()
    }
    for key, (claimed, credited, deducted) in online["lessons"].items():
        dl = rows.get(int(key))
        if dl is None:
            dl = DayLesson(day_verdict_id=v.id, user_id=user_id, lesson_id=int(key))
            db.session.add(dl)
        dl.claimed_ms, dl.credited_ms, dl.deducted_ms = claimed, credited, deducted
    online["verdict_id"], online["dirty"] = v.id, False
    return v


def record_online(
    beat: Mapping[str, Any],
    policy: PolicyVersion,
    person: Any,
    before_replay: Callable[[], None] | None = None,
    checks: Sequence[els.CheckInput] | None = None,
    day: dt.date | None = None,
) -> None:
    """Add one judged beat (its column values) to its day's online tally, kept in the person's state row.

    The person's beats are serialised by the core's clock lock. The tally lives in
    ``person.day_tally`` (``state.State``); the day verdict and lesson rows are written
    only when it matters: the verdict changes (the day is replayed and its evidence
    rebuilt, as before), its credit or held time is due to be published, a lesson joins
    the day, the day is held (so ``GET /api/v1/me/study`` and the completion hold read
    exact figures), the learner stops (pause, ended, terminate), or the day ends.
    ``settle`` folds what is left, and ``study.lesson_study`` adds it on reading.
    ``before_replay`` is called before the day is replayed from the stored beats (the
    caller stores this beat then, if it has not yet). ``checks``: the person's checks the
    beat was judged with; with them, a check lapsed or answered since the day's last
    assessment replays the day (``_moved``). ``day``: the beat's Beijing day
    (``els.beijing_day`` of its ``received_at``), when the caller has it.
    """
    if day is None:
        day = els.beijing_day(beat["received_at"])
    online = person.day_tally
    if online is not None and person.tally_day != day:
        if online.get("dirty") and person.tally_day is not None:
            _fold(beat["user_id"], person.tally_day, online)
        online = None
    if online is None:
        online = _day_tally(beat["user_id"], day)
    person.tally_day, person.day_tally = day, online
    claimed = _claimed_measure(beat["claimed"])
    t = _plain_add(online, beat, claimed)
    if t is None:
        t = Tally.from_json(online["tally"])
        t.add(beat)
        online["tally"] = t.to_json()
    d = derive(t, policy.params)
    key = str(beat["lesson_id"])
    joins = key not in online["lessons"]
    figures = online["lessons"].setdefault(key, [0, 0, 0])
    figures[0] += claimed
    figures[1] += beat["credited_ms"]
    figures[2] += max(0, claimed - beat["credited_ms"])
    # A list, not a dict of seven names (``_figures``): written on every beat.
    online["derived"] = [d.verdict, d.score, d.rules, d.credited_ms, d.held_ms, d.deducted_ms, d.void_ms]
    online["policy_version"] = max(int(online["policy_version"]), policy.version)
    online["dirty"] = True
    published = online.get("published") or {}
    # No state row (lost, or made before the upgrade): the day verdict row may miss beats
    # the lost row held, so the day is replayed from the raw beats, as on a change of verdict.
    lost = not person.exists and online.get("verdict_id") is not None
    if lost or published.get("verdict") != d.verdict or _moved(beat, t, day, policy, checks):
        # The verdict changed, or R07h/R07o may find something else than the last assessment
        # did: replay the day (same numbers, by construction) so its figures and evidence
        # lines are current for the learner, then publish. The row's tally starts again from it.
        first = _first_of_day(online, t)
        if beat_group.in_round() and not first:
            raise beat_group.HandOff  # done alone by the view: a group would wait for it
        if before_replay is not None:
            before_replay()
        v = assess_day(beat["user_id"], day)
        # A day of this one beat: its row as the next beat would read it back (``_day_tally``),
        # kept rather than read again (``_row_tally``). Otherwise the next beat reads the row.
        kept = _row_tally(v, online["lessons"]) if first and v is not None else None
        person.tally_day, person.day_tally = (day, kept) if kept is not None else (None, None)
        return
    if d.credited_ms - int(published.get("credited_seconds", 0)) * 1000 >= EMIT_EVERY_MS or d.held_ms // 1000 != int(
        published.get("held_seconds", 0)
    ):
        # Figures only; the evidence lines catch up at the next replay.
        _fold(beat["user_id"], day, online, publish=True)
    elif joins or d.verdict == HELD or online.get("verdict_id") is None or beat["event"] in FOLD_EVENTS:
        _fold(beat["user_id"], day, online)


def _claimed_measure(claimed: Sequence[Sequence[int]]) -> int:
    """``segs.total(segs.normalise(...))`` of a beat's claimed ranges: one range of integers,
    ``0 <= a < b`` (nearly every beat), is its own normal form (``test_tally_plain_add.py``)."""
    if len(claimed) == 1:
        seg = claimed[0]
        if len(seg) == 2:
            a, b = seg
            if type(a) is int and type(b) is int and 0 <= a < b:
                return b - a
    return segs.total(segs.normalise([tuple(s) for s in claimed]))


def _first_of_day(online: Mapping[str, Any], t: Tally) -> bool:
    """Whether the beat just added is the person-day's first: no day verdict row yet and nothing
    else in the tally. Its replay reads that one beat (a few statements, no long fold of the
    day), so a group round does it itself, the very replay the view would do: handing it to
    the view rolled the whole group back and did it again without the beat, once per first
    beat in it, and at a start-of-day rush nearly every beat of a group is a first one
    (docs/benchmarks.md, "the first beat of a day in the round")."""
    return online.get("verdict_id") is None and t.beats == 1


def _row_tally(v: DayVerdict, lessons: Mapping[str, list[int]]) -> dict[str, Any]:
    """What ``_day_tally`` reads back from ``v``, the day verdict row a day's first beat just
    replayed, and its lesson rows: for that one beat, the online figures ``lessons`` (claimed,
    credited and deducted ms per lesson: the beat's, as the replay writes them).

    Dropped from the person's state row, the day was read back by the person's next beat: two
    statements and a tally rebuilt from the row's JSON; after a start-of-day rush (the ingest
    bench's priming), for every learner's next beat at once (docs/benchmarks.md, "the first
    beat of a day in the round")."""
    return {  # in ``_day_tally``'s order
        "lessons": {key: list(figures) for key, figures in lessons.items()},
        "derived": None,
        "tally": _online_tally(v.tally),
        "published": _marks((v.tally or {}).get("published")),
        "policy_version": v.policy_version or 0,
        "verdict_id": v.id,
        "dirty": False,
    }


#: The keys of ``Tally.to_json``'s output: a tally with exactly these came from it.
_TALLY_KEYS = frozenset(Tally().to_json())


def _plain_add(online: dict[str, Any], beat: Mapping[str, Any], claimed_norm: int) -> Tally | None:
    """``Tally.add`` of a beat that moves only the day's sums, on the stored JSON itself.

    Most beats are cut by no rule, flag nothing and come from a session the day already
    counts: ``from_json``, ``add`` and ``to_json`` would then give ``online["tally"]`` with
    four numbers moved (its sets as they were, already sorted by the ``to_json`` that wrote
    them). Those four are moved in a copy here, and the tally ``derive`` reads is
    ``Tally.shared`` of it. None: any other beat, or a tally without ``to_json``'s keys (an
    empty one, a row's from before a key was kept): the caller takes the full way. A day
    verdict row's tally, read by ``_online_tally``, was written by ``to_json`` (its
    ``published`` is left out there).
    """
    data = online["tally"]
    if beat["cuts"] or beat["flags"] or data.keys() != _TALLY_KEYS:
        return None
    claimed = beat["claimed"]
    # ``Tally.add``'s measure: normalised for video, as sent for documents.
    claimed_ms = claimed_norm if beat["lesson_kind"] == "video" else sum(b - a for a, b in claimed)
    if claimed_ms and str(beat["session_id"]) not in data["sessions"]:
        return None
    credited_ms = int(beat["credited_ms"])
    data = dict(data)
    data["claimed_ms"] += claimed_ms
    data["credited_ms"] += credited_ms
    data["beats"] += 1
    client = beat["client"]
    if client and client.get("muted") is True:
        data["muted_ms"] += credited_ms
    online["tally"] = data
    return Tally.shared(data)


def _fold(user_id: int, day: dt.date, online: dict[str, Any], *, publish: bool = False) -> None:
    """``fold``, then ``_publish`` if ``publish``; in a group round (PostgreSQL) the same rows
    kept for the round's write (``_fold_kept``)."""
    if online.get("verdict_id") is not None and online.get("derived") is not None and beat_group.in_round():
        _fold_kept(user_id, day, online, publish)
        return
    v = fold(user_id, day, online)
    if publish:
        _publish(v)
        online["published"] = _marks(v.tally["published"])


def _fold_kept(user_id: int, day: dt.date, online: dict[str, Any], publish: bool) -> None:
    """``fold`` (and ``_publish``) inside a group round: the day verdict and lesson rows that
    ``fold`` would write are kept in the round's batch and written with the round's other folds
    in one statement (``state_pg.keep_fold``), instead of an ORM load of the rows and a flush
    per fold (~2.5 ms of CPU each, about every 30th beat at the player's cadence).

    The same values as ``fold``: the tally is already ``Tally.to_json`` of the day (the beat
    just added to it), the figures are ``derive``'s at that beat; ``policy_version`` is
    ``max(row, online)`` in the statement, the row's day rule findings are kept (the online
    tally's are cut: ``_FINDING_KEYS``), and so is its ``published`` unless this fold
    publishes. Only for a day whose verdict row exists (``verdict_id``): a fold never creates
    one (a day's first beat replays the day, in the round: ``_first_of_day``).

    The event's ``policy_version`` is the online one: ``_day_tally`` starts it from the row's
    and only raises it, and whatever rewrites the row (``assess_day``, the recompute) drops the
    online tally, so while it lives the row's is never above it.
    """
    _day_written(user_id)
    verdict, score, rules, credited, held, deducted, void = _figures(online["derived"])
    tally = online["tally"]
    verdict_id = int(online["verdict_id"])
    policy_version = int(online["policy_version"])
    payload = None
    if publish:
        payload = {
            "user_id": user_id,
            "day": day.isoformat(),
            "verdict": verdict,
            "credited_seconds": credited // 1000,
            "held_seconds": held // 1000,
            "deducted_seconds": deducted // 1000,
            "policy_version": policy_version,
            "review_score": score,
        }
    row = {
        "id": verdict_id,
        "verdict": verdict,
        "review_score": score,
        "rules": list(rules),
        "credited_ms": credited,
        "held_ms": held,
        "deducted_ms": deducted,
        "void_ms": void,
        "claimed_ms": int(tally.get("claimed_ms", 0)),
        "beats": int(tally.get("beats", 0)),
        "policy_version": policy_version,
        "tally": tally,
        "publish": publish,
        "published": payload,
        "computed_at": dt.datetime.now(dt.UTC),
    }
    lessons = [
        {
            "day_verdict_id": verdict_id,
            "user_id": user_id,
            "lesson_id": int(key),
            "claimed_ms": claimed,
            "credited_ms": credited,
            "deducted_ms": deducted,
        }
        for key, (claimed, credited, deducted) in online["lessons"].items()
    ]
    state_pg.keep_fold(row, lessons)
    online["dirty"] = False
    if payload is not None:
        emit(
            DAY_ASSESSED,
            actor=None,
            object_type=DayVerdict.__tablename__,
            object_id=verdict_id,
            org_unit_id=state_pg.org_unit_of(user_id),
            payload=dict(payload),
        )
        online["published"] = _marks(payload)


#: ``day_rules.horizon`` of a person without checks.
_NO_CHECKS: dict[str, list[int]] = {"lapsed": [], "proven": []}


def _moved(
    beat: Mapping[str, Any], t: Tally, day: dt.date, policy: PolicyVersion, checks: Sequence[els.CheckInput] | None
) -> bool:
    """Whether this beat may change what R07h (held) and R07o (deducted) found at the day's
    last assessment, so that the day must be replayed for the online verdict to stay the
    recompute's (docs/anti_idle.md, "R07h: which runs an answer proves, and when the day is
    replayed").

    * A check lapsed, or one answered validly, since that assessment (``day_rules.horizon``
      differs): a window may open, or a run be proven. Once: the replay keeps the new
      horizon. Answers matter only while something is taken back (they only release).
    * A credited beat received by the end of a window taken back, or whose credit starts
      before it: its credit may fall in the window. A beat wholly after every window adds
      nothing to them (``placed`` and ``after_due`` give it 0), and the runs before a window
      cannot change after it: credit resumes after a lapse only at a valid answer, which
      the horizon sees.
    """
    taken = [f for rule, f in t.day_rules.items() if rule in _TAKEN_BACK]
    if checks is not None:
        floor = int(policy.params["human_latency_floor_ms"])
        now = day_rules.horizon(checks, day, beat["received_at"], floor) if checks else _NO_CHECKS
        judged = t.horizon or {}
        if now["lapsed"] != judged.get("lapsed", []) or (taken and now["proven"] != judged.get("proven", [])):
            return True
    if not beat["credited_ms"] or not taken:
        return False
    end = max(dt.datetime.fromisoformat(f["end"]) for f in taken)
    start = beat.get("credit_start")
    return bool(beat["received_at"] <= end or (start is not None and start < end))


def settle(user_id: int) -> DayVerdict | None:
    """Fold the person's online tally not yet in their day verdict (no commit).

    For readers that need the day verdict row exact at once (tests comparing the
    online assessment with a recompute, tools); the learner's API adds the tally on
    reading instead (``study.lesson_study``).
    """
    lock_clocks((user_id,))  # the state row's writers hold the clock (state.forget_days)
    person, _in_force = state.load(user_id)
    if person.day_tally is None or person.tally_day is None or not person.day_tally.get("dirty"):
        return None
    v = fold(user_id, person.tally_day, person.day_tally)
    state.save(person)
    return v


# --- the replay ------------------------------------------------------------------------


@dataclass
class Replay:
    """A day recomputed from its raw beats."""

    tally: Tally
    outcomes: list[tuple[Beat, els.Outcome]]
    policy: PolicyVersion
    digest: str
    #: The person's checks the day was judged with (``person_checks`` over the day and
    #: ``CHECK_LOOKBACK`` before it): the day rules read the same rows, not a second time.
    checks: Sequence[AttentionCheck] = ()

    @property
    def mismatches(self) -> list[int]:
        """Ids of beats whose recomputed credit differs from the online decision."""
        return [
            b.id
            for b, o in self.outcomes
            if o.credited_ms != b.credited_ms or [list(s) for s in o.credited] != b.credited
        ]


def _prior_rows(user_id: int, first_id: int, beats: list[Beat]) -> tuple[dict[str, Any], dict[int, int], Any]:
    """The running state before the day's first beat: per session its last row
    (``STATE_COLUMNS``, what ``prior_from`` reads), per lesson the credit so far, and the
    person's clock. Columns rather than ``Beat`` objects: a replay reads nothing else of them."""
    by_session: dict[str, Any] = {}
    for sid in {b.session_id for b in beats}:
        row = db.session.execute(_session_prior_statement(), {"sid": sid, "first": first_id}).first()
        if row is not None:
            by_session[sid] = row
    by_lesson: dict[int, int] = {}
    for lid in {b.lesson_id for b in beats}:
        params = {"user_id": user_id, "lid": lid, "first": first_id}
        credited = db.session.execute(_lesson_prior_statement(), params).first()
        if credited is not None:
            by_lesson[lid] = credited[0]
    clock = db.session.execute(_clock_statement(), {"user_id": user_id, "first": first_id}).scalar_one()
    return by_session, by_lesson, clock


@functools.cache
def _session_prior_statement() -> Any:
    """Built once per process, as the beat path's statements (building costs more than running)."""
    first = bindparam("first", type_=Integer)
    return (
        select(*STATE_COLUMNS)
        .where(Beat.session_id == bindparam("sid", type_=String), Beat.id < first)
        .order_by(Beat.seq.desc())
        .limit(1)
    )


@functools.cache
def _lesson_prior_statement() -> Any:
    user_id, first = bindparam("user_id", type_=Integer), bindparam("first", type_=Integer)
    return (
        select(Beat.lesson_credited_ms)
        .where(Beat.user_id == user_id, Beat.lesson_id == bindparam("lid", type_=Integer), Beat.id < first)
        .order_by(Beat.id.desc())
        .limit(1)
    )


@functools.cache
def _clock_statement() -> Any:
    user_id, first = bindparam("user_id", type_=Integer), bindparam("first", type_=Integer)
    return select(func.max(Beat.credit_end)).where(Beat.user_id == user_id, Beat.id < first)


def replay_day(user_id: int, day: dt.date, policy_version: int | None = None) -> Replay:
    """Recompute one person-day from the raw beats (deterministic for the same inputs and policy)."""
    start, end = day_bounds(day)
    beats = list(
        db.session.execute(
            select(Beat)
            .where(Beat.user_id == user_id, Beat.received_at >= start, Beat.received_at < end)
            .order_by(Beat.id)
        ).scalars()
    )
    policies: dict[int, PolicyVersion] = {}

    def policy_for(version: int) -> PolicyVersion:
        if version not in policies:
            policies[version] = policy_by_version(version)
        return policies[version]

    tally = Tally()
    outcomes: list[tuple[Beat, els.Outcome]] = []
    if not beats:
        p = policy_for(policy_version or 0)
        return Replay(tally, outcomes, p, _digest([], [], p.version))
    by_session, by_lesson, clock = _prior_rows(user_id, beats[0].id, beats)
    sessions: dict[str, els.Prior] = {}
    lessons: dict[int, int] = dict(by_lesson)
    day_credit = 0
    focus: tuple[str | None, dt.datetime | None] = (None, None)
    check_rows = person_checks(user_id, start - CHECK_LOOKBACK, end)
    checks = check_inputs(check_rows)
    used = policy_for(policy_version if policy_version is not None else beats[0].policy_version)
    for b in beats:
        p = policy_for(policy_version if policy_version is not None else b.policy_version)
        used = p if p.version >= used.version else used
        if b.session_id not in sessions:
            sessions[b.session_id] = prior_from(by_session.get(b.session_id), None, None, day)
        prior = sessions[b.session_id]
        prior = els.Prior(
            hidden_since=prior.hidden_since,
            last_event=prior.last_event,
            last_seq=prior.last_seq,
            last_claim_end=prior.last_claim_end,
            session_claimed_ms=prior.session_claimed_ms,
            session_covered=prior.session_covered,
            lesson_credited_ms=lessons.get(b.lesson_id, 0),
            day_credited_ms=day_credit,
            focus_session=focus[0],
            focus_until=focus[1],
        )
        credit_from = max(b.wall_start, clock) if clock is not None else b.wall_start
        beat = els.BeatInput(
            session_id=b.session_id,
            lesson_id=b.lesson_id,
            lesson_kind=b.lesson_kind,
            event=b.event,
            seq=b.seq,
            wall_start=b.wall_start,
            received_at=b.received_at,
            launched_at=b.launched_at,
            credit_from=credit_from,
            claimed=tuple((int(x), int(y)) for x, y in b.claimed),
            duration_ms=b.media_duration_ms,
            bytes_served=b.bytes_served,
            media_size=b.media_size,
            client=b.client,
        )
        o = els.assess(beat, prior, p.params, checks)
        outcomes.append((b, o))
        sessions[b.session_id] = o.after
        lessons[b.lesson_id] = o.after.lesson_credited_ms
        day_credit = o.after.day_credited_ms
        focus = (o.after.focus_session, o.after.focus_until)
        if o.credited_ms:
            clock = o.credit_end
        tally.add(
            {
                "claimed": [list(s) for s in beat.claimed],
                "lesson_kind": b.lesson_kind,
                "credited_ms": o.credited_ms,
                "cuts": o.cuts,
                "flags": list(o.flags),
                "session_id": b.session_id,
                "client": b.client,
            }
        )
    return Replay(tally, outcomes, used, _digest(beats, check_rows, used.version), check_rows)


#: ``json.dumps(..., sort_keys=True, default=str)`` and ``json.dumps(..., default=str)``
#: with their encoders made once: ``json.dumps`` with options builds an encoder per call,
#: a quarter of the digest's time in the bulk recompute. Same output.
_BEAT_JSON = json.JSONEncoder(sort_keys=True, default=str).encode
_CHECK_JSON = json.JSONEncoder(default=str).encode


def _digest(beats: Iterable[Beat], checks: Iterable[AttentionCheck], version: int) -> str:
    # One string hashed at once: the same bytes as one update per beat and check, fewer calls.
    parts = [f"policy:{version}"]
    parts.extend(
        _BEAT_JSON(
            [
                b.id,
                b.session_id,
                b.seq,
                b.received_at.isoformat(),
                b.wall_start.isoformat(),
                b.claimed,
                b.bytes_served,
                b.client,
            ]
        )
        for b in beats
    )
    parts.extend(
        _CHECK_JSON(
            [
                c.id,
                c.issued_at.isoformat(),
                c.due_at.isoformat(),
                c.answered_at.isoformat() if c.answered_at else None,
                c.outcome,
                c.trusted,
                c.latency_ms,
            ]
        )
        for c in checks
    )
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def assess_day(user_id: int, day: dt.date, policy_version: int | None = None) -> DayVerdict | None:
    """Recompute a person-day, rewrite its evidence, publish it if its figures changed (no commit).

    The person's clock is locked first (a beat holds it already): the day's beats are then
    all committed ones, and no beat writes the state row between its unlocked read and its
    write around this one's ``forget_day``; first, so no lock of a row a beat writes after
    its clock (the day verdict) is held while waiting for it.
    """
    lock_clocks((user_id,))
    _day_written(user_id)
    r = replay_day(user_id, day, policy_version)
    if not r.outcomes:
        return None
    start, end = day_bounds(day)
    at = day_rules.judgement_time(day, checks=r.checks)
    r.tally.day_rules = day_rules.judge(user_id, day, r.outcomes, r.checks, r.policy.params, at=at)
    r.tally.horizon = day_rules.horizon(r.checks, day, at, int(r.policy.params["human_latency_floor_ms"]))
    v = _verdict_row(user_id, day)
    published = (v.tally or {}).get("published")
    v.policy_version = 0
    _apply(v, r.tally, r.policy)
    v.input_digest = r.digest
    db.session.execute(delete(Evidence).where(Evidence.day_verdict_id == v.id))
    db.session.execute(delete(DayLesson).where(DayLesson.day_verdict_id == v.id))
    per_lesson: dict[int, list[int]] = {}
    for b, o in r.outcomes:
        claimed = segs.total(segs.normalise([tuple(s) for s in b.claimed]))
        row = per_lesson.setdefault(b.lesson_id, [0, 0])
        row[0] += claimed
        row[1] += o.credited_ms
    for lesson_id, (claimed, credited) in sorted(per_lesson.items()):
        db.session.add(
            DayLesson(
                day_verdict_id=v.id,
                user_id=user_id,
                lesson_id=lesson_id,
                claimed_ms=claimed,
                credited_ms=credited,
                deducted_ms=max(0, claimed - credited),
            )
        )
    d = derive(r.tally, r.policy.params)
    lines = build_lines(v, r.outcomes, r.policy, d) + refusal_lines(
        v, refused_beats(user_id, start, end), int(current_app.config["LMS_BEAT_LATE_WINDOW_HOURS"])
    )
    for line in sorted(lines, key=lambda line: (line.rule == "HOLD", line.span_start, line.rule)):
        db.session.add(line)
    db.session.flush()
    if published != _payload(v):  # what the credit bank knows is out of date
        _publish(v)
    # The day verdict now holds the whole day: the person's online tally of it starts again from it.
    state.forget_day(user_id, day)
    return v


def refused_beats(user_id: int, start: dt.datetime, end: dt.datetime) -> Sequence[Any]:
    """The person's beats the core refused and kept (repeats, replays, late) received in [start, end)."""
    return db.session.execute(_refused_statement(), {"user_id": user_id, "start": start, "end": end}).all()


@functools.cache
def _refused_statement() -> Any:
    r = RefusedBeat
    start, end = bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())
    return (
        select(r.id, r.session_id, r.lesson_id, r.reason, r.received_at)
        .where(r.user_id == bindparam("user_id", type_=Integer), r.received_at >= start, r.received_at < end)
        .order_by(r.received_at, r.id)
    )


def on_beat_refused(event: Any) -> None:
    """``learning.beat_refused`` (after commit): rebuild that person-day so its evidence names
    the refusal. A recompute of the day, so delivering the event twice changes nothing."""
    if event.name != "learning.beat_refused":
        return
    from lms_core.learning.services import person_clock

    user_id = int(event.payload["user_id"])
    person_clock(user_id)  # serialised with the person's beats, as they are with each other
    assess_day(user_id, els.beijing_day(dt.datetime.fromisoformat(event.payload["received_at"])))


def on_check_answered(event: Any) -> None:
    """After an answer committed: re-judge the day it was given on (idempotent).

    A day is judged on the answers given that day (R07h, R09, R15), also those that come
    after its last beat: the learner back online answers the check the lapse paused the
    video on. Nothing re-judges a day on an answer otherwise, so the online verdict would
    keep a hold the recompute no longer finds.
    """
    from lms_core.learning.services import person_clock
    from plugins.anti_idle.events import CHECK_ANSWERED

    if event.name != CHECK_ANSWERED or event.actor_id is None:
        return
    check = db.session.get(AttentionCheck, int(event.payload.get("check_id") or 0))
    if check is None or check.answered_at is None:
        return
    day = els.beijing_day(check.answered_at)
    # Serialised with the person's beats (their record_online also re-judges the day).
    person_clock(check.user_id)
    exists = db.session.execute(
        select(DayVerdict.id).where(DayVerdict.user_id == check.user_id, DayVerdict.day == day)
    ).first()
    if exists is not None:
        assess_day(check.user_id, day)


def rejudge_day(payload: dict[str, Any]) -> None:
    """Job ``anti_idle.rejudge_day`` (``rejudge.schedule``): a check's window ended, maybe with
    no beat of the person after it; the day's assessment again (idempotent)."""
    from lms_core.learning.services import person_clock

    user_id = int(payload["user_id"])
    person_clock(user_id)  # serialised with the person's beats, as on_check_answered
    check = db.session.get(AttentionCheck, int(payload["check_id"])) if payload.get("check_id") else None
    if check is not None and check.outcome == CHECK_PASSED and check.answered_at and check.answered_at <= check.due_at:
        return  # answered in time: the end of its window changes nothing
    assess_day(user_id, dt.date.fromisoformat(str(payload["day"])))


# --- review ----------------------------------------------------------------------------


class ReviewError(ValueError):
    pass


def review_day(day_verdict: DayVerdict, decision: str, reviewer: Any, reason: str, *, appeal: Any = None) -> Review:
    """An auditor posts or voids a held day (does not commit).

    Emits ``anti_idle.day_reviewed`` in the transaction; posting releases the hold on
    the completion of the day's lessons, which are re-evaluated at once.
    """
    from lms_core.authz import can

    if decision not in ("post", "void"):
        raise ReviewError("decision must be post or void")
    reason = (reason or "").strip()
    if not reason:
        raise ReviewError("a reason is required")
    if not can(reviewer, "anti_idle.review", _user(day_verdict.user_id)):
        raise ReviewError("not allowed to review this person")
    if day_verdict.verdict != HELD or day_verdict.review_state in ("posted", "voided"):
        raise ReviewError("only a held day not yet decided can be reviewed")
    seconds = day_verdict.held_ms // 1000
    review = Review(
        day_verdict_id=day_verdict.id,
        user_id=day_verdict.user_id,
        day=day_verdict.day,
        reviewer_id=reviewer.id,
        decision=decision,
        seconds=seconds,
        reason=reason[:2000],
        appeal_id=getattr(appeal, "id", None),
    )
    db.session.add(review)
    day_verdict.review_state = "posted" if decision == "post" else "voided"
    emit(
        DAY_REVIEWED,
        actor=reviewer,
        object_type=DayVerdict.__tablename__,
        object_id=day_verdict.id,
        org_unit_id=_org_of(day_verdict.user_id),
        payload={
            "user_id": day_verdict.user_id,
            "day": day_verdict.day.isoformat(),
            "decision": decision,
            "seconds": seconds,
            "reviewer_id": reviewer.id,
            "reason": reason[:2000],
        },
    )
    db.session.flush()
    if decision == "post":
        _release_completions(day_verdict)
    return review


def _user(user_id: int) -> Any:
    from lms_core.accounts.models import User

    return db.session.get(User, user_id)


def _release_completions(v: DayVerdict) -> None:
    from lms_core.courses.models import Lesson
    from lms_core.learning import services as learning

    user = _user(v.user_id)
    for lesson_id in db.session.execute(select(DayLesson.lesson_id).where(DayLesson.day_verdict_id == v.id)).scalars():
        lesson = db.session.get(Lesson, lesson_id)
        enrolment = learning.enrolment_for(user, lesson.course_id) if lesson else None
        if lesson is not None and enrolment is not None:
            learning.evaluate_completion(user, lesson, learning.progress_for(user.id, lesson), enrolment)


#: Where a group round's holds read ahead are kept (``batch.read``): ``(asked, held)``, the
#: person ids to the lesson ids read (:func:`read_holds`), and the held ``(person, lesson)`` pairs.
_HOLDS = "anti_idle.holds"

#: :data:`_PG_HOLDS_COMPLETION` for many ``(person, lesson)`` pairs: the held ones.
_PG_HOLDS_MANY = (
    "SELECT DISTINCT l.user_id, l.lesson_id FROM anti_idle_day_lessons AS l "
    "JOIN anti_idle_day_verdicts AS v ON v.id = l.day_verdict_id "
    "JOIN unnest(%(u)s::bigint[], %(l)s::bigint[]) AS k(user_id, lesson_id) "
    "ON l.user_id = k.user_id AND l.lesson_id = k.lesson_id "
    "WHERE v.verdict = %(held)s AND v.review_state NOT IN ('posted')"
)


def read_holds(batch: Any, lessons: list[tuple[int, int]]) -> None:
    """``lms_completion_group_read``: the round's ``(person, lesson)`` pairs that may complete,
    their holds in one statement, kept in ``batch.read`` for :func:`holds_completion` (one
    prepared statement per completing beat before: ~0.3 ms of CPU each in the completion
    burst, docs/benchmarks.md, "a round's completions with one read"). Read before the round's
    beats run: a person whose beat then writes a day verdict or its lessons (a fold, a day's
    replay) is asked of the database again (:func:`_day_written`)."""
    if not lessons:
        return
    params = {
        "u": pg_arrays.literal([u for u, _ in lessons]),
        "l": pg_arrays.literal([lesson for _, lesson in lessons]),
        "held": HELD,
    }
    held = {(int(u), int(lesson)) for u, lesson in state_pg.rows(_PG_HOLDS_MANY, params)}
    asked: dict[int, set[int]] = {}
    for u, lesson in lessons:
        asked.setdefault(u, set()).add(lesson)
    batch.read[_HOLDS] = (asked, held)


def _day_written(user_id: int) -> None:
    """A person's day verdict or lessons are written in this round: their holds read ahead no
    longer stand (:func:`holds_completion` asks the database, after the round's kept writes)."""
    batch = beat_group.active() if beat_tx.is_pg() else None
    if batch is not None:
        ahead = batch.read.get(_HOLDS)
        if ahead is not None:
            ahead[0].pop(user_id, None)


def holds_completion(user_id: int, lesson_id: int) -> bool:
    """Is the completion of this lesson held by a held, undecided day that touched it?

    On PostgreSQL a prepared statement on the beat's cursor (``state_pg.execute``, after the
    session's pending changes, as the ORM's autoflush would): through ``db.session.execute``
    (its cache key, compiled context and result) it was most of a lesson's completion on the
    beat path, ~0.2-0.3 ms of CPU, asked by every completing beat (docs/benchmarks.md, "the
    completion burst"). In a group round, from the round's read ahead (:func:`read_holds`)
    when it has the pair and the person's days were not written since."""
    if beat_tx.is_pg():
        batch = beat_group.active()
        if batch is not None:
            ahead = batch.read.get(_HOLDS)
            if ahead is not None and lesson_id in ahead[0].get(user_id, ()):
                return (user_id, lesson_id) in ahead[1]
        beat_tx.session().flush()  # a no-op but for an ORM change not yet written
        params = {"user_id": user_id, "lesson_id": lesson_id, "held": HELD}
        return state_pg.execute(_PG_HOLDS_COMPLETION, params, fetch=True) is not None
    params = {"user_id": user_id, "lesson_id": lesson_id}
    return db.session.execute(_holds_completion_statement(), params).first() is not None


#: :func:`_holds_completion_statement` as psycopg's text (a NULL ``review_state`` holds
#: nothing, as the ``NOT IN`` there).
_PG_HOLDS_COMPLETION = (
    "SELECT v.id FROM anti_idle_day_verdicts AS v "
    "JOIN anti_idle_day_lessons AS l ON l.day_verdict_id = v.id "
    "WHERE l.user_id = %(user_id)s AND l.lesson_id = %(lesson_id)s "
    "AND v.verdict = %(held)s AND v.review_state NOT IN ('posted') LIMIT 1"
)


@functools.cache
def _holds_completion_statement() -> Any:
    """Built once: built on each call (the core asks at each lesson's completion, and at each
    beat while it is held) it cost more CPU than the rest of the hook."""
    return (
        select(DayVerdict.id)
        .join(DayLesson, DayLesson.day_verdict_id == DayVerdict.id)
        .where(
            DayLesson.user_id == bindparam("user_id", type_=Integer),
            DayLesson.lesson_id == bindparam("lesson_id", type_=Integer),
            DayVerdict.verdict == HELD,
            DayVerdict.review_state.notin_(("posted",)),
        )
        .limit(1)
    )


def current_policy_for(course_id: int | None) -> PolicyVersion:
    return current_policy(course_id)
