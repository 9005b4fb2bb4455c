"""The ledger integrity page: checkpoints and their consistency, the replay, whole-tree scope only."""

from __future__ import annotations

from flask import Flask

from lms_core.accounts.models import Role
from lms_core.extensions import db
from plugins.credit_bank.transcripts import log
from tests import factories
from tests.conftest import login
from tests.plugins.credit_bank.transcripts.helpers import post
from tests.plugins.credit_bank.transcripts.test_services import _tamper


def _people(tree) -> None:
    auditor = factories.UserFactory(username="city_audit", org_unit=tree.city)
    factories.grant(auditor, Role.AUDITOR, tree.city)
    county = factories.UserFactory(username="county_audit", org_unit=tree.county_a)
    factories.grant(county, Role.AUDITOR, tree.county_a)
    admin = factories.UserFactory(username="city_admin", org_unit=tree.city)
    factories.grant(admin, Role.ORG_ADMIN, tree.city)
    db.session.commit()


def test_checkpoints_consistency_and_a_clean_replay(app: Flask, tree) -> None:
    _people(tree)
    cadre = factories.UserFactory(org_unit=tree.village_a)
    post(cadre, "a", 100)
    log.checkpoint_now()
    post(cadre, "b", 250)
    log.checkpoint_now()
    client = app.test_client()
    login(client, "city_audit")
    page = client.get("/credit/integrity/").get_data(as_text=True)
    latest = log.latest_checkpoint("journal")
    assert latest is not None and latest.size == 2
    assert f"{latest.root[:32]}<wbr>{latest.root[32:]}" in page and "最新检查点" in page
    checks = page.split('id="checks-journal"', 1)[1].split("</table>", 1)[0]
    assert "<td>1</td>" in checks and "是" in checks and "日志已被改动" not in checks
    replay = client.get("/credit/integrity/?replay=1").get_data(as_text=True)
    assert "未发现不一致" in replay and "每个余额均与流水一致" in replay


def test_replay_shows_a_tampered_journal(app: Flask, tree) -> None:
    _people(tree)
    cadre = factories.UserFactory(org_unit=tree.village_a, full_name="张三丰")
    post(cadre, "a", 100)
    log.checkpoint_now()
    _tamper(app, "UPDATE credit_transfers SET amount = 900 WHERE seq = (SELECT min(seq) FROM credit_transfers)")
    client = app.test_client()
    login(client, "city_audit")
    replay = client.get("/credit/integrity/?replay=1").get_data(as_text=True)
    assert "发现不一致" in replay
    table = replay.split('id="mismatch-table"', 1)[1].split("</table>", 1)[0]
    assert "0, 100, 0, 0" in table and "0, 900, 0, 0" in table  # stored vs recomputed credits
    # Whose account, in words: the person (linked to their statement), credit type, year, kind.
    row = table.split("<tbody>", 1)[1]
    assert f'href="/credit/users/{cadre.id}?year=2025">张三丰</a>' in row
    for words in ("网络培训学时", "<td>2025</td>", "计入", "存储的余额与流水不一致"):
        assert words in row, words
    assert "WL_XS" not in row and "counted" not in row


def test_only_whole_tree_auditors_and_site_admins(app: Flask, tree) -> None:
    _people(tree)
    for username, status in (("county_audit", 403), ("city_admin", 403)):
        client = app.test_client()
        login(client, username)
        response = client.get("/credit/integrity/?replay=1")
        assert response.status_code == status and "权限" in response.get_data(as_text=True)
        assert "/credit/integrity/" not in client.get("/admin/users").get_data(as_text=True)
    client = app.test_client()
    login(client, "city_audit")
    assert 'href="/credit/integrity/"' in client.get("/admin/users").get_data(as_text=True)
