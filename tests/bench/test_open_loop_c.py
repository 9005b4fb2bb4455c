"""The C generator (bench/open_loop_c.py, bench/open_loop_c/gen.c) measures what the Python one
(bench/open_loop.py) measures: both against the same small server, in turn, with slow answers,
errors, dropped and unanswered requests injected for some learners.

No timing is asserted: the beats are compared as data (what the server received, in which
order, from which address, one in flight at a time) and the latencies by causality (a beat
held by the server for a stall was answered after it; a beat queued behind it was answered
after that one)."""

from __future__ import annotations

import random
import shutil
import threading
from typing import Any

import pytest

from tests.bench.bench_modules import load
from tests.bench.stub_server import KEY, serving

open_loop = load("open_loop")
open_loop_c = load("open_loop_c")

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="the C generator is compiled with gcc")

STALL = 0.5  # s: longer than a learner's interval below (0.3 s ± 10 %), so its next beat queues behind it


def people(n: int) -> list[Any]:
    return [
        open_loop.Learner(open_loop.address(i), f"session=c{i}", f"/learn/sessions/s{i}/beat", "tok", KEY)
        for i in range(n)
    ]


LEARNERS, RATE, WARMUP, DURATION = 36, 120.0, 0.4, 1.2  # a beat every 0.3 s each, 5 or 6 each


def injected(peer: str, nth: int, seq: int) -> tuple[int, bytes, float] | str | None:
    """What the server does, by learner (the last octet of its address: learner i is i + 1)."""
    learner = int(peer.rsplit(".", 1)[1]) - 1
    if learner < 4 and seq == 3:  # a stall: this beat and the one queued behind it are late
        return 200, b"{}", STALL
    if learner in (4, 5) and seq == 4:
        return 500, b'{"error":"x"}', 0.0
    if learner == 6 and nth == 2 and seq == 3:  # a kept connection closed at a beat: sent again
        return None
    if learner == 7 and seq == 5:  # closed, then closed again on the new connection: an error
        return None
    if learner == 8 and seq == 5:  # never answered: "unanswered" at the drain
        return "hold"
    return 200, b'{"ok":true}', 0.0


def _python(port: int) -> tuple[Any, Any]:
    return open_loop.run(open_loop.drive(port, people(LEARNERS), RATE, WARMUP, DURATION, first_seq=2))


def _c(port: int) -> tuple[Any, Any]:
    tally, window, cpu, (user, system) = open_loop_c.drive(
        port, people(LEARNERS), RATE, WARMUP, DURATION, first_seq=2, drain=1.0
    )
    assert cpu == pytest.approx(user + system) and cpu >= 0
    return tally, window


@pytest.fixture
def short_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(open_loop, "DRAIN_SECONDS", 1.0)  # the held beat: not 20 s of waiting


def _by_beat(tally: Any, plan: list[tuple[float, int, int]]) -> dict[tuple[int, int], tuple[float, float]]:
    """Each beat's (due, latency) from ``tally.profile``, keyed by (learner, seq) through the plan."""
    keys = {round(due, 6): (i, seq) for due, i, seq in plan}
    return {keys[round(due, 6)]: (due, latency) for due, latency in tally.profile}


