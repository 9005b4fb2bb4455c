"""The integer ELS core gives exactly the verdicts of the implementation it replaced.

Two properties over random beat sequences (several sessions and lessons, hidden and
spoofed tabs, odd rates, partial deliveries, random attention checks and answers,
microsecond receive times, overlapping and unsorted claims, random policies):

* ``els.assess`` (the online path, beat by beat) equals ``els_reference.assess``,
  the datetime implementation as it stood before the rewrite, on every field of
  every outcome and of the running state;
* ``els.assess_day`` (the recompute, one pass over tuples) equals chaining
  ``els.assess`` beat by beat with the person's clock, as the core does online:
  incremental and full replay agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.anti_idle import els
from plugins.anti_idle.policy import DEFAULTS
from tests.plugins.anti_idle import els_reference as ref

T0 = dt.datetime(2026, 5, 10, 1, 0, tzinfo=dt.UTC)
US = dt.timedelta(microseconds=1)

client_st = st.fixed_dictionaries(
    {},
    optional={
        "visibility": st.sampled_from(["visible", "hidden", "prerender", 3]),
        "rate": st.sampled_from([0.75, 1, 1.5, 2.0, 16, "x", True, float("nan")]),
        "raf_frames": st.sampled_from([0, 1, 60, True, None]),
        "presence": st.fixed_dictionaries(
            {},
            optional={
                "raf": st.sampled_from([0, 5, False]),
                "rate_max": st.sampled_from([1.0, 1.25, 4.0]),
                "probes": st.sampled_from([0, 1, 2, 3, True]),
            },
        ),
        "bg_audio_mode": st.sampled_from([True, False, "yes"]),
        "webdriver": st.sampled_from([True, False]),
        "muted": st.booleans(),
    },
)

beat_st = st.tuples(
    st.integers(0, 2),  # session
    st.integers(0, 1),  # lesson
    st.sampled_from(["video", "video", "video", "document"]),
    st.sampled_from(["heartbeat", "heartbeat", "play", "seeked", "pause", "hidden", "visible"]),
    st.integers(0, 40_000_000),  # gap to the previous beat, µs
    st.integers(0, 150_000_000),  # wall span of the beat, µs
    st.lists(st.tuples(st.integers(-2_000, 700_000), st.integers(-2_000, 45_000)), max_size=3),
    st.sampled_from([None, 0, 1_000, 300_000, 600_000]),  # bytes served
    st.sampled_from([None, 600_000]),  # media size
    st.sampled_from([None, 600_000, 0]),  # duration
    client_st,
)

check_st = st.tuples(
    st.integers(0, 900),  # issued, s after T0
    st.integers(5, 120),  # window, s
    st.one_of(st.none(), st.integers(-30, 400)),  # answered, s after issue
    st.sampled_from(["passed", "automated", "wrong", "pending"]),
    st.sampled_from([True, False, None]),
    st.sampled_from([None, 100, 2500]),
)

policy_st = st.fixed_dictionaries(
    {
        "allowed_rates": st.sampled_from([[1.0], [0.75, 1.0, 1.5], [2.0]]),
        "hidden_grace_seconds": st.sampled_from([0, 20, 60]),
        "human_latency_floor_ms": st.sampled_from([400, 3000]),
        "delivery_slack_seconds": st.sampled_from([0, 30]),
        "lesson_cap_ratio": st.sampled_from([0.1, 1.5]),
        "day_cap_seconds": st.sampled_from([60, 8 * 3600]),
    }
).map(lambda p: {**DEFAULTS, **p})


def beat_fields(session: int, seq: int, at: dt.datetime, wall_span_us: int, **fields: Any) -> dict[str, Any]:
    """A beat's ``els.BeatInput`` fields (``credit_from`` aside) for the days the ELS tests
    build: session ``s<session>`` (launched 7 s apart), received at ``at``, its wall start
    ``wall_span_us`` before it; ``fields``: the lesson, the claim, the client and the rest."""
    return dict(
        session_id=f"s{session}",
        seq=seq,
        wall_start=at - wall_span_us * US,
        received_at=at,
        launched_at=T0 - dt.timedelta(seconds=session * 7),
        **fields,
    )


def beats_of(raw):
    at = T0
    out = []
    for session, lesson, kind, event, gap, span, claims, served, size, duration, client in raw:
        at += gap * US
        claimed = tuple((a, a + length) for a, length in claims)
        out.append(
            beat_fields(
                session,
                len(out) + 1,
                at,
                span,
                lesson_id=lesson,
                lesson_kind=kind,
                event=event,
                claimed=claimed,
                duration_ms=duration,
                bytes_served=served,
                media_size=size,
                client=client,
            )
        )
    return out


def rows_of(beats):
    return [
        els.row_of(
            b["session_id"],
            b["lesson_id"],
            b["lesson_kind"],
            b["event"],
            b["wall_start"],
            b["received_at"],
            b["launched_at"],
            b["claimed"],
            b["duration_ms"],
            b["bytes_served"],
            b["media_size"],
            b["client"],
            b["seq"],
        )
        for b in beats
    ]


def checks_of(raw, module):
    out = []
    for issued, window, answered, outcome, trusted, latency in raw:
        at = T0 + dt.timedelta(seconds=issued)
        out.append(
            module.CheckInput(
                session_id="s0",
                issued_at=at,
                due_at=at + dt.timedelta(seconds=window),
                answered_at=None if answered is None else at + dt.timedelta(seconds=answered, microseconds=7),
                outcome=outcome,
                trusted=trusted,
                latency_ms=latency,
            )
        )
    return out


def chain(module, beats, policy, checks, clock=None):
    """Beat by beat, as the online path does: per-session priors, the person's clock."""
    priors: dict[str, object] = {}
    lessons: dict[int, int] = {}
    day = 0
    out = []
    for b in beats:
        credit_from = max(b["wall_start"], clock) if clock is not None else b["wall_start"]
        beat = module.BeatInput(**b, credit_from=credit_from)
        p = priors.get(b["session_id"], module.Prior())
        prior = module.Prior(
            **{**p.__dict__, "lesson_credited_ms": lessons.get(b["lesson_id"], 0), "day_credited_ms": day}
        )
        o = module.assess(beat, prior, policy, checks)
        priors[b["session_id"]] = o.after
        lessons[b["lesson_id"]] = o.after.lesson_credited_ms
        day = o.after.day_credited_ms
        if o.credited_ms:
            clock = o.credit_end
        out.append(o)
    return out


