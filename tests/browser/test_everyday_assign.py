"""调训 in Chromium: a phone user picks a unit from the tree, sees the head count, assigns."""

from __future__ import annotations

from typing import Any

import pytest

from lms_core.accounts.models import RankBand, Role
from lms_core.extensions import db
from tests.browser.helpers import expect, horizontal_overflow, sign_in
from tests.factories import UserFactory, grant
from tests.lms_core.learning.fixtures import build_course

pytestmark = [pytest.mark.browser, pytest.mark.backends("postgresql"), pytest.mark.app_config(WTF_CSRF_ENABLED=True)]


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1280, "height": 800}])
def test_assign_by_tree_with_head_count(page: Any, tree: Any, tmp_path: Any, viewport: dict[str, int]) -> None:
    kit = build_course(tree)
    admin = UserFactory(username="cadmin", full_name="县委组织部", org_unit=tree.county_a)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    for i in range(3):
        UserFactory(username=f"t{i}", org_unit=tree.town_a, rank_band=RankBand.TOWNSHIP)
    UserFactory(username="v0", org_unit=tree.village_a)
    db.session.commit()

    page.set_viewport_size(viewport)
    sign_in(page, "cadmin")
    page.goto(f"/courses/{kit.course.id}/assign")
    page.get_by_label("城关镇").check()
    page.locator("#rank_band").select_option("township")
    page.get_by_role("button", name="预览覆盖人数").click()
    expect(page.locator("#reach-preview")).to_contain_text("本次调训目前覆盖 3 人")
    expect(page.get_by_label("城关镇")).to_be_checked()  # the choice survives the preview
    page.locator("#deadline").fill("2099-06-30")
    assert horizontal_overflow(page) == 0
    page.screenshot(path=str(tmp_path / f"assign-{viewport['width']}.png"), full_page=True)
    page.get_by_role("button", name="下达").click()
    expect(page.locator(".flash-success")).to_contain_text("覆盖 3 人")
    expect(page.locator("#assignments")).to_contain_text("城关镇")
    expect(page.locator("#assignments")).to_contain_text("0 / 3")
    page.screenshot(path=str(tmp_path / f"assigned-{viewport['width']}.png"), full_page=True)
