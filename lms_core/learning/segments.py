"""Arithmetic on media ranges ``[[start_ms, end_ms], ...]`` (pure, property-tested).

Coverage is the measure of the *union* of credited ranges, so watching the same
minute ten times counts once and skipping ahead counts nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Segment = tuple[int, int]


def normalise(segments: Iterable[Sequence[int]], lo: int = 0, hi: int | None = None) -> list[Segment]:
    """Clip to ``[lo, hi]``, drop empty or inverted ranges, sort and merge overlaps."""
    clipped = []
    for seg in segments:
        if len(seg) != 2:
            continue
        start, end = int(seg[0]), int(seg[1])
        start = max(start, lo)
        if hi is not None:
            end = min(end, hi)
        if end > start:
            clipped.append((start, end))
    clipped.sort()
    merged: list[Segment] = []
    for start, end in clipped:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def total(segments: Iterable[Segment]) -> int:
    return sum(end - start for start, end in segments)


def union(a: Iterable[Sequence[int]], b: Iterable[Sequence[int]]) -> list[Segment]:
    return normalise([*a, *b])


def truncate(segments: Sequence[Segment], budget_ms: int) -> list[Segment]:
    """Keep ranges in order until ``budget_ms`` of media is used up."""
    kept: list[Segment] = []
    left = max(budget_ms, 0)
    for start, end in segments:
        if left <= 0:
            break
        take = min(end - start, left)
        kept.append((start, start + take))
        left -= take
    return kept


def coverage_bp(segments: Iterable[Segment], duration_ms: int) -> int:
    """Share of ``[0, duration]`` covered, in basis points (0–10000)."""
    if duration_ms <= 0:
        return 0
    covered = total(normalise(segments, 0, duration_ms))
    return min(10000, covered * 10000 // duration_ms)


def to_xapi(segments: Iterable[Segment]) -> str:
    """The Video Profile's ``played-segments`` syntax, in seconds: ``0[.]5.2[,]10[.]20``."""

    def fmt(ms: int) -> str:
        return f"{ms / 1000:.3f}".rstrip("0").rstrip(".")

    return "[,]".join(f"{fmt(s)}[.]{fmt(e)}" for s, e in segments)
