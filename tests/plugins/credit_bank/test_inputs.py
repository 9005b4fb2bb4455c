"""Completion events and anti-idle days become credit, idempotently, under the policy in force."""

from __future__ import annotations

import datetime as dt

import time_machine
from flask import Flask

from lms_core.events.services import dispatch, emit
from lms_core.extensions import db
from lms_core.jobs.services import commit
from plugins.credit_bank import policy as P
from plugins.credit_bank import queries
from tests.factories import UserFactory
from tests.plugins.credit_bank.helpers import completed

NOON = dt.datetime(2026, 5, 10, 4, tzinfo=dt.UTC)  # 12:00 in Beijing


def test_completed_course_posts_its_labelled_hours_once(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory(org_unit=tree.town_a)
    with time_machine.travel(NOON, tick=False):
        event = completed(user, nominal=200)
        assert queries.year_summary(user.id, 2026) == {"posted": 200, "pending": 0, "overflow": 0}
        # A replayed event (retried job, `flask lms events replay`) posts nothing more.
        dispatch(event.id)
        dispatch(event.id)
    assert queries.year_summary(user.id, 2026)["posted"] == 200
    (line,) = queries.statement(user.id, 2026)
    assert line.amount == 200 and line.balance == 200 and line.policy_version == 1 and line.code == "course_complete"


def test_effective_date_in_beijing_decides_the_year(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory(org_unit=tree.town_a)
    with time_machine.travel(dt.datetime(2025, 12, 31, 17, tzinfo=dt.UTC), tick=False):  # 01:00 on 1 Jan in Beijing
        completed(user, nominal=150)
    assert queries.year_summary(user.id, 2026)["posted"] == 150
    assert queries.year_summary(user.id, 2025)["posted"] == 0


def test_alternative_conversions_and_caps_record_their_policy_version(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory(org_unit=tree.town_a)
    P.add_version(
        {"online_course": {"kind": "fixed", "centi": 100}, "caps": {"WL_XS": {"per_day": 150}}},
        dt.date(2026, 1, 1),
        None,
    )
    with time_machine.travel(NOON, tick=False):
        completed(user, course_id=1, nominal=500)
        completed(user, course_id=2, nominal=500)
    fig = queries.figures(user.id)[("WL_XS", 2026)]
    # 1.00 + 1.00 earned, the day's cap is 1.50: 0.50 is recorded but not counted.
    assert (fig.posted, fig.overflow) == (150, 50)
    assert {ln.policy_version for ln in queries.statement(user.id, 2026)} == {2}
    assert queries.year_summary(user.id, 2026) == {"posted": 150, "pending": 0, "overflow": 50}


def test_per_item_cap_counts_each_item_up_to_the_cap_and_records_the_rest(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory(org_unit=tree.town_a)
    P.add_version({"caps": {"WL_XS": {"per_item": 150}}}, dt.date(2026, 1, 1), None)
    with time_machine.travel(NOON, tick=False):
        completed(user, course_id=1, nominal=500)  # 5.00 labelled: 1.50 counts, 3.50 overflows
        completed(user, course_id=2, nominal=100)  # under the cap: all of it counts
    fig = queries.figures(user.id)[("WL_XS", 2026)]
    assert (fig.posted, fig.overflow) == (250, 350)
    assert queries.year_summary(user.id, 2026) == {"posted": 250, "pending": 0, "overflow": 350}
    # Each capped posting names the policy version that capped it.
    assert {ln.policy_version for ln in queries.statement(user.id, 2026)} == {2}


def test_tiered_minutes_use_the_course_length(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    from tests.lms_core.learning.fixtures import build_course

    kit = build_course(tree)  # one required 100 s video: under 15 minutes
    user = UserFactory(org_unit=tree.town_a)
    P.add_version(
        {"online_course": {"kind": "tiered_minutes", "tiers": [[30, 100], [15, 50], [0, 25]]}},
        dt.date(2026, 1, 1),
        None,
    )
    with time_machine.travel(NOON, tick=False):
        completed(user, course_id=kit.course.id, nominal=200)
    assert queries.year_summary(user.id, 2026)["posted"] == 25


def _study_time_policy() -> None:
    P.add_version({"online_course": {"kind": "study_time", "minutes_per_hour": 45}}, dt.date(2026, 1, 1), None)


def test_anti_idle_held_day_is_pending_until_reviewed(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory(org_unit=tree.town_a)
    reviewer = UserFactory(org_unit=tree.city)
    _study_time_policy()
    with time_machine.travel(NOON, tick=False):
        emit(
            "anti_idle.day_assessed",
            payload={
                "user_id": user.id,
                "day": "2026-05-10",
                "verdict": "held",
                "credited_seconds": 2700,
                "held_seconds": 5400,
                "deducted_seconds": 0,
                "policy_version": 1,
                "review_score": 0.4,
            },
        )
        commit()
        assert queries.year_summary(user.id, 2026) == {"posted": 100, "pending": 200, "overflow": 0}
        emit(
            "anti_idle.day_reviewed",
            payload={
                "user_id": user.id,
                "day": "2026-05-10",
                "decision": "post",
                "seconds": 2700,
                "reviewer_id": reviewer.id,
                "reason": "核实",
            },
        )
        commit()
    # 45 of the 90 held minutes posted; the rest released.
    assert queries.year_summary(user.id, 2026) == {"posted": 200, "pending": 0, "overflow": 0}


def test_anti_idle_void_releases_the_hold(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory(org_unit=tree.town_a)
    _study_time_policy()
    with time_machine.travel(NOON, tick=False):
        emit(
            "anti_idle.day_assessed",
            payload={
                "user_id": user.id,
                "day": "2026-05-10",
                "verdict": "held",
                "credited_seconds": 0,
                "held_seconds": 5400,
            },
        )
        emit(
            "anti_idle.day_reviewed",
            payload={
                "user_id": user.id,
                "day": "2026-05-10",
                "decision": "void",
                "seconds": 0,
                "reviewer_id": None,
                "reason": "挂机",
            },
        )
        commit()
    assert queries.year_summary(user.id, 2026) == {"posted": 0, "pending": 0, "overflow": 0}
    (line,) = queries.statement(user.id, 2026)
    assert line.status == "voided"


def test_without_anti_idle_credited_study_time_is_posted(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    from lms_core.learning.models import DailyTotal

    user = UserFactory(org_unit=tree.town_a)
    _study_time_policy()
    db.session.add(DailyTotal(user_id=user.id, day=dt.date(2026, 5, 10), credited_ms=2_700_000))
    with time_machine.travel(NOON, tick=False):
        emit("study.interval_credited", actor=user, payload={"lesson_id": 1, "seconds": 2700})
        commit()
        emit("study.interval_credited", actor=user, payload={"lesson_id": 1, "seconds": 0})  # nothing new
        commit()
    assert queries.year_summary(user.id, 2026)["posted"] == 100


def test_malformed_anti_idle_payloads_are_ignored(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    _study_time_policy()
    for payload in ({}, {"user_id": "x", "day": "2026-05-10"}, {"user_id": 1, "day": "not a day"}):
        emit("anti_idle.day_assessed", payload=payload)
        emit("anti_idle.day_reviewed", payload=payload)
    commit()
    from lms_core.events.models import EventHandlerFailure

    assert db.session.query(EventHandlerFailure).count() == 0


def test_party_members_owe_32_and_branch_secretaries_56_instead(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    from tests.plugins.credit_bank.helpers import grant_credit

    plain = UserFactory(org_unit=tree.town_a, party_member=False)
    member = UserFactory(org_unit=tree.town_a, party_member=True, position="科员")
    secretary = UserFactory(org_unit=tree.town_a, party_member=True, position="村党支部书记")
    db.session.commit()
    grant_credit(secretary.id, 4000, "dy-sec", day=dt.date(2026, 3, 1), ledger="DY_XS")
    with time_machine.travel(NOON, tick=False):
        owed = {u: {p.key: p for p in queries.progress(u, 2026)} for u in (plain, member, secretary)}
    assert "party_member" not in owed[plain] and "party_secretary" not in owed[plain]
    assert owed[member]["party_member"].required == 3200 and "party_secretary" not in owed[member]
    # The secretary's 56 supersedes the members' 32; 党员学习学时 count toward it.
    assert "party_member" not in owed[secretary]
    sec = owed[secretary]["party_secretary"]
    assert (sec.required, sec.earned, sec.ledgers) == (5600, 4000, ["DY_XS"])
