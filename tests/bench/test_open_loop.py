"""The ingest bench's open-loop generator (bench/open_loop.py) against a tiny in-process HTTP
server: what it sends, from where, in which order and how it counts the answers.

No timing is asserted: the schedule is checked as data (``open_loop.schedule``), the run by
what the server received and what the tally counted."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.bench.bench_modules import load
from tests.bench.stub_server import KEY, Answer, Seen, listen, ok, serving

open_loop = load("open_loop")


def learners(n: int) -> list[Any]:
    return [
        open_loop.Learner(open_loop.address(i), f"session=c{i}", f"/learn/sessions/s{i}/beat", "tok", KEY)
        for i in range(n)
    ]


def run(main: Callable[[int], Any], answer: Answer = ok, delay: float = 0.0) -> tuple[Any, Seen]:
    """``main(port)`` against the server, on the same loop; its result and what the server saw."""
    seen = Seen()

    async def go() -> Any:
        server = await listen(seen, answer, delay)
        try:
            return await main(server.sockets[0].getsockname()[1])
        finally:
            server.close()

    return open_loop.run(go()), seen


def test_schedule_is_each_learners_beats_in_order_at_the_interval() -> None:
    plan = open_loop.schedule(50, 2.0, 7.0, jitter=0.1, first_seq=2, rnd=random.Random(8))
    assert [due for due, _i, _s in plan] == sorted(due for due, _i, _s in plan)
    for i in range(50):
        mine = [(due, seq) for due, j, seq in plan if j == i]
        assert [seq for _d, seq in mine] == list(range(2, 2 + len(mine)))
        assert 0 <= mine[0][0] < 2.0 and mine[-1][0] < 7.0
        gaps = [b - a for (a, _), (b, _) in zip(mine, mine[1:], strict=False)]
        assert all(1.8 - 1e-9 <= gap <= 2.2 + 1e-9 for gap in gaps)
        assert mine[-1][0] + 2.2 >= 7.0  # none left out before the end


def test_schedule_goes_on_from_each_learners_own_first_seq() -> None:
    # A day that goes on after an earlier run (anti_idle_bench --variant): each learner from its
    # own next seq; the dues are those of the same seed without them.
    firsts = [5, 9, 2]
    plan = open_loop.schedule(3, 2.0, 7.0, jitter=0.1, first_seq=2, rnd=random.Random(8), first_seqs=firsts)
    same = open_loop.schedule(3, 2.0, 7.0, jitter=0.1, first_seq=2, rnd=random.Random(8))
    assert [(due, i) for due, i, _s in plan] == [(due, i) for due, i, _s in same]
    for i, first in enumerate(firsts):
        mine = [seq for _d, j, seq in plan if j == i]
        assert mine == list(range(first, first + len(mine))) and mine


def test_drive_sends_every_scheduled_beat_signed_from_each_learners_address() -> None:
    people = learners(6)
    rate, warmup, duration = 30.0, 0.3, 1.0
    (tally, window), seen = run(lambda port: open_loop.drive(port, people, rate, warmup, duration, first_seq=2))
    plan = open_loop.schedule(6, 6 / rate, warmup + duration, jitter=0.1, first_seq=2, rnd=random.Random(8))
    for i, person in enumerate(people):
        assert seen.beats[person.address] == [seq for _d, j, seq in plan if j == i]
        assert seen.connections[person.address] == 1  # keep-alive: one connection each
    assert seen.bad_signatures == 0 and seen.pipelined == 0
    assert tally.connections == 6 and tally.errors == 0
    assert tally.scheduled == len(tally.latencies) == sum(due >= warmup for due, _i, _s in plan) > 0
    assert len(tally.done) == len(plan)
    assert all(latency >= 0 for latency in tally.latencies)
    assert window.start < window.end and window.opened >= window.start


def test_a_beat_due_while_one_is_in_flight_waits_for_its_answer() -> None:
    # Answers take 0.4 s, beats fall due every 0.1 s: they queue, none is pipelined, none lost,
    # and the queue's wait is in the latency (from the scheduled time).
    people = learners(2)
    (tally, _window), seen = run(lambda port: open_loop.drive(port, people, 20.0, 0.0, 1.0), delay=0.4)
    assert seen.pipelined == 0 and tally.errors == 0
    assert sum(map(len, seen.beats.values())) == len(tally.done) == tally.scheduled
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in seen.beats.values())
    assert max(tally.latencies) > 1.0  # the last of ~10 beats queued behind 0.4 s answers


def test_a_kept_connection_closed_by_the_server_is_retried_once_on_a_new_one() -> None:
    # Each learner's first connection is closed at its second request, unanswered (a keep-alive
    # timeout racing the beat): the beat goes again on a new connection and is no error.
    firsts: set[str] = set()

    def answer(peer: str, nth: int, seq: int) -> tuple[int, bytes] | None:
        if nth == 2 and peer not in firsts:
            firsts.add(peer)
            return None
        return ok(peer, nth, seq)

    people = learners(3)
    (tally, _window), seen = run(lambda port: open_loop.drive(port, people, 15.0, 0.0, 1.0), answer)
    assert seen.dropped == 3 and tally.errors == 0 and tally.connections == 6
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in seen.beats.values())


def test_a_new_connection_closed_unanswered_is_an_error() -> None:
    people = learners(1)
    (tally, _window), seen = run(
        lambda port: open_loop.drive(port, people, 5.0, 0.0, 1.0), lambda _p, nth, _s: None if nth == 1 else (200, b"")
    )
    assert seen.dropped >= 1 and tally.errors >= 1 and "IncompleteReadError" in tally.kinds


def test_errors_are_counted_with_a_sample_of_the_answer() -> None:
    people = learners(2)
    (tally, _window), _seen = run(
        lambda port: open_loop.drive(port, people, 10.0, 0.0, 1.0),
        lambda _p, _n, seq: (500, b'{"error":"x"}') if seq == 2 else (200, b"{}"),
    )
    assert tally.kinds == {"500": 2} and tally.errors == 2
    assert tally.samples[0] == b'{"error":"x"}'


def test_the_seams_say_what_a_beat_says_and_hear_its_answer() -> None:
    # ``content`` writes the beats, ``on_answer`` hears each answer and may post an extra
    # request (an attention check's answer), sent next on the learner's connection.
    people = learners(2)
    heard: list[tuple[int, int, bytes, bytes]] = []

    def content(i: int, seq: int, visible_ms: int) -> bytes:
        return b'{"seq":%d,"event":"heartbeat","visible_ms":%d,"who":%d}' % (seq, visible_ms, i)

    def on_answer(client: Any, seq: int, status: bytes, body: bytes) -> None:
        heard.append((client.index, seq, status, body))
        if seq == 1:
            client.post(f"/checks/t{client.index}/answer", b'{"answer":"a"}', on_extra)

    extras: list[bytes] = []

    def on_extra(_client: Any, seq: int, status: bytes, _body: bytes) -> None:
        assert seq == 0
        extras.append(status)

    (tally, _window), seen = run(
        lambda port: open_loop.drive(port, people, 10.0, 0.0, 1.0, content=content, on_answer=on_answer)
    )
    assert extras == [b"200", b"200"]
    assert sorted(p for p in seen.paths if "/checks/" in p) == ["/checks/t0/answer", "/checks/t1/answer"]
    assert len(heard) == len(tally.latencies) == tally.scheduled  # extras are not beats
    assert all(status == b"200" and body == b'{"seq":%d}' % seq for _i, seq, status, body in heard)
    assert seen.bad_signatures == 0


def test_prime_sends_each_learners_next_beat_once() -> None:
    people = learners(5)
    tally, seen = run(lambda port: open_loop.prime(port, people, 10_000, concurrency=2, seqs=[4, 7]))
    assert tally.errors == 0
    assert {p.address: seen.beats[p.address] for p in people} == {
        people[0].address: [4],
        people[1].address: [7],
        **{p.address: [1] for p in people[2:]},
    }


@pytest.mark.parametrize("status", [500, 403])
def test_prime_counts_a_refused_first_beat(status: int) -> None:
    tally, _seen = run(lambda port: open_loop.prime(port, learners(2), 10_000), lambda _p, _n, _s: (status, b"no"))
    assert tally.errors == 2 and tally.kinds == {f"prime {status}": 2}


@pytest.mark.parametrize("first_seqs", [None, [2, 7, 3, 11, 4, 20]])
def test_drive_split_drives_each_share_of_learners_from_its_own_process_on_one_window(
    first_seqs: list[int] | None,
) -> None:
    # The 20,000 learners hold more connections than one process may open: the learners
    # are dealt to processes (learner k to process k % n), each drives its share at its share of
    # the rate on its own seed; the window's callbacks run once, here, and the tallies merge.
    people = learners(6)
    windows: list[bool] = []
    with serving() as server:
        tally, window, cpu = open_loop.drive_split(
            server.port,
            people,
            30.0,
            0.3,
            1.0,
            processes=2,
            first_seq=2,
            on_window=windows.append,
            first_seqs=first_seqs,
        )
    seen = server.seen
    scheduled = 0
    for k in range(2):
        share = people[k::2]
        firsts = None if first_seqs is None else first_seqs[k::2]  # each its own learners' next seqs
        plan = open_loop.schedule(
            3, 3 / 15.0, 1.3, jitter=0.1, first_seq=2, rnd=random.Random(8 + k), first_seqs=firsts
        )
        for i, person in enumerate(share):
            assert seen.beats[person.address] == [seq for _d, j, seq in plan if j == i]
        scheduled += sum(due >= 0.3 for due, _i, _s in plan)
    assert windows == [True, False]
    assert seen.bad_signatures == 0 and seen.pipelined == 0
    assert tally.errors == 0 and tally.connections == 6
    assert tally.scheduled == len(tally.latencies) == scheduled > 0
    assert window.start < window.end and window.opened >= window.start and cpu >= 0


def test_drive_profiles_every_scheduled_beat_by_the_second_it_fell_due() -> None:
    people = learners(6)
    rate, warmup, duration = 30.0, 1.0, 1.0
    (tally, _window), _seen = run(lambda port: open_loop.drive(port, people, rate, warmup, duration, first_seq=2))
    plan = open_loop.schedule(6, 6 / rate, warmup + duration, jitter=0.1, first_seq=2, rnd=random.Random(8))
    assert sorted(round(due, 6) for due, _latency in tally.profile) == sorted(round(due, 6) for due, _i, _s in plan)
    rows = open_loop.per_second(tally, warmup)
    assert [r["second"] for r in rows] == [-1, 0]
    assert [r["n"] for r in rows] == [sum(int(due) == k for due, _i, _s in plan) for k in (0, 1)]
    assert all(0 <= r["p50_ms"] <= r["p99_ms"] <= r["max_ms"] for r in rows)


def test_per_second_counts_and_ranks_each_seconds_latencies() -> None:
    tally = open_loop.Tally(profile=[(0.1, 0.5), (0.9, 2.0), (0.5, 1.0), (2.5, 0.01)])
    assert open_loop.per_second(tally, 1.0) == [
        {"second": -1, "n": 3, "p50_ms": 1000.0, "p99_ms": 2000.0, "max_ms": 2000.0},
        {"second": 1, "n": 1, "p50_ms": 10.0, "p99_ms": 10.0, "max_ms": 10.0},
    ]
    assert "-1s     3   1000/  2000/  2000" in open_loop.format_per_second(open_loop.per_second(tally, 1.0))


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="the accept queue is read from Linux's procfs")
def test_accept_queue_counts_connections_the_server_has_not_accepted_yet() -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        assert open_loop._accept_queue(port) == 0
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        try:
            assert open_loop._accept_queue(port) == 3  # handshakes done by the kernel, none accepted
            taken: list[socket.socket] = []

            async def wait() -> None:
                # The "server" accepts a while later: ``accepted`` returns only after that.
                asyncio.get_running_loop().call_later(0.2, lambda: taken.extend(listener.accept()[0] for _ in range(3)))
                await open_loop.accepted(port)

            open_loop.run(wait())
            assert len(taken) == 3 and open_loop._accept_queue(port) == 0
            for conn in taken:
                conn.close()
        finally:
            for conn in clients:
                conn.close()
    assert open_loop._accept_queue(port) is None
