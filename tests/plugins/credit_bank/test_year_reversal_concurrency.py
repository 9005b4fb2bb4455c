"""The person-year reversal under concurrency, on PostgreSQL with real threads and sessions.

Two auditors confirming one request at once, a confirmation racing a decline, two
auditors requesting the same person-year at once, and a single-line reversal racing
the year's confirmation: each must take effect once. ``year_reversals._lock`` is
wrapped to hold the person's row lock a little longer, so the second thread reliably
arrives while the first still holds it (without the lock both would pass their checks).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select

from lms_core.accounts.models import Role
from lms_core.events.models import Event
from lms_core.extensions import db
from plugins.credit_bank import queries
from plugins.credit_bank import year_reversals as YR
from plugins.credit_bank.models import Transfer
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.plugins.credit_bank.helpers import grant_credit

pytestmark = pytest.mark.backends("postgresql")

NOW = dt.datetime(2026, 11, 2, 4, tzinfo=dt.UTC)
HOLD = 0.4  #: seconds the first thread keeps the person locked


@pytest.fixture
def cast(app: Flask, tree, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    cadre = UserFactory(username="cadre1", org_unit=tree.village_a, full_name="王强")
    auditors = []
    for name in ("aud1", "aud2", "aud3"):
        a = UserFactory(username=name, org_unit=tree.county_a)
        grant(a, Role.AUDITOR, tree.county_a)
        auditors.append(a)
    db.session.commit()
    grant_credit(cadre.id, 300, "c1", dt.date(2026, 3, 1))
    grant_credit(cadre.id, 250, "c2", dt.date(2026, 6, 1))
    original = YR._lock

    def slow_lock(person_id: int) -> None:
        original(person_id)
        time.sleep(HOLD)

    monkeypatch.setattr(YR, "_lock", slow_lock)
    return cadre.id  # the id: the threads' sessions come and go


def _client(app: Flask, username: str) -> Any:
    client = app.test_client()
    login(client, username)
    return client


def _race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # reported by the assertion below, with its thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread is stuck (deadlock?)"
    assert not any(isinstance(r, Exception) for r in results), results
    return results


def _request(app: Flask) -> Event:
    with time_machine.travel(NOW, tick=True):
        r = _client(app, "aud1").post(
            "/credit/reversals/", data={"username": "cadre1", "year": "2026", "reason": "人脸比对发现他人代学"}
        )
    assert r.status_code == 303
    db.session.remove()
    return db.session.execute(select(Event).where(Event.name == YR.REQUESTED)).scalar_one()


def _decide(app: Flask, username: str, request_id: int, decision: str) -> Callable[[], int]:
    client = _client(app, username)

    def call() -> int:
        data = {"decision": decision, "reason": "核实无误，作出决定"}
        return int(client.post(f"/credit/reversals/{request_id}", data=data).status_code)

    return call


def _reversals() -> list[Transfer]:
    db.session.remove()
    return list(db.session.execute(select(Transfer).where(Transfer.reverses_id.isnot(None))).scalars())


def _decisions() -> int:
    return int(
        db.session.execute(
            select(func.count()).select_from(Event).where(Event.name.in_((YR.CONFIRMED, YR.DECLINED)))
        ).scalar_one()
    )


def test_two_auditors_confirming_at_once_reverse_the_year_once(app: Flask, cast) -> None:  # type: ignore[no-untyped-def]
    req = _request(app)
    with time_machine.travel(NOW, tick=True):
        statuses = _race(_decide(app, "aud2", req.id, "confirm"), _decide(app, "aud3", req.id, "confirm"))
    assert sorted(statuses) == [303, 409]
    reversals = _reversals()
    assert sorted(t.amount for t in reversals) == [250, 300]
    assert _decisions() == 1
    assert queries.year_summary(cast, 2026)["posted"] == 0


def test_a_confirmation_racing_a_decline_is_one_decision(app: Flask, cast) -> None:  # type: ignore[no-untyped-def]
    req = _request(app)
    with time_machine.travel(NOW, tick=True):
        statuses = _race(_decide(app, "aud2", req.id, "confirm"), _decide(app, "aud3", req.id, "decline"))
    assert sorted(statuses) == [303, 409]
    assert _decisions() == 1
    confirmed = statuses[0] == 303
    assert len(_reversals()) == (2 if confirmed else 0)
    assert queries.year_summary(cast, 2026)["posted"] == (0 if confirmed else 550)


def test_two_auditors_requesting_at_once_open_one_request(app: Flask, cast) -> None:  # type: ignore[no-untyped-def]
    def ask(username: str) -> Callable[[], int]:
        client = _client(app, username)
        data = {"username": "cadre1", "year": "2026", "reason": "两位审核员同时发现代学"}
        return lambda: int(client.post("/credit/reversals/", data=data).status_code)

    with time_machine.travel(NOW, tick=True):
        statuses = _race(ask("aud1"), ask("aud2"))
    assert sorted(statuses) == [303, 409]
    db.session.remove()
    assert db.session.execute(select(func.count()).select_from(Event).where(Event.name == YR.REQUESTED)).scalar() == 1


def test_a_single_reversal_racing_the_year_takes_each_credit_back_once(app: Flask, cast) -> None:  # type: ignore[no-untyped-def]
    req = _request(app)
    c1 = db.session.execute(select(Transfer).where(Transfer.amount == 300, Transfer.user_id == cast)).scalar_one()
    single = _client(app, "aud3")

    def reverse_one() -> int:
        data = {"transfer_id": c1.id, "reason": "单笔撤销：代学"}
        return int(single.post(f"/credit/users/{cast}/reverse", data=data).status_code)

    with time_machine.travel(NOW, tick=True):
        statuses = _race(_decide(app, "aud2", req.id, "confirm"), reverse_one)
    assert statuses == [303, 302]
    reversals = _reversals()
    by_original: dict[str, int] = {}
    for t in reversals:
        by_original[str(t.reverses_id)] = by_original.get(str(t.reverses_id), 0) + t.amount
    assert by_original[c1.id] == 300, "c1 is reversed exactly once, by one of the two"
    assert sum(by_original.values()) == 550
    assert queries.year_summary(cast, 2026)["posted"] == 0
