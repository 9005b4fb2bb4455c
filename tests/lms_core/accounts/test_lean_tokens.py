"""lms_core/accounts/lean_tokens.py: the lean Bearer path's per-process grant cache."""

from __future__ import annotations

import threading

import pytest

from lms_core.accounts import lean_tokens
from lms_core.accounts.lean_tokens import TOUCH_EVERY_S, TokenCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_grant_is_trusted_for_the_readers_time() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    cache.remember("d", 7, "zh_CN")
    grant = cache.get("d", 30)
    assert grant is not None and (grant.user_id, grant.locale, grant.checked_at) == (7, "zh_CN", 1000.0)
    clock.now += 29.9
    assert cache.get("d", 30) is grant
    assert cache.get("d", 20) is None  # a shorter setting takes effect on the grants kept
    clock.now = 1030.0
    assert cache.get("d", 30) is None  # expired at its time, not after
    assert cache.get("other", 30) is None


def test_a_new_check_renews_the_grant() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    cache.remember("d", 7, None)
    clock.now += 25
    cache.remember("d", 7, "en")
    clock.now += 25
    grant = cache.get("d", 30)
    assert grant is not None and grant.locale == "en"


def test_forget_drops_one_token_or_all() -> None:
    cache = TokenCache(Clock())
    for d in ("a", "b"):
        cache.remember(d, 1, None)
    assert cache.due_touch(["a", "b"]) == ["a", "b"]
    cache.forget("a")
    assert cache.get("a", 30) is None and cache.get("b", 30) is not None
    assert cache.due_touch(["a", "b"]) == ["a"]  # a forgotten token is touched again
    cache.forget()
    assert cache.get("b", 30) is None
    assert cache.due_touch(["a", "b"]) == ["a", "b"]


def test_a_token_is_due_a_touch_once_a_minute() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    assert cache.due_touch(["a"]) == ["a"]
    clock.now += TOUCH_EVERY_S - 0.1
    assert cache.due_touch(["a", "b"]) == ["b"]
    clock.now += 0.1
    assert cache.due_touch(["a", "b"]) == ["a"]


def test_of_threads_touching_one_token_one_writes() -> None:
    cache = TokenCache(Clock())
    start = threading.Barrier(8)
    due: list[list[str]] = []

    def touch() -> None:
        start.wait()
        due.append(cache.due_touch(["a"]))

    threads = [threading.Thread(target=touch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(due) == [[]] * 7 + [["a"]]


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Full, the oldest entry goes (one for each new one): a bound on a process's memory."""
    monkeypatch.setattr(lean_tokens, "_MAX_ENTRIES", 3)
    cache = TokenCache(Clock())
    for d in ("a", "b", "c"):
        cache.remember(d, 1, None)
    assert all(cache.get(d, 30) for d in ("a", "b", "c"))
    cache.remember("d", 1, None)
    assert [d for d in ("a", "b", "c", "d") if cache.get(d, 30)] == ["b", "c", "d"]
    assert cache.due_touch(["a", "b", "c"]) == ["a", "b", "c"]
    assert cache.due_touch(["d"]) == ["d"]  # marks a, the oldest, goes
    assert cache.due_touch(["b", "a"]) == ["a"]  # b still marked; a, dropped, touched again
