"""Beats that earn nothing are kept as evidence: repeats, replays and beats made too long ago.

The core refuses a beat made (by the player's claimed time ``at``) more than
``LMS_BEAT_LATE_WINDOW_HOURS`` ago with a 422 in Chinese, and acknowledges a beat whose
``seq`` it already has; both are stored in the append-only ``learning_refused_beats``
and the person-day's evidence names them in a Chinese line.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from lms_core.extensions import db
from lms_core.jobs.services import run_inline_jobs
from lms_core.learning.models import LearningInterval, LearningSession, RefusedBeat
from lms_core.media.services import record_delivery
from plugins.anti_idle import envelope
from plugins.anti_idle.models import Evidence
from tests.conftest import login
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0, S, zh

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])


def ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


@pytest.fixture
def http(client, me):
    """The learner on the real view: (post(seq, at_server, made_at, segments), session)."""
    with time_machine.travel(T0, tick=False):
        login(client, me.user.username)
        client.get(f"/learn/lessons/{me.lecture.id}")
    session = db.session.query(LearningSession).filter_by(user_id=me.user.id).one()
    record_delivery(session.id, me.user.id, me.lecture.media_id, LECTURE_BYTES)
    db.session.commit()

    def post(seq, at, made_at=None, segments=None):
        body = {"seq": seq, "event": "heartbeat", "segments": segments or [], "position": 0}
        if made_at is not None:
            body["at"] = ms(made_at)
        raw = envelope.sign(session.id, json.dumps(body).encode())
        with time_machine.travel(at, tick=False):
            return client.post(f"/learn/sessions/{session.id}/beat", data=raw, content_type="application/json")

    return post, session


def test_a_beat_made_more_than_24_hours_ago_is_refused_in_chinese_and_kept(client, me, http):
    post, session = http
    assert post(1, T0 + 10 * S, T0 + 10 * S, [[0, 10]]).status_code == 200
    late = post(2, T0 + 25 * 3600 * S, T0 + 20 * S, [[10, 20]])
    assert late.status_code == 422
    answer = late.get_json()
    assert answer["refused"] == "late" and "24 小时" in answer["error"], answer
    row = db.session.query(RefusedBeat).one()
    assert (row.reason, row.seq, row.session_id) == ("late", 2, session.id)
    assert row.made_at == T0 + 20 * S and row.received_at == T0 + 25 * 3600 * S
    assert row.beat["claimed"] == [[10_000, 20_000]]  # what it claimed is kept, not credited
    assert sum(i.credited_ms for i in db.session.query(LearningInterval)) == 10_000
    with time_machine.travel(T0 + 25 * 3600 * S, tick=False):
        study = client.get(f"/api/v1/me/study?lesson={me.lecture.id}").get_json()
    assert study["credited_seconds"] == 10.0  # the read-back counts the refused beat as nothing


def test_a_beat_inside_the_window_is_credited_and_one_just_outside_is_not(me, http):
    post, _session = http
    at = T0 + 10 * S
    assert post(1, at, at - dt.timedelta(hours=23, minutes=59), [[0, 10]]).status_code == 200
    assert post(2, at + 10 * S, at + 10 * S - dt.timedelta(hours=24, seconds=1), [[10, 20]]).status_code == 422
    assert post(3, at + 20 * S, None, [[10, 20]]).status_code == 200  # no ``at`` (older player): as before
    assert [r.reason for r in db.session.query(RefusedBeat)] == ["late"]


def test_a_late_beat_leaves_a_chinese_evidence_line_on_its_day(me, http):
    post, _session = http
    day_start = T0 + 3600 * S
    assert post(1, day_start, day_start, [[0, 10]]).status_code == 200
    assert post(2, day_start + 10 * S, day_start - 30 * 3600 * S, [[0, 10]]).status_code == 422
    run_inline_jobs()
    (line,) = db.session.query(Evidence).filter_by(user_id=me.user.id, rule="R03l").all()
    assert line.action == "info" and line.amount_ms == 0 and line.params["count"] == 1
    text_zh = zh(line)
    assert "超过补传时限" in text_zh and "24 小时" in text_zh and "R03" not in text_zh, text_zh
    assert line.params["refused_ids"] == [db.session.query(RefusedBeat).one().id]


def test_repeated_and_replayed_beats_are_acknowledged_kept_and_explained(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 60)
    credited = me.credited_s()
    last = tab.seq
    again = me.beat(tab, at + 1 * S, [[50, 60]], seq=last)  # the network retried the last beat
    assert again.duplicate and not again.accepted and again.credited_ms == 0
    old = me.beat(tab, at + 2 * S, [[0, 10]], seq=1)  # an old beat sent again
    assert old.duplicate and old.credited_ms == 0
    assert me.credited_s() == credited  # nothing counted twice
    from plugins.anti_idle.study import lesson_study

    assert lesson_study(me.user.id, me.lecture.id)["credited_seconds"] == credited  # the read-back agrees
    rows = db.session.query(RefusedBeat).order_by(RefusedBeat.id).all()
    assert [(r.reason, r.seq) for r in rows] == [("repeat", last), ("replay", 1)]
    assert rows[1].beat["claimed"] == [[0, 10_000]] and rows[1].made_at is None
    run_inline_jobs()  # the refusals' events rebuild the day's evidence
    lines = {e.rule: e for e in db.session.query(Evidence).filter_by(user_id=me.user.id)}
    assert "再次送达" in zh(lines["R03r"]) and "重新发送" in zh(lines["R03p"])
    assert lines["R03r"].params["refused_ids"] == [rows[0].id]
    v = me.recompute()
    assert v.verdict == "credited" and v.review_score == 0  # retries cost an honest learner nothing
    again = {e.rule for e in db.session.query(Evidence).filter_by(user_id=me.user.id)}
    assert {"R03r", "R03p"} <= again  # a recompute keeps them


def test_the_refused_beats_are_append_only(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 20)
    me.beat(tab, at + S, [[10, 20]], seq=tab.seq)
    for change in ("UPDATE learning_refused_beats SET reason = 'x'", "DELETE FROM learning_refused_beats"):
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(text(change))
        db.session.rollback()
    assert db.session.query(RefusedBeat).count() == 1


@pytest.mark.parametrize("bad", ["yesterday", -1, 10**20, True])
def test_a_bad_claimed_time_is_a_400(client, me, http, bad):
    _post, session = http  # signed in, lesson open
    raw = envelope.sign(session.id, json.dumps({"seq": 1, "event": "heartbeat", "at": bad}).encode())
    with time_machine.travel(T0 + 10 * S, tick=False):
        r = client.post(f"/learn/sessions/{session.id}/beat", data=raw, content_type="application/json")
    assert r.status_code == 400 and "1970" in r.get_json()["error"]
    assert db.session.query(RefusedBeat).count() == 0
