"""The hours rollup (lms_core/reports/monthly.py): equal to its source, stamped, rebuilt when old."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, case, cast, delete, func, select

from lms_core.accounts.models import RankBand, Role, User
from lms_core.authz import scope_condition
from lms_core.db import utcnow
from lms_core.extensions import db
from lms_core.jobs.models import Job, JobStatus
from lms_core.learning.models import DailyTotal
from lms_core.orgs.models import OrgUnit
from lms_core.reports import monthly, queries
from lms_core.reports.models import Rollup, UnitMonth, UnitYear
from tests.conftest import login
from tests.factories import UserFactory, grant

BANDS = list(RankBand)


def from_source() -> dict[tuple[int, dt.date, str], tuple[int, int]]:
    """The rollup recomputed in Python from the daily totals and each person's current unit and band."""
    people = {u.id: (u.org_unit_id, RankBand(u.rank_band).value) for u in db.session.scalars(select(User))}
    ms: dict[tuple[int, dt.date, str], int] = defaultdict(int)
    who: dict[tuple[int, dt.date, str], set[int]] = defaultdict(set)
    for total in db.session.scalars(select(DailyTotal)):
        unit, band = people[total.user_id]
        key = (unit, total.day.replace(day=1), band)
        ms[key] += total.credited_ms
        who[key].add(total.user_id)
    return {k: (ms[k], len(who[k])) for k in ms}


def in_rollup() -> dict[tuple[int, dt.date, str], tuple[int, int]]:
    return {
        (r.org_unit_id, r.month, RankBand(r.rank_band).value): (r.credited_ms, r.learners)
        for r in db.session.scalars(select(UnitMonth))
    }


@pytest.fixture
def people(app, tree):
    units = [tree.city, tree.county_a, tree.town_a, tree.village_a, tree.town_b]
    rng = random.Random(12)
    users = [
        UserFactory(username=f"p{i}", org_unit=units[i % len(units)], rank_band=BANDS[i % len(BANDS)])
        for i in range(12)
    ]
    db.session.flush()
    for user in users:
        for day in rng.sample(range(0, 400), 9):  # some in 2025, most in 2026, across month ends
            db.session.add(
                DailyTotal(
                    user_id=user.id,
                    day=dt.date(2025, 12, 1) + dt.timedelta(days=day),
                    credited_ms=rng.randrange(0, 4 * 3_600_000),
                )
            )
    db.session.commit()
    return users


def test_rollup_equals_the_recomputation_from_the_daily_totals(app, people, tree):
    state = monthly.refresh()
    db.session.commit()
    expected = from_source()
    assert len(expected) > 20  # several units, bands and months, not a trivial case
    assert in_rollup() == expected
    assert state.rows == len(expected) and monthly.refreshed_at() == state.refreshed_at


def test_a_person_moving_unit_takes_their_months_along_at_the_next_refresh(app, people, tree):
    monthly.refresh()
    db.session.commit()
    mover = people[0]
    before = in_rollup()
    mover.org_unit_id, mover.rank_band = tree.county_b.id, RankBand.TOWNSHIP
    db.session.add(DailyTotal(user_id=mover.id, day=dt.date(2026, 12, 31), credited_ms=1234))
    db.session.commit()
    assert in_rollup() == before  # a snapshot: unchanged until rebuilt
    monthly.refresh()
    db.session.commit()
    after = in_rollup()
    assert after == from_source() and after != before
    assert any(unit == tree.county_b.id for unit, _m, _b in after)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 5),  # person
            st.dates(dt.date(2025, 11, 1), dt.date(2027, 2, 28)),
            st.integers(0, 10**10),  # ms: beyond 32 bits once summed
        ),
        max_size=40,
        unique_by=lambda r: (r[0], r[1]),
    )
)
def test_property_rollup_equals_source(app, tree, rows):
    units = [tree.city, tree.county_a, tree.village_a]
    existing = {u.username: u for u in db.session.scalars(select(User).where(User.username.like("h%")))}
    users = [
        existing.get(f"h{i}") or UserFactory(username=f"h{i}", org_unit=units[i % 3], rank_band=BANDS[i % 3])
        for i in range(6)
    ]
    db.session.flush()
    db.session.execute(delete(DailyTotal))
    for person, day, ms in rows:
        db.session.add(DailyTotal(user_id=users[person].id, day=day, credited_ms=ms))
    db.session.flush()
    monthly.refresh()
    assert in_rollup() == from_source()
    db.session.rollback()


def pivoted_per_page(report: queries.HoursReport) -> Any:
    """The hours report's statement before report_unit_years: the year's report_unit_months pivoted per page."""
    year = report.year
    per_month = [
        cast(func.sum(case((UnitMonth.month == dt.date(year, m, 1), UnitMonth.credited_ms), else_=0)), BigInteger)
        for m in range(1, 13)
    ]
    unit = (OrgUnit.id, OrgUnit.code, OrgUnit.name, OrgUnit.path)
    stmt = (
        select(*unit, *per_month)
        .join(OrgUnit, OrgUnit.id == UnitMonth.org_unit_id)
        .where(
            UnitMonth.month >= dt.date(year, 1, 1),
            UnitMonth.month < dt.date(year + 1, 1, 1),
            scope_condition(report.viewer, queries.CAPABILITY, OrgUnit.path),
        )
        .group_by(*unit)
    )
    if report.root is not None:
        stmt = stmt.where(OrgUnit.path.startswith(report.root.path, autoescape=True))
    return stmt


