"""The head-count and enrolment rollups (lms_core/reports/figures.py): equal to their sources summed up the tree."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from lms_core.accounts.models import RankBand, User, UserStatus
from lms_core.courses.models import Course
from lms_core.enrolments.models import Enrolment
from lms_core.extensions import db
from lms_core.i18n import SHANGHAI
from lms_core.learning.services import new_registration
from lms_core.reports import figures, monthly
from lms_core.reports.models import Rollup, SubtreeEnrolments, SubtreeHeads
from tests.factories import UserFactory

BANDS = list(RankBand)


def up_the_tree(unit_id: int) -> list[int]:
    """A unit and every unit above it, walked by parent links (not read from the paths the rebuild reads)."""
    from lms_core.orgs.models import OrgUnit

    parent = {uid: up for uid, up in db.session.execute(select(OrgUnit.id, OrgUnit.parent_id))}
    chain: list[int] = []
    at: int | None = unit_id
    while at is not None:
        chain.append(at)
        at = parent[at]
    return chain


def heads_from_source() -> dict[int, int]:
    """Active people at or under each unit, counted person by person."""
    counts: dict[int, int] = defaultdict(int)
    for user in db.session.scalars(select(User).where(User.status == UserStatus.ACTIVE)):
        for unit in up_the_tree(user.org_unit_id):
            counts[unit] += 1
    return dict(counts)


def heads_in_rollup() -> dict[int, int]:
    return {r.unit_id: r.active for r in db.session.scalars(select(SubtreeHeads))}


def enrolments_from_source() -> dict[tuple[int, int], tuple[int, int]]:
    """Recomputed in Python: each enrolment under its person's current unit and every unit above, by Beijing year."""
    people = {u.id: u.org_unit_id for u in db.session.scalars(select(User))}
    sums: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for e in db.session.scalars(select(Enrolment)):
        for unit in up_the_tree(people[e.user_id]):
            acc = sums[(unit, e.enrolled_at.astimezone(SHANGHAI).year)]
            acc[0] += 1
            acc[1] += e.completed_at is not None
    return {k: (v[0], v[1]) for k, v in sums.items()}


def enrolments_in_rollup() -> dict[tuple[int, int], tuple[int, int]]:
    return {(r.unit_id, r.year): (r.enrolments, r.completed) for r in db.session.scalars(select(SubtreeEnrolments))}


def _courses(tree, n: int) -> list[Course]:
    found = list(db.session.scalars(select(Course).where(Course.code.like("FIG%")).order_by(Course.code)))
    for i in range(len(found), n):
        found.append(Course(code=f"FIG{i:02d}", title=f"课程{i}", owner_unit_id=tree.city.id))
        db.session.add(found[-1])
    db.session.flush()
    return found


@pytest.fixture
def people(app, tree):
    units = [tree.city, tree.county_a, tree.town_a, tree.village_a, tree.town_b]
    users = [
        UserFactory(
            username=f"f{i}",
            org_unit=units[i % len(units)],
            rank_band=BANDS[i % len(BANDS)],
            status=UserStatus.DISABLED if i % 7 == 3 else UserStatus.ACTIVE,
        )
        for i in range(15)
    ]
    courses = _courses(tree, 4)
    rng = random.Random(5)
    # Enrolment times around the Beijing new year: 2025-12-31 16:00 UTC is 2026-01-01 00:00 there.
    new_year = dt.datetime(2025, 12, 31, 16, tzinfo=dt.UTC)
    for user in users:
        for course in rng.sample(courses, 3):
            at = new_year + dt.timedelta(minutes=rng.randrange(-600, 600))
            done = at + dt.timedelta(days=3) if rng.random() < 0.5 else None
            db.session.add(
                Enrolment(
                    user_id=user.id,
                    course_id=course.id,
                    registration=new_registration(),
                    enrolled_at=at,
                    completed_at=done,
                )
            )
    db.session.commit()
    return users


def test_rollups_equal_the_recomputation(app, people):
    monthly.refresh()
    db.session.commit()
    heads, enrolments = heads_from_source(), enrolments_from_source()
    assert len(heads) > 4 and len(enrolments) > 8  # several units and both years
    assert {year for _u, year in enrolments} == {2025, 2026}  # the Beijing new year splits them
    assert heads_in_rollup() == heads
    assert enrolments_in_rollup() == enrolments
    rows = {r.name: r.rows for r in db.session.scalars(select(Rollup))}
    assert rows[figures.HEADS] == len(heads) and rows[figures.ENROLMENTS] == len(enrolments)


