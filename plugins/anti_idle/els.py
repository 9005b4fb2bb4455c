"""Effective learning seconds: the judgement of heartbeats, as pure functions.

Two entry points share one core (``judge``):

* ``assess(beat, prior, policy, checks)`` judges one beat given the running state
  left by the beats before it: the online path (``lms_assess_interval``);
* ``assess_day(rows, ...)`` judges a whole person-day in one pass over plain tuples:
  the recompute (``flask lms anti-idle recompute``) and the benchmark.

No database, no clock: both call ``judge`` on the same stored inputs, so the online
decision and the recompute agree by construction (tested as properties, together with
the equality to the previous, datetime-based implementation kept under tests/).

Server evidence first. Credit is bounded by the person's clock (one stream at a
time), by media bytes actually served to the session, by the server's receive
times; client signals (visibility, rate, rAF counts) can only *remove* credit.

Why integers: the core works on microseconds since the epoch (exact, like the
datetimes it replaces) and milliseconds of media, over tuples built once per beat, so
a day of 3,000 beats is judged in a few milliseconds instead of a quarter second.
Every rule adds its deduction with ``j.cut(rule, ms)`` or a flag with ``j.flag(rule)``;
a new rule is a new block in ``judge`` (see the sections), nothing else.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from lms_core.learning import segments as segs

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: One second of clock jitter, lent once per person (the core's rule, repeated here).
TOLERANCE_MS = 1000
#: Per-beat slack for the speed rule (design §3.3 step 4).
SPEED_SLACK_MS = 1500
#: A session's claims may exceed its server lifetime by this much before R03 fires.
SESSION_SLACK_MS = 10_000
#: A new claim may start this far before the previous one ended without a seek.
CONTINUITY_SLACK_MS = 2000
#: Events after which a claim may restart anywhere in the media.
RESTART_EVENTS = frozenset({"seeked", "play"})

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
#: "Never" on the microsecond scale (an overdue check nobody answered yet).
FOREVER_US = 1 << 62


def ms(delta: dt.timedelta) -> int:
    return int(delta.total_seconds() * 1000)


def _ms(us: int) -> int:
    """``ms(timedelta(microseconds=us))`` exactly (same float rounding), without the timedelta."""
    return int(us / 1_000_000 * 1000)


def us_of(at: dt.datetime) -> int:
    return (at - EPOCH) // _US


def at_us(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def beijing_day(at: dt.datetime) -> dt.date:
    return at.astimezone(SHANGHAI).date()


# --- the boundary: dataclasses with datetimes (online path, tests) -----------------------


@dataclass(frozen=True)
class BeatInput:
    """What the server knew when the beat arrived (stored in ``anti_idle_beats``)."""

    session_id: str
    lesson_id: int
    lesson_kind: str
    event: str
    seq: int
    wall_start: dt.datetime
    received_at: dt.datetime
    launched_at: dt.datetime
    #: The person's clock before this beat: credit may start no earlier.
    credit_from: dt.datetime
    claimed: tuple[segs.Segment, ...]
    duration_ms: int | None
    bytes_served: int | None
    media_size: int | None
    client: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckInput:
    """An attention check as the credit path sees it."""

    session_id: str
    issued_at: dt.datetime
    due_at: dt.datetime
    answered_at: dt.datetime | None
    outcome: str
    trusted: bool | None
    latency_ms: int | None

    def automated(self, floor_ms: int) -> bool:
        """An untrusted answer, or one faster than a human can read and click."""
        if self.answered_at is None:
            return False
        return (
            self.outcome == "automated"
            or self.trusted is False
            or (self.latency_ms is not None and self.latency_ms < floor_ms)
        )

    def passed(self, floor_ms: int) -> bool:
        return self.answered_at is not None and self.outcome == "passed" and not self.automated(floor_ms)


@dataclass(frozen=True)
class Prior:
    """Running state before a beat, carried on the previous stored beats.

    ``session_*`` come from the previous beat of the same session, ``lesson_credited_ms``
    from the person's previous beat on the lesson, ``day_credited_ms`` from the
    person's previous beat on the same Beijing day.
    """

    hidden_since: dt.datetime | None = None
    last_event: str | None = None
    #: The session's previous ``seq`` (None before its first judged beat).
    last_seq: int | None = None
    last_claim_end: int | None = None
    session_claimed_ms: int = 0
    session_covered: tuple[segs.Segment, ...] = ()
    lesson_credited_ms: int = 0
    day_credited_ms: int = 0


@dataclass(frozen=True)
class Outcome:
    """The judgement of one beat and the running state after it."""

    credited: tuple[segs.Segment, ...]
    credited_ms: int
    credit_start: dt.datetime
    #: Milliseconds removed per rule, e.g. ``{"R05": 29_000}``.
    cuts: dict[str, int]
    #: Rules that fired without removing time (scored at day level).
    flags: tuple[str, ...]
    after: Prior

    @property
    def credit_end(self) -> dt.datetime | None:
        return self.credit_start + dt.timedelta(milliseconds=self.credited_ms) if self.credited_ms else None


# --- the core's inputs: plain tuples ----------------------------------------------------


class Row(NamedTuple):
    """One beat as the core reads it: times in µs since the epoch, client signals extracted once."""

    session_id: str
    lesson_id: int
    video: bool
    kind: str
    event: str
    wall_start: int
    received: int
    launched: int
    claimed: tuple[segs.Segment, ...]
    #: Sum of the claimed ranges as sent (overlaps counted twice, as the rules always did).
    claimed_ms: int
    #: ``claimed`` sorted and merged (the same tuple when it already was).
    merged: tuple[segs.Segment, ...]
    duration_ms: int | None
    bytes_served: int | None
    media_size: int | None
    visibility: Any
    #: rAF frames counted by the page (an int, never a bool), else None.
    raf: int | None
    #: The fastest playback rate the page reported, else None.
    rate: float | None
    bg_audio: bool
    #: ``navigator.webdriver`` or an automation probe bit.
    robot: bool
    #: The server's verdict on the beat's signature (envelope.py): valid, unsigned, bad, or None.
    envelope: str | None = None
    #: Documents: ms since the reader's last trusted input (``presence.idle_ms``), else None.
    idle_ms: float | None = None
    #: Input events with ``isTrusted`` false the page counted.
    untrusted: int = 0
    #: ``performance.now()`` at send (``presence.mono_ms``), else None.
    mono_ms: float | None = None
    #: The beat's ``seq`` (0: unknown).
    seq: int = 0


class Params(NamedTuple):
    """The thresholds of one policy version the core needs, read once."""

    max_rate: float
    grace_us: int
    floor_ms: int
    slack_ms: int
    cap_ratio: float
    day_cap_ms: int
    signed: bool = False
    idle_us: int = 600_000_000
    drift_ms: int = 10_000


def params_of(policy: Mapping[str, Any]) -> Params:
    return Params(
        max_rate=float(max(policy["allowed_rates"])),
        grace_us=int(policy["hidden_grace_seconds"]) * 1_000_000,
        floor_ms=int(policy["human_latency_floor_ms"]),
        slack_ms=int(policy["delivery_slack_seconds"]) * 1000,
        cap_ratio=float(policy["lesson_cap_ratio"]),
        day_cap_ms=int(policy["day_cap_seconds"]) * 1000,
        signed=bool(int(policy.get("signed_beats", 0))),
        idle_us=int(policy.get("idle_seconds", 600)) * 1_000_000,
        drift_ms=int(policy.get("drift_seconds", 10)) * 1000,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:  # not NaN
        return float(value)
    return None


def _is_merged(claimed: Sequence[segs.Segment]) -> bool:
    prev_end = None
    for a, b in claimed:
        if b <= a or a < 0 or (prev_end is not None and a <= prev_end):
            return False
        prev_end = b
    return True


def row_of(
    session_id: str,
    lesson_id: int,
    kind: str,
    event: str,
    wall_start: dt.datetime,
    received_at: dt.datetime,
    launched_at: dt.datetime,
    claimed: Iterable[Sequence[int]],
    duration_ms: int | None,
    bytes_served: int | None,
    media_size: int | None,
    client: Mapping[str, Any] | None,
    seq: int = 0,
) -> Row:
    """The core's tuple for one beat (the only place client JSON is read)."""
    claimed_t = tuple((int(a), int(b)) for a, b in claimed)
    client = client if isinstance(client, Mapping) else {}
    raw_presence = client.get("presence")
    presence: Mapping[str, Any] = raw_presence if isinstance(raw_presence, Mapping) else {}
    raf = presence.get("raf", client.get("raf_frames"))
    rate = _number(presence.get("rate_max"))
    rate = rate if rate is not None else _number(client.get("rate"))
    probes = presence.get("probes")
    raw_input = presence.get("input")
    untrusted = raw_input.get("untrusted") if isinstance(raw_input, Mapping) else None
    envelope = client.get("envelope")
    return Row(
        session_id=session_id,
        lesson_id=lesson_id,
        video=kind == "video",
        kind=kind,
        event=event,
        wall_start=us_of(wall_start),
        received=us_of(received_at),
        launched=us_of(launched_at),
        claimed=claimed_t,
        claimed_ms=sum(b - a for a, b in claimed_t),
        merged=claimed_t if _is_merged(claimed_t) else tuple(segs.normalise(claimed_t)),
        duration_ms=duration_ms,
        bytes_served=bytes_served,
        media_size=media_size,
        visibility=client.get("visibility"),
        raf=raf if isinstance(raf, int) and not isinstance(raf, bool) else None,
        rate=rate,
        bg_audio=client.get("bg_audio_mode") is True,
        robot=client.get("webdriver") is True or (isinstance(probes, int) and bool(probes & 1)),
        envelope=envelope if isinstance(envelope, str) else None,
        idle_ms=_number(presence.get("idle_ms")),
        untrusted=untrusted if isinstance(untrusted, int) and not isinstance(untrusted, bool) else 0,
        mono_ms=_number(presence.get("mono_ms")),
        seq=seq,
    )


