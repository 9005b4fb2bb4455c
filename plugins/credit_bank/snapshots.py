"""Daily balance snapshots (``credit_balance_days``): as-of-date figures without the journal.

A cadre's figures "as of D" are the sums of the journal lines visible at the end of D
(:class:`plugins.credit_bank.models.BalanceDay` states the rule). Folding them from the
journal reads every line of the cadre; with snapshots, a past date reads one row per account
(the latest on or before D) and only the lines that became visible after the last build.

* :func:`build` appends the rows of the whole days ended since the last build; the rows are
  computed in the database from the journal, by one INSERT ... SELECT. No scheduler is needed:
  the first domain event dispatched after a day has ended and settled (:func:`settled_day`)
  queues the job ``credit.snapshot`` (:func:`request_build`, at most once per day and
  process), which builds. ``flask lms credit snapshot`` does the same by hand. A missed or late
  build costs speed only, never a figure: dates after the last built day add the journal lines
  visible since then.
* :func:`check` recomputes every stored row from the journal and counts the differences
  (``flask lms credit replay`` runs it).
* :func:`sums_as_of` answers one cadre's accounts as of a date.

Only whole Beijing days that have ended are built: a line recorded today becomes visible
today at the earliest, so a built day never changes. A line is committed a little after its
``recorded_at`` is taken; so a day is built only once it ended :data:`SETTLE` ago and, on
PostgreSQL, once every writing transaction that began before then has ended (a transaction
left open across midnight holds the build of that day back, it does not make it wrong).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import func, select, text

from lms_core.db import utcnow
from lms_core.extensions import db
from plugins.credit_bank.models import T_PENDING, T_POST_PENDING, T_VOID_PENDING, BalanceBuild
from plugins.credit_bank.services import CLOSE_CODES, SHANGHAI, local_date

_COLUMNS = "account_id, day, debits_posted, credits_posted, debits_pending, credits_pending, closed_out"

#: How long after a Beijing midnight the day just ended may be built: longer than any gap
#: between taking a line's ``recorded_at`` and inserting it (a posting transaction is short).
SETTLE = dt.timedelta(minutes=5)

#: The job kind that builds (``lms_job_handlers``).
JOB = "credit.snapshot"


def _visible(alias: str) -> str:
    """SQL for the day a journal line becomes visible (Beijing calendar)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return f"GREATEST({alias}.effective_date, CAST(({alias}.recorded_at AT TIME ZONE :tz) AS date))"
    # SQLite stores naive UTC; Beijing has kept UTC+8 without daylight saving since 1991.
    return f"MAX({alias}.effective_date, date({alias}.recorded_at, '+8 hours'))"


def _greatest(a: str, b: str) -> str:
    return f"GREATEST({a}, {b})" if db.session.get_bind().dialect.name == "postgresql" else f"MAX({a}, {b})"


