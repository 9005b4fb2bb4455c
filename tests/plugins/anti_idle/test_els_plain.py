"""``els.assess_plain`` judges a plain document beat exactly as ``replay`` does.

Document beats chained as the online path chains them (the session's running state, the
person's clock, lesson and day credit, the focus), mostly honest (a claim that follows the
last at about the cadence) with now and then every signal a rule reads: hidden, not
focused, idle input, scripted input, clock drift, a seq gap by either seq, a signature
other than valid, a file never fetched, a late or early wall start, the person's clock
ahead, a claim of several, touching, negative or empty ranges, an attention check, a low
day cap. Every beat is judged with and without the plain path; the outcomes (credit,
ranges, credit start, cuts, flags and the running state after) must be equal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.anti_idle import els
from plugins.anti_idle.policy import DEFAULTS
from tests.plugins.anti_idle.test_els_equivalence import T0, US, beat_fields, check_st, checks_of, policy_st

TWISTS = [
    "hidden",
    "unfocused",
    "focused",
    "idle",
    "idle_short",
    "untrusted",
    "drift",
    "seq_gap",
    "seq_prev_gap",
    "seq_prev_bool",
    "bad",
    "unsigned",
    "no_envelope",
    "unfetched",
    "late",
    "early",
    "clock",
    "two_ranges",
    "touching",
    "negative",
    "empty",
    "back",
    "presence_list",
    "visible_event",
    "skip",
    "long",
]

#: One beat: (session, cadence jitter µs, twist or None, ms claimed beyond the cadence), the
#: twist picked now and then; a claim of a second more borrows the tolerance (the person's
#: clock is then ahead of the next beat's wall start, as in the ingest bench).
beat_st = st.tuples(
    st.sampled_from([0, 0, 0, 0, 0, 1]),
    st.integers(-3_000_000, 3_000_000),
    st.one_of(st.none(), st.none(), st.none(), st.sampled_from(TWISTS)),
    st.sampled_from([0, 0, 0, 1_000, 1_000, 500, -2_000]),
)


def document_day(raw):
    """Beats as ``els.BeatInput`` fields, and the credit_from shift (µs) each asks for."""
    at = T0
    pos = [0, 0]
    seq = [0, 0]
    out = []
    for session, jitter, twist, more in raw:
        span = 10_000_000 + jitter
        at += span * US
        seq[session] += 2 if twist == "seq_gap" else 1
        presence: dict[str, object] = {"focused": True} if twist == "focused" else {}
        client: dict[str, object] = {"visibility": "hidden" if twist == "hidden" else "visible"}
        client["envelope"] = {"bad": "bad", "unsigned": "unsigned", "no_envelope": None}.get(twist or "", "valid")
        if client["envelope"] is None:
            del client["envelope"]
        client["seq_prev"] = seq[session] - (2 if twist == "seq_prev_gap" else 1)
        if twist == "seq_gap":
            del client["seq_prev"]  # a beat stored without it: the plugin's own seq
        if twist == "seq_prev_bool":
            client["seq_prev"] = True
        if twist == "unfocused":
            presence["focused"] = False
        if twist == "idle":
            presence["idle_ms"] = 700_000.0
        if twist == "idle_short":
            presence["idle_ms"] = 5_000
        if twist == "untrusted":
            presence["input"] = {"untrusted": 2}
        if twist == "drift":
            presence["mono_ms"] = 10.0**9
        if presence:
            client["presence"] = presence
        if twist == "presence_list":
            client["presence"] = [1]
        claim = 10_000 + jitter // 1000 + more + (5_000 if twist == "long" else 0)
        a = pos[session] - (20_000 if twist == "back" else 0) + (30_000 if twist == "skip" else 0)
        claimed: tuple[tuple[int, int], ...] = ((a, a + claim),)
        if twist == "two_ranges":
            claimed = ((a, a + 4_000), (a + 5_000, a + claim))
        elif twist == "touching":
            claimed = ((a, a + 4_000), (a + 4_000, a + claim))
        elif twist == "negative":
            claimed = ((-500, claim - 500),)
        elif twist == "empty":
            claimed = ()
        pos[session] = max(0, a + claim)
        wall_span = span + (30_000_000 if twist == "late" else 0) - (12_000_000 if twist == "early" else 0)
        out.append(
            (
                beat_fields(
                    session,
                    seq[session],
                    at,
                    wall_span,
                    lesson_id=1 + session,
                    lesson_kind="document",
                    event="visible" if twist == "visible_event" else "heartbeat",
                    claimed=claimed,
                    duration_ms=None,
                    bytes_served=None if twist == "unfetched" else 200_000,
                    media_size=200_000,
                    client=client,
                ),
                4_000_000 if twist == "clock" else 0,
            )
        )
    return out


def chain(beats, policy, checks, *, plain):
    """Beat by beat, as the online path does: the session's state, the person's clock,
    lesson and day credit, the focus. Returns the outcomes and how many took the plain path."""
    sessions: dict[str, els.Prior] = {}
    lessons: dict[int, int] = {}
    day = 0
    focus: tuple[str | None, dt.datetime | None] = (None, None)
    clock = None
    out = []
    took = 0
    params = els.params_of(policy)
    for b, ahead in beats:
        credit_from = max(b["wall_start"], clock) if clock is not None else b["wall_start"]
        beat = els.BeatInput(**b, credit_from=credit_from + ahead * US)
        prior = dataclasses.replace(
            sessions.get(b["session_id"], els.Prior()),
            lesson_credited_ms=lessons.get(b["lesson_id"], 0),
            day_credited_ms=day,
            focus_session=focus[0],
            focus_until=focus[1],
        )
        if plain and not checks and els.assess_plain(beat, prior, params) is not None:
            took += 1
        o = els.assess(beat, prior, params, checks, plain=plain)
        sessions[b["session_id"]] = o.after
        lessons[b["lesson_id"]] = o.after.lesson_credited_ms
        day = o.after.day_credited_ms
        focus = (o.after.focus_session, o.after.focus_until)
        if o.credited_ms:
            clock = o.credit_end
        out.append(o)
    return out, took


@settings(max_examples=400, deadline=None)
@given(
    st.lists(beat_st, min_size=1, max_size=50),
    st.one_of(st.just([]), st.just([]), st.lists(check_st, max_size=2)),
    policy_st,
    st.booleans(),
)
def test_the_plain_path_judges_as_the_replay(raw, raw_checks, policy, signed):
    policy = {**policy, "signed_beats": int(signed)}
    beats = document_day(raw)
    checks = checks_of(raw_checks, els)
    plain, _took = chain(beats, policy, checks, plain=True)
    full, _ = chain(beats, policy, checks, plain=False)
    assert plain == full  # every field of every outcome, the running state after included


def test_an_honest_reading_day_takes_the_plain_path():
    # The first beat borrows the tolerance: every later one starts a second behind the clock.
    beats = document_day([(0, 0, None, 1_000)] + [(0, 0, None, 0)] * 199 + [(0, 0, "focused", 0)] * 20)
    policy = {**DEFAULTS, "day_cap_seconds": 86_400}
    plain, took = chain(beats, policy, [], plain=True)
    assert took == len(beats)
    assert plain == chain(beats, policy, [], plain=False)[0]
    assert sum(o.credited_ms for o in plain) == 220 * 10_000 + 1_000


@pytest.mark.parametrize("twist", TWISTS)
def test_each_twist_is_judged_as_the_replay_judges_it(twist):
    # Ten honest beats, the twisted one, ten more: whichever path each takes, the same outcomes.
    raw = [(0, 0, None, 1_000)] * 10 + [(0, 0, twist, 0)] + [(0, 0, None, 1_000)] * 10
    for signed in (0, 1):
        policy = {**DEFAULTS, "signed_beats": signed, "day_cap_seconds": 86_400}
        beats = document_day(raw)
        assert chain(beats, policy, [], plain=True)[0] == chain(beats, policy, [], plain=False)[0]


@pytest.mark.parametrize(
    "twist",
    [
        "hidden",
        "unfocused",
        "idle",
        "untrusted",
        "drift",
        "seq_gap",
        "seq_prev_gap",
        "bad",
        "unfetched",
        "clock",
        "two_ranges",
        "negative",
        "empty",
        "presence_list",
    ],
)
def test_a_beat_a_rule_reads_is_not_plain(twist):
    # The twisted beat: a rule reads it (or ``row_of`` reads it otherwise), so the plain path
    # declines it (and the replay judges it; the property above says the same outcome).
    policy = {**DEFAULTS, "signed_beats": 1, "day_cap_seconds": 86_400}
    beats = document_day([(0, 0, None, 0)] * 3 + [(0, 0, twist, 0)])
    outcomes, _ = chain(beats[:3], policy, [], plain=True)
    b, ahead = beats[3]
    last = outcomes[-1]
    prior = dataclasses.replace(last.after)
    credit_from = max(b["wall_start"], last.credit_end or b["wall_start"]) + ahead * US
    beat = els.BeatInput(**b, credit_from=credit_from)
    assert els.assess_plain(beat, prior, els.params_of(policy)) is None


def test_over_the_day_cap_is_not_plain():
    policy = {**DEFAULTS, "day_cap_seconds": 25}
    beats = document_day([(0, 0, None, 0)] * 4)
    plain, took = chain(beats, policy, [], plain=True)
    assert plain == chain(beats, policy, [], plain=False)[0]
    assert [o.cuts.get("R10a", 0) for o in plain] == [0, 0, 5_000, 10_000]
    assert took == 2  # the last two are held


@pytest.mark.parametrize(
    "covered",
    [
        (),
        ((0, 5_000),),
        ((0, 5_000), (5_000, 8_000)),  # touching: the replay merges them
        ((20_000, 30_000), (0, 5_000)),  # unsorted
        ((0, 5_000), (3_000, 8_000)),  # overlapping
        ((0, 5_000), (40_000, 50_000)),  # the claim starts before the last range
        ((-100, 5_000),),
        ((0, 0), (10, 20)),
        ([0, 5_000],),  # lists: the replay's state holds tuples
        [(0, 5_000)],
        ((0.0, 5_000.0),),
    ],
)
@pytest.mark.parametrize("claim", [(1_000, 11_000), (4_000, 14_000), (60_000, 70_000), (1_000, 3_000)])
@pytest.mark.parametrize("clock_s", [-5, 0, 1])
def test_a_session_coverage_of_any_shape_is_judged_as_the_replay_judges_it(covered, claim, clock_s):
    # A state row is a cache: the plain path must not trust the coverage it brings.
    policy = els.params_of({**DEFAULTS, "day_cap_seconds": 86_400})
    beat = els.BeatInput(
        session_id="s0",
        lesson_id=1,
        lesson_kind="document",
        event="heartbeat",
        seq=4,
        wall_start=T0,
        received_at=T0 + dt.timedelta(seconds=10),
        launched_at=T0 - dt.timedelta(minutes=1),
        credit_from=T0 + dt.timedelta(seconds=clock_s),  # the person's clock, behind or ahead
        claimed=(claim,),
        duration_ms=None,
        bytes_served=1,
        media_size=1,
        client={"visibility": "visible", "envelope": "valid", "seq_prev": 3},
    )
    prior = els.Prior(last_event="heartbeat", last_seq=3, last_claim_end=0, session_covered=covered)
    assert els.assess(beat, prior, policy) == els.assess(beat, prior, policy, plain=False)
