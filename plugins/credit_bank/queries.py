"""Credit queries: balances, statements and requirement progress, now or as of a past date.

Every figure comes from the journal (one source), by three routes that tests hold equal: today
from the account sums the ledger keeps, a past date from the daily snapshots (plus the lines
visible since the last built day), and :func:`figures_from_journal`, the reference fold. The
page, the API, the dashboard and the statement cannot disagree.

"As of D" means: effective on or before D *and* recorded before the end of D (Beijing time),
i.e. what the bank showed at the end of that day.

A balance + progress answer is **one statement** (:func:`read`): the cadre's accounts with
their sums (or their snapshot rows), the policy version in force and whether the cadre has a
rank history. Policy versions are append-only, so a version's validated rules are kept per
process (:func:`policy_rules`); a history is read only for cadres who have one. Each statement
less is a round trip less, which under load is most of the time an answer takes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import and_, func, or_, select, text

from lms_core.db import utcnow
from lms_core.extensions import db
from plugins.credit_bank import ledger as L
from plugins.credit_bank import policy as P
from plugins.credit_bank.models import (
    CREDIT_UNIT_LEDGERS,
    FLAG_CLOSED,
    T_PENDING,
    T_POST_PENDING,
    T_VOID_PENDING,
    Account,
    AccountKind,
    Policy,
    Transfer,
)
from plugins.credit_bank.services import CLOSE_CODES, SHANGHAI


@dataclass
class Figures:
    """One ledger × year for one cadre (centi-学时)."""

    posted: int = 0  #: counted balance, posted
    pending: int = 0  #: 审核中: holds on the counted and overflow accounts
    overflow: int = 0  #: 记录但不计入: over a cap
    closed_out: int = 0  #: moved out at year-end close (carried forward or expired)

    @property
    def earned_for_year(self) -> int:
        """What counts toward the year's requirements: the posted balance before the close."""
        return self.posted + self.closed_out


@dataclass
class Line:
    seq: int
    id: str
    date: dt.date
    recorded_at: dt.datetime
    ledger: str
    year: int
    kind: str  #: account kind on the cadre's side (counted / overflow)
    code: str
    amount: int  #: signed, as seen by the cadre's account
    status: str  #: posted | pending | voided | expired
    memo: str | None
    evidence_ref: str | None
    policy_version: int | None
    reverses_id: str | None
    reversed_by: list[str] = field(default_factory=list)
    balance: int | None = None  #: running posted balance of the counted account (posted lines)
    pending_id: str | None = None
    resolution_memo: str | None = None  #: why a hold was voided or lapsed (its resolution's memo)


def _cutoff(as_of: dt.date) -> dt.datetime:
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), SHANGHAI).astimezone(dt.UTC)


def _accounts(user_id: int) -> dict[int, tuple[str, AccountKind, int]]:
    rows = db.session.execute(
        select(Account.id, Account.ledger_id, Account.kind, Account.period).where(
            Account.owner_id == user_id, Account.kind.in_([AccountKind.COUNTED.value, AccountKind.OVERFLOW.value])
        )
    )
    return {r.id: (L.ledger_code(r.ledger_id), AccountKind(r.kind), r.period) for r in rows}


def _transfers(user_id: int, as_of: dt.date | None) -> list[Any]:
    t = L.TRANSFERS
    stmt = select(
        t.c.seq,
        t.c.id,
        t.c.debit_account_id,
        t.c.credit_account_id,
        t.c.amount,
        t.c.flags,
        t.c.pending_id,
        t.c.code,
        t.c.effective_date,
        t.c.recorded_at,
        t.c.memo,
        t.c.evidence_ref,
        t.c.policy_version,
        t.c.reverses_id,
        t.c.timeout_at,
    ).where(t.c.user_id == user_id)
    if as_of is not None:
        stmt = stmt.where(t.c.effective_date <= as_of, t.c.recorded_at < _cutoff(as_of))
    return list(db.session.execute(stmt.order_by(t.c.seq)))


