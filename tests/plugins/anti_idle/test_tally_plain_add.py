"""``verdicts._plain_add``: the day tally of a beat that moves only the sums, without the
``Tally`` round trip, is what ``from_json``, ``add`` and ``to_json`` give, and derives the same.

Tallies are written by ``to_json`` and read back through JSON (as the state row stores
them); beats are judged rows as ``services.beat_row`` makes them, cut or not, flagged or
not, of a session the day counts or not, muted or not, video or document.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.anti_idle.policy import DEFAULTS
from plugins.anti_idle.verdicts import Tally, _plain_add, derive

SESSIONS = ["a" * 32, "b" * 32, "c" * 32]
RULES = ["R01", "R04", "R05", "R07", "R07b", "R10a", "R14", "R16", "R03"]
FLAGS = ["R03q", "R11", "R13", "R07b", "R08b", "R13d"]

finding_st = st.fixed_dictionaries(
    {"score": st.sampled_from([0, 0, 20, 60]), "hold_ms": st.integers(0, 50_000), "deduct_ms": st.integers(0, 50_000)}
)

tally_st = st.builds(
    Tally,
    claimed_ms=st.integers(0, 14 * 3600 * 1000),
    credited_ms=st.integers(0, 10 * 3600 * 1000),
    cuts=st.dictionaries(st.sampled_from(RULES), st.integers(1, 900_000), max_size=3),
    flags=st.sets(st.sampled_from(FLAGS), max_size=2),
    hidden_sessions=st.sets(st.sampled_from(SESSIONS), max_size=3),
    sessions=st.sets(st.sampled_from(SESSIONS), max_size=3),
    muted_ms=st.integers(0, 10 * 3600 * 1000),
    beats=st.integers(0, 3000),
    day_rules=st.dictionaries(st.sampled_from(["R12", "R12d", "R07h", "R07o"]), finding_st, max_size=2),
    horizon=st.one_of(st.none(), st.just({"lapsed": [], "proven": []})),
)

beat_st = st.fixed_dictionaries(
    {
        "session_id": st.sampled_from(SESSIONS),
        "lesson_kind": st.sampled_from(["video", "document"]),
        "claimed": st.lists(st.tuples(st.integers(0, 60_000), st.integers(0, 12_000)), max_size=3).map(
            lambda xs: [[a, a + n] for a, n in xs]
        ),
        "credited_ms": st.integers(0, 12_000),
        "cuts": st.one_of(st.just({}), st.dictionaries(st.sampled_from(RULES), st.integers(1, 9000), max_size=2)),
        "flags": st.one_of(st.just([]), st.lists(st.sampled_from(FLAGS), max_size=2)),
        "client": st.one_of(st.just({}), st.fixed_dictionaries({"muted": st.sampled_from([True, False, 1, None])})),
    }
)


def _stored(t: Tally) -> dict[str, Any]:
    """``to_json`` as the state row gives it back (through JSON)."""
    return json.loads(json.dumps(t.to_json()))


def _claimed_norm(beat: dict[str, Any]) -> int:
    from lms_core.learning import segments as segs

    return segs.total(segs.normalise([tuple(s) for s in beat["claimed"]]))


@settings(max_examples=400, deadline=None)
@given(t=tally_st, beat=beat_st, joined=st.booleans())
def test_plain_add_is_the_round_trip(t: Tally, beat: dict[str, Any], joined: bool) -> None:
    if joined:
        t.sessions.add(beat["session_id"])
    stored = _stored(t)
    online = {"tally": stored}
    before = json.dumps(stored, sort_keys=True)

    kept = _plain_add(online, beat, _claimed_norm(beat))

    full = Tally.from_json(stored)
    full.add(beat)
    assert json.dumps(stored, sort_keys=True) == before  # the stored dict itself is left as it was
    if kept is None:
        assert online["tally"] is stored
        claimed = _claimed_norm(beat) if beat["lesson_kind"] == "video" else sum(b - a for a, b in beat["claimed"])
        assert beat["cuts"] or beat["flags"] or (claimed and beat["session_id"] not in t.sessions)
        return
    assert online["tally"] == full.to_json()
    assert derive(kept, DEFAULTS) == derive(full, DEFAULTS)


def test_a_tally_not_written_by_to_json_takes_the_full_way() -> None:
    beat = {"session_id": SESSIONS[0], "lesson_kind": "document", "claimed": [[0, 10_000]], "credited_ms": 10_000}
    beat |= {"cuts": {}, "flags": [], "client": {}}
    # A day verdict row's tally (with what was published), or a day's first beat (nothing yet).
    for data in ({**_stored(Tally(sessions={SESSIONS[0]})), "published": None}, {}):
        online = {"tally": data}
        assert _plain_add(online, beat, 10_000) is None
        assert online["tally"] is data
    online = {"tally": _stored(Tally(sessions={SESSIONS[0]}))}
    assert _plain_add(online, beat, 10_000) is not None
    assert (online["tally"]["claimed_ms"], online["tally"]["credited_ms"], online["tally"]["beats"]) == (
        10_000,
        10_000,
        1,
    )
