"""The ELS function as it stood before the integer rewrite (frozen, for the equivalence property).

Do not edit: tests/plugins/anti_idle/test_els_equivalence.py checks that the new
``plugins.anti_idle.els`` gives exactly these outcomes on random beat sequences.


``assess(beat, prior, policy, checks)`` takes one beat as the server received it,
the running state left by the beats before it (per person, session and lesson), the
policy version and the person's attention checks, and returns what to credit and
why. No database, no clock: the online path (``lms_assess_interval``) and the
recompute (``flask lms anti-idle recompute``) call the same function on the same
stored inputs, so they agree by construction (tested as a property).

Server evidence first. Credit is bounded by the person's clock (one stream at a
time), by media bytes actually served to the session, by the server's receive
times; client signals (visibility, rate, rAF counts) can only *remove* credit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
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


def ms(delta: dt.timedelta) -> int:
    # The one change since it was frozen (2026-12-06): whole milliseconds in integers, as
    # ``els.ms`` now counts them; through float seconds 1.001 s read as 1,000 ms.
    us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return us // 1000 if us >= 0 else -(-us // 1000)


def beijing_day(at: dt.datetime) -> dt.date:
    return at.astimezone(SHANGHAI).date()


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


def _overlap(a0: dt.datetime, a1: dt.datetime, b0: dt.datetime, b1: dt.datetime) -> int:
    return max(0, ms(min(a1, b1) - max(a0, b0)))


def _spans_overlap(window: tuple[dt.datetime, dt.datetime], spans: Iterable[tuple[dt.datetime, dt.datetime]]) -> int:
    """Milliseconds of ``window`` covered by the union of ``spans``."""
    w0, w1 = window
    clipped = sorted((max(s0, w0), min(s1, w1)) for s0, s1 in spans if s1 > w0 and s0 < w1)
    total, reach = 0, w0
    for s0, s1 in clipped:
        s0 = max(s0, reach)
        if s1 > s0:
            total += ms(s1 - s0)
            reach = s1
    return total


def check_spans(
    checks: Sequence[CheckInput], now: dt.datetime, floor_ms: int
) -> tuple[list[tuple[dt.datetime, dt.datetime]], list[tuple[dt.datetime, dt.datetime]]]:
    """(overdue spans, automated spans) of one person, as known at ``now``.

    Checks are the person's, whichever tab showed them (one open check per person).
    Overdue: from a check's due time until it, or a later check, is validly answered.
    Automated: from an automated answer's check issue until the next valid answer, or the
    end of that person-day.
    An answer given after ``now`` is not known yet at ``now``.
    """
    mine = sorted((c for c in checks if c.issued_at <= now), key=lambda c: (c.issued_at, c.due_at))
    known = [
        replace(c, answered_at=None, outcome="pending") if c.answered_at and c.answered_at > now else c for c in mine
    ]
    valid_times = sorted(c.answered_at for c in known if c.passed(floor_ms) and c.answered_at is not None)

    def next_valid(after: dt.datetime) -> dt.datetime:
        return next((t for t in valid_times if t >= after), dt.datetime.max.replace(tzinfo=dt.UTC))

    overdue, automated = [], []
    for c in known:
        if c.passed(floor_ms):
            if c.answered_at is not None and c.answered_at > c.due_at:
                overdue.append((c.due_at, c.answered_at))
            continue
        if c.automated(floor_ms):
            # ... until the end of that person-day (Beijing), since 2026-12-05.
            day_end = dt.datetime.combine(
                c.issued_at.astimezone(SHANGHAI).date() + dt.timedelta(days=1), dt.time(), tzinfo=SHANGHAI
            )
            automated.append((c.issued_at, min(next_valid(c.issued_at), day_end)))
        else:
            overdue.append((c.due_at, next_valid(c.issued_at)))
    return overdue, automated


#: When rules overlap (a hidden span that another stream also covered), the cuts are
#: trimmed to what was really not credited, the least specific rule first.
TRIM_ORDER = ("R04", "R05", "R07", "R16", "R01", "R10", "R14", "R03", "R07b", "R10a")


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


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:  # not NaN
        return float(value)
    return None


def _truthy(client: Mapping[str, Any], key: str) -> bool:
    return client.get(key) is True


def assess(beat: BeatInput, prior: Prior, policy: Mapping[str, Any], checks: Sequence[CheckInput] = ()) -> Outcome:
    """Judge one beat. Pure: same inputs, same answer."""
    now = beat.received_at
    start = max(beat.credit_from, beat.wall_start)
    # The person's budget (as the core computes it): time after their clock, plus the
    # one-second jitter tolerance that the clock lends and the next beat repays.
    budget = max(0, ms(now - start) + TOLERANCE_MS)
    claimed = list(beat.claimed)
    claimed_ms = segs.total(claimed)
    cuts: dict[str, int] = {}
    flags: list[str] = []
    client = beat.client
    video = beat.lesson_kind == "video"

    def cut(rule: str, amount: int) -> None:
        if amount > 0:
            cuts[rule] = cuts.get(rule, 0) + amount

    # --- one person, one stream: time another stream already credited (R04) --------
    if claimed_ms and beat.credit_from > beat.wall_start:
        overlap = _overlap(beat.wall_start, now, beat.wall_start, beat.credit_from)
        cut("R04", min(claimed_ms, overlap))

    # --- presence: hidden beyond the grace period (R05) ------------------------------
    raw_presence = client.get("presence")
    presence: Mapping[str, Any] = raw_presence if isinstance(raw_presence, Mapping) else {}
    visibility = client.get("visibility")
    grace = dt.timedelta(seconds=int(policy["hidden_grace_seconds"]))
    hidden_since = prior.hidden_since
    raf = presence.get("raf", client.get("raf_frames"))
    spoofed = (
        video
        and visibility == "visible"
        and isinstance(raf, int)
        and not isinstance(raf, bool)
        and raf == 0
        and claimed_ms > 0
        and ms(now - beat.wall_start) >= 20_000
    )
    hidden_excess = 0
    if visibility == "hidden" or spoofed:
        if hidden_since is None:
            # The "hidden" event beat is sent as the page hides; a heartbeat already
            # hidden (hidden at load, or a spoof) was hidden over its whole interval.
            hidden_since = now if beat.event == "hidden" else beat.wall_start
        hidden_excess = _overlap(start, now, hidden_since + grace, now)
        if spoofed:
            flags.append("R13")
    elif hidden_since is not None:  # back to visible: the interval up to now was hidden
        hidden_excess = _overlap(start, now, hidden_since + grace, now)
        hidden_since = None
    if video and not _truthy(client, "bg_audio_mode"):
        cut("R05", min(hidden_excess, claimed_ms))
    else:
        hidden_excess = 0

    # --- attention checks: overdue stops credit, automated answers void (R07) --------
    floor_ms = int(policy["human_latency_floor_ms"])
    overdue, automated = check_spans(checks, now, floor_ms)
    void_ms = _spans_overlap((start, now), automated)
    overdue_ms = _spans_overlap((start, now), overdue)
    if void_ms:
        cut("R07b", min(void_ms, claimed_ms))
        flags.append("R07b")
    cut("R07", min(max(0, overdue_ms - void_ms), claimed_ms))

    blocked = hidden_excess + max(void_ms, overdue_ms)
    # The jitter tolerance is for honest clocks only: an interval that lost time to a
    # presence rule gets none, or a beat per second would earn a second each; nor does a
    # beat arriving while a check is overdue (added with the server-owed checks, issue 8).
    halted = any(a <= now < b for a, b in overdue + automated)
    eligible = budget if not blocked and not halted else max(0, ms(now - start) - blocked)
    zero_reason: str | None = None

    # --- speed (R01): content faster than the fastest allowed rate ------------------
    wall_ms = max(0, ms(now - beat.wall_start))
    max_rate = float(max(policy["allowed_rates"]))
    rate = _number(presence.get("rate_max"))
    rate = rate if rate is not None else _number(client.get("rate"))
    if video and claimed_ms:
        too_fast = claimed_ms > max_rate * wall_ms + SPEED_SLACK_MS
        bad_rate = rate is not None and rate > max_rate + 0.01
        if too_fast or bad_rate:
            zero_reason = "R01"

    # --- forged or replayed progress (R03 / R16) --------------------------------------
    session_claimed = prior.session_claimed_ms + claimed_ms
    life_ms = ms(now - beat.launched_at)
    if video and session_claimed > max_rate * life_ms + SESSION_SLACK_MS:
        zero_reason = zero_reason or "R03"
    first = claimed[0][0] if claimed else None
    if (
        video
        and first is not None
        and prior.last_claim_end is not None
        and first < prior.last_claim_end - CONTINUITY_SLACK_MS
        and beat.event not in RESTART_EVENTS
        and prior.last_event not in RESTART_EVENTS
    ):
        zero_reason = zero_reason or "R16"

    # --- media delivery (R14): bytes actually served to this session's URL ----------
    allowed_content = claimed_ms
    if video and claimed_ms:
        if not beat.bytes_served or not beat.media_size or not beat.duration_ms:
            zero_reason = zero_reason or "R14"
        else:
            delivered = beat.duration_ms * min(1.0, beat.bytes_served / beat.media_size)
            slack = int(policy["delivery_slack_seconds"]) * 1000
            covered = segs.total(segs.normalise(prior.session_covered))
            new = segs.total(segs.normalise([*prior.session_covered, *claimed])) - covered
            room = int(delivered + slack) - covered
            if new > room:
                allowed_content = max(0, claimed_ms - (new - max(0, room)))
                if allowed_content == 0:
                    zero_reason = zero_reason or "R14"
                else:
                    cut("R14", claimed_ms - allowed_content)

    if beat.lesson_kind == "document" and claimed_ms and beat.media_size and not beat.bytes_served:
        zero_reason = zero_reason or "R14"  # "read" a document whose file was never fetched

    if zero_reason is not None:
        cut(zero_reason, claimed_ms - sum(v for k, v in cuts.items() if k != zero_reason))
        credit = 0
    else:
        credit = min(claimed_ms, eligible, allowed_content)

    # --- caps: per lesson (R10) and per day (held, R10a) ------------------------------
    if credit and video and beat.duration_ms:
        cap = int(float(policy["lesson_cap_ratio"]) * beat.duration_ms)
        room = max(0, cap - prior.lesson_credited_ms)
        if credit > room:
            cut("R10", credit - room)
            credit = room
    day_cap = int(policy["day_cap_seconds"]) * 1000
    if credit and prior.day_credited_ms + credit > day_cap:
        held = credit - max(0, day_cap - prior.day_credited_ms)
        cut("R10a", held)
        credit -= held

    # Whatever the rules left of the claim and was not cut above is the pause/budget gap.
    credit = max(0, min(credit, claimed_ms))
    credited = tuple(segs.truncate(segs.normalise(claimed), credit)) if credit else ()
    credit = segs.total(credited)
    _trim(cuts, claimed_ms - credit)
    probes = presence.get("probes")
    if video and (_truthy(client, "webdriver") or (isinstance(probes, int) and probes & 1)):
        flags.append("R11")
    after = Prior(
        hidden_since=hidden_since,
        last_event=beat.event,
        last_claim_end=claimed[-1][1] if claimed else prior.last_claim_end,
        session_claimed_ms=session_claimed,
        session_covered=tuple(segs.normalise([*prior.session_covered, *credited])),
        lesson_credited_ms=prior.lesson_credited_ms + credit,
        day_credited_ms=prior.day_credited_ms + credit,
    )
    return Outcome(
        credited=credited,
        credited_ms=credit,
        credit_start=start,
        cuts=cuts,
        flags=tuple(sorted(set(flags))),
        after=after,
    )