@dataclass
class Reading:
    """What one statement tells about a cadre on a date (:func:`read`)."""

    figures: dict[tuple[str, int], Figures]
    accounts: dict[int, tuple[str, AccountKind, int]]  #: counted and overflow: id -> (ledger, kind, year)
    on: dt.date  #: the day the policy was looked up for
    policy: tuple[int, Any] | None  #: (version, created_at) in force on ``on``, if any
    ranked: bool  #: the cadre has rank history entries


#: The policy version in force on :on and whether the cadre has a rank history: a one-row
#: FROM that the account rows are LEFT JOINed to (so a cadre with no account still gets it).
_EXTRAS = (
    "(SELECT CASE WHEN EXISTS (SELECT 1 FROM credit_rank_changes WHERE user_id = :user) THEN 1 ELSE 0 END"
    " AS ranked) AS r LEFT JOIN (SELECT version, created_at FROM credit_policies WHERE effective_from <= :on"
    " ORDER BY effective_from DESC, version DESC LIMIT 1) AS p ON 1 = 1"
)
_KINDS = "a.owner_id = :user AND a.kind IN (:counted, :overflow)"

#: Today: the account rows, whose sums the ledger keeps under row lock in the posting
#: transaction; a closed account's year-end moves from its latest snapshot row, when that row
#: already has the account's final posted debits (a closed account takes no new line).
_NOW = text(  # built from constants only
    "SELECT p.version, p.created_at, r.ranked, a.id, a.ledger_id, a.kind, a.period, a.flags, a.debits_posted,"  # noqa: S608
    " a.credits_posted, a.debits_pending, a.credits_pending, c.debits_posted AS c_dp, c.closed_out AS c_co"
    f" FROM {_EXTRAS} LEFT JOIN credit_accounts AS a ON {_KINDS}"
    " LEFT JOIN credit_balance_days AS c ON (a.flags & :closed) <> 0 AND c.account_id = a.id AND c.day ="
    " (SELECT max(y.day) FROM credit_balance_days AS y WHERE y.account_id = a.id)"
)

#: A past date: each account's latest snapshot row on or before the date (and the last built day).
_AS_OF = text(  # built from constants only
    "SELECT p.version, p.created_at, r.ranked, a.id, a.ledger_id, a.kind, a.period, b.debits_posted,"  # noqa: S608
    " b.credits_posted, b.debits_pending, b.credits_pending, b.closed_out, w.through"
    f" FROM {_EXTRAS} CROSS JOIN (SELECT max(through) AS through FROM credit_balance_builds) AS w"
    f" LEFT JOIN credit_accounts AS a ON {_KINDS}"
    " LEFT JOIN credit_balance_days AS b ON b.account_id = a.id AND b.day = ("
    "SELECT max(x.day) FROM credit_balance_days AS x WHERE x.account_id = a.id AND x.day <= :as_of"
    " AND x.day <= w.through)"
)


def _params(user_id: int, on: dt.date, **extra: Any) -> dict[str, Any]:
    return {
        "user": user_id,
        "on": on,
        "counted": AccountKind.COUNTED.value,
        "overflow": AccountKind.OVERFLOW.value,
        **extra,
    }


def read(user_id: int, as_of: dt.date | None = None, policy_on: dt.date | None = None) -> Reading:
    """A cadre's figures per (ledger, year) today or as of a past date, the policy version in
    force on ``policy_on`` (default: ``as_of``, or today) and whether a rank history exists.

    One statement; more only for a closed account whose year-end moves are not in a snapshot
    yet, and for a date after the last built snapshot day (the lines visible since are read)."""
    from plugins.credit_bank.services import local_date

    on = policy_on or as_of or local_date(utcnow())
    if as_of is None:
        rows = list(db.session.execute(_NOW, _params(user_id, on, closed=FLAG_CLOSED)))
        figures, accounts = _figures_now(rows)
    else:
        rows = list(db.session.execute(_AS_OF, _params(user_id, on, as_of=as_of)))
        figures, accounts = _figures_as_of(user_id, as_of, rows)
    first = rows[0]
    policy = None if first[0] is None else (int(first[0]), first[1])
    return Reading(figures, accounts, on, policy, bool(first[2]))