def _rows_sql(*, incremental: bool) -> str:
    """SELECT of the snapshot rows for the days in (:after, :through].

    Per account and day: the changes of the lines becoming visible that day (posted lines
    move ``amount``; a hold adds to the pending sums; its post or void releases the hold on
    the day both are visible), summed up day by day, on top of the account's latest row on
    or before :after when ``incremental``.
    """
    t, r, h = _visible("t"), _visible("r"), _visible("h")
    postgres = db.session.get_bind().dialect.name == "postgresql"
    # Incremental: only the lines visible after :after (the BRIN index finds them on PostgreSQL).
    new = (
        ("t.effective_date > :after OR t.recorded_at >= :cut_after" if postgres else f"{t} > :after")
        if incremental
        else "1 = 1"
    )
    # A hold is released on the day both it and its post or void are visible: from the new
    # resolving lines to their holds and, when incremental, from the new holds to their
    # resolutions (UNION: a pair with both new once; hid keeps two equal holds apart).
    back = (
        f"""UNION SELECT h.id, h.d, h.c, h.amount, {_greatest(r, "h.v")}
              FROM lines AS h JOIN credit_transfers AS r ON r.pending_id = h.id
             WHERE (r.flags & :resolves) <> 0 AND (h.flags & :pending) <> 0"""  # noqa: S608
        if incremental
        else ""
    )
    # Incremental: each account's latest row on or before :after (a primary-key look-up).
    base = (
        "base.account_id = daily.a AND base.day = (SELECT max(x.day) FROM credit_balance_days AS x "
        "WHERE x.account_id = daily.a AND x.day <= :after)"
        if incremental
        else "1 = 0"
    )
    # Built from constants only (no input reaches the text).
    return f"""
        WITH lines AS (
            SELECT t.id, t.pending_id, t.debit_account_id AS d, t.credit_account_id AS c, t.amount, t.flags, t.code,
                   {t} AS v
              FROM credit_transfers AS t WHERE {new}
        ), releases AS (
            SELECT h.id AS hid, h.debit_account_id AS d, h.credit_account_id AS c, h.amount, {_greatest("r.v", h)} AS v
              FROM lines AS r JOIN credit_transfers AS h ON h.id = r.pending_id
             WHERE (r.flags & :resolves) <> 0 AND (h.flags & :pending) <> 0
            {back}
        ), deltas AS (
            SELECT d AS a, v, amount AS dp, 0 AS cp, 0 AS dpe, 0 AS cpe,
                   CASE WHEN code IN (:close1, :close2) THEN amount ELSE 0 END AS co
              FROM lines WHERE (flags & :held) = 0
            UNION ALL SELECT c, v, 0, amount, 0, 0, 0 FROM lines WHERE (flags & :held) = 0
            UNION ALL SELECT d, v, 0, 0, amount, 0, 0 FROM lines WHERE (flags & :pending) <> 0
            UNION ALL SELECT c, v, 0, 0, 0, amount, 0 FROM lines WHERE (flags & :pending) <> 0
            UNION ALL SELECT d, v, 0, 0, -amount, 0, 0 FROM releases
            UNION ALL SELECT c, v, 0, 0, 0, -amount, 0 FROM releases
        ), daily AS (
            SELECT a, v, sum(dp) AS dp, sum(cp) AS cp, sum(dpe) AS dpe, sum(cpe) AS cpe, sum(co) AS co
              FROM deltas WHERE v > :after AND v <= :through GROUP BY a, v
        )
        SELECT daily.a AS account_id, daily.v AS day,
               coalesce(base.debits_posted, 0) + sum(daily.dp) OVER w AS debits_posted,
               coalesce(base.credits_posted, 0) + sum(daily.cp) OVER w AS credits_posted,
               coalesce(base.debits_pending, 0) + sum(daily.dpe) OVER w AS debits_pending,
               coalesce(base.credits_pending, 0) + sum(daily.cpe) OVER w AS credits_pending,
               coalesce(base.closed_out, 0) + sum(daily.co) OVER w AS closed_out
          FROM daily LEFT JOIN credit_balance_days AS base ON {base}
        WINDOW w AS (PARTITION BY daily.a ORDER BY daily.v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    """  # noqa: S608


def _params(after: dt.date, through: dt.date) -> dict[str, Any]:
    return {
        "after": after,
        # The end of :after, Beijing time (a line recorded from then on is visible after it).
        "cut_after": dt.datetime.combine(after + dt.timedelta(days=1), dt.time(), SHANGHAI),
        "through": through,
        "tz": SHANGHAI.key,
        "held": T_PENDING | T_VOID_PENDING,
        "pending": T_PENDING,
        "resolves": T_POST_PENDING | T_VOID_PENDING,
        "close1": CLOSE_CODES[0],
        "close2": CLOSE_CODES[1],
    }


def built_through() -> dt.date | None:
    """The last day with complete rows (None: never built)."""
    return db.session.execute(select(func.max(BalanceBuild.through))).scalar_one_or_none()


def settled_day(now: dt.datetime | None = None) -> dt.date:
    """The last Beijing day that ended at least :data:`SETTLE` ago (yesterday, after 00:05)."""
    return local_date((now or utcnow()) - SETTLE) - dt.timedelta(days=1)


def _open_writers_bound() -> dt.date | None:
    """PostgreSQL: the last day no open writing transaction can still add a line to (a
    transaction that began at ``s`` may hold lines recorded from ``s - SETTLE`` on), or None
    when no other transaction is writing."""
    oldest = db.session.execute(
        text(
            "SELECT min(xact_start) FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
            "AND pid <> pg_backend_pid() AND datname = current_database()"
        )
    ).scalar_one_or_none()
    return None if oldest is None else local_date(oldest - SETTLE) - dt.timedelta(days=1)


