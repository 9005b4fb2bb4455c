"""Sign-in throttling: progressive delays per account and per (account, IP), a cap per IP.

A hard lock after N failures lets anyone lock anyone out (the admin included) by
typing a wrong password N times. Instead, after a few free failures each further
failure doubles the wait before the next attempt is *checked*:

* per (username, IP): after ``LMS_LOGIN_FREE_FAILURES`` wrong passwords from one
  address, 1 s, 2 s, 4 s … up to ``LMS_LOGIN_DELAY_MAX_SECONDS``. An attacker at
  one address is slowed to a crawl; the owner, at another address, is not.
* per username, from every address: after ``LMS_LOGIN_ACCOUNT_FREE_FAILURES``, the
  same doubling up to ``LMS_LOGIN_ACCOUNT_DELAY_MAX_SECONDS`` (a minute): a botnet
  gains little, and the most it can do to the owner is make them wait that long.
* per IP, whatever the username: ``LMS_LOGIN_IP_LIMIT`` failures in
  ``LMS_LOGIN_IP_WINDOW_MINUTES`` and the address is refused (429).

Counts are by the username typed, existing or not, so the answers never tell
which accounts exist. Only checked wrong passwords count; an attempt refused
for waiting does not lengthen the wait. A success resets its own counters.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from lms_core.accounts.models import LoginAttempt
from lms_core.extensions import db

#: The outcome value of a checked wrong password (``LoginOutcome.BAD_CREDENTIALS``).
BAD_CREDENTIALS = "bad_credentials"
#: Failures older than this no longer count, even without a success since.
FAILURE_MEMORY = dt.timedelta(hours=24)


def ip_failures(ip: str, now: dt.datetime) -> int:
    """Failed attempts of any kind from ``ip`` in the per-IP window."""
    window = dt.timedelta(minutes=current_app.config["LMS_LOGIN_IP_WINDOW_MINUTES"])
    return int(
        db.session.execute(
            select(func.count())
            .select_from(LoginAttempt)
            .where(
                LoginAttempt.ip == ip,
                LoginAttempt.success.is_(False),
                LoginAttempt.created_at >= now - window,
            )
        ).scalar_one()
    )


def delay(failures: int, free: int, cap: float) -> float:
    """Seconds to wait after ``failures`` consecutive wrong passwords (0 while free)."""
    if failures < free:
        return 0.0
    return float(min(2 ** min(failures - free, 32), cap))


def _streak(now: dt.datetime, *conditions: Any) -> tuple[int, dt.datetime | None]:
    """Wrong passwords since the last success (within FAILURE_MEMORY), and the latest one."""
    last_success = db.session.execute(
        select(func.max(LoginAttempt.created_at)).where(*conditions, LoginAttempt.success.is_(True))
    ).scalar_one()
    since = now - FAILURE_MEMORY
    if last_success is not None and last_success > since:
        since = last_success
    count, latest = db.session.execute(
        select(func.count(), func.max(LoginAttempt.created_at)).where(
            *conditions, LoginAttempt.outcome == BAD_CREDENTIALS, LoginAttempt.created_at > since
        )
    ).one()
    return int(count), latest


def wait_seconds(username: str, ip: str, now: dt.datetime) -> int:
    """Whole seconds before a sign-in as ``username`` from ``ip`` is checked (0: now)."""
    cfg = current_app.config
    waits = []
    for conditions, free, cap in (
        (
            (LoginAttempt.username == username, LoginAttempt.ip == ip),
            cfg["LMS_LOGIN_FREE_FAILURES"],
            cfg["LMS_LOGIN_DELAY_MAX_SECONDS"],
        ),
        (
            (LoginAttempt.username == username,),
            cfg["LMS_LOGIN_ACCOUNT_FREE_FAILURES"],
            cfg["LMS_LOGIN_ACCOUNT_DELAY_MAX_SECONDS"],
        ),
    ):
        count, latest = _streak(now, *conditions)
        seconds = delay(count, int(free), float(cap))
        if seconds and latest is not None:
            waits.append((latest + dt.timedelta(seconds=seconds) - now).total_seconds())
    longest = max(waits, default=0.0)
    return math.ceil(longest) if longest > 0 else 0
