#!/usr/bin/env python3
"""PostgreSQL's side of a beat, counted in instructions (issue 8, ingestion).

On a shared machine PostgreSQL's CPU time per beat moves by ±15 % with the load, more than
most storage choices change it. This bench counts instructions instead, which do not move
with the load: it runs the group path in process (``beat_split.group_split``, groups of 15
learners at the 10 s cadence, plugin on) on a throwaway cluster, keeps the statements of the
rounds' two writes as sent (the core's, ``beat_rows._PG_WRITE_MANY``, and the plugin's,
``state_pg``'s beat INSERT and state upsert; one parameter per column, ``pg_arrays``), stops
the cluster, and replays them in PostgreSQL's single-user mode under ``valgrind
--tool=callgrind``, each round in its own transaction with its own COMMIT as the writer
sends them (the raw beats' and intervals' ``seq`` moved on each time, so every INSERT is
new). Instructions per beat are the difference between a long and a short replay, so
start-up and shutdown cancel out. Each variant is a
storage setting applied before its replay; the variants are interleaved::

    .venv/bin/python bench/beat_pg.py                    # ~6 min: the state row's storage now, and the default
    .venv/bin/python bench/beat_pg.py --pad-sessions 40  # a busy day's state row (~2.9 kB: 40 more sessions)
    .venv/bin/python bench/beat_pg.py --top              # and where the instructions go (inclusive)
    .venv/bin/python bench/beat_pg.py --keys --reps 2    # the ledgers' foreign keys: one per row, or three
    .venv/bin/python bench/beat_pg.py --upserts --reps 2 # the upserts as sent, or as UPDATE then INSERT
    .venv/bin/python bench/beat_pg.py --statement-keys   # the session keys, or one check per statement
    .venv/bin/python bench/beat_pg.py --statement-keys --only keys: --only 0032  # two of them
    .venv/bin/python bench/beat_pg.py --reads --reps 2   # the reads too: the state rows' lock and write

Single-user mode reads its statements from stdin a character at a time, so the replay's own
reading and parsing of the statement text add instructions that a client's Bind does not
pay; the same in every variant.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

import beat_split  # noqa: E402 - bench/ is a folder of scripts, not a package
import common  # noqa: E402
import seed_large  # noqa: E402

from lms_core import db as db_ddl  # noqa: E402
from lms_core.learning import pg_arrays  # noqa: E402
from tests import pgcluster  # noqa: E402

#: The state row's storage: as migration 0009anti_idle_state_storage sets it, and PostgreSQL's default.
VARIANTS = {
    "0009 (fillfactor 50, toast_tuple_target 8160)": (
        "ALTER TABLE anti_idle_person_states SET (fillfactor = 50, toast_tuple_target = 8160)"
    ),
    "PostgreSQL's default storage": "ALTER TABLE anti_idle_person_states RESET (fillfactor, toast_tuple_target)",
}


def _one_key(table: str) -> str:
    """``table``'s session, user and lesson keys as one composite key (0031ledgerfk, 0011anti_idle)."""
    return (
        f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS fk_{table}_session_id_learning_sessions, "
        f"DROP CONSTRAINT IF EXISTS fk_{table}_user_id_users, DROP CONSTRAINT IF EXISTS fk_{table}_lesson_id_lessons, "
        f"ADD CONSTRAINT fk_{table}_session_id_learning_sessions FOREIGN KEY (session_id, user_id, lesson_id) "
        "REFERENCES learning_sessions (id, user_id, lesson_id) ON DELETE CASCADE"
    )


def _three_keys(table: str) -> str:
    """``table``'s session, user and lesson keys as they were before 0031ledgerfk."""
    return (
        f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS fk_{table}_session_id_learning_sessions, "
        f"ADD CONSTRAINT fk_{table}_session_id_learning_sessions FOREIGN KEY (session_id) "
        "REFERENCES learning_sessions (id) ON DELETE CASCADE, "
        f"ADD CONSTRAINT fk_{table}_user_id_users FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE, "
        f"ADD CONSTRAINT fk_{table}_lesson_id_lessons FOREIGN KEY (lesson_id) REFERENCES lessons (id) ON DELETE CASCADE"
    )


