"""Honest and attacking learners, scripted beat by beat under frozen time.

Each scenario states the credit it expects and the day's verdict, and every one
also checks that recomputing the day from the raw beats gives the same figures
(``Learner.recompute``). C1–C10 refer to the taxonomy in docs/anti_idle.md.

Honest time is the wall time the learner really played; the lecture is one hour of
video at 1 kB per second, and every honest tab fetched its bytes.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func

from lms_core.extensions import db
from lms_core.learning.models import LearningInterval, LessonProgress
from lms_core.learning.services import BeatError
from plugins.anti_idle import checks, policy
from plugins.anti_idle.models import AttentionCheck, Evidence
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0, Learner, S, other_learner, zh

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])
M = 60 * S


def full(me: Learner, played_s: float) -> None:
    """Honest: at least 97 % of the played time credited, and never held."""
    credited = me.credited_s()
    assert played_s * 0.97 <= credited <= played_s + 1, (credited, played_s)
    v = me.recompute()
    assert v.verdict == "credited", (v.verdict, v.tally)


# --- honest learners (all credited in full) -------------------------------------------


def test_h01_plain_viewing_at_1x(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 600)
    full(me, 600)


def test_h02_rewatching_a_passage(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 60)
    me.beat(tab, at + S, [[60, 61]], event="seeked", position=0, time_from=61, time_to=0)
    tab.position = 0
    me.play(tab, at + S, 60)
    full(me, 121)


def test_h03_pausing_to_take_notes(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 60)
    me.beat(tab, at, None, event="pause", seq=None)
    for i in range(1, 13):  # two minutes of heartbeats while paused
        me.beat(tab, at + 10 * i * S)
    at += 120 * S
    me.play(tab, at, 60, event_first="play")
    full(me, 120)


def test_h04_a_20_second_tab_switch(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 60)
    me.beat(tab, at + 1 * S, [[60, 61]], event="hidden", client={"visibility": "hidden"})
    me.beat(tab, at + 11 * S, [[61, 71]], client={"visibility": "hidden"})
    me.beat(tab, at + 21 * S, [[71, 81]], event="visible")
    tab.position = 81
    me.play(tab, at + 21 * S, 60)
    full(me, 141)


def test_h05_beats_queued_on_a_flaky_network_arrive_late(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 60)
    # 30 s without connectivity: three beats queued, delivered together
    burst = at + 30 * S
    for i in range(3):
        me.beat(tab, burst + i * dt.timedelta(milliseconds=40), [[60 + 10 * i, 70 + 10 * i]], offline_queued=True)
    tab.position = 90
    me.play(tab, burst + S, 60)
    full(me, 150)  # 60 + 30 played offline + 60


def test_h06_two_monitors_visible_but_unfocused(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 600, client={"focused": False})
    full(me, 600)


def test_h07_an_allowed_speed_of_1_5x(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 300, rate=1.5)
    full(me, 300)  # real time is credited, not media time


def test_h08_muted_playback(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 900, client={"muted": True})
    full(me, 900)


def test_h09_keyboard_only_answers_a_check(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 180)
    check = me.issue_check(tab, at)
    at = me.play(tab, at, 10)
    me.answer(check, at + 2 * S, latency_ms=9000)  # reached by Tab, answered with Enter
    check.input_mode = "keyboard"
    me.play(tab, at, 120)
    full(me, 310)


def test_h10_moving_from_phone_to_pc(me):
    phone = me.open(deliver=LECTURE_BYTES)
    at = me.play(phone, T0, 300)
    pc = me.open(at=at - 7 * S, deliver=LECTURE_BYTES)  # the PC starts 7 s before the phone's last beat
    me.play(pc, at, 300, from_pos=300)
    full(me, 600)


def test_h11_browser_crash_then_resume(me):
    first = me.open(deliver=LECTURE_BYTES)
    at = me.play(first, T0, 240)  # the browser dies: no terminate beat
    second = me.open(at=at + 60 * S, deliver=LECTURE_BYTES)
    me.play(second, at + 60 * S, 240, from_pos=240)
    full(me, 480)


def test_h12_a_long_lecture_without_touching_the_mouse_checks_answered(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = T0
    for _block in range(4):  # 48 minutes, a check every 12 minutes, each answered after 8 s
        at = me.play(tab, at, 12 * 60, every=30)
        check = me.issue_check(tab, at)
        me.answer(check, at + 8 * S)
    me.play(tab, at, 60)
    full(me, 49 * 60)


def test_h13_slow_speed(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 300, rate=0.75, client={"presence": {"rate_min": 0.75, "rate_max": 0.75}})
    # 0.75x is an allowed speed: the 300 s the learner spent are credited, while the
    # ranges (coverage) are the 225 s of media actually shown.
    full(me, 300)
    progress = db.session.query(LessonProgress).filter_by(user_id=me.user.id, lesson_id=me.lecture.id).one()
    assert progress.credited_segments == [[0, 225_000]]


def test_a28_c2_a_rate_below_the_allowed_ones_earns_only_its_media(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 300, rate=0.5, client={"presence": {"rate_min": 0.5, "rate_max": 0.5}})
    assert me.credited_s() == 150  # 0.5x is not offered: no real time beyond the media shown
    me.recompute()


def test_h14_reading_a_document(me):
    tab = me.open(me.document, deliver=500)
    for i in range(1, 31):
        me.beat(tab, T0 + 10 * i * S, None, visible_ms=10_000)
    full(me, 300)
    from lms_core.extensions import db

    progress = db.session.query(LessonProgress).filter_by(user_id=me.user.id, lesson_id=me.document.id).one()
    assert progress.read_ms >= 291_000


def test_h15_check_answered_near_the_end_of_its_window(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 180)
    check = me.issue_check(tab, at)
    at2 = me.play(tab, at, 60)
    me.answer(check, at + 55 * S)
    me.play(tab, at2, 60)
    full(me, 300)


def test_h16_network_jitter(me):
    tab = me.open(deliver=LECTURE_BYTES)
    pos = 0.0
    for i in range(1, 61):
        jitter = dt.timedelta(milliseconds=(-300, 250, 0, 180, -120)[i % 5])
        me.beat(tab, T0 + 10 * i * S + jitter, [[pos, pos + 10]])
        pos += 10
    full(me, 600)


def test_h17_studying_at_night(me):
    night = dt.datetime(2026, 5, 9, 18, 0, tzinfo=dt.UTC)  # 02:00 in Beijing
    tab = me.open(at=night, deliver=LECTURE_BYTES)
    me.play(tab, night, 600)
    full(me, 600)


def test_h18_paused_while_in_another_tab_for_five_minutes(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 120)
    me.beat(tab, at, None, event="pause")
    me.beat(tab, at + S, None, event="hidden", client={"visibility": "hidden"})
    for i in range(1, 6):
        me.beat(tab, at + 60 * i * S, None, client={"visibility": "hidden"})
    at += 301 * S
    me.beat(tab, at, None, event="visible")
    me.play(tab, at, 120, event_first="play")
    full(me, 240)


def test_h19_a_second_tab_open_but_paused(me):
    playing = me.open(deliver=LECTURE_BYTES)
    idle = me.open(me.short, deliver=1000)
    for i in range(1, 31):
        me.beat(idle, T0 + (10 * i - 5) * S, None)
    me.play(playing, T0, 300)
    full(me, 300)


def test_h20_scrubbing_forward_then_watching(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.beat(tab, T0 + 3 * S, [[0, 3]], event="seeked", time_from=3, time_to=1200)
    tab.position = 1200
    me.play(tab, T0 + 3 * S, 300, from_pos=1200)
    full(me, 303)


def test_h21_watching_across_beijing_midnight(me):
    late = dt.datetime(2026, 5, 10, 15, 55, tzinfo=dt.UTC)  # 23:55 in Beijing
    tab = me.open(at=late, deliver=LECTURE_BYTES)
    me.play(tab, late, 600)
    assert me.credited_s() >= 582
    for day in (dt.date(2026, 5, 10), dt.date(2026, 5, 11)):
        assert me.verdict(day).verdict == "credited"
        me.recompute(day)


def test_h23_two_monitors_as_the_player_reports_focus(me):
    # The player's own report (presence.focused): one stream, never focused, all credited.
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 600, client={"presence": {"focused": False}})
    full(me, 600)


def test_h24_moving_from_phone_to_pc_both_focused(me):
    # A handoff: both pages are in front of the learner when they overlap; neither yields.
    phone = me.open(deliver=LECTURE_BYTES)
    at = me.play(phone, T0, 300, client={"presence": {"focused": True}})
    pc = me.open(at=at - 7 * S, deliver=LECTURE_BYTES)
    me.beat(phone, at + 3 * S, [[300, 303]], client={"presence": {"focused": True}})
    me.play(pc, at + 3 * S, 300, from_pos=303, client={"presence": {"focused": True}})
    full(me, 603)


# --- attacks ----------------------------------------------------------------------------


def test_a01_c2_sixteen_times_speed(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 200, rate=16)  # claims 3200 s
    assert me.credited_s() == 0
    assert me.recompute().verdict == "deducted"


def test_a02_c2_double_speed_with_a_lying_rate(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 300, rate=2, client={"rate": 1})
    assert me.credited_s() == 0
    v = me.recompute()
    assert v.verdict == "deducted" and "R01" in v.rules


def test_a03_c4_beats_forged_with_plain_http_and_no_media(me):
    tab = me.open()  # no byte of the video is ever fetched
    me.play(tab, T0, 600)
    assert me.credited_s() == 0
    v = me.recompute()
    assert v.verdict == "void" and "R14" in v.rules


def test_a04_c5_four_tabs_of_one_lesson(me):
    tabs = [me.open(deliver=LECTURE_BYTES) for _ in range(4)]
    for i in range(1, 61):
        for n, tab in enumerate(tabs):
            me.beat(tab, T0 + 10 * i * S + n * dt.timedelta(milliseconds=50), [[10 * (i - 1), 10 * i]])
    assert me.credited_s() <= 600.15 + 1  # 2400 s claimed: one stream of real time (+ the 1 s tolerance)
    v = me.recompute()
    assert v.verdict == "deducted" and "R04" in v.rules


def test_a05_c6_minimised_playback_beyond_the_grace(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.beat(tab, T0 + S, [[0, 1]], event="hidden", client={"visibility": "hidden"})
    tab.position = 1
    me.play(tab, T0 + S, 1800, client={"visibility": "hidden"}, every=30)
    assert me.credited_s() <= 62  # the grace only
    v = me.recompute()
    assert v.verdict == "deducted" and "R05" in v.rules


def test_a06_c6_c8_spoofed_visibility_draws_no_frames(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 1800, client={"raf_frames": 0}, every=30)
    assert me.credited_s() <= 62
    v = me.recompute()
    assert "R13" in v.rules and "R05" in v.rules


def test_a07_c1_unattended_playback_ignores_every_check(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.issue_check(tab, T0 + 120 * S)
    me.play(tab, T0, 4 * 3600, every=60)  # four hours; nobody answers
    assert me.credited_s() <= 180
    assert me.credited_s() / (4 * 3600) <= 0.0125
    v = me.recompute()
    # Nobody ever answered: even the minutes before the first check wait for an auditor.
    assert v.verdict == "held" and "R07" in v.rules and "R07h" in v.rules
    assert v.credited_ms == 0 and 170_000 <= v.held_ms <= 181_000


def test_a08_c7_script_clicks_the_check(me):
    tab = me.open(deliver=LECTURE_BYTES)
    check = me.issue_check(tab, T0 + 120 * S)
    me.answer(check, T0 + 121 * S, trusted=False)
    me.play(tab, T0, 3600, every=60)
    assert me.credited_s() <= 121
    v = me.recompute()
    assert "R07b" in v.rules and v.review_score >= 40


def test_a09_c7_inhumanly_fast_answers(me):
    tab = me.open(deliver=LECTURE_BYTES)
    check = me.issue_check(tab, T0 + 120 * S)
    me.answer(check, T0 + 120 * S + dt.timedelta(milliseconds=150), latency_ms=150)
    me.play(tab, T0, 3600, every=60)
    assert me.credited_s() <= 121
    assert "R07b" in me.recompute().rules


def follow_claims(me: Learner) -> None:
    """The production schedule: checks are owed by the time claimed (conftest.py turns it off)."""
    policy.new_version({"checks_follow_claims": 1}, course_id=me.lecture.course_id)
    db.session.commit()


def test_a27_c1_c4_a_script_that_never_asks_for_a_check_still_owes_it(me):
    follow_claims(me)
    tab = me.open(deliver=LECTURE_BYTES)
    at = T0
    for i in range(180):  # 30 minutes of well-formed, signed beats; no player asks for checks
        at += 10 * S
        me.beat(tab, at, [[10 * i, 10 * i + 10]])
    first = db.session.query(AttentionCheck).order_by(AttentionCheck.id).first()
    assert first is not None and first.answered_at is None
    owed_at = (first.issued_at.replace(tzinfo=dt.UTC) - T0).total_seconds()
    assert 120 <= owed_at <= 730  # after the first check's playing time (120 s + a random part)
    assert db.session.query(AttentionCheck).count() == 1  # one open check at a time
    assert me.credited_s() <= owed_at + 60 + 10  # nothing after its window lapsed
    v = me.recompute()
    assert v.verdict == "held" and "R07" in v.rules and "R07h" in v.rules and v.credited_ms == 0


def test_a29_c4_bursts_of_beats_from_a_page_with_nothing_playing(me):
    """Twelve one-second claims within a second, every ten seconds (the Chromium harness's
    "beat bursts"); the test course asks a check after 10 s of playing, 10 s to answer."""
    policy.new_version(
        {
            "checks_follow_claims": 1,
            "check_first_after_seconds": 10,
            "check_min_gap_seconds": 30,
            "check_max_gap_seconds": 30,
            "check_window_seconds": 10,
        },
        course_id=me.lecture.course_id,
    )
    db.session.commit()
    tab = me.open(deliver=LECTURE_BYTES)
    pos = 0
    for burst in range(6):
        for i in range(12):
            me.beat(tab, T0 + (10 * burst + 3) * S + dt.timedelta(milliseconds=80 * i), [[pos + i, pos + i + 1]])
        pos += 12
    check = db.session.query(AttentionCheck).one()
    assert check.issued_at.replace(tzinfo=dt.UTC) < T0 + 4 * S  # owed by the tenth claimed second
    v = me.recompute()
    assert v.credited_ms == 0 and v.verdict == "held", (v.credited_ms, v.held_ms, v.rules)
    assert me.credited_s() <= 15  # online: nothing after the check's window lapsed


def test_h22_checks_follow_the_time_claimed_and_the_learner_answers_them(me):
    follow_claims(me)
    tab = me.open(deliver=LECTURE_BYTES)
    at = T0
    for i in range(180):  # 30 minutes; the player shows each check and the learner answers
        at += 10 * S
        me.beat(tab, at, [[10 * i, 10 * i + 10]])
        pending = checks.open_check(me.user.id)
        if pending is not None:
            me.answer(pending, at + 3 * S)
    assert db.session.query(AttentionCheck).filter_by(outcome="passed").count() >= 2
    full(me, 1800)


def test_a10_c4_a_burst_of_beats(me):
    tab = me.open(deliver=LECTURE_BYTES)
    for i in range(12):
        me.beat(tab, T0 + dt.timedelta(milliseconds=80 * (i + 1)), [[i, i + 1]])
    assert me.credited_s() <= 1.0 + 1.0
    me.recompute()


def test_a11_c4_a_dead_session_replays_the_same_range(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 30)
    for i in range(1, 61):  # ten minutes of beats re-claiming 20..30
        me.beat(tab, at + 10 * i * S, [[20, 30]])
    assert me.credited_s() <= 31
    v = me.recompute()
    assert "R16" in v.rules and v.verdict == "deducted"


def test_a12_c4_claims_beyond_the_bytes_served(me):
    tab = me.open(deliver=60_000)  # one minute of video fetched
    me.play(tab, T0, 1800, every=30)
    assert me.credited_s() <= 60 + 30 + 1
    assert "R14" in me.recompute().rules


def test_a13_c5_two_devices_playing_for_twenty_minutes(me):
    phone, pc = me.open(deliver=LECTURE_BYTES), me.open(me.short, deliver=1000)
    for i in range(1, 121):
        me.beat(phone, T0 + 10 * i * S, [[10 * (i - 1), 10 * i]])
        me.beat(pc, T0 + 10 * i * S + dt.timedelta(milliseconds=500), [[0, 10]], event="seeked")
    assert me.credited_s() <= 1200.5 + 1
    v = me.recompute()
    assert "R04" in v.rules and v.review_score >= 40


def test_a14_c3_seek_to_the_end_and_claim_ended(me):
    tab = me.open(me.short, deliver=1000)
    r = me.beat(tab, T0 + 2 * S, [[0, 2]], event="seeked", time_from=2, time_to=99)
    r = me.beat(tab, T0 + 3 * S, [[99, 100]], event="ended", position=100)
    assert not r.lesson_completed and r.coverage_bp <= 300
    assert me.credited_s() <= 3
    me.recompute()


def test_a15_c4_ten_minutes_claimed_ten_seconds_after_launch(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.beat(tab, T0 + 10 * S, [[0, 600]])
    assert me.credited_s() == 0
    assert "R01" in me.recompute().rules


def test_a16_c9_headless_bot_unattended_all_night(me):
    night = dt.datetime(2026, 5, 9, 17, 0, tzinfo=dt.UTC)  # 01:00 Beijing
    tab = me.open(at=night, deliver=LECTURE_BYTES)
    me.issue_check(tab, night + 150 * S)
    me.play(tab, night, 5 * 3600, every=120, client={"webdriver": True})
    assert me.credited_s() / (5 * 3600) <= 0.02
    v = me.recompute()
    assert "R11" in v.rules and "R07" in v.rules


def test_a17_c4_looping_a_short_video(me):
    tab = me.open(me.short, deliver=1000)
    for i in range(1, 61):  # ten minutes of "re-watching" a 100 s video
        start = (10 * (i - 1)) % 100
        me.beat(tab, T0 + 10 * i * S, [[start, start + 10]], event="seeked" if start == 0 else "heartbeat")
    assert me.credited_s() <= 150  # 1.5 x its length
    assert "R10" in me.recompute().rules


def test_a18_c9_more_than_the_daily_cap(me, kit):
    from plugins.anti_idle import policy

    policy.new_version({"day_cap_seconds": 1800})
    from lms_core.extensions import db

    db.session.commit()
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 3000, every=30)
    assert me.credited_s() <= 1800
    v = me.recompute()
    assert v.verdict == "held" and v.held_ms >= 1_100_000


def test_a19_c7_c9_script_answers_and_automation_flag_hold_the_day(me):
    tab = me.open(deliver=LECTURE_BYTES)
    check = me.issue_check(tab, T0 + 120 * S)
    me.answer(check, T0 + 121 * S, trusted=False)
    me.play(tab, T0, 1800, every=30, client={"webdriver": True})
    v = me.recompute()
    assert v.verdict == "held" and v.review_score >= 50 and v.credited_ms == 0


def test_a20_c4_replayed_beats_count_once(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.beat(tab, T0 + 10 * S, [[0, 10]])
    for i in range(10):
        r = me.beat(tab, T0 + (11 + i) * S, [[0, 10]], seq=1)
        assert r.duplicate and r.credited_ms == 0
    assert me.credited_s() <= 10
    me.recompute()


def test_a21_c4_beats_after_terminate_are_refused(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.beat(tab, T0 + 10 * S, [[0, 10]], event="terminate")
    with pytest.raises(BeatError):
        me.beat(tab, T0 + 20 * S, [[10, 20]])
    assert me.credited_s() <= 10


def test_a22_c3_ended_flag_alone_completes_nothing(me):
    tab = me.open(me.short, deliver=1000)
    r = me.beat(tab, T0 + 5 * S, [], event="ended", position=100)
    assert not r.lesson_completed and me.credited_s() == 0


def test_a23_c5_a_document_in_six_tabs(me):
    tabs = [me.open(me.document, deliver=500) for _ in range(6)]
    for i in range(1, 4):
        for tab in tabs:
            me.beat(tab, T0 + 10 * i * S, None, visible_ms=10_000)
    assert me.credited_s() <= 31
    me.recompute()


def test_a24_c4_a_document_never_fetched(me):
    tab = me.open(me.document)
    for i in range(1, 31):
        me.beat(tab, T0 + 10 * i * S, None, visible_ms=10_000)
    assert me.credited_s() == 0
    assert me.recompute().verdict == "void"


def test_a25_c6_c8_background_muted_spoofed_bot_is_held(me):
    tab = me.open(deliver=LECTURE_BYTES)
    check = me.issue_check(tab, T0 + 120 * S)
    me.answer(check, T0 + 120 * S + dt.timedelta(milliseconds=100), latency_ms=100)
    me.play(tab, T0, 1800, every=30, client={"raf_frames": 0, "muted": True, "webdriver": True})
    assert me.credited_s() <= 62
    v = me.recompute()
    assert v.verdict in ("held", "void") and v.review_score >= 50


def test_a26_c10_another_account_cannot_beat_my_session(me, tree):
    tab = me.open(deliver=LECTURE_BYTES)
    helper = other_learner(tree, me)
    with pytest.raises(BeatError) as err:
        helper.beat(tab, T0 + 10 * S, [[0, 10]])
    assert err.value.status == 404
    assert me.credited_s() == 0 and helper.credited_s() == 0


# --- an automated answer voids its own day, not the next one ------------------------------

DAY2 = dt.date(2026, 5, 11)
T1 = T0 + dt.timedelta(days=1)  # 09:00 Beijing the next morning


def _automated_yesterday(me: Learner) -> None:
    tab = me.open(deliver=LECTURE_BYTES)
    check = me.issue_check(tab, T0 + 30 * S)
    me.answer(check, T0 + 31 * S, trusted=False)
    me.play(tab, T0, 120)
    assert "R07b" in me.recompute().rules


def test_h_next_morning_after_a_scripted_answer_is_credited(me):
    """The void of an automated answer ends at midnight (Beijing): the next morning's
    honest study, with its check answered by a person, is credited in full."""
    _automated_yesterday(me)
    before = me.credited_s()
    tab = me.open(at=T1, deliver=LECTURE_BYTES)
    check = me.issue_check(tab, T1 + 10 * S)  # owed at once: the last check was not passed
    me.answer(check, T1 + 14 * S)
    me.play(tab, T1, 600, from_pos=120)
    assert me.credited_s() - before >= 600 * 0.97
    v = me.recompute(DAY2)
    assert v.verdict == "credited" and "R07b" not in v.rules, (v.verdict, v.rules)


def test_a_next_morning_without_an_answer_is_stopped_and_held(me):
    """What the void no longer covers after midnight, the check owed at once does: if
    nobody answers it, credit stops at its due time and what came before is held (R07h)."""
    _automated_yesterday(me)
    before = me.credited_s()
    tab = me.open(at=T1, deliver=LECTURE_BYTES)
    me.issue_check(tab, T1 + 10 * S)  # window 60 s: due at T1 + 70 s
    me.play(tab, T1, 3600, from_pos=120, every=60)
    assert me.credited_s() - before <= 71
    v = me.recompute(DAY2)
    assert v.verdict == "held" and "R07h" in v.rules and v.credited_ms == 0 and v.held_ms <= 71_000


# --- an answer after the day's last beat is evidence of that day --------------------------


def test_h_offline_learner_answers_after_the_last_beat(me):
    """Measured in Chromium (bench/anti_idle_detection.py, "offline 25 s"): the check was
    issued as the network went down, so the page never showed it; the lapse paused the
    video, the queued beats arrived once the network was back, and the learner answered
    the check after the last of them. The answer proves presence: nothing is held."""
    import time_machine

    from lms_core.jobs.services import commit
    from plugins.anti_idle.verdicts import assess_day

    tab = me.open(deliver=LECTURE_BYTES)
    me.beat(tab, T0 + 9 * S, [[0, 6.4]])
    check = me.issue_check(tab, T0 + 18 * S, window=10)  # issued by this beat's claim; offline now
    me.beat(tab, T0 + 18 * S, [[6.4, 16.4]])
    me.beat(tab, T0 + 47 * S, [[16.4, 26.4]])  # queued offline, sent when back
    me.beat(tab, T0 + 48 * S, [[26.4, 27.1]], event="pause")  # the lapse paused the video
    with time_machine.travel(T0 + 49 * S, tick=False):
        assess_day(me.user.id, T0.date())  # judged before the answer (a review page, the nightly job)
        commit()
    # The check fell due in the silence: its window started again with the beats' return
    # (47 s), so at 49 s it is open, not lapsed; nothing is held or deducted meanwhile.
    assert me.verdict().verdict == "credited"
    with time_machine.travel(T0 + 51 * S, tick=False):
        judged = checks.answer_check(
            check.token, me.user, {"answer": "7", "trusted": True, "latency_ms": 2900, "input_mode": "pointer"}
        )
        assert judged.outcome == "passed"
        commit()  # and the inline jobs: the answer's event re-judges the day
    assert me.verdict().verdict == "credited"
    assert me.credited_s() >= 27.1 * 0.97
    v = me.recompute()
    assert v.verdict == "credited" and "R07h" not in v.rules and v.held_ms == 0, (v.verdict, v.rules)


def test_h_offline_when_the_check_fell_due_is_not_deducted(me):
    """Measured in Chromium (13:19 and 14:37, "offline 25 s", 2 of 3 runs ``deducted``): the
    check was issued by a beat and shown, then the network went down; the learner clicked
    it at once, but the answer could not leave the device. The window lapsed in the
    silence (the page paused the video), the queued beats arrived when the network was
    back, and the learner's next click reached the server 1.5 s later. The check fell
    due while nothing of the person reached the server: the answer within a window of
    the first beat back is on time, and nothing is deducted (times as stored by that run)."""
    import time_machine

    from lms_core.jobs.services import commit

    ms = dt.timedelta(milliseconds=1)
    tab = me.open(deliver=LECTURE_BYTES)
    me.beat(tab, T0 + 8768 * ms, [[0.004, 8.716]])
    me.beat(tab, T0 + 18_746 * ms, [[8.716, 18.716]])
    check = me.issue_check(tab, T0 + 18_746 * ms, window=10)  # issued by that beat, shown; offline now
    me.beat(tab, T0 + 45_035 * ms, [[18.716, 28.716]])  # queued offline, sent when back
    me.beat(tab, T0 + 45_069 * ms, [[28.716, 28.771]], event="pause")  # the lapse paused the video
    with time_machine.travel(T0 + 46_582 * ms, tick=False):
        judged = checks.answer_check(
            check.token, me.user, {"answer": "7", "trusted": True, "latency_ms": 27_653, "input_mode": "pointer"}
        )
        assert judged.outcome == "passed"
        commit()
    assert me.credited_s() >= 28.7
    v = me.recompute()
    assert v.verdict == "credited" and "R07" not in v.rules and v.deducted_ms == 0, (v.verdict, v.rules)
    assert not db.session.query(Evidence).filter(Evidence.rule.like("R07%")).count()


def test_h_offline_before_the_check_reached_the_page_answers_it_when_back(me):
    """The check was issued by the beat sent just as the network went down, so the player's
    request for it failed: it was never shown. 40 s offline, the queued beats arrive, the
    player asks again, and the learner answers 3 s later: on time, nothing deducted."""
    import time_machine

    from lms_core.jobs.services import commit

    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 120)
    check = me.issue_check(tab, at, window=10)  # due at 130 s: in the silence
    for i in range(4):  # 120-160 s played offline, sent together at 160.5 s
        me.beat(tab, at + 40 * S + i * dt.timedelta(milliseconds=30), [[120 + 10 * i, 130 + 10 * i]])
    with time_machine.travel(at + 43 * S, tick=False):
        judged = checks.answer_check(
            check.token, me.user, {"answer": "7", "trusted": True, "latency_ms": 2500, "input_mode": "pointer"}
        )
        assert judged.outcome == "passed"
        commit()
    tab.position = 160
    me.play(tab, at + 43 * S, 60)
    assert me.credited_s() >= 0.97 * 220
    full(me, 223)  # 120 + 40 offline + 60, the 3 s of answering included
    v = me.recompute()
    assert "R07" not in v.rules and "R07o" not in v.rules and v.deducted_ms == 0


def _quiet_over_the_check(script: Learner, *, quiet: bool, proven: bool) -> None:
    """A script plays 10 minutes and never answers; with ``quiet`` it withholds its beats
    while the check's window runs (as if offline) and sends them all late, then plays on.
    ``proven``: a person answered a first check at 35 s, then left the script running."""
    tab = script.open(deliver=LECTURE_BYTES)
    if proven:
        script.answer(script.issue_check(tab, T0 + 30 * S, window=30), T0 + 35 * S)
    at = script.play(tab, T0, 120)
    script.issue_check(tab, at, window=30)  # due at 150 s
    if quiet:  # 120-175 s "played offline", sent together at 175 s (within the core's 60 s gap)
        for i in range(6):
            end = min(130 + 10 * i, 175)
            script.beat(tab, at + 55 * S + i * dt.timedelta(milliseconds=20), [[120 + 10 * i, end]])
        tab.position = 175
        script.play(tab, at + 55 * S, 425)
    else:
        script.play(tab, at, 480)


@pytest.mark.parametrize("proven", [False, True], ids=["never-answered", "answered-earlier"])
def test_a_going_quiet_over_a_check_earns_nothing(me, tree, proven):
    """C1/C4: the offline relief as a dodge. A script that stops its beats while a check's
    window runs, so that the check falls due "offline", and then sends them all late, gets
    a new window from its return; nobody answers in it, so the relief lapses: what the
    late beats were given is deducted (R07o) and credit stops from the check's own due
    time, as for the script that just lets the check lapse. Both the script that never
    answered anything (R07h holds its first minutes) and one whose human answered a check
    earlier (presence proven, so nothing is held) end with exactly the same credit as
    the same script without the dodge."""
    plain = other_learner(tree, me)
    for script in (me, plain):
        _quiet_over_the_check(script, quiet=script is me, proven=proven)
    dodge_v, plain_v = me.recompute(), plain.recompute()
    assert dodge_v.credited_ms == plain_v.credited_ms
    assert dodge_v.credited_ms <= 150_000  # nothing after the check's own due time
    assert dodge_v.held_ms <= plain_v.held_ms
    assert "R07o" in dodge_v.rules and "R07" in dodge_v.rules
    assert dodge_v.verdict == plain_v.verdict == ("deducted" if proven else "held")
    (line,) = db.session.query(Evidence).filter_by(user_id=me.user.id, rule="R07o").all()
    assert line.action == "deduct" and line.amount_ms > 0
    assert "网络中断" in zh(line) and "R07" not in zh(line)


# --- leaving when a check shows: the window ends with no beat after it (issue 8) -------------


def _day_figures(me: Learner, day: dt.date | None = None) -> tuple[str, int, int]:
    v = me.verdict(day)
    return v.verdict, v.credited_ms, v.held_ms


def test_a_script_stops_beating_when_the_check_shows(me):
    """C1/C4, the hole of the detection run (an "unattended 1x" tab credited in full): the
    check is issued by the beat that claims the first minute, the script sends nothing
    after it. No beat comes to re-judge the day, so the job queued at the check's due time
    does: the online verdict turns to held with no further beat, as the recompute finds."""
    policy.new_version(
        {
            "checks_follow_claims": 1,
            "check_first_after_seconds": 60,
            "check_min_gap_seconds": 600,
            "check_max_gap_seconds": 600,
            "check_window_seconds": 30,
        },
        course_id=me.lecture.course_id,
    )
    db.session.commit()
    tab = me.open(deliver=LECTURE_BYTES)
    me.play(tab, T0, 60)  # the sixth beat claims the 60th second: the check is owed and issued
    check = db.session.query(AttentionCheck).one()
    issued = check.issued_at.replace(tzinfo=dt.UTC)
    assert issued == T0 + 60 * S and check.answered_at is None
    assert me.credited_s() == 60
    assert _day_figures(me) == ("credited", 60_000, 0)  # judged while its window runs
    assert me.run_jobs(issued + 29 * S) == 0  # nothing before the window ends
    assert me.run_jobs(issued + 30 * S) == 1  # the job at its due time
    assert _day_figures(me) == ("held", 0, 60_000)
    v = me.recompute()
    assert v.verdict == "held" and "R07h" in v.rules and v.held_ms == 60_000


def test_a_script_stops_beating_one_second_before_the_check_is_due(me):
    """The variant that times its last beat just inside the window: the check still lapses."""
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 120)
    me.issue_check(tab, at)  # due at 180 s
    at = me.play(tab, at, 50)  # beats to 170 s
    me.beat(tab, at + 9 * S, [[170, 179]])  # and the last at 179 s
    assert me.credited_s() == 179
    assert _day_figures(me)[0] == "credited"
    me.run_jobs(T0 + 180 * S)
    assert _day_figures(me) == ("held", 0, 179_000)
    v = me.recompute()
    assert v.verdict == "held" and "R07h" in v.rules and v.credited_ms == 0


def test_a_script_leaves_at_the_check_and_resumes_the_next_day(me):
    """It stops when the check shows and starts again the next morning, never answering. The
    first day is held up to the due time (R07h). The next day the check, due while nothing of
    the person arrived, gets a new window from the first beat (R07o's relief); nobody
    answers in it, so what that window's beats were given is deducted, and credit stays
    stopped after it: the next day earns nothing."""
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 120)
    me.issue_check(tab, at)  # shown by the beat at 120 s: the script stops
    v1 = me.recompute()
    assert v1.verdict == "held" and v1.credited_ms == 0 and v1.held_ms == 120_000
    t1 = T0 + dt.timedelta(days=1)
    tab2 = me.open(at=t1, deliver=LECTURE_BYTES)
    tab2.position = 120
    me.play(tab2, t1, 600)
    v2 = me.recompute(dt.date(2026, 5, 11))
    assert v2.credited_ms == 0 and "R07o" in v2.rules and "R07" in v2.rules, (v2.verdict, v2.tally)
    assert v2.verdict in {"deducted", "held"}


def test_a_script_leaves_at_the_check_and_resumes_an_hour_later_without_answering(me):
    """Back after an hour (a break: a new run of study), still no answer. The minutes before
    the check are held from its due time on (by the job, with no beat); the hour-later beats
    earn only the relief window, which is deducted when nobody answers in it."""
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 120)
    me.issue_check(tab, at)  # due at 180 s
    back = T0 + 3720 * S
    me.run_jobs(back - S)
    assert _day_figures(me) == ("held", 0, 120_000)  # online, with no beat since
    tab2 = me.open(at=back, deliver=LECTURE_BYTES)
    tab2.position = 120
    me.play(tab2, back, 600)
    v = me.recompute()
    assert v.verdict == "held" and v.credited_ms == 0 and v.held_ms == 120_000, (v.verdict, v.tally)
    assert "R07h" in v.rules and "R07o" in v.rules and v.deducted_ms >= 600_000


def test_a_script_sends_its_beats_late_over_a_check_then_stops(me):
    """The offline relief as a dodge, ending before the new window does: the beats are held
    back while the check's window runs, sent late, and then nothing. The new window (R07o)
    ends with no beat to close it: the job queued by the first beat back judges the day at
    its end, and the late beats' credit is deducted, the minutes before the check held."""
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 120)
    me.issue_check(tab, at, window=30)  # due at 150 s, in the silence
    for i in range(6):  # 120-175 s "played offline", sent together at 175 s
        me.beat(tab, at + 55 * S + i * dt.timedelta(milliseconds=20), [[120 + 10 * i, min(130 + 10 * i, 175)]])
    assert _day_figures(me)[0] == "credited"  # at 175 s the new window runs (to 205 s)
    assert me.run_jobs(T0 + 204 * S) == 0
    assert me.run_jobs(T0 + 205 * S + dt.timedelta(milliseconds=100)) == 1
    verdict, credited, held = _day_figures(me)
    assert verdict == "held" and credited == 0 and held == 150_000, (verdict, credited, held)
    v = me.recompute()
    assert "R07h" in v.rules and "R07o" in v.rules and v.deducted_ms >= 25_000


