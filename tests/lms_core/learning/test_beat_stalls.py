"""The workers' stall log (learning/beat_stalls.py, ``LMS_BEAT_STALL_LOG``).

It notes only what is rare: a full (or slow) collection, the event loop held up, a writer
group made slow, and one line a second of the writer's counts; nothing else, and nothing at
all when off (the default).
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time

import pytest
import time_machine

from lms_core.learning import beat_asgi, beat_batch, beat_stalls
from tests.lms_core.learning.test_beat_asgi import _run, asgi_request, people, signed
from tests.lms_core.learning.test_beat_front import Player, beats

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)


def _events(directory, kind=None):
    out = []
    for path in sorted(directory.glob("stalls-*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines()]
    return [e for e in out if kind is None or e["kind"] == kind]


def test_a_forced_full_collection_is_noted(tmp_path):
    log = beat_stalls.StallLog(tmp_path, refreeze=True)
    log.start()
    try:
        before = time.time()
        gc.collect()
    finally:
        log.close()
    (noted,) = [e for e in _events(tmp_path, "gc") if e["gen"] == 2]
    assert noted["t"] >= before - 0.001 and noted["ms"] >= 0 and noted["collected"] >= 0
    assert noted["refrozen"] is True and noted["thawed"] is False
    assert noted["thread"] == threading.current_thread().name


def test_a_blocked_loop_is_noted_with_its_lag(tmp_path):
    log = beat_stalls.StallLog(tmp_path)
    blocked = 0.1

    async def held_up():
        log.start(asyncio.get_running_loop())
        await asyncio.sleep(beat_stalls.LOOP_TICK_SECONDS * 2)
        time.sleep(blocked)  # the loop cannot run: the next tick (due within 10 ms) waits the rest
        await asyncio.sleep(beat_stalls.LOOP_TICK_SECONDS * 2)

    try:
        _run(held_up())
    finally:
        log.close()
    late = _events(tmp_path, "loop")
    assert late and max(e["late_ms"] for e in late) >= (blocked - beat_stalls.LOOP_TICK_SECONDS) * 1000


def test_nothing_is_noted_when_nothing_is_slow(tmp_path, monkeypatch):
    # A young collection is noted only when slow; the thresholds are raised so that a busy
    # machine (the tests run niced beside benches) cannot make this one look slow.
    monkeypatch.setattr(beat_stalls, "GC_SLOW_SECONDS", 10.0)
    monkeypatch.setattr(beat_stalls, "LOOP_LATE_SECONDS", 10.0)
    log = beat_stalls.StallLog(tmp_path)

    async def quiet():
        log.start(asyncio.get_running_loop())
        gc.collect(0)
        log.group_done(3, time.perf_counter(), time.thread_time(), lambda: pytest.fail("asked for a fast group"))
        await asyncio.sleep(beat_stalls.LOOP_TICK_SECONDS * 5)

    try:
        _run(quiet())
    finally:
        log.close()
    assert [e for e in _events(tmp_path) if e["kind"] != "second"] == []


def test_the_writers_second_is_noted_when_the_next_begins(tmp_path):
    log = beat_stalls.StallLog(tmp_path)
    try:
        with time_machine.travel(1_800_000_000.2, tick=False):
            log.group_done(4, time.perf_counter(), time.thread_time())
            log.group_done(6, time.perf_counter(), time.thread_time())
        assert _events(tmp_path) == []  # the second is not over
        with time_machine.travel(1_800_000_001.1, tick=False):
            log.group_done(5, time.perf_counter(), time.thread_time())
    finally:
        log.close()
    (second,) = _events(tmp_path, "second")
    assert (second["t"], second["beats"], second["groups"]) == (1_800_000_000, 10, 2)
    assert second["writer_cpu_ms"] >= 0 and second["gc_ms"] >= 0


def test_the_log_is_off_by_default(app, asgi):
    assert app.config["LMS_BEAT_STALL_LOG"] == "" and asgi._stalls is None
    assert app.extensions["lms.beat_stalls"] is None


def test_a_slow_writer_group_is_noted_with_its_size_rounds_and_cpu(app, kit, tree, tmp_path, monkeypatch):
    app.config["LMS_BEAT_STALL_LOG"] = str(tmp_path / "stalls")
    front = beat_asgi.BeatASGI(app)
    record_group = beat_batch.record_group
    slow = beat_stalls.GROUP_SLOW_SECONDS * 2

    def slowed(app_, requests):
        time.sleep(slow)  # waits without CPU, as a group behind a lock or a slow COMMIT would
        record_group(app_, requests)

    monkeypatch.setattr(beat_batch, "record_group", slowed)
    (a,) = people(app, kit, tree, 1)
    lean = Player(app, kit, a, lean=True)
    at, body = beats()[0]
    try:
        with time_machine.travel(at, tick=True):
            status, _headers, _content = asgi_request(front, lean, "POST", lean.path, signed(lean, body))
    finally:
        beat_batch.stop(app)
        front._stalls.close()
    assert status == 200
    (group,) = _events(tmp_path / "stalls", "group")
    assert (group["beats"], group["rounds"]) == (1, 1)
    assert group["ms"] >= slow * 1000 and group["cpu_ms"] < group["ms"]