def figures(user_id: int, as_of: dt.date | None = None) -> dict[tuple[str, int], Figures]:
    """Per (ledger, year): posted, pending, overflow and closed-out amounts (:func:`read`)."""
    return read(user_id, as_of).figures


def _figures_now(rows: list[Any]) -> tuple[dict[tuple[str, int], Figures], dict[int, tuple[str, AccountKind, int]]]:
    out: dict[tuple[str, int], Figures] = {}
    accounts: dict[int, tuple[str, AccountKind, int]] = {}
    closed: dict[int, Figures] = {}
    for r in rows:
        if r.id is None:
            continue  # the cadre has no account yet
        kind = AccountKind(r.kind)
        accounts[r.id] = (L.ledger_code(r.ledger_id), kind, r.period)
        if not (r.debits_posted or r.credits_posted or r.debits_pending or r.credits_pending):
            continue  # created by a refused transfer: nothing happened on it
        f = out.setdefault((L.ledger_code(r.ledger_id), r.period), Figures())
        f.pending += r.credits_pending
        if kind == AccountKind.COUNTED:
            f.posted += r.credits_posted - r.debits_posted
            if r.flags & FLAG_CLOSED:
                # Posted debits only grow: the snapshot row with the same has every close line.
                if r.c_dp == r.debits_posted:
                    f.closed_out += r.c_co
                else:
                    closed[r.id] = f
        else:
            f.overflow += r.credits_posted - r.debits_posted
    if closed:
        t = L.TRANSFERS
        for aid, total in db.session.execute(
            select(t.c.debit_account_id, func.sum(t.c.amount))
            .where(
                t.c.debit_account_id.in_(list(closed)),
                t.c.code.in_(CLOSE_CODES),
                t.c.flags.op("&")(T_PENDING | T_VOID_PENDING) == 0,
            )
            .group_by(t.c.debit_account_id)
        ):
            closed[aid].closed_out += int(total)
    return out, accounts


def figures_as_of(user_id: int, as_of: dt.date) -> dict[tuple[str, int], Figures]:
    """:func:`figures` on a past date from the daily snapshots (:mod:`.snapshots`): one row per
    account, the latest on or before ``as_of``; only when ``as_of`` is after the last built day
    (today, or a build late) are the lines visible since then added, read from the journal.
    Equal to :func:`figures_from_journal` (tests compare them)."""
    return read(user_id, as_of).figures


def _figures_as_of(
    user_id: int, as_of: dt.date, rows: list[Any]
) -> tuple[dict[tuple[str, int], Figures], dict[int, tuple[str, AccountKind, int]]]:
    accounts = {r.id: (L.ledger_code(r.ledger_id), AccountKind(r.kind), r.period) for r in rows if r.id is not None}
    acc = {r.id: [r[7], r[8], r[9], r[10], r[11]] for r in rows if r.id is not None and r[7] is not None}
    through = rows[0].through
    if isinstance(through, str):  # SQLite answers an aggregate of dates as text
        through = dt.date.fromisoformat(through)
    upto = min(as_of, through) if through is not None else dt.date(1, 1, 1)
    if as_of > upto:
        _add_lines_after(acc, user_id, upto, as_of)
    out: dict[tuple[str, int], Figures] = {}
    for aid, (dp, cp, _dpe, cpe, co) in acc.items():
        info = accounts.get(aid)
        if info is None:
            continue
        ledger, kind, year = info
        f = out.setdefault((ledger, year), Figures())
        f.pending += cpe
        if kind == AccountKind.COUNTED:
            f.posted += cp - dp
            f.closed_out += co
        else:
            f.overflow += cp - dp
    return out, accounts