def test_h_a_check_answered_in_time_is_not_judged_again(me, monkeypatch):
    """The job at a check's due time replays nothing when the check was answered in time."""
    from plugins.anti_idle import verdicts

    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 120)
    check = me.issue_check(tab, at)
    me.answer(check, at + 5 * S)
    replayed: list[object] = []
    monkeypatch.setattr(verdicts, "assess_day", lambda *args: replayed.append(args))
    assert me.run_jobs(at + 60 * S) == 1 and replayed == []


def test_h_browser_crash_as_the_check_shows_then_answered_on_return(me):
    """Honest: the browser crashed just as the check showed. Back two minutes later in a
    new tab, the player shows the open check and the learner answers it at once. The check
    fell due in the silence, the answer came within a window of the return: credited in full."""
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 120)
    check = me.issue_check(tab, at)  # due at 180 s; the crash: nothing more from this tab
    back = at + 120 * S
    tab2 = me.open(at=back, deliver=LECTURE_BYTES)
    me.run_jobs(back)
    me.answer(check, back + 5 * S)
    tab2.position = 120
    me.play(tab2, back, 300)
    full(me, 420)
    v = me.recompute()
    assert "R07h" not in v.rules and "R07o" not in v.rules and v.held_ms == 0 and v.deducted_ms == 0


