"""The ledger's two statements per group on PostgreSQL: one to read and lock, one to write.

:func:`ledger.apply` decides every transfer in Python (balances, linked groups, pending,
reversals); what it needs from the database and what it writes back take one round trip
each here, for a group of any size:

* :func:`prepare`: ``credit_prepare`` (migration ``0010credit_group_prepare``): the
  idempotency ids' advisory locks, the stored transfers with those ids and those referred
  to, the missing accounts created, the cadre accounts locked in id order and read, the
  referred holds' resolutions and reversal sums, the ids refused before;
* :func:`write`: the journal rows, the new account sums and the refused ids, as one
  statement of three data-modifying CTEs fed by array parameters.

The statement texts never depend on the group's size, so each is prepared once per
connection. Before this (bench/credit_bench.py, docs/benchmarks.md) a group sent seven to
nine statements, a COPY among them (two round trips), plus one per post/void or reversal.
This module knows SQL only: the ledger hands it plain values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lms_core.pg_arrays import (
    date_array,
    int_array,
    str_array,
    timestamptz_array,
)
from plugins.credit_bank.models import JOURNAL_COLUMNS

#: The columns of a stored transfer as :func:`prepare` returns them (the ledger's
#: ``_EXISTING_KEYS``: the accounts' natural keys come with them).
EXISTING_KEYS = (
    "id",
    "amount",
    "flags",
    "pending_id",
    "timeout_at",
    "reverses_id",
    "code",
    "body_hash",
    "effective_date",
    "user_id",
    "ledger_id",
    "debit_account_id",
    "credit_account_id",
    "d_kind",
    "d_owner",
    "d_period",
    "c_kind",
    "c_owner",
    "c_period",
)

#: (The function's signature types the arguments: no cast needed.)
_PREPARE = (
    "SELECT * FROM credit_prepare(%(buckets)s, %(ids)s, %(refer)s, %(al)s, %(ak)s, %(ao)s, %(ap)s, %(af)s, %(now)s)"
)

#: Array builder and SQL array type of each journal column (the order of ``JOURNAL_COLUMNS``).
_JOURNAL_ARRAYS: dict[str, tuple[Any, str]] = {
    "id": (str_array, "text[]"),
    "ledger_id": (int_array, "smallint[]"),
    "debit_account_id": (int_array, "bigint[]"),
    "credit_account_id": (int_array, "bigint[]"),
    "amount": (int_array, "bigint[]"),
    "flags": (int_array, "integer[]"),
    "pending_id": (str_array, "text[]"),
    "timeout_at": (timestamptz_array, "timestamptz[]"),
    "group_id": (str_array, "text[]"),
    "reverses_id": (str_array, "text[]"),
    "code": (str_array, "text[]"),
    "effective_date": (date_array, "date[]"),
    "policy_version": (int_array, "integer[]"),
    "user_id": (int_array, "integer[]"),
    "actor_id": (int_array, "integer[]"),
    "evidence_ref": (str_array, "text[]"),
    "memo": (str_array, "text[]"),
    "body_hash": (str_array, "text[]"),
    "recorded_at": (timestamptz_array, "timestamptz[]"),
}
if tuple(_JOURNAL_ARRAYS) != JOURNAL_COLUMNS:  # a new journal column needs its array here
    raise RuntimeError("ledger_pg: _JOURNAL_ARRAYS does not match JOURNAL_COLUMNS")

_COLS = ", ".join(JOURNAL_COLUMNS)
_VALUES = ", ".join("v." + c for c in JOURNAL_COLUMNS)
# Typed by a cast of the parameter (an untyped array makes unnest ambiguous; see pg_arrays).
_ARRAYS = ", ".join(f"CAST(%(j_{c})s AS {t})" for c, (_, t) in _JOURNAL_ARRAYS.items())
# WITH ORDINALITY ... ORDER BY: the journal's seq follows the order the ledger decided in.
# (S608: the names put in are the module's own column names; every value is a parameter.)
_WRITE = (
    f"WITH j AS (INSERT INTO credit_transfers ({_COLS}) SELECT {_VALUES} "  # noqa: S608
    f"FROM unnest({_ARRAYS}) WITH ORDINALITY AS v({_COLS}, n) ORDER BY v.n), "
    "s AS (UPDATE credit_accounts AS a SET debits_posted = v.dp, credits_posted = v.cp, "
    "debits_pending = v.dpe, credits_pending = v.cpe "
    "FROM unnest(CAST(%(a_id)s AS bigint[]), CAST(%(a_dp)s AS bigint[]), CAST(%(a_cp)s AS bigint[]), "
    "CAST(%(a_dpe)s AS bigint[]), CAST(%(a_cpe)s AS bigint[])) AS v(id, dp, cp, dpe, cpe) WHERE a.id = v.id), "
    "f AS (INSERT INTO credit_failed_transfers (id, error, body_hash, recorded_at) "
    "SELECT * FROM unnest(CAST(%(f_id)s AS text[]), CAST(%(f_error)s AS text[]), CAST(%(f_hash)s AS text[]), "
    "CAST(%(f_at)s AS timestamptz[]))) "
    "SELECT 1"
)


@dataclass
class Prepared:
    """What :func:`prepare` read, as plain values."""

    #: Stored transfers with the group's ids or referred to, keyed ``EXISTING_KEYS``.
    existing: list[dict[str, Any]] = field(default_factory=list)
    #: Accounts involved: (ledger_id, kind, owner_id, period, id, flags, dp, cp, dpe, cpe);
    #: the cadre ones locked.
    accounts: list[tuple[Any, ...]] = field(default_factory=list)
    #: Referred hold id -> flags of the transfer that resolved it.
    resolutions: dict[str, int] = field(default_factory=dict)
    #: Referred transfer id -> sum of its reversals so far.
    reversed: dict[str, int] = field(default_factory=dict)
    #: Id refused before -> its body hash.
    failed: dict[str, str] = field(default_factory=dict)


def prepare(
    raw: Any,
    buckets: Sequence[int],
    ids: Sequence[str],
    refer: Sequence[str],
    wanted: Sequence[tuple[int, str, int, int, int]],
    now: dt.datetime,
) -> Prepared:
    """One call of ``credit_prepare`` on ``raw`` (the session's psycopg connection).

    ``buckets``: the ids' advisory-lock keys, sorted; ``wanted``: the accounts the group
    names, as (ledger_id, kind, owner_id, period, flags if created)."""
    params = {
        "buckets": int_array(buckets),
        "ids": str_array(ids),
        "refer": str_array(refer),
        "al": int_array(w[0] for w in wanted),
        "ak": str_array(w[1] for w in wanted),
        "ao": int_array(w[2] for w in wanted),
        "ap": int_array(w[3] for w in wanted),
        "af": int_array(w[4] for w in wanted),
        "now": now,
    }
    out = Prepared()
    with raw.cursor() as cur:
        cur.execute(_PREPARE, params, prepare=True)
        for r in cur.fetchall():
            tag = r[0]
            if tag == "e":
                out.existing.append(dict(zip(EXISTING_KEYS, r[1:20], strict=True)))
            elif tag == "a":
                out.accounts.append((r[11], r[14], r[15], r[16], r[12], r[3], r[20], r[21], r[22], r[23]))
            elif tag == "p":
                out.resolutions[r[1]] = r[3]
            elif tag == "s":
                out.reversed[r[1]] = int(r[2])
            else:
                out.failed[r[1]] = r[8]
    return out


def write(
    raw: Any,
    rows: Sequence[dict[str, Any]],
    sums: Sequence[tuple[int, int, int, int, int]],
    failed: Sequence[dict[str, Any]],
) -> None:
    """Journal rows, new sums (id, dp, cp, dpe, cpe) of locked accounts and refused ids, in
    one statement on ``raw`` (the session's psycopg connection, in its transaction)."""
    params: dict[str, Any] = {f"j_{c}": make(r[c] for r in rows) for c, (make, _) in _JOURNAL_ARRAYS.items()}
    for i, name in enumerate(("a_id", "a_dp", "a_cp", "a_dpe", "a_cpe")):
        params[name] = int_array(s[i] for s in sums)
    params["f_id"] = str_array(f["id"] for f in failed)
    params["f_error"] = str_array(f["error"] for f in failed)
    params["f_hash"] = str_array(f["body_hash"] for f in failed)
    params["f_at"] = timestamptz_array(f["recorded_at"] for f in failed)
    with raw.cursor() as cur:
        cur.execute(_WRITE, params, prepare=True)
