"""The hook's per-beat shortcuts give what the long way gives.

* ``els.new``: a frozen dataclass filled without ``__init__`` equals the one ``__init__``
  builds, and any other set of names still goes through ``__init__`` (defaults, errors);
* ``verdicts._claimed_measure``: the measure of a beat's claimed ranges, as
  ``segs.total(segs.normalise(...))`` gives it, for any ranges, well formed or not;
* ``verdicts.derive``: its void and held sums, taken over the day's cuts, are the sums
  over the rules it took before;
* ``state._state_of``: the ``State`` filled without ``__init__`` equals the one ``__init__`` builds;
* ``state_pg._columns``: the round's raw beat columns, the keys first seen over the beats;
* ``services.beat_row``'s ranges and flags as the beat's own tuples: the same JSON as the lists.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lms_core.learning import segments as segs
from plugins.anti_idle import els
from plugins.anti_idle.policy import DEFAULTS
from plugins.anti_idle.verdicts import HOLD_RULES, VOID_RULES, Tally, _claimed_measure, derive

AT = dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC)

PRIOR = {
    "hidden_since": None,
    "last_event": "heartbeat",
    "last_seq": 4,
    "last_claim_end": 10_000,
    "session_claimed_ms": 40_000,
    "session_covered": ((0, 40_000),),
    "lesson_credited_ms": 40_000,
    "day_credited_ms": 90_000,
    "focus_session": "s" * 32,
    "focus_until": AT,
}

BEAT = {
    "session_id": "s" * 32,
    "lesson_id": 7,
    "lesson_kind": "document",
    "event": "heartbeat",
    "seq": 5,
    "wall_start": AT,
    "received_at": AT + dt.timedelta(seconds=10),
    "launched_at": AT - dt.timedelta(minutes=5),
    "credit_from": AT,
    "claimed": ((0, 10_000),),
    "duration_ms": None,
    "bytes_served": None,
    "media_size": None,
    "client": {"visibility": "visible", "envelope": "valid", "seq_prev": 4},
}


@pytest.mark.parametrize(("cls", "values"), [(els.Prior, PRIOR), (els.BeatInput, BEAT)])
def test_new_equals_init(cls: type, values: dict[str, Any]) -> None:
    built = els.new(cls, **values)
    assert type(built) is cls
    assert built == cls(**values)
    assert dataclasses.asdict(built) == dataclasses.asdict(cls(**values))
    if cls is els.Prior:  # hashable (a BeatInput holds a dict)
        assert hash(built) == hash(cls(**values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.seq = 1  # still frozen


def test_new_takes_init_for_other_names() -> None:
    partial = {k: v for k, v in PRIOR.items() if k not in ("focus_session", "focus_until", "hidden_since")}
    assert els.new(els.Prior, **partial) == els.Prior(**partial)
    assert els.new(els.Prior, **partial).focus_session is None  # the default, filled by __init__
    with pytest.raises(TypeError):
        els.new(els.Prior, **PRIOR, unknown=1)
    outcome = {
        "credited": ((0, 10_000),),
        "credited_ms": 10_000,
        "credit_start": AT,
        "cuts": {},
        "flags": (),
        "after": els.Prior(**PRIOR),
    }
    assert els.new(els.Outcome, **outcome) == els.Outcome(**outcome)
    assert els.new(els.Outcome, **outcome).credit_end == AT + dt.timedelta(seconds=10)


bound = st.integers(-5_000, 50_000)
seg_st = st.one_of(
    st.lists(bound, min_size=2, max_size=2),
    st.tuples(bound, bound),
    st.lists(bound, min_size=0, max_size=3),
    st.tuples(st.booleans(), bound),
)


@given(claimed=st.lists(seg_st, max_size=4))
def test_claimed_measure_is_the_normal_forms_total(claimed: list[Any]) -> None:
    assert _claimed_measure(claimed) == segs.total(segs.normalise([tuple(s) for s in claimed]))


@given(
    cuts=st.dictionaries(
        st.sampled_from(["R01", "R03", "R03e", "R04", "R07b", "R10a", "R14", "R16"]), st.integers(0, 900_000)
    ),
    claimed=st.integers(0, 14 * 3600 * 1000),
    credited=st.integers(0, 14 * 3600 * 1000),
)
def test_derive_sums_over_the_cuts(cuts: dict[str, int], claimed: int, credited: int) -> None:
    d = derive(Tally(claimed_ms=claimed, credited_ms=credited, cuts=cuts), DEFAULTS)
    void_ms = min(claimed - credited, sum(cuts.get(r, 0) for r in VOID_RULES) if cuts else 0)
    held_ms = min(claimed - credited - void_ms, sum(cuts.get(r, 0) for r in HOLD_RULES) if cuts else 0)
    assert d.void_ms == void_ms
    assert d.held_ms >= held_ms  # more only by what the score or the day rules hold
    if d.score < int(DEFAULTS["hold_score"]):
        assert d.held_ms == held_ms


def test_credit_is_the_verdict() -> None:
    from lms_core.learning.assessment import CREDIT, Verdict
    from plugins.anti_idle.services import _credit

    for answer in (None, {"check": "due"}):
        built = _credit(((0, 10_000),), 10_000, answer)
        assert built == Verdict(CREDIT, ((0, 10_000),), reason="", code="", credited_ms=10_000, answer=answer)
        assert type(built) is Verdict


@given(
    ats=st.lists(
        st.one_of(
            st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)),  # noqa: DTZ001
            # around Beijing's midnights (16:00 UTC) of a few days, where the kept day ends
            st.builds(
                lambda d, us: dt.datetime(2026, 12, 1, 16, tzinfo=dt.UTC) + dt.timedelta(days=d, microseconds=us),
                st.integers(-2, 2),
                st.integers(-2_000_000, 2_000_000),
            ),
        ).map(lambda at: at.replace(tzinfo=dt.UTC)),
        min_size=1,
        max_size=6,
    )
)
def test_beijing_day_is_the_zones(ats: list[dt.datetime]) -> None:
    for at in ats:  # in turn: each may be answered from the day the one before kept
        assert els.beijing_day(at) == at.astimezone(els.SHANGHAI).date()
    other = ats[0].astimezone(dt.timezone(dt.timedelta(hours=-5)))  # aware, not UTC: the zone's way
    assert els.beijing_day(other) == other.astimezone(els.SHANGHAI).date()


sessions_st = st.dictionaries(
    st.text("abc", min_size=1, max_size=3),
    st.lists(st.one_of(st.none(), st.integers(0, 10**6), st.text("xy", max_size=2)), max_size=6),
    max_size=3,
)


@given(
    sessions=st.one_of(sessions_st, sessions_st.map(lambda d: [[k, *v] for k, v in d.items()]), st.none()),
    lessons=st.one_of(
        st.dictionaries(st.integers(1, 50).map(str), st.integers(0, 10**6), max_size=3),
        st.lists(st.tuples(st.integers(1, 50), st.integers(0, 10**6)).map(list), max_size=3),
        st.none(),
    ),
    day=st.one_of(st.none(), st.dates()),
    credited=st.integers(0, 10**8),
    focus=st.one_of(st.none(), st.text("s", min_size=1, max_size=2)),
    tally=st.one_of(st.none(), st.dictionaries(st.text("t", max_size=2), st.integers(), max_size=2)),
)
def test_state_of_equals_init(
    sessions: Any, lessons: Any, day: dt.date | None, credited: int, focus: str | None, tally: Any
) -> None:
    """``state._state_of`` fills the ``State`` without ``__init__``: the object ``__init__`` builds."""
    from plugins.anti_idle import state

    row = (day, credited, focus, AT if focus else None, sessions, lessons, day, tally)
    built = state._state_of(7, row)
    assert type(built) is state.State
    expected = state.State(
        user_id=7,
        exists=True,
        day=day,
        day_credited_ms=credited,
        focus_session=focus,
        focus_until=AT if focus else None,
        sessions=sessions if type(sessions) is dict else {e[0]: e[1:] for e in sessions or ()},
        lessons=lessons if type(lessons) is dict else {str(k): ms for k, ms in lessons or ()},
        tally_day=day,
        day_tally=tally,
    )
    assert built == expected
    assert vars(built) == vars(expected)
    if type(sessions) is dict:
        assert built.sessions is sessions  # the kept objects themselves, as before


@given(st.lists(st.lists(st.sampled_from("abcdef"), unique=True).map(lambda ks: dict.fromkeys(ks, 0)), max_size=5))
def test_round_columns_are_the_keys_first_seen(beats: list[dict[str, Any]]) -> None:
    """``state_pg._columns``: the raw beats' keys in the order first seen, as the union of each
    beat's keys (``dict.fromkeys``) gave them, also when the beats' keys differ."""
    from plugins.anti_idle import state_pg

    seen: dict[str, None] = {}
    for beat in beats:
        seen.update(dict.fromkeys(beat))
    assert state_pg._columns(beats) == tuple(seen)


@given(
    claimed=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1, max_size=3).map(tuple),
    credited=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), max_size=3).map(tuple),
    flags=st.lists(st.sampled_from(["R04", "R07b", "R13d"]), unique=True, max_size=2).map(tuple),
)
def test_beat_row_tuples_write_the_lists_json(
    claimed: tuple[Any, ...], credited: tuple[Any, ...], flags: tuple[str, ...]
) -> None:
    """``services.beat_row`` gives the beat's and outcome's own tuples (no list copies): each
    JSON column's text is the one the lists gave, by msgspec (PostgreSQL) and ``json.dumps`` (SQLite)."""
    import json

    import msgspec

    from plugins.anti_idle.services import beat_row

    beat = els.new(els.BeatInput, **{**BEAT, "claimed": claimed})
    after = els.new(els.Prior, **{**PRIOR, "session_covered": credited})
    outcome = els.Outcome(credited=credited, credited_ms=1, credit_start=AT, cuts={}, flags=flags, after=after)
    row = beat_row(3, beat, outcome, 1, 10_000, 0)
    lists = {
        "claimed": [list(s) for s in claimed],
        "credited": [list(s) for s in credited],
        "flags": list(flags),
        "session_covered": [list(s) for s in credited],
    }
    for key, value in lists.items():
        assert msgspec.json.encode(row[key]) == msgspec.json.encode(value)
        assert json.dumps(row[key]) == json.dumps(value)


