"""The 调训 page: units from the tree, the head count before and after, completion, kept input."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from lms_core.accounts.models import RankBand, Role, UserStatus
from lms_core.enrolments.models import Assignment, Enrolment
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.lms_core.learning.fixtures import build_course


@pytest.fixture
def setup(app, tree):
    kit = build_course(tree)
    admin = UserFactory(username="cadmin", org_unit=tree.county_a)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    UserFactory(username="t1", org_unit=tree.town_a, rank_band=RankBand.TOWNSHIP)
    UserFactory(username="t2", org_unit=tree.town_a)
    UserFactory(username="v1", org_unit=tree.village_a, rank_band=RankBand.TOWNSHIP)
    UserFactory(username="gone", org_unit=tree.village_a, status=UserStatus.DISABLED)
    UserFactory(username="qs", org_unit=tree.county_b)
    db.session.commit()
    client = app.test_client()
    login(client, "cadmin")
    return kit, client


def _enrolled(course_id: int) -> int:
    return db.session.execute(select(func.count()).select_from(Enrolment).filter_by(course_id=course_id)).scalar_one()


def test_tree_offers_only_units_in_the_area_with_head_counts(setup, tree):
    kit, client = setup
    html = client.get(f"/courses/{kit.course.id}/assign").get_data(as_text=True)
    offered = set(re.findall(r'name="org_unit_id" value="(\d+)"', html))
    assert offered == {str(tree.county_a.id), str(tree.town_a.id), str(tree.village_a.id)}
    assert "青山县" not in html
    # county: admin + t1 + t2 + v1 (the disabled account does not count); village: v1
    assert re.search(r"南岭县</span> <span[^>]*>4 人", html)
    assert re.search(r"红星村</span> <span[^>]*>1 人", html)
    assert 'id="assignments"' in html and "尚无调训" in html


def test_preview_counts_keeps_input_and_writes_nothing(setup, tree):
    kit, client = setup
    data = {
        "org_unit_id": str(tree.town_a.id),
        "rank_band": "township",
        "deadline": "2099-06-30",
        "note": "请按时完成",
        "preview": "1",
    }
    r = client.post(f"/courses/{kit.course.id}/assign", data=data)
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "本次调训目前覆盖 2 人" in html and "乡科级" in html  # t1 and v1
    assert f'value="{tree.town_a.id}"\n          checked' in html or re.search(
        rf'value="{tree.town_a.id}"\s+checked', html
    )
    assert 'value="2099-06-30"' in html and 'value="请按时完成"' in html
    assert re.search(r'<option value="township"\s+selected', html)
    assert db.session.execute(select(func.count()).select_from(Assignment)).scalar_one() == 0


def test_assign_reports_reach_and_lists_completion(setup, tree):
    kit, client = setup
    r = client.post(
        f"/courses/{kit.course.id}/assign", data={"org_unit_id": str(tree.town_a.id), "deadline": "2099-06-30"}
    )
    assert r.status_code == 303
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "覆盖 3 人" in html  # t1, t2, v1
    assert _enrolled(kit.course.id) == 3
    enrolment = db.session.execute(select(Enrolment).limit(1)).scalar_one()
    enrolment.completed_at = dt.datetime.now(dt.UTC)
    db.session.commit()
    html = client.get(f"/courses/{kit.course.id}/assign").get_data(as_text=True)
    row = html.split('id="assignments"', 1)[1]
    assert "城关镇" in row and "2099年6月30日" in row
    assert "<td>3</td>" in row and "1 / 3 (33%)" in row


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"deadline": "2099-06-30"}, "请在单位树中选择一个单位"),
        ({"org_unit_id": "999999", "deadline": "2099-06-30"}, "请在单位树中选择一个单位"),
        ({"org_unit_id": "9" * 40, "deadline": "2099-06-30"}, "请在单位树中选择一个单位"),
        ({"org_unit_id": "town_a", "deadline": "x\x00"}, "YYYY-MM-DD"),
        ({"org_unit_id": "town_a", "deadline": "2099-06-30", "rank_band": "minister"}, "职级"),
        ({"org_unit_id": "county_b", "deadline": "2099-06-30", "note": "保留"}, "青山县 不在您的管理范围内"),
    ],
)
def test_errors_are_chinese_on_the_form_and_keep_input(setup, tree, data, message):
    kit, client = setup
    data = dict(data)
    if data.get("org_unit_id") in ("town_a", "county_b"):
        data["org_unit_id"] = str(getattr(tree, data["org_unit_id"]).id)
    r = client.post(f"/courses/{kit.course.id}/assign", data=data)
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert message in html and 'id="assign"' in html
    if "note" in data:
        assert f'value="{data["note"]}"' in html
    assert db.session.execute(select(func.count()).select_from(Assignment)).scalar_one() == 0


def test_picker_can_open_a_deeper_unit_of_ones_area_only(setup, tree):
    kit, client = setup
    html = client.get(f"/courses/{kit.course.id}/assign?under={tree.town_a.id}").get_data(as_text=True)
    assert set(re.findall(r'name="org_unit_id" value="(\d+)"', html)) == {str(tree.town_a.id), str(tree.village_a.id)}
    html = client.get(f"/courses/{kit.course.id}/assign?under={tree.county_b.id}").get_data(as_text=True)
    assert "青山县" not in html


def _assignments() -> int:
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(Assignment)).scalar_one()


def test_a_resubmitted_form_does_not_assign_twice_and_says_why(setup, tree):
    kit, client = setup
    data = {"org_unit_id": str(tree.town_a.id), "deadline": "2099-06-30", "rank_band": "township", "note": "请按时完成"}
    assert client.post(f"/courses/{kit.course.id}/assign", data=data).status_code == 303
    again = client.post(f"/courses/{kit.course.id}/assign", data=data)  # a double click / browser resubmit
    html = again.get_data(as_text=True)
    assert again.status_code == 400
    assert "本课程刚刚已按相同截止日期调训城关镇，本次未重复下达" in html
    assert 'value="2099-06-30"' in html and 'value="请按时完成"' in html  # the input is kept
    assert _assignments() == 1 and _enrolled(kit.course.id) == 2  # t1 and v1, once each


def test_a_different_deadline_or_an_old_assignment_is_a_new_assignment(setup, tree):
    kit, client = setup
    data = {"org_unit_id": str(tree.town_a.id), "deadline": "2099-06-30"}
    assert client.post(f"/courses/{kit.course.id}/assign", data=data).status_code == 303
    assert client.post(f"/courses/{kit.course.id}/assign", data={**data, "deadline": "2099-07-31"}).status_code == 303
    assert _assignments() == 2
    first = db.session.execute(select(Assignment).order_by(Assignment.id).limit(1)).scalar_one()
    first.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)  # sent an hour ago: again on purpose
    db.session.commit()
    assert client.post(f"/courses/{kit.course.id}/assign", data=data).status_code == 303
    assert _assignments() == 3
