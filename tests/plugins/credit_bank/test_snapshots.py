"""Daily balance snapshots: as-of figures from them equal the journal's fold, on any date."""

from __future__ import annotations

import datetime as dt
import random

import pytest
import time_machine
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lms_core.extensions import db
from plugins.credit_bank import ledger as L
from plugins.credit_bank import queries, replay, snapshots
from plugins.credit_bank.models import T_PENDING, T_POST_PENDING, T_VOID_PENDING

USER = 7
SRC = L.issuer("WL_XS")


def at(day: dt.date, hour: int = 9) -> time_machine.travel:
    """Beijing ``hour`` o'clock on ``day`` (hour 23 is after 15:00 UTC: the next UTC day)."""
    moment = dt.datetime.combine(day, dt.time(hour), dt.timezone(dt.timedelta(hours=8)))
    return time_machine.travel(moment, tick=False)


def post(key: str, eff: dt.date, amount: int | None = 100, *, may_refuse: bool = False, **kw: object) -> str:
    base: dict[str, object] = {
        "id": L.transfer_id(key),
        "code": "course_complete",
        "effective_date": eff,
        "amount": amount,
        "debit": SRC,
        "credit": L.counted("WL_XS", USER, eff.year),
        "user_id": USER,
    }
    base.update(kw)
    res = L.submit([[L.TransferSpec(**base)]])[0][0]  # type: ignore[arg-type]
    assert res == "created" or (may_refuse and res == "exceeds_credits"), (key, res)
    return L.transfer_id(key)


def scripted_days(rng: random.Random) -> list[dt.date]:
    """Ten Beijing days of postings, holds, posts, voids, reversals, back-dated lines and a
    year-end carry; the snapshots are built on some mornings only (a missed build)."""
    start = dt.date(2026, 12, 27)
    days = [start + dt.timedelta(days=i) for i in range(10)]
    holds: list[str] = []
    posted: list[str] = []
    n = 0
    for i, day in enumerate(days):
        if i % 3 != 2:
            with at(day, 1):
                snapshots.build()
                db.session.commit()
        for _ in range(rng.randint(1, 4)):
            n += 1
            # Sometimes back-dated (effective days ago), late in the day (23:30 Beijing is
            # still that day), or a hold to resolve later.
            eff = day - dt.timedelta(days=rng.choice([0, 0, 1, 3]))
            hour = rng.choice([9, 23])
            with at(day, hour):
                kind = rng.random()
                if kind < 0.3:
                    holds.append(post(f"h{n}", eff, rng.randint(10, 90), flags=T_PENDING))
                elif kind < 0.5 and holds:
                    h = holds.pop(rng.randrange(len(holds)))
                    if rng.random() < 0.5:
                        post(
                            f"p{n}",
                            eff,
                            rng.randint(1, 10),
                            flags=T_POST_PENDING,
                            pending_id=h,
                            debit=None,
                            credit=None,
                        )
                    else:
                        post(f"v{n}", eff, None, flags=T_VOID_PENDING, pending_id=h, debit=None, credit=None)
                elif kind < 0.6 and posted:
                    orig = posted.pop(rng.randrange(len(posted)))
                    post(
                        f"r{n}",
                        eff,
                        None,
                        may_refuse=True,
                        reverses_id=orig,
                        debit=None,
                        credit=None,
                        code="reversal",
                        memo="代学",
                    )
                else:
                    posted.append(post(f"c{n}", eff, rng.randint(1, 300)))
        if day == dt.date(2026, 12, 31):
            with at(day, 22):
                carry = L.counted("WL_XS", USER, 2026)
                post(
                    "carry",
                    day,
                    50,
                    may_refuse=True,
                    code="carry_forward",
                    debit=carry,
                    credit=L.counted("WL_XS", USER, 2027),
                )
    return days


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_as_of_figures_from_snapshots_equal_the_journal_fold(app: Flask, seed: int) -> None:
    days = scripted_days(random.Random(seed))
    with at(days[-1] + dt.timedelta(days=1), 2):
        assert snapshots.build() > 0
        db.session.commit()
        assert snapshots.built_through() == days[-1]
        for d in [days[0] - dt.timedelta(days=5), *days, days[-1] + dt.timedelta(days=1)]:
            assert queries.figures_as_of(USER, d) == queries.figures_from_journal(USER, d), d
        checked, problems = snapshots.check()
        assert checked > 0 and problems == []
    # With the snapshots built only part of the way, the lines since are added from the journal.
    with at(days[-1] + dt.timedelta(days=3), 2):
        for d in days[-3:]:
            assert queries.figures(USER, d) == queries.figures_from_journal(USER, d)


def test_a_built_day_is_only_a_past_one(app: Flask) -> None:
    day = dt.date(2026, 6, 1)
    with at(day, 10):
        post("a", day, 100)
        assert snapshots.build(day) == 0  # today is not built: at most yesterday
        assert snapshots.built_through() == day - dt.timedelta(days=1)
        # A late line of yesterday (effective yesterday, recorded today) is visible today only.
        post("b", day - dt.timedelta(days=1), 40)
    with at(day + dt.timedelta(days=1), 1):
        assert snapshots.build() == 2  # the cadre's account and the issuer's, on 2026-06-01
        db.session.commit()
        assert queries.year_summary(USER, 2026, day - dt.timedelta(days=1))["posted"] == 0
        assert queries.year_summary(USER, 2026, day)["posted"] == 140
        assert snapshots.build() == 0  # nothing more to build


def test_replay_finds_a_snapshot_the_journal_does_not_give(app: Flask) -> None:
    day = dt.date(2026, 6, 1)
    with at(day, 10):
        post("a", day, 100)
    with at(day + dt.timedelta(days=2), 1):
        snapshots.build()
        db.session.commit()
        lines: list[str] = []
        assert replay.run_checks(lines.append) == 0, lines
        acct = db.session.execute(text("SELECT id FROM credit_accounts WHERE kind = 'counted'")).scalar_one()
        db.session.execute(
            text(
                "INSERT INTO credit_balance_days (account_id, day, debits_posted, credits_posted, debits_pending, "
                "credits_pending, closed_out) VALUES (:a, :d, 0, 999, 0, 0, 0)"
            ),
            {"a": acct, "d": day + dt.timedelta(days=1)},
        )
        db.session.commit()
        lines = []
        assert replay.run_checks(lines.append) == 1
        assert any("MISMATCH snapshot" in line for line in lines), lines
        # ... and the as-of figures show what the (tampered) snapshot says: the check is the guard.
        assert queries.figures(USER, day + dt.timedelta(days=1))[("WL_XS", 2026)].posted == 999


@pytest.mark.parametrize(
    "sql", ["UPDATE credit_balance_days SET credits_posted = 1", "DELETE FROM credit_balance_days"]
)
def test_snapshots_are_append_only(app: Flask, sql: str) -> None:
    day = dt.date(2026, 6, 1)
    with at(day, 10):
        post("a", day, 100)
    with at(day + dt.timedelta(days=1), 1):
        snapshots.build()
        db.session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text(sql))
        db.session.flush()
    db.session.rollback()
