"""A learner in Chromium: enrol, watch a real video, reload and resume, pass the quiz, see progress."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from lms_core.accounts.models import User
from lms_core.courses import services as courses
from lms_core.courses.models import Course, LessonKind
from lms_core.extensions import db
from lms_core.quizzes import services as quizzes
from lms_core.quizzes.models import QuestionKind
from tests.browser.helpers import expect, play_muted, sign_in, video_course, video_time, wait_for_player
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.backends("postgresql"), pytest.mark.app_config(WTF_CSRF_ENABLED=True)]


@pytest.fixture
def course(app: Any, tree: Any, tmp_path: Path) -> Course:
    teacher, course, section = video_course(
        app, tree, tmp_path, code="B-01", title="乡村振兴实践案例", topic="乡村振兴", lesson="案例讲座"
    )
    quiz = courses.add_lesson(teacher, section, title="案例测验", kind=LessonKind.QUIZ, passing_score_pct=100)
    quizzes.add_question(
        teacher,
        quiz,
        kind=QuestionKind.SINGLE,
        text="乡村振兴的首要任务是？",
        options=["产业振兴", "拆村并居"],
        correct=[0],
    )
    courses.set_published(teacher, course, True)
    db.session.commit()
    return course


@pytest.fixture
def learner(tree: Any) -> User:
    user = UserFactory(username="liming", full_name="李明", org_unit=tree.village_a)
    db.session.commit()
    return user


def test_learner_watches_resumes_and_passes(page: Any, course: Course, learner: User, tmp_path: Path) -> None:
    sign_in(page, "liming")
    page.goto(f"/courses/{course.id}")
    page.locator("#enrol").click()
    expect(page.locator("#course-progress")).to_contain_text("0/2")

    page.get_by_role("link", name="案例讲座").click()
    expect(page.locator("video#player")).to_be_visible()
    wait_for_player(page)
    with page.expect_response(re.compile(r"/beat$")):
        play_muted(page)
    page.wait_for_function("document.getElementById('player').currentTime > 6", timeout=20_000)
    with page.expect_response(re.compile(r"/beat$")) as beat:
        page.evaluate("document.getElementById('player').pause()")
    result = beat.value.json()
    assert result["accepted"] and result["credited_ms"] > 4000
    expect(page.locator("#coverage")).not_to_have_text("0")
    watched = video_time(page)
    page.screenshot(path=str(tmp_path / "video.png"))

    page.reload()
    wait_for_player(page)
    page.wait_for_function("document.getElementById('player').currentTime > 4")
    assert abs(video_time(page) - watched) < 1.5, "the player resumes where the learner stopped"
    assert float(page.locator("#coverage").inner_text()) > 10

    page.goto(f"/courses/{course.id}")
    page.get_by_role("link", name="案例测验").click()
    page.get_by_label("产业振兴").check()
    page.locator("#submit-quiz").click()
    expect(page.locator(".flash-success")).to_be_visible()
    page.goto(f"/courses/{course.id}")
    expect(page.locator("#course-progress")).to_contain_text("1/2")
    page.goto("/dashboard")
    expect(page.locator("#my-courses")).to_contain_text("乡村振兴实践案例")
    assert int(page.locator("#year-progress").get_attribute("data-credited-seconds")) >= 5
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)


def test_tracker_api_lets_a_plugin_add_signals_and_read_beats(page: Any, course: Course, learner: User) -> None:
    """What a tracking plugin's script relies on, without patching player.js."""
    sign_in(page, "liming")
    page.goto(f"/courses/{course.id}")
    page.locator("#enrol").click()
    page.get_by_role("link", name="案例讲座").click()
    wait_for_player(page)
    session = page.locator(".lesson-card").get_attribute("data-session")
    assert page.evaluate("window.lmsTracker.session") == session
    assert page.evaluate("window.lmsTracker.media === document.getElementById('player')")
    assert page.evaluate("window.lmsTracker.playing()") is False
    page.evaluate("""window.lmsTracker.addSignals(ev => ({probe: ev, visibility: 'forged'}));
                     window.seen = []; window.lmsTracker.onBeat((r, ev) => window.seen.push([ev, r.accepted]));""")
    with page.expect_request(re.compile(r"/beat$")) as beat:
        play_muted(page)
    body = beat.value.post_data_json
    assert body["client"]["probe"] == "play"
    assert body["client"]["visibility"] == "visible", "a plugin cannot overwrite the core's own fields"
    page.wait_for_function("window.lmsTracker.playing() && window.lmsTracker.position() > 1")
    page.wait_for_function("window.seen.length > 0")
    assert page.evaluate("window.seen[0]") == ["play", True]


