"""The online day tally keeps only what the online path reads (``verdicts._online_tally``).

The person's state row is written by every beat, its day tally with it; the day verdict row
keeps the day rules' findings whole (span, parameters, beats: the evidence and the auditors
read them). The state row keeps each finding cut to what ``derive`` and ``_moved`` read, the
last published event's three figures ``record_online`` compares, and ``derive``'s figures as
a list; a fold (the ORM's, and the round's one statement on PostgreSQL) writes the row's
findings back unchanged.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from lms_core.extensions import db
from plugins.anti_idle import state, state_pg, verdicts
from plugins.anti_idle.models import DayVerdict
from tests.plugins.anti_idle.harness import LECTURE_BYTES, T0, S
from tests.plugins.anti_idle.test_day_rules import DAY, settle, skip_through_three_lessons

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])


def test_the_state_row_keeps_a_cut_finding_and_a_fold_keeps_the_rows_whole(me, kit):
    at = skip_through_three_lessons(me, kit)
    assessed = settle(me)
    findings, published, beats = (
        json.loads(json.dumps(assessed.tally["day_rules"])),
        assessed.tally["published"],
        assessed.beats,
    )
    whole = findings["R02"]
    cut = {"score": 15}  # what derive reads of it (R02 takes no credit back: no end kept)
    assert set(whole) > {"score", "start", "end", "params"}  # its span, parameters and beats besides
    assert published is not None

    tab = me.open(at=at + 60 * S, deliver=LECTURE_BYTES)
    me.play(tab, at + 60 * S, 30)  # the day goes on online: the state row reads the day row
    online = state.load_unlocked(me.user.id).day_tally
    assert online is not None and online["dirty"]
    assert online["tally"]["day_rules"] == {"R02": cut}
    assert "published" not in online["tally"]
    assert online["published"] == {k: published[k] for k in verdicts._MARK_KEYS}
    verdict, score, rules, *_figures = online["derived"]
    assert (verdict, score, "R02" in rules) == ("credited", 15, True)

    folded = verdicts.settle(me.user.id)  # the ORM's fold of what the state row held
    db.session.commit()
    assert folded is not None
    db.session.expire_all()
    v = db.session.execute(
        select(DayVerdict).where(DayVerdict.user_id == me.user.id, DayVerdict.day == DAY)
    ).scalar_one()
    assert v.tally["day_rules"] == findings
    assert v.beats > beats and v.review_score == 15


def test_a_state_row_written_before_keeps_its_figures_as_a_dict():
    """A state row written before ``derived`` was a list: its fold reads the dict."""
    d = {
        "verdict": "held",
        "score": 70,
        "rules": ["R11"],
        "credited_ms": 1,
        "held_ms": 2,
        "deducted_ms": 3,
        "void_ms": 4,
    }
    assert verdicts._figures(d) == ("held", 70, ["R11"], 1, 2, 3, 4)
    assert verdicts._figures(["held", 70, ["R11"], 1, 2, 3, 4]) == ("held", 70, ["R11"], 1, 2, 3, 4)


@pytest.mark.backends("postgresql")
def test_the_rounds_fold_statement_keeps_the_rows_findings(me):
    """``state_pg._FOLD_MANY`` (``verdicts._fold_kept``'s one statement): the online tally's
    cut findings are not written over the row's whole ones; the rest of the tally is the fold's."""
    whole = {
        "R12": {
            "score": 0,
            "start": "2026-05-10T08:00:00+00:00",
            "end": "2026-05-10T08:10:00+00:00",
            "amount_ms": 0,
            "params": {"accounts": 45},
            "beat_ids": [],
            "variant": "sequential",
        }
    }
    payload = {"verdict": "credited", "credited_seconds": 10}
    v = DayVerdict(user_id=me.user.id, day=DAY, verdict="credited", tally={"day_rules": whole, "published": payload})
    db.session.add(v)
    db.session.flush()
    tally = verdicts.Tally(claimed_ms=20_000, credited_ms=20_000, beats=2, day_rules={"R12": {"score": 0}}).to_json()
    row = {
        "id": v.id,
        "verdict": "credited",
        "review_score": 0,
        "rules": ["R12"],
        "credited_ms": 20_000,
        "held_ms": 0,
        "deducted_ms": 0,
        "void_ms": 0,
        "claimed_ms": 20_000,
        "beats": 2,
        "policy_version": 0,
        "tally": tally,
        "publish": False,
        "published": None,
        "computed_at": T0.isoformat(),
    }
    state_pg.execute(state_pg._FOLD_MANY, {"v": json.dumps([row]), "l": "[]"})
    db.session.expire_all()
    written = db.session.get(DayVerdict, v.id)
    assert written is not None
    assert written.tally == {**tally, "day_rules": whole, "published": payload}
    assert (written.beats, written.claimed_ms) == (2, 20_000)