def credited_by_lesson(me: Learner) -> dict[int, float]:
    rows = (
        db.session.query(LearningInterval.lesson_id, func.sum(LearningInterval.credited_ms))
        .filter(LearningInterval.user_id == me.user.id)
        .group_by(LearningInterval.lesson_id)
        .all()
    )
    return {lesson_id: int(ms) / 1000 for lesson_id, ms in rows}


def test_a30_c5_c6_a_hidden_second_tab_whose_beats_arrive_first(me):
    # The learner watches the lecture in front; a hidden tab plays another lesson, its
    # beats timed to reach the server just before the visible tab's, so that in arrival
    # order it would take the person's clock first (and, within the hidden grace, keep
    # it). The focused stream wins the overlap: the hidden tab earns nothing.
    front = me.open(deliver=LECTURE_BYTES)
    hidden = me.open(me.short, at=T0 + 5 * S, deliver=100_000)
    focused = {"presence": {"focused": True}}
    for i in range(1, 31):
        if 2 <= i <= 10:
            me.beat(hidden, T0 + (10 * i - 1) * S, [[10 * (i - 2), 10 * (i - 1)]], client={"visibility": "hidden"})
        me.beat(front, T0 + 10 * i * S, [[10 * (i - 1), 10 * i]], client=focused)
    by_lesson = credited_by_lesson(me)
    assert by_lesson.get(me.short.id, 0) == 0
    assert by_lesson[me.lecture.id] >= 299
    v = me.recompute()
    assert "R04" in v.rules
    lines = db.session.query(Evidence).filter_by(day_verdict_id=v.id, rule="R04f").all()
    assert len(lines) == 1 and lines[0].lesson_id == me.short.id
    assert lines[0].span_start == T0 + 5 * S and lines[0].span_end == T0 + 99 * S  # the hidden tab from its launch


