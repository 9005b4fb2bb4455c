"""The rules judged once per person-day (R02, R08, R09, R10c, R10d, R12, R12d, R15, R17), scripted.

Each attack states the rule it must trip and the score it adds; each honest scenario
next to it shows the same rule leaves an honest learner's day credited. Day rules run
in the day assessment (``settle``), not per beat; the per-beat rule R08 (idle
documents) also runs online.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import pytest

from lms_core.courses import services as courses
from lms_core.courses.models import Lesson, LessonKind
from lms_core.extensions import db
from lms_core.media.models import MediaFile, MediaKind
from plugins.anti_idle.models import DayVerdict, Evidence
from plugins.anti_idle.verdicts import assess_day
from tests.plugins.anti_idle import harness
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0, Learner, S, other_learner

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])
M = 60 * S
DAY = dt.date(2026, 5, 10)
OFFICE_IP = "10.3.0.1"
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0"
PC_A = {"presence": {"device": "a1b2c3"}}


def settle(learner: Learner, day: dt.date = DAY) -> DayVerdict:
    """The day assessment (what the nightly recompute runs), twice: it must be stable."""
    with _at(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(20), tzinfo=dt.UTC)):
        first = assess_day(learner.user.id, day)
        db.session.commit()
        assert first is not None
        figures = (first.verdict, first.review_score, list(first.rules), first.credited_ms, first.held_ms)
        again = assess_day(learner.user.id, day)
        db.session.commit()
    assert again is not None
    assert (again.verdict, again.review_score, list(again.rules), again.credited_ms, again.held_ms) == figures
    return again


def _at(when: dt.datetime):
    import time_machine

    return time_machine.travel(when, tick=False)


def zh(line: Evidence) -> str:
    """The line as a cadre reads it; the Chinese never names the rule's code."""
    text = harness.zh(line)
    assert not re.search(r"R\d", text), text
    return text


def lines(learner: Learner, rule: str, day: dt.date = DAY) -> list[Evidence]:
    return list(db.session.query(Evidence).filter_by(user_id=learner.user.id, day=day, rule=rule))


def video(kit, title: str, seconds: int, n: int) -> Lesson:
    media = MediaFile(
        sha256=f"{n:064x}",
        size_bytes=seconds * 1000,
        mime_type="video/mp4",
        kind=MediaKind.VIDEO,
        duration_ms=seconds * 1000,
        original_name="x",
        storage_key=f"{n:064x}",
    )
    db.session.add(media)
    db.session.flush()
    lesson = courses.add_lesson(kit.author, kit.video.section, title=title, kind=LessonKind.VIDEO, media=media)
    db.session.commit()
    return lesson


def honest(v: DayVerdict, rule: str) -> None:
    assert v.verdict == "credited", (v.verdict, v.rules, v.tally)
    assert v.review_score == 0, v.tally
    assert rule not in (v.tally.get("day_rules") or {}) or v.tally["day_rules"][rule]["score"] == 0


# --- R02: skipping forward through lessons ---------------------------------------------


def skip_through_three_lessons(me, kit) -> dt.datetime:
    """R02's attack: 20 s of each of three lectures, then a jump to near its end; the last beat's time."""
    lessons = [me.lecture, video(kit, "第二讲", 1800, 1), video(kit, "第三讲", 1800, 2)]
    at = T0
    for lesson in lessons:
        tab = me.open(lesson, at=at, deliver=LECTURE_BYTES)
        at = me.play(tab, at, 20)
        me.beat(tab, at + S, [[1500, 1501]], event="seeked", time_from=20, time_to=1500)
        tab.position = 1501
        at = me.play(tab, at + S, 20)
    return at


def test_r02_attack_skips_through_three_lessons(me, kit):
    skip_through_three_lessons(me, kit)
    v = settle(me)
    assert v.tally["day_rules"]["R02"]["score"] == 15
    assert v.tally["day_rules"]["R02"]["params"]["lessons"] == 3
    assert v.review_score == 15 and v.verdict == "credited"  # no time is removed, nothing held
    (line,) = lines(me, "R02")
    assert "向前跳过" in zh(line) and "R02" not in zh(line)


