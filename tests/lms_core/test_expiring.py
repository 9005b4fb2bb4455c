"""lms_core/expiring.py: the sign-in caches' map whose entries expire."""

from __future__ import annotations

from flask import Flask

from lms_core.expiring import Bounded, ExpiringMap, per_app


def test_an_entry_lives_until_its_time_on_the_callers_clock() -> None:
    m: ExpiringMap[str, int] = ExpiringMap()
    m.put("a", 1, until=10.0)
    assert m.fresh("a", 9.9) == 1
    assert m.fresh("a", 10.0) is None  # expired at its time, not after
    assert m.fresh("b", 0.0) is None


def test_full_the_least_recently_put_goes_one_for_each_new_one() -> None:
    """Not the whole map at once: every entry made again together was a burst (the lean
    beat's verified cookies at 10,000 learners a worker)."""
    m: ExpiringMap[int, int] = ExpiringMap(most=3)
    for k in range(3):
        m.put(k, k, until=5.0)
    assert sorted(m) == [0, 1, 2]
    m.put(3, 3, until=5.0)
    assert sorted(m) == [1, 2, 3]
    m.put(1, 10, until=6.0)  # put again: now the youngest
    m.put(4, 4, until=5.0)
    assert sorted(m) == [1, 3, 4]
    assert m.fresh(1, 5.5) == 10


def test_bounded_keeps_the_newest_most() -> None:
    kept: Bounded[int, str] = Bounded(3)
    for k in range(10):
        kept.keep(k, str(k))
        assert len(kept) <= 3
    assert list(kept.map) == [7, 8, 9]
    kept.keep(8, "again")  # kept again: its place and the bound unchanged
    assert list(kept.map.items()) == [(7, "7"), (8, "again"), (9, "9")]
    kept.keep(10, "10")
    assert list(kept.map) == [8, 9, 10] and len(kept) == 3
    assert kept.map.get(8) == "again" and kept.map.get(7) is None


def test_entries_drop_by_key_by_value_or_all() -> None:
    m: ExpiringMap[str, int] = ExpiringMap()
    for k, v in {"a": 1, "b": 2, "c": 1}.items():
        m.put(k, v, until=5.0)
    m.drop("b")
    m.drop("nothing")
    assert sorted(m) == ["a", "c"]
    m.drop_where(lambda v: v == 1)
    assert list(m) == []
    m.put("d", 4, until=5.0)
    m.clear()
    assert m.fresh("d", 0.0) is None


def test_each_app_has_its_own_map(app: Flask) -> None:
    """Ids and tokens belong to a database: two apps in one process never share entries."""
    other = Flask("other")
    with app.app_context():
        mine: ExpiringMap[str, int] = per_app("lms_test_map")
        mine.put("k", 1, until=5.0)
        assert per_app("lms_test_map") is mine
    with other.app_context():
        assert per_app("lms_test_map").fresh("k", 0.0) is None


def test_a_claim_keeps_the_value_unless_a_fresh_one_is_kept() -> None:
    m: ExpiringMap[str, int] = ExpiringMap(most=2)
    assert m.claim("a", 1, now=0.0, until=10.0)
    assert not m.claim("a", 2, now=9.9, until=20.0)
    assert m.fresh("a", 9.9) == 1
    assert m.claim("a", 3, now=10.0, until=20.0)  # expired: claimed again
    assert m.fresh("a", 10.0) == 3
    assert m.claim("b", 4, now=10.0, until=20.0)
    assert m.claim("c", 5, now=10.0, until=20.0)  # full: the oldest claim ("a"'s) goes
    assert list(m) == ["b", "c"]
