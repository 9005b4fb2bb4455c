"""The annual quality report: page, PDF (Chinese text read back with pypdf) and ``flask lms report annual``."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from lms_core.accounts.models import Role
from lms_core.extensions import db
from tests.conftest import login
from tests.factories import UserFactory, grant
from tests.lms_core.reports.test_reports import screen_rows, world  # noqa: F401 - the shared fixture


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_page_shows_figures_units_and_charts(client, world, tree):  # noqa: F811
    login(client, "city_admin")
    page = client.get("/reports/annual?year=2026&org=3601").get_data(as_text=True)
    assert "江州市 2026 年度干部教育培训质量报告" in page
    figures = {r[0]: r[1:] for r in screen_rows(page, "annual-figures")}
    assert figures["有效学时合计"][0] == "5.00"  # 2026: 1.5 + 0.5 + 1 + 2 hours; 2025's 2.5 h not counted
    assert figures["参加网络学习的干部"][0] == "3"
    units = {r[0]: r for r in screen_rows(page, "annual-units")}
    assert set(units) == {"南岭县", "青山县"} and units["南岭县"][2] == "3.00" and units["青山县"][2] == "2.00"
    assert 'id="chart-monthly-data"' in page and "/reports/annual.pdf?year=2026&amp;org=3601" in page


def test_pdf_has_the_chinese_headings_and_figures(client, world):  # noqa: F811
    login(client, "city_admin")
    response = client.get("/reports/annual.pdf?year=2026&org=3601")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "annual-report-3601-2026.pdf" in response.headers["Content-Disposition"]
    text = pdf_text(response.get_data())
    for heading in (
        "江州市 2026 年度干部教育培训质量报告",
        "一、主要数据",
        "二、各单位对比",
        "三、图表分析",
        "学时月度趋势",
    ):
        assert heading in text, heading
    assert "有效学时合计 5.00" in text
    assert "南岭县" in text and "青山县" in text and "1月 4.50 3" in text


def test_county_admin_gets_only_the_county(client, world):  # noqa: F811
    login(client, "nl_admin")
    text = pdf_text(client.get("/reports/annual.pdf?year=2026").get_data())
    assert "南岭县 2026 年度干部教育培训质量报告" in text
    assert "有效学时合计 3.00" in text and "石岗镇" not in text and "青山县" not in text
    assert client.get("/reports/annual.pdf?year=2026&org=3601").status_code == 403
    assert client.get("/reports/annual.docx?year=2026").status_code == 404
    bad = client.get("/reports/annual?year=1999")
    assert bad.status_code == 400 and "2000" in bad.get_data(as_text=True)


def test_cli_writes_the_pdf_with_progress(app, world, tmp_path):  # noqa: F811
    admin = UserFactory(username="root_admin")
    grant(admin, Role.SITE_ADMIN, admin.org_unit)
    db.session.commit()
    out = tmp_path / "report.pdf"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["lms", "report", "annual", "--org", "360121", "--year", "2026", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "charts" in result.output and "pdf" in result.output and "wrote" in result.output
    text = pdf_text(out.read_bytes())
    assert "南岭县 2026 年度干部教育培训质量报告" in text and "有效学时合计 3.00" in text
    # within a named user's scope: the county admin may not report on the other county
    denied = runner.invoke(
        args=["lms", "report", "annual", "--org", "360122", "--year", "2026", "-o", str(out), "--as-user", "nl_admin"]
    )
    assert denied.exit_code != 0 and "may not" in denied.output


@pytest.mark.parametrize(
    "args", [["--org", "NOPE", "--year", "2026"], ["--org", "3601", "--year", "1999"], ["--org", "3601"]]
)
def test_cli_refuses_bad_input(app, world, tmp_path, args):  # noqa: F811
    result = app.test_cli_runner().invoke(args=["lms", "report", "annual", *args, "-o", str(tmp_path / "x.pdf")])
    assert result.exit_code != 0 and not (tmp_path / "x.pdf").exists()


@pytest.mark.app_config(LMS_REPORT_ROLLUP_MAX_AGE=600)
def test_cli_reads_fresh_rollups_as_they_are_unless_told_to_rebuild(app, world, tmp_path):  # noqa: F811
    from lms_core.reports import monthly

    admin = UserFactory(username="root_admin")
    grant(admin, Role.SITE_ADMIN, admin.org_unit)
    db.session.commit()
    monthly.refresh()
    db.session.commit()
    built = monthly.refreshed_at()
    args = ["lms", "report", "annual", "--org", "360121", "--year", "2026", "-o", str(tmp_path / "r.pdf")]
    runner = app.test_cli_runner()
    kept = runner.invoke(args=args)
    assert kept.exit_code == 0, kept.output
    assert "report rollups as of" in kept.output and "--refresh" in kept.output
    db.session.expire_all()
    assert monthly.refreshed_at() == built  # not rebuilt: younger than LMS_REPORT_ROLLUP_MAX_AGE
    assert "有效学时合计 3.00" in pdf_text((tmp_path / "r.pdf").read_bytes())
    forced = runner.invoke(args=[*args, "--refresh"])
    assert forced.exit_code == 0 and "rebuilt the report rollups" in forced.output
    db.session.expire_all()
    assert monthly.refreshed_at() > built
