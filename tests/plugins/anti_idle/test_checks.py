"""Attention checks: server schedule, reveal while playing, single-use answers, automation flags."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from sqlalchemy import event, func, select

from lms_core.enrolments import services as enrolments
from lms_core.events.models import Event
from lms_core.extensions import db
from lms_core.learning import services as learning
from lms_core.learning.models import LearningInterval
from plugins.anti_idle import checks, policy, state_pg
from plugins.anti_idle.inputs import CHECK_LOOKBACK, LastCheck
from plugins.anti_idle.models import AttentionCheck, Beat, CheckClock
from plugins.anti_idle.policy import current_policy
from tests.conftest import login
from tests.factories import UserFactory
from tests.lms_core.learning.fixtures import build_course

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])
T0 = dt.datetime(2026, 5, 10, 1, 0, tzinfo=dt.UTC)
#: A test course's policy: a check after every 30 s of playing, 20 s to answer, issued
#: by the beat that claims the 30th second (the default, which conftest.py turns off).
FAST = {
    "check_first_after_seconds": 30,
    "check_min_gap_seconds": 30,
    "check_max_gap_seconds": 30,
    "check_window_seconds": 20,
    "checks_follow_claims": 1,
}


@pytest.fixture
def kit(app, tree):
    kit = build_course(tree)
    policy.new_version(FAST, course_id=kit.course.id, note="test course")
    db.session.commit()
    return kit


@pytest.fixture
def learner(kit, tree):
    user = UserFactory(username="liming", org_unit=tree.village_a, full_name="李明")
    enrolments.enrol(user, kit.course)
    db.session.commit()
    return user


def open_session(user, lesson, at=T0):
    with time_machine.travel(at, tick=False):
        session = learning.start_session(user, lesson, learning.enrolment_for(user, lesson.course_id))
        db.session.commit()
    return session


def play(session, user, start_s: int, end_s: int, *, first_seq: int = 1) -> int:
    """Beats every 10 s of honest 1x viewing from media second ``start_s`` to ``end_s``."""
    seq = first_seq
    for t in range(start_s + 10, end_s + 1, 10):
        with time_machine.travel(T0 + dt.timedelta(seconds=t), tick=False):
            learning.record_beat(session.id, user, {"seq": seq, "segments": [[t - 10, t]], "position": t})
            db.session.commit()
        seq += 1
    return seq


def poll(session, user, at_s: float):
    with time_machine.travel(T0 + dt.timedelta(seconds=at_s), tick=False):
        check = checks.issue_if_due(session, user)
        db.session.commit()
    return check


def answer(token, user, at_s: float, **body):
    body = {"answer": "0", "trusted": True, "latency_ms": 2500, "input_mode": "pointer", **body}
    with time_machine.travel(T0 + dt.timedelta(seconds=at_s), tick=False):
        judged = checks.answer_check(token, user, body)
        db.session.commit()
    return judged


def test_no_check_before_the_scheduled_playing_time(kit, learner):
    s = open_session(learner, kit.video)
    play(s, learner, 0, 20)
    assert poll(s, learner, 20.5) is None
    assert db.session.query(AttentionCheck).count() == 0


def test_check_is_issued_by_the_beat_that_makes_it_due_and_the_answer_stays_on_the_server(kit, learner):
    s = open_session(learner, kit.video)
    play(s, learner, 0, 30)
    check = poll(s, learner, 30.5)
    assert check is not None
    assert check.issued_at == T0 + dt.timedelta(seconds=30)  # the beat that claimed the 30th second
    assert check.due_at == check.issued_at + dt.timedelta(seconds=20)
    assert check.policy_version == policy.current_policy(kit.course.id).version > 0
    with time_machine.travel(T0 + dt.timedelta(seconds=31), tick=False):
        view = checks.client_view(check)
    assert view["token"] == check.token and view["due_in_ms"] == 19_000
    assert check.expected in view["options"] and len(view["options"]) == 4
    assert "expected" not in view and view["prompt"] == f"请选择数字 {check.expected}"
    assert poll(s, learner, 35).id == check.id, "one open check at a time"
    assert db.session.query(Event).filter_by(name="anti_idle.check_issued").count() == 1


def test_claimed_media_makes_a_check_owed_even_if_no_player_asks(kit, learner):
    """A script that sends beats and never polls still owes the check; its window lapses."""
    s = open_session(learner, kit.video)
    seq = play(s, learner, 0, 30)
    row = db.session.query(AttentionCheck).one()
    assert row.issued_at == T0 + dt.timedelta(seconds=30) and row.outcome == "pending"
    play(s, learner, 30, 90, first_seq=seq)
    assert db.session.query(AttentionCheck).count() == 1, "one open check at a time"
    cut = {b.received_at.replace(tzinfo=dt.UTC): b.cuts.get("R07", 0) for b in db.session.query(Beat)}
    assert cut[T0 + dt.timedelta(seconds=50)] == 0  # the window (20 s) still runs
    assert cut[T0 + dt.timedelta(seconds=60)] == 10_000
    assert cut[T0 + dt.timedelta(seconds=90)] == 10_000


def test_paused_learner_is_not_asked(kit, learner):
    s = open_session(learner, kit.video)
    play(s, learner, 0, 20)
    assert poll(s, learner, 20 + 31) is None  # owed after 30 s of claims; none claimed since
    assert db.session.query(AttentionCheck).count() == 0


def test_trusted_correct_answer_passes_once(kit, learner):
    s = open_session(learner, kit.video)
    play(s, learner, 0, 30)
    check = poll(s, learner, 30.5)
    judged = answer(check.token, learner, 33, answer=check.expected)
    assert judged.outcome == "passed"
    row = db.session.get(AttentionCheck, check.id)
    assert row.answered_at == T0 + dt.timedelta(seconds=33) and row.server_latency_ms == 3000
    assert row.trusted is True and row.input_mode == "pointer" and row.latency_ms == 2500
    with pytest.raises(checks.CheckError) as again:
        answer(check.token, learner, 34, answer=check.expected)
    assert again.value.status == 409
    assert db.session.get(AttentionCheck, check.id).answered_at == T0 + dt.timedelta(seconds=33)


def test_next_check_counts_playing_time_from_the_answer(kit, learner):
    s = open_session(learner, kit.video)
    seq = play(s, learner, 0, 30)
    check = poll(s, learner, 30.5)
    answer(check.token, learner, 33, answer=check.expected)
    seq = play(s, learner, 30, 50, first_seq=seq)
    assert poll(s, learner, 50.5) is None  # 20 s played since the answer
    play(s, learner, 50, 70, first_seq=seq)
    assert poll(s, learner, 70.5) is not None


def test_script_click_is_flagged_automated_and_a_new_check_follows(kit, learner):
    s = open_session(learner, kit.video)
    play(s, learner, 0, 30)
    check = poll(s, learner, 30.5)
    judged = answer(check.token, learner, 33, answer=check.expected, trusted=False)
    assert judged.outcome == "automated"
    assert db.session.get(AttentionCheck, check.id).outcome == "automated"
    follow = poll(s, learner, 34)
    assert follow is not None and follow.id != check.id and follow.outcome == "pending"


@pytest.mark.parametrize(("client_latency", "answered_at_s"), [(150, 33), (2500, 30.2)])
def test_answers_faster_than_a_human_are_automated(kit, learner, client_latency, answered_at_s):
    s = open_session(learner, kit.video)
    play(s, learner, 0, 30)
    check = poll(s, learner, 30.5)
    judged = answer(check.token, learner, answered_at_s, answer=check.expected, latency_ms=client_latency)
    assert judged.outcome == "automated"


def test_wrong_answer_is_followed_by_a_new_check(kit, learner):
    s = open_session(learner, kit.video)
    play(s, learner, 0, 30)
    check = poll(s, learner, 30.5)
    wrong = next(o for o in check.challenge["options"] if o != check.expected)
    assert answer(check.token, learner, 33, answer=wrong).outcome == "wrong"
    assert poll(s, learner, 34) is not None


def test_late_answer_passes_and_keeps_its_times_for_the_credit_path(kit, learner):
    s = open_session(learner, kit.video)
    play(s, learner, 0, 30)
    check = poll(s, learner, 30.5)
    answer(check.token, learner, 95, answer=check.expected)
    row = db.session.get(AttentionCheck, check.id)
    assert row.outcome == "passed" and row.answered_at > row.due_at  # credit stops due_at → answered_at
    event = db.session.query(Event).filter_by(name="anti_idle.check_answered").one()
    assert event.payload["late"] is True


def test_open_check_follows_the_person_to_another_tab(kit, learner):
    s1 = open_session(learner, kit.video)
    play(s1, learner, 0, 30)
    check = poll(s1, learner, 30.5)
    s2 = open_session(learner, kit.video, at=T0 + dt.timedelta(seconds=40))
    assert poll(s2, learner, 41).id == check.id


def test_reloading_does_not_restart_the_schedule(kit, learner):
    s1 = open_session(learner, kit.video)
    play(s1, learner, 0, 20)
    s2 = open_session(learner, kit.video, at=T0 + dt.timedelta(seconds=20))
    with time_machine.travel(T0 + dt.timedelta(seconds=30), tick=False):
        learning.record_beat(s2.id, learner, {"seq": 1, "segments": [[20, 30]], "position": 30})
        db.session.commit()
    assert poll(s2, learner, 30.5) is not None  # 20 s in the first tab + 10 s in the second


def test_someone_elses_token_is_unknown(kit, learner, tree):
    s = open_session(learner, kit.video)
    play(s, learner, 0, 30)
    check = poll(s, learner, 30.5)
    other = UserFactory(org_unit=tree.village_a)
    db.session.commit()
    with pytest.raises(checks.CheckError) as err:
        answer(check.token, other, 33, answer=check.expected)
    assert err.value.status == 404
    assert db.session.get(AttentionCheck, check.id).outcome == "pending"


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"answer": 5, "trusted": True},
        {"answer": "x\x00", "trusted": True},
        {"answer": "1" * 65, "trusted": True},
        {"answer": "12"},
        {"answer": "12", "trusted": "yes"},
        {"answer": "12", "trusted": True, "latency_ms": 1e308},
        {"answer": "12", "trusted": True, "latency_ms": 10**30},
        {"answer": "12", "trusted": True, "latency_ms": -1},
        {"answer": "12", "trusted": True, "input_mode": "telepathy"},
    ],
)
def test_malformed_answers_are_refused_and_change_nothing(kit, learner, body):
    s = open_session(learner, kit.video)
    play(s, learner, 0, 30)
    check = poll(s, learner, 30.5)
    with pytest.raises(checks.CheckError) as err, time_machine.travel(T0 + dt.timedelta(seconds=33), tick=False):
        checks.answer_check(check.token, learner, body)
    assert err.value.status == 400
    db.session.rollback()
    assert db.session.get(AttentionCheck, check.id).outcome == "pending"


# ---- over HTTP ---------------------------------------------------------------------------


def test_http_poll_and_answer(client, kit, learner, tree):
    s = open_session(learner, kit.video)
    play(s, learner, 0, 30)
    with time_machine.travel(T0 + dt.timedelta(seconds=30.5), tick=False):
        login(client, "liming")
        polled = client.post(f"/anti-idle/sessions/{s.id}/check", json={})
    assert polled.status_code == 200
    view = polled.get_json()["check"]
    row = db.session.query(AttentionCheck).one()
    assert view["token"] == row.token and set(view) == {"token", "prompt", "options", "window_seconds", "due_in_ms"}
    with time_machine.travel(T0 + dt.timedelta(seconds=33), tick=False):
        ok = client.post(
            f"/anti-idle/checks/{row.token}/answer",
            json={"answer": row.expected, "trusted": True, "latency_ms": 2000, "input_mode": "keyboard"},
        )
        again = client.post(
            f"/anti-idle/checks/{row.token}/answer", json={"answer": row.expected, "trusted": True, "latency_ms": 2000}
        )
        bad = client.post(f"/anti-idle/checks/{row.token}/answer", data=b"\x00" * 10, content_type="application/json")
    assert ok.status_code == 200 and ok.get_json()["outcome"] == "passed"
    assert again.status_code == 409 and "已" in again.get_json()["message"]
    assert bad.status_code == 400 and "JSON" in bad.get_json()["message"]


def test_http_session_of_someone_else_is_404(client, kit, learner, tree):
    s = open_session(learner, kit.video)
    UserFactory(username="other", org_unit=tree.village_a)
    db.session.commit()
    login(client, "other")
    assert client.post(f"/anti-idle/sessions/{s.id}/check", json={}).status_code == 404
    assert client.post("/anti-idle/checks/nope/answer", json={"answer": "1", "trusted": True}).status_code == 404
    assert (
        client.post("/anti-idle/checks/" + "x" * 500 + "/answer", json={"answer": "1", "trusted": True}).status_code
        == 404
    )


def test_lesson_page_carries_the_overlay_but_no_check(client, kit, learner):
    login(client, "liming")
    html = client.get(f"/learn/lessons/{kit.video.id}").get_data(as_text=True)
    assert 'id="anti-idle"' in html and "anti_idle.js" in html
    assert "防挂机" in html or "注意力" in html  # the overlay's title is in Chinese
    assert db.session.query(AttentionCheck).count() == 0


def csrf_login(client, username: str) -> str:
    """Sign in through the real form; the page's CSRF token for later requests."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/login", data={"username": username, "password": "Passw0rd!", "csrf_token": token})
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get("/dashboard").get_data(as_text=True)).group(1)


