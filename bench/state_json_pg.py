#!/usr/bin/env python3
# ruff: noqa: E501, S608, SIM115 - a bench script: its SQL is its own constants
"""The person state row's JSON columns as ``json`` or ``jsonb``: PostgreSQL's CPU per row (issue 8).

A throwaway cluster, two tables shaped like ``anti_idle_person_states`` (the storage of
0009), one with ``jsonb`` and one with ``json`` columns; a round of ``N`` state rows as the
group path writes them (``pg_arrays``: one parameter per column, the JSON columns one
JSON array: ``->`` by position for ``jsonb``, ``json_array_elements`` for ``json``) and
reads them back (``FOR UPDATE``), each in its own transaction; the backend's CPU time
(``/proc``) per row, the two kinds interleaved four times::

    .venv/bin/python bench/state_json_pg.py      # about a minute

The rows are the group bench's (a day's tally with one session and an R12 finding, ~1.4 kB).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

import common  # noqa: E402
import psycopg  # noqa: E402

from lms_core.learning import pg_arrays  # noqa: E402

tally = {
    "dirty": True,
    "tally": {
        "cuts": {},
        "beats": 42,
        "flags": [],
        "horizon": {"lapsed": [], "proven": []},
        "muted_ms": 0,
        "sessions": ["fd146a79a9586c933b57f76ed9caeb13"],
        "day_rules": {
            "R12": {
                "end": "2026-12-06T12:47:01+00:00",
                "score": 0,
                "start": "2026-12-06T12:46:55+00:00",
                "params": {"accounts": 15},
                "variant": "sequential",
                "beat_ids": [],
                "amount_ms": 0,
                "lesson_id": None,
            }
        },
        "claimed_ms": 420000,
        "credited_ms": 416000,
        "hidden_sessions": [],
    },
    "derived": {
        "rules": ["R12"],
        "score": 0,
        "held_ms": 0,
        "verdict": "credited",
        "void_ms": 0,
        "credited_ms": 416000,
        "deducted_ms": 4000,
    },
    "lessons": {"1": [420000, 416000, 4000]},
    "published": {
        "day": "2026-12-06",
        "user_id": 47,
        "verdict": "credited",
        "held_seconds": 0,
        "review_score": 0,
        "policy_version": 0,
        "credited_seconds": 306,
        "deducted_seconds": 4,
    },
    "verdict_id": 16,
    "policy_version": 0,
}
sess = [["fd146a79a9586c933b57f76ed9caeb13", None, "heartbeat", 42, 10000, 420000, [[0, 10000]]]]
les = [[1, 416000]]
N = 120


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def sql(kind):
    t = f"st_{kind}"
    if kind == "jsonb":
        rows = (
            "SELECT u.user_id, u.d, nullif(%(s)s::jsonb -> (u.ord::integer - 1), 'null') AS s, "
            "nullif(%(l)s::jsonb -> (u.ord::integer - 1), 'null') AS l, nullif(%(t)s::jsonb -> (u.ord::integer - 1), 'null') AS t "
            "FROM unnest(%(u)s::bigint[], %(dd)s::bigint[]) WITH ORDINALITY AS u(user_id, d, ord)"
        )
    else:
        rows = (
            "SELECT u.user_id, u.d, CASE WHEN json_typeof(u.s) <> 'null' THEN u.s END AS s, "
            "CASE WHEN json_typeof(u.l) <> 'null' THEN u.l END AS l, CASE WHEN json_typeof(u.t) <> 'null' THEN u.t END AS t "
            "FROM ROWS FROM (unnest(%(u)s::bigint[]), unnest(%(dd)s::bigint[]), json_array_elements(%(s)s::json), "
            "json_array_elements(%(l)s::json), json_array_elements(%(t)s::json)) AS u(user_id, d, s, l, t)"
        )
    write = (
        f"INSERT INTO {t} (user_id, d, s, l, t) SELECT user_id, d, s, l, t FROM ({rows}) AS v WHERE true "
        "ON CONFLICT (user_id) DO UPDATE SET d = excluded.d, s = excluded.s, l = excluded.l, t = excluded.t"
    )
    read = f"SELECT st.d, st.s, st.l, st.t FROM unnest(%(u)s::bigint[]) AS k(user_id) JOIN {t} AS st ON st.user_id = k.user_id ORDER BY st.user_id FOR UPDATE OF st"
    return write, read


cluster = common.start_postgres()
try:
    url = cluster.create_database("j")
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        for kind in ("jsonb", "json"):
            conn.execute(
                f"CREATE TABLE st_{kind} (user_id bigint PRIMARY KEY, d bigint, s {kind}, l {kind}, t {kind}) WITH (fillfactor = 50, toast_tuple_target = 8160)"
            )
        conn.commit()
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        params = {
            "u": pg_arrays._plain_literal(list(range(N))),
            "dd": pg_arrays._plain_literal([5] * N),
            "s": pg_arrays.json_column([sess] * N),
            "l": pg_arrays.json_column([les] * N),
            "t": pg_arrays.json_column([tally] * (N - 1) + [None]),
        }
        res = {}
        for _rep in range(4):
            for kind in ("jsonb", "json"):
                w, r = sql(kind)
                cw = cr = 0.0
                for _i in range(100):
                    c0 = cpu(pid)
                    conn.execute(w, params, prepare=True)
                    conn.commit()
                    c1 = cpu(pid)
                    rows = conn.execute(r, params, prepare=True).fetchall()
                    conn.commit()
                    c2 = cpu(pid)
                    cw += c1 - c0
                    cr += c2 - c1
                res.setdefault(kind, []).append((cw * 1e6 / 100 / N, cr * 1e6 / 100 / N))
                assert rows[0][1:] == (sess, les, tally) and rows[-1][3] is None, rows[-1]
        for kind, v in res.items():
            print("JSONEXP", kind, "write/read us per row:", [(round(a, 1), round(b, 1)) for a, b in v])
finally:
    common.stop_postgres(cluster)