def policy_rules(reading: Reading | None, on: dt.date) -> dict[str, Any]:
    """The validated rules in force on ``on``: of the version :func:`read` found, when it looked
    for that day (else, or when none was found, ``P.in_force(on)``, which records the defaults
    if there is no version). A version never changes (the table is append-only), so its rules
    are validated once per process, keyed by version and creation time (a version number
    rolled back and used again is another key)."""
    if reading is None or reading.policy is None or reading.on != on:
        return P.rules_of(P.in_force(on))
    cache: dict[tuple[int, Any], dict[str, Any]] = current_app.extensions.setdefault("credit_bank_policy_rules", {})
    rules = cache.get(reading.policy)
    if rules is None:
        rules = cache[reading.policy] = P.rules_of(db.session.get_one(Policy, reading.policy[0]))
    return rules


def _add_lines_after(acc: dict[int, list[int]], user_id: int, after: dt.date, as_of: dt.date) -> None:
    """Add to per-account sums [dp, cp, dpe, cpe, closed_out] the cadre's lines visible at the
    end of ``as_of`` but not at the end of ``after`` (the snapshot's rule, line by line)."""
    t, h = L.TRANSFERS, L.TRANSFERS.alias("h")
    cut, cut_after = _cutoff(as_of), _cutoff(after)
    rows = db.session.execute(
        select(
            t.c.debit_account_id,
            t.c.credit_account_id,
            t.c.amount,
            t.c.flags,
            t.c.code,
            t.c.effective_date,
            t.c.recorded_at,
            h.c.amount.label("h_amount"),
            h.c.effective_date.label("h_date"),
            h.c.recorded_at.label("h_recorded"),
            h.c.flags.label("h_flags"),
        )
        .outerjoin(h, h.c.id == t.c.pending_id)
        .where(
            t.c.user_id == user_id,
            t.c.effective_date <= as_of,
            t.c.recorded_at < cut,
            # Only what the loop below can use: a line new since ``after``, or one whose hold is.
            or_(
                t.c.effective_date > after,
                t.c.recorded_at >= cut_after,
                and_(h.c.id.is_not(None), or_(h.c.effective_date > after, h.c.recorded_at >= cut_after)),
            ),
        )
    )

    def sums(aid: int) -> list[int]:
        v = acc.get(aid)
        if v is None:
            v = acc[aid] = [0, 0, 0, 0, 0]
        return v

    for r in rows:
        new = r.effective_date > after or r.recorded_at >= cut_after
        if r.flags & (T_POST_PENDING | T_VOID_PENDING) and r.h_amount is not None and r.h_flags & T_PENDING:
            # The hold is released on the day both lines are visible.
            hold_new = r.h_date > after or r.h_recorded >= cut_after
            hold_seen = r.h_date <= as_of and r.h_recorded < cut
            if hold_seen and (new or hold_new):
                sums(r.debit_account_id)[2] -= r.h_amount
                sums(r.credit_account_id)[3] -= r.h_amount
        if not new:
            continue
        if r.flags & T_PENDING:
            sums(r.debit_account_id)[2] += r.amount
            sums(r.credit_account_id)[3] += r.amount
        elif not r.flags & T_VOID_PENDING:
            d = sums(r.debit_account_id)
            d[0] += r.amount
            if r.code in CLOSE_CODES:
                d[4] += r.amount
            sums(r.credit_account_id)[1] += r.amount


def figures_from_journal(user_id: int, as_of: dt.date | None = None) -> dict[tuple[str, int], Figures]:
    """:func:`figures` folded from the cadre's journal lines (any date; the reference replay)."""
    accts = _accounts(user_id)
    out: dict[tuple[str, int], Figures] = defaultdict(Figures)
    holds: dict[str, Any] = {}
    for r in _transfers(user_id, as_of):
        for aid, sign in ((r.credit_account_id, 1), (r.debit_account_id, -1)):
            info = accts.get(aid)
            if info is None:
                continue
            ledger, kind, year = info
            f = out[(ledger, year)]
            if r.flags & T_PENDING:
                holds[r.id] = (aid, sign, r.amount)
                f.pending += sign * r.amount if sign > 0 else 0
                continue
            if r.flags & (T_POST_PENDING | T_VOID_PENDING):
                held = holds.pop(r.pending_id, None)
                if held is not None and held[1] > 0 and held[0] == aid:
                    f.pending -= held[2]
                if r.flags & T_VOID_PENDING:
                    continue
            if kind == AccountKind.COUNTED:
                f.posted += sign * r.amount
                if sign < 0 and r.code in CLOSE_CODES:
                    f.closed_out += r.amount
            else:
                f.overflow += sign * r.amount
    return dict(out)


