"""The plugin's skeleton: it loads by entry point, its tables exist, evidence is append-only,
and policies are versioned data."""

from __future__ import annotations

import datetime as dt

import pytest
from flask_babel import force_locale
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from lms_core.enrolments import services as enrolments
from lms_core.extensions import db
from lms_core.learning import services as learning
from lms_core.learning.models import LearningInterval
from plugins.anti_idle import policy
from plugins.anti_idle.events import EVENT_NAMES
from plugins.anti_idle.models import Beat, Review
from tests.factories import UserFactory

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])
T0 = dt.datetime(2026, 5, 10, 1, 0, tzinfo=dt.UTC)


@pytest.fixture
def session(kit, tree):
    user = UserFactory(org_unit=tree.village_a)
    enrolments.enrol(user, kit.course)
    s = learning.start_session(user, kit.video, learning.enrolment_for(user, kit.course.id))
    db.session.commit()
    return s


def _beat(session) -> Beat:
    return Beat(
        user_id=session.user_id,
        session_id=session.id,
        lesson_id=session.lesson_id,
        seq=1,
        lesson_kind="video",
        event="heartbeat",
        received_at=T0,
        wall_start=T0,
        launched_at=T0,
        claimed=[[0, 10_000]],
    )


def test_plugin_loads_by_entry_point_with_its_tables_and_catalogue(app):
    assert "anti_idle" in app.extensions["lms_plugins"].list_name_plugin()[0]
    tables = set(db.inspect(db.engine).get_table_names())
    assert {
        "anti_idle_beats",
        "anti_idle_policies",
        "anti_idle_checks",
        "anti_idle_day_verdicts",
        "anti_idle_evidence",
        "anti_idle_appeals",
        "anti_idle_reviews",
        "anti_idle_day_lessons",
    } <= tables
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert str(EVENT_NAMES["anti_idle.day_assessed"]) == "学习日核定（防挂机）"


@pytest.mark.parametrize("statement", ["UPDATE {t} SET seq = 5", "DELETE FROM {t}"])
def test_raw_beats_are_append_only_at_the_database(session, statement):
    db.session.add(_beat(session))
    db.session.commit()
    with pytest.raises(DatabaseError, match="append-only"):
        db.session.execute(text(statement.format(t="anti_idle_beats")))
        db.session.flush()
    db.session.rollback()
    assert db.session.query(Beat).one().seq == 1


def test_reviews_are_append_only_at_the_database(session, kit):
    from plugins.anti_idle.models import DayVerdict

    verdict = DayVerdict(user_id=session.user_id, day=dt.date(2026, 5, 10), verdict="held")
    db.session.add(verdict)
    db.session.flush()
    db.session.add(
        Review(
            day_verdict_id=verdict.id,
            user_id=session.user_id,
            day=verdict.day,
            reviewer_id=kit.author.id,
            decision="post",
            seconds=60,
            reason="核实",
        )
    )
    db.session.commit()
    for statement in ("UPDATE anti_idle_reviews SET decision = 'void'", "DELETE FROM anti_idle_reviews"):
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
    assert db.session.query(Review).one().decision == "post"


@pytest.mark.parametrize(
    "statement", ["UPDATE learning_intervals SET credited_ms = 999999", "DELETE FROM learning_intervals"]
)
def test_the_core_ledger_is_append_only_at_the_database(session, statement):
    db.session.add(
        LearningInterval(
            session_id=session.id,
            user_id=session.user_id,
            lesson_id=session.lesson_id,
            seq=1,
            wall_start=T0,
            wall_end=T0,
            credited_ms=10_000,
        )
    )
    db.session.commit()
    with pytest.raises(DatabaseError, match="append-only"):
        db.session.execute(text(statement))
    db.session.rollback()
    assert db.session.query(LearningInterval).one().credited_ms == 10_000


def test_policy_versions_defaults_site_and_course_override(kit):
    assert policy.current_policy(kit.course.id).version == 0
    assert policy.current_policy(kit.course.id)["hidden_grace_seconds"] == 60
    site = policy.new_version({"hidden_grace_seconds": 90}, actor=kit.author, note="试行")
    course = policy.new_version({"check_min_gap_seconds": 30, "check_max_gap_seconds": 30}, course_id=kit.course.id)
    db.session.commit()
    assert policy.current_policy(None).version == site.version
    in_force = policy.current_policy(kit.course.id)
    assert in_force.version == course.version != site.version
    # the override is a complete set: it kept the site's grace of the day
    assert in_force["hidden_grace_seconds"] == 90 and in_force["check_max_gap_seconds"] == 30
    policy.new_version({"hidden_grace_seconds": 10})
    db.session.commit()
    assert policy.policy_by_version(site.version)["hidden_grace_seconds"] == 90  # old versions never change


@pytest.mark.parametrize(
    "changes",
    [
        {"nope": 1},
        {"hidden_grace_seconds": -1},
        {"hidden_grace_seconds": True},
        {"allowed_rates": []},
        {"allowed_rates": [1e308]},
        {"lesson_cap_ratio": "2"},
        {"check_min_gap_seconds": 900, "check_max_gap_seconds": 60},
    ],
)
def test_bad_policy_values_are_refused(app, changes):
    with pytest.raises(ValueError):
        policy.validate(changes)
