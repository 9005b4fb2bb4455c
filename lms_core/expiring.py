"""A per-process map whose entries expire: what the sign-in caches share.

The heartbeat's session principal (``accounts.principal``) and the Bearer token's
(``accounts.token_principal``) each keep what one narrow SELECT said for a few seconds
(``LMS_AUTH_CACHE_SECONDS``), per app: ids and tokens belong to a database, and a process
may hold several apps (tests, tools). The lean heartbeat's verified cookies
(``learning.beat_front``) and the lean Bearer grants (``accounts.lean_tokens``) keep theirs
in one too. All need the same things: a lock (threaded
workers), an expiry on a clock the caller passes (the tests move it), an optional bound
on the size, and dropping entries by key or by what they hold (a user's tokens).

Full, a bounded map drops its oldest entry (the least recently put), one for each new one:
it used to start again empty, and then every entry had to be made again at once (at the
issue's 10,000 learners a worker, a cadence in which every beat verified its cookie again,
~0.25 ms each, after ~29 ms of freeing 50,000 entries with the GIL held). :class:`Bounded`
is the same bound for the plain per-process maps of values that never expire (a key's
derived HMAC, a referrer's same-origin answer).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, cast

from flask import current_app, has_app_context

K = TypeVar("K")
V = TypeVar("V")


class ExpiringMap(Generic[K, V]):
    """key -> value until a time on the caller's clock; thread-safe."""

    def __init__(self, most: int | None = None) -> None:
        self._lock = threading.Lock()
        self._items: dict[K, tuple[float, V]] = {}
        #: Bounded: the keys in the order they were last put (the oldest first), what
        #: :meth:`_bound` drops. Apart from ``_items``, which stays a plain dict: ``fresh``'s
        #: ``get`` on an ``OrderedDict`` cost ~270 instructions more a call (callgrind).
        self._order: OrderedDict[K, None] | None = None if most is None else OrderedDict()
        self._most = most

    def fresh(self, key: K, now: float) -> V | None:
        """The value kept for ``key``, unless it expired by ``now`` (or there is none).

        Without the lock: one ``dict.get`` is atomic (the GIL; a free-threaded build locks the
        dict itself), and an entry is one tuple, put whole. The writers (``put``, ``claim``,
        ``drop``, ``clear``) still hold the lock among themselves. Twice a beat on the
        heartbeat's writer thread (the round's ``principal.warm``, then the beat's
        ``principal_for``), once on its event loop."""
        item = self._items.get(key)
        return item[1] if item is not None and item[0] > now else None

    def put(self, key: K, value: V, until: float) -> None:
        """Keep ``value`` for ``key`` until ``until`` (on the clock :meth:`fresh` is given)."""
        with self._lock:
            self._items[key] = (until, value)
            self._bound(key)

    def _bound(self, key: K) -> None:
        """``key``, just put, is the youngest entry; past the bound the oldest goes (the lock held)."""
        order = self._order
        if order is not None:
            order[key] = None
            order.move_to_end(key)
            if len(order) > cast(int, self._most):
                oldest, _ = order.popitem(last=False)
                self._items.pop(oldest, None)

    def claim(self, key: K, value: V, now: float, until: float) -> bool:
        """Keep ``value`` for ``key`` until ``until`` unless a value is kept and fresh at
        ``now``; whether this call kept it. The test and the put hold one lock: of several
        threads claiming the same key, one wins."""
        with self._lock:
            item = self._items.get(key)
            if item is not None and item[0] > now:
                return False
            self._items[key] = (until, value)
            self._bound(key)
            return True

    def drop(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)
            if self._order is not None:
                self._order.pop(key, None)

    def drop_where(self, test: Callable[[V], bool]) -> None:
        """Drop every entry whose value passes ``test``."""
        with self._lock:
            for key in [k for k, (_until, v) in self._items.items() if test(v)]:
                del self._items[key]
                if self._order is not None:
                    self._order.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            if self._order is not None:
                self._order.clear()

    def __iter__(self) -> Iterator[K]:
        with self._lock:
            return iter(list(self._items))


class Bounded(Generic[K, V]):
    """A per-process map of at most ``most`` entries: past it, the oldest kept goes, one for
    each new one (:meth:`keep`). Read through :attr:`map`, a plain dict (on an ``OrderedDict``
    or a dict subclass, ``get`` cost ~170 instructions more a call: callgrind).

    For values that are a function of their key (nothing expires), kept to spare making them
    again. Without a lock: threads keeping at once can at worst drop an entry early."""

    __slots__ = ("_order", "map", "most")

    def __init__(self, most: int) -> None:
        self.map: dict[K, V] = {}
        #: The keys in the order they were first kept (the oldest first).
        self._order: deque[K] = deque()
        self.most = most

    def __len__(self) -> int:
        return len(self.map)

    def keep(self, key: K, value: V) -> None:
        kept = self.map
        if key not in kept:
            self._order.append(key)
        kept[key] = value
        while len(kept) > self.most:
            try:
                oldest = self._order.popleft()
            except IndexError:  # another thread took the last one meanwhile
                return
            kept.pop(oldest, None)


def per_app(name: str, most: int | None = None) -> ExpiringMap[K, V]:
    """The current app's map called ``name`` (made on first use); outside an app, a throwaway one."""
    if not has_app_context():
        return ExpiringMap(most)
    # The app itself, not the proxy: ``current_app.extensions`` made and dropped an
    # ``AttributeError`` (the proxy's own attributes first) before its ``__getattr__`` (a beat's
    # ``principal_for``).
    extensions = current_app._get_current_object().extensions  # type: ignore[attr-defined]
    found = extensions.get(name)
    if found is None:  # setdefault: two threads starting together keep one map
        found = extensions.setdefault(name, ExpiringMap(most))
    return found
