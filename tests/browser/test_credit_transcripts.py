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
from tests.browser.test_ui import expect, horizontal_overflow, sign_in
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
