"""A held anti-idle day whose verdict changes on re-assessment resizes its pending credit.

The old hold is voided and a new one placed for the new amount, in one transaction; the
journal only grows and the statement says why in a sentence.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import time_machine
from flask import Flask
from flask_babel import force_locale

from lms_core.events.services import dispatch, emit
from lms_core.extensions import db
from lms_core.jobs.services import commit
from plugins.credit_bank import inputs, queries
from plugins.credit_bank import policy as P
from plugins.credit_bank.models import Transfer
from tests.factories import UserFactory

NOON = dt.datetime(2026, 5, 10, 4, tzinfo=dt.UTC)
DAY = "2026-05-10"


def _study_time_policy() -> None:
    # 45 minutes of study make one 学时: 2700 s -> 1.00
    P.add_version({"online_course": {"kind": "study_time", "minutes_per_hour": 45}}, dt.date(2026, 1, 1), None)


def assessed(user_id: int, *, held: int, credited: int = 0, verdict: str = "held") -> Any:
    """``anti_idle.day_assessed`` with the payload the anti-idle plugin publishes."""
    event = emit(
        "anti_idle.day_assessed",
        payload={
            "user_id": user_id,
            "day": DAY,
            "verdict": verdict,
            "credited_seconds": credited,
            "held_seconds": held,
            "deducted_seconds": 0,
            "policy_version": 1,
            "review_score": 0.4,
        },
    )
    commit()
    return event


def reviewed(user_id: int, decision: str, seconds: int) -> None:
    emit(
        "anti_idle.day_reviewed",
        payload={"user_id": user_id, "day": DAY, "decision": decision, "seconds": seconds, "reason": "核实"},
    )
    commit()


def journal_count() -> int:
    return db.session.query(Transfer).count()


def test_fewer_held_seconds_shrink_the_hold(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory(org_unit=tree.town_a)
    _study_time_policy()
    with time_machine.travel(NOON, tick=False):
        assessed(user.id, held=5400)
        assert queries.year_summary(user.id, 2026)["pending"] == 200
        assessed(user.id, held=2700, credited=2700)
        assert queries.year_summary(user.id, 2026) == {"posted": 100, "pending": 100, "overflow": 0}
        lines = queries.statement(user.id, 2026)
    holds = [ln for ln in lines if ln.code == "study_time" and ln.status != "posted"]
    assert [(ln.amount, ln.status) for ln in holds] == [(200, "voided"), (100, "pending")]
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        old_why = inputs_text(holds[0].resolution_memo)
        new_why = inputs_text(holds[1].memo)
    assert "重新核定" in old_why and "2.00" in old_why and "1.00" in old_why
    assert old_why == new_why


def inputs_text(memo: str | None) -> str:
    from plugins.credit_bank.labels import memo_text

    return memo_text(memo)


def test_more_held_seconds_grow_the_hold_and_review_posts_the_new_one(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory(org_unit=tree.town_a)
    _study_time_policy()
    with time_machine.travel(NOON, tick=False):
        assessed(user.id, held=2700)
        assessed(user.id, held=8100)
        assert queries.year_summary(user.id, 2026)["pending"] == 300
        cur = inputs.current_hold(user.id, dt.date(2026, 5, 10))
        assert cur is not None and (cur.revision, cur.amount, cur.open) == (1, 300, True)
        reviewed(user.id, "post", 5400)
    # The review acts on the current hold: 2.00 posted, the rest released, nothing pending.
    assert queries.year_summary(user.id, 2026) == {"posted": 200, "pending": 0, "overflow": 0}


def test_held_time_gone_on_reassessment_voids_the_hold(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory(org_unit=tree.town_a)
    _study_time_policy()
    with time_machine.travel(NOON, tick=False):
        assessed(user.id, held=5400)
        assessed(user.id, held=0, credited=5400, verdict="credited")
    assert queries.year_summary(user.id, 2026) == {"posted": 200, "pending": 0, "overflow": 0}
    (hold,) = [ln for ln in queries.statement(user.id, 2026) if ln.status == "voided"]
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert "重新核定" in inputs_text(hold.resolution_memo)


def test_unchanged_and_replayed_assessments_change_nothing(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory(org_unit=tree.town_a)
    _study_time_policy()
    with time_machine.travel(NOON, tick=False):
        first = assessed(user.id, held=5400)
        assessed(user.id, held=5400)  # same figures: nothing written
        n = journal_count()
        assessed(user.id, held=2700)
        after_resize = journal_count()
        assert after_resize == n + 2  # one void, one new hold
        # The older assessment delivered again (a retried job) does not undo the newer one.
        dispatch(first.id)
        assert journal_count() == after_resize
    assert queries.year_summary(user.id, 2026)["pending"] == 100


def test_reviewed_day_keeps_the_reviewers_decision(app: Flask, tree) -> None:  # type: ignore[no-untyped-def]
    user = UserFactory(org_unit=tree.town_a)
    _study_time_policy()
    with time_machine.travel(NOON, tick=False):
        assessed(user.id, held=5400)
        reviewed(user.id, "post", 5400)
        n = journal_count()
        assessed(user.id, held=2700)
    assert journal_count() == n
    assert queries.year_summary(user.id, 2026) == {"posted": 200, "pending": 0, "overflow": 0}


def test_statement_page_explains_the_resize_in_chinese(app: Flask, client, tree) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import login

    user = UserFactory(org_unit=tree.town_a, username="resized")
    _study_time_policy()
    with time_machine.travel(NOON, tick=False):
        assessed(user.id, held=5400)
        assessed(user.id, held=2700)
        login(client, "resized")
        page = client.get("/credit/?year=2026").get_data(as_text=True)
        api = client.get("/api/v1/me/credits?year=2026").get_json()
    assert "重新核定" in page and "resize:" not in page
    resized = [ln for ln in api["statement"] if ln["status"] == "voided"]
    assert resized and "重新核定" in resized[0]["resolution"]
