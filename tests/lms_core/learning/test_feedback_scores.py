"""course_feedback_scores: the courses with the worst feedback, scoped and by period."""

from __future__ import annotations

import datetime as dt

import time_machine

from lms_core.accounts.models import Role
from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.learning import feedback
from tests.factories import UserFactory, grant
from tests.lms_core.learning.fixtures import build_course

YEAR = (dt.date(2026, 1, 1), dt.date(2027, 1, 1))


def _rate(kit, tree, name, rating, when):
    user = UserFactory(org_unit=tree.village_a, username=name)
    enrolment = enrolments.enrol(user, kit.course)
    with time_machine.travel(when, tick=False):
        feedback.submit_feedback(user, kit.survey, enrolment, rating, "")
    db.session.commit()


def _two_courses(tree):
    good, bad = build_course(tree, code="C001"), build_course(tree, code="C00F")
    good.course.owner_unit = tree.county_a
    bad.course.owner_unit = tree.county_b
    bad.course.title = "较差的课"
    db.session.commit()
    return good, bad


def test_worst_first_scoped_to_the_viewers_units(app, tree):
    good, bad = _two_courses(tree)
    when = dt.datetime(2026, 6, 1, 2, 0, tzinfo=dt.UTC)
    for n, rating in enumerate([5, 4]):
        _rate(good, tree, f"g{n}", rating, when)
    for n, rating in enumerate([2, 1, 3]):
        _rate(bad, tree, f"b{n}", rating, when)

    site = UserFactory(username="site")
    grant(site, Role.SITE_ADMIN, tree.city)
    rows = feedback.course_feedback_scores(site, *YEAR)
    assert [(r.code, r.responses, r.ratings, r.mean, r.unit) for r in rows] == [
        ("C00F", 3, 3, 2.0, "青山县"),
        ("C001", 2, 2, 4.5, "南岭县"),
    ]
    assert [r.code for r in feedback.course_feedback_scores(site, *YEAR, limit=1)] == ["C00F"]
    assert [r.code for r in feedback.course_feedback_scores(site, *YEAR, min_responses=3)] == ["C00F"]
    assert [r.code for r in feedback.course_feedback_scores(site, *YEAR, root=tree.county_a)] == ["C001"]

    county_admin = UserFactory(username="nanling_admin", org_unit=tree.county_a)
    grant(county_admin, Role.ORG_ADMIN, tree.county_a)
    assert [r.code for r in feedback.course_feedback_scores(county_admin, *YEAR)] == ["C001"]
    # A learner holds no reports.view: nothing, rather than everything.
    learner = UserFactory(username="plain", org_unit=tree.county_a)
    assert feedback.course_feedback_scores(learner, *YEAR) == []


def test_period_is_beijing_days_end_exclusive(app, tree):
    good, _bad = _two_courses(tree)
    site = UserFactory(username="site")
    grant(site, Role.SITE_ADMIN, tree.city)
    # 2026-12-31 16:30 UTC is 2027-01-01 00:30 in Beijing: next year's answer.
    _rate(good, tree, "late", 1, dt.datetime(2026, 12, 31, 16, 30, tzinfo=dt.UTC))
    _rate(good, tree, "early", 5, dt.datetime(2025, 12, 31, 16, 30, tzinfo=dt.UTC))
    (row,) = feedback.course_feedback_scores(site, *YEAR)
    assert (row.responses, row.mean) == (1, 5.0)
    (row,) = feedback.course_feedback_scores(site, dt.date(2027, 1, 1), dt.date(2027, 2, 1))
    assert (row.responses, row.mean) == (1, 1.0)
    assert feedback.course_feedback_scores(site, dt.date(2024, 1, 1), dt.date(2025, 1, 1)) == []
