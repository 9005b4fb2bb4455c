"""Daily balance snapshots (``credit_balance_days``): as-of-date figures without the journal.

A cadre's figures "as of D" are the sums of the journal lines visible at the end of D
(:class:`plugins.credit_bank.models.BalanceDay` states the rule). Folding them from the
journal reads every line of the cadre; with snapshots, a past date reads one row per account
(the latest on or before D) and only the lines that became visible after the last build.

* :func:`build` appends the rows of the whole days ended since the last build (run daily
  after midnight Beijing time: ``flask lms credit snapshot``); the rows are computed in the
  database from the journal, by one INSERT ... SELECT. A missed run costs speed only: dates
  after the last built day add the journal lines visible since then.
* :func:`check` recomputes every stored row from the journal and counts the differences
  (``flask lms credit replay`` runs it).
* :func:`sums_as_of` answers one cadre's accounts as of a date.

Only whole Beijing days that have ended are built: a line recorded today becomes visible
today at the earliest, so a built day never changes (up to a transaction still open across
midnight: the build runs a few minutes after it, and ``check`` would see a late line).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, text

from lms_core.db import utcnow
from lms_core.extensions import db
from plugins.credit_bank.models import T_PENDING, T_POST_PENDING, T_VOID_PENDING, AccountKind, BalanceBuild
from plugins.credit_bank.services import CLOSE_CODES, SHANGHAI, local_date

_COLUMNS = "account_id, day, debits_posted, credits_posted, debits_pending, credits_pending, closed_out"


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
    base = (
        "SELECT b.account_id, b.debits_posted AS dp, b.credits_posted AS cp, b.debits_pending AS dpe, "
        "b.credits_pending AS cpe, b.closed_out AS co FROM credit_balance_days AS b JOIN "
        "(SELECT account_id, max(day) AS day FROM credit_balance_days WHERE day <= :after GROUP BY account_id) AS m "
        "ON m.account_id = b.account_id AND m.day = b.day"
        if incremental
        else "SELECT account_id, dp, cp, dpe, cpe, co FROM (SELECT 0 AS account_id, 0 AS dp, 0 AS cp, 0 AS dpe, "
        "0 AS cpe, 0 AS co) AS z WHERE 1 = 0"
    )
    # Built from constants only (no input reaches the text).
    return f"""
        WITH lines AS (
            SELECT t.debit_account_id AS d, t.credit_account_id AS c, t.amount, t.flags, t.code, {t} AS v
              FROM credit_transfers AS t
        ), releases AS (
            SELECT h.debit_account_id AS d, h.credit_account_id AS c, h.amount, {_greatest(r, h)} AS v
              FROM credit_transfers AS r JOIN credit_transfers AS h ON h.id = r.pending_id
             WHERE (r.flags & :resolves) <> 0 AND (h.flags & :pending) <> 0
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
        ), base AS ({base})
        SELECT daily.a AS account_id, daily.v AS day,
               coalesce(base.dp, 0) + sum(daily.dp) OVER w AS debits_posted,
               coalesce(base.cp, 0) + sum(daily.cp) OVER w AS credits_posted,
               coalesce(base.dpe, 0) + sum(daily.dpe) OVER w AS debits_pending,
               coalesce(base.cpe, 0) + sum(daily.cpe) OVER w AS credits_pending,
               coalesce(base.co, 0) + sum(daily.co) OVER w AS closed_out
          FROM daily LEFT JOIN base ON base.account_id = daily.a
        WINDOW w AS (PARTITION BY daily.a ORDER BY daily.v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    """  # noqa: S608


def _params(after: dt.date, through: dt.date) -> dict[str, Any]:
    return {
        "after": after,
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


def build(through: dt.date | None = None) -> int:
    """Append the rows of the days after the last build up to ``through`` (default: yesterday,
    Beijing; never today or later). Returns the rows written. Flushes; the caller commits."""
    yesterday = local_date(utcnow()) - dt.timedelta(days=1)
    through = min(through or yesterday, yesterday)
    if db.session.get_bind().dialect.name == "postgresql":
        # One builder at a time; the second finds the days built and does nothing.
        db.session.execute(text("SELECT pg_advisory_xact_lock(17234, -1)"))
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


def cadre_as_of(
    user_id: int, as_of: dt.date
) -> tuple[dict[int, tuple[str, AccountKind, int]], dict[int, tuple[int, int, int, int, int]], dt.date]:
    """One statement: the cadre's accounts ``{id: (ledger, kind, year)}``, each one's
    (dp, cp, dpe, cpe, closed_out) at the end of its latest built day on or before ``as_of``
    (accounts without such a row have none), and the day the sums hold for (the last built day
    on or before ``as_of``; the caller adds the lines visible after it)."""
    from plugins.credit_bank.ledger import ledger_code

    rows = db.session.execute(
        text(
            "SELECT a.id, a.ledger_id, a.kind, a.period, b.debits_posted, b.credits_posted, b.debits_pending, "
            "b.credits_pending, b.closed_out, w.through FROM credit_accounts AS a "
            "CROSS JOIN (SELECT max(through) AS through FROM credit_balance_builds) AS w "
            "LEFT JOIN credit_balance_days AS b ON b.account_id = a.id AND b.day = ("
            "SELECT max(x.day) FROM credit_balance_days AS x WHERE x.account_id = a.id AND x.day <= :as_of "
            "AND x.day <= w.through) "
            "WHERE a.owner_id = :user AND a.kind IN (:counted, :overflow)"
        ),
        {
            "user": user_id,
            "as_of": as_of,
            "counted": AccountKind.COUNTED.value,
            "overflow": AccountKind.OVERFLOW.value,
        },
    ).all()
    accts = {r[0]: (ledger_code(r[1]), AccountKind(r[2]), r[3]) for r in rows}
    sums = {r[0]: (r[4], r[5], r[6], r[7], r[8]) for r in rows if r[4] is not None}
    through = rows[0][9] if rows else None
    if isinstance(through, str):  # SQLite answers an aggregate of dates as text
        through = dt.date.fromisoformat(through)
    upto = min(as_of, through) if through is not None else dt.date(1, 1, 1)
    return accts, sums, upto