#: ``--keys``: the ledger's and the raw beats' foreign keys, as the migrations set them and as before
#: (each variant's statements one per line: the single-user backend runs a line at a time).
KEY_VARIANTS = {
    "0031 + 0011: one key per row, no lesson index": "\n".join(
        [
            _one_key("learning_intervals"),
            _one_key("anti_idle_beats"),
            "DROP INDEX IF EXISTS ix_learning_intervals_lesson_id",
        ]
    ),
    "before: three keys per row, lesson index": "\n".join(
        [
            _three_keys("learning_intervals"),
            _three_keys("anti_idle_beats"),
            "CREATE INDEX IF NOT EXISTS ix_learning_intervals_lesson_id ON learning_intervals (lesson_id)",
        ]
    ),
}

#: ``--statement-keys``: the ledgers' session keys as foreign keys (one check per row, 0031 + 0011,
#: main before 0032sessionkey) or as the triggers of ``lms_core.db.session_key_ddl`` (0032sessionkey
#: + 0014anti_idle_stmt_key: one check per statement, the sessions held against a delete), and
#: for reference the bare statement check without the hold or the delete side (pgw's sketch).
#: Only what a beat's INSERT pays is compared (the delete side's triggers are on
#: ``learning_sessions`` and do not fire on a beat's update of its session).
_STATEMENT_CHECK = (
    "CREATE OR REPLACE FUNCTION ledger_sessions_exist() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF EXISTS (SELECT FROM new_rows AS n WHERE NOT EXISTS (SELECT FROM learning_sessions AS s "
    "WHERE s.id = n.session_id AND s.user_id = n.user_id AND s.lesson_id = n.lesson_id)) THEN "
    "RAISE EXCEPTION '% rows name no session of theirs', TG_TABLE_NAME; END IF; RETURN NULL; END $$"
)
_LEDGERS = ("learning_intervals", "anti_idle_beats")


def _one_line(statement: str) -> str:
    """A statement on one line (the single-user backend runs a line at a time)."""
    return " ".join(statement.split())


def _no_statement_checks() -> list[str]:
    """Drop every statement-check variant's triggers and functions."""
    return [
        *(f"DROP TRIGGER IF EXISTS {t}_session_exists ON {t}" for t in _LEDGERS),
        *(statement for t in _LEDGERS for statement in db_ddl.drop_session_key_ddl(t)),
    ]