def _draw_long_way(secret: Any, user_id: int, reference: dt.datetime, low: int, high: int) -> int:
    """``checks._draw`` as it was: an HMAC set up and computed on every call."""
    import hashlib
    import hmac

    if high <= low:
        return low
    message = f"anti-idle-check:{user_id}:{reference.isoformat()}".encode()
    digest = hmac.new(str(secret).encode(), message, hashlib.sha256).digest()
    return low + int.from_bytes(digest[:8], "big") % (high - low + 1)


_ZONES = st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=8)), dt.timezone(dt.timedelta(hours=-5))])
#: References: any instant in any zone, or one of a few instants (the same one asked again,
#: under another secret, for another person, or spelled in another zone).
_REFERENCES = st.one_of(
    st.builds(
        lambda at, zone: at.astimezone(zone) if zone is not None else at.replace(tzinfo=None),
        st.sampled_from([dt.datetime(2000, 1, 1, tzinfo=dt.UTC), AT, AT.replace(microsecond=250_000)]),
        _ZONES,
    ),
    st.datetimes(min_value=dt.datetime(1999, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=_ZONES),  # noqa: DTZ001 - bounds of naive values, zones drawn
)


@given(
    asks=st.lists(
        st.tuples(
            st.sampled_from(["secret-a", "secret-b", b"secret-a", "b'secret-a'"]),
            st.sampled_from([1, 2, 5, True]),
            _REFERENCES,
            st.integers(0, 120),
            st.one_of(st.integers(600, 1200), st.integers(0, 120)),
        ),
        min_size=1,
        max_size=40,
    ),
    bound=st.integers(1, 4),
)
@example(  # the same UTC reference: another person, one equal to 1 but spelled "True", another secret
    asks=[
        ("secret-a", 1, AT, 0, 1000),
        ("secret-a", 2, AT, 0, 1000),
        ("secret-a", True, AT, 0, 1000),
        ("secret-b", 1, AT, 0, 1000),
        ("secret-a", 1, AT.astimezone(dt.timezone(dt.timedelta(hours=8))), 0, 1000),
    ],
    bound=8,
)
def test_draw_kept_is_the_hmacs(asks: list[tuple[Any, int, dt.datetime, int, int]], bound: int) -> None:
    """``checks._draw`` with its numbers kept per (secret, person, reference) gives the HMAC's
    number on every call: asked again, for equal instants in other zones (another message),
    naive or UTC, after the app's secret changes (also to one whose text is the same), for a
    person id equal to another but spelled otherwise (``True``), and when the kept map fills."""
    from unittest import mock

    from flask import Flask

    from plugins.anti_idle import checks

    app = Flask(__name__)
    with mock.patch.object(checks, "_DRAWS_MAX", bound), app.app_context():
        for secret, user_id, reference, low, high in asks * 2:
            app.config["SECRET_KEY"] = secret
            assert checks._draw(user_id, reference, low, high) == _draw_long_way(secret, user_id, reference, low, high)
        assert len(app.extensions.get("anti_idle_check_draws", {})) <= bound


_PAIRS = st.tuples(st.integers(-5, 60), st.integers(-5, 60))


@given(
    covered=st.one_of(
        st.lists(_PAIRS, max_size=6).map(tuple),
        st.lists(_PAIRS, max_size=6),
        st.lists(_PAIRS.map(list), max_size=6).map(tuple),
        st.lists(st.tuples(st.integers(0, 60), st.booleans()), max_size=3).map(tuple),
        st.lists(st.tuples(st.integers(0, 9), st.integers(10, 20), st.integers(30, 40)), max_size=2).map(tuple),
    )
)
def test_session_state_covered_is_the_normal_form(covered: Any) -> None:
    """``els.SessionState`` takes ranges already in normal form as they are: the same list of
    pairs, and measure, as ``segs.normalise`` of any ranges (tuples or lists, touching, out of
    order, empty, inverted, negative, malformed)."""
    state = els.SessionState(covered=covered)
    assert state.covered == segs.normalise(covered)
    assert all(type(seg) is tuple for seg in state.covered)
    assert state.covered_ms == segs.total(segs.normalise(covered))


@given(us=st.integers(-2_208_988_800_000_000, 7_258_118_400_000_000))  # 1900 to 2200
def test_at_us_is_the_keyword_timedelta(us: int) -> None:
    """``els.at_us`` with the timedelta built positionally: the instant ``microseconds=us`` gives."""
    at = els.at_us(us)
    assert at == els.EPOCH + dt.timedelta(microseconds=us)
    assert at.tzinfo is dt.UTC and els.us_of(at) == us
