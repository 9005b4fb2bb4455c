"""Crash test: SIGKILL the LRS (and crash PostgreSQL) mid-batch, then audit what is stored.

Starts PostgreSQL (fsync on) and gunicorn serving ``lrs:create_app()``, runs clients
that POST batches of 100 statements with known ids, and after ``--after`` seconds
sends SIGKILL to every gunicorn process and stops PostgreSQL with ``-m immediate``
(no shutdown checkpoint: recovery replays the WAL, as after a power cut). PostgreSQL
is restarted and the database audited:

* every statement whose POST was answered 200 must be stored (none lost);
* every batch is stored completely or not at all (no partial batch).

Prints progress and a JSON verdict; exits 1 if either property fails.

    .venv/bin/python bench/lrs_sigkill.py --clients 4 --after 6
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common import crash_postgres, kill_server, restart_postgres, step, stop_postgres  # noqa: E402 - bench/ is scripts
from lrs_bench import Conn, make_statement, start_stack  # noqa: E402


def _client(args: tuple[str, str, str, int, str]) -> None:
    """Post batches forever; journal each batch before sending and after its 200."""
    url, key, secret, seed, journal = args
    rng = random.Random(seed)
    conn = Conn(url, key, secret)
    with open(journal, "a") as out:
        while True:
            batch = [make_statement(rng) for _ in range(100)]
            ids = [s["id"] for s in batch]
            out.write("sent " + json.dumps(ids) + "\n")
            out.flush()
            try:
                status, _ = conn.request("POST", "/statements", json.dumps(batch, ensure_ascii=False).encode())
            except Exception:  # noqa: BLE001 - the server is being killed: any error ends the client
                return
            if status == 200:
                out.write("acked " + json.dumps(ids) + "\n")
                out.flush()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--after", type=float, default=6.0, help="seconds of load before the kill")
    p.add_argument("--port", type=int, default=8797)
    args = p.parse_args()
    cluster, db_url, gunicorn, key, secret = start_stack(4, 2, args.port, "gthread")
    url = f"http://127.0.0.1:{args.port}/xapi"
    journal_dir = Path(tempfile.mkdtemp(prefix="lrs-crash-"))
    journals = [str(journal_dir / f"client{i}.log") for i in range(args.clients)]
    procs = [
        mp.Process(target=_client, args=((url, key, secret, random.randrange(1 << 30), j),), daemon=True)
        for j in journals
    ]
    for proc in procs:
        proc.start()
    step(f"{args.clients} clients posting batches of 100; killing in {args.after} s")
    time.sleep(args.after)
    killed = kill_server(gunicorn)
    crash_postgres(cluster)
    step(f"SIGKILLed gunicorn ({killed} processes) and crashed PostgreSQL")
    time.sleep(1)
    for proc in procs:
        proc.kill()
    sent: list[list[str]] = []
    acked: list[list[str]] = []
    for journal in journals:
        for line in Path(journal).read_text().splitlines():
            kind, _, raw = line.partition(" ")
            try:
                ids = json.loads(raw)
            except ValueError:
                continue  # a line cut by the kill
            (acked if kind == "acked" else sent).append(ids)
    restart_postgres(cluster)
    step("PostgreSQL restarted (crash recovery done); auditing")
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = set(conn.execute(text("SELECT statement_id FROM lrs_statements")).scalars())
        orphan_keys = conn.execute(
            text(
                "SELECT count(*) FROM lrs_statement_keys k LEFT JOIN lrs_statements s ON s.pk = k.stmt_pk "
                "WHERE s.pk IS NULL"
            )
        ).scalar_one()
    engine.dispose()
    lost = sum(1 for ids in acked for i in ids if i not in stored)
    partial = sum(1 for ids in sent if 0 < sum(i in stored for i in ids) < len(ids))
    acked_first = {ids[0] for ids in acked}
    unacked_stored = sum(1 for ids in sent if ids[0] not in acked_first and all(i in stored for i in ids))
    verdict = {
        "batches_sent": len(sent),
        "batches_acknowledged": len(acked),
        "statements_stored": len(stored),
        "acknowledged_statements_lost": lost,
        "partial_batches": partial,
        "unacknowledged_batches_stored_whole": unacked_stored,
        "orphan_lookup_keys": orphan_keys,
        "ok": lost == 0 and partial == 0 and orphan_keys == 0,
    }
    print(json.dumps(verdict, indent=2), flush=True)
    stop_postgres(cluster)
    shutil.rmtree(journal_dir, ignore_errors=True)
    sys.exit(0 if verdict["ok"] else 1)


if __name__ == "__main__":
    main()
