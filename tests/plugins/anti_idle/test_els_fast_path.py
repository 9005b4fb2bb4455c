"""``els.replay``'s fast path judges exactly as the full path and as the frozen reference.

The random days of test_els_equivalence are mostly attacks, so few of their beats can
take the fast path (honest video playing on). These days are mostly honest: claims that
follow each other at about the cadence, with now and then a second tab, a seek back,
a hidden beat, a lost beat, a late beat, partial delivery, a fast rate or a low cap, so
every condition of the fast path is met and missed. The same rows with ``hot`` cleared
take the full path only; both must agree on every field, and with the reference.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.anti_idle import els
from tests.plugins.anti_idle import els_reference as ref
from tests.plugins.anti_idle.test_els_equivalence import (
    NEW_FLAGS,
    T0,
    US,
    beat_fields,
    chain,
    check_st,
    checks_of,
    plain,
    policy_st,
    rows_of,
)

#: One beat: (session, cadence jitter µs, claim jump ms, twist), the twist picked rarely.
honest_beat_st = st.tuples(
    st.sampled_from([0, 0, 0, 0, 0, 0, 0, 1]),
    st.integers(-1_500_000, 1_500_000),
    st.sampled_from([0, 0, 0, 0, 0, 0, -30_000, -3_000, 5_000, 400_000]),
    st.sampled_from([None] * 12 + ["hidden", "rate", "seq_gap", "drift", "late", "paused", "slow", "robot"]),
)


def honest_day(raw, duration, served):
    at = T0
    pos = [0, 0]
    seq = [0, 0]
    out = []
    for session, jitter, jump, twist in raw:
        span = 10_000_000 + jitter
        at += span * US
        claim = 10_000 if twist != "paused" else 0
        pos[session] = max(0, pos[session] + jump)
        seq[session] += 2 if twist == "seq_gap" else 1
        client: dict[str, object] = {"visibility": "hidden" if twist == "hidden" else "visible", "rate": 1}
        if twist == "rate":
            client["rate"] = 2.0
        if twist == "robot":
            client["webdriver"] = True
        presence: dict[str, object] = {}
        if twist == "drift":
            presence["mono_ms"] = 10**9
        if twist == "slow":
            presence["rate_min"] = 0.75
        if presence:
            client["presence"] = presence
        out.append(
            beat_fields(
                session,
                seq[session],
                at,
                span + (30_000_000 if twist == "late" else 0),
                lesson_id=1,
                lesson_kind="video",
                event="seeked" if jump else "heartbeat",
                claimed=((pos[session], pos[session] + claim),) if claim else (),
                duration_ms=duration,
                bytes_served=served,
                media_size=600_000,
                client=client,
            )
        )
        pos[session] += claim
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(honest_beat_st, min_size=1, max_size=60),
    st.lists(check_st, max_size=3),
    policy_st,
    st.sampled_from([600_000, 3_600_000]),
    st.sampled_from([600_000, 300_000, 60_000]),
)
def test_fast_path_equals_full_path_and_reference(raw, raw_checks, policy, duration, served):
    beats = honest_day(raw, duration, served)
    rows = rows_of(beats)
    assert any(r.hot is not None for r in rows) or all(t[3] is not None for t in raw)
    params = els.params_of(policy)
    checks = els.Checks(checks_of(raw_checks, els))
    fast = els.assess_day(rows, params, checks)
    full = els.assess_day([r._replace(hot=None) for r in rows], params, checks)
    assert fast == full
    if any(t[3] == "slow" for t in raw):
        return  # 0.75x earning real time came after the reference was frozen
    # and the reference, beat by beat as the core runs it online
    online = chain(ref, beats, policy, checks_of(raw_checks, ref))
    assert [plain(o)[:5] for o in online] == [
        (tuple(c), n, els.at_us(start), cuts, tuple(f for f in flags if f not in NEW_FLAGS))
        for c, n, start, cuts, flags in fast
    ]


def test_an_honest_day_takes_the_fast_path_and_keeps_its_verdicts():
    # 300 beats of 1x viewing: every beat but the first is eligible, and the day is
    # judged as the full path judges it.
    beats = honest_day([(0, 0, 0, None)] * 300, 3_600_000, 600_000)
    rows = rows_of(beats)
    assert all(r.hot is not None for r in rows)
    policy = {**els_policy(), "delivery_slack_seconds": 30}
    params = els.params_of(policy)
    fast = els.assess_day(rows, params)
    assert fast == els.assess_day([r._replace(hot=None) for r in rows], params)
    assert sum(j[1] for j in fast) == 300 * 10_000


def els_policy():
    from plugins.anti_idle.policy import DEFAULTS

    return {**DEFAULTS, "lesson_cap_ratio": 100.0, "day_cap_seconds": 86_400}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0, 0, 0, 1]), st.booleans(), st.sampled_from([1, 1, 1, 2])), min_size=2, max_size=40
    ),
    st.sampled_from([0, -1_500_000, -1_500_001, -2_000_000]),
    policy_st,
    policy_st,
    st.sampled_from([600_000, 300_000, 60_000]),
)
def test_fast_path_with_a_policy_per_beat(raw, jitter, policy_a, policy_b, served):
    # The policy version each beat recorded, two alternating, over one wall span (8.5 s
    # puts a 10 s claim on R01's bound at 1x): the fast path keeps its speed, delivery and
    # drift bounds per policy and wall span, and must not carry one over a policy change.
    # Two lessons: the fast path keeps the lesson's credit in a local and writes it back
    # to ``lessons`` when it leaves the lesson, the fast path or the day (R10 reads it).
    beats = honest_day([(session, jitter, 0, None) for session, _, _ in raw], 3_600_000, served)
    for beat, (_, _, lesson) in zip(beats, raw, strict=True):
        beat["lesson_id"] = lesson
    rows = rows_of(beats)
    a, b = els.params_of(policy_a), els.params_of(policy_b)
    params = [a if first else b for _, first, _ in raw]
    fast_start, full_start = els.DayStart(lessons={2: 50_000}), els.DayStart(lessons={2: 50_000})
    fast = els.assess_day(rows, params, None, fast_start)
    assert fast == els.assess_day([r._replace(hot=None) for r in rows], params, None, full_start)
    assert fast_start.lessons == full_start.lessons

    def state(start):
        return {
            k: (v.hidden_since, v.last_event, v.last_claim_end, v.claimed_ms, v.covered, v.covered_ms, v.last_seq)
            for k, v in start.sessions.items()
        }

    assert state(fast_start) == state(full_start)
