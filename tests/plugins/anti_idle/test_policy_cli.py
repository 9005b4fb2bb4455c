"""``flask lms anti-idle policy show|set``: the same parsing and messages as the admin page."""

from __future__ import annotations

import json

import pytest

from lms_core.extensions import db
from plugins.anti_idle import policy
from plugins.anti_idle.models import Policy
from tests.lms_core.learning.fixtures import build_course

pytestmark = pytest.mark.app_config(LMS_PLUGINS=["anti_idle"])


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=["lms", "anti-idle", "policy", *args])


def test_show_prints_the_version_in_force(app):
    result = run(app, "show")
    assert result.exit_code == 0 and "version 0" in result.output and "check_window_seconds = 60" in result.output
    data = json.loads(run(app, "show", "--json").output)
    assert data["version"] == 0 and data["params"]["allowed_rates"] == policy.DEFAULTS["allowed_rates"]


def test_set_makes_a_new_version_site_wide_and_per_course(app, tree):
    kit = build_course(tree)
    result = run(app, "set", "check_window_seconds=45", "allowed_rates=1,1.25", "--note", "收紧")
    assert result.exit_code == 0, result.output
    site = policy.current_policy()
    assert site.version > 0 and site["check_window_seconds"] == 45 and site["allowed_rates"] == [1.0, 1.25]
    result = run(
        app,
        "set",
        "--course",
        kit.course.code,
        "check_first_after_seconds=30",
        "check_min_gap_seconds=30",
        "check_max_gap_seconds=30",
    )
    assert result.exit_code == 0, result.output
    course = policy.current_policy(kit.course.id)
    assert course.course_id == kit.course.id and course["check_min_gap_seconds"] == 30
    assert course["check_window_seconds"] == 45, "a course override starts from the site policy in force"
    assert "check_min_gap_seconds = 30" in run(app, "show", "--course", str(kit.course.id)).output
    assert db.session.query(Policy).count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check_window_seconds=abc"], "不是数字"),
        (["check_window_seconds=1e308"], "必须在"),
        (["nonsense=1"], "未知的策略参数"),
        (["check_min_gap_seconds=5000"], "最短间隔不能大于最长间隔"),
    ],
)
def test_bad_values_are_refused_in_chinese_and_store_nothing(app, args, message):
    result = run(app, "set", *args)
    assert result.exit_code != 0 and message in result.output
    assert db.session.query(Policy).count() == 0


def test_unknown_course_and_malformed_assignment(app):
    assert run(app, "set", "--course", "NOPE", "check_window_seconds=30").exit_code != 0
    assert run(app, "set", "check_window_seconds").exit_code != 0
    assert db.session.query(Policy).count() == 0