def row_from_input(beat: BeatInput) -> Row:
    return row_of(
        beat.session_id,
        beat.lesson_id,
        beat.lesson_kind,
        beat.event,
        beat.wall_start,
        beat.received_at,
        beat.launched_at,
        beat.claimed,
        beat.duration_ms,
        beat.bytes_served,
        beat.media_size,
        beat.client,
        beat.seq,
    )


# --- attention checks -------------------------------------------------------------------

Span = tuple[int, int]


class Checks:
    """A person's attention checks, indexed so the spans known at any instant are cheap.

    What is known at ``now`` depends only on how many checks were issued and how many
    answers given by then: the spans are computed once per such state (a handful a
    day) and found again by bisection, O(log n) per beat.
    """

    def __init__(self, checks: Sequence[CheckInput]) -> None:
        # (issued, due, answered, outcome, trusted, latency), sorted as the spans are built.
        self.items = sorted(
            (
                (us_of(c.issued_at), us_of(c.due_at), us_of(c.answered_at) if c.answered_at else None)
                + (c.outcome, c.trusted, c.latency_ms)
                for c in checks
            ),
            key=lambda c: (c[0], c[1]),
        )
        self.issued = [c[0] for c in self.items]
        self.answers = sorted(c[2] for c in self.items if c[2] is not None)
        self._cache: dict[tuple[int, int, int], tuple[list[Span], list[Span]]] = {}

    def __bool__(self) -> bool:
        return bool(self.items)

    def spans(self, now: int, floor_ms: int) -> tuple[list[Span], list[Span]]:
        """(overdue spans, automated spans) of the person, as known at ``now``.

        Overdue: from a check's due time until it, or a later check, is validly answered.
        Automated: from an automated answer's check issue until the next valid answer.
        An answer given after ``now`` is not known yet at ``now``.
        """
        key = (bisect.bisect_right(self.issued, now), bisect.bisect_right(self.answers, now), floor_ms)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._spans(key[0], now, floor_ms)
        return found

    def _spans(self, issued: int, now: int, floor_ms: int) -> tuple[list[Span], list[Span]]:
        known = []
        for c_issued, due, answered, outcome, trusted, latency in self.items[:issued]:
            if answered is not None and answered > now:
                answered, outcome = None, "pending"
            automated = answered is not None and (
                outcome == "automated" or trusted is False or (latency is not None and latency < floor_ms)
            )
            passed = answered is not None and outcome == "passed" and not automated
            known.append((c_issued, due, answered, passed, automated))
        valid = sorted(a for _i, _d, a, passed, _a in known if passed and a is not None)

        def next_valid(after: int) -> int:
            k = bisect.bisect_left(valid, after)
            return valid[k] if k < len(valid) else FOREVER_US

        overdue: list[Span] = []
        automated_spans: list[Span] = []
        for c_issued, due, answered, passed, automated in known:
            if passed:
                if answered is not None and answered > due:
                    overdue.append((due, answered))
            elif automated:
                automated_spans.append((c_issued, next_valid(c_issued)))
            else:
                overdue.append((due, next_valid(c_issued)))
        return overdue, automated_spans


