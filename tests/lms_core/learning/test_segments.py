"""Properties of media-range arithmetic (the basis of coverage and credit)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lms_core.learning import segments as segs

ranges = st.lists(st.tuples(st.integers(-1000, 100_000), st.integers(-1000, 100_000)), max_size=30)


@given(ranges)
def test_normalise_is_sorted_disjoint_and_idempotent(raw):
    out = segs.normalise(raw, 0, 60_000)
    assert all(0 <= s < e <= 60_000 for s, e in out)
    assert all(a[1] < b[0] for a, b in zip(out, out[1:], strict=False))
    assert segs.normalise(out, 0, 60_000) == out


@given(ranges, ranges)
def test_union_is_commutative_and_never_smaller(a, b):
    u1, u2 = segs.union(a, b), segs.union(b, a)
    assert u1 == u2
    assert segs.total(u1) >= max(segs.total(segs.normalise(a)), segs.total(segs.normalise(b)))
    assert segs.total(u1) <= segs.total(segs.normalise(a)) + segs.total(segs.normalise(b))


@given(ranges, st.integers(0, 200_000))
def test_truncate_respects_budget_and_is_a_prefix(raw, budget):
    norm = segs.normalise(raw)
    cut = segs.truncate(norm, budget)
    assert segs.total(cut) == min(budget, segs.total(norm))
    assert segs.union(norm, cut) == norm  # a subset of what was claimed


@given(ranges)
def test_rewatching_does_not_raise_coverage(raw):
    once = segs.coverage_bp(segs.normalise(raw), 60_000)
    twice = segs.coverage_bp(segs.union(raw, raw), 60_000)
    assert once == twice
    assert 0 <= once <= 10_000


def test_played_segments_format():
    assert segs.to_xapi([(0, 5200), (10_000, 20_000)]) == "0[.]5.2[,]10[.]20"
