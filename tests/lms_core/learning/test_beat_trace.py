"""The ASGI front's latency trace (learning/beat_trace.py) and its garbage-collector tuning.

The trace must change nothing a learner sees (the same answer bytes as the view) and note,
for each beat, its path's stages in the order they happen; off (the default), nothing is
noted. The collector tuning runs at the worker's start-up (the lifespan) only when set.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import weakref

import pytest
import time_machine

from lms_core.learning import beat_asgi, beat_batch, beat_trace
from tests.lms_core.learning.test_beat_asgi import _run, asgi_request, people, signed
from tests.lms_core.learning.test_beat_front import Player, beats

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)


@pytest.fixture
def traced(app, tmp_path):
    """The ASGI front with ``LMS_BEAT_TRACE`` on; its trace closed and writer stopped after."""
    app.config["LMS_BEAT_TRACE"] = str(tmp_path / "trace")
    front = beat_asgi.BeatASGI(app)
    yield front
    beat_batch.stop(app)
    front._trace.close()


def _lines(directory, kind):
    out = []
    for path in sorted(directory.glob("beat-trace-*.tsv")):
        out += [line.split("\t") for line in path.read_text().splitlines() if line.startswith(kind + "\t")]
    return out


def test_a_traced_front_answers_the_view_bytes_and_notes_each_beats_stages_in_order(app, kit, tree, traced, tmp_path):
    a, b = people(app, kit, tree, 2)
    lean, view = Player(app, kit, a, lean=True), Player(app, kit, b, lean=False)
    sent = []
    for at, body in beats():
        with time_machine.travel(at, tick=False):
            status, _headers, content = asgi_request(traced, lean, "POST", lean.path, signed(lean, body))
        reference = view.post(at, body)
        assert (status, content) == (reference.status_code, reference.data), body
        sent.append((body["seq"], status))
    beat_batch.stop(app)  # the writer's last group noted
    traced._trace.close()
    noted = _lines(tmp_path / "trace", "beat")
    assert [(int(f[3]), f[2]) for f in noted] == [(seq, lean.session_id) for seq, _status in sent]
    groups = []
    for f in noted:
        recv, checked, queued, started, committed, settled, written = (float(x) for x in f[5:12])
        if f[4] == "group":  # every stage, in the order the path takes them
            assert recv <= checked <= queued <= started <= committed <= settled <= written, f
            groups.append(int(f[12]))
            assert int(f[13]) >= 1
        else:  # handed to the view: received and written
            assert f[4] == "view" and recv <= written, f
    assert groups and groups == sorted(groups)  # the writer's groups, numbered in order
    assert len(_lines(tmp_path / "trace", "group")) >= len(set(groups))


def test_the_trace_is_off_by_default(app, kit, tree, asgi, tmp_path):
    assert app.config["LMS_BEAT_TRACE"] == "" and asgi._trace is None
    (a,) = people(app, kit, tree, 1)
    lean = Player(app, kit, a, lean=True)
    at, body = beats()[0]
    with time_machine.travel(at, tick=False):
        status, _headers, _content = asgi_request(asgi, lean, "POST", lean.path, signed(lean, body))
    assert status == 200


def test_collections_are_noted_with_their_generation(tmp_path):
    tracer = beat_trace.Tracer(tmp_path)
    try:
        gc.collect()
    finally:
        tracer.close()
    noted = _lines(tmp_path, "gc")
    assert noted and noted[-1][2] == "2" and float(noted[-1][3]) <= float(noted[-1][4])


def test_the_loop_probe_notes_a_loop_held_up(tmp_path):
    tracer = beat_trace.Tracer(tmp_path)

    async def held_up():
        tracer._probe = asyncio.get_running_loop().create_task(tracer._watch_loop())
        await asyncio.sleep(0)
        time.sleep(beat_trace.PROBE_SECONDS + beat_trace.LATE_SECONDS * 3)  # the loop cannot run
        await asyncio.sleep(beat_trace.PROBE_SECONDS * 2)
        tracer._probe.cancel()

    try:
        _run(held_up())
    finally:
        tracer._probe = None
        tracer.close()
    assert _lines(tmp_path, "loop")


@pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], LMS_BEAT_GC_FREEZE=True, LMS_BEAT_GC_GEN0=5000)
def test_the_workers_start_up_freezes_the_heap_and_sets_the_first_threshold(app):
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    try:
        beat_asgi.tune_gc(app.config)
        assert gc.get_threshold() == (5000, *threshold[1:])
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_tests_leave_the_collector_alone(app):
    threshold = gc.get_threshold()
    frozen = gc.get_freeze_count()
    beat_asgi.tune_gc(app.config)  # the test settings: off, as the lifespan runs it in tests
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == frozen


@pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], LMS_BEAT_SWITCH_INTERVAL_US=1000)
def test_the_workers_start_up_sets_the_gil_switch_interval(app):
    before = sys.getswitchinterval()
    try:
        beat_asgi.tune_gc(app.config)
        assert sys.getswitchinterval() == pytest.approx(0.001)
    finally:
        sys.setswitchinterval(before)


def test_the_workers_default_switch_interval_is_one_millisecond():
    # The production default (the test settings turn it off, as they do the collector's):
    # a worker's start-up with the shipped config sets 1 ms, not Python's 5 ms.
    from lms_core.config import DEFAULTS

    before = sys.getswitchinterval()
    try:
        beat_asgi.tune_gc({"LMS_BEAT_SWITCH_INTERVAL_US": DEFAULTS["LMS_BEAT_SWITCH_INTERVAL_US"]})
        assert sys.getswitchinterval() == pytest.approx(0.001)
    finally:
        sys.setswitchinterval(before)


def test_a_zero_switch_interval_leaves_pythons(app):
    before = sys.getswitchinterval()
    beat_asgi.tune_gc(app.config)  # the default, 0: Python's own
    assert sys.getswitchinterval() == before


@pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], LMS_BEAT_GC_REFREEZE=True)
def test_the_workers_start_up_freezes_what_survives_each_full_collection(app):
    frozen = gc.get_freeze_count()
    try:
        beat_asgi.tune_gc(app.config)
        beat_asgi.tune_gc(app.config)  # a second start-up (a test's lifespan) adds it once
        assert gc.callbacks.count(beat_asgi._refreeze) == 1
        survivors = [[i] for i in range(1000)]  # made after start-up, alive through the collection
        gc.collect(1)
        assert gc.get_freeze_count() == frozen  # a young collection freezes nothing
        gc.collect(2)
        assert gc.get_freeze_count() >= frozen + len(survivors)
    finally:
        gc.callbacks.remove(beat_asgi._refreeze)
        gc.unfreeze()


def test_tests_leave_the_full_collections_unfrozen(app):
    beat_asgi.tune_gc(app.config)  # the test settings: off
    assert beat_asgi._refreeze not in gc.callbacks


class _Cyclic:
    """A node of a reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], LMS_BEAT_GC_REFREEZE=True)
def test_frozen_cyclic_garbage_is_collected_by_the_hourly_thaw(app, monkeypatch):
    beat_asgi.tune_gc(app.config)
    try:
        node = _Cyclic()
        gone = weakref.ref(node)
        gc.collect(2)  # alive through a full collection: frozen after it
        del node
        gc.collect(2)  # frozen: not walked, the garbage stays
        assert gone() is not None
        monkeypatch.setattr(beat_asgi, "_last_thaw", beat_asgi._last_thaw - beat_asgi.THAW_SECONDS)
        gc.collect(2)  # the hour is up: this one walks the frozen objects too
        assert gone() is None
        gc.collect(2)  # and the next one within the hour does not thaw again
        assert gc.get_freeze_count() > 0
    finally:
        gc.callbacks.remove(beat_asgi._refreeze)
        gc.unfreeze()