def check_spans(
    checks: Sequence[CheckInput], now: dt.datetime, floor_ms: int
) -> tuple[list[tuple[dt.datetime, dt.datetime]], list[tuple[dt.datetime, dt.datetime]]]:
    """``Checks.spans`` with datetimes (for pages and tests)."""
    overdue, automated = Checks(checks).spans(us_of(now), floor_ms)
    forever = dt.datetime.max.replace(tzinfo=dt.UTC)

    def back(spans: list[Span]) -> list[tuple[dt.datetime, dt.datetime]]:
        return [(at_us(a), forever if b == FOREVER_US else at_us(b)) for a, b in spans]

    return back(overdue), back(automated)


def _spans_overlap(w0: int, w1: int, spans: Iterable[Span]) -> int:
    """Milliseconds of the window covered by the union of ``spans`` (each piece rounded as before)."""
    clipped = sorted((max(s0, w0), min(s1, w1)) for s0, s1 in spans if s1 > w0 and s0 < w1)
    total, reach = 0, w0
    for s0, s1 in clipped:
        s0 = max(s0, reach)
        if s1 > s0:
            total += _ms(s1 - s0)
            reach = s1
    return total


# --- the rules ----------------------------------------------------------------------------

#: When rules overlap (a hidden span that another stream also covered), the cuts are
#: trimmed to what was really not credited, the least specific rule first.
TRIM_ORDER = ("R04", "R05", "R08", "R03e", "R07", "R16", "R01", "R10", "R14", "R03", "R07b", "R10a")


