"""What a statement sent on another connection is doing, for the two-connection race tests."""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any

from sqlalchemy import text

from lms_core.extensions import db


def lock_wait(pid: int, pending: Future[Any]) -> str:
    """``"done"`` if ``pending`` (a statement of backend ``pid``) ended, ``"lock"`` once that
    backend waits for a lock, ``"neither"`` if it still runs without waiting after ~5 s."""
    for _ in range(100):
        if pending.done():
            return "done"
        with db.engine.connect() as probe:
            event = probe.execute(
                text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
            ).scalar_one_or_none()
        if event == "Lock":
            return "lock"
        time.sleep(0.05)
    return "neither"