def year_summary(
    user_id: int, year: int, as_of: dt.date | None = None, fig: dict[tuple[str, int], Figures] | None = None
) -> dict[str, int]:
    """The dashboard's figures for a year: posted, 审核中 and 记录但不计入, over all credit types
    (``fig``: the cadre's :func:`figures` on that date, when the caller has them)."""
    f = figures(user_id, as_of) if fig is None else fig
    # 学时 only: 学分 are another unit (the credit page shows them on their own line).
    parts = [v for (code, y), v in f.items() if y == year and code not in CREDIT_UNIT_LEDGERS]
    return {
        "posted": sum(p.earned_for_year for p in parts),
        "pending": sum(p.pending for p in parts),
        "overflow": sum(p.overflow for p in parts),
    }


def statement(
    user_id: int,
    year: int,
    as_of: dt.date | None = None,
    ledger: str | None = None,
    accounts: dict[int, tuple[str, AccountKind, int]] | None = None,
) -> list[Line]:
    """The year's lines with a running posted balance per ledger; reversals know their originals
    (``accounts``: the cadre's, from a :class:`Reading`, when the caller has them)."""
    accts = _accounts(user_id) if accounts is None else accounts
    now = utcnow() if as_of is None else _cutoff(as_of)
    rows = _transfers(user_id, as_of)
    resolved: dict[str, int] = {}
    resolution_memo: dict[str, str | None] = {}
    for r in rows:
        if r.flags & (T_POST_PENDING | T_VOID_PENDING):
            resolved[r.pending_id] = r.flags
            resolution_memo[r.pending_id] = r.memo
    lines: list[Line] = []
    running: dict[str, int] = defaultdict(int)
    by_id: dict[str, Line] = {}
    for r in rows:
        side = None
        for aid, sign in ((r.credit_account_id, 1), (r.debit_account_id, -1)):
            info = accts.get(aid)
            if info is not None and info[2] == year and (ledger is None or info[0] == ledger):
                side = (info, sign)
        if side is None:
            continue
        (lcode, kind, yr), sign = side
        if r.flags & T_PENDING:
            res = resolved.get(r.id)
            if res is not None and res & T_POST_PENDING:
                continue  # shown as the posting line
            expired = r.timeout_at is not None and r.timeout_at <= now
            status = "voided" if res is not None else ("expired" if expired else "pending")
        elif r.flags & T_VOID_PENDING:
            continue  # the hold line shows "voided"
        else:
            status = "posted"
        line = Line(
            seq=r.seq,
            id=r.id,
            date=r.effective_date,
            recorded_at=r.recorded_at,
            ledger=lcode,
            year=yr,
            kind=kind.value,
            code=r.code,
            amount=sign * r.amount,
            status=status,
            memo=r.memo,
            evidence_ref=r.evidence_ref,
            policy_version=r.policy_version,
            reverses_id=r.reverses_id,
            pending_id=r.pending_id,
            resolution_memo=resolution_memo.get(r.id) if r.flags & T_PENDING else None,
        )
        if status == "posted" and kind == AccountKind.COUNTED:
            running[lcode] += line.amount
            line.balance = running[lcode]
        lines.append(line)
        by_id[r.id] = line
    # Pair reversals with their originals (an original of a post is its pending hold's posting).
    for line in lines:
        if line.reverses_id and line.reverses_id in by_id:
            by_id[line.reverses_id].reversed_by.append(line.id)
    return lines