def build(through: dt.date | None = None) -> int:
    """Append the rows of the days after the last build up to ``through`` (default and at
    most: :func:`settled_day`). Returns the rows written. Flushes; the caller commits.
    Idempotent; on PostgreSQL concurrent builders queue on an advisory lock and the later
    ones find the days built."""
    settled = settled_day()
    through = min(through or settled, settled)
    if db.session.get_bind().dialect.name == "postgresql":
        # One builder at a time; the second finds the days built and does nothing.
        db.session.execute(text("SELECT pg_advisory_xact_lock(17234, -1)"))
        bound = _open_writers_bound()
        if bound is not None:
            through = min(through, bound)
    last = built_through()
    after = last if last is not None else dt.date(1, 1, 1)
    if through <= after:
        return 0
    db.session.execute(
        text(f"INSERT INTO credit_balance_days ({_COLUMNS}) {_rows_sql(incremental=last is not None)}"),
        _params(after, through),
    )
    rows = int(
        db.session.execute(
            text("SELECT count(*) FROM credit_balance_days WHERE day > :after AND day <= :through"),
            {"after": after, "through": through},
        ).scalar_one()
    )
    db.session.add(BalanceBuild(through=through, rows=rows, built_at=utcnow()))
    db.session.flush()
    return rows


def run_job(payload: dict[str, Any]) -> None:
    """Job :data:`JOB`: build up to the settled day (idempotent: a second run builds nothing)."""
    build()


def request_build() -> None:
    """Queue :data:`JOB` in the caller's transaction when the settled day is not built yet.

    Called for every domain event the plugin is handed (after commit, in a worker): the
    platform's own traffic is the clock. One look at the builds per process and settled day
    (remembered on the application), so nearly every call costs a date comparison."""
    from lms_core.jobs.services import enqueue

    day = settled_day()
    memo: dict[str, dt.date] = current_app.extensions.setdefault("credit_bank_snapshots", {})
    if memo.get("requested") == day:
        return
    memo["requested"] = day
    last = built_through()
    if last is None or last < day:
        enqueue(JOB, {"through": day.isoformat()})


@dataclass(frozen=True)
class Freshness:
    """What /admin/status shows: how far the snapshots go and whether they keep up."""

    through: dt.date | None  #: last built day (None: never built)
    built_at: dt.datetime | None  #: when that build ran
    rows: int  #: rows written by that build
    settled: dt.date  #: the day they should reach by now

    @property
    def behind_days(self) -> int | None:
        return None if self.through is None else max(0, (self.settled - self.through).days)


def freshness() -> Freshness:
    last = db.session.execute(
        select(BalanceBuild.through, BalanceBuild.built_at, BalanceBuild.rows)
        .order_by(BalanceBuild.through.desc())
        .limit(1)
    ).first()
    if last is None:
        return Freshness(None, None, 0, settled_day())
    return Freshness(last.through, last.built_at, int(last.rows), settled_day())


def check() -> tuple[int, list[str]]:
    """Recompute every stored row from the journal; (rows checked, differences described)."""
    through = built_through()
    if through is None:
        return 0, []
    params = _params(dt.date(1, 1, 1), through)
    cols = ("debits_posted", "credits_posted", "debits_pending", "credits_pending", "closed_out")
    same = " AND ".join(f"s.{c} = r.{c}" for c in cols)
    # Built from constants only (no input reaches the text): noqa S608 below.
    joined = (
        f"FROM ({_rows_sql(incremental=False)}) AS r LEFT JOIN credit_balance_days AS s "  # noqa: S608
        f"ON s.account_id = r.account_id AND s.day = r.day AND {same}"
    )
    n_recomputed, n_matched = db.session.execute(
        text(f"SELECT count(*), count(s.account_id) {joined}"),
        params,  # noqa: S608
    ).one()
    n_stored = int(
        db.session.execute(
            text("SELECT count(*) FROM credit_balance_days WHERE day <= :through"), {"through": through}
        ).scalar_one()
    )
    problems: list[str] = []
    if n_matched != n_recomputed:
        missing = db.session.execute(
            text(f"SELECT r.account_id, r.day {joined} WHERE s.account_id IS NULL ORDER BY 1, 2 LIMIT 20"),  # noqa: S608
            params,
        ).all()
        problems += [f"account {a} on {d}: the stored row differs from the journal or is missing" for a, d in missing]
        if n_recomputed - n_matched > len(missing):
            problems.append(f"... {n_recomputed - n_matched} such rows in all")
    if n_stored != n_recomputed:
        problems.append(f"{n_stored} stored row(s), the journal gives {n_recomputed}")
    return int(n_stored), problems