#: Flags of rules added after the reference was frozen (seq gaps, a forged signature,
#: clock drift, scripted input on documents): never raised by it, ignored in the comparison.
NEW_FLAGS = frozenset({"R03q", "R03b", "R13d", "R08b"})


def plain(o):
    return (
        tuple(o.credited),
        o.credited_ms,
        o.credit_start,
        dict(o.cuts),
        tuple(f for f in o.flags if f not in NEW_FLAGS),
        o.after.hidden_since,
        o.after.last_event,
        o.after.last_claim_end,
        o.after.session_claimed_ms,
        tuple(tuple(s) for s in o.after.session_covered),
        o.after.lesson_credited_ms,
        o.after.day_credited_ms,
    )


@settings(max_examples=400, deadline=None)
@given(st.lists(beat_st, min_size=1, max_size=40), st.lists(check_st, max_size=5), policy_st)
def test_new_core_equals_the_reference_beat_by_beat(raw, raw_checks, policy):
    beats = beats_of(raw)
    new = chain(els, beats, policy, checks_of(raw_checks, els))
    old = chain(ref, beats, policy, checks_of(raw_checks, ref))
    assert [plain(o) for o in new] == [plain(o) for o in old]


@settings(max_examples=400, deadline=None)
@given(st.lists(beat_st, min_size=1, max_size=40), st.lists(check_st, max_size=5), policy_st)
def test_day_replay_equals_beat_by_beat(raw, raw_checks, policy):
    beats = beats_of(raw)
    checks = checks_of(raw_checks, els)
    online = chain(els, beats, policy, checks)
    rows = rows_of(beats)
    day = els.assess_day(rows, els.params_of(policy), els.Checks(checks))
    assert [(o.credited, o.credited_ms, els.us_of(o.credit_start), o.cuts, o.flags) for o in online] == [
        (credited, credited_ms, credit_start, cuts, flags) for credited, credited_ms, credit_start, cuts, flags in day
    ]


def test_the_millisecond_rounding_is_whole_microseconds_truncated():
    # 1.001 s is 1000.9999999999999 ms in floating point, and the rules said 1000 until
    # 2026-12-06; now whole milliseconds are counted in integers, online and in the
    # recompute alike (test_els_ms.py), and the frozen reference counts them the same way.
    for us in (1_001_000, 290_000, 4_350_000, 1, 999, 123_456_789):
        assert (
            els._ms(us) == els.ms(dt.timedelta(microseconds=us)) == ref.ms(dt.timedelta(microseconds=us)) == us // 1000
        )