def test_r02_honest_skipping_an_introduction_once(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 30)
    me.beat(tab, at + S, [[600, 601]], event="seeked", time_from=30, time_to=600)
    tab.position = 601
    me.play(tab, at + S, 300)
    v = settle(me)
    honest(v, "R02")
    (line,) = lines(me, "R02")  # the learner is told why the lesson is not complete
    assert line.score == 0 and line.action == "info"


# --- R07h: presence never proven before the first check lapsed ----------------------------


def test_r07h_attack_unattended_tab_keeps_nothing_before_its_first_check(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.issue_check(tab, T0 + 150 * S)
    me.play(tab, T0, 20 * 60, every=30)  # twenty minutes, nobody there
    assert me.credited_s() <= 211  # the heartbeat path stopped when the check fell due
    v = settle(me)
    assert v.verdict == "held" and v.credited_ms == 0 and v.held_ms >= 140_000
    (line,) = lines(me, "R07h")
    assert line.action == "hold" and "暂缓计入" in zh(line)


def test_r07h_honest_learner_who_answered_then_missed_one_check(me):
    tab = me.open(deliver=LECTURE_BYTES)
    first = me.issue_check(tab, T0 + 150 * S)
    me.answer(first, T0 + 156 * S)
    me.issue_check(tab, T0 + 900 * S)  # away for a phone call: this one lapses
    me.play(tab, T0, 20 * 60, every=30)
    v = settle(me)
    assert "R07h" not in v.rules and v.held_ms == 0
    assert v.verdict == "deducted" and v.credited_ms >= 955_000  # only the time after the lapse


def test_r07h_honest_check_still_open_when_the_day_is_assessed(me):
    """Judged while its window runs, an open check holds nothing; the learner then answers
    it (after their last beat, as one does when the video paused for it): credited."""
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 170, every=10)
    check = me.issue_check(tab, at - 5 * S)  # shown 5 s ago; the learner has 55 s left
    with _at(at + S):
        v = assess_day(me.user.id, DAY)
        db.session.commit()
    assert v is not None
    honest(v, "R07h")
    me.answer(check, at + 20 * S)
    honest(settle(me), "R07h")


def test_r07h_attack_stops_beating_when_the_check_shows(me):
    """The hole of issue 8's detection run: the last beat came just after the check was
    shown, and nothing after it. Once its window is over (here: the day), the check has
    lapsed with no beat after it, and the minutes before it are held, not credited."""
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 170, every=10)
    me.issue_check(tab, at - 5 * S)
    v = settle(me)
    assert v.verdict == "held" and v.credited_ms == 0 and v.held_ms == 170_000, (v.verdict, v.tally)
    (line,) = lines(me, "R07h")
    assert line.action == "hold" and "暂缓计入" in zh(line)


# --- R08: a document open with nobody reading -------------------------------------------


def test_r08_attack_document_left_open_for_twenty_minutes(me):
    tab = me.open(me.document, deliver=500)
    for i in range(1, 121):  # 20 minutes, no input after the page opened
        me.beat(tab, T0 + 10 * i * S, None, visible_ms=10_000, client={"presence": {"idle_ms": 10_000 * i}})
    assert me.credited_s() <= 601
    v = me.recompute()
    assert v.verdict == "deducted" and "R08" in v.rules
    assert v.deducted_ms >= 590_000
    (line,) = lines(me, "R08")
    assert "没有任何阅读操作" in zh(line) and "10 分钟" in zh(line)


def test_r08_attack_scripted_page_input(me):
    tab = me.open(me.document, deliver=500)
    for i in range(1, 31):
        me.beat(
            tab,
            T0 + 10 * i * S,
            None,
            visible_ms=10_000,
            client={"presence": {"idle_ms": 500, "input": {"scroll": 0, "untrusted": 3}}},
        )
    v = me.recompute()
    assert "R08b" in v.rules and v.review_score == 20


