"""The video ingest bench's learners (bench/video_learners.py): what their beats claim and
what they fetch, as data (no server, no timing).

An honest learner's claims must be the media it played: contiguous, at 1x, exactly the time
between its scheduled beats (the server credits no more than its own clock allows, so a claim
longer than the time that passed would be cut and the bench would not measure honest work),
and each beat must be one the core accepts."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import open_loop  # noqa: E402 - bench/ is a folder of scripts, not a package
import video_learners  # noqa: E402

from lms_core.learning.services import _parse_beat  # noqa: E402

LECTURE = video_learners.Lecture(media_id=1, size=5_600_000, duration_ms=600_000)


def _learners(n: int) -> list[open_loop.Learner]:
    return [
        open_loop.Learner(open_loop.address(i), "session=x", f"/learn/sessions/{i:032x}/beat", "t", "ab" * 32)
        for i in range(n)
    ]


def _video(n: int = 3, *, bare: bool = False) -> tuple[video_learners.VideoLearners, list[tuple[float, int, int]]]:
    plan = open_loop.schedule(n, 2.0, 23.0, jitter=0.1, first_seq=2, rnd=random.Random(8))
    paths = [f"/media/s/token{i}" for i in range(n)]
    dues = video_learners.dues_of(plan, n)
    return video_learners.VideoLearners(1, _learners(n), paths, LECTURE, dues, bare=bare), plan


def test_claims_are_the_time_between_scheduled_beats_contiguous_at_1x() -> None:
    video, plan = _video()
    for i in range(3):
        seqs = sorted(seq for _due, j, seq in plan if j == i)
        dues = {seq: due for due, j, seq in plan if j == i}
        first = json.loads(video.content(i, 1, 0))  # the day's first beat, before the schedule
        assert first["segments"] == [[0, video_learners.PRIME_MS / 1000]]
        end = video_learners.PRIME_MS
        for seq in seqs:
            beat = json.loads(video.content(i, seq, 0))
            ((start_s, end_s),) = beat["segments"]
            assert round(start_s * 1000) == end  # contiguous: no gap, no overlap
            previous = dues.get(seq - 1, 0.0)
            assert round(end_s * 1000) - round(start_s * 1000) == pytest.approx((dues[seq] - previous) * 1000, abs=1)
            assert beat["position"] == end_s
            assert beat["client"]["presence"]["raf"] > 0  # a visible tab draws frames
            end = round(end_s * 1000)


def test_each_beat_is_one_the_core_accepts() -> None:
    video, plan = _video()
    for _due, i, seq in plan:
        parsed = _parse_beat(json.loads(video.content(i, seq, 0)))
        assert parsed["seq"] == seq and parsed["event"] == "heartbeat"
        assert parsed["claimed"] and parsed["claimed"][0][1] <= LECTURE.duration_ms


def test_the_bytes_of_a_media_time_grow_to_the_whole_file() -> None:
    assert LECTURE.bytes_for(0) == 0
    assert LECTURE.bytes_for(video_learners.CHUNK_MS) == 93_334  # ceil(5.6 MB x 10 s / 600 s)
    assert LECTURE.bytes_for(LECTURE.duration_ms) == LECTURE.bytes_for(10 * LECTURE.duration_ms) == LECTURE.size


class _Client:
    def __init__(self, index: int) -> None:
        self.index = index


def test_a_bare_learner_sends_nothing_on_an_answer() -> None:
    video, _plan = _video(bare=True)
    video.on_answer(_Client(0), 2, b"200", b"{}")  # no event loop needed: nothing is started
    assert not video.tasks
