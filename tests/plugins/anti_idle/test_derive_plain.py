"""``verdicts.derive``'s short way for a day nothing was cut or flagged on gives what the
full way gives: a Hypothesis property over random tallies (the plain ones and the rest),
against ``derive`` as it stood before the short way (kept below)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.anti_idle import verdicts
from plugins.anti_idle.models import CREDITED, DEDUCTED, HELD, VOID
from plugins.anti_idle.policy import DEFAULTS
from plugins.anti_idle.verdicts import _UNCOUNTED, HOLD_RULES, VOID_RULES, Derived, Tally, scores_of


def derive_before(t: Tally, policy: Any) -> Derived:
    """``verdicts.derive`` before the short way (main 1add52e), verbatim."""
    scores = scores_of(t, policy)
    score = sum(scores.values())
    cuts = t.cuts
    void_ms = min(t.claimed_ms - t.credited_ms, sum(cuts.get(r, 0) for r in VOID_RULES) if cuts else 0)
    held_ms = min(t.claimed_ms - t.credited_ms - void_ms, sum(cuts.get(r, 0) for r in HOLD_RULES) if cuts else 0)
    credited = t.credited_ms
    deducted = max(0, t.claimed_ms - credited - void_ms - held_ms)
    counted = {r: v for r, v in cuts.items() if r not in _UNCOUNTED}
    if counted.get("R04", 0) <= int(policy["parallel_flag_seconds"]) * 1000:
        counted.pop("R04", None)
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
    rules = sorted(set(t.cuts) | set(scores) | t.flags | set(t.day_rules))
    return Derived(verdict, score, rules, credited, held_ms, deducted, void_ms, scores)


RULES = ["R01", "R03", "R04", "R05", "R07", "R07b", "R10", "R10a", "R14", "R16"]
FLAGS = ["R03q", "R07b", "R11", "R13", "R08b", "R03b", "R13d", "R04f"]

ms_st = st.one_of(st.integers(0, 20 * 3600 * 1000), st.sampled_from([0, 12 * 3600 * 1000, 12 * 3600 * 1000 + 1, -5]))
tally_st = st.builds(
    Tally,
    claimed_ms=ms_st,
    credited_ms=ms_st,
    cuts=st.one_of(st.just({}), st.just({}), st.dictionaries(st.sampled_from(RULES), st.integers(0, 2_000_000))),
    flags=st.one_of(st.just(set()), st.just(set()), st.sets(st.sampled_from(FLAGS))),
    hidden_sessions=st.sets(st.sampled_from(["s1", "s2", "s3", "s4"])),
    sessions=st.sets(st.sampled_from(["s1", "s2"])),
    muted_ms=ms_st,
    beats=st.integers(0, 5000),
    day_rules=st.one_of(
        st.just({}),
        st.just({}),
        st.dictionaries(
            st.sampled_from(["R07h", "R07o", "R12"]),
            st.fixed_dictionaries(
                {},
                optional={
                    "score": st.integers(0, 60),
                    "deduct_ms": st.integers(0, 9_000),
                    "hold_ms": st.integers(0, 9_000),
                },
            ),
        ),
    ),
)
policy_st = st.fixed_dictionaries(
    {"hold_score": st.sampled_from([0, 30, 50, 80]), "parallel_flag_seconds": st.sampled_from([0, 30])}
).map(lambda p: {**DEFAULTS, **p})


@settings(max_examples=1000, deadline=None)
@given(tally_st, policy_st)
def test_derive_equals_the_full_way(t, policy):
    assert verdicts.derive(t, policy) == derive_before(t, policy)


def test_a_plain_day_over_twelve_hours_still_scores_r10():
    t = Tally(claimed_ms=12 * 3600 * 1000 + 1, credited_ms=12 * 3600 * 1000)
    assert verdicts.derive(t, DEFAULTS) == derive_before(t, DEFAULTS)
    assert verdicts.derive(t, DEFAULTS).scores == {"R10": 30}