@pytest.mark.app_config(LMS_PLUGINS=["anti_idle"], WTF_CSRF_ENABLED=True)
def test_answers_need_the_csrf_token(client, kit, learner):
    s = open_session(learner, kit.video)
    play(s, learner, 0, 30)
    check = poll(s, learner, 30.5)
    with time_machine.travel(T0 + dt.timedelta(seconds=33), tick=False):
        token = csrf_login(client, "liming")
        body = {"answer": check.expected, "trusted": True, "latency_ms": 2000}
        refused = client.post(f"/anti-idle/checks/{check.token}/answer", json=body)
        assert refused.status_code == 400
        assert db.session.get(AttentionCheck, check.id).outcome == "pending"
        ok = client.post(f"/anti-idle/checks/{check.token}/answer", json=body, headers={"X-CSRFToken": token})
    assert ok.status_code == 200 and ok.get_json()["outcome"] == "passed"


@pytest.mark.backends("postgresql")
def test_a_poll_waits_for_the_persons_beat_so_only_one_check_is_issued(app, kit, learner):
    """The poll takes the person's clock row, which each of their beats holds until it commits.

    Without it a poll and the beat whose claim makes a check owed could both find no open
    check and issue one each. Here another transaction holds the row, as a beat would:
    the poll must wait for it (and gives up at the lock timeout), not go ahead.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    session = open_session(learner, kit.video)
    play(session, learner, 0, 20)  # the clock row exists
    with db.engine.connect() as beat:
        beat.execute(text("SELECT 1 FROM learning_person_clocks WHERE user_id = :u FOR UPDATE"), {"u": learner.id})
        db.session.execute(text("SET LOCAL lock_timeout = '300ms'"))
        with pytest.raises(OperationalError, match="lock timeout"):
            checks.issue_if_due(session, learner)
        db.session.rollback()
        beat.rollback()
    assert db.session.query(AttentionCheck).count() == 0


# --- the check clock memo: a poll adds only what is new, and equals the ledger's sum -------


def ledger_sum(user_id: int, since: dt.datetime | None) -> int:
    """What ``_playing_ms_since`` computed before the memo: the plain sum over the history."""
    stmt = select(func.coalesce(func.sum(LearningInterval.claimed_ms), 0)).where(LearningInterval.user_id == user_id)
    if since is not None:
        stmt = stmt.where(LearningInterval.wall_end > since)
    return int(db.session.execute(stmt).scalar_one())


def seen_by_beat_read(user_id: int, course_id: int, last, in_force) -> int | None:  # noqa: ANN001
    """On PostgreSQL a video beat's read brings what ``beat_check`` asks (``state_pg``):
    the latest check and the playing time since its reference, equal to what the Python
    path reads (memo of the same reference or not)."""
    if db.engine.dialect.name != "postgresql":
        return None
    now = T0 + dt.timedelta(days=1)
    owed = state_pg.load(user_id, course_id, now - CHECK_LOOKBACK, now, video=True)[3]
    assert owed.last == (None if last is None else LastCheck(last.outcome, last.issued_at, last.answered_at))
    if last is None or last.outcome != "pending":
        reference, _owed = checks.owed_after_ms(user_id, in_force, last)
        assert owed.played_ms == checks._playing_ms_since(user_id, reference, remember=False)
    return owed.played_ms


def test_every_poll_equals_the_ledger_sum_across_tabs_and_answers(kit, learner):
    # Two tabs taking turns, a poll after every beat, each check answered (correctly,
    # wrongly, by a script): the memo restarts at each new reference and never drifts.
    tabs = [open_session(learner, kit.video), open_session(learner, kit.video)]
    seqs = [1, 1]
    outcomes = iter(["right", "wrong", "right", "script", "right", "right", "right", "right"])
    seen = set()
    played: list[int | None] = []
    for k, t in enumerate(range(10, 400, 10)):
        tab = k % 2 if 100 < t < 200 else 0
        seqs[tab] = play(tabs[tab], learner, t - 10, t, first_seq=seqs[tab])
        with time_machine.travel(T0 + dt.timedelta(seconds=t, milliseconds=500), tick=False):
            last = checks.last_check(learner.id)
            played.append(seen_by_beat_read(learner.id, kit.course.id, last, current_policy(kit.course.id)))
            if last is None or last.outcome != "pending":
                reference, _owed = checks.owed_after_ms(learner.id, current_policy(kit.course.id), last)
                assert checks._playing_ms_since(learner.id, reference) == ledger_sum(learner.id, reference)
                seen.add(reference)
            check = checks.issue_if_due(tabs[tab], learner)
            db.session.commit()
        if check is not None and check.outcome == "pending":
            how = next(outcomes)
            answer(
                check.token,
                learner,
                t + 3,
                answer=check.expected if how != "wrong" else "no",
                trusted=how != "script",
            )
    assert len(seen) >= 4  # the schedule moved on several times
    assert played[0] is None or len({p for p in played if p}) >= 2  # the beat's read summed, and varied
    memo = db.session.get(CheckClock, learner.id)
    assert memo is not None and memo.through_id > 0


def test_a_poll_reads_only_the_intervals_stored_since_its_last_look(kit, learner):
    s = open_session(learner, kit.video)
    seq = play(s, learner, 0, 20)
    with time_machine.travel(T0 + dt.timedelta(seconds=21), tick=False):
        assert checks._playing_ms_since(learner.id, None) == 20_000
        db.session.commit()
    memo = db.session.get(CheckClock, learner.id)
    first_through = memo.through_id
    # Pretend the history summed so far was larger: only what is new is added to it,
    # so the memo (not the ledger) is what a poll starts from.
    memo.played_ms += 1_000_000
    db.session.commit()
    play(s, learner, 20, 30, first_seq=seq)
    with time_machine.travel(T0 + dt.timedelta(seconds=31), tick=False):
        assert checks._playing_ms_since(learner.id, None) == 1_030_000
        db.session.commit()
    assert db.session.get(CheckClock, learner.id).through_id > first_through


def test_a_video_beat_owing_nothing_sends_two_plugin_statements_on_postgresql(app, kit, learner, monkeypatch):
    s = open_session(learner, kit.video)
    seq = play(s, learner, 0, 10)
    seen: list[str] = []
    raw = state_pg.execute

    def count_raw(sql, params, **kw):  # noqa: ANN001, ANN003
        seen.append(sql)
        return raw(sql, params, **kw)

    def count(_conn, _cursor, statement, *_args):  # noqa: ANN001, ANN002
        seen.append(statement)

    monkeypatch.setattr(state_pg, "execute", count_raw)
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        play(s, learner, 10, 20, first_seq=seq)  # 20 s played of the 30 s owed: nothing owed
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    # The day's second beat folds the day's first tally into its day rows (not counted here).
    plugin = [q for q in seen if "anti_idle" in q and "anti_idle_day_" not in q]
    assert sum("anti_idle_checks" in q for q in plugin) >= 1  # beat_check's question was asked
    if db.engine.dialect.name == "postgresql":
        assert len(plugin) == 2, [q[:60] for q in plugin]  # the read (with the owed question) and the write
    assert db.session.query(AttentionCheck).count() == 0
    play(s, learner, 20, 30, first_seq=seq + 1)  # the 30th second: owed, issued by the beat
    assert db.session.query(AttentionCheck).count() == 1


def test_beats_read_the_memo_but_never_write_it(kit, learner):
    s = open_session(learner, kit.video)
    play(s, learner, 0, 60)  # every beat asks beat_check whether a check is owed
    assert db.session.get(CheckClock, learner.id) is None