def test_a31_c5_a_visible_window_out_of_focus_beside_the_one_in_front(me):
    # Two windows side by side, both visible: the one without the focus plays another
    # lesson and its beats arrive first. Only the window in front earns.
    front = me.open(deliver=LECTURE_BYTES)
    side = me.open(me.short, at=T0 + 5 * S, deliver=100_000)
    for i in range(1, 31):
        if 2 <= i <= 10:
            me.beat(
                side, T0 + (10 * i - 1) * S, [[10 * (i - 2), 10 * (i - 1)]], client={"presence": {"focused": False}}
            )
        me.beat(front, T0 + 10 * i * S, [[10 * (i - 1), 10 * i]], client={"presence": {"focused": True}})
    by_lesson = credited_by_lesson(me)
    assert by_lesson.get(me.short.id, 0) == 0 and by_lesson[me.lecture.id] >= 299
    assert me.credited_s() <= 301
    me.recompute()


# --- a check whose window crosses Beijing midnight ----------------------------------------

#: 23:50 Beijing on 2026-05-10; the check is shown at 23:59:30 and due at 00:00:30.
LATE = dt.datetime(2026, 5, 10, 15, 50, tzinfo=dt.UTC)
MIDNIGHT = dt.datetime(2026, 5, 10, 16, 0, tzinfo=dt.UTC)
DAY1 = dt.date(2026, 5, 10)