def test_a_snapshot_until_rebuilt(app, people, tree):
    monthly.refresh()
    db.session.commit()
    before = heads_in_rollup(), enrolments_in_rollup()
    mover = people[0]
    mover.org_unit_id = tree.county_b.id
    people[1].status = UserStatus.DISABLED
    db.session.commit()
    assert (heads_in_rollup(), enrolments_in_rollup()) == before
    monthly.refresh()
    db.session.commit()
    assert heads_in_rollup() == heads_from_source() != before[0]
    assert enrolments_in_rollup() == enrolments_from_source() != before[1]


def test_the_stamp_shown_is_none_until_every_rollup_was_built(app, people):
    state = monthly.refresh()
    db.session.commit()
    assert monthly.refreshed_at() == state.refreshed_at
    db.session.execute(delete(Rollup).where(Rollup.name == figures.ENROLMENTS))
    db.session.commit()
    assert monthly.refreshed_at() is None
    monthly.refresh()
    db.session.commit()
    older = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    db.session.get(Rollup, figures.HEADS).refreshed_at = older
    db.session.commit()
    assert monthly.refreshed_at() == older  # the oldest stamp is the one shown


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 5),  # person
            st.integers(0, 3),  # course
            # Hypothesis takes naive bounds; ``timezones`` makes the values aware UTC.
            st.datetimes(dt.datetime(2025, 12, 30), dt.datetime(2027, 1, 2), timezones=st.just(dt.UTC)),  # noqa: DTZ001
            st.booleans(),
        ),
        max_size=30,
        unique_by=lambda r: (r[0], r[1]),
    )
)
def test_property_enrolment_rollup_equals_source(app, tree, rows):
    units = [tree.city, tree.county_a, tree.village_a]
    existing = {u.username: u for u in db.session.scalars(select(User).where(User.username.like("g%")))}
    users = [
        existing.get(f"g{i}") or UserFactory(username=f"g{i}", org_unit=units[i % 3], rank_band=BANDS[i % 3])
        for i in range(6)
    ]
    courses = _courses(tree, 4)
    db.session.execute(delete(Enrolment))
    for person, course, at, done in rows:
        moment = at
        db.session.add(
            Enrolment(
                user_id=users[person].id,
                course_id=courses[course].id,
                registration=new_registration(),
                enrolled_at=moment,
                completed_at=moment if done else None,
            )
        )
    db.session.flush()
    monthly.refresh()
    assert enrolments_in_rollup() == enrolments_from_source()
    assert heads_in_rollup() == heads_from_source()
    db.session.rollback()


def test_the_closure_holds_each_unit_and_every_unit_above_it(app, people, tree):
    from lms_core.orgs.models import OrgUnit
    from lms_core.reports.models import UnitAncestor

    monthly.refresh()
    db.session.commit()
    parent = {u.id: u.parent_id for u in db.session.scalars(select(OrgUnit))}
    expected = set()
    for unit in parent:  # walked by parent links, not read from the paths the rebuild reads
        at: int | None = unit
        while at is not None:
            expected.add((unit, at))
            at = parent[at]
    assert len(expected) > len(parent)
    assert {(r.unit_id, r.ancestor_id) for r in db.session.scalars(select(UnitAncestor))} == expected
    assert db.session.get(Rollup, figures.ANCESTORS).rows == len(expected)


def test_subtree_months_equal_the_daily_totals_summed_up_the_tree(app, people, tree):
    from lms_core.learning.models import DailyTotal
    from lms_core.orgs.models import OrgUnit
    from lms_core.reports.models import SubtreeMonth

    rng = random.Random(3)
    for user in people:
        for day in rng.sample(range(0, 400), 6):
            db.session.add(
                DailyTotal(
                    user_id=user.id,
                    day=dt.date(2025, 12, 1) + dt.timedelta(days=day),
                    credited_ms=rng.randrange(1, 10**7),
                )
            )
    db.session.commit()
    monthly.refresh()
    db.session.commit()
    parent = {u.id: u.parent_id for u in db.session.scalars(select(OrgUnit))}
    unit_of = {u.id: u.org_unit_id for u in db.session.scalars(select(User))}
    ms: dict[tuple[int, dt.date], int] = defaultdict(int)
    who: dict[tuple[int, dt.date], set[int]] = defaultdict(set)
    for total in db.session.scalars(select(DailyTotal)):
        at: int | None = unit_of[total.user_id]
        while at is not None:  # the person's unit and every unit above it
            key = (at, total.day.replace(day=1))
            ms[key] += total.credited_ms
            who[key].add(total.user_id)
            at = parent[at]
    expected = {k: (ms[k], len(who[k])) for k in ms}
    assert len(expected) > 20
    got = {(r.unit_id, r.month): (r.credited_ms, r.learners) for r in db.session.scalars(select(SubtreeMonth))}
    assert got == expected