def test_resume_does_not_lag_when_the_last_beat_is_lost(page: Any, course: Course, learner: User) -> None:
    """Issue 8: the beat sent as the page goes away can lose the race with the reload (or
    die with the browser); the player then resumed one beat behind. It now resumes where
    the learner was, from the position this device kept."""
    sign_in(page, "liming")
    page.goto(f"/courses/{course.id}")
    page.locator("#enrol").click()
    page.get_by_role("link", name="案例讲座").click()
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    with page.expect_response(re.compile(r"/beat$")):
        page.evaluate("(() => { const v = document.getElementById('player'); v.muted = true; return v.play(); })()")
    # From here on every beat is lost: the server keeps the position of the play beat (0 s).
    page.route(re.compile(r"/beat$"), lambda route: route.abort())
    page.wait_for_function("document.getElementById('player').currentTime > 6", timeout=20_000)
    page.evaluate("document.getElementById('player').pause()")  # its beat is lost too
    watched = video_time(page)
    page.reload()
    page.unroute(re.compile(r"/beat$"))
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    page.wait_for_function("document.getElementById('player').currentTime > 4")
    assert abs(video_time(page) - watched) < 1.5, "the player resumes where the learner was, not one beat behind"


def test_beats_made_offline_are_queued_and_sent_late_in_order(page: Any, course: Course, learner: User) -> None:
    """Issue 8 (honest learners): on a flaky network the beats wait on the device and are
    sent late, in order, when the network is back; the server credits the viewing."""
    from sqlalchemy import select

    from lms_core.learning.models import LearningInterval

    sign_in(page, "liming")
    page.goto(f"/courses/{course.id}")
    page.locator("#enrol").click()
    page.get_by_role("link", name="案例讲座").click()
    wait_for_player(page)
    session = page.locator(".lesson-card").get_attribute("data-session")
    with page.expect_response(re.compile(r"/beat$")):
        play_muted(page)
    # The network drops for the beats (the media is already buffered and keeps playing).
    page.route(re.compile(r"/beat$"), lambda route: route.abort())
    page.wait_for_function("document.getElementById('player').currentTime > 14", timeout=30_000)
    page.evaluate("document.getElementById('player').pause()")
    page.wait_for_function("window.lmsTracker.pending() >= 2")  # the 10 s heartbeat and the pause
    stored = page.evaluate(
        "Object.keys(localStorage).filter(k => k.startsWith('lms-beats:')).map(k => localStorage.getItem(k))"
    )
    assert len(stored) == 1 and '"e":"pause"' in stored[0], "the queue is kept on the device"
    watched = video_time(page)
    page.unroute(re.compile(r"/beat$"))
    page.wait_for_function("window.lmsTracker.pending() === 0", timeout=45_000)
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('lms-beats:')).length") == 0
    db.session.expire_all()
    rows = db.session.execute(
        select(LearningInterval.seq, LearningInterval.credited_ms)
        .where(LearningInterval.session_id == session)
        .order_by(LearningInterval.id)
    ).all()
    seqs = [r.seq for r in rows]
    assert seqs == list(range(1, len(seqs) + 1)), "every beat arrived, in order"
    credited = sum(r.credited_ms for r in rows) / 1000
    assert credited >= 0.9 * watched, (credited, watched)


def _wait_for_rows(session: str, done: Any, timeout_s: float = 20.0) -> list[Any]:
    """The session's intervals once ``done(rows, session_row)`` holds (the server is another thread)."""
    import time

    from sqlalchemy import select

    from lms_core.learning.models import LearningInterval, LearningSession

    end = time.monotonic() + timeout_s
    while True:
        db.session.expire_all()
        rows = (
            db.session.execute(
                select(LearningInterval).where(LearningInterval.session_id == session).order_by(LearningInterval.seq)
            )
            .scalars()
            .all()
        )
        row = db.session.get(LearningSession, session)
        if done(rows, row) or time.monotonic() > end:
            return list(rows)
        time.sleep(0.5)


#: A killed tab runs none of its page-leaving events: the player's own listeners for them
#: are stopped before they run (registered first, capturing), so closing the page below
#: leaves exactly what a crash leaves (a real renderer crash through CDP cannot be awaited).
NO_GOODBYE = """
window.addEventListener('pagehide', (e) => e.stopImmediatePropagation(), true);
document.addEventListener('visibilitychange', (e) => e.stopImmediatePropagation(), true);
"""


def test_a_killed_page_s_unsent_viewing_is_sent_by_the_next_page(page: Any, course: Course, learner: User) -> None:
    """Issue 8 (a browser crash followed by resume): a killed tab lost the viewing since its
    last beat. The player keeps that beat on the device as a draft, and the next lesson
    page sends it as the dead session's last beat."""
    sign_in(page, "liming")
    page.goto(f"/courses/{course.id}")
    page.locator("#enrol").click()
    lesson_url = page.get_by_role("link", name="案例讲座").get_attribute("href")
    victim = page.context.new_page()
    victim.add_init_script(NO_GOODBYE)
    victim.goto(lesson_url)
    wait_for_player(victim)
    session = victim.locator(".lesson-card").get_attribute("data-session")
    with victim.expect_response(re.compile(r"/beat$")):
        play_muted(victim)
    # Past the 10 s heartbeat, with a few seconds more in the draft only.
    victim.wait_for_function(
        """(() => { const k = Object.keys(localStorage).find(k => k.startsWith('lms-beats:'));
          const r = k && JSON.parse(localStorage.getItem(k));
          return !!(r && r.draft && JSON.parse(r.draft.b).position > 15); })()""",
        timeout=30_000,
    )
    watched = video_time(victim)
    victim.close()  # killed: no pagehide, no last beat

    page.goto(lesson_url)  # the next lesson page on the same device
    wait_for_player(page)
    rows = _wait_for_rows(session, lambda rows, s: s is not None and s.ended_at is not None)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    reached = max(b for r in rows for _a, b in r.claimed_segments) / 1000
    assert reached >= watched - 2.5, (reached, watched)  # a draft is at most 2 s old
    assert sum(r.credited_ms for r in rows) / 1000 >= 0.9 * (watched - 2.5)