def test_h_a_check_across_midnight_answered_after_it(me):
    """Honest: watching from 23:50, the check shows at 23:59:30 (window 60 s, due 00:00:30)
    and the learner answers at 00:00:10. Both days are credited in full, and each day's
    recompute equals its online verdict."""
    tab = me.open(at=LATE, deliver=LECTURE_BYTES)
    at = me.play(tab, LATE, 570)  # to 23:59:30
    check = me.issue_check(tab, at)
    at = me.play(tab, at, 40)  # to 00:00:10
    me.answer(check, at)
    me.play(tab, at, 590)  # to 00:10
    assert me.credited_s() >= 1200 * 0.97
    for day in (DAY1, DAY2):
        v = me.recompute(day)
        assert v.verdict == "credited" and v.held_ms == 0 and v.deducted_ms == 0, (day, v.verdict, v.tally)
    assert me.recompute(DAY1).credited_ms >= 600_000 * 0.97
    assert me.recompute(DAY2).credited_ms >= 600_000 * 0.97


def test_a_a_check_across_midnight_never_answered(me):
    """C1, the same evening with nobody there: the check shown at 23:59:30 is never
    answered and the tab keeps playing. Nobody proved presence in that run, so the issue
    day's ten minutes are held (R07h) like any day's whose check lapsed, although the
    window ran out after midnight. The next day earns nothing after the due time (R07),
    and what its beats earned before it, in the same unproven run, is held too (R07h)."""
    tab = me.open(at=LATE, deliver=LECTURE_BYTES)
    at = me.play(tab, LATE, 570)  # to 23:59:30
    me.issue_check(tab, at)
    me.play(tab, at, 630)  # to 00:10, unanswered
    v1 = me.recompute(DAY1)
    assert v1.verdict == "held" and "R07h" in v1.rules and v1.credited_ms == 0, (v1.verdict, v1.tally)
    assert v1.held_ms == 590_000  # every beat received before midnight
    v2 = me.recompute(DAY2)
    assert v2.verdict == "held" and {"R07", "R07h"} <= set(v2.rules), (v2.verdict, v2.tally)
    # The beat received at 00:00:00 brings the evening's last 10 s: 40 s up to the due time.
    assert v2.credited_ms == 0 and v2.held_ms == 40_000 and v2.deducted_ms >= 570_000
    assert me.credited_s() == 630  # the ledger before the holds: 590 s + 40 s


def test_a_a_script_stops_at_a_check_shown_just_before_midnight(me):
    """C1/C4: the script stops beating when the check shows at 23:59:30. Nothing of the
    next day comes to judge anything; the job at the due time (00:00:30) re-judges the
    issue day, online, and holds its minutes (R07h), as the recompute does."""
    tab = me.open(at=LATE, deliver=LECTURE_BYTES)
    at = me.play(tab, LATE, 570)  # to 23:59:30
    check = me.issue_check(tab, at)
    assert _day_figures(me, DAY1) == ("credited", 570_000, 0)
    assert me.run_jobs(check.due_at.replace(tzinfo=dt.UTC) - S) == 0
    assert me.run_jobs(check.due_at.replace(tzinfo=dt.UTC)) == 1
    assert _day_figures(me, DAY1) == ("held", 0, 570_000)
    v = me.recompute(DAY1)
    assert v.verdict == "held" and "R07h" in v.rules and v.held_ms == 570_000
