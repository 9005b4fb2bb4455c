"""Attacks and honest viewing on the real player in Chromium, with the anti-idle plugin on.

Each test reads back what the ledger credited (``learning_intervals``, the one time
ledger every figure derives from) and compares it with the server-side facts: wall
time that really passed, the check's due and answer times. The course runs a test
policy with short windows so the tests stay fast.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from lms_core.accounts.models import User
from lms_core.courses.models import Course
from lms_core.extensions import db
from lms_core.learning.models import LearningInterval, LessonProgress
from plugins.anti_idle import policy
from tests.browser import test_anti_idle as base
from tests.browser.helpers import PLAY_MUTED, expect, sign_in
from tests.browser.test_anti_idle import checks_of, wait_for_check

pytestmark = [
    pytest.mark.browser,
    pytest.mark.backends("postgresql"),
    pytest.mark.app_config(WTF_CSRF_ENABLED=True, LMS_PLUGINS=["anti_idle"]),
]
#: The same course (test policy, real WebM video) and learner as the attention-check tests.
course = base.course
learner = base.learner
PLAY = PLAY_MUTED


def credited_ms(user: User, since: dt.datetime | None = None, until: dt.datetime | None = None) -> int:
    db.session.expire_all()
    stmt = select(func.coalesce(func.sum(LearningInterval.credited_ms), 0)).where(LearningInterval.user_id == user.id)
    if since is not None:
        stmt = stmt.where(LearningInterval.wall_start >= since)
    if until is not None:
        stmt = stmt.where(LearningInterval.wall_end <= until)
    return int(db.session.execute(stmt).scalar_one())


def open_lesson(page: Any, course: Course) -> None:
    page.goto(f"/courses/{course.id}")
    page.get_by_role("link", name="专题讲座").click()
    page.wait_for_function("document.getElementById('player').readyState >= 1 && window.lmsTracker")


def pause_and_flush(page: Any) -> None:
    with page.expect_response(re.compile(r"/beat$")):
        page.evaluate("document.getElementById('player').pause()")


def quiet_policy(course: Course) -> None:
    """No attention checks in tests about something else."""
    policy.new_version({"check_first_after_seconds": 86_400}, course_id=course.id, note="no checks")
    db.session.commit()


def test_honest_1x_viewing_is_credited(page: Any, course: Course, learner: User) -> None:
    quiet_policy(course)
    sign_in(page, "liming")
    open_lesson(page, course)
    started = time.monotonic()
    page.evaluate(PLAY)
    page.wait_for_function("document.getElementById('player').currentTime > 12", timeout=30_000)
    pause_and_flush(page)
    wall_ms = (time.monotonic() - started) * 1000
    watched_ms = float(page.evaluate("document.getElementById('player').currentTime")) * 1000
    got = credited_ms(learner)
    assert got >= 0.9 * watched_ms, (got, watched_ms)
    assert got <= wall_ms + 1000


def test_16x_forced_by_page_script_earns_at_most_real_time(page: Any, course: Course, learner: User) -> None:
    quiet_policy(course)
    sign_in(page, "liming")
    open_lesson(page, course)
    started = time.monotonic()
    page.evaluate(
        "(() => { const v = document.getElementById('player'); v.muted = true; v.playbackRate = 16;"
        " return v.play(); })()"
    )
    page.wait_for_function("document.getElementById('player').ended", timeout=30_000)
    page.wait_for_timeout(500)
    with page.expect_response(re.compile(r"/beat$")):
        page.evaluate("window.lmsTracker.send('heartbeat')")
    wall_ms = (time.monotonic() - started) * 1000
    assert credited_ms(learner) <= wall_ms + 1000
    progress = db.session.query(LessonProgress).filter_by(user_id=learner.id).one()
    assert progress.coverage_bp < 9500 and progress.status.value != "completed"


def test_two_tabs_playing_earn_once(page: Any, course: Course, learner: User) -> None:
    quiet_policy(course)
    sign_in(page, "liming")
    second = page.context.new_page()
    open_lesson(page, course)
    open_lesson(second, course)
    started = time.monotonic()
    page.evaluate(PLAY)
    second.evaluate(PLAY)
    page.wait_for_function("document.getElementById('player').currentTime > 12", timeout=30_000)
    pause_and_flush(page)
    pause_and_flush(second)
    wall_ms = (time.monotonic() - started) * 1000
    assert credited_ms(learner) <= wall_ms + 1000


def test_beats_forged_with_plain_http_earn_nothing(page: Any, course: Course, learner: User) -> None:
    quiet_policy(course)
    sign_in(page, "liming")
    html = page.request.get(f"/learn/lessons/{course_lesson_id(course)}").text()  # no <video>: no media fetched
    session = re.search(r'data-session="([0-9a-f]+)"', html).group(1)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
    for seq in range(1, 9):
        page.wait_for_timeout(1000)
        r = page.request.post(
            f"/learn/sessions/{session}/beat",
            headers={"X-CSRFToken": csrf},
            data={
                "seq": seq,
                "event": "heartbeat",
                "segments": [[seq - 1, seq]],
                "position": seq,
                "client": {"visibility": "visible", "rate": 1},
            },
        )
        assert r.status in (200, 400, 403, 409)
    assert credited_ms(learner) == 0


def course_lesson_id(course: Course) -> int:
    from lms_core.courses.services import lessons_of

    return lessons_of(course)[0].id


def test_tab_hidden_beyond_the_grace_is_deducted(page: Any, course: Course, learner: User) -> None:
    policy.new_version({"check_first_after_seconds": 86_400, "hidden_grace_seconds": 2}, course_id=course.id)
    db.session.commit()
    sign_in(page, "liming")
    open_lesson(page, course)
    page.evaluate(PLAY)
    page.wait_for_function("document.getElementById('player').currentTime > 2")
    # Hide the page as a minimised window reports it (the player keeps playing).
    page.evaluate("""Object.defineProperty(document, 'visibilityState', {get: () => 'hidden', configurable: true});
                     Object.defineProperty(document, 'hidden', {get: () => true, configurable: true});
                     document.dispatchEvent(new Event('visibilitychange'));""")
    hidden_from = dt.datetime.now(dt.UTC)
    page.wait_for_timeout(12_000)
    page.evaluate("""delete document.visibilityState; delete document.hidden;
                     document.dispatchEvent(new Event('visibilitychange'));""")
    hidden_until = dt.datetime.now(dt.UTC)
    pause_and_flush(page)
    # Of the ~12 s hidden, at most the 2 s grace (and a beat's rounding) may count.
    assert credited_ms(learner, since=hidden_from, until=hidden_until + dt.timedelta(seconds=1)) <= 4000


def test_unanswered_check_stops_credit_until_a_human_answers(
    page: Any, course: Course, learner: User, tmp_path: Path
) -> None:
    policy.new_version(
        {
            "check_first_after_seconds": 4,
            "check_min_gap_seconds": 600,
            "check_max_gap_seconds": 600,
            "check_window_seconds": 3,
        },
        course_id=course.id,
    )
    db.session.commit()
    sign_in(page, "liming")
    open_lesson(page, course)
    page.evaluate(PLAY)
    target = wait_for_check(page)
    page.wait_for_function("document.getElementById('player').paused", timeout=15_000)
    # A script resumes playback and lets the beats claim media without answering.
    page.evaluate("document.getElementById('player').currentTime = 0")
    page.evaluate(PLAY)
    page.wait_for_timeout(11_000)
    page.screenshot(path=str(tmp_path / "overdue.png"))
    with page.expect_response(re.compile(r"/answer$")) as answered:
        page.get_by_role("button", name=target, exact=True).click()
    assert answered.value.json()["outcome"] == "passed"
    expect(page.locator(".ai-check")).to_be_hidden()
    page.evaluate(PLAY)
    page.wait_for_timeout(6_000)
    pause_and_flush(page)
    (check,) = checks_of(learner)
    assert check.answered_at > check.due_at
    assert credited_ms(learner, since=check.due_at + dt.timedelta(seconds=1), until=check.answered_at) == 0
    assert credited_ms(learner, since=check.answered_at) > 0, "credit resumes after the answer"
