#!/usr/bin/env python3
"""The ASGI front's per-beat checks, CPU per beat in process (issue 8, ingestion).

Drives ``beat_asgi.BeatASGI`` (the real ASGI front, plugin on, PostgreSQL in a throwaway
cluster) with ASGI scopes as uvicorn builds them, from learners signed in through the real
login form and lesson page, and times everything the front does for a beat **except the
recording**: the scope -> environ, ``LeanBeats.take`` (path, cookie, CSRF, Flask-Login's
identifier), ``beat_of``, then ``beat_front.record``'s checks (``principal_for``, the strict
JSON reader, the ``lms_beat_received`` hook with the plugin's envelope HMAC) and the
service's body validation (``services._parse_beat``), then the answer's bytes
(``beat_batch.answer_parts``) and the two ASGI messages. ``services.record_beat`` is
replaced by ``_parse_beat`` plus a fixed result (the recording is the core's and the
plugin's part, measured elsewhere: bench/beat_split.py). No event loop and no server: the
coroutine is driven by hand (it never waits), so the figure is the front's own Python.

Two cadences, because the front keeps per-process caches (the verified session cookie;
the principal, ``LMS_AUTH_CACHE_SECONDS``):

``hot``
    each learner's next beat comes right after its previous one, as in the closed-loop
    load generator (``anti_idle_bench --only ingest``, ``beat_floor``);
``10s``
    each learner's beats 10 s apart (the player's cadence: 20,000 learners at 2,000 beats/s);
    the caches' clocks are moved by 10 s / learners per beat.

CPU is ``time.process_time`` (steady under load); the load average is printed with it.

    .venv/bin/python bench/beat_front_cpu.py                  # about 1 minute
    .venv/bin/python bench/beat_front_cpu.py --beats 20000 --profile 10s
    .venv/bin/python bench/beat_front_cpu.py --cookie-seconds 5     # the cookie cache as before
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

import anti_idle_bench  # noqa: E402 - bench/ is a folder of scripts, not a package
import common  # noqa: E402
import load  # noqa: E402
import seed_large  # noqa: E402

#: The learners' browser (the session's Flask-Login identifier is of address and agent).
AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
#: How far the caches' clocks were moved (seconds), over every run.
_MOVED = [0.0]


@dataclasses.dataclass(frozen=True)
class _Result:
    """What ``record_beat`` answers for an ordinary credited beat (the fields the answer reads)."""

    accepted: bool = True
    duplicate: bool = False
    refused: bool = False
    credited_ms: int = 10_000
    coverage_bp: int = 1234
    position_ms: int = 0
    lesson_completed: bool = False
    course_completed: bool = False
    verdict: str = "credit"


def sign_in(app: Any, lesson_id: int, names: dict[str, int]) -> list[tuple[str, str, str, str, int]]:
    """``(cookie header, beat path, CSRF token, beat key, user id)`` per learner, through the login form
    and the lesson page (the test client: the same cookies a browser gets)."""
    learners = []
    for name, user_id in names.items():
        client = app.test_client()
        client.environ_base["HTTP_USER_AGENT"] = AGENT  # Flask-Login's identifier hashes it
        page = client.get("/login").data
        token = load.CSRF_RE.search(page)
        form = {"username": name, "password": seed_large.PASSWORD}
        if token:
            form["csrf_token"] = token.group(1).decode()
        r = client.post("/login", data=form)
        assert r.status_code in (302, 303), (name, r.status_code)
        page = client.get(f"/learn/lessons/{lesson_id}").data
        found = [rx.search(page) for rx in (anti_idle_bench.BEAT_URL_RE, anti_idle_bench.CSRF_META_RE)]
        key = anti_idle_bench.BEAT_KEY_RE.search(page)
        assert all(found) and key, f"lesson page for {name} without beat URL, token or key"
        cookie = "; ".join(f"{c.key}={c.value}" for c in client._cookies.values())  # noqa: SLF001
        beat = (found[0].group(1).decode(), found[1].group(1).decode(), key.group(1).decode())  # type: ignore[union-attr]
        learners.append((cookie, *beat, user_id))
    return learners


def scope_of(path: str, cookie: str, token: str, length: int, port: int) -> dict[str, Any]:
    """An ASGI HTTP scope as uvicorn (httptools) builds it for the load generator's request."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", port),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"cookie", cookie.encode("latin-1")),
            (b"x-csrftoken", token.encode()),
            (b"content-type", b"application/json"),
            (b"accept-encoding", b"identity"),
            (b"user-agent", AGENT.encode()),
            (b"content-length", b"%d" % length),
        ],
        "state": {},
    }


