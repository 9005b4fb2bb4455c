"""What the log-browser tests share (core sessions and events, the LRS statements tab, the
anti-idle rule filter): the auditor of county A, three cadres (two in scope, one not),
their sessions, and readers for the page table and the CSV/XLSX exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import time_machine
from openpyxl import load_workbook

from lms_core.accounts.models import Role, User
from lms_core.enrolments.services import enrol
from lms_core.extensions import db
from lms_core.jobs.services import commit
from lms_core.learning import services as learning
from tests.factories import UserFactory, grant

T0 = dt.datetime(2026, 5, 10, 1, 0, tzinfo=dt.UTC)  # 09:00 in Beijing


@dataclass(frozen=True)
class LogPeople:
    auditor: User  #: ``nl_audit``, auditor of county A
    inside: User  #: in a village of county A
    second: User  #: in county A itself
    outside: User  #: in town B: never in the auditor's pages


def log_people(tree: Any, course: Any = None) -> LogPeople:
    """The auditor and the three cadres (committed), enrolled in ``course`` when given."""
    auditor = UserFactory(username="nl_audit", org_unit=tree.county_a, full_name="南岭审核员")
    grant(auditor, Role.AUDITOR, tree.county_a)
    inside = UserFactory(username="inside", full_name="城关干部", org_unit=tree.village_a)
    second = UserFactory(username="second", full_name="第二干部", org_unit=tree.county_a)
    outside = UserFactory(username="outside", full_name="青山干部", org_unit=tree.town_b)
    db.session.commit()
    if course is not None:
        for user in (inside, second, outside):
            enrol(user, course)
        commit()
    return LogPeople(auditor, inside, second, outside)


def start_sessions(course: Any, starts: Iterable[tuple[User, Any, dt.datetime]]) -> None:
    """Open a learning session of each (person, lesson) at its time, one commit each."""
    for user, lesson, at in starts:
        with time_machine.travel(at, tick=False):
            learning.start_session(user, lesson, learning.enrolment_for(user, course.id))
            commit()


def table_rows(page: str, table_id: str) -> list[str]:
    """The body rows of the page's table (not the "nothing matches" row)."""
    body = page.split(f'id="{table_id}"', 1)[1].split("</tbody>", 1)[0]
    return [row for row in body.split("<tr>")[2:] if "<td" in row and 'class="muted"' not in row]


def csv_rows(client: Any, url: str) -> tuple[list[list[str]], str]:
    """The CSV export's rows (after its BOM) and its ``X-Total-Rows``."""
    r = client.get(url)
    assert r.status_code == 200
    text = r.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:]))), r.headers["X-Total-Rows"]


def xlsx_rows(client: Any, url: str) -> list[list[Any]]:
    r = client.get(url)
    assert r.status_code == 200 and r.data[:2] == b"PK"
    return [list(row) for row in load_workbook(io.BytesIO(r.data), read_only=True).active.iter_rows(values_only=True)]
