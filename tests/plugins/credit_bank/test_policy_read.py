"""rules_in_force: the same rules as rules_of(in_force(...)), in one read and with no write."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import delete, event, func, select

from lms_core.db import utcnow
from lms_core.extensions import db
from plugins.credit_bank import policy as P
from plugins.credit_bank.models import Policy

DATES = [dt.date(1999, 6, 1), dt.date(2024, 12, 31), dt.date(2025, 3, 1), dt.date(2026, 12, 31)]


def _version(version: int, effective_from: dt.date, offline_day_centi: int) -> Policy:
    return Policy(
        version=version,
        effective_from=effective_from,
        rules={"offline_day_centi": offline_day_centi},
        note=None,
        created_by=None,
        created_at=utcnow(),
    )


@contextmanager
def _statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_a: Any) -> None:
        seen.append(sql)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


@pytest.mark.parametrize(
    "recorded",
    [
        [],
        [(1, dt.date(2000, 1, 1), 700)],
        # Two versions from one date (the newer wins), one later version, one that starts after
        # every asked date but the last, and an old date: versions are not in date order.
        [
            (1, dt.date(2025, 1, 1), 600),
            (2, dt.date(2025, 1, 1), 650),
            (3, dt.date(2026, 1, 1), 720),
            (4, dt.date(2024, 1, 1), 580),
        ],
        [(5, dt.date(2030, 1, 1), 900), (2, dt.date(2028, 1, 1), 880)],  # none in force: the oldest version
    ],
)
def test_rules_in_force_chooses_as_in_force_does(app, recorded):
    db.session.execute(delete(Policy))
    db.session.add_all(_version(*v) for v in recorded)
    db.session.flush()
    with _statements() as seen:
        read = {on: P.rules_in_force(on) for on in DATES}
    assert len(seen) == len(DATES)  # one statement each
    assert db.session.scalar(select(func.count()).select_from(Policy)) == len(recorded)  # nothing recorded
    for on in DATES:
        assert read[on] == P.rules_of(P.in_force(on)), on
    db.session.rollback()
