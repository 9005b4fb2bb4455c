"""R07h's proven runs and the day replay (issue 8; docs/anti_idle.md, "R07h: which runs an
answer proves, and when the day is replayed").

A valid answer proves the runs of study it was given within a break of (``day_rules.proves``);
a run ends at its last credit, so what an answer proves does not move with later beats. A beat
replays the day only when it can change what R07h/R07o found (``verdicts._moved``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine

from lms_core.jobs.services import commit
from plugins.anti_idle import checks, day_rules, verdicts
from plugins.anti_idle.models import AttentionCheck
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0, Learner, S, Tab

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])


@pytest.fixture
def replays(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The day replays (``verdicts.assess_day``) of the beat path, the answer's event and the jobs."""
    calls: list[tuple[Any, ...]] = []
    original = verdicts.assess_day

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(verdicts, "assess_day", counted)
    return calls


def answer(me: Learner, check: AttentionCheck, at: dt.datetime, given: str = "7") -> str:
    """Answer through the product's path: its event re-judges the day after the commit."""
    with time_machine.travel(at, tick=False):
        judged = checks.answer_check(
            check.token, me.user, {"answer": given, "trusted": True, "latency_ms": 2500, "input_mode": "pointer"}
        )
        commit()  # and the inline jobs: the answer's event re-judges the day
    return judged.outcome


def lapse_then_retry(me: Learner, *, product: bool) -> Tab:
    """The flow of the replay storm: a check lapses (due at 180 s) while the tab plays on
    unattended; the learner is back at 601 s, seven minutes after the lapse, answers it
    wrongly, and answers the fresh check correctly at 603 s, where credit resumes.
    ``product``: through ``checks.answer_check`` (its event re-judges the day); else the
    answers are stored as the harness does, as when that event has not run yet."""
    tab = me.open(deliver=LECTURE_BYTES)
    first = me.issue_check(tab, T0 + 120 * S)
    back = me.play(tab, T0, 600) + S
    retry = me.issue_check(tab, back)
    if product:
        assert answer(me, first, back, given="3") == "wrong"
        assert answer(me, retry, back + 2 * S) == "passed"
    else:
        me.answer(first, back, correct=False)
        me.answer(retry, back + 2 * S)
    return tab


@pytest.mark.parametrize("product", [False, True], ids=["answers-stored", "answer-event"])
def test_after_a_lapse_and_a_retry_the_day_is_replayed_once_not_on_every_beat(me, replays, product):
    """Before: every credited beat after the retry replayed the whole day (R07h stayed among
    the findings, 0.84 replays per beat over the hour). Now the answers and the first credit
    after them replay it once, and the 300 beats after that none."""
    tab = lapse_then_retry(me, product=product)
    before = len(replays)
    me.play(tab, T0 + 600 * S, 3000)  # 300 beats, all credited from the answer at 603 s
    assert me.credited_s() == pytest.approx(180 + 2997, abs=1)
    assert len(replays) - before <= 2, len(replays) - before
    assert me.recompute().verdict == "held"


@pytest.mark.parametrize("product", [False, True], ids=["answers-stored", "answer-event"])
def test_after_a_lapse_and_a_retry_the_online_verdict_is_the_recompute(me, product):
    """Before: online 3,177 s credited; the next morning's recompute 2,997 s with 180 s held,
    because the first run's end moved with later beats. The answer at 603 s, seven minutes
    after the lapse, proves the run it starts, not the three minutes before the lapse that
    nobody answered for: those are held, online as in the recompute (``recompute`` asserts
    the two agree)."""
    tab = lapse_then_retry(me, product=product)
    online = me.verdict()
    assert (online.verdict, online.credited_ms, online.held_ms) == ("held", 0, 180_000)
    me.play(tab, T0 + 600 * S, 3000)
    v = me.recompute()
    assert (v.verdict, v.credited_ms, v.held_ms) == ("held", 2_997_000, 180_000), (v.verdict, v.tally)
    assert "R07h" in v.rules and v.tally["day_rules"]["R07h"]["end"] == (T0 + 180 * S).isoformat()


