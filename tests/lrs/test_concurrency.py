"""Concurrent batches on PostgreSQL: shared agents and activities, racing duplicate ids.

Each thread's requests run in their own app context, hence their own session and
database connection, as in a multi-threaded server.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import func, select

from lms_core.extensions import db
from lrs.models import LrsStatement
from tests.lrs.conftest import statement

pytestmark = pytest.mark.backends("postgresql")

AGENTS = [{"account": {"homePage": "https://gbwl.example.gov.cn", "name": f"cadre{i:04d}"}} for i in range(5)]
ACTIVITIES = [f"http://example.com/course/{i}" for i in range(5)]


def _run(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive()


def test_concurrent_batches_sharing_agents_and_activities(app, xapi):
    statuses: list[int] = []
    shared_ids = [str(uuid.uuid4()) for _ in range(20)]
    shared = [statement(id=sid, actor=AGENTS[n % 5], activity=ACTIVITIES[n % 5]) for n, sid in enumerate(shared_ids)]
    lock = threading.Lock()

    def worker(w: int) -> None:
        for b in range(6):
            batch = [
                statement(
                    actor=AGENTS[(w + i) % 5],
                    activity=ACTIVITIES[(b + i) % 5],
                    context={"contextActivities": {"grouping": [{"id": ACTIVITIES[i % 5]}]}},
                )
                for i in range(40)
            ]
            # Every thread also sends the same 20 statements: identical duplicates race.
            r = xapi.post("statements", json_body=batch + shared)
            with lock:
                statuses.append(r.status_code)

    _run([threading.Thread(target=worker, args=(w,)) for w in range(6)])
    assert statuses == [200] * 36
    total = db.session.execute(select(func.count()).select_from(LrsStatement)).scalar_one()
    assert total == 6 * 6 * 40 + 20
    for agent in AGENTS:
        found = xapi.get("statements", agent=agent, limit=1).get_json()
        assert found["statements"] and found["more"]


def test_racing_puts_of_one_id_store_exactly_one(app, xapi):
    sid = str(uuid.uuid4())
    results: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        r = xapi.put("statements", json_body=statement(activity=f"http://example.com/race/{n % 2}"), statementId=sid)
        with lock:
            results.append(r.status_code)

    _run([threading.Thread(target=worker, args=(n,)) for n in range(8)])
    assert set(results) <= {204, 409} and 204 in results
    assert db.session.execute(select(func.count()).select_from(LrsStatement)).scalar_one() == 1
    stored = xapi.get("statements", statementId=sid).get_json()["object"]["id"]
    winners = {"http://example.com/race/0", "http://example.com/race/1"}
    assert stored in winners


def test_concurrent_json_merges_lose_nothing(app, xapi):
    import json

    params = {
        "activityId": "http://example.com/course/1",
        "agent": {"mbox": "mailto:learner@example.com"},
        "stateId": "progress",
    }
    assert (
        xapi.post(
            "activities/state", data=b'{"start": 0}', headers={"Content-Type": "application/json"}, **params
        ).status_code
        == 204
    )
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        r = xapi.post(
            "activities/state",
            data=json.dumps({f"lesson{n}": n}).encode(),
            headers={"Content-Type": "application/json"},
            **params,
        )
        with lock:
            statuses.append(r.status_code)

    _run([threading.Thread(target=worker, args=(n,)) for n in range(8)])
    assert statuses == [204] * 8
    doc = xapi.get("activities/state", **params).get_json()
    assert doc == {"start": 0, **{f"lesson{n}": n for n in range(8)}}


def test_concurrent_creation_of_one_state_document(app, xapi):
    import json

    params = {
        "activityId": "http://example.com/course/2",
        "agent": {"mbox": "mailto:learner@example.com"},
        "stateId": "fresh",
    }
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        r = xapi.post(
            "activities/state",
            data=json.dumps({f"k{n}": n}).encode(),
            headers={"Content-Type": "application/json"},
            **params,
        )
        with lock:
            statuses.append(r.status_code)

    _run([threading.Thread(target=worker, args=(n,)) for n in range(6)])
    assert statuses == [204] * 6
    assert xapi.get("activities/state", **params).get_json() == {f"k{n}": n for n in range(6)}
