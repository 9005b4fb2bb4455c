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


def _tick(moment: dt.datetime) -> None:
    """A domain event dispatched at ``moment`` (its handler runs inline after the commit)."""
    from lms_core.events.services import emit
    from lms_core.jobs.services import commit

    with time_machine.travel(moment, tick=False):
        emit("test.tick", payload={})
        commit()


def _builds() -> list[str]:
    from lms_core.jobs.models import Job

    return [j.kind for j in db.session.execute(db.select(Job).where(Job.kind == snapshots.JOB)).scalars()]


def test_the_first_event_after_a_day_ends_builds_it_without_a_scheduler(app: Flask) -> None:
    day = dt.date(2026, 6, 1)
    bj = dt.timezone(dt.timedelta(hours=8))
    with at(day, 10):
        post("a", day, 100)
    midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), bj)
    # Two minutes after midnight the day has not settled: the build stops the day before.
    _tick(midnight + dt.timedelta(minutes=2))
    assert snapshots.built_through() == day - dt.timedelta(days=1)
    _tick(midnight + dt.timedelta(minutes=3))
    assert len(_builds()) == 1  # one request per settled day and process
    _tick(midnight + dt.timedelta(minutes=10))
    assert snapshots.built_through() == day
    _tick(midnight + dt.timedelta(hours=5))
    assert len(_builds()) == 2
    with time_machine.travel(midnight + dt.timedelta(hours=6), tick=False):
        assert queries.figures(USER, day) == queries.figures_from_journal(USER, day)
        assert queries.figures(USER, day)[("WL_XS", 2026)].posted == 100
        fresh = snapshots.freshness()
        assert fresh.through == day and fresh.behind_days == 0 and fresh.rows == 2


def test_a_stale_snapshot_never_gives_a_wrong_figure(app: Flask) -> None:
    """Built once, then weeks of postings (late, back-dated, holds resolved) with no build:
    every date's figures still equal the journal's, from the old snapshot plus the lines after."""
    rng = random.Random(5)
    first = dt.date(2026, 3, 1)
    with at(first, 10):
        post("first", first, 80)
        hold = post("hold", first, 30, flags=T_PENDING)
    with at(first + dt.timedelta(days=1), 2):
        snapshots.build()
        db.session.commit()
    days = [first + dt.timedelta(days=i) for i in range(1, 30)]
    for i, day in enumerate(days):
        with at(day, rng.choice([9, 23])):
            post(f"x{i}", day - dt.timedelta(days=rng.choice([0, 0, 2, 20])), rng.randint(1, 200))
            if i == 10:
                post("posthold", day, 20, flags=T_POST_PENDING, pending_id=hold, debit=None, credit=None)
    with at(days[-1] + dt.timedelta(days=2), 12):
        assert snapshots.built_through() == first
        for d in [first, *days, days[-1] + dt.timedelta(days=1), days[-1] + dt.timedelta(days=40)]:
            assert queries.figures(USER, d) == queries.figures_from_journal(USER, d), d


@pytest.mark.backends("postgresql")
def test_an_open_writing_transaction_holds_the_build_of_its_day_back(app: Flask) -> None:
    """A transaction still open may yet commit lines recorded on the days it spans: those days
    wait (PostgreSQL's clock, as pg_stat_activity sees the transaction start)."""
    real_today = snapshots.local_date(dt.datetime.now(dt.UTC))
    with db.engine.connect() as other:
        other.execute(text("SELECT txid_current()"))  # a writing transaction (it has an xid)
        with at(real_today + dt.timedelta(days=3), 12):
            snapshots.build()
            db.session.commit()
            held = snapshots.built_through()
            assert held is not None and held <= real_today - dt.timedelta(days=1)
        other.rollback()
    with at(real_today + dt.timedelta(days=3), 12):
        snapshots.build()
        db.session.commit()
        assert snapshots.built_through() == real_today + dt.timedelta(days=2)