class Judgement:
    """What the rules decided about one beat: deductions per rule and flags."""

    __slots__ = ("cuts", "flags")

    # No __init__: judge() builds one per beat with ``object.__new__`` (slots set directly),
    # which costs a third of a Python __init__ call on the hot path.
    cuts: dict[str, int]
    flags: list[str]

    def cut(self, rule: str, amount: int) -> None:
        """Remove ``amount`` ms of the claim under ``rule`` (nothing when not positive)."""
        if amount > 0:
            self.cuts[rule] = self.cuts.get(rule, 0) + amount

    def flag(self, rule: str) -> None:
        """A rule that fired without removing time (scored at day level)."""
        self.flags.append(rule)

    def trim(self, uncredited: int) -> None:
        cuts = self.cuts
        excess = sum(cuts.values()) - max(0, uncredited)
        for rule in TRIM_ORDER:
            if excess <= 0:
                break
            if rule in cuts:
                take = min(cuts[rule], excess)
                cuts[rule] -= take
                excess -= take
                if not cuts[rule]:
                    del cuts[rule]


_new = object.__new__


class SessionState:
    """The running state of one session (mutated beat by beat by ``judge``)."""

    __slots__ = ("hidden_since", "last_event", "last_claim_end", "claimed_ms", "covered", "covered_ms", "last_seq")

    def __init__(
        self,
        hidden_since: int | None = None,
        last_event: str | None = None,
        last_claim_end: int | None = None,
        claimed_ms: int = 0,
        covered: Iterable[segs.Segment] = (),
        last_seq: int | None = None,
    ) -> None:
        self.hidden_since = hidden_since
        self.last_event = last_event
        self.last_claim_end = last_claim_end
        self.claimed_ms = claimed_ms
        self.last_seq = last_seq
        #: Media ranges credited to the session so far, sorted and merged, and their measure.
        self.covered: list[segs.Segment] = segs.normalise(covered)
        self.covered_ms = segs.total(self.covered)