def _enrol_and_play(page: Any, course: Course) -> tuple[str | None, str | None]:
    """李明 signs in, enrols, opens the lecture and plays it until its first beat is answered:
    the lesson's URL and its learning session's id."""
    sign_in(page, "liming")
    page.goto(f"/courses/{course.id}")
    page.locator("#enrol").click()
    lesson_url = page.get_by_role("link", name="案例讲座").get_attribute("href")
    page.get_by_role("link", name="案例讲座").click()
    wait_for_player(page)
    session = page.locator(".lesson-card").get_attribute("data-session")
    with page.expect_response(re.compile(r"/beat$")):
        play_muted(page)
    return lesson_url, session


def test_a_closed_page_s_queue_is_sent_by_the_next_lesson_page(page: Any, course: Course, learner: User) -> None:
    """Issue 8 (flaky networks): beats queued offline by a page that was then closed are sent
    by the next lesson page of the same user, in order, at once (the closed page's lock is
    free); a queue older than the server's 24 h late window is dropped, never sent."""
    lesson_url, session = _enrol_and_play(page, course)
    page.route(re.compile(r"/beat$"), lambda route: route.abort())  # the network drops for the beats
    page.wait_for_function("document.getElementById('player').currentTime > 14", timeout=30_000)
    page.evaluate("document.getElementById('player').pause()")
    page.wait_for_function("window.lmsTracker.pending() >= 2")
    watched = video_time(page)
    stale = 25 * 3600 * 1000
    page.evaluate(
        f"""localStorage.setItem('lms-beats:{learner.id}:stale', JSON.stringify({{t: Date.now() - {stale},
          items: [{{u: '/learn/sessions/stale/beat', b: '{{}}', t: Date.now() - {stale}, e: 'heartbeat'}}]}}))"""
    )
    page.close()  # still offline: its beats stay on the device

    after = page.context.new_page()
    sent: list[str] = []
    after.on("request", lambda r: sent.append(r.url) if r.url.endswith("/beat") else None)
    after.goto(lesson_url)
    wait_for_player(after)
    mine = after.locator(".lesson-card").get_attribute("data-session")
    after.wait_for_function(
        f"Object.keys(localStorage).filter(k => k.startsWith('lms-beats:') && !k.endsWith(':{mine}')).length === 0",
        timeout=30_000,
    )
    rows = _wait_for_rows(session, lambda rows, s: s is not None and s.ended_at is not None)
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1)), "every beat arrived, in order"
    assert rows[-1].seq >= 3  # play, the heartbeat and the pause at least
    assert sum(r.credited_ms for r in rows) / 1000 >= 0.9 * watched
    assert not [u for u in sent if "/stale/" in u], "a queue older than 24 h is not sent"


def test_a_last_beat_whose_answer_was_lost_is_sent_again_without_a_409(
    page: Any, course: Course, learner: User
) -> None:
    """The page's last beat (terminate) reached the server and ended the session, but its answer
    was lost (the page went away first, or the network dropped it): it stays in the device's
    queue and the next lesson page sends it again. The server has it: the answer is a duplicate's
    (200), not the ended session's 409, which the browser showed as a console error."""
    lesson_url, session = _enrol_and_play(page, course)
    page.evaluate("document.getElementById('player').pause()")
    page.wait_for_function("window.lmsTracker.pending() === 0")

    def answer_lost(route: Any) -> None:
        route.fetch()  # the server stores the beat and answers
        route.abort()  # the answer never reaches the page

    page.route(re.compile(r"/beat$"), answer_lost)
    page.evaluate("window.lmsTracker.send('terminate')")
    rows = _wait_for_rows(session, lambda rows, s: s is not None and s.ended_at is not None)
    assert rows and page.evaluate("window.lmsTracker.pending()") == 1, "the terminate is still queued"
    page.close()

    after = page.context.new_page()
    errors: list[str] = []
    after.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    with after.expect_response(lambda r: f"/sessions/{session}/beat" in r.url, timeout=30_000) as again:
        after.goto(lesson_url)
    wait_for_player(after)
    after.wait_for_function("window.lmsTracker.pending() === 0")  # answered and dropped from the queue
    assert again.value.status == 200 and again.value.json()["duplicate"] is True
    assert not [e for e in errors if "409" in e], errors