def _no_keys() -> list[str]:
    return [f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS fk_{t}_session_id_learning_sessions" for t in _LEDGERS]


STATEMENT_KEY_VARIANTS = {
    "keys: one per row (0031 + 0011, main)": "\n".join([*_no_statement_checks(), *map(_one_key, _LEDGERS)]),
    "triggers: session_key_ddl (0032 + 0014)": "\n".join(
        [
            *_no_statement_checks(),
            *_no_keys(),
            *(_one_line(statement) for t in _LEDGERS for statement in db_ddl.session_key_ddl(t)),
        ]
    ),
    "bare statement check, no hold (reference)": "\n".join(
        [
            *_no_statement_checks(),
            *_no_keys(),
            _STATEMENT_CHECK,
            *(
                f"CREATE TRIGGER {t}_session_exists AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_sessions_exist()"
                for t in _LEDGERS
            ),
        ]
    ),
}


def _daily_update_first(core_sql: str) -> str:
    """The core write with its day totals as an UPDATE of the rows that exist and an INSERT (still
    ``ON CONFLICT``) of the others, instead of ``INSERT … ON CONFLICT DO UPDATE`` alone."""
    head = (
        "d AS (INSERT INTO learning_daily_totals (user_id, day, credited_ms) "
        "SELECT v.user_id, v.day, v.credited_ms FROM "
    )
    start = core_sql.index(head)
    source = core_sql[start + len(head) : core_sql.index(" WHERE true ON CONFLICT (user_id, day)", start)]
    end = core_sql.index("INSERT INTO learning_intervals")
    after = (
        f"dv AS (SELECT * FROM {source}), "  # noqa: S608 - the captured statement's own text
        "du AS (UPDATE learning_daily_totals AS t SET credited_ms = t.credited_ms + v.credited_ms FROM dv AS v "
        "WHERE t.user_id = v.user_id AND t.day = v.day RETURNING t.user_id), "
        "d AS (INSERT INTO learning_daily_totals (user_id, day, credited_ms) SELECT v.user_id, v.day, v.credited_ms "
        "FROM dv AS v WHERE NOT EXISTS (SELECT FROM du WHERE du.user_id = v.user_id) ON CONFLICT (user_id, day) "
        "DO UPDATE SET credited_ms = learning_daily_totals.credited_ms + excluded.credited_ms) "
    )
    return core_sql[:start] + after + core_sql[end:]


def _state_update_first(plugin_sql: str) -> str:
    """The plugin write with its state rows as an UPDATE of the rows that exist and an INSERT (still
    ``ON CONFLICT``) of the others, instead of ``INSERT … ON CONFLICT DO UPDATE`` alone."""
    from plugins.anti_idle.state_pg import _STATE_COLUMNS

    head = " INSERT INTO anti_idle_person_states ("
    start = plugin_sql.index(head)
    select = plugin_sql.index(" SELECT ", start)
    source_at = plugin_sql.index(" FROM ", select) + len(" FROM ")
    where = plugin_sql.index(" WHERE true ON CONFLICT (user_id)", source_at)
    source = plugin_sql[source_at:where]
    sets = ", ".join(f"{name} = v.{name}" for name in _STATE_COLUMNS if name != "user_id")
    ctes = (
        f", sv AS (SELECT * FROM {source}), su AS (UPDATE anti_idle_person_states AS t SET {sets} "  # noqa: S608
        "FROM sv AS v WHERE t.user_id = v.user_id RETURNING t.user_id)"
    )
    return (
        plugin_sql[:start]
        + ctes
        + plugin_sql[start:source_at]
        + "sv AS v WHERE NOT EXISTS (SELECT FROM su WHERE su.user_id = v.user_id)"
        + plugin_sql[where + len(" WHERE true") :]
    )


def _same(sql: str) -> str:
    return sql


#: Statement variants (``--upserts``): (the core write's text, the plugin write's), as sent or rewritten.
SQL_VARIANTS = {
    "now: INSERT ... ON CONFLICT DO UPDATE": (_same, _same),
    "day totals: UPDATE, then INSERT the missing": (_daily_update_first, _same),
    "states: UPDATE, then INSERT the missing": (_same, _state_update_first),
}
#: The session id columns a beat's write compares (``--collate``): the keys' indexes and their checks.
_SESSION_IDS = (
    ("learning_sessions", "id"),
    ("learning_intervals", "session_id"),
    ("anti_idle_beats", "session_id"),
)
#: The session ids' collation (``--collate``): the database's (C.UTF-8, as docs/deployment.md creates
#: it: PostgreSQL 15 compares through ``strcoll``), or "C" (bytes, ``memcmp``).
COLLATE_VARIANTS = {
    f"session ids in the database's collation ({name})": "\n".join(
        f'ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar(32) COLLATE "{collation}"'
        for table, column in _SESSION_IDS
    )
    for name, collation in (("now", "default"), ("C", "C"))
}
#: A round of this many beats is replayed (the bench's groups).
PEOPLE = 15
#: Pairs of writes (rounds) per replayed transaction set.
PAIRS = 4
#: A line of ``callgrind_annotate --inclusive=yes``: the count, then ``file:function [object]``.
_ANNOTATED = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+\S*?:(\w+) \[")
#: Functions whose inclusive share is printed with --top (the costs this bench was made to find).
_WATCH = (
    "varstr_cmp",
    "jsonb_in",
    "json_in",
    "json_array_elements",
    "array_in",
    "timestamptz_in",
    "ExecMakeTableFunctionResult",
    "ExecMakeFunctionResultSet",
    "RI_FKey_check_ins",
    "plpgsql_exec_trigger",
    "pglz_compress",
    "heap_update",
    "heap_lock_tuple",
    "ExecLockRows",
    "heap_insert",
    "btinsert",
    "CommitTransaction",
)


def capture(url: str, pg_pid: int) -> list[tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]]]]:
    """The group bench's round writes as sent: (plugin write, core write) pairs of full rounds."""
    import psycopg

    from plugins.anti_idle import state_pg

    sent: list[tuple[str, dict[str, Any]]] = []
    original = psycopg.Cursor.execute
    plugin_execute = state_pg.execute

    def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        # The core's write (named placeholders); the plugin's is numbered, kept by ``numbered_execute``.
        # The round's two reads too (``--reads``): the core's rows and the plugin's state rows.
        if isinstance(query, str) and isinstance(params, dict) and query.startswith(("WITH s AS", *_READS)):
            sent.append((query, dict(params)))
        return original(self, query, params, **kw)

    def numbered_execute(sql: str, params: dict[str, Any], **kw: Any) -> Any:
        # The plugin's round write: ``$1``, ``$2``, ... in the order of ``names`` (``state_pg._numbered``).
        names = kw.get("names")
        if names is not None and sql.startswith("WITH b AS"):
            sent.append((sql, {name: params[name] for name in names}))
        return plugin_execute(sql, params, **kw)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    state_pg.execute = numbered_execute  # type: ignore[assignment]
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its CPU split is beat_split's to print
            beat_split.group_split(url, pg_pid, PEOPLE, PAIRS, 3, 2, False, 1, 10.0)
    finally:
        psycopg.Cursor.execute = original  # type: ignore[method-assign]
        state_pg.execute = plugin_execute  # type: ignore[assignment]
    # A round sends the core's read, the plugin's read, the core's write, then the plugin's write.
    pairs = []
    reads: dict[str, tuple[str, dict[str, Any]]] = {}
    core_write: tuple[str, dict[str, Any]] | None = None
    for query, params in sent:
        if query.startswith(_READS):
            kind = _READS[0] if query.startswith(_READS[0]) else _READS[1]
            if kind == _READS[0]:  # a new round
                reads, core_write = {}, None
            reads[kind] = (query, params)
        elif query.startswith("WITH s AS"):
            core_write = (query, params)
        elif (
            query.startswith("WITH b AS")
            and len(_elements(params["b_seq"])) == PEOPLE
            and core_write is not None
            and len(reads) == len(_READS)
        ):
            pairs.append(((query, params), core_write, reads[_READS[0]], reads[_READS[1]]))
    if len(pairs) < PAIRS:
        raise SystemExit(f"only {len(pairs)} full rounds captured")
    return pairs[-PAIRS:]