def _new_ms(covered: list[segs.Segment], a: int, b: int) -> int:
    """Milliseconds of ``[a, b)`` not yet in the sorted, merged ``covered`` (O(log n))."""
    if not covered or a >= covered[-1][1]:  # playing on past everything seen: the common case
        return b - a
    k = bisect.bisect_right(covered, (a, FOREVER_US))
    if k:
        k -= 1  # the range starting at or before a may reach into [a, b)
    new, reach = 0, a
    n = len(covered)
    while k < n:
        s, e = covered[k]
        if s >= b:
            break
        if s > reach:
            new += s - reach
        if e > reach:
            reach = e
        k += 1
    if b > reach:
        new += b - reach
    return new


def _add_range(covered: list[segs.Segment], a: int, b: int) -> None:
    """Merge ``[a, b)`` into the sorted, merged ``covered`` in place (touching ranges merge)."""
    if not covered or a > covered[-1][1]:
        covered.append((a, b))
        return
    last0, last1 = covered[-1]
    if a >= last0:  # overlaps or touches the last range only
        if b > last1:
            covered[-1] = (last0, b)
        return
    lo = bisect.bisect_left(covered, (a, a))
    if lo and covered[lo - 1][1] >= a:
        lo -= 1
    hi, start, end = lo, a, b
    while hi < len(covered) and covered[hi][0] <= b:
        s, e = covered[hi]
        start, end = min(start, s), max(end, e)
        hi += 1
    covered[lo:hi] = [(start, end)]