@dataclass
class Progress:
    key: str
    ledgers: list[str]
    required: int
    earned: int
    window_start: dt.date
    deadline: dt.date
    window: str = "calendar_year"
    overdue: bool = False  #: not met and the deadline has passed (on the "as of" date)
    promoted_to: str | None = None  #: the band of the promotion that opened the window

    @property
    def ratio(self) -> float:
        return 1.0 if self.required == 0 else min(1.0, self.earned / self.required)

    @property
    def met(self) -> bool:
        return self.earned >= self.required


def _applies(rule: dict[str, Any], user: Any) -> bool:
    band = getattr(user.rank_band, "value", user.rank_band)
    if band not in rule.get("rank_bands", P.RANK_BANDS):
        return False
    if rule.get("party_member") and not user.party_member:
        return False
    words = rule.get("position_keywords")
    return not (words and not any(w in (user.position or "") for w in words))


def reference_date(year: int, as_of: dt.date | None) -> dt.date:
    """The date whose rank band decides a year's requirements: the end of the year, or the
    "as of" date (today, for the current year) when that is earlier."""
    from plugins.credit_bank.services import local_date

    end = dt.date(year, 12, 31)
    day = as_of or local_date(utcnow())
    return min(end, day)


def policy_day(year: int, as_of: dt.date | None) -> dt.date:
    """The day whose policy decides a year's requirements: the "as of" date, else 31 December."""
    return as_of or dt.date(year, 12, 31)


def earned_between(user_id: int, ledgers: list[str], start: dt.date, end: dt.date, as_of: dt.date | None = None) -> int:
    """Net posted counted credit effective in [start, end] (reversals subtract; holds and
    year-end moves do not count)."""
    accts = _accounts(user_id)
    total = 0
    for r in _transfers(user_id, as_of):
        if not start <= r.effective_date <= end or r.flags & (T_PENDING | T_VOID_PENDING) or r.code in CLOSE_CODES:
            continue
        for aid, sign in ((r.credit_account_id, 1), (r.debit_account_id, -1)):
            info = accts.get(aid)
            if info is not None and info[1] == AccountKind.COUNTED and info[0] in ledgers:
                total += sign * r.amount
    return total


def _promotion_window(rule: dict[str, Any], promotions: list[tuple[dt.date, str]], year: int, ref: dt.date) -> Any:
    """The promotion whose window touches ``year`` (the latest by ``ref``), or ``None``."""
    years = int(rule.get("years", 1))
    bands = rule.get("rank_bands", P.RANK_BANDS)
    for when, band in sorted(promotions, reverse=True):
        if when > ref or band not in bands:
            continue
        deadline = (
            when.replace(year=when.year + years) - dt.timedelta(days=1)
            if (when.month, when.day) != (2, 29)
            else (dt.date(when.year + years, 2, 28))
        )
        if deadline >= dt.date(year, 1, 1):
            return when, deadline, band
        return None
    return None


