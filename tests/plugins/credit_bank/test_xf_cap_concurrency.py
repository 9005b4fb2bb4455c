"""The yearly 学分 cap under concurrency, on PostgreSQL with real threads and sessions.

Two admins convert for one cadre at the same moment, each within the cap alone, both
together past it. ``type_conversion.lock_person`` is wrapped to hold the cadre's row lock
a little longer, so the second save reliably arrives while the first still holds it;
without the lock both would pass the cap check (each reads the figures before the other
has posted).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from lms_core.accounts.models import RankBand, Role
from lms_core.extensions import db
from plugins.credit_bank import policy as P
from plugins.credit_bank import queries
from plugins.credit_bank import type_conversion as TC
from plugins.credit_bank.models import Transfer
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.plugins.credit_bank.helpers import grant_credit

pytestmark = pytest.mark.backends("postgresql")

NOON = dt.datetime(2026, 5, 10, 4, tzinfo=dt.UTC)
HOLD = 0.4  #: seconds the first save keeps the cadre locked


@pytest.fixture
def cadre_id(app: Flask, tree, monkeypatch: pytest.MonkeyPatch) -> int:  # type: ignore[no-untyped-def]
    cadre = UserFactory(org_unit=tree.town_a, username="cadre", full_name="李明", rank_band=RankBand.TOWNSHIP)
    for name in ("admin_a", "admin_b"):
        grant(UserFactory(org_unit=tree.county_a, username=name), Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    grant_credit(cadre.id, 500, "wl", day=dt.date(2026, 3, 1))
    rules = [{"from": "WL_XS", "to": "XF", "num": 1, "den": 1}]
    P.add_version({"conversions": rules, "caps": {"XF": {"per_year": 250}}}, dt.date(2026, 1, 1), None, "学分年度上限")
    original = TC.lock_person

    def slow_lock(person_id: int) -> None:
        original(person_id)
        time.sleep(HOLD)

    monkeypatch.setattr(TC, "lock_person", slow_lock)
    return int(cadre.id)


def _save(app: Flask, username: str, url: str, amount: str) -> Any:
    client = app.test_client()
    client.post("/logout")
    assert login(client, username).status_code == 302
    data = {"rule": "0", "year": "2026", "amount": amount}
    r = client.post(url, data=data | {"action": "preview"})
    assert r.status_code == 200, r.get_data(as_text=True)[-800:]
    key = re.search(r'name="key" value="([0-9a-f-]{36})"', r.get_data(as_text=True))
    assert key is not None
    return lambda: client.post(url, data=data | {"action": "save", "key": key.group(1)})


def test_two_admins_converting_at_once_stay_within_the_yearly_cap(app: Flask, cadre_id: int) -> None:
    url = f"/credit/users/{cadre_id}/convert"
    with time_machine.travel(NOON, tick=True):
        calls = [_save(app, "admin_a", url, "2"), _save(app, "admin_b", url, "2")]
        barrier = threading.Barrier(2)
        answers: list[Any] = [None, None]

        def run(i: int) -> None:
            barrier.wait()
            answers[i] = calls[i]()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a save is stuck (deadlock?)"
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [303, 400], statuses
    refused = next(a for a in answers if a.status_code == 400).get_data(as_text=True)
    assert "还可增加 0.50" in refused  # the second save saw the first one's 2.00 学分
    db.session.remove()
    legs = db.session.execute(select(Transfer.amount).where(Transfer.code == "conversion_in")).scalars().all()
    assert legs == [200]
    assert queries.figures(cadre_id)[("XF", 2026)].posted == 200