def judge(
    r: Row,
    credit_from: int,
    s: SessionState,
    lesson_credited: int,
    day_credited: int,
    p: Params,
    checks: Checks | None,
) -> tuple[tuple[segs.Segment, ...], int, int, Judgement]:
    """Judge one beat; updates the session state ``s``. Returns (credited, ms, credit start µs, judgement).

    Hot path (run 3,000 times per person-day by a recompute): plain locals and
    conditional expressions rather than helper calls; ``int(us / 1e6 * 1000)`` is the
    exact millisecond rounding the rules have always used (``ms``).
    """
    (_s, _l, video, kind, event, wall_start, now, launched, claimed, claimed_ms, merged, duration, served, size) = r[
        :14
    ]
    # The first fields by position (one unpack), later ones (envelope, idle ...) by name.
    visibility, raf, rate, bg_audio, robot = r[14:19]
    max_rate, grace_us, floor_ms, slack_ms, cap_ratio, day_cap_ms = p[:6]
    start = credit_from if credit_from > wall_start else wall_start
    # The person's budget (as the core computes it): time after their clock, plus the
    # one-second jitter tolerance that the clock lends and the next beat repays.
    span_ms = int((now - start) / 1e6 * 1000)
    budget = span_ms + TOLERANCE_MS
    if budget < 0:
        budget = 0
    j = _new(Judgement)
    j.cuts = {}
    j.flags = []
    wall_ms = int((now - wall_start) / 1e6 * 1000)

    # --- one person, one stream: time another stream already credited (R04) --------
    if claimed_ms and credit_from > wall_start:
        overlap = int(((now if now < credit_from else credit_from) - wall_start) / 1e6 * 1000)
        j.cut("R04", claimed_ms if claimed_ms < overlap else overlap)

    # --- presence: hidden beyond the grace period (R05) ------------------------------
    spoofed = video and visibility == "visible" and raf == 0 and claimed_ms > 0 and wall_ms >= 20_000
    hidden_since = s.hidden_since
    hidden_excess = 0
    if visibility == "hidden" or spoofed:
        if hidden_since is None:
            # The "hidden" event beat is sent as the page hides; a heartbeat already
            # hidden (hidden at load, or a spoof) was hidden over its whole interval.
            hidden_since = now if event == "hidden" else wall_start
        over = now - max(start, hidden_since + grace_us)
        hidden_excess = int(over / 1e6 * 1000) if over > 0 else 0
        if spoofed:
            j.flag("R13")
    elif hidden_since is not None:  # back to visible: the interval up to now was hidden
        over = now - max(start, hidden_since + grace_us)
        hidden_excess = int(over / 1e6 * 1000) if over > 0 else 0
        hidden_since = None
    if hidden_excess:
        if video and not bg_audio:
            j.cut("R05", min(hidden_excess, claimed_ms))
        else:
            hidden_excess = 0

    # --- attention checks: overdue stops credit, automated answers void (R07) --------
    blocked = hidden_excess
    if checks:
        overdue, automated = checks.spans(now, floor_ms)
        void_ms = _spans_overlap(start, now, automated) if automated else 0
        overdue_ms = _spans_overlap(start, now, overdue) if overdue else 0
        if void_ms:
            j.cut("R07b", min(void_ms, claimed_ms))
            j.flag("R07b")
        j.cut("R07", min(max(0, overdue_ms - void_ms), claimed_ms))
        blocked += max(void_ms, overdue_ms)

    # --- documents: no trusted input for too long (R08) --------------------------------
    # The reader reports how long ago the last trusted input was (``presence.idle_ms``).
    # Like visibility, the figure can only remove credit: a script that lies about it
    # gains nothing over one that moves the mouse, and checks still test presence.
    if kind == "document" and claimed_ms:
        idle = r.idle_ms
        if idle is not None and idle > 0:
            idle_from = now - int(min(idle, 86_400_000) * 1000) + p.idle_us
            over = now - max(start, idle_from)
            idle_excess = int(over / 1e6 * 1000) if over > 0 else 0
            if idle_excess:
                j.cut("R08", min(idle_excess, claimed_ms))
                blocked += idle_excess
        if r.untrusted > 0:
            j.flag("R08b")  # input dispatched by a script (isTrusted false)

    # The jitter tolerance is for honest clocks only: an interval that lost time to a
    # presence rule gets none, or a beat per second would earn a second each.
    eligible = budget if not blocked else max(0, span_ms - blocked)
    zero_reason: str | None = None

    # --- speed (R01): content faster than the fastest allowed rate ------------------
    too_fast = claimed_ms > max_rate * (wall_ms if wall_ms > 0 else 0) + SPEED_SLACK_MS
    if video and claimed_ms and (too_fast or (rate is not None and rate > max_rate + 0.01)):
        zero_reason = "R01"

    # --- forged or replayed progress (R03 / R16) --------------------------------------
    session_claimed = s.claimed_ms + claimed_ms
    if video:
        if session_claimed > max_rate * int((now - launched) / 1e6 * 1000) + SESSION_SLACK_MS:
            zero_reason = zero_reason or "R03"
        last_end = s.last_claim_end
        if (
            claimed
            and last_end is not None
            and claimed[0][0] < last_end - CONTINUITY_SLACK_MS
            and event not in RESTART_EVENTS
            and s.last_event not in RESTART_EVENTS
        ):
            zero_reason = zero_reason or "R16"

    # --- the envelope (R03e): signed by the lesson page's per-session key ------------
    # A beat that no page of this session signed earns nothing: forged with plain HTTP,
    # or altered on the way. (A script in the page can still sign: envelope.py.)
    envelope = r.envelope
    if claimed_ms and p.signed and envelope in ("unsigned", "bad"):
        zero_reason = "R03e"
    if envelope == "bad":
        j.flag("R03b")
    # --- gaps in seq (R03q): beats that never arrived; the server clock covers the time
    if r.seq and r.seq > (s.last_seq or 0) + 1:
        j.flag("R03q")
    # --- clock drift (R13d): the page's clock ran ahead of the server's ---------------
    # ``presence.mono_ms`` is performance.now() at send, counted from the navigation that
    # created the session, so it can exceed the server's time since launch only by the
    # page's own load time. More means accelerated timers (a speed hack).
    if r.mono_ms is not None and r.mono_ms - int((now - launched) / 1e6 * 1000) > p.drift_ms:
        j.flag("R13d")

    # --- media delivery (R14): bytes actually served to this session's URL ----------
    allowed_content = claimed_ms
    if video and claimed_ms:
        if not served or not size or not duration:
            zero_reason = zero_reason or "R14"
        else:
            delivered = duration * min(1.0, served / size)
            covered = s.covered
            new = 0
            reach = covered[-1][1] if covered else -1
            for a, b in merged:  # disjoint ranges: their new parts add up
                new += b - a if a >= reach else _new_ms(covered, a, b)
            room = int(delivered + slack_ms) - s.covered_ms
            if new > room:
                allowed_content = max(0, claimed_ms - (new - max(0, room)))
                if allowed_content == 0:
                    zero_reason = zero_reason or "R14"
                else:
                    j.cut("R14", claimed_ms - allowed_content)
    elif kind == "document" and claimed_ms and size and not served:
        zero_reason = zero_reason or "R14"  # "read" a document whose file was never fetched

    if zero_reason is not None:
        j.cut(zero_reason, claimed_ms - sum(v for k, v in j.cuts.items() if k != zero_reason))
        credit = 0
    else:
        credit = claimed_ms if claimed_ms < eligible else eligible
        if allowed_content < credit:
            credit = allowed_content

    # --- caps: per lesson (R10) and per day (held, R10a) ------------------------------
    if credit and video and duration:
        room = max(0, int(cap_ratio * duration) - lesson_credited)
        if credit > room:
            j.cut("R10", credit - room)
            credit = room
    if credit and day_credited + credit > day_cap_ms:
        held = credit - max(0, day_cap_ms - day_credited)
        j.cut("R10a", held)
        credit -= held

    # Whatever the rules left of the claim and was not cut above is the pause/budget gap.
    credited: tuple[segs.Segment, ...] = ()
    if credit > 0:
        if len(merged) == 1:
            a, b = merged[0]
            if credit > b - a:
                credit = b - a
            credited = ((a, a + credit),)
        else:
            kept = []
            left = credit
            for a, b in merged:
                if left <= 0:
                    break
                take = min(b - a, left)
                kept.append((a, a + take))
                left -= take
            credited = tuple(kept)
            credit -= max(left, 0)
    else:
        credit = 0
    if j.cuts:
        j.trim(claimed_ms - credit)
    if video and robot:
        j.flag("R11")

    s.hidden_since = hidden_since
    s.last_event = event
    if r.seq:
        s.last_seq = r.seq
    if claimed:
        s.last_claim_end = claimed[-1][1]
    s.claimed_ms = session_claimed
    covered = s.covered
    for a, b in credited:
        if not covered or a > covered[-1][1]:  # playing on: append
            covered.append((a, b))
            s.covered_ms += b - a
        else:
            s.covered_ms += _new_ms(covered, a, b)
            _add_range(covered, a, b)
    return credited, credit, start, j


