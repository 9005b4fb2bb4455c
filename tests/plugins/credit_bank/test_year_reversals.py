"""Reversing a person-year for 代学代考: one auditor asks, a different auditor in scope confirms."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from lms_core.accounts.models import Role
from lms_core.events.models import Event
from lms_core.extensions import db
from plugins.credit_bank import queries
from plugins.credit_bank.models import Transfer
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.plugins.credit_bank.helpers import grant_credit

NOW = dt.datetime(2026, 11, 2, 4, tzinfo=dt.UTC)


@pytest.fixture
def people(app, tree):
    cadre = UserFactory(username="cadre1", org_unit=tree.village_a, full_name="王强")
    other = UserFactory(username="cadre2", org_unit=tree.village_a, full_name="赵六")
    first = UserFactory(username="aud1", org_unit=tree.county_a, full_name="审核员甲")
    second = UserFactory(username="aud2", org_unit=tree.county_a, full_name="审核员乙")
    far = UserFactory(username="aud3", org_unit=tree.county_b, full_name="青山审核员")
    for a, unit in ((first, tree.county_a), (second, tree.county_a), (far, tree.county_b)):
        grant(a, Role.AUDITOR, unit)
    db.session.commit()
    grant_credit(cadre.id, 300, "c1", dt.date(2026, 3, 1))
    grant_credit(cadre.id, 250, "c2", dt.date(2026, 6, 1))
    grant_credit(cadre.id, 400, "c0", dt.date(2025, 6, 1))  # another year: untouched
    grant_credit(other.id, 100, "o1", dt.date(2026, 3, 1))
    return cadre, other


def _switch(client, name):
    client.post("/logout")
    login(client, name)


def _ask(client, **form):
    data = {"username": "cadre1", "year": "2026", "reason": "人脸比对发现他人代学"} | form
    return client.post("/credit/reversals/", data=data)


def test_second_auditor_confirms_and_the_year_is_reversed(client, people):
    cadre, other = people
    with time_machine.travel(NOW, tick=False):
        login(client, "aud1")
        assert _ask(client).status_code == 303
        request = db.session.query(Event).filter_by(name="credit.year_reversal_requested").one()
        page = client.get("/credit/reversals/").get_data(as_text=True)
        assert "王强" in page and "另一位审核员" in page and f'action="/credit/reversals/{request.id}"' not in page
        own = client.post(f"/credit/reversals/{request.id}", data={"decision": "confirm", "reason": "我自己确认的"})
        assert own.status_code == 403
        assert queries.year_summary(cadre.id, 2026)["posted"] == 550
        assert _ask(client).status_code == 409, "one open request per person-year"

        _switch(client, "aud2")
        page = client.get("/credit/reversals/").get_data(as_text=True)
        assert "5.50" in page and f'action="/credit/reversals/{request.id}"' in page
        r = client.post(f"/credit/reversals/{request.id}", data={"decision": "confirm", "reason": "核实无误，同意撤销"})
        assert r.status_code == 303
    assert queries.year_summary(cadre.id, 2026)["posted"] == 0
    assert queries.year_summary(cadre.id, 2025)["posted"] == 400
    assert queries.year_summary(other.id, 2026)["posted"] == 100
    reversals = db.session.query(Transfer).filter(Transfer.reverses_id.isnot(None)).all()
    assert len(reversals) == 2 and all("人脸比对发现他人代学" in t.memo and "核实无误" in t.memo for t in reversals)
    confirmed = db.session.query(Event).filter_by(name="credit.year_reversal_confirmed").one()
    assert confirmed.payload["requested_by"] == request.actor_id and confirmed.actor_id != request.actor_id
    assert confirmed.payload["centi"] == 550 and confirmed.payload["lines"] == 2
    with time_machine.travel(NOW, tick=False):
        again = client.post(f"/credit/reversals/{request.id}", data={"decision": "confirm", "reason": "再确认一次看看"})
    assert again.status_code == 409
    assert db.session.query(Transfer).filter(Transfer.reverses_id.isnot(None)).count() == 2


def test_decline_reverses_nothing_and_scope_is_enforced(client, people):
    cadre, _other = people
    with time_machine.travel(NOW, tick=False):
        login(client, "aud3")
        assert _ask(client).status_code == 404, "a person outside the scope is not revealed"
        _switch(client, "aud1")
        _ask(client)
        request = db.session.query(Event).filter_by(name="credit.year_reversal_requested").one()
        _switch(client, "aud3")
        assert "王强" not in client.get("/credit/reversals/").get_data(as_text=True)
        assert (
            client.post(
                f"/credit/reversals/{request.id}", data={"decision": "confirm", "reason": "越权确认试试"}
            ).status_code
            == 404
        )
        _switch(client, "aud2")
        r = client.post(f"/credit/reversals/{request.id}", data={"decision": "decline", "reason": "证据不足，不予撤销"})
        assert r.status_code == 303
        assert "王强" not in client.get("/credit/reversals/").get_data(as_text=True)
    assert queries.year_summary(cadre.id, 2026)["posted"] == 550
    assert db.session.query(Event).filter_by(name="credit.year_reversal_declined").count() == 1


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"reason": "短"}, 400),
        ({"year": "1999"}, 400),
        ({"year": "9" * 400}, 400),
        ({"year": "2026\x00"}, 400),
        ({"username": "nobody"}, 404),
        ({"username": "cadre1\x00"}, 404),
        ({"reason": "原因" * 600}, 400),
    ],
)
def test_bad_requests_are_chinese_4xx(client, people, form, status):
    with time_machine.travel(NOW, tick=False):
        login(client, "aud1")
        r = _ask(client, **form)
    assert r.status_code == status and 'id="reversal-error"' in r.get_data(as_text=True)
    assert db.session.query(Event).filter_by(name="credit.year_reversal_requested").count() == 0


def test_learners_and_org_admins_cannot_reverse(client, people, tree):
    admin = UserFactory(username="orgadm", org_unit=tree.county_a)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    db.session.commit()
    login(client, "cadre1")
    assert client.get("/credit/reversals/").status_code == 403
    _switch(client, "orgadm")
    assert _ask(client).status_code == 403