#: How the round's two reads start: the core's (``beat_rows._PG_READ_MANY``) and the plugin's
#: (``state_pg._LOAD_MANY``).
_READS = ("SELECT s.id, s.user_id", "SELECT st.day")


def _state_write(existing: bool) -> Any:
    """The plugin's round write with its state rows as a plain ``UPDATE`` (``existing``: the rows
    the round's read found, ``state_pg._save_many_sql``) or as ``INSERT … ON CONFLICT DO UPDATE``."""

    def rewrite(plugin_sql: str) -> str:
        from plugins.anti_idle import state_pg

        head = "INSERT INTO anti_idle_beats ("
        start = plugin_sql.index(head) + len(head)
        columns = tuple(plugin_sql[start : plugin_sql.index(")", start)].split(", "))
        # The captured round sent its raw beats' repeated columns once or not (``pg_arrays.Rows.same``).
        shared = any(state_pg._save_many(columns, e, True)[0] == plugin_sql for e in (True, False))
        (sql, names), (_other, other_names) = (
            state_pg._save_many(columns, existing, shared),
            state_pg._save_many(columns, not existing, shared),
        )
        assert names == other_names  # the captured parameters fit either text
        return sql

    return rewrite


def _daily_update_only(core_sql: str) -> str:
    """The core write with its day totals as a plain ``UPDATE`` (every row exists: the replay's
    do), the day total's ``ON CONFLICT`` lock gone: what a read that knew the rows exist would
    allow, without that read's cost (an upper bound of the saving)."""
    head = (
        "d AS (INSERT INTO learning_daily_totals (user_id, day, credited_ms) "
        "SELECT v.user_id, v.day, v.credited_ms FROM "
    )
    start = core_sql.index(head)
    tail = " WHERE true ON CONFLICT (user_id, day)"
    source_end = core_sql.index(tail, start)
    source = core_sql[start + len(head) : source_end]
    end = core_sql.index(") INSERT INTO learning_intervals", source_end)
    update = (
        f"d AS (UPDATE learning_daily_totals AS t SET credited_ms = t.credited_ms + v.credited_ms FROM {source} "  # noqa: S608 - the captured statement's own text
        "WHERE t.user_id = v.user_id AND t.day = v.day"
    )
    return core_sql[:start] + update + core_sql[end:]