# --- one beat (online) ----------------------------------------------------------------------


def state_of(prior: Prior) -> SessionState:
    return SessionState(
        us_of(prior.hidden_since) if prior.hidden_since is not None else None,
        prior.last_event,
        prior.last_claim_end,
        prior.session_claimed_ms,
        prior.session_covered,
        prior.last_seq,
    )


def assess(beat: BeatInput, prior: Prior, policy: Mapping[str, Any], checks: Sequence[CheckInput] = ()) -> Outcome:
    """Judge one beat. Pure: same inputs, same answer."""
    s = state_of(prior)
    credited, credit, start, j = judge(
        row_from_input(beat),
        us_of(beat.credit_from),
        s,
        prior.lesson_credited_ms,
        prior.day_credited_ms,
        params_of(policy),
        Checks(checks) if checks else None,
    )
    return Outcome(
        credited=credited,
        credited_ms=credit,
        credit_start=at_us(start),
        cuts=j.cuts,
        flags=tuple(sorted(set(j.flags))),
        after=Prior(
            hidden_since=at_us(s.hidden_since) if s.hidden_since is not None else None,
            last_event=s.last_event,
            last_seq=s.last_seq,
            last_claim_end=s.last_claim_end,
            session_claimed_ms=s.claimed_ms,
            session_covered=tuple(s.covered),
            lesson_credited_ms=prior.lesson_credited_ms + credit,
            day_credited_ms=prior.day_credited_ms + credit,
        ),
    )