def test_a_late_answer_long_after_the_lapse_does_not_prove_the_minutes_before_it(me):
    """C1: a tab plays unattended; its check lapses at 180 s; a person comes by 17 minutes
    later and answers that same check. The answer proves presence from then on, not the
    three minutes the tab played before the lapse: they are held (before, a valid answer to
    the lapsed check itself, at any time, kept them)."""
    tab = me.open(deliver=LECTURE_BYTES)
    first = me.issue_check(tab, T0 + 120 * S)
    at = me.play(tab, T0, 1200)
    assert answer(me, first, at + 5 * S) == "passed"
    me.play(tab, at, 600)
    assert me.credited_s() == pytest.approx(180 + 595, abs=1)
    v = me.recompute()
    assert (v.verdict, v.held_ms) == ("held", 180_000) and "R07h" in v.rules, (v.verdict, v.tally)


def test_h_a_late_answer_within_a_break_of_the_lapse_proves_the_run(me):
    """Honest: the learner stepped out without pausing, the check lapsed, and back two
    minutes later they answer it: within a break of the run's last credit, so the run is
    proven and nothing is held."""
    tab = me.open(deliver=LECTURE_BYTES)
    first = me.issue_check(tab, T0 + 120 * S)
    at = me.play(tab, T0, 300)
    assert answer(me, first, at) == "passed"
    me.play(tab, at, 300)
    v = me.recompute()
    assert "R07h" not in v.rules and v.held_ms == 0 and v.credited_ms >= 475_000, (v.verdict, v.tally)


def test_h_answered_on_return_before_pressing_play_then_missed_a_check(me):
    """Honest: back from a 25-minute break, the learner answers the check the player shows,
    presses play half a minute later, and later misses a check (a phone call). The answer
    proves the run that play starts: nothing before the missed check is held (before, the
    answer, given before that run's first credit, proved neither run, and 330 s were held)."""
    tab = me.open(deliver=LECTURE_BYTES)
    first = me.issue_check(tab, T0 + 120 * S)
    at = me.play(tab, T0, 120)
    assert answer(me, first, at + 5 * S) == "passed"
    at = me.play(tab, at, 180)
    me.beat(tab, at + S, None, event="pause")
    back = T0 + 1800 * S
    shown = me.issue_check(tab, back)
    assert answer(me, shown, back + 5 * S) == "passed"
    me.beat(tab, back + 30 * S, None, event="play")
    me.issue_check(tab, T0 + 2100 * S)  # due at 2160 s: nobody answers it
    me.play(tab, back + 30 * S, 570)
    assert me.credited_s() == pytest.approx(300 + 330, abs=1)
    v = me.recompute()
    assert "R07h" not in v.rules and v.held_ms == 0 and v.verdict == "deducted", (v.verdict, v.tally)


def test_a_lapse_with_no_job_to_judge_it_replays_the_day_once_at_the_next_beat(me, replays, monkeypatch):
    """The judged horizon: with no worker to run the job at the due time, the first beat
    after it sees the check lapsed since the last assessment and replays the day, once."""
    from plugins.anti_idle import rejudge

    monkeypatch.setattr(rejudge, "schedule", lambda *args, **kwargs: None)
    tab = me.open(deliver=LECTURE_BYTES)
    me.issue_check(tab, T0 + 120 * S)
    me.play(tab, T0, 170)
    before = len(replays)
    me.play(tab, T0 + 170 * S, 20)  # the beat at 180 s still credited, the one at 190 s not
    assert len(replays) - before == 1
    assert (me.verdict().verdict, me.verdict().held_ms) == ("held", 180_000)
    me.play(tab, T0 + 190 * S, 600)
    assert len(replays) - before == 1
    assert me.recompute().held_ms == 180_000


def test_which_runs_an_answer_proves():
    """``proves``: within a break of the run's first credit or its last, or in between;
    an answer at the exact start of a new run (a break or more after the last credit of the
    one before) proves the new run and not the old one."""
    brk = dt.timedelta(minutes=5)
    old = (T0, T0 + 180 * S)
    new = (T0 + 480 * S, T0 + 3600 * S)  # starts exactly a break after the old one's last credit
    assert day_rules.study_runs([old, (T0 + 479 * S, T0 + 500 * S)], brk) == [(T0, T0 + 500 * S)]
    assert day_rules.study_runs([old, new], brk) == [old, new]
    at_start = new[0]
    assert day_rules.proves(at_start, new, brk) and not day_rules.proves(at_start, old, brk)
    assert day_rules.proves(old[1] + 299 * S, old, brk)  # a late answer on return
    assert not day_rules.proves(old[1] + 300 * S, old, brk)
    assert day_rules.proves(new[0] - 299 * S, new, brk)  # answered, then play pressed
    assert not day_rules.proves(new[0] - 300 * S, new, brk)
    assert day_rules.proves(T0 + 60 * S, old, brk)