def test_admin_status_shows_how_far_the_snapshots_go(app: Flask, client: object) -> None:
    from lms_core.accounts.models import Role
    from tests.conftest import login
    from tests.factories import OrgUnitFactory, UserFactory, grant

    unit = OrgUnitFactory()
    root = UserFactory(username="root", org_unit=unit)
    grant(root, Role.SITE_ADMIN, unit)
    db.session.commit()
    day = dt.date(2026, 6, 1)

    def card() -> str:
        login(client, "root")  # each time under its clock (a session from another day is over)
        r = client.get("/admin/status")  # type: ignore[attr-defined]
        html = r.get_data(as_text=True)
        assert r.status_code == 200, (r.status_code, r.headers.get("Location"))
        return html.split('id="status-credit-snapshots"', 1)[1].split("</section>", 1)[0]

    with at(day, 10):
        post("a", day, 100)
        assert "尚未生成" in snapshot_card()
        # Signing in is an event: it queued the build of yesterday, run inline after its commit.
        assert "已生成至 2026年5月31日" in card() and "已是最新" in card()
    app.config["LMS_INLINE_JOBS"] = False  # no worker: the jobs queued are not run
    _tick(dt.datetime(2026, 6, 5, 1, tzinfo=dt.UTC))
    with at(day + dt.timedelta(days=4), 12):
        assert "落后 4 天" in card() and "flask lms worker" in card()
    app.config["LMS_INLINE_JOBS"] = True
    _tick(dt.datetime(2026, 6, 6, 1, tzinfo=dt.UTC))
    with at(day + dt.timedelta(days=5), 12):
        html = card()
        assert "已生成至 2026年6月5日" in html and "（生成于 2026年6月6日 09:00:00，2 行）" in html


def snapshot_card() -> str:
    from flask import render_template

    with current_app_request():
        return render_template("credit_bank/_status.html", snapshots=snapshots.freshness())


def current_app_request() -> object:
    from flask import current_app

    return current_app.test_request_context("/admin/status")


def _statements() -> list[str]:
    from sqlalchemy import event

    seen: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_balance_and_progress_are_one_statement_and_equal_the_fold_after_a_year_end_close(app: Flask) -> None:
    """A closed account's year-end moves come from its snapshot once one has its final posted
    debits (one statement); before that build, from the journal. Both equal the fold."""
    from plugins.credit_bank import policy as P
    from plugins.credit_bank import services as S

    with at(dt.date(2025, 3, 1), 10):
        P.add_version({"year_end": {"mode": "carry_forward", "carry_cap_centi": 1000}}, dt.date(2025, 1, 1), None)
        post("a", dt.date(2025, 3, 1), 3000, credit=L.counted("WL_XS", USER, 2025))
        db.session.commit()
    with at(dt.date(2025, 12, 31), 20):
        assert S.close_year(2025) == {"accounts": 1, "carried": 1000, "expired": 2000}
    with at(dt.date(2026, 1, 5), 10):
        person = type("P", (), {"id": USER, "rank_band": "township", "party_member": False, "position": ""})()
        seen = _statements()
        before = queries.read(USER, policy_on=dt.date(2025, 12, 31))
        assert len(seen) == 2  # the close lines from the journal: no snapshot has them yet
        assert before.figures == {k: v for k, v in queries.figures_from_journal(USER).items() if k in before.figures}
        snapshots.build()
        db.session.commit()
        seen.clear()
        reading = queries.read(USER, policy_on=dt.date(2025, 12, 31))
        summary = queries.year_summary(USER, 2025, fig=reading.figures)
        progress = queries.progress(person, 2025, reading=reading)
        assert len(seen) == 2, seen  # and the version's rules, read once per process
        assert reading.figures == before.figures
        assert reading.figures[("WL_XS", 2025)].closed_out == 3000 and summary["posted"] == 3000
        assert {p.key: p.earned for p in progress}["annual_township"] == 3000
        # The policy's rules are validated once per version: a second answer reads nothing more.
        seen.clear()
        queries.progress(person, 2025, reading=queries.read(USER, policy_on=dt.date(2025, 12, 31)))
        assert len(seen) == 1


def test_a_hold_dated_ahead_and_voided_before_it_shows_folds_like_the_journal(app: Flask) -> None:
    """A hold effective in five days, voided tomorrow: the void is visible before its hold. The
    lines read after the last built day include that old void once its hold becomes visible."""
    day = dt.date(2026, 6, 1)
    with at(day, 10):
        post("base", day, 100)
        hold = post("ahead", day + dt.timedelta(days=5), 50, flags=T_PENDING)
    with at(day + dt.timedelta(days=1), 10):
        post("void", day + dt.timedelta(days=1), None, flags=T_VOID_PENDING, pending_id=hold, debit=None, credit=None)
    with at(day + dt.timedelta(days=2), 10):
        snapshots.build()
        db.session.commit()
        assert snapshots.built_through() == day + dt.timedelta(days=1)
    with at(day + dt.timedelta(days=9), 10):
        for d in [day + dt.timedelta(days=i) for i in range(9)]:
            assert queries.figures(USER, d) == queries.figures_from_journal(USER, d), d
        assert queries.figures(USER, day + dt.timedelta(days=6))[("WL_XS", 2026)].pending == 0