# --- a whole day (recompute, benchmark) -----------------------------------------------------


_judged = tuple.__new__  # builds a Judged without the Python-level NamedTuple constructor


class Judged(NamedTuple):
    """The judgement of one beat of a day replay."""

    credited: tuple[segs.Segment, ...]
    credited_ms: int
    credit_start: int
    cuts: dict[str, int]
    flags: tuple[str, ...]


@dataclass
class DayStart:
    """What the day replay needs from before its first beat."""

    sessions: dict[str, SessionState] = field(default_factory=dict)
    lessons: dict[int, int] = field(default_factory=dict)
    #: The person's clock (µs) before the day: how far their credit already reached.
    clock: int | None = None


def assess_day(
    rows: Sequence[Row],
    params: Sequence[Params] | Params,
    checks: Checks | None = None,
    start: DayStart | None = None,
) -> list[Judged]:
    """Judge a person-day's beats in order, in one pass (O(n log n)): the recompute.

    ``params`` is one ``Params`` for the whole day or one per row (the policy version
    each beat recorded). Credit starts no earlier than the person's clock, which each
    credited beat moves on, exactly as the core's clock does online.
    """
    start = start or DayStart()
    sessions = start.sessions
    lessons = start.lessons
    clock = start.clock
    day_credit = 0
    out: list[Judged] = []
    fixed: Params | None = None
    per_row: Sequence[Params] = ()
    if isinstance(params, Params):
        fixed = params
    else:
        per_row = params
    checks = checks if checks else None
    for n, r in enumerate(rows):
        s = sessions.get(r.session_id)
        if s is None:
            s = sessions[r.session_id] = SessionState()
        credit_from = clock if clock is not None and clock > r.wall_start else r.wall_start
        p = fixed if fixed is not None else per_row[n]
        credited, credit, cstart, j = judge(r, credit_from, s, lessons.get(r.lesson_id, 0), day_credit, p, checks)
        if credit:
            lessons[r.lesson_id] = lessons.get(r.lesson_id, 0) + credit
            day_credit += credit
            clock = cstart + credit * 1000
        out.append(_judged(Judged, (credited, credit, cstart, j.cuts, tuple(sorted(set(j.flags))) if j.flags else ())))
    return out
