"""The event log filtered by course: page and CSV export agree, scope still applies."""

from __future__ import annotations

import csv
import io

from lms_core.accounts.models import Role
from lms_core.enrolments.services import enrol
from lms_core.extensions import db
from lms_core.jobs.services import commit
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.lms_core.learning.fixtures import build_course


def test_course_filter_matches_page_and_export(app, client, tree):
    kit = build_course(tree)
    other = build_course(tree, code="C00X")  # its own media (the fixture keys them by code)
    auditor = UserFactory(username="nl_audit", org_unit=tree.county_a)
    grant(auditor, Role.AUDITOR, tree.county_a)
    inside = UserFactory(username="inside", org_unit=tree.village_a)
    outside = UserFactory(username="outside", org_unit=tree.town_b)
    db.session.commit()
    for user in (inside, outside):
        enrol(user, kit.course)
    enrol(inside, other.course)
    commit()
    login(client, "nl_audit")
    page = client.get("/audit/events?course=C001").get_data(as_text=True)
    body = page.split('id="event-table"', 1)[1].split("</tbody>", 1)[0]
    assert body.count("<tr><td>") == 1 and "inside" in body and "outside" not in body
    raw = client.get("/audit/events.csv?course=C001").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(raw.lstrip("\ufeff"))))
    assert len(rows) == 2 and rows[1][4] == "inside"
    assert client.get("/audit/events?course=NOPE").status_code == 400
    assert client.get("/audit/events.csv?course=%00").status_code == 400