def run(
    front: Any, learners: list[tuple[str, str, str, str, int]], beats: int, cadence: float, seq0: int, group: int
) -> tuple[float, int]:
    """CPU seconds for ``beats`` beats round-robin over the learners, and how many were answered 200."""
    from lms_core.accounts import principal
    from lms_core.learning import beat_front
    from plugins.anti_idle.envelope import sign_with_key

    prepared = []
    for i in range(beats):
        cookie, path, token, key, _user = learners[i % len(learners)]
        seq = seq0 + i // len(learners)
        body = b'{"seq":%d,"event":"heartbeat","visible_ms":10000,"client":{"visibility":"visible"}}' % seq
        body = sign_with_key(key, body)
        prepared.append((scope_of(path, cookie, token, len(body), 40000 + i % len(learners)), body))
    sent: list[dict[str, Any]] = []
    ok = 0
    # The group writer reads a round's expired sign-ins together (``principal.warm``, where it
    # exists; on PostgreSQL); groups of ``group`` beats in arrival order here.
    prefetch = getattr(principal, "warm", None)
    users = [int(learner[4]) for learner in learners]
    step = cadence / len(learners)
    moved = _MOVED  # only ever forward: an entry kept in one run must not look fresh in the next
    real_front, real_principal = beat_front.clock, principal.clock
    beat_front.clock = principal.clock = lambda: real_front() + moved[0]  # type: ignore[assignment]
    try:
        started = time.process_time()
        for i, (scope, body) in enumerate(prepared):
            moved[0] += step
            if prefetch is not None and i % group == 0:
                prefetch([users[j % len(users)] for j in range(i, min(i + group, beats))])
            message = {"type": "http.request", "body": body, "more_body": False}

            async def receive(message: dict[str, Any] = message) -> dict[str, Any]:
                return message

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            coro = front(scope, receive, send)
            try:
                coro.send(None)
            except StopIteration:
                pass
            else:  # pragma: no cover - the front waited: not the lean path
                raise AssertionError("the front waited (it handed the beat to Flask?)")
            ok += sent[-2]["status"] == 200
            sent.clear()
        cpu = time.process_time() - started
    finally:
        beat_front.clock, principal.clock = real_front, real_principal  # type: ignore[assignment]
    return cpu, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=64)
    parser.add_argument("--beats", type=int, default=6400, help="timed beats per cadence and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--cookie-seconds", type=float, help="keep a verified cookie at most this long (A/B; before 4f6442e: 5)"
    )
    parser.add_argument("--group", type=int, default=16, help="beats per group (the ingest bench has 14-25 per COMMIT)")
    parser.add_argument(
        "--profile", choices=["hot", "10s"], help="cProfile (process_time) one more round at this cadence"
    )
    args = parser.parse_args(argv)
    cluster = common.start_postgres()
    try:
        url = cluster.create_database("lms_bench")
        common.upgrade(common.app_env(url, "anti_idle"))
        seed_large.seed(url, users=max(200, args.learners + 10), units=200)
        seed_large.seed_study(url, courses=1, assigned=1)
        seed_large.settle(url)
        figures = measure(url, args)
    finally:
        common.stop_postgres(cluster)
    print(figures)
    return 0


def measure(url: str, args: argparse.Namespace) -> str:
    import psycopg

    from lms_core.learning import beat_asgi, beat_batch, beat_front, services

    app = anti_idle_bench._in_process_app(url)  # noqa: SLF001 - the in-process sections' app
    with psycopg.connect(anti_idle_bench.plain(url)) as conn:
        lesson_id = conn.execute("SELECT id FROM lessons ORDER BY id LIMIT 1").fetchone()[0]
        names = [f"bench{i:06d}" for i in range(3, 3 + args.learners)]
        ids = dict(conn.execute("SELECT username, id FROM users WHERE username = ANY(%s)", (names,)).fetchall())
    learners = sign_in(app, lesson_id, {name: ids[name] for name in names})
    front = beat_asgi.BeatASGI(app)
    fixed = _Result()

    def record_beat(_session_id: str, _principal: Any, payload: Any) -> _Result:
        services._parse_beat(payload)  # noqa: SLF001 - the service's own body validation
        return fixed

    async def checked(beat: beat_front.Beat, _marks: Any = None) -> beat_batch.Answer | None:
        # What the group writer does for a beat, less the recording (one app context per
        # group there: pushed once for the whole run here).
        return beat_batch.answer_parts(app, beat_front.record(beat))

    if args.cookie_seconds is not None:  # the A/B: a verified cookie kept only so long (1f56313: 5 s)
        lean, verify = front.front, front.front._verify  # noqa: SLF001

        def capped(cookie: str, csrf_header: str | None) -> Any:
            verified = verify(cookie, csrf_header)
            return None if verified is None else (verified[0], min(verified[1], args.cookie_seconds))

        lean._verify = capped  # noqa: SLF001
    front._record = checked  # type: ignore[method-assign]  # noqa: SLF001
    services.record_beat = record_beat  # type: ignore[assignment]
    lines = []
    seq = 1
    with app.app_context():
        run(front, learners, len(learners) * 3, 0.0, seq, args.group)  # warm-up: caches, the statement
        seq += 3
        for round_ in range(1, args.rounds + 1):
            for name, cadence in (("hot", 0.0), ("10s", 10.0)):
                cpu, ok = run(front, learners, args.beats, cadence, seq, args.group)
                seq += args.beats // len(learners) + 1
                assert ok == args.beats, f"{args.beats - ok} beats not answered 200"
                line = (
                    f"round {round_} {name:3s}: {cpu * 1e6 / args.beats:6.1f} µs CPU per beat "
                    f"({args.beats} beats, {len(learners)} learners, groups of {args.group}; "
                    f"load average {os.getloadavg()[0]:.2f})"
                )
                print(line, flush=True)
                lines.append(line)
        if args.profile:
            profiler = cProfile.Profile(time.process_time)
            with contextlib.ExitStack():
                profiler.enable()
                run(front, learners, args.beats, 0.0 if args.profile == "hot" else 10.0, seq, args.group)
                profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return "\n".join(["the ASGI front's checks, in process:", *lines])


if __name__ == "__main__":
    sys.exit(main())