#: ``--reads``: the plugin's round read with its state rows unlocked (behind the core read's clock
#: locks) or ``FOR UPDATE OF st`` in person order (main before), and its round write's state rows
#: as an ``UPDATE`` of the rows the read found or an upsert: (the read's locking clause, the write).
READ_LOCK = " ORDER BY st.user_id FOR UPDATE OF st"
READ_VARIANTS: dict[str, tuple[Any, ...]] = {
    "read FOR UPDATE OF st, write upsert (before)": (READ_LOCK, _state_write(False)),
    "read unlocked, write upsert": ("", _state_write(False)),
    "read unlocked, write UPDATE (now)": ("", _state_write(True)),
    "now, and the day totals a plain UPDATE (bound)": ("", _state_write(True), _daily_update_only),
}


def _sql_type(value: Any) -> str:
    """A captured parameter's type for ``PREPARE`` (psycopg sends these types; an untyped
    ``$n`` beside a ``timestamptz`` would be taken for one)."""
    import datetime as dt

    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, dt.datetime):
        return "timestamptz"
    if isinstance(value, dt.timedelta):
        return "interval"
    return "text"


def _sql_text(value: Any) -> str:
    import datetime as dt

    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return f"{value.total_seconds()} seconds"
    return str(value)


def _elements(literal: str) -> list[Any]:
    """An array literal's elements, as ``pg_arrays.literal`` writes them when no value needs
    an escape of its own (JSON with braces for brackets): the bench's are such."""
    return list(json.loads("[" + literal[1:-1] + "]"))


def _seq(literal: str, k: int) -> str:
    """The ``seq`` column moved on by ``k * 10`` (so every replayed INSERT is new)."""
    return pg_arrays.literal([seq + k * 10 for seq in _elements(literal)])


def _pad(column: str, sessions: int) -> str:
    """A busy day's state rows: ``sessions`` more session ids in each day tally (the
    ``s_day_tally`` column: JSON texts one a line, ``pg_arrays.json_lines``)."""
    tallies = [json.loads(line) for line in column.split("\n")] if column else []
    for n, tally in enumerate(tallies):
        if tally:
            tally["tally"]["sessions"] += [f"{(n + 1) * 1000 + i:032x}" for i in range(sessions)]
    return pg_arrays.json_lines(tallies)


def script(
    pairs: list[Any], rounds: int, seq_base: int, pad: int, rewrite: Any = (_same, _same), read_lock: str | None = None
) -> str:
    """Single-user input (``-j``: a statement ends with ``;`` and an empty line): the two
    writes prepared, then ``rounds`` × the captured rounds, each in its own transaction.
    ``read_lock`` (``--reads``): the round's two reads first, in the same transaction, the
    plugin's with that locking clause (``READ_VARIANTS``)."""

    def numbered(query: str, names: list[str]) -> str:
        for n, name in enumerate(names, 1):
            query = query.replace(f"%({name})s", f"${n}")
        return query

    def literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    (plugin_sql, plugin_params), (core_sql, core_params), *_reads = pairs[0]
    plugin_names, core_names = list(plugin_params), list(core_params)
    out = [
        f"PREPARE plugin_write AS {numbered(rewrite[1](plugin_sql), plugin_names)};",
        f"PREPARE core_write AS {numbered(rewrite[0](core_sql), core_names)};",
    ]
    read_names: list[list[str]] = []
    if read_lock is not None:
        for name, (sql, params) in zip(("core_read", "plugin_read"), pairs[0][2:], strict=True):
            names = list(params)
            read_names.append(names)
            types = ", ".join(_sql_type(params[n]) for n in names)
            sql = sql + read_lock if name == "plugin_read" else sql
            out.append(f"PREPARE {name} ({types}) AS {numbered(sql, names)};")
    k = seq_base
    for _ in range(rounds):
        for (_q, plugin), (_q2, core), *reads in pairs:
            k += 1
            plugin, core = dict(plugin), dict(core)
            # The intervals' ``seq`` is the sessions' ``last_seq`` parameter when the round sent it once
            # (``pg_arrays.Rows.same``).
            seq = "i_seq" if "i_seq" in core else "s_last_seq"
            plugin["b_seq"], core[seq] = _seq(plugin["b_seq"], k), _seq(core[seq], k)
            if pad:
                plugin["s_day_tally"] = _pad(plugin["s_day_tally"], pad)
            out.append("BEGIN;")
            if read_lock is not None:
                for name, (_q3, params), names in zip(("core_read", "plugin_read"), reads, read_names, strict=True):
                    out.append(f"EXECUTE {name}({', '.join(literal(_sql_text(params[n])) for n in names)});")
            out += [
                f"EXECUTE core_write({', '.join(literal(core[n]) for n in core_names)});",
                f"EXECUTE plugin_write({', '.join(literal(plugin[n]) for n in plugin_names)});",
                "COMMIT;",
            ]
    return "\n\n".join(out) + "\n\n"