def progress(
    user: Any,
    year: int,
    as_of: dt.date | None = None,
    promotions: list[tuple[dt.date, str]] | None = None,
    hist: Any = None,
    fig: dict[tuple[str, int], Figures] | None = None,
    reading: Reading | None = None,
    rules: dict[str, Any] | None = None,
) -> list[Progress]:
    """Progress toward each requirement that applies to the cadre in ``year``.

    ``progress = min(1, earned / required)``; pending holds never count. The rank band is
    the one in force on :func:`reference_date` (from the promotion history); the promotion
    rule counts what was earned from the promotion day to its deadline. ``fig``: the cadre's
    :func:`figures` on ``as_of``, when the caller has them (the page shows both); ``reading``:
    the cadre's :func:`read` on ``as_of`` with the policy of :func:`policy_day` (then no
    statement of its own unless the cadre has a rank history). ``rules``: a policy document
    to measure against instead of the version in force (the requirement form's preview of a
    draft).
    """
    from plugins.credit_bank import ranks

    ref = reference_date(year, as_of)
    if hist is None:
        hist = ranks.history(user, known_empty=reading is not None and not reading.ranked)
    if promotions is None:
        promotions = hist.promotions()
    who = ranks.as_of(user, hist, ref)
    today = as_of or ranks.today()
    if rules is None:
        rules = policy_rules(reading, policy_day(year, as_of))
    if fig is None:
        fig = reading.figures if reading is not None else figures(user.id, as_of)
    applicable = [r for r in rules["requirements"] if r["window"] == "after_promotion" or _applies(r, who)]
    superseded = {k for r in applicable for k in r.get("supersedes", [])}
    out = []
    for r in applicable:
        if r["key"] in superseded:
            continue
        window = r["window"]
        promoted_to = None
        if window == "calendar_year":
            start, deadline = dt.date(year, 1, 1), dt.date(year, 12, 31)
            earned = _earned_in(fig, r["ledgers"], [year])
        elif window == "plan_cycle":
            n, first = int(r.get("years", 5)), int(r.get("cycle_start", 2023))
            cycle0 = first + ((year - first) // n) * n
            start, deadline = dt.date(cycle0, 1, 1), dt.date(cycle0 + n - 1, 12, 31)
            earned = _earned_in(fig, r["ledgers"], range(cycle0, cycle0 + n))
        else:
            if r.get("party_member") and not user.party_member:
                continue
            found = _promotion_window(r, promotions, year, ref)
            if found is None:
                continue
            start, deadline, promoted_to = found
            earned = earned_between(user.id, list(r["ledgers"]), start, deadline, as_of)
        required = int(r["amount_centi"])
        out.append(
            Progress(
                r["key"],
                list(r["ledgers"]),
                required,
                earned,
                start,
                deadline,
                window,
                earned < required and today > deadline,
                promoted_to,
            )
        )
    return out


def _earned_in(fig: dict[tuple[str, int], Figures], ledgers: list[str], years: Container[int]) -> int:
    """What the cadre earned toward ``ledgers`` in ``years`` (each year's counted figure)."""
    return sum(f.earned_for_year for (ledger, y), f in fig.items() if ledger in ledgers and y in years)


def annual_target(user: Any, year: int, hist: Any = None, rules: dict[str, Any] | None = None) -> int:
    """The yearly figure the dashboard measures against (centi): the largest yearly requirement
    over all credit types that applies, or a plan cycle's yearly share, for the rank band held
    on the year's :func:`reference_date`. ``rules``: the policy in force on 31 December of
    ``year``, when the caller already read it (the dashboard asks for many groups)."""
    from plugins.credit_bank import ranks

    if hist is None:
        hist = ranks.history(user)
    user = ranks.as_of(user, hist, reference_date(year, None))
    if rules is None:
        rules = P.rules_of(P.in_force(dt.date(year, 12, 31)))
    best = 0
    for r in rules["requirements"]:
        if not _applies(r, user) or len(r["ledgers"]) < 2 and r["window"] != "calendar_year":
            continue
        if r["window"] == "calendar_year" and len(r["ledgers"]) > 1:
            best = max(best, int(r["amount_centi"]))
        elif r["window"] == "plan_cycle":
            best = max(best, int(r.get("annual_share_centi") or r["amount_centi"] // int(r.get("years", 5))))
    if best == 0:
        best = max(
            (
                int(r["amount_centi"])
                for r in rules["requirements"]
                if _applies(r, user) and r["window"] == "calendar_year"
            ),
            default=0,
        )
    return best


def held_pending_ids(user_id: int) -> list[str]:
    """Ids of the cadre's open holds (for reviewers)."""
    t = Transfer
    resolved = select(t.pending_id).where(t.pending_id.is_not(None))
    return list(
        db.session.execute(
            select(t.id).where(t.user_id == user_id, t.flags.op("&")(T_PENDING) != 0, t.id.not_in(resolved))
        ).scalars()
    )
