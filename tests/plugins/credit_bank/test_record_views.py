"""Issue 12: the credit pages link each dated line to that day as a picture, and every look at
a cadre's credit record (statement, API, transcripts, rank history) is logged for the cadre."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from lms_core.events.models import Event
from lms_core.extensions import db
from plugins.credit_bank.views import this_year
from tests.plugins.credit_bank.helpers import grant_credit, sign_in_as
from tests.plugins.credit_bank.test_views import people  # noqa: F401  (fixture)


def _views_of(person_id: int) -> list[tuple[str, str]]:
    rows = db.session.execute(
        select(Event).where(Event.name == "record.viewed", Event.object_id == str(person_id)).order_by(Event.id)
    ).scalars()
    return [(e.payload["what"], e.payload["detail"]) for e in rows]


def test_statement_lines_link_to_the_day(client, people):  # noqa: F811
    cadre = people["cadre"]
    grant_credit(cadre.id, 300, "a", day=dt.date(2026, 3, 1))
    sign_in_as(client, "cadre")
    own = client.get("/credit/?year=2026").get_data(as_text=True)
    assert 'href="/record/days/2026-03-01"' in own  # the learner's own day picture
    assert client.get("/record/days/2026-03-01").status_code == 200
    assert _views_of(cadre.id) == []  # looking at one's own record is not logged
    sign_in_as(client, "auditor_a")
    page = client.get(f"/credit/users/{cadre.id}?year=2026").get_data(as_text=True)
    assert f'href="/audit/users/{cadre.id}/days/2026-03-01"' in page
    assert client.get(f"/audit/users/{cadre.id}/days/2026-03-01").status_code == 200


def test_every_look_at_the_credit_record_is_logged_and_shown_to_the_cadre(client, people):  # noqa: F811
    cadre = people["cadre"]
    sign_in_as(client, "auditor_a")
    assert client.get(f"/credit/users/{cadre.id}?year=2026").status_code == 200
    assert client.get(f"/api/v1/users/{cadre.id}/credits").status_code == 200
    assert client.get(f"/credit/users/{people['other'].id}").status_code == 403  # out of scope: nothing seen
    sign_in_as(client, "admin_a")
    assert client.get(f"/credit/users/{cadre.id}/ranks").status_code == 200
    assert client.get(f"/credit/users/{cadre.id}/transcripts").status_code == 200
    year = str(this_year())  # the API names no year: the current one (Beijing)
    assert _views_of(cadre.id) == [("credit", "2026"), ("credit", year), ("ranks", ""), ("transcripts", "")]
    assert _views_of(people["other"].id) == []
    sign_in_as(client, "cadre")
    record = client.get("/record").get_data(as_text=True)
    assert "学时账单" in record and "职级变动记录" in record and "学时证明" in record
