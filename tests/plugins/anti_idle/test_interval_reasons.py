"""The auditors' learning record names anti-idle's rules in words (hook ``lms_interval_reason``).

The interval stores the plugin's reason as codes and milliseconds ("R07b 10000 ms");
the page shows the rule's Chinese name and the time it took, never the code or "ms".
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from lms_core.accounts.models import Role
from lms_core.enrolments.services import enrol
from lms_core.extensions import db
from lms_core.learning.models import LearningInterval, LearningSession
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.lms_core.learning.fixtures import build_course

T0 = dt.datetime(2026, 5, 10, 1, 0, tzinfo=dt.UTC)
REASONS = [
    {"by": "anti_idle", "verdict": "void", "code": "R07b", "credited_ms": 0, "reason": "R07b 10000 ms"},
    {
        "by": "anti_idle",
        "verdict": "reduce",
        "code": "R01,R10a",
        "credited_ms": 0,
        "reason": "R01 2000 ms; R10a 65000 ms",
    },
    {"by": "someone_else", "verdict": "reduce", "code": "X9", "credited_ms": 0, "reason": "X9 500 ms"},
]


@pytest.fixture
def record(app, tree):
    kit = build_course(tree)
    auditor = UserFactory(username="nl_audit", org_unit=tree.county_a)
    grant(auditor, Role.AUDITOR, tree.county_a)
    person = UserFactory(username="inside", full_name="城关干部", org_unit=tree.village_a)
    db.session.commit()
    enrolment = enrol(person, kit.course)
    sid = "a" * 32
    db.session.add(
        LearningSession(
            id=sid, user_id=person.id, lesson_id=kit.video.id, enrolment_id=enrolment.id, started_at=T0, last_beat_at=T0
        )
    )
    db.session.flush()  # the interval's foreign key needs the session row first
    db.session.add(
        LearningInterval(
            session_id=sid,
            user_id=person.id,
            lesson_id=kit.video.id,
            seq=1,
            wall_start=T0,
            wall_end=T0 + dt.timedelta(seconds=77),
            claimed_ms=77_000,
            credited_ms=0,
            verdict="void",
            reasons=REASONS,
        )
    )
    db.session.commit()
    return person


def _reasons_cell(client, person) -> str:
    login(client, "nl_audit")
    page = client.get(f"/audit/users/{person.id}/learning")
    assert page.status_code == 200
    body = page.get_data(as_text=True).split('id="interval-table"', 1)[1].split("</tbody>", 1)[0]
    return body.rsplit('<td class="small">', 1)[1].split("</td>", 1)[0]


def _no_code_no_ms(cell: str) -> None:
    assert not re.search(r"R\d", cell), cell
    assert "ms" not in cell and "X9" not in cell, cell


@pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])
def test_rules_are_named_in_words(client, record):
    cell = _reasons_cell(client, record)
    _no_code_no_ms(cell)
    assert "自动作答在线确认：10 秒作废" in cell  # R07b voids
    assert "倍速播放过快：2 秒未计入" in cell  # R01 deducts
    assert "每日学时上限：1 分 5 秒待审核" in cell  # R10a holds, in minutes and seconds
    assert "部分认定" in cell  # another plugin's code-like reason: its verdict alone


def test_without_the_plugin_the_verdict_alone_is_shown(client, record):
    cell = _reasons_cell(client, record)
    _no_code_no_ms(cell)
    assert cell == "不予认定；部分认定；部分认定"
