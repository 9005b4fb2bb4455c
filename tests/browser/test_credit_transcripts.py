"""A cadre downloads a signed transcript; the public verification page accepts it and rejects an edited copy.

Screenshots (phone size) go to the test's ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lms_core.extensions import db
from plugins.credit_bank.proofs import keys, pdf
from tests.browser.helpers import expect, horizontal_overflow, sign_in
from tests.factories import UserFactory
from tests.plugins.credit_bank.transcripts.helpers import history

pytestmark = [
    pytest.mark.browser,
    pytest.mark.backends("postgresql"),
    pytest.mark.app_config(WTF_CSRF_ENABLED=True, LMS_PLUGINS=["credit_bank"]),
]

ISSUER = Ed25519PrivateKey.from_private_bytes(bytes(range(7, 39)))


@pytest.fixture(autouse=True)
def issuer_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMS_CREDIT_ISSUER_KEY", keys.private_to_pem(ISSUER).decode())


def test_download_then_verify_and_reject_an_edited_copy(mobile_page: Any, tree: Any, tmp_path: Path) -> None:
    page = mobile_page
    cadre = UserFactory(username="wangfang", full_name="王芳", org_unit=tree.village_a)
    history(cadre)
    db.session.commit()

    sign_in(page, "wangfang")
    page.goto("/credit/transcripts")
    expect(page.locator("h1")).to_have_text("我的学时证明")
    page.locator("input[name=year]").fill("2025")
    page.locator("#issue-transcript").click()
    expect(page.locator(".flash")).to_contain_text("学时证明已开具")
    expect(page.locator("#my-transcripts tbody tr")).to_have_count(1)
    page.screenshot(path=str(tmp_path / "transcripts.png"), full_page=True)
    assert horizontal_overflow(page) == 0
    with page.expect_download() as info:
        page.locator("a.download").first.click()
    downloaded = tmp_path / "transcript.pdf"
    info.value.save_as(str(downloaded))
    data = downloaded.read_bytes()
    assert pdf.verify_file(data, ISSUER.public_key()).ok

    # Anyone, signed out, checks it on the public page.
    page.context.clear_cookies()
    page.goto("/credit/verify")
    expect(page.locator("h1")).to_have_text("验证学时证明")
    page.locator("input[name=file]").set_input_files(str(downloaded))
    page.locator("form button[type=submit].primary").click()
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-verdict", "valid")
    expect(verdict).to_contain_text("真实有效")
    expect(page.locator("#subject-name")).to_have_text("王芳")
    expect(page.locator("#balances")).to_contain_text("5.50")
    page.screenshot(path=str(tmp_path / "verified.png"), full_page=True)
    assert horizontal_overflow(page) == 0

    # The same file with the name changed inside the attached credential.
    edited = tmp_path / "edited.pdf"
    edited.write_bytes(data.replace("王芳".encode(), "王方".encode()))
    assert edited.read_bytes() != data
    page.goto("/credit/verify")
    page.locator("input[name=file]").set_input_files(str(edited))
    page.locator("form button[type=submit].primary").click()
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "invalid")
    expect(page.locator("#verdict")).to_contain_text("验证失败")
    expect(page.locator("[data-check=file_seal]")).to_contain_text("✗")
    page.screenshot(path=str(tmp_path / "rejected.png"), full_page=True)


@pytest.mark.parametrize("size", ["mobile", "desktop"])
def test_admin_revokes_after_confirming_and_the_public_page_says_so(
    request: pytest.FixtureRequest, tree: Any, tmp_path: Path, size: str
) -> None:
    """An org admin in scope opens the cadre's transcripts, confirms a revocation with a reason;
    a signed-out verifier following the QR link then sees 已撤销 and the reason."""
    import os

    from lms_core.accounts.models import Role
    from plugins.credit_bank.transcripts import services
    from tests.factories import grant

    page = request.getfixturevalue("mobile_page" if size == "mobile" else "page")
    shots = Path(os.environ.get("LMS_SCREENSHOT_DIR") or tmp_path)
    cadre = UserFactory(username="zhaomin", full_name="赵敏", org_unit=tree.village_a)
    admin = UserFactory(username="nanling_admin", full_name="南岭管理员", org_unit=tree.county_a)
    grant(admin, Role.ORG_ADMIN, tree.county_a)
    history(cadre)
    db.session.commit()
    cred = services.issue_transcript(cadre, 2025)

    sign_in(page, "nanling_admin")
    page.goto(f"/credit/users/{cadre.id}?year=2025")
    page.locator("#person-transcripts-link").click()
    expect(page.locator("h1")).to_have_text("赵敏的学时证明")
    assert horizontal_overflow(page) == 0
    page.locator(f"#t-{cred.id} a.revoke").click()
    expect(page.locator("h1")).to_have_text("撤销学时证明")
    page.screenshot(path=str(shots / f"revoke-confirm-{size}.png"), full_page=True)
    assert horizontal_overflow(page) == 0

    # Declining the browser's confirmation changes nothing.
    page.locator("textarea[name=reason]").fill("发现代学代考")
    page.once("dialog", lambda d: d.dismiss())
    page.locator("#confirm-revoke").click()
    expect(page.locator("h1")).to_have_text("撤销学时证明")
    assert services.status_of(cred).state == "valid"

    page.once("dialog", lambda d: d.accept())
    page.locator("#confirm-revoke").click()
    expect(page.locator(".flash")).to_contain_text("学时证明已撤销")
    expect(page.locator(f"#t-{cred.id}")).to_have_attribute("data-state", "revoked")
    page.screenshot(path=str(shots / f"revoke-done-{size}.png"), full_page=True)

    page.context.clear_cookies()
    page.goto(f"/credit/verify/{cred.id}")
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-verdict", "revoked")
    expect(verdict).to_contain_text("发现代学代考")
    page.screenshot(path=str(shots / f"revoke-public-{size}.png"), full_page=True)
    assert horizontal_overflow(page) == 0
