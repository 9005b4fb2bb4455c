"""A cadre completes a course in Chromium and sees exactly the course's 学时 appear, everywhere."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from lms_core.accounts.models import RankBand, Role
from lms_core.courses import services as courses
from lms_core.courses.models import LessonKind
from lms_core.extensions import db
from lms_core.quizzes import services as quizzes
from lms_core.quizzes.models import QuestionKind
from tests.browser.helpers import expect, horizontal_overflow, sign_in
from tests.factories import UserFactory, grant

pytestmark = [
    pytest.mark.browser,
    pytest.mark.backends("postgresql"),
    pytest.mark.app_config(WTF_CSRF_ENABLED=True, LMS_PLUGINS=["credit_bank"]),
]


def test_completing_a_course_posts_exactly_its_hours(mobile_page: Any, tree: Any, tmp_path: Path) -> None:
    page = mobile_page
    teacher = UserFactory(username="teacher", org_unit=tree.city, full_name="党校讲师")
    grant(teacher, Role.INSTRUCTOR, tree.city)
    course = courses.create_course(
        teacher, code="XS-225", title="基层治理专题", topic="基层治理", nominal_hours_centi=225, required=True
    )
    section = courses.add_section(teacher, course, "第一单元")
    quiz = courses.add_lesson(teacher, section, title="结业测验", kind=LessonKind.QUIZ, passing_score_pct=100)
    quizzes.add_question(
        teacher,
        quiz,
        kind=QuestionKind.SINGLE,
        text="基层治理的根基在于？",
        options=["人民群众", "文件数量"],
        correct=[0],
    )
    courses.set_published(teacher, course, True)
    UserFactory(username="liming", full_name="李明", org_unit=tree.village_a, rank_band=RankBand.TOWNSHIP)
    db.session.commit()

    sign_in(page, "liming")
    page.goto(f"/courses/{course.id}")
    expect(page.locator("main")).to_contain_text("2.25 学时")
    page.goto("/dashboard")
    expect(page.locator("#year-hours")).to_have_text("0.00")
    page.goto(f"/courses/{course.id}")
    page.locator("#enrol").click()
    page.get_by_role("link", name="结业测验").click()
    page.get_by_label("人民群众").check()
    page.locator("#submit-quiz").click()
    expect(page.locator(".flash-success")).to_be_visible()

    page.goto("/dashboard")
    expect(page.locator("#year-hours")).to_have_text("2.25")
    expect(page.locator("#year-progress")).to_contain_text("/ 90")
    expect(page.locator("#year-pending")).to_have_text("0.00")
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    assert horizontal_overflow(page) == 0

    page.get_by_role("link", name="我的学时明细").click()
    expect(page.locator("#balances tr[data-ledger=WL_XS] .posted")).to_have_text("2.25")
    expect(page.locator("#credit-statement tbody tr")).to_have_count(1)
    expect(page.locator("#credit-statement tbody tr .amount")).to_have_text("2.25")
    expect(page.locator("#credit-statement")).to_contain_text("完成网络课程 · 基层治理专题")
    page.screenshot(path=str(tmp_path / "credit.png"), full_page=True)
    assert horizontal_overflow(page) == 0


@pytest.mark.parametrize("size", ["mobile", "desktop"])
def test_site_admin_previews_and_saves_conversion_rules(
    request: pytest.FixtureRequest, tree: Any, tmp_path: Path, size: str
) -> None:
    """The conversion page: a wrong amount is named in Chinese beside its field, the preview
    shows what a course and a 3-day class earn under the draft, and saving adds a version."""
    import os

    from plugins.credit_bank import policy as P
    from tests.lms_core.learning.fixtures import build_course

    page = request.getfixturevalue("mobile_page" if size == "mobile" else "page")
    shots = Path(os.environ.get("LMS_SCREENSHOT_DIR") or tmp_path)
    site = UserFactory(username="site", org_unit=tree.city)
    grant(site, Role.SITE_ADMIN, tree.city)
    kit = build_course(tree)  # labelled 2.00 学时, one required video of 100 s
    db.session.commit()

    sign_in(page, "site")
    page.goto("/credit/policy/conversion")
    expect(page.locator("h1")).to_have_text("学时折算规则")
    assert horizontal_overflow(page) == 0
    page.locator("input[name=kind][value=tiered_minutes]").check()
    page.locator("input[name=tier_min_1]").fill("1")
    page.locator("#offline_day").fill("7.5x")
    page.locator("#course_id").select_option(str(kit.course.id))
    page.locator("#days").fill("3")
    page.locator("#preview-button").click()
    expect(page.locator("#error-offline_day")).to_contain_text("最多两位小数")
    expect(page.locator("#preview")).to_have_count(0)

    page.locator("#offline_day").fill("7.5")
    page.locator("#conv_from_0").select_option("WL_XS")
    page.locator("#conv_to_0").select_option("WL_XS")
    page.locator("#conv_num_0").fill("1")
    page.locator("#conv_den_0").fill("2")
    page.locator("#convert_amount").fill("10")
    page.locator("#preview-button").click()
    expect(page.locator("#error-conv_to_0")).to_contain_text("不同的学时类别")
    expect(page.locator("#conv_den_0")).to_have_value("2")  # the input is kept on an error
    expect(page.locator("#convert_amount")).to_have_value("10")
    page.screenshot(path=str(shots / f"conversion-error-{size}.png"), full_page=True)
    assert horizontal_overflow(page) == 0

    page.locator("#conv_to_0").select_option("JZ_XS")
    page.locator("input[name=year_end][value=carry_forward]").check()
    page.locator("#carry_cap").fill("12")
    page.locator("#preview-button").click()
    rows = page.locator("#preview tbody tr")
    expect(rows).to_have_count(3)
    # 10 hours of online study at 1/2: no such rule now (0.00), 5.00 under the draft.
    expect(rows.nth(2).locator("td.now")).to_have_text("0.00")
    expect(rows.nth(2).locator("td.draft")).to_have_text("5.00")
    # 2.00 now (its label); under the draft the 1-minute course reaches the second tier,
    # which now starts at 1 minute: 0.50. Three days at 7.50 a day: 22.50.
    expect(rows.nth(0).locator("td.now")).to_have_text("2.00")
    expect(rows.nth(0).locator("td.draft")).to_have_text("0.50")
    expect(rows.nth(1).locator("td.draft")).to_have_text("22.50")
    page.screenshot(path=str(shots / f"conversion-preview-{size}.png"), full_page=True)
    assert horizontal_overflow(page) == 0

    before = len(P.versions())
    db.session.commit()  # versions() may record the default version: release it for the server
    page.locator("#effective_from").fill("2026-01-01")
    page.locator("#save-button").click()
    expect(page.locator(".flash")).to_contain_text("已保存")
    db.session.expire_all()
    assert len(P.versions()) == before + 1
    rules = P.rules_of(P.in_force(dt.date(2026, 6, 1)))
    assert rules["offline_day_centi"] == 750 and rules["online_course"]["kind"] == "tiered_minutes"
    assert rules["conversions"] == [{"from": "WL_XS", "to": "JZ_XS", "num": 1, "den": 2}]
    assert rules["year_end"] == {"mode": "carry_forward", "carry_cap_centi": 1200}


@pytest.mark.parametrize("size", ["mobile", "desktop"])
def test_integrity_mismatches_and_imports_read_in_chinese(
    request: pytest.FixtureRequest, app: Any, tree: Any, tmp_path: Path, size: str
) -> None:
    """A tampered journal line shows on /credit/integrity as the person, 学时类别, year and
    account kind in words; the folded import page takes a roster file and lists its lines."""
    import os

    from plugins.credit_bank.transcripts import log
    from tests.plugins.credit_bank.transcripts.helpers import post
    from tests.plugins.credit_bank.transcripts.test_services import _tamper

    page = request.getfixturevalue("mobile_page" if size == "mobile" else "page")
    shots = Path(os.environ.get("LMS_SCREENSHOT_DIR") or tmp_path)
    site = UserFactory(username="site", org_unit=tree.city, full_name="系统管理员")
    grant(site, Role.SITE_ADMIN, tree.city)
    cadre = UserFactory(username="cadre", org_unit=tree.village_a, full_name="张三丰")
    db.session.commit()
    post(cadre, "a", 100)
    log.checkpoint_now()
    _tamper(app, "UPDATE credit_transfers SET amount = 900 WHERE seq = (SELECT min(seq) FROM credit_transfers)")

    sign_in(page, "site")
    page.goto("/credit/integrity/")
    page.locator("#run-replay").click()
    expect(page.locator("#replay-result")).to_contain_text("发现不一致")
    row = page.locator("#mismatch-table tbody tr").first
    expect(row.get_by_role("link", name="张三丰")).to_be_visible()
    for words in ("网络培训学时", "2025", "计入", "存储的余额与流水不一致"):
        expect(row).to_contain_text(words)
    assert "WL_XS" not in row.inner_text()
    page.screenshot(path=str(shots / f"integrity-mismatch-{size}.png"), full_page=True)
    assert horizontal_overflow(page) == 0

    roster = tmp_path / "roster.csv"
    roster.write_text(
        "用户名,培训班名称,主办单位,开始日期,结束日期,学时类别,学时\n"
        "cadre,乡村振兴专题班,市委党校,2025-05-06,2025-05-07,集中培训学时,12\n"
        "nobody,乡村振兴专题班,市委党校,2025-05-06,2025-05-07,集中培训学时,12\n",
        encoding="utf-8-sig",
    )
    page.goto("/credit/roster")
    expect(page.locator("h1")).to_have_text("导入培训班名单")
    page.locator("input[name=file]").set_input_files(str(roster))
    page.get_by_role("button", name="导入").click()
    expect(page.locator("#roster-summary")).to_contain_text("拒绝 1 行")
    page.screenshot(path=str(shots / f"roster-import-{size}.png"), full_page=True)
    assert horizontal_overflow(page) == 0


@pytest.mark.parametrize("size", ["mobile", "desktop"])
def test_admin_previews_and_converts_between_credit_types(
    request: pytest.FixtureRequest, tree: Any, tmp_path: Path, size: str
) -> None:
    """From the cadre's statement to the conversion page: a wrong amount is named in Chinese,
    the preview shows what leaves and arrives, and confirming posts both lines."""
    import os

    from plugins.credit_bank import policy as P
    from plugins.credit_bank import queries
    from tests.plugins.credit_bank.helpers import grant_credit

    page = request.getfixturevalue("mobile_page" if size == "mobile" else "page")
    shots = Path(os.environ.get("LMS_SCREENSHOT_DIR") or tmp_path)
    admin = UserFactory(username="county_admin", org_unit=tree.county_a)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    cadre = UserFactory(username="liming", full_name="李明", org_unit=tree.village_a, rank_band=RankBand.TOWNSHIP)
    db.session.commit()
    from lms_core.db import utcnow
    from plugins.credit_bank.services import local_date

    year = local_date(utcnow()).year
    grant_credit(cadre.id, 500, "wl-browser", day=dt.date(year, 1, 2))
    P.add_version({"conversions": [{"from": "WL_XS", "to": "JZ_XS", "num": 1, "den": 2}]}, dt.date(2000, 1, 1), None)

    sign_in(page, "county_admin")
    page.goto(f"/credit/users/{cadre.id}?year={year}")
    page.locator("#person-convert-link").click()
    expect(page.locator("h1")).to_have_text("学时类别折算")
    page.locator("#amount").fill("9")
    page.locator("#preview-button").click()
    expect(page.locator("#error-amount")).to_contain_text("仅计入 5.00 学时")
    page.locator("#amount").fill("3")
    page.locator("#preview-button").click()
    expect(page.locator("#convert-preview td.out")).to_have_text("3.00 网络培训学时")
    expect(page.locator("#convert-preview td.in")).to_have_text("1.50 集中培训学时")
    page.screenshot(path=str(shots / f"convert-preview-{size}.png"), full_page=True)
    assert horizontal_overflow(page) == 0
    page.locator("#save-button").click()
    expect(page.locator(".flash")).to_contain_text("已将 3.00 学时")
    db.session.expire_all()
    fig = queries.figures(cadre.id)
    assert fig[("WL_XS", year)].posted == 200 and fig[("JZ_XS", year)].posted == 150
