#!/usr/bin/env python3
"""Crash test of the ASGI beat front: SIGKILL gunicorn mid-group (and crash PostgreSQL), then audit.

Starts PostgreSQL (fsync and synchronous_commit on) and gunicorn with uvicorn workers serving
``lms_core.learning.beat_asgi:create_app()`` (group commit on, anti_idle on), signs in
``--learners`` learners (``open_loop.mint_learners``), and has each post signed beats back to
back on its own connection. After ``--after`` seconds every gunicorn process gets SIGKILL at
once, while groups are being recorded; with ``--crash-postgres`` PostgreSQL is then stopped with
``-m immediate`` (no shutdown checkpoint: recovery replays the WAL, as after a power cut) and
started again. Then the database is audited:

* every beat answered 200 is stored: its raw beat row (``anti_idle_beats``) exists and its
  session's ``last_seq`` is at least its seq (an acknowledged beat is durable);
* every session's ``last_seq`` equals the highest seq of its stored raw beats (the core's rows
  and the plugin's rows of a group are committed together or not at all);

and the front is started again: every learner's next beat must be answered 200 (a crashed
worker leaves nothing that blocks the next one).

Prints a JSON verdict; exits 1 if a property fails.

    nice .venv/bin/python bench/beat_sigkill.py --learners 64 --after 8 --crash-postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

import anti_idle_bench  # noqa: E402 - bench/ is a folder of scripts, not a package
import common  # noqa: E402
import open_loop  # noqa: E402
import seed_large  # noqa: E402
from common import step  # noqa: E402

from plugins.anti_idle.envelope import sign_with_key  # noqa: E402


async def _learner(port: int, learner: open_loop.Learner, first_seq: int, acked: list[int], sent: list[int]) -> None:
    """Beats back to back on one connection until it breaks (the kill); ``acked``: the seqs answered 200."""
    head = (
        f"POST {learner.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {learner.cookie}\r\n"
        f"X-CSRFToken: {learner.token}\r\nContent-Type: application/json\r\n"
    ).encode()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(learner.address, 0))
    except OSError:
        return
    seq = first_seq - 1
    try:
        while True:
            seq += 1
            body = sign_with_key(learner.key, open_loop.beat_body(seq, 10_000))
            sent.append(seq)
            writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            answer = await reader.readuntil(b"\r\n\r\n")
            at = answer.lower().find(b"content-length:")
            await reader.readexactly(int(answer[at + 15 : answer.index(b"\r\n", at)]))
            if answer[9:12] == b"200":
                acked.append(seq)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def _load_then_kill(
    port: int, learners: list[open_loop.Learner], server: object, after: float
) -> tuple[list[list[int]], list[list[int]], int]:
    acked: list[list[int]] = [[] for _ in learners]
    sent: list[list[int]] = [[] for _ in learners]
    tasks = [asyncio.create_task(_learner(port, learner, 2, acked[i], sent[i])) for i, learner in enumerate(learners)]
    await asyncio.sleep(after)
    killed = common.kill_server(server)  # type: ignore[arg-type] - blocking: nothing is answered meanwhile anyway
    await asyncio.wait(tasks, timeout=30)
    return acked, sent, killed


def _start_front(env: dict[str, str], workers: int) -> tuple[object, int]:
    front = "lms_core.learning.beat_asgi:create_app()"
    return common.start_gunicorn(env, workers=workers, worker_class="uvicorn_worker.UvicornWorker", app=front)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=64)
    parser.add_argument("--after", type=float, default=8.0, help="seconds of load before the SIGKILL")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--crash-postgres", action="store_true", help="also stop PostgreSQL -m immediate and restart")
    args = parser.parse_args(argv)
    cluster = common.start_postgres()
    server = None
    try:
        url = cluster.create_database("lms_sigkill")
        env = common.app_env(url, "anti_idle")
        common.upgrade(env)
        seed_large.seed(url, users=max(200, args.learners * 7 + 2), units=200)
        seed_large.seed_study(url, courses=1, assigned=1)
        seed_large.settle(url)
        import psycopg

        with psycopg.connect(anti_idle_bench.plain(url)) as conn:
            lesson_id = conn.execute("SELECT id FROM lessons ORDER BY id LIMIT 1").fetchone()[0]
        app = anti_idle_bench._in_process_app(url)  # noqa: SLF001 - the bench's own app settings
        learners = open_loop.mint_learners(app, lesson_id, [f"bench{i * 7:06d}" for i in range(args.learners)])
        with app.app_context():
            from lms_core.extensions import db

            db.engine.dispose()
        server, port = _start_front(env, args.workers)
        step(f"priming {len(learners)} learners (a person-day's first beat), then beats back to back")
        primed = asyncio.run(open_loop.prime(port, learners, 10_000))
        assert not primed.errors, primed.kinds
        acked, sent, killed = asyncio.run(_load_then_kill(port, learners, server, args.after))
        step(f"SIGKILL sent to {killed} gunicorn processes after {args.after:g} s")
        server = None
        if args.crash_postgres:
            step("PostgreSQL stopped -m immediate, then started (WAL recovery)")
            common.crash_postgres(cluster)
            common.restart_postgres(cluster)
        lost, mismatched = [], []
        in_flight = 0
        last: list[int] = []
        with psycopg.connect(anti_idle_bench.plain(url)) as conn:
            for learner, seqs, tried in zip(learners, acked, sent, strict=True):
                last_seq, top = _session(conn, learner)
                stored = {
                    r[0] for r in conn.execute("SELECT seq FROM anti_idle_beats WHERE session_id = %s", (_id(learner),))
                }
                lost += [(_id(learner), s) for s in seqs if s not in stored or s > last_seq]
                if last_seq != top:
                    mismatched.append((_id(learner), last_seq, top))
                in_flight += len(set(tried) - set(seqs))
                last.append(last_seq)
        step("gunicorn started again: each learner's next beat")
        server, port = _start_front(env, args.workers)
        after_restart = asyncio.run(open_loop.prime(port, learners, 10_000, seqs=[s + 1 for s in last]))
        with psycopg.connect(anti_idle_bench.plain(url)) as conn:
            not_moved = sum(_session(conn, x)[0] != s + 1 for x, s in zip(learners, last, strict=True))
        verdict = {
            "learners": len(learners),
            "beats_acknowledged": sum(len(a) for a in acked),
            "beats_in_flight_at_the_kill": in_flight,
            "acknowledged_but_lost": len(lost),
            "sessions_whose_rows_disagree": len(mismatched),
            "postgres_crashed_too": args.crash_postgres,
            "next_beat_errors_after_restart": after_restart.errors,
            "next_beat_not_stored_after_restart": not_moved,
            "ok": not lost and not mismatched and not after_restart.errors and not not_moved,
        }
        print(json.dumps(verdict, indent=2))
        if lost or mismatched:
            print(f"lost: {lost[:10]}; rows disagree: {mismatched[:10]}", file=sys.stderr)
        return 0 if verdict["ok"] else 1
    finally:
        common.stop_server(server)  # type: ignore[arg-type]
        common.stop_postgres(cluster)


def _id(learner: open_loop.Learner) -> str:
    return learner.path.split("/")[-2]


def _session(conn: object, learner: open_loop.Learner) -> tuple[int, int | None]:
    """The session's ``last_seq`` and the highest seq among its stored raw beats."""
    row = conn.execute(  # type: ignore[attr-defined]
        "SELECT s.last_seq, (SELECT max(seq) FROM anti_idle_beats b WHERE b.session_id = s.id) "
        "FROM learning_sessions s WHERE s.id = %s",
        (_id(learner),),
    ).fetchone()
    return row[0], row[1]


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    step(f"{time.perf_counter() - started:.0f} s")
    sys.exit(code)