class SingleUser:
    """PostgreSQL's single-user backend on a stopped cluster's data directory."""

    def __init__(self, cluster: pgcluster.Cluster, dbname: str, work: Path) -> None:
        self.cluster, self.dbname, self.work = cluster, dbname, work
        self.postgres = pgcluster._bin("postgres")

    def _cmd(self, *args: str) -> list[str]:
        cmd = list(args)
        return ["runuser", "-u", "postgres", "--", *cmd] if self.cluster.as_postgres else cmd

    def sql(self, statement: str) -> None:
        """Run ``statement`` (one a line); an ERROR (which single-user mode survives) fails the bench."""
        done = subprocess.run(
            self._cmd(self.postgres, "--single", "-D", str(self.cluster.datadir), self.dbname),
            input=statement + "\n",
            text=True,
            check=True,
            capture_output=True,
        )
        if "ERROR:" in done.stdout + done.stderr:
            raise RuntimeError(f"single-user mode refused a variant's statement:\n{done.stdout}{done.stderr}")

    def instructions(self, text: str, name: str) -> tuple[int, Path]:
        """Instructions of one single-user run reading ``text`` (callgrind's total)."""
        stdin, out = self.work / f"{name}.sql", self.work / f"{name}.callgrind"
        stdin.write_text(text)
        with open(stdin) as fh:
            subprocess.run(
                self._cmd(
                    "valgrind",
                    "--tool=callgrind",
                    f"--callgrind-out-file={out}",
                    self.postgres,
                    "--single",
                    "-j",
                    "-D",
                    str(self.cluster.datadir),
                    self.dbname,
                ),
                stdin=fh,
                check=True,
                capture_output=True,
            )
        summary = [line for line in out.read_text().splitlines() if line.startswith("summary:")]
        return int(summary[0].split()[1]), out


