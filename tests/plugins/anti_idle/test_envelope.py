"""Signed beat envelopes, seq gaps and clock drift (envelope.py, els.assess).

Forged or unsigned beats earn nothing and leave evidence; a gap in ``seq`` is noted
for the auditor without costing an honest learner anything; a page clock that runs
ahead of the server's is flagged.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lms_core.extensions import db
from lms_core.learning.models import LearningInterval, LearningSession
from lms_core.media.services import record_delivery
from plugins.anti_idle import envelope
from plugins.anti_idle.models import Beat, Evidence
from tests.conftest import login
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0, S, zh

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])


# --- the envelope itself -------------------------------------------------------------------


def test_sign_and_verify(app):
    body = json.dumps({"seq": 1, "event": "heartbeat", "client": {"x": "中文"}}, ensure_ascii=False).encode()
    signed = envelope.sign("s1", body)
    assert signed.endswith(b'"}') and b',"sig":"' in signed
    assert envelope.verify("s1", signed) == "valid"
    assert envelope.verify("s2", signed) == "bad"  # another session's key
    assert envelope.verify("s1", signed.replace(b'"seq": 1', b'"seq": 2')) == "bad"
    assert envelope.verify("s1", body) == "unsigned"
    assert envelope.verify("s1", body[:-1] + b',"sig":"nothex"}') == "bad"
    assert envelope.verify("s1", signed + b"\n") == "valid"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=20)), max_size=5))
def test_any_alteration_of_a_signed_body_is_refused(app, payload):
    body = json.dumps({"seq": 7, **payload}).encode()
    signed = envelope.sign("abc", body)
    assert envelope.verify("abc", signed) == "valid"
    flipped = bytes([signed[1] ^ 1]) if signed[1:2] != b"\\" else b"x"
    assert envelope.verify("abc", signed[:1] + flipped + signed[2:]) == "bad"


def test_the_key_and_signature_are_the_documented_hmacs_kept_or_not(app, monkeypatch):
    """Kept per app (the key), one-shot (the beat's HMAC): the same bytes as the HMAC objects
    the player's key and signature are defined by, from the cache or not."""
    import hashlib
    import hmac

    monkeypatch.setattr(envelope, "_KEYS_MAX", 2)
    body = b'{"seq":3,"event":"heartbeat"}'
    for _round in range(2):
        for sid in ("s1", "s2", "s3"):  # past two, the oldest key goes
            key = hmac.new(app.config["SECRET_KEY"].encode(), b"anti-idle-beat:" + sid.encode(), hashlib.sha256)
            assert envelope.session_key(sid) == key.hexdigest()
            mac = hmac.new(key.hexdigest().encode(), body, hashlib.sha256).hexdigest()
            assert envelope.verify(sid, body[:-1] + b',"sig":"' + mac.encode() + b'"}') == "valid"
            assert envelope.verify(sid, body[:-1] + b',"sig":"' + mac[::-1].encode() + b'"}') == "bad"
    assert len(app.extensions["anti_idle_beat_keys"]) <= 2


def test_the_key_differs_per_session_and_per_secret(app):
    a, b = envelope.session_key("s1"), envelope.session_key("s2")
    assert a != b and len(a) == 64
    app.config["SECRET_KEY"] = "another-secret"
    assert envelope.session_key("s1") != a


# --- through the credit path ----------------------------------------------------------------


def test_unsigned_beats_earn_nothing_and_are_recorded(me):
    tab = me.open(deliver=LECTURE_BYTES)
    for i in range(1, 31):
        me.beat(tab, T0 + 10 * i * S, [[10 * (i - 1), 10 * i]], envelope="unsigned")
    assert me.credited_s() == 0
    v = me.recompute()
    assert v.verdict == "void" and "R03e" in v.rules and v.void_ms >= 290_000
    assert v.review_score == 0  # an old cached player page is not held against anyone
    (line,) = db.session.query(Evidence).filter_by(user_id=me.user.id, rule="R03e").all()
    assert "没有课程页面的签名" in zh(line) and len(line.beat_ids) == 30


def test_forged_signatures_void_and_hold_the_day(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 60)
    for i in range(1, 31):
        me.beat(tab, at + 10 * i * S, [[60 + 10 * (i - 1), 60 + 10 * i]], envelope="forged")
    assert me.credited_s() <= 61  # the honest minute only
    v = me.recompute()
    assert "R03b" in v.rules and v.verdict == "held" and v.review_score >= 50
    lines = {e.rule: e for e in db.session.query(Evidence).filter_by(user_id=me.user.id)}
    assert "伪造或篡改" in zh(lines["R03b"])


def test_signature_can_be_switched_off_by_policy_during_an_upgrade(me):
    from plugins.anti_idle import policy

    policy.new_version({"signed_beats": 0})
    db.session.commit()
    tab = me.open(deliver=LECTURE_BYTES)
    for i in range(1, 13):
        me.beat(tab, T0 + 10 * i * S, [[10 * (i - 1), 10 * i]], envelope="unsigned")
    assert me.credited_s() >= 119
    me.recompute()


def test_the_client_cannot_claim_a_valid_envelope(me):
    tab = me.open(deliver=LECTURE_BYTES)
    for i in range(1, 7):
        me.beat(tab, T0 + 10 * i * S, [[10 * (i - 1), 10 * i]], envelope="unsigned", client={"envelope": "valid"})
    assert me.credited_s() == 0
    stored = db.session.query(Beat).filter_by(user_id=me.user.id).all()
    assert {b.client["envelope"] for b in stored} == {"unsigned"}


def test_signed_beats_over_http(client, me):
    """The real view: the player's signature on the raw body, checked before the core parses it."""
    login(client, me.user.username)
    client.get(f"/learn/lessons/{me.lecture.id}")
    session = db.session.query(LearningSession).filter_by(user_id=me.user.id).one()
    record_delivery(session.id, me.user.id, me.lecture.media_id, LECTURE_BYTES)
    db.session.commit()
    start = session.started_at
    for i in range(1, 4):
        body = {"seq": i, "event": "heartbeat", "segments": [[10 * (i - 1), 10 * i]], "position": 10 * i}
        raw = json.dumps(body).encode()
        with time_machine.travel(start + 10 * i * S, tick=False):
            r = client.post(
                f"/learn/sessions/{session.id}/beat",
                data=envelope.sign(session.id, raw) if i != 3 else raw,
                content_type="application/json",
            )
        assert r.status_code == 200, r.get_data(as_text=True)
        assert (r.get_json()["credited_ms"] > 0) == (i != 3), [
            (b.cuts, b.client, b.flags) for b in db.session.query(Beat)
        ]
    verdicts = [b.client["envelope"] for b in db.session.query(Beat).order_by(Beat.id)]
    assert verdicts == ["valid", "valid", "unsigned"]
    assert sum(i.credited_ms for i in db.session.query(LearningInterval)) <= 21_000


def test_the_overlay_hands_the_page_its_session_key(client, me):
    login(client, me.user.username)
    html = client.get(f"/learn/lessons/{me.lecture.id}").get_data(as_text=True)
    session = db.session.query(LearningSession).filter_by(user_id=me.user.id).one()
    assert f'data-beat-key="{envelope.session_key(session.id)}"' in html


# --- gaps in seq ----------------------------------------------------------------------------


def test_lost_beats_are_noted_and_cost_the_honest_learner_nothing(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 60)
    tab.seq += 2  # two beats lost on a flaky network
    at = me.play(tab, at + 20 * S, 60, from_pos=80)
    me.play(tab, at, 60)
    assert me.credited_s() >= 180 * 0.97
    v = me.recompute()
    assert v.verdict == "credited" and v.review_score == 0 and "R03q" in v.rules
    (line,) = db.session.query(Evidence).filter_by(user_id=me.user.id, rule="R03q").all()
    assert line.action == "info" and "未送达" in zh(line)


def test_paused_beats_are_not_missing_beats(me):
    """Beats that claim nothing (paused, taking notes) never reach the plugin: the seq the
    plugin sees jumps over them, but the core took them, so nothing is missing."""
    tab = me.open(deliver=LECTURE_BYTES)
    at = me.play(tab, T0, 60)
    me.beat(tab, at + 1 * S, event="pause")
    me.beat(tab, at + 11 * S, event="heartbeat")  # paused: no segments
    me.beat(tab, at + 21 * S, event="heartbeat")
    me.play(tab, at + 25 * S, 60, event_first="play")
    assert me.credited_s() >= 120
    v = me.recompute()
    assert v.verdict == "credited" and "R03q" not in v.rules
    assert db.session.query(Evidence).filter_by(user_id=me.user.id, rule="R03q").count() == 0


def test_replayed_seq_earns_nothing(me):
    tab = me.open(deliver=LECTURE_BYTES)
    me.beat(tab, T0 + 10 * S, [[0, 10]])
    r = me.beat(tab, T0 + 20 * S, [[10, 20]], seq=1)  # same seq, other content: acknowledged, not credited
    assert r.duplicate and r.credited_ms == 0
    assert me.credited_s() <= 11


# --- clock drift ------------------------------------------------------------------------------


def test_a_page_clock_running_fast_is_flagged(me):
    tab = me.open(deliver=LECTURE_BYTES)
    for i in range(1, 31):  # a speed hack: performance.now() runs at 2x
        me.beat(tab, T0 + 10 * i * S, [[10 * (i - 1), 10 * i]], client={"presence": {"mono_ms": 20_000 * i}})
    v = me.recompute()
    assert "R13d" in v.rules and v.review_score == 25
    assert me.credited_s() >= 290  # the server's clock still decides the credit


def test_an_honest_page_clock_with_slow_page_load_and_offline_queue(me):
    tab = me.open(deliver=LECTURE_BYTES)
    at = T0
    for i in range(1, 13):  # the page took 3 s to load: its clock is 3 s ahead of the session
        at = T0 + 10 * i * S
        me.beat(tab, at, [[10 * (i - 1), 10 * i]], client={"presence": {"mono_ms": 10_000 * i + 3000}})
    late = at + 40 * S  # three beats queued offline, sent together: their clocks are older
    for n in range(3):
        mono = 10_000 * (13 + n) + 3000
        me.beat(
            tab,
            late + n * dt.timedelta(milliseconds=30),
            [[120 + 10 * n, 130 + 10 * n]],
            offline_queued=True,
            client={"presence": {"mono_ms": mono}},
        )
    v = me.recompute()
    assert "R13d" not in v.rules and v.verdict == "credited"
