"""Shared builders for the credit bank tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lms_core.events.services import emit
from lms_core.jobs.services import commit
from plugins.credit_bank import ledger as L
from tests.conftest import login


def sign_in_as(client: Any, username: str) -> Any:
    """Sign out whoever is signed in, then sign in as ``username`` (the password of the factories)."""
    client.post("/logout")
    r = login(client, username)
    assert r.status_code == 302, username
    return r


def completed(user: Any, course_id: int = 1, nominal: int = 200) -> Any:
    """A ``course.completed`` event, committed and dispatched (inline jobs)."""
    event = emit(
        "course.completed",
        actor=user,
        object_type="courses",
        object_id=course_id,
        course_id=course_id,
        payload={"registration": "r", "nominal_hours_centi": nominal},
    )
    commit()
    return event


def grant_credit(user_id: int, amount: int, key: str, day: dt.date = dt.date(2026, 5, 1), ledger: str = "WL_XS") -> str:
    tid = L.transfer_id(key)
    res = L.submit(
        [
            [
                L.TransferSpec(
                    id=tid,
                    code="course_complete",
                    effective_date=day,
                    amount=amount,
                    debit=L.issuer(ledger),
                    credit=L.counted(ledger, user_id, day.year),
                    user_id=user_id,
                )
            ]
        ]
    )
    assert res == [["created"]]
    return tid