def test_the_hours_reports_rows_equal_the_old_per_page_pivot(app, people, tree):
    """report_unit_years gives the hours report the very figures the per-page pivot of report_unit_months gave."""
    city_admin = UserFactory(username="years_admin", org_unit=tree.city)
    grant(city_admin, Role.ORG_ADMIN, tree.city)
    county_admin = UserFactory(username="years_county", org_unit=tree.county_a)
    grant(county_admin, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    state = monthly.refresh()
    db.session.commit()
    assert db.session.get(Rollup, monthly.YEARS).refreshed_at == state.refreshed_at
    compared = 0
    for viewer, root in ((city_admin, None), (city_admin, tree.county_a), (county_admin, None)):
        for year in (2025, 2026, 2027):
            report = queries.HoursReport(viewer, year, root)
            new = sorted(tuple(row) for row in db.session.execute(report.statement()))
            old = sorted(tuple(row) for row in db.session.execute(pivoted_per_page(report)))
            assert new == old, (viewer.username, root, year)
            compared += len(new)
    assert compared > 10  # several units and both years with study, not an empty comparison
    # Every month of every unit-year, across both years: the pivot misses none.
    by_year = {
        (r.org_unit_id, r.year): [getattr(r, m) for m in UnitYear.MONTHS] for r in db.session.scalars(select(UnitYear))
    }
    months: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0] * 12)
    for r in db.session.scalars(select(UnitMonth)):
        months[(r.org_unit_id, r.month.year)][r.month.month - 1] += r.credited_ms
    assert by_year == dict(months)


@pytest.mark.app_config(LMS_REPORT_ROLLUP_MAX_AGE=600, LMS_INLINE_JOBS=False)
def test_an_old_rollup_is_shown_with_its_time_and_one_rebuild_is_queued(client, app, people, tree):
    admin = UserFactory(username="city_admin", org_unit=tree.city)
    grant(admin, Role.ORG_ADMIN, tree.city)
    monthly.refresh()
    db.session.get(Rollup, monthly.NAME).refreshed_at = dt.datetime(2026, 3, 1, 2, 5, tzinfo=dt.UTC)
    db.session.execute(delete(Job))
    db.session.commit()
    login(client, "city_admin")
    for path in ("/reports/dashboard?year=2026", "/reports/hours?year=2026", "/reports/dashboard?year=2026"):
        page = client.get(path).get_data(as_text=True)
        assert "报表数据截至 2026-03-01 10:05（北京时间）" in page, path
    queued = db.session.scalars(select(Job).where(Job.kind == monthly.REFRESH_JOB)).all()
    assert len(queued) == 1 and queued[0].status == JobStatus.QUEUED  # one rebuild waits, not one per page
    # A fresh rollup queues nothing.
    db.session.delete(queued[0])
    db.session.get(Rollup, monthly.NAME).refreshed_at = utcnow()
    db.session.commit()
    client.get("/reports/dashboard?year=2026")
    assert db.session.scalars(select(Job).where(Job.kind == monthly.REFRESH_JOB)).all() == []


@pytest.mark.parametrize(
    ("status", "queues"),
    [(JobStatus.QUEUED, False), (JobStatus.RUNNING, False), (JobStatus.DONE, True), (JobStatus.FAILED, True)],
)
def test_a_stale_rollup_queues_a_rebuild_unless_one_is_queued_or_running(app, status, queues):
    db.session.execute(delete(Job))
    db.session.add(Job(kind=monthly.REFRESH_JOB, status=status))
    db.session.add(Job(kind="other.kind", status=JobStatus.QUEUED))  # another kind waiting counts for nothing
    db.session.flush()
    monthly.keep_fresh(0)  # no rollup stamp yet: stale
    kept = db.session.scalars(select(Job.status).where(Job.kind == monthly.REFRESH_JOB)).all()
    assert sorted(kept) == sorted([status, JobStatus.QUEUED] if queues else [status])
    db.session.rollback()


def test_the_waiting_rebuild_is_found_through_the_partial_index(app, db_backend):
    connection = db.session.connection()
    statement = monthly.waiting_refresh().compile(connection)
    if db_backend == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")  # the test table is tiny
        plan = [row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", statement.params)]
    else:
        params = tuple(statement.params[name] for name in statement.positiontup or ())
        plan = [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)]
    assert any("ix_jobs_waiting_kind" in line for line in plan), plan
    db.session.rollback()


def test_cli_refresh_rebuilds(app, people):
    db.session.execute(delete(UnitMonth))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["lms", "report", "refresh"])
    assert result.exit_code == 0, result.output
    assert "rebuilt unit_months" in result.output
    assert in_rollup() == from_source()
