"""The bulk recompute (``--all --since``) gives what the one-day recompute gives, day by day.

Learners with several days (one across Beijing midnight, so a session carries its
state into the next day, and refused beats on another), two tabs at once, a hidden tab, an unanswered and an
automated check, and a day with no delivered bytes. Every figure of every day, its
evidence lines and its per-lesson split are compared between
``recompute.recompute_since`` (chunks of people, plain rows, one pass per day) and
``verdicts.assess_day`` (one day, ORM rows, beat-by-beat ``els.assess``), with the
policy each beat recorded and with another policy version.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from lms_core.extensions import db
from plugins.anti_idle.models import DayLesson, DayVerdict, Evidence
from plugins.anti_idle.policy import new_version
from plugins.anti_idle.recompute import recompute_since
from plugins.anti_idle.verdicts import assess_day
from tests.lms_core.learning.fixtures import build_course
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0, S, make_learner, other_learner

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])
LATE = dt.datetime(2026, 5, 10, 15, 50, tzinfo=dt.UTC)  # 23:50 in Beijing


@pytest.fixture
def people(app, tree):
    first = make_learner(tree, build_course(tree))
    honest, multi, hidden, checked = (
        first,
        other_learner(tree, first, "王芳"),
        other_learner(tree, first, "刘洋"),
        other_learner(tree, first, "陈静"),
    )
    tab = honest.open(at=LATE, deliver=LECTURE_BYTES)
    honest.play(tab, LATE, 1200)  # across midnight: two days, one session
    later = honest.open(at=T0 + dt.timedelta(days=2), deliver=LECTURE_BYTES)
    at = honest.play(later, T0 + dt.timedelta(days=2), 300, from_pos=600)
    # Refused beats (learning_refused_beats) name themselves on their day: a retry and a replay.
    honest.beat(later, at + S, [[890, 900]], seq=later.seq)
    honest.beat(later, at + 2 * S, [[600, 610]], seq=1)

    a, b = multi.open(deliver=LECTURE_BYTES), multi.open(multi.short, deliver=1000)
    for i in range(1, 31):
        multi.beat(a, T0 + 10 * i * S, [[10 * (i - 1), 10 * i]])
        multi.beat(b, T0 + 10 * i * S + dt.timedelta(milliseconds=300), [[0, 10]], event="seeked")
    starved = multi.open(at=T0 + dt.timedelta(days=1))  # nothing delivered
    multi.play(starved, T0 + dt.timedelta(days=1), 120)

    tab = hidden.open(deliver=LECTURE_BYTES)
    at = hidden.play(tab, T0, 120)
    hidden.play(tab, at, 300, client={"visibility": "hidden"})

    tab = checked.open(deliver=LECTURE_BYTES)
    checked.issue_check(tab, T0 + 60 * S, window=30)
    at = checked.play(tab, T0, 300)
    late_check = checked.issue_check(tab, at + 10 * S, window=30)
    checked.answer(late_check, at + 12 * S, trusted=False, latency_ms=50)
    checked.play(tab, at, 200)
    return [honest, multi, hidden, checked]


def snapshot():
    db.session.expire_all()
    days = []
    for v in db.session.query(DayVerdict).order_by(DayVerdict.user_id, DayVerdict.day):
        lines = sorted(
            (e.rule, e.amount_ms, e.span_start, e.span_end, tuple(e.beat_ids), e.message, e.score)
            for e in db.session.query(Evidence).filter_by(day_verdict_id=v.id)
        )
        lessons = sorted(
            (d.lesson_id, d.claimed_ms, d.credited_ms, d.deducted_ms)
            for d in db.session.query(DayLesson).filter_by(day_verdict_id=v.id)
        )
        tally = {k: val for k, val in (v.tally or {}).items() if k != "published"}
        figures = (v.verdict, v.claimed_ms, v.credited_ms, v.held_ms, v.deducted_ms, v.void_ms, v.review_score)
        days.append(
            (
                v.user_id,
                v.day,
                figures,
                tuple(v.rules),
                v.policy_version,
                v.beats,
                v.input_digest,
                tally,
                lines,
                lessons,
            )
        )
    return days


def one_by_one(policy_version=None):
    pairs = [(v.user_id, v.day) for v in db.session.query(DayVerdict).order_by(DayVerdict.user_id, DayVerdict.day)]
    with time_machine.travel(T0 + dt.timedelta(days=5), tick=False):
        for user_id, day in pairs:
            assess_day(user_id, day, policy_version)
        db.session.commit()


def in_bulk(policy_version=None, chunk=2):
    with time_machine.travel(T0 + dt.timedelta(days=5), tick=False):
        counts = recompute_since(dt.date(2026, 5, 1), policy_version, chunk=chunk, commit=db.session.commit)
        db.session.commit()
    return counts


def test_bulk_recompute_equals_the_one_day_recompute(people):
    one_by_one()
    expected = snapshot()
    assert len(expected) >= 6
    verdicts = {d[2][0] for d in expected}
    assert {"credited", "deducted"} <= verdicts  # the scenarios are not all alike
    assert any(d[8] for d in expected)  # and some days have evidence lines
    assert {"R03r", "R03p"} <= {line[0] for d in expected for line in d[8]}  # refused beats too
    counts = in_bulk()
    assert snapshot() == expected
    assert sum(counts.values()) == len(expected)


def test_bulk_recompute_with_another_policy_version(people, tree):
    strict = new_version({"hidden_grace_seconds": 5, "allowed_rates": [1.0], "day_cap_seconds": 600}, note="严格")
    db.session.commit()
    one_by_one(strict.version)
    expected = snapshot()
    assert any(d[4] == strict.version for d in expected)
    in_bulk(strict.version, chunk=3)
    assert snapshot() == expected


def test_bulk_recompute_publishes_only_changed_days(people):
    from lms_core.events.models import Event

    in_bulk()
    before = db.session.query(Event).filter_by(name="anti_idle.day_assessed").count()
    in_bulk(chunk=1)
    assert db.session.query(Event).filter_by(name="anti_idle.day_assessed").count() == before


def test_bulk_recompute_equals_the_one_day_recompute_for_a_shared_device(app, tree):
    # R12 reads other people's beats from the same address: the bulk path reads them once
    # per chunk (day_rules.Prefetched), the one-day path per day; same findings.
    first = make_learner(tree, build_course(tree))
    helper = other_learner(tree, first, "赵磊")
    office, chrome = "10.20.30.40", "Mozilla/5.0 (Windows NT 10.0) Chrome/126.0"
    pc = {"presence": {"device": "1920x1080@1"}}
    mine = first.open(deliver=LECTURE_BYTES, ip=office, user_agent=chrome)
    theirs = helper.open(deliver=LECTURE_BYTES, ip=office, user_agent=chrome)
    for i in range(1, 61):
        first.beat(mine, T0 + 10 * i * S, [[10 * (i - 1), 10 * i]], client=pc)
        helper.beat(theirs, T0 + 10 * i * S + S // 2, [[10 * (i - 1), 10 * i]], client=pc)
    one_by_one()
    expected = snapshot()
    assert len(expected) == 2
    assert all(d[7]["day_rules"]["R12"]["variant"] == "concurrent" for d in expected)
    in_bulk(chunk=1)
    assert snapshot() == expected
    in_bulk(chunk=2)
    assert snapshot() == expected
