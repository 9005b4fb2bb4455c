"""Through the database: a learner's document beats give the same stored beats (credit,
ranges, cuts, flags, running state), the same day tally and the same day verdict with
``els.assess``'s plain path and without it (``plain=False``: every beat through the replay).
Honest reading with now and then a twist a rule reads (hidden, idle, scripted input, not
focused, an unsigned or forged envelope, a pause, a late beat)."""

from __future__ import annotations

import datetime as dt
import functools

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from plugins.anti_idle import els

T0 = dt.datetime(2026, 5, 10, 1, 0, tzinfo=dt.UTC)
TWISTS = ["hidden", "idle", "untrusted", "unfocused", "focused", "unsigned", "forged", "pause", "long"]

ops_st = st.lists(
    st.tuples(
        st.integers(0, 1),  # tab
        st.sampled_from([10, 10, 10, 9, 11, 40]),  # gap, s
        st.one_of(st.none(), st.sampled_from(TWISTS)),
    ),
    min_size=1,
    max_size=30,
)


def _read(me, ops):
    from lms_core.extensions import db
    from plugins.anti_idle.models import Beat, DayVerdict
    from plugins.anti_idle.verdicts import settle

    tabs = [me.open(me.document, at=T0, deliver=10**6), me.open(me.document, at=T0, deliver=10**6)]
    names = {tab.session.id: f"tab{i}" for i, tab in enumerate(tabs)}
    at = T0
    for tab_no, gap, twist in ops:
        at += dt.timedelta(seconds=gap)
        presence: dict[str, object] = {}
        if twist == "idle":
            presence["idle_ms"] = 900_000
        if twist == "untrusted":
            presence["input"] = {"untrusted": 3}
        if twist in ("unfocused", "focused"):
            presence["focused"] = twist == "focused"
        client: dict[str, object] = {"visibility": "hidden" if twist == "hidden" else "visible"}
        if presence:
            client["presence"] = presence
        visible_ms = gap * 1000 + (5_000 if twist == "long" else 0)  # what the reader saw: the claim
        envelope = {"unsigned": "unsigned", "forged": "forged"}.get(twist or "", "signed")
        event = "pause" if twist == "pause" else "heartbeat"
        me.beat(tabs[tab_no], at, None, event=event, envelope=envelope, client=client, visible_ms=visible_ms)
    settle(me.user.id)
    db.session.commit()
    beats = [
        (
            names[b.session_id],
            b.seq,
            b.event,
            b.credited,
            b.credited_ms,
            b.credit_start,
            b.cuts,
            b.flags,
            b.hidden_since,
            b.last_claim_end,
            b.session_claimed_ms,
            b.session_covered,
            b.lesson_credited_ms,
            b.day_credited_ms,
            names.get(b.focus_session),
            b.focus_until,
        )
        for b in db.session.query(Beat).filter_by(user_id=me.user.id).order_by(Beat.id)
    ]
    verdicts = [
        (v.day, v.verdict, v.review_score, v.rules, v.claimed_ms, v.credited_ms, v.held_ms, v.deducted_ms, v.void_ms)
        for v in db.session.query(DayVerdict).filter_by(user_id=me.user.id).order_by(DayVerdict.day)
    ]
    tallies = [
        {k: v for k, v in (d.tally or {}).items() if k not in ("published", "sessions", "hidden_sessions")}
        for d in db.session.query(DayVerdict).filter_by(user_id=me.user.id).order_by(DayVerdict.day)
    ]
    return beats, verdicts, tallies


@pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops_st)
# Every twist once, between honest beats of both tabs.
@example(ops=[op for twist in TWISTS for op in ((0, 10, None), (1, 10, None), (0, 10, twist), (0, 10, None))])
def test_document_beats_are_stored_alike_with_and_without_the_plain_path(app, tree, ops, monkeypatch):
    from tests.lms_core.learning.fixtures import build_course
    from tests.plugins.anti_idle.harness import make_learner, other_learner

    cache = app.extensions.setdefault("anti_idle_plain_kit", {})
    if "first" not in cache:
        cache["first"] = make_learner(tree, build_course(tree))
    first = cache["first"]
    counter = cache.setdefault("n", [0])
    counter[0] += 1
    with_plain = _read(other_learner(tree, first, name=f"甲{counter[0]}"), ops)
    with monkeypatch.context() as m:
        m.setattr(els, "assess", functools.partial(els.assess, plain=False))
        without = _read(other_learner(tree, first, name=f"乙{counter[0]}"), ops)
    assert with_plain == without