def test_both_generators_send_the_same_beats_and_count_the_same(short_drain: None) -> None:
    plan = open_loop.schedule(
        LEARNERS, LEARNERS / RATE, WARMUP + DURATION, jitter=0.1, first_seq=2, rnd=random.Random(8)
    )
    runs = {}
    for name, go in (("python", _python), ("c", _c)):
        with serving(injected) as server:
            tally, window = go(server.port)
            runs[name] = (tally, window, server.seen)
    expected = {open_loop.address(i): [seq for _d, j, seq in plan if j == i] for i in range(LEARNERS)}
    held = [(8, seq) for seq in expected[open_loop.address(8)] if seq >= 5]  # and the beats queued behind it
    expected[open_loop.address(8)] = [seq for seq in expected[open_loop.address(8)] if seq <= 5]
    beats: dict[str, dict[tuple[int, int], tuple[float, float]]] = {}
    for name, (tally, window, seen) in runs.items():
        sent = {
            peer: [s for k, s in enumerate(seqs) if not (k and seqs[k - 1] == s)]
            for peer, seqs in seen.received.items()
        }
        assert sent == expected, name  # every beat, in order, from each learner's own address
        assert seen.received[open_loop.address(6)].count(3) == 2  # the dropped one sent again on a new connection
        assert seen.pipelined == 0 and seen.bad_signatures == 0, name  # one in flight per learner
        assert seen.connections[open_loop.address(6)] == 2, name  # the kept one closed, one more
        assert tally.scheduled == sum(due >= WARMUP for due, _i, _s in plan), name
        assert len(tally.profile) == len(plan), name
        assert window.start < window.end <= window.closed, name
        beats[name] = by = _by_beat(tally, plan)
        for i in range(4):  # the stalled beat, answered after the stall; the next waited for it
            due, latency = by[(i, 3)]
            assert latency >= STALL, (name, i)
            next_due, next_latency = by[(i, 4)]
            assert next_due < due + STALL  # due while the stalled one was in flight ...
            assert next_due + next_latency >= due + latency, (name, i)  # ... answered after it
        assert by[(8, 5)][1] >= 1.0 or by[(8, 5)][0] < WARMUP, name  # held: waited the drain
    py, c = runs["python"][0], runs["c"][0]
    assert c.kinds == py.kinds and c.errors == py.errors
    assert c.connections == py.connections > LEARNERS  # learners 6 and 7 reconnected
    assert runs["c"][2].connections == runs["python"][2].connections
    in_window = {k for k, (due, _l) in beats["python"].items() if due >= WARMUP}
    expected_kinds: dict[str, int] = {}
    failed = [((4, 4), "500"), ((5, 4), "500"), ((7, 5), "IncompleteReadError")] + [(key, "unanswered") for key in held]
    for key, name in failed:
        if key in in_window:
            expected_kinds[name] = expected_kinds.get(name, 0) + 1
    assert py.kinds == expected_kinds and expected_kinds
    assert c.samples == py.samples
    assert len(c.latencies) == len(py.latencies) == py.scheduled


def test_the_c_generator_deals_learners_to_processes_as_drive_split_does() -> None:
    with serving(lambda _p, _n, _s: (200, b"{}", 0.0)) as server:
        windows: list[bool] = []
        first_seqs = [2, 7, 3, 11, 4, 20]
        tally, window, _cpu, _split = open_loop_c.drive(
            server.port,
            people(6),
            30.0,
            0.3,
            1.0,
            processes=2,
            first_seq=2,
            on_window=windows.append,
            first_seqs=first_seqs,
        )
        scheduled = 0
        for k in range(2):
            plan = open_loop.schedule(
                3, 6 / 30.0, 1.3, jitter=0.1, first_seq=2, rnd=random.Random(8 + k), first_seqs=first_seqs[k::2]
            )
            for i, person in enumerate(people(6)[k::2]):
                assert server.seen.beats[person.address] == [seq for _d, j, seq in plan if j == i]
            scheduled += sum(due >= 0.3 for due, _i, _s in plan)
        assert windows == [True, False]
        assert tally.errors == 0 and tally.connections == 6 and server.seen.pipelined == 0
        assert tally.scheduled == len(tally.latencies) == scheduled > 0
        assert window.opened >= window.start


def test_a_refused_connect_fails_the_beat_by_kind_in_both() -> None:
    # No server at all after the connections: every beat's connect is refused.
    import socket

    results = {}
    for name in ("python", "c"):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        lone = people(1)
        if name == "python":
            results[name] = _refused_python(port, lone)
        else:
            results[name] = _refused_c(port, lone)
    assert results["c"].kinds == results["python"].kinds == {"ConnectionRefusedError": 1}


def _refused_python(port: int, lone: list[Any]) -> Any:
    async def go() -> Any:
        state = open_loop._Run(open_loop.Tally(), (0.0, float("inf")), None)
        client = open_loop.Client(0, port, lone[0], state)
        client.prepare([1], open_loop._default_content, 1000)
        client.beat(1, 0.0)
        await state.drained(5)
        return state.tally

    return open_loop.run(go())


def _refused_c(port: int, lone: list[Any]) -> Any:
    # The program opens every connection before the schedule: a listener that takes them and
    # then goes away, so the beat's connect is refused.
    import socket

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(8)
    accepted: list[socket.socket] = []

    def take() -> None:
        conn, _addr = listener.accept()
        accepted.append(conn)
        listener.close()
        conn.close()  # the kept connection closes before the beat: a new connect, refused

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    tally, _window, _cpu, _split = open_loop_c.drive(port, lone, 2.0, 0.0, 0.6, drain=1.0)
    thread.join(5)
    return tally
