"""Group commit for the transfer API: concurrent requests of one process share a transaction.

A request thread hands its batch to :func:`post` and waits. One writer thread per process
takes the first waiting batch, gathers what else arrives within ``LMS_CREDIT_GROUP_COMMIT_MS``
milliseconds (up to ``LMS_CREDIT_GROUP_COMMIT_MAX`` transfers), applies them all with
:func:`ledger.apply` in one transaction and commits once; only then is each request answered.
Every acknowledged transfer is therefore committed (durable: ``synchronous_commit`` is on),
and a hot account is locked once per group rather than once per request, with one WAL flush
for the group.

Batches keep their own semantics inside the group: each linked chain is still all or nothing,
and a later batch sees what an earlier one in the same group created (an id retried by two
clients at once answers ``ok`` to one and ``exists`` to the other). If the group's
transaction fails (a serialization failure after the retries, a lost connection), each batch
is retried alone, so one bad batch cannot fail its neighbours.

With ``LMS_CREDIT_GROUP_COMMIT_MS = 0`` (or when threads are not wanted) the request posts in
its own transaction.

A request authenticated by the lean token path (``transfer_fast``) names its token's digest:
the writer checks, in the group's transaction and with one statement for the whole group
(``lms_core.accounts.lean_tokens.live_digests``), that each such token is still live, and
answers :class:`TokenNotLive` to the requests whose token was revoked or expired meanwhile
(nothing of theirs is written).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from plugins.credit_bank import ledger as L

_STOP = object()


class TokenNotLive(Exception):
    """The token that authenticated the request was revoked or expired, or its user is no
    longer active (found in the group's transaction): nothing of the request was written."""


@dataclass
class _Request:
    items: list[L.TransferSpec]
    future: Future[list[L.ItemResult]]
    #: The lean path's token digest (checked live in the group's transaction), else None.
    token_digest: str | None = None
    #: Write the token's ``last_used_at`` (due once a minute per process).
    touch: bool = False


class GroupCommitter:
    """The writer thread of one process (created lazily, again after a fork)."""

    #: A writer idle this long ends (a new one starts with the next request).
    IDLE_S = 30.0

    def __init__(self, app: Flask, window_s: float, max_items: int) -> None:
        self.app = app
        self.window_s = window_s
        self.max_items = max_items
        self.pid = os.getpid()
        self.closed = False
        self.queue: queue.Queue[Any] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="credit-group-commit", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.app.app_context():
            while True:
                try:
                    first = self.queue.get(timeout=self.IDLE_S)
                except queue.Empty:
                    with _lock:  # enqueueing happens under the lock: nothing can slip in now
                        if self.queue.empty():
                            self.closed = True
                            return
                    continue
                if first is _STOP:
                    self.closed = True
                    return
                group = [first]
                n = len(first.items)
                deadline = time.monotonic() + self.window_s
                while n < self.max_items:
                    left = deadline - time.monotonic()
                    try:
                        nxt = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        self.queue.put(_STOP)
                        break
                    group.append(nxt)
                    n += len(nxt.items)
                self._commit(group)

    def _commit(self, group: list[_Request]) -> None:
        from lms_core.extensions import db

        try:
            try:
                group = _live_only(group)  # opens the group's transaction
            except Exception as exc:  # noqa: BLE001 - the database failed: every request learns it
                db.session.rollback()
                for req in group:
                    req.future.set_exception(exc)
                return
            if not group:
                db.session.rollback()
                return
            try:
                answers = _post_many([req.items for req in group])
            except Exception:  # noqa: BLE001 - the group failed as a whole: retry each batch alone
                db.session.rollback()
                for req in group:
                    try:
                        # The token again, in this batch's own transaction.
                        result = L.create_transfers(req.items) if _live_only([req]) else None
                    except Exception as exc:  # noqa: BLE001 - handed to the waiting request
                        db.session.rollback()
                        req.future.set_exception(exc)
                    else:
                        if result is None:
                            db.session.rollback()  # answered TokenNotLive by _live_only
                        else:
                            req.future.set_result(result)
                return
        finally:
            db.session.remove()
        for req, res in zip(group, answers, strict=True):
            req.future.set_result(res)


def _live_only(group: list[_Request]) -> list[_Request]:
    """The requests whose token (if the lean path authenticated them) is live, checked in the
    current transaction; the others are answered :class:`TokenNotLive` here."""
    digests = {req.token_digest for req in group if req.token_digest}
    if not digests:
        return group
    from lms_core.accounts import lean_tokens
    from lms_core.db import utcnow
    from lms_core.extensions import db

    now = utcnow()
    live = lean_tokens.live_digests(db.session, digests, now)
    lean_tokens.touch(db.session, {r.token_digest for r in group if r.touch and r.token_digest in live}, now)
    kept = []
    for req in group:
        if req.token_digest is None or req.token_digest in live:
            kept.append(req)
        else:
            req.future.set_exception(TokenNotLive())
    return kept


def _post_many(batches: list[list[L.TransferSpec]]) -> list[list[L.ItemResult]]:
    """Several batches in one transaction (with :func:`ledger.submit`'s retries)."""
    split = [L.link_groups(items) for items in batches]
    groups = [g for gs, _ in split for g in gs]
    answers = L.submit(groups) if groups else []
    out: list[list[L.ItemResult]] = []
    k = 0
    for items, (gs, open_chain) in zip(batches, split, strict=True):
        flat = [r for g in answers[k : k + len(gs)] for r in g]
        k += len(gs)
        out.append(L.item_results(items, flat, open_chain))
    return out


_lock = threading.Lock()


def post(
    items: Sequence[L.TransferSpec],
    *,
    timeout: float = 30.0,
    token_digest: str | None = None,
    touch: bool = False,
) -> list[L.ItemResult]:
    """Post a batch through this process's group commit (or alone when it is off).

    ``token_digest``: the lean path's token, checked live in the posting transaction
    (:class:`TokenNotLive` if it is not); ``touch`` writes its ``last_used_at`` too.
    Raises ``concurrent.futures.TimeoutError`` when no answer came within ``timeout``: the
    outcome is then unknown (the caller retries with the same ids).
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    window_ms = float(app.config.get("LMS_CREDIT_GROUP_COMMIT_MS", 2))
    req = _Request(list(items), Future(), token_digest, touch)
    if window_ms <= 0:
        from lms_core.extensions import db

        if not _live_only([req]):
            db.session.rollback()
            raise TokenNotLive()
        return L.create_transfers(items)
    fut = req.future
    with _lock:
        gc: GroupCommitter | None = app.extensions.get("credit_bank.group_commit")
        # A writer of the parent process does not exist in a forked worker: start one here.
        if gc is None or gc.closed or gc.pid != os.getpid() or not gc.thread.is_alive():
            gc = GroupCommitter(app, window_ms / 1000, int(app.config.get("LMS_CREDIT_GROUP_COMMIT_MAX", 1000)))
            app.extensions["credit_bank.group_commit"] = gc
        gc.queue.put(req)
    return fut.result(timeout=timeout)


def stop(app: Flask) -> None:
    """Stop the app's writer (tests, shutdown); queued batches are still committed first."""
    with _lock:
        gc: GroupCommitter | None = app.extensions.pop("credit_bank.group_commit", None)
        if gc is not None and not gc.closed:
            gc.queue.put(_STOP)
    if gc is not None:
        gc.thread.join(timeout=10)