def top(out: Path, beats: int, total: int) -> None:
    """Inclusive instructions per beat of the watched functions in one (long) replay."""
    annotated = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", str(out)], capture_output=True, text=True, check=False
    ).stdout
    for line in annotated.splitlines():
        found = _ANNOTATED.match(line)
        if found and found.group(2) in _WATCH:
            count = int(found.group(1).replace(",", ""))
            share = 100 * count / total
            print(f"      {found.group(2):28s} {count / beats / 1000:8.0f} k per beat ({share:4.1f} % of the run)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", type=int, default=5, help="rounds × 4 of the short replay")
    parser.add_argument("--long", type=int, default=25, help="rounds × 4 of the long replay")
    parser.add_argument("--reps", type=int, default=1, help="times each variant is measured, interleaved")
    parser.add_argument("--pad-sessions", type=int, default=0, help="session ids added to each state row's day tally")
    parser.add_argument("--top", action="store_true", help="also print where the instructions go")
    parser.add_argument("--once", action="store_true", help="only the first variant (a tree's figure, for an A/B)")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep each long replay's callgrind profile in DIR (callgrind_annotate)"
    )
    parser.add_argument(
        "--only", action="append", metavar="TEXT", help="only the variants whose name has TEXT (repeatable)"
    )
    parser.add_argument("--keys", action="store_true", help="the ledgers' foreign keys as variants instead")
    parser.add_argument(
        "--statement-keys", action="store_true", help="the ledgers' session keys as statement triggers instead"
    )
    parser.add_argument("--collate", action="store_true", help="the session ids' collation as variants instead")
    parser.add_argument(
        "--upserts", action="store_true", help="the day totals' and state rows' statement text as variants instead"
    )
    parser.add_argument(
        "--reads",
        action="store_true",
        help="the round's two reads replayed before its writes; the state rows' lock and write as variants instead",
    )
    args = parser.parse_args(argv)
    cluster = common.start_postgres(shared_preload_libraries="pg_stat_statements")  # group_split reads it
    work = Path(tempfile.mkdtemp(prefix="beat_pg-"))
    os.chmod(work, 0o777)  # noqa: S103 - the single-user backend runs as postgres and writes its profile here
    try:
        url = cluster.create_database("lms_bench")
        cluster.psql("CREATE EXTENSION pg_stat_statements", "lms_bench")
        common.upgrade(common.app_env(url, "anti_idle"))
        seed_large.seed(url, users=max(200, 3 * PEOPLE * PAIRS + 2), units=200)
        seed_large.seed_study(url, courses=1, assigned=1)
        seed_large.settle(url)
        pairs = capture(url, common.postmaster_pid(cluster))
        cluster._run(pgcluster._bin("pg_ctl"), "-D", str(cluster.datadir), "-m", "fast", "-w", "stop")
        backend = SingleUser(cluster, "lms_bench", work)
        beats = (args.long - args.short) * PAIRS * PEOPLE
        variants: dict[str, Any] = KEY_VARIANTS if args.keys else VARIANTS
        if args.collate:
            variants = COLLATE_VARIANTS
        if args.statement_keys:
            variants = STATEMENT_KEY_VARIANTS
        if args.upserts:
            variants = dict.fromkeys(SQL_VARIANTS, "SELECT 1")
        if args.reads:
            variants = dict.fromkeys(READ_VARIANTS, "SELECT 1")
        if args.once:
            variants = dict(list(variants.items())[:1])
        if args.only:
            variants = {name: ddl for name, ddl in variants.items() if any(part in name for part in args.only)}
        results: dict[str, list[int]] = {name: [] for name in variants}
        pad = args.pad_sessions
        base = 1_000_000
        for rep in range(args.reps):
            for i, (name, ddl) in enumerate(variants.items()):
                backend.sql(ddl)
                base += 100_000
                rewrite = SQL_VARIANTS.get(name, (_same, _same))
                lock = None
                if args.reads:
                    lock, plugin_write, *core_write = READ_VARIANTS[name]
                    rewrite = (core_write[0] if core_write else _same, plugin_write)
                short, _ = backend.instructions(script(pairs, args.short, base, pad, rewrite, lock), f"s{rep}{i}")
                long_, out = backend.instructions(
                    script(pairs, args.long, base + 50_000, pad, rewrite, lock), f"l{rep}{i}"
                )
                results[name].append((long_ - short) // beats)
                common.step(f"{name}: {(long_ - short) / beats / 1e6:.3f} M instructions per beat")
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(out, args.keep / f"l{rep}{i}.callgrind")
                if args.top and rep == 0:
                    top(out, args.long * PAIRS * PEOPLE, long_)
        print(
            f"PostgreSQL's instructions per beat for a round's {'reads and ' if args.reads else ''}two writes "
            f"(callgrind, single-user replay of "
            f"{beats} beats in rounds of {PEOPLE}, a COMMIT per round; state rows padded by {args.pad_sessions} "
            f"sessions; load average {os.getloadavg()[0]:.1f}):"
        )
        for name, values in results.items():
            print(f"    {name:48s} {' / '.join(f'{v / 1e6:.3f}' for v in values)} M")
        return 0
    finally:
        common.stop_postgres(cluster)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