def test_r08_honest_reader_scrolls_now_and_then(me):
    tab = me.open(me.document, deliver=500)
    for i in range(1, 121):  # 20 minutes; a scroll every 3 minutes
        idle = (10_000 * i) % 180_000
        me.beat(
            tab,
            T0 + 10 * i * S,
            None,
            visible_ms=10_000,
            client={"presence": {"idle_ms": idle, "input": {"scroll": 1, "untrusted": 0}}},
        )
    assert me.credited_s() >= 1200 * 0.97
    honest(settle(me), "R08")


# --- R09: machine-regular timing ---------------------------------------------------------


def test_r09_attack_a_bot_starts_a_lesson_every_five_minutes(me):
    at = T0
    for _ in range(9):
        tab = me.open(at=at, deliver=LECTURE_BYTES)
        me.play(tab, at, 120, from_pos=0)
        at += 300 * S
    v = settle(me)
    assert v.tally["day_rules"]["R09"]["score"] == 20
    (line,) = lines(me, "R09")
    assert "间隔几乎完全相同" in zh(line)


def test_r09_attack_checks_answered_with_a_constant_delay(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = T0
    for i in range(8):
        at = me.play(tab, at, 120, every=30)
        check = me.issue_check(tab, at)
        me.answer(check, at + 2 * S, latency_ms=2000 + 10 * (i % 3))
    v = settle(me)
    assert v.tally["day_rules"]["R09"]["variant"] == "answers"
    assert "作答用时几乎完全相同" in zh(lines(me, "R09")[0])


def test_r09_honest_learner_with_human_timing(me):
    at = T0
    latencies = [3100, 8400, 2200, 15000, 4700, 2600, 9900, 5200]
    for i, gap in enumerate([300, 420, 290, 660, 310, 900, 350, 480, 305]):
        tab = me.open(at=at, deliver=LECTURE_BYTES)
        end = me.play(tab, at, 120, from_pos=0)
        if i < len(latencies):
            check = me.issue_check(tab, end - 30 * S)
            me.answer(check, end - 20 * S, latency_ms=latencies[i])
        at += gap * S
    honest(settle(me), "R09")


def _answer_checks(me: Learner, latencies: list[int]) -> None:
    tab = me.open(deliver=LECTURE_BYTES)
    at = T0
    for latency in latencies:
        at = me.play(tab, at, 120, every=60)
        check = me.issue_check(tab, at)
        me.answer(check, at + dt.timedelta(milliseconds=latency), latency_ms=latency)


def test_r09_attack_answers_after_a_random_wait_of_two_to_six_seconds(me):
    """A timer with wide jitter: the CV (30 %) looks human, the shape of the delays does not."""
    _answer_checks(me, [2000 + round(4000 * ((k * 7) % 30) / 29) for k in range(30)])
    v = settle(me)
    found = v.tally["day_rules"]["R09"]
    assert found["variant"] == "answers_fit" and found["score"] == 20 and found["params"]["dbic"] > 10
    assert "均匀分布" in zh(lines(me, "R09")[0])


def test_r09_honest_thirty_answers_with_human_delays(me):
    """Delays as people have them (log-normal: mostly 2-4 s, a few long ones)."""
    from statistics import NormalDist

    _answer_checks(
        me, [round(math.exp(math.log(3000) + 0.6 * NormalDist().inv_cdf((k + 0.5) / 30))) for k in range(30)]
    )
    honest(settle(me), "R09")


# --- R10c: hours without a break ----------------------------------------------------------


def _five_lectures(me: Learner, kit, first: int) -> list[Lesson]:
    return [me.lecture, *(video(kit, f"讲座{n}", 3600, first + n) for n in range(4))]


def test_r10c_attack_four_and_a_half_hours_non_stop(me, kit):
    at = T0
    for lesson in _five_lectures(me, kit, 10):  # 5 x 55 minutes, back to back
        tab = me.open(lesson, at=at, deliver=LECTURE_BYTES)
        at = me.play(tab, at, 55 * 60, every=60, from_pos=0)
    v = settle(me)
    assert v.tally["day_rules"]["R10c"]["score"] == 10
    assert v.review_score == 10 and v.verdict == "credited"  # scored, never held on its own
    assert "没有 5 分钟以上的休息" in zh(lines(me, "R10c")[0])


def test_r10c_honest_long_day_with_a_break(me, kit):
    at = T0
    for n, lesson in enumerate(_five_lectures(me, kit, 20)):
        tab = me.open(lesson, at=at, deliver=LECTURE_BYTES)
        at = me.play(tab, at, 55 * 60, every=60, from_pos=0)
        if n == 2:
            at += 10 * M  # a ten-minute break after 2 h 45 min
    honest(settle(me), "R10c")


# --- R10d: nights across a fortnight ------------------------------------------------------


def test_r10d_attack_a_bot_runs_three_nights(me, kit):
    lessons = [video(kit, f"夜{n}", 3600, 5 + n) for n in range(6)]
    for n in range(3):
        at = dt.datetime(2026, 5, 7 + n, 17, 30, tzinfo=dt.UTC)  # 01:30 Beijing on the 8th, 9th, 10th
        for lesson in lessons[2 * n : 2 * n + 2]:  # 80 minutes a night
            tab = me.open(lesson, at=at, deliver=LECTURE_BYTES)
            at = me.play(tab, at, 40 * 60, every=60, from_pos=0)
    early = settle(me, dt.date(2026, 5, 9))
    assert "R10d" not in early.tally.get("day_rules", {})  # two nights: nobody's business
    v = settle(me)
    assert v.tally["day_rules"]["R10d"]["score"] == 15
    assert v.tally["day_rules"]["R10d"]["params"]["nights"] == 3
    assert "凌晨 0 点至 5 点" in zh(lines(me, "R10d")[0])


def test_r10d_honest_night_shift_once(me):
    night = dt.datetime(2026, 5, 9, 17, 30, tzinfo=dt.UTC)
    tab = me.open(at=night, deliver=LECTURE_BYTES)
    me.play(tab, night, 90 * 60, every=60)
    honest(settle(me), "R10d")


# --- R12: one device, several accounts (代刷) ---------------------------------------------


def test_r12_attack_one_pc_studies_for_two_accounts_at_once(me, tree):
    helper = other_learner(tree, me)
    mine = me.open(deliver=LECTURE_BYTES, ip=OFFICE_IP, user_agent=CHROME)
    theirs = helper.open(deliver=LECTURE_BYTES, ip=OFFICE_IP, user_agent=CHROME)
    for i in range(1, 61):
        me.beat(mine, T0 + 10 * i * S, [[10 * (i - 1), 10 * i]], client=PC_A)
        helper.beat(theirs, T0 + 10 * i * S + S // 2, [[10 * (i - 1), 10 * i]], client=PC_A)
    v, w = settle(me), settle(helper)
    for day in (v, w):
        assert day.tally["day_rules"]["R12"]["score"] == 40
        assert day.tally["day_rules"]["R12"]["variant"] == "concurrent"
        assert day.verdict == "credited" and day.review_score == 40  # alone, below the hold score
    assert "同时在为另外 1 个账号计时" in zh(lines(me, "R12")[0])


def test_r12_attack_shared_device_and_automation_hold_both_days(me, tree):
    helper = other_learner(tree, me)
    mine = me.open(deliver=LECTURE_BYTES, ip=OFFICE_IP, user_agent=CHROME)
    theirs = helper.open(deliver=LECTURE_BYTES, ip=OFFICE_IP, user_agent=CHROME)
    bot = {"presence": {"device": "a1b2c3"}, "webdriver": True}
    for i in range(1, 61):
        me.beat(mine, T0 + 10 * i * S, [[10 * (i - 1), 10 * i]], client=bot)
        helper.beat(theirs, T0 + 10 * i * S + S // 2, [[10 * (i - 1), 10 * i]], client=bot)
    for learner in (me, helper):
        v = settle(learner)
        assert v.verdict == "held" and v.review_score >= 80 and v.credited_ms == 0


def test_r12_honest_colleagues_share_a_pc_one_after_the_other(me, tree):
    colleague = other_learner(tree, me)
    mine = me.open(deliver=LECTURE_BYTES, ip=OFFICE_IP, user_agent=CHROME)
    at = me.play(mine, T0, 600, client=PC_A)
    theirs = colleague.open(at=at + 2 * M, deliver=LECTURE_BYTES, ip=OFFICE_IP, user_agent=CHROME)
    colleague.play(theirs, at + 2 * M, 600, client=PC_A)
    for learner in (me, colleague):
        v = settle(learner)
        honest(v, "R12")
        (line,) = lines(learner, "R12")
        assert line.action == "info" and "先后使用同一台设备" in zh(line)


def test_r12_honest_office_colleagues_on_their_own_pcs(me, tree):
    colleague = other_learner(tree, me)
    mine = me.open(deliver=LECTURE_BYTES, ip=OFFICE_IP, user_agent=CHROME)
    theirs = colleague.open(deliver=LECTURE_BYTES, ip=OFFICE_IP, user_agent=CHROME)
    me.play(mine, T0, 600, client=PC_A)
    colleague.play(theirs, T0, 600, client={"presence": {"device": "ffee01"}})
    for learner in (me, colleague):
        honest(settle(learner), "R12")
        assert lines(learner, "R12") == []


#: Device values that JSON and SQL types blur or that ``_device`` cuts (64 characters).
ODD_DEVICES = ["1", 1, True, "True", None, {"n": 1}, "x" * 70, "x" * 64 + "y", 1.5, "", 0, False]


def test_r12_the_summed_up_spans_equal_the_beats_they_sum(me, tree):
    # The one-day path sums other people's credited spans up in the database
    # (day_rules._neighbour_islands); the bulk recompute's path (Prefetched) keys and merges
    # every beat in Python, as both did before. Same finding for every account, with device
    # values that jsonb and SQLite turn into the same SQL value (true and 1), values cut at
    # 64 characters, a person's beats split over two devices, and runs with gaps.
    from plugins.anti_idle import day_rules
    from plugins.anti_idle.verdicts import replay_day

    people = [me] + [other_learner(tree, me, f"同事{k}") for k in range(len(ODD_DEVICES))]
    for k, person in enumerate(people):
        tab = person.open(deliver=LECTURE_BYTES, ip=OFFICE_IP, user_agent=CHROME)
        first, then = ("1", "x" * 64) if k == 0 else (ODD_DEVICES[k - 1], ODD_DEVICES[k % len(ODD_DEVICES)])
        for i in range(1, 31):
            gap = 4 * M if i > 15 else 0 * S  # a break: two runs, two islands
            at = T0 + 10 * i * S + gap + k * S // 4
            person.beat(tab, at, [[10 * (i - 1), 10 * i]], client={"presence": {"device": first if i <= 15 else then}})
    found = {}
    for person in people:
        uid = person.user.id
        r = replay_day(uid, DAY)
        ctx = day_rules.Prefetched([uid], [DAY], [b.session_id for b, _o in r.outcomes])
        summed = day_rules.shared_device(uid, DAY, r.outcomes, r.policy.params)
        assert summed == day_rules.shared_device(uid, DAY, r.outcomes, r.policy.params, ctx)
        found[uid] = summed
    mine = found[me.user.id]
    assert mine is not None and mine["variant"] == "concurrent"
    # Mine read "1" and "x" * 64: matched by "1" and 1 (not true, "True"), the two cut at 64
    # characters ({"n": 1} then "x" * 70, the two x's, and false then "1"): 6 accounts.
    assert mine["params"]["accounts"] == 6, mine


# --- R12d: several accounts from one data-centre range --------------------------------------

#: In the shipped list (Alibaba Cloud, 47.96.0.0/11).
CLOUD = ("47.98.10.1", "47.98.200.7", "47.99.3.3")


def test_r12d_attack_three_accounts_study_from_one_cloud_range(me, tree):
    learners = [me, other_learner(tree, me, "李娜"), other_learner(tree, me, "王强")]
    for n, (learner, ip) in enumerate(zip(learners, CLOUD, strict=True)):
        tab = learner.open(at=T0 + n * S, deliver=LECTURE_BYTES, ip=ip, user_agent=CHROME)
        learner.play(tab, T0 + n * S, 300)
    for learner in learners:
        v = settle(learner)
        found = v.tally["day_rules"]["R12d"]
        assert found["score"] == 40 and found["params"]["accounts"] == 3 and found["params"]["range"] == "47.96.0.0/12"
        assert v.review_score == 40 and v.verdict == "credited"  # alone below the hold score, like R12
        (line,) = lines(learner, "R12d")
        assert line.action == "score"
        assert "云服务器" in zh(line) and "3 个账号" in zh(line)


def test_r12d_honest_one_learner_on_a_cloud_vpn(me):
    tab = me.open(deliver=LECTURE_BYTES, ip=CLOUD[0], user_agent=CHROME)
    me.play(tab, T0, 300)
    v = settle(me)
    honest(v, "R12d")
    (line,) = lines(me, "R12d")
    assert line.action == "info" and "仅供参考" in zh(line)


def test_r12d_honest_office_address_is_no_data_centre(me, tree):
    colleagues = [me, other_learner(tree, me, "李娜"), other_learner(tree, me, "王强")]
    for n, learner in enumerate(colleagues):  # each on their own PC behind the office's address
        tab = learner.open(deliver=LECTURE_BYTES, ip=OFFICE_IP, user_agent=CHROME)
        learner.play(tab, T0, 300, client={"presence": {"device": f"pc{n}"}})
    for learner in colleagues:
        honest(settle(learner), "R12d")
        assert lines(learner, "R12d") == []


def test_r12d_ranges_are_a_setting(me, tree):
    from lms_core.settings import services as settings

    settings.set_value("anti_idle", "datacentre_ranges", "10.3.0.0/16, not-a-range")
    db.session.commit()
    learners = [me, other_learner(tree, me, "李娜"), other_learner(tree, me, "王强")]
    for learner in learners:
        learner.play(learner.open(deliver=LECTURE_BYTES, ip=OFFICE_IP, user_agent=CHROME), T0, 300)
    assert settle(me).tally["day_rules"]["R12d"]["params"] == {"range": "10.3.0.0/16", "accounts": 3, "need": 3}


# --- R15: cycling through a check's options ----------------------------------------------


def test_r15_attack_clicks_every_option_in_turn(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 180)
    for n in range(3):  # wrong, wrong, right: each new check answered within a second
        check = me.issue_check(tab, at + n * S)
        me.answer(check, at + n * S + S * 0.9, latency_ms=900, correct=n == 2)
    me.play(tab, at + 3 * S, 120)
    v = settle(me)
    assert v.tally["day_rules"]["R15"]["score"] == 20
    assert "逐个尝试选项" in zh(lines(me, "R15")[0])


def test_r15_honest_one_wrong_answer_then_a_considered_retry(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 180)
    first = me.issue_check(tab, at)
    me.answer(first, at + 4 * S, latency_ms=4000, correct=False)
    second = me.issue_check(tab, at + 4 * S)
    me.answer(second, at + 11 * S, latency_ms=7000)
    me.play(tab, at, 180)
    honest(settle(me), "R15")


# --- R17: only the shortest items (informational) ------------------------------------------


def _catalogue(kit) -> list[Lesson]:
    """Forty videos: five of 30 s, the rest of half an hour."""
    return [video(kit, f"课{i}", 30 if i < 5 else 1800, 100 + i) for i in range(40)]


def test_r17_attack_only_the_shortest_items(me, kit):
    lessons = _catalogue(kit)
    at = T0
    for lesson in lessons[:5]:
        tab = me.open(lesson, at=at, deliver=30_000)
        at = me.play(tab, at, 30, from_pos=0) + M
    v = settle(me)
    finding = v.tally["day_rules"]["R17"]
    assert finding["score"] == 0 and finding["params"]["short"] == 5
    assert v.verdict == "credited"  # a legitimate choice: context for the auditor only
    (line,) = lines(me, "R17")
    assert line.action == "info" and "仅供参考" in zh(line)


def test_r17_honest_mixed_lengths(me, kit):
    lessons = _catalogue(kit)
    at = T0
    for lesson in [lessons[0], *lessons[10:14]]:
        tab = me.open(lesson, at=at, deliver=LECTURE_BYTES)
        at = me.play(tab, at, 30, from_pos=0) + M
    honest(settle(me), "R17")
    assert lines(me, "R17") == []
