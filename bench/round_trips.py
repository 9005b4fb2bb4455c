#!/usr/bin/env python3
"""A beat round's round trips: their CPU on loopback TCP and on a Unix-domain socket, sent one by
one or as one psycopg pipeline (issue 8, round).

A beat group's transaction is about six round trips whatever its size (``BEGIN``, the core's and
the plugin's locked reads, their two writes, ``COMMIT``); at the live workers' 4-7 beats a COMMIT
their fixed cost weighs several times more per beat than in the benches' rounds of 15. This
measures that cost apart from the work the statements do: a round of the same shape (a locked
one-row read, two one-row UPDATEs with a 2 kB parameter each, ``COMMIT``; every statement
prepared) on one throwaway cluster, through loopback TCP and through the cluster's socket, with
the two writes and the COMMIT sent one after another or in one psycopg pipeline; the variants
interleaved, ``--reps`` times. Prints the client's CPU (this process: psycopg's Python, libpq and
the kernel's side of each send and receive) and the backend's CPU (``/proc``) a round, and the
median of each variant. The commit's flush is not what is compared: ``fsync`` is off here.

    nice -n 19 .venv/bin/python bench/round_trips.py --rounds 3000 --reps 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]

import common  # noqa: E402 - bench/ is a folder of scripts, not a package

_READ = "SELECT v FROM a WHERE id = %s FOR UPDATE"
_WRITES = ("UPDATE a SET v = %s WHERE id = %s", "UPDATE b SET v = %s WHERE id = %s")


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(conn: object, pipelined: bool, rounds: int, payload: str) -> tuple[float, float]:
    """(client µs, backend µs) a round: the read, then the two writes and the COMMIT."""
    import psycopg

    assert isinstance(conn, psycopg.Connection)
    cur = conn.cursor()
    pid = conn.info.backend_pid
    client0, backend0 = time.process_time(), backend_cpu(pid)
    for i in range(rounds):
        key = i % 50
        cur.execute(_READ, (key,), prepare=True)
        cur.fetchall()
        if pipelined:
            with conn.pipeline():
                for sql in _WRITES:
                    cur.execute(sql, (payload, key), prepare=True)
                conn.commit()
        else:
            for sql in _WRITES:
                cur.execute(sql, (payload, key), prepare=True)
            conn.commit()
    return (time.process_time() - client0) / rounds * 1e6, (backend_cpu(pid) - backend0) / rounds * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3000, help="rounds per variant and rep")
    parser.add_argument("--reps", type=int, default=4)
    args = parser.parse_args(argv)
    import psycopg

    cluster = common.start_postgres(fsync="off", synchronous_commit="off")
    try:
        url = cluster.create_database("round_trips")
        tcp = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(tcp, autocommit=True) as conn:
            for table in ("a", "b"):
                conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, v text)")
                conn.execute(f"INSERT INTO {table} SELECT g, '' FROM generate_series(0, 49) AS g")  # noqa: S608
        os.environ.pop("BENCH_PG_TCP", None)
        links = {"tcp": tcp, "socket": common.server_url(url).replace("postgresql+psycopg://", "postgresql://")}
        conns = {name: psycopg.connect(dsn) for name, dsn in links.items()}
        payload = "x" * 2000
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for rep in range(args.reps):
            for link, conn in conns.items():
                for how in ("one by one", "pipeline"):
                    client, backend = measure(conn, how == "pipeline", args.rounds, payload)
                    results.setdefault((link, how), []).append((client, backend))
                    print(
                        f"rep {rep + 1} {link:6s} {how:10s} client {client:6.1f} µs, backend {backend:6.1f} µs a round "
                        f"(load {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
        print("median of the reps, µs a round (read, two writes, COMMIT: five round trips one by one, three pipelined)")
        for (link, how), values in results.items():
            client = statistics.median(v[0] for v in values)
            backend = statistics.median(v[1] for v in values)
            print(f"  {link:6s} {how:10s} client {client:6.1f}  backend {backend:6.1f}  both {client + backend:6.1f}")
        for conn in conns.values():
            conn.close()
    finally:
        common.stop_postgres(cluster)
    return 0


if __name__ == "__main__":
    sys.exit(main())
