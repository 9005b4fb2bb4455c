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
import dataclasses
import datetime as dt
import itertools
import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from lms_core.i18n import SHANGHAI as SHANGHAI  # re-exported: modules here read it from this one
from lms_core.i18n import beijing_day as beijing_day  # re-exported, as SHANGHAI
from lms_core.learning import segments as segs

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
NAN = math.nan


def ms(delta: dt.timedelta) -> int:
    """Whole milliseconds of ``delta``, truncated toward zero, in integers.

    Through float seconds (``int(delta.total_seconds() * 1000)``, as it was) 1.001 s read as
    1,000 ms (1.001 * 1000 < 1001): 741 of the first 100,000 whole-millisecond spans came out
    1 ms short, in credit and in deductions alike. Truncating whole microseconds keeps what the
    float meant to do (a span's figure never exceeds the span, so summed pieces never exceed
    the time they cover) without its error.
    """
    return _ms((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def _ms(us: int) -> int:
    """``ms(timedelta(microseconds=us))`` without the timedelta: the online beat (``assess``)
    and the recompute (``assess_day``) both count through here, so they agree."""
    return us // 1000 if us >= 0 else -(-us // 1000)


def us_of(at: dt.datetime) -> int:
    return (at - EPOCH) // _US


def at_us(us: int) -> dt.datetime:
    # Positional (days, seconds, microseconds): the same timedelta as ``microseconds=us``
    # without the keyword parsing, ~1,500 of its ~6,200 instructions (callgrind), 2-3 a beat.
    return EPOCH + dt.timedelta(0, 0, us)


def day_end_us(us: int) -> int:
    """The end (next midnight, Beijing) of the person-day holding the instant ``us``."""
    day = beijing_day(at_us(us)) + dt.timedelta(days=1)
    return us_of(dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI))


# --- the boundary: dataclasses with datetimes (online path, tests) -----------------------

_T = TypeVar("_T")
#: Each frozen dataclass's field names (``new``).
_FIELDS: dict[type, frozenset[str]] = {}


def new(cls: type[_T], /, **values: Any) -> _T:
    """``cls(**values)`` for the frozen dataclasses below, built without ``__init__`` when
    ``values`` names every field (as ``IntervalClaim.of`` does): a frozen ``__init__`` sets
    each field by ``object.__setattr__``, ~2-6 µs for a ``BeatInput`` or a ``Prior``, made
    several times per beat. Any other set of names (one missing, one unknown) goes through
    ``__init__``, which fills the defaults or says what is wrong. Equal to ``cls(**values)``
    (``tests/plugins/anti_idle/test_els_new.py``)."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    if values.keys() != names:
        return cls(**values)
    built = object.__new__(cls)
    built.__dict__.update(values)
    return built


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
    #: From the person's beats (``AttentionCheck.silent``/``reached_at``): nothing of theirs
    #: reached the server between the issue and the due time, and their first beat after it.
    silent: bool = False
    reached_at: dt.datetime | None = None

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
    #: The person's focused stream on the day (the session whose last beat played media
    #: visible and focused) and until when it holds the focus (see ``replay``, R04f).
    focus_session: str | None = None
    focus_until: dt.datetime | None = None


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


#: ``(session_id, lesson_id, event, wall_start, claimed, claimed_ms, claim start, claim end,
#: duration_ms, rate, seq, seq_min, wall_ms, life_ms (a float), delivered, drift, received,
#: focused, budget, claim start + slack, credit end, restart)``: see ``Row.hot``.
Hot = tuple[
    str,
    int,
    str,
    int,
    tuple[segs.Segment, ...],
    int,
    int,
    int,
    int | None,
    float | None,
    int,
    int | None,
    int,
    float,
    float,
    float | None,
    int,
    bool | None,
    int,
    int,
    int,
    bool,
]


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
    envelope: str | None
    #: Documents: ms since the reader's last trusted input (``presence.idle_ms``), else None.
    idle_ms: float | None
    #: Input events with ``isTrusted`` false the page counted.
    untrusted: int
    #: ``performance.now()`` at send (``presence.mono_ms``), else None.
    mono_ms: float | None
    #: The beat's ``seq`` (0: unknown).
    seq: int
    # Derived once per beat by ``row_of`` (they depend on the beat alone, never on the
    # policy or the state), so the day replay does not recompute them on every pass.
    #: ``_ms(received - wall_start)``: the beat's wall span.
    wall_ms: int
    #: ``_ms(received - launched)``: the session's server lifetime at this beat.
    life_ms: int
    #: Measure of ``merged``.
    merged_ms: int
    #: A video reported visible with no animation frame for 20 s or more (R13).
    spoofed: bool
    #: Hidden for the presence rule (R05): reported hidden, or spoofed.
    hidden: bool
    #: ``event in RESTART_EVENTS``.
    restart: bool
    #: Media delivered to the session (ms of the file's duration), for R14; None when unknown.
    delivered: float | None
    #: ``mono_ms - life_ms`` (R13d), else None.
    drift: float | None
    #: The slowest playback rate the page reported while playing (``presence.rate_min``).
    slow: float | None = None
    #: ``presence.focused`` (``document.hasFocus()`` at send) when the page said, else None.
    focused: bool | None = None
    #: Whether a beat of the session is missing before this one, by the core's own last
    #: seq (``seq_prev``, stamped by the credit path); None for beats stored without it,
    #: which are judged against the previous beat the plugin saw (R03q).
    seq_gap: bool | None = None
    #: The fields ``replay``'s fast path reads, as one plain tuple (``Hot``), when the beat
    #: can take that path: a visible, unflagged video beat with one well-formed claimed
    #: range, its delivery known and no seq gap stamped; else None. (A plain tuple unpacks
    #: faster than this NamedTuple, and in fewer names.) Besides the fields above it holds
    #: what the fast path would otherwise compute on every pass from the beat alone:
    #: ``seq_min`` (the session's last seq must be at least this, R03q; None: no test),
    #: ``life_ms`` as a float (``max_rate * life`` then multiplies two floats, the same
    #: product without the mixed-type path), the budget ``min(wall_ms + TOLERANCE_MS,
    #: claimed_ms)``, ``a + CONTINUITY_SLACK_MS`` (R16) and ``wall_start + claimed_ms * 1000``
    #: (the person's clock after a whole credit).
    hot: Hot | None = None


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
    #: The slowest rate the UI offers: slower playback earns real time (see ``judge_rows``).
    min_rate: float = 1.0
    #: How long a focused stream's beat keeps the person's focus (1.5 heartbeat cadences).
    focus_hold_us: int = 15_000_000


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
        min_rate=float(min(policy["allowed_rates"])),
        focus_hold_us=int(policy.get("heartbeat_seconds", 10)) * 1_500_000,
    )


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:  # not NaN
        return float(value)
    return None


#: What a missing or malformed client object reads as (never written to).
_NOTHING: Mapping[str, Any] = MappingProxyType({})


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one (JSON objects are dicts: tested first,
    because ``isinstance`` against the ``Mapping`` ABC costs several times more)."""
    return value if type(value) is dict or (value is not None and isinstance(value, Mapping)) else _NOTHING


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
    claimed_t = tuple([(int(a), int(b)) for a, b in claimed])  # a list first: faster than a generator
    client = _mapping(client)
    presence = _mapping(client.get("presence"))
    raf = presence.get("raf", client.get("raf_frames"))
    rate = _number(presence.get("rate_max"))
    rate = rate if rate is not None else _number(client.get("rate"))
    probes = presence.get("probes")
    untrusted = _mapping(presence.get("input")).get("untrusted")
    envelope = client.get("envelope")
    now, wall, launch = us_of(received_at), us_of(wall_start), us_of(launched_at)
    video = kind == "video"
    merged = claimed_t if _is_merged(claimed_t) else tuple(segs.normalise(claimed_t))
    claimed_ms = sum([b - a for a, b in claimed_t])
    wall_ms = _ms(now - wall)
    life_ms = _ms(now - launch)
    raf_n = raf if type(raf) is int or (isinstance(raf, int) and not isinstance(raf, bool)) else None
    visibility = client.get("visibility")
    spoofed = video and visibility == "visible" and raf_n == 0 and claimed_ms > 0 and wall_ms >= 20_000
    mono_ms = _number(presence.get("mono_ms"))
    seq_prev = client.get("seq_prev")
    seq_gap = seq > seq_prev + 1 if isinstance(seq_prev, int) and not isinstance(seq_prev, bool) and seq > 0 else None
    delivered = (
        duration_ms * min(1.0, bytes_served / media_size)
        if video and bytes_served and media_size and duration_ms
        else None
    )
    envelope = envelope if isinstance(envelope, str) else None
    robot = client.get("webdriver") is True or (isinstance(probes, int) and bool(probes & 1))
    hidden = visibility == "hidden" or spoofed
    drift = None if mono_ms is None else mono_ms - life_ms
    slow = _number(presence.get("rate_min"))
    focused = presence.get("focused")
    focused = focused if isinstance(focused, bool) else None
    # Positional, in ``Row``'s field order (by keyword, its 36 fields cost ~1 µs more a beat).
    return Row(
        session_id,
        lesson_id,
        video,
        kind,
        event,
        wall,
        now,
        launch,
        claimed_t,
        claimed_ms,
        merged,
        duration_ms,
        bytes_served,
        media_size,
        visibility,
        raf_n,
        rate,
        client.get("bg_audio_mode") is True,
        robot,
        envelope,
        _number(presence.get("idle_ms")),
        untrusted if isinstance(untrusted, int) and not isinstance(untrusted, bool) else 0,
        mono_ms,
        seq,
        wall_ms,
        life_ms,
        claimed_ms if merged is claimed_t else sum([b - a for a, b in merged]),
        spoofed,
        hidden,
        event in RESTART_EVENTS,
        delivered,
        drift,
        slow,
        focused,
        seq_gap,
        (
            (
                session_id,
                lesson_id,
                event,
                wall,
                claimed_t,
                claimed_ms,
                claimed_t[0][0],
                claimed_t[0][1],
                duration_ms,
                rate,
                seq,
                seq - 1 if seq_gap is None and seq else None,
                wall_ms,
                float(life_ms),
                delivered,
                drift,
                now,
                focused,
                claimed_ms if claimed_ms <= wall_ms + TOLERANCE_MS else wall_ms + TOLERANCE_MS,
                claimed_t[0][0] + CONTINUITY_SLACK_MS,
                wall + claimed_ms * 1000,
                event in RESTART_EVENTS,
            )
            if video
            and not seq_gap
            and focused is not False
            and not hidden
            and not robot
            and (envelope is None or envelope == "valid")
            and len(claimed_t) == 1
            and merged is claimed_t
            and delivered is not None
            and (slow is None or slow >= 1.0)
            else None
        ),
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
        # (issued, due, answered, outcome, trusted, latency, silent, reached), sorted as the spans are built.
        self.items = sorted(
            (
                (us_of(c.issued_at), us_of(c.due_at), us_of(c.answered_at) if c.answered_at else None)
                + (c.outcome, c.trusted, c.latency_ms, c.silent, us_of(c.reached_at) if c.reached_at else None)
                for c in checks
            ),
            key=lambda c: (c[0], c[1]),
        )
        self.issued = [c[0] for c in self.items]
        self.answers = sorted(c[2] for c in self.items if c[2] is not None)
        #: (issued, due, reached) of the checks whose window passed in silence: what they
        #: say depends on ``now`` beyond the counts above (``_offline_key``). Usually none.
        self.silent = [(c[0], c[1], c[7]) for c in self.items if c[6]]
        self._cache: dict[tuple[Any, ...], tuple[list[Span], list[Span]]] = {}

    def __bool__(self) -> bool:
        return bool(self.items)

    def spans(self, now: int, floor_ms: int) -> tuple[list[Span], list[Span]]:
        """(overdue spans, automated spans) of the person, as known at ``now``.

        Overdue: from a check's due time until it, or a later check, is validly answered.
        Automated: from an automated answer's check issue until the next valid answer, or
        the end of that person-day, whichever comes first: the void is that day's verdict
        (docs/anti_idle.md, "An automated answer voids its own day"); the next day starts
        with a check owed at once (``checks.owed_after_ms``), so presence is still asked.
        An answer given after ``now`` is not known yet at ``now``.

        Offline when a check fell due: a check whose whole window passed with nothing of the
        person reaching the server (``silent``) could not be answered (an answer could not
        leave the device, nor the check reach it). Its window starts again at the person's
        first beat after the due time (``reached``; the beat being judged, when it is that
        beat): a valid answer, to it or to a later check, within a window of that is on
        time, and until then it stops nothing. Otherwise the relief lapses with that window
        and the check is overdue from its own due time, as any other: a script that goes
        quiet over a check and never answers is stopped from the same moment as one that
        does not (the credit its late beats were given meanwhile is deducted at the day
        assessment: R07o, ``day_rules.relief_lapsed``).
        """
        key: tuple[Any, ...] = (bisect.bisect_right(self.issued, now), bisect.bisect_right(self.answers, now), floor_ms)
        if self.silent:
            key += self._offline_key(now)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._spans(key[0], now, floor_ms)
        return found

    def _offline_key(self, now: int) -> tuple[tuple[bool, bool], ...]:
        """Per silent check: whether its due time has passed, and whether its new window has."""
        return tuple(
            (due < now, now < relief_end(issued, due, reached, now))
            for issued, due, reached in self.silent
            if issued <= now
        )

    def _spans(self, issued: int, now: int, floor_ms: int) -> tuple[list[Span], list[Span]]:
        known = []
        for c_issued, due, answered, outcome, trusted, latency, silent, reached in self.items[:issued]:
            if answered is not None and answered > now:
                answered, outcome = None, "pending"
            automated = answered is not None and (
                outcome == "automated" or trusted is False or (latency is not None and latency < floor_ms)
            )
            passed = answered is not None and outcome == "passed" and not automated
            # The window starts again when the person is back (see ``spans``); None: no relief.
            relief = relief_end(c_issued, due, reached, now) if silent and due < now else None
            known.append((c_issued, due, answered, passed, automated, relief))
        valid = sorted(a for _i, _d, a, passed, _a, _r in known if passed and a is not None)

        def next_valid(after: int) -> int:
            k = bisect.bisect_left(valid, after)
            return valid[k] if k < len(valid) else FOREVER_US

        overdue: list[Span] = []
        automated_spans: list[Span] = []
        for c_issued, due, answered, passed, automated, relief in known:
            if automated:
                automated_spans.append((c_issued, min(next_valid(c_issued), day_end_us(c_issued))))
                continue
            until = answered if passed and answered is not None else next_valid(c_issued)
            if passed and until <= due:
                continue  # answered in time
            if relief is not None and (now < relief or until <= relief):
                continue  # offline when it fell due: answered within the new window, or still in it
            overdue.append((due, until))
        return overdue, automated_spans


def relief_end(issued: int, due: int, reached: int | None, now: int) -> int:
    """The end of a silent check's new window: a window after the person's first beat past
    its due time (``now`` when none is known yet: the beat being judged is that beat)."""
    back = reached if reached is not None and reached <= now else now
    return back + (due - issued)


def check_spans(
    checks: Sequence[CheckInput], now: dt.datetime, floor_ms: int
) -> tuple[list[tuple[dt.datetime, dt.datetime]], list[tuple[dt.datetime, dt.datetime]]]:
    """``Checks.spans`` with datetimes (for pages and tests)."""
    overdue, automated = Checks(checks).spans(us_of(now), floor_ms)
    forever = dt.datetime.max.replace(tzinfo=dt.UTC)

    def back(spans: list[Span]) -> list[tuple[dt.datetime, dt.datetime]]:
        return [(at_us(a), forever if b == FOREVER_US else at_us(b)) for a, b in spans]

    return back(overdue), back(automated)


def _int_bound(x: float) -> float | int:
    """``floor(x)`` when ``x`` is finite, else ``x``: for an int n, ``n <= x`` iff
    ``n <= floor(x)``, and an int compared with an int skips the mixed-type path."""
    return math.floor(x) if math.isfinite(x) else x


def _inside(at: int, spans: Iterable[Span]) -> bool:
    """Whether ``at`` falls in one of the spans (a helper, not a generator inside ``replay``:
    a generator there would turn ``replay``'s locals it reads into cells, slower on every beat)."""
    return any(a <= at < b for a, b in spans)


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


def _cut(cuts: dict[str, int] | None, rule: str, amount: int) -> dict[str, int]:
    """Remove ``amount`` (> 0) ms of the claim under ``rule``; the dict is made on the first cut."""
    if cuts is None:
        return {rule: amount}
    cuts[rule] = cuts.get(rule, 0) + amount
    return cuts


def _flag(flags: list[str] | None, rule: str) -> list[str]:
    """A rule that fired without removing time (scored at day level)."""
    if flags is None:
        return [rule]
    flags.append(rule)
    return flags


def _trim(cuts: dict[str, int], uncredited: int) -> None:
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


class SessionState:
    """The running state of one session (mutated beat by beat by the replay)."""

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
        #: Ranges in normal form already (the stored session's, nearly always) are taken as
        #: they are: ``normalise`` would give the same pairs (``_merged_ints``).
        self.covered: list[segs.Segment] = list(covered) if _merged_ints(covered) else segs.normalise(covered)
        self.covered_ms = segs.total(self.covered)

    def keep(
        self,
        hidden_since: int | None,
        last_event: str | None,
        last_claim_end: int | None,
        claimed_ms: int,
        covered_ms: int,
        last_seq: int | None,
    ) -> None:
        """Take back what ``replay`` held in locals while the session's beats followed each
        other (``covered`` is the same list, changed in place)."""
        self.hidden_since, self.last_event, self.last_claim_end = hidden_since, last_event, last_claim_end
        self.claimed_ms, self.covered_ms, self.last_seq = claimed_ms, covered_ms, last_seq


def _head(ranges: Sequence[segs.Segment], ms: int) -> tuple[segs.Segment, ...]:
    """The first ``ms`` milliseconds of sorted, disjoint ``ranges``."""
    kept = []
    left = ms
    for a, b in ranges:
        if left <= 0:
            break
        take = b - a if b - a < left else left
        kept.append((a, a + take))
        left -= take
    return tuple(kept)


def _new_ms(covered: list[segs.Segment], a: int, b: int) -> int:
    """Milliseconds of ``[a, b)`` not yet in the sorted, merged ``covered`` (O(log n))."""
    if not covered or a >= covered[-1][1]:  # playing on past everything seen: the common case
        return b - a
    k = bisect.bisect_right(covered, (a, FOREVER_US))
    if k:
        k -= 1  # the range starting at or before a may reach into [a, b)
        s, e = covered[k]
        if e >= b:  # re-watching inside one seen range: nothing new
            return 0
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
    if lo < len(covered) and covered[lo][0] <= a and covered[lo][1] >= b:
        return  # already inside one range
    hi, start, end = lo, a, b
    while hi < len(covered) and covered[hi][0] <= b:
        s, e = covered[hi]
        start, end = min(start, s), max(end, e)
        hi += 1
    covered[lo:hi] = [(start, end)]


class FocusState:
    """The person's focused stream: the session whose last beat played media visible and
    focused (``presence.focused``), and until when (µs) that beat holds the focus (R04f)."""

    __slots__ = ("session_id", "until")

    def __init__(self, session_id: str | None = None, until: int = 0) -> None:
        self.session_id = session_id
        self.until = until


#: The judgement of one beat, a plain tuple (a NamedTuple costs a quarter of a
#: microsecond more per beat to build, 10 % of the replay):
#: ``(credited, credited_ms, credit_start, cuts, flags)``: the media ranges credited, their
#: measure, where credit may start (µs: after the person's clock and the beat's wall
#: start), ms removed per rule (e.g. ``{"R05": 29_000}``), and the rules that fired
#: without removing time (sorted, once each).
Judged = tuple[tuple[segs.Segment, ...], int, int, dict[str, int], tuple[str, ...]]


def replay(
    rows: Iterable[Row],
    params: Iterable[Params],
    checks: Checks | None,
    sessions: dict[str, SessionState],
    lessons: dict[int, int],
    clock: int | None,
    day_credit: int,
    focus: FocusState | None = None,
) -> tuple[list[Judged], int | None, int]:
    """Judge beats in order: the one core of the online path and of the day replay.

    ``params`` gives each row its policy thresholds (``itertools.repeat`` for one
    version). ``sessions`` (running state per session) and ``lessons`` (ms credited
    per lesson) are updated in place; returns the judgements, the person's clock (µs,
    where their credit reached) and the ms credited since ``day_credit``'s start.

    Hot path (3,000 beats per person-day in a recompute): one loop over plain tuples,
    everything a beat alone determines precomputed by ``row_of``, locals rather than
    helper calls, and the rule blocks skipped by one test when they cannot fire. Each
    rule is a block below; ``cuts``/``flags`` are created on the first deduction or flag.
    Spans count whole milliseconds in integers (``_ms``, truncated toward zero), as ``ms``.
    """
    out: list[Judged] = []
    append = out.append
    has_checks = bool(checks)
    last_p: Params | None = None
    max_rate = cap_ratio = 0.0
    grace_us = floor_ms = slack_ms = day_cap_ms = idle_us = drift_ms = 0
    signed = False
    last_sid: str | None = None
    s = SessionState()
    s_hidden: int | None = None
    s_event: str | None = None
    s_claim_end: int | None = None
    s_seq: int | None = None
    s_claimed = s_covered_ms = 0
    s_covered: list[segs.Segment] = []
    rate_cap = 0.0
    cap_of: int | None = None
    cap_ms = 0
    last_lesson: int | None = None
    lesson_ms = 0
    # The fast path's bounds that depend on the policy and one value of the beat that
    # rarely changes (the wall span: the cadence; the media delivered): computed again only
    # when that value (or the policy) changes. The speed bound is kept as an int when it can
    # be (``n <= x`` iff ``n <= floor(x)`` for an int n and a finite x), so the test per
    # beat compares two ints instead of multiplying, adding and comparing across types.
    speed_of: int | None = None
    speed_lim: float = 0
    deliv_of = NAN
    deliv_lim = 0
    session_slack_f = float(SESSION_SLACK_MS)  # a float: ``max_rate * life_f`` adds float to float
    drift_lim = 0.0
    focus = focus if focus is not None else FocusState()
    f_sid, f_until = focus.session_id, focus.until
    for r, p in zip(rows, params, strict=False):  # params may be itertools.repeat
        if p is not last_p:
            (
                max_rate,
                grace_us,
                floor_ms,
                slack_ms,
                cap_ratio,
                day_cap_ms,
                signed,
                idle_us,
                drift_ms,
                min_rate,
                focus_hold_us,
            ) = p
            last_p = p
            rate_cap = max_rate + 0.01
            cap_of = None
            speed_of, deliv_of = None, NAN
            drift_lim = float(drift_ms)  # exact: a float compares with a float on the fast path
        # --- the fast path: honest video playing on (nearly every beat of a day) ----------
        # The conditions below are exactly "no rule can fire" for the rule blocks further
        # down (no R04 overlap, nothing hidden, no check span, no R01/R03/R16/R03q/R13d, R14
        # within delivery, under both caps, no cut, no flag); the judgement is then the
        # claim itself, bounded by the budget. Anything else falls through to the full path,
        # which judges from the same untouched state. Same verdicts, about half the work.
        hot = r[-1]
        if hot is not None:
            (
                sid,
                lesson_id,
                event,
                wall_start,
                claimed,
                claimed_ms,
                a,
                b,
                duration,
                rate,
                seq,
                seq_min,
                wall_ms,
                life_f,
                delivered_ms,
                drift,
                now,
                focused,
                credit,
                a_slack,
                end_us,
                restart,
            ) = hot
            if wall_ms != speed_of:  # R01's bound, once per policy and wall span
                speed_of, speed_lim = wall_ms, _int_bound(max_rate * wall_ms + SPEED_SLACK_MS)
            # Each test keeps its rule's arithmetic, rearranged over ints where exact
            # (``a >= end - slack`` as ``a + slack >= end``, ``seq <= last + 1`` as
            # ``last >= seq - 1``, the sums taken once and kept for the update below).
            if (
                sid == last_sid
                and (clock is None or clock <= wall_start)
                and s_hidden is None
                # (``wall_ms`` unclamped: a negative span only makes the test stricter.)
                and claimed_ms <= speed_lim
                and (rate is None or rate <= rate_cap)
                and (claimed_after := s_claimed + claimed_ms) <= max_rate * life_f + session_slack_f
                and (s_claim_end is None or a_slack >= s_claim_end or restart or s_event in RESTART_EVENTS)
                # no R03q: by the core's last seq when stamped (no gap, or no hot tuple), else the plugin's
                and (seq_min is None or (s_seq or 0) >= seq_min)
                and (drift is None or drift <= drift_lim)
                and (not has_checks or not any(checks.spans(now, floor_ms)))  # type: ignore[union-attr]
            ):
                covered = s_covered
                if not covered:
                    new = claimed_ms
                    last0 = last1 = -1
                else:
                    last0, last1 = covered[-1]
                    if a >= last1:
                        new = claimed_ms  # playing on past everything seen
                    elif a >= last0 and b <= last1:
                        new = 0  # re-watching inside the last seen range
                    else:
                        k = bisect_right(covered, (a, FOREVER_US)) - 1
                        new = 0 if k >= 0 and covered[k][1] >= b else _new_ms(covered, a, b)
                # ``credit`` is the budget: ``span_ms`` is ``wall_ms`` from ``wall_start``.
                if lesson_id != last_lesson:
                    # ``lesson_ms`` stands for lessons[last_lesson] while the fast path runs on
                    # one lesson, written back when it leaves it (here, at the full path, at the end).
                    if last_lesson is not None:
                        lessons[last_lesson] = lesson_ms
                    last_lesson, lesson_ms = lesson_id, lessons.get(lesson_id, 0)
                if duration != cap_of:  # the lesson cap (R10), once per policy and duration
                    cap_of, cap_ms = duration, int(cap_ratio * duration) if duration else 0
                if new != 0 and delivered_ms != deliv_of:  # R14's room, once per policy and delivery
                    deliv_of, deliv_lim = delivered_ms, int(delivered_ms + slack_ms)
                lesson_after = lesson_ms + credit
                day_after = day_credit + credit
                if (
                    credit > 0
                    and (new == 0 or new <= deliv_lim - s_covered_ms)
                    and (not duration or lesson_after <= cap_ms)
                    and day_after <= day_cap_ms
                ):
                    s_claim_end = b
                    if credit == claimed_ms:
                        credited: tuple[segs.Segment, ...] = claimed
                        if new:
                            s_covered_ms += new
                            if a > last1:  # also when nothing was covered (last1 = -1)
                                covered.append(claimed[0])
                            elif a >= last0:  # touching or overlapping the last range only
                                covered[-1] = (last0, b)
                            else:
                                _add_range(covered, a, b)
                        clock = end_us
                    else:
                        b = a + credit
                        credited = ((a, b),)
                        if a > last1:
                            covered.append(credited[0])
                            s_covered_ms += credit
                        else:
                            s_covered_ms += _new_ms(covered, a, b)
                            _add_range(covered, a, b)
                        clock = wall_start + credit * 1000
                    s_event = event
                    if seq:
                        s_seq = seq
                    s_claimed = claimed_after
                    if focused:  # this stream has the person's focus (R04f)
                        f_sid, f_until = sid, now + focus_hold_us
                    lesson_ms = lesson_after
                    day_credit = day_after
                    append((credited, credit, wall_start, {}, ()))
                    continue

        (
            sid,
            lesson_id,
            video,
            kind,
            event,
            wall_start,
            now,
            _launched,
            claimed,
            claimed_ms,
            merged,
            duration,
            _served,
            _size,
            _visibility,
            _raf,
            rate,
            bg_audio,
            robot,
            envelope,
            idle,
            untrusted,
            _mono,
            seq,
            wall_ms,
            life_ms,
            merged_ms,
            spoofed,
            hidden,
            restart,
            delivered,
            drift,
            slow,
            focused,
            seq_gap,
            _hot,
        ) = r
        if last_lesson is not None:  # the full path reads and writes ``lessons`` itself
            lessons[last_lesson] = lesson_ms
            last_lesson = None
        if sid != last_sid:
            # The session's running state lives in locals while its beats follow each other.
            if last_sid is not None:
                s.keep(s_hidden, s_event, s_claim_end, s_claimed, s_covered_ms, s_seq)
            found = sessions.get(sid)
            if found is None:
                found = sessions[sid] = SessionState()
            s, last_sid = found, sid
            s_hidden, s_event, s_claim_end, s_claimed, s_covered, s_covered_ms, s_seq = (
                s.hidden_since,
                s.last_event,
                s.last_claim_end,
                s.claimed_ms,
                s.covered,
                s.covered_ms,
                s.last_seq,
            )
        # Credit starts no earlier than the person's clock (one stream at a time).
        start = clock if clock is not None and clock > wall_start else wall_start
        # The person's budget (as the core computes it): time after their clock, plus the
        # one-second jitter tolerance that the clock lends and the next beat repays.
        span_ms = now - start  # in µs here; whole ms truncated toward zero, as ``_ms``
        span_ms = span_ms // 1000 if span_ms >= 0 else -(-span_ms // 1000)
        budget = span_ms + TOLERANCE_MS
        if budget < 0:
            budget = 0
        cuts: dict[str, int] | None = None
        flags: list[str] | None = None

        # --- one person, one stream: time another stream already credited (R04) --------
        if claimed_ms and start > wall_start:
            overlap = _ms((now if now < start else start) - wall_start)
            amount = claimed_ms if claimed_ms < overlap else overlap
            if amount > 0:
                cuts = _cut(cuts, "R04", amount)
        # --- one person, one stream: the focused stream wins an overlap (R04f) ----------
        # A stream the page reports hidden or not focused, playing while another session of
        # the person played visible and focused within the last 1.5 cadences, yields: its
        # claim is not credited (R04) and the person's clock stays for the focused stream's
        # next beat, whichever of the two beats arrives first. Honest learners are not
        # touched: a handoff between devices has both pages focused, two monitors one stream.
        yielded = claimed_ms > 0 and (hidden or focused is False) and f_sid is not None and f_sid != sid
        if yielded and now > f_until:
            yielded = False

        # --- presence: hidden beyond the grace period (R05) ------------------------------
        hidden_since = s_hidden
        hidden_excess = 0
        if hidden or hidden_since is not None:
            if hidden and hidden_since is None:
                # The "hidden" event beat is sent as the page hides; a heartbeat already
                # hidden (hidden at load, or a spoof) was hidden over its whole interval.
                hidden_since = now if event == "hidden" else wall_start
            over = now - max(start, hidden_since + grace_us)  # type: ignore[operator]
            hidden_excess = over // 1000 if over > 0 else 0
            if spoofed:
                flags = _flag(flags, "R13")
            if not hidden:  # back to visible: the interval up to now was hidden
                hidden_since = None
            if hidden_excess:
                if video and not bg_audio:
                    amount = min(hidden_excess, claimed_ms)
                    if amount > 0:
                        cuts = _cut(cuts, "R05", amount)
                else:
                    hidden_excess = 0

        # --- attention checks: overdue stops credit, automated answers void (R07) --------
        blocked = hidden_excess
        halted = False
        if has_checks:
            overdue, automated = checks.spans(now, floor_ms)  # type: ignore[union-attr]
            # A check overdue (or answered by a script) right now lends no jitter tolerance:
            # a beat arriving just after the due time, whose credit the person clock would
            # place after ``now``, must not earn that second either.
            halted = _inside(now, overdue) or _inside(now, automated)
            void_ms = _spans_overlap(start, now, automated) if automated else 0
            overdue_ms = _spans_overlap(start, now, overdue) if overdue else 0
            if void_ms:
                amount = min(void_ms, claimed_ms)
                if amount > 0:
                    cuts = _cut(cuts, "R07b", amount)
                flags = _flag(flags, "R07b")
            amount = min(max(0, overdue_ms - void_ms), claimed_ms)
            if amount > 0:
                cuts = _cut(cuts, "R07", amount)
            blocked += max(void_ms, overdue_ms)

        # --- documents: no trusted input for too long (R08) --------------------------------
        # The reader reports how long ago the last trusted input was (``presence.idle_ms``).
        # Like visibility, the figure can only remove credit: a script that lies about it
        # gains nothing over one that moves the mouse, and checks still test presence.
        if not video and claimed_ms and kind == "document":
            if idle is not None and idle > 0:
                idle_from = now - int(min(idle, 86_400_000) * 1000) + idle_us
                over = now - max(start, idle_from)
                idle_excess = over // 1000 if over > 0 else 0
                if idle_excess:
                    amount = min(idle_excess, claimed_ms)
                    if amount > 0:
                        cuts = _cut(cuts, "R08", amount)
                    blocked += idle_excess
            if untrusted > 0:
                flags = _flag(flags, "R08b")  # input dispatched by a script (isTrusted false)

        # The jitter tolerance is for honest clocks only: an interval that lost time to a
        # presence rule gets none, or a beat per second would earn a second each.
        eligible = budget if not blocked and not halted else max(0, span_ms - blocked)
        zero_reason: str | None = "R04" if yielded else None
        session_claimed = s_claimed + claimed_ms
        new = -1  # media ms of the claim not yet credited to the session (R14), when computed
        allowed_content = claimed_ms

        if video:
            # --- speed (R01): content faster than the fastest allowed rate --------------
            if claimed_ms and (
                claimed_ms > max_rate * (wall_ms if wall_ms > 0 else 0) + SPEED_SLACK_MS
                or (rate is not None and rate > max_rate + 0.01)
            ):
                zero_reason = "R01"
            # --- forged or replayed progress (R03 / R16) ------------------------------------
            if session_claimed > max_rate * life_ms + SESSION_SLACK_MS:
                zero_reason = zero_reason or "R03"
            last_end = s_claim_end
            if (
                claimed
                and last_end is not None
                and claimed[0][0] < last_end - CONTINUITY_SLACK_MS
                and not restart
                and s_event not in RESTART_EVENTS
            ):
                zero_reason = zero_reason or "R16"

        # --- the envelope (R03e): signed by the lesson page's per-session key ------------
        # A beat that no page of this session signed earns nothing: forged with plain HTTP,
        # or altered on the way. (A script in the page can still sign: envelope.py.)
        if envelope is not None and envelope != "valid":
            if claimed_ms and signed and envelope in ("unsigned", "bad"):
                zero_reason = "R03e"
            if envelope == "bad":
                flags = _flag(flags, "R03b")
        # --- gaps in seq (R03q): beats that never arrived; the server clock covers the time
        # The core's last seq says it; the plugin's own does not (beats that claim nothing,
        # paused or hidden, never reach it), so that is only for beats stored without it.
        if seq_gap or (seq_gap is None and seq and seq > (s_seq or 0) + 1):
            flags = _flag(flags, "R03q")
        # --- clock drift (R13d): the page's clock ran ahead of the server's ---------------
        # ``presence.mono_ms`` is performance.now() at send, counted from the navigation that
        # created the session, so it can exceed the server's time since launch only by the
        # page's own load time. More means accelerated timers (a speed hack).
        if drift is not None and drift > drift_ms:
            flags = _flag(flags, "R13d")

        # --- media delivery (R14): bytes actually served to this session's URL ----------
        if claimed_ms:
            if video:
                if delivered is None:
                    zero_reason = zero_reason or "R14"
                else:
                    covered = s_covered
                    if len(merged) == 1:
                        a, b = merged[0]
                        if not covered or a >= covered[-1][1]:
                            new = b - a  # playing on past everything seen
                        else:
                            k = bisect_right(covered, (a, FOREVER_US)) - 1
                            # Re-watching inside one seen range: nothing new.
                            new = 0 if k >= 0 and covered[k][1] >= b else _new_ms(covered, a, b)
                    else:
                        new = 0
                        for a, b in merged:  # disjoint ranges: their new parts add up
                            new += _new_ms(covered, a, b)
                    # Nothing new on a positive claim leaves it whole, whatever the room.
                    room = int(delivered + slack_ms) - s_covered_ms if new or claimed_ms < 0 else 0
                    if new > room:
                        allowed_content = max(0, claimed_ms - (new - max(0, room)))
                        if allowed_content == 0:
                            zero_reason = zero_reason or "R14"
                        elif claimed_ms > allowed_content:
                            cuts = _cut(cuts, "R14", claimed_ms - allowed_content)
            elif kind == "document" and _size and not _served:
                zero_reason = zero_reason or "R14"  # "read" a document whose file was never fetched

        stretch = 0  # the media credited, when slow playback earns more time than media
        if zero_reason is not None:
            amount = claimed_ms - (sum(cuts.values()) - cuts.get(zero_reason, 0) if cuts else 0)
            if amount > 0:
                cuts = _cut(cuts, zero_reason, amount)
            credit = 0
        else:
            credit = claimed_ms if claimed_ms < eligible else eligible
            if allowed_content < credit:
                credit = allowed_content
            # --- allowed slow speeds earn the real time they took --------------------------
            # At 0.75x a learner spends 10 s on 7.5 s of media: the ranges credited stay the
            # media (coverage), the time credited is the real time, at most the interval's
            # eligible real time and never beyond media / the slowest rate the UI offers.
            # The rate is the page's word; it can only turn media already credited into at
            # most the real time that passed, which the person's clock bounds anyway.
            if credit and video and not blocked and slow is not None and min_rate <= slow < 1.0:
                stretched = min(int(credit / slow), eligible)
                if stretched > credit:
                    stretch, credit = credit, stretched  # ``stretch`` keeps the media part

            # --- caps: per lesson (R10) and per day (held, R10a) --------------------------
            if credit > 0 and video and duration:
                room = int(cap_ratio * duration) - lessons.get(lesson_id, 0)
                if room < 0:
                    room = 0
                if credit > room:
                    cuts = _cut(cuts, "R10", credit - room)
                    credit = room
            if credit > 0 and day_credit + credit > day_cap_ms:
                held = credit - max(0, day_cap_ms - day_credit)
                if held > 0:
                    cuts = _cut(cuts, "R10a", held)
                credit -= held

        # Whatever the rules left of the claim and was not cut above is the pause/budget gap.
        credited = ()
        if stretch and credit > 0:
            # Slow playback: the ranges carry the media part, the credit the time.
            credited = _head(merged, min(credit, stretch))
            if cuts:
                _trim(cuts, claimed_ms - sum(b - a for a, b in credited))
        elif credit > 0:
            if credit >= merged_ms:
                credit = merged_ms
                credited = merged
            elif len(merged) == 1:
                a = merged[0][0]
                credited = ((a, a + credit),)
            else:
                credited = _head(merged, credit)
        else:
            credit = 0
        if cuts and not stretch:
            _trim(cuts, claimed_ms - credit)
        if video and robot:
            flags = _flag(flags, "R11")
        if yielded:
            flags = _flag(flags, "R04f")
        # The focus after this beat: taken by a focused stream playing, let go by its own
        # stream when it pauses, hides or loses the focus.
        if claimed_ms > 0 and focused and not hidden:
            f_sid, f_until = sid, now + focus_hold_us
        elif f_sid == sid and (hidden or focused is False or not claimed_ms):
            f_sid = None

        s_hidden = hidden_since
        s_event = event
        if seq:
            s_seq = seq
        if claimed:
            s_claim_end = claimed[-1][1]
        s_claimed = session_claimed
        if credited:
            covered = s_covered
            if new >= 0 and credited is merged:
                if new:  # measured above against the same ranges (none new: covered already)
                    s_covered_ms += new
                    if len(credited) == 1 and (not covered or credited[0][0] > covered[-1][1]):
                        covered.append(credited[0])  # playing on: append
                    else:
                        for a, b in credited:
                            _add_range(covered, a, b)
            else:
                for a, b in credited:
                    if not covered or a > covered[-1][1]:  # playing on: append
                        covered.append((a, b))
                        s_covered_ms += b - a
                    else:
                        s_covered_ms += _new_ms(covered, a, b)
                        _add_range(covered, a, b)
            lessons[lesson_id] = lessons.get(lesson_id, 0) + credit
            day_credit += credit
            clock = start + credit * 1000
        append(
            (
                credited,
                credit,
                start,
                cuts if cuts is not None else {},
                (tuple(sorted(set(flags))) if len(flags) > 1 else (flags[0],)) if flags else (),
            )
        )
    if last_sid is not None:
        s.keep(s_hidden, s_event, s_claim_end, s_claimed, s_covered_ms, s_seq)
    if last_lesson is not None:
        lessons[last_lesson] = lesson_ms
    focus.session_id, focus.until = f_sid, f_until
    return out, clock, day_credit


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


def assess(
    beat: BeatInput,
    prior: Prior,
    policy: Mapping[str, Any] | Params,
    checks: Sequence[CheckInput] = (),
    *,
    plain: bool = True,
) -> Outcome:
    """Judge one beat. Pure: same inputs, same answer. ``policy``: the parameters, or
    ``params_of`` them already (``policy.PolicyVersion.els_params``, kept per version).

    ``plain``: a plain document beat (``assess_plain``) is judged without the replay; False
    (the property tests, the A/B bench) sends every beat through ``replay``.
    """
    params = policy if isinstance(policy, Params) else params_of(policy)
    if plain and not checks:
        done = assess_plain(beat, prior, params)
        if done is not None:
            return done
    s = state_of(prior)
    lessons = {beat.lesson_id: prior.lesson_credited_ms}
    focus = FocusState(prior.focus_session, us_of(prior.focus_until) if prior.focus_until is not None else 0)
    ((credited, credit, start, cuts, flags),), _clock, _day = replay(
        (row_from_input(beat),),
        (params,),
        Checks(checks) if checks else None,
        {beat.session_id: s},
        lessons,
        us_of(beat.credit_from),
        prior.day_credited_ms,
        focus,
    )
    return new(
        Outcome,
        credited=credited,
        credited_ms=credit,
        credit_start=at_us(start),
        cuts=cuts,
        flags=flags,
        after=new(
            Prior,
            hidden_since=at_us(s.hidden_since) if s.hidden_since is not None else None,
            last_event=s.last_event,
            last_seq=s.last_seq,
            last_claim_end=s.last_claim_end,
            session_claimed_ms=s.claimed_ms,
            session_covered=tuple(s.covered),
            lesson_credited_ms=prior.lesson_credited_ms + credit,
            day_credited_ms=prior.day_credited_ms + credit,
            focus_session=focus.session_id,
            focus_until=at_us(focus.until) if focus.session_id is not None else None,
        ),
    )


def _merged_ints(ranges: Iterable[segs.Segment]) -> bool:
    """Whether ``tuple(segs.normalise(ranges))`` equals ``ranges``: a tuple of integer pairs,
    non-empty, sorted and apart (touching ranges would merge)."""
    if type(ranges) is not tuple:
        return False
    prev_end = -1
    for seg in ranges:
        if type(seg) is not tuple or len(seg) != 2:
            return False
        a, b = seg
        if type(a) is not int or type(b) is not int or a <= prev_end or b <= a:
            return False
        prev_end = b
    return True


def assess_plain(beat: BeatInput, prior: Prior, p: Params) -> Outcome | None:
    """``assess`` of a plain document beat, without ``row_of`` and ``replay``; None: not plain.

    Nearly every document beat at scale is plain: one claimed range, visible, credited whole
    when the person's clock is ahead of its wall start (the second the last beat borrowed),
    no check in the window (the caller's test), none of the client signals a rule reads
    (idle input, scripted input, drift, a seq gap, a signature other than valid, not
    focused) saying anything, the file fetched, under the day cap. No rule can then cut or
    flag it, and ``replay``'s full path credits the claim up to the budget. Each test
    below is the negation of one rule block of ``replay`` for a document beat, in its order;
    anything else returns None and takes the replay, from the same untouched inputs. Equal
    to the replay on every field of the outcome (``tests/plugins/anti_idle/test_els_plain.py``).
    """
    if beat.lesson_kind != "document" or beat.media_size and not beat.bytes_served:
        return None  # video (``replay``'s own fast path), or a file never fetched (R14)
    claimed = beat.claimed
    if len(claimed) != 1:
        return None
    seg = claimed[0]
    if len(seg) != 2:
        return None
    a, b = seg
    if type(a) is not int or type(b) is not int or a < 0 or b <= a:
        return None  # nothing claimed, or a malformed range
    # (A session hidden before this visible beat: R05 only lets the hidden time go, which a
    # document beat is not cut for; the state after it is not hidden, as below.)
    client = beat.client
    if type(client) is not dict:
        return None
    visibility = client.get("visibility")
    if visibility == "hidden":
        return None  # R05
    presence = client.get("presence")
    if presence is not None and type(presence) is not dict:
        return None
    envelope = client.get("envelope")
    if envelope is not None and envelope != "valid" and (envelope != "unsigned" or p.signed):
        return None  # R03e / R03b
    seq = beat.seq
    seq_prev = client.get("seq_prev")
    if seq_prev is not None and type(seq_prev) is not int:
        return None  # one ``row_of`` may read otherwise
    seq_gap = seq > seq_prev + 1 if seq_prev is not None and seq > 0 else None
    if seq_gap or (seq_gap is None and seq and seq > (prior.last_seq or 0) + 1):
        return None  # R03q: by the core's last seq, else by the plugin's
    now = us_of(beat.received_at)
    wall = us_of(beat.wall_start)
    start = us_of(beat.credit_from)  # credit starts no earlier than the person's clock
    if start < wall:
        start = wall
    focused = None
    if presence:
        focused = presence.get("focused")
        if focused is False or (focused is not None and type(focused) is not bool):
            return None  # yields to a focused stream (R04f), or lets the focus go
        # R08 (no trusted input for too long), R08b (scripted input), R13d (drift)
        idle = _number(presence.get("idle_ms"))
        if idle is not None and idle > 0:
            over = now - max(start, now - int(min(idle, 86_400_000) * 1000) + p.idle_us)
            if over >= 1000:
                return None
        inputs = presence.get("input")
        if inputs is not None:
            untrusted = _mapping(inputs).get("untrusted")
            if isinstance(untrusted, int) and not isinstance(untrusted, bool) and untrusted > 0:
                return None
        mono_ms = _number(presence.get("mono_ms"))
        if mono_ms is not None and mono_ms - _ms(now - us_of(beat.launched_at)) > p.drift_ms:
            return None
    claimed_ms = b - a
    credit = _ms(now - start) + TOLERANCE_MS  # the budget
    if credit > claimed_ms:
        credit = claimed_ms
    # R04: the clock is ahead of the wall start (as after every beat that used the
    # tolerance); its cut is trimmed to what the claim lost, so a whole credit leaves none.
    if start > wall and credit < claimed_ms and min(claimed_ms, _ms((now if now < start else start) - wall)) > 0:
        return None
    day_credit = prior.day_credited_ms
    covered = prior.session_covered
    if credit > 0:
        if day_credit + credit > p.day_cap_ms:
            return None  # held over the day cap (R10a)
        if not _merged_ints(covered):
            return None  # ``state_of`` would normalise the session's coverage
        end = a + credit
        credited: tuple[segs.Segment, ...] = ((a, end),)
        if not covered or a > covered[-1][1]:
            covered = (*covered, (a, end))
        else:
            last0, last1 = covered[-1]
            if a < last0:
                return None  # an earlier range: ``_add_range``'s general case
            if end > last1:
                covered = (*covered[:-1], (last0, end))
    else:
        credit, credited = 0, ()
        if not _merged_ints(covered):
            return None
    sid = beat.session_id
    if focused:
        focus_session: str | None = sid
        focus_until: dt.datetime | None = at_us(now + p.focus_hold_us)
    else:
        focus_session = prior.focus_session
        focus_until = None
        if focus_session is not None:
            focus_until = at_us(us_of(prior.focus_until)) if prior.focus_until is not None else EPOCH
    return new(
        Outcome,
        credited=credited,
        credited_ms=credit,
        credit_start=at_us(start),
        cuts={},
        flags=(),
        after=new(
            Prior,
            hidden_since=None,
            last_event=beat.event,
            last_seq=seq if seq else prior.last_seq,
            last_claim_end=b,
            session_claimed_ms=prior.session_claimed_ms + claimed_ms,
            session_covered=covered,
            lesson_credited_ms=prior.lesson_credited_ms + credit,
            day_credited_ms=day_credit + credit,
            focus_session=focus_session,
            focus_until=focus_until,
        ),
    )


# --- a whole day (recompute, benchmark) -----------------------------------------------------


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
    per_row = itertools.repeat(params) if isinstance(params, Params) else params
    out, _clock, _day = replay(rows, per_row, checks if checks else None, start.sessions, start.lessons, start.clock, 0)
    return out
