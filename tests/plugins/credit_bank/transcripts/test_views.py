"""The public verification page and a cadre's own transcripts page."""

from __future__ import annotations

import io

import pytest
from flask import Flask
from flask.testing import FlaskClient

from plugins.credit_bank.transcripts import services, views
from tests import factories
from tests.conftest import login
from tests.plugins.credit_bank.transcripts.helpers import history, post


def upload(client: FlaskClient, data: bytes, name: str = "t.pdf") -> object:
    return client.post("/credit/verify", data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def test_verification_page_is_public_and_chinese(client: FlaskClient) -> None:
    page = client.get("/credit/verify")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "验证学时证明" in html and 'lang="zh-CN"' in html
    key = client.get("/credit/verify/key")
    assert key.status_code == 200 and key.get_data(as_text=True).startswith("ed25519:")
    assert 'id="status-list" href="/credit/verify/status.json"' in html and "下载状态列表" in html
    from plugins.credit_bank.proofs import status_list as sl
    from tests.plugins.credit_bank.transcripts.conftest import ISSUER

    listed = client.get("/credit/verify/status.json")  # public, signed, empty before any revocation
    payload = sl.load(listed.data, ISSUER.public_key())
    assert listed.status_code == 200 and payload["entries"] == [] and payload["credential_log_size"] == 0


def test_upload_accepts_a_transcript_and_rejects_an_edited_copy(app: Flask, client: FlaskClient) -> None:
    cadre = factories.UserFactory(full_name="赵敏")
    history(cadre)
    cred = services.issue_transcript(cadre, 2025)
    ok = upload(client, cred.pdf)
    html = ok.get_data(as_text=True)
    assert ok.status_code == 200, html
    assert 'data-verdict="valid"' in html and "赵敏" in html and "5.50" in html

    edited = cred.pdf.replace("赵敏".encode(), "赵明".encode())  # inside the attached credential
    assert edited != cred.pdf
    bad = upload(client, edited)
    assert bad.status_code == 422 and 'data-verdict="invalid"' in bad.get_data(as_text=True)
    flipped = bytearray(cred.pdf)
    flipped[-40] ^= 1
    assert upload(client, bytes(flipped)).status_code == 422


def test_superseded_and_revoked_show_as_such(app: Flask, client: FlaskClient) -> None:
    cadre = factories.UserFactory()
    post(cadre, "a", 100)
    first = services.issue_transcript(cadre, 2025)
    second = services.issue_transcript(cadre, 2025)
    page = upload(client, first.pdf).get_data(as_text=True)
    assert 'data-verdict="superseded"' in page and "已被新的学时证明取代" in page and second.id in page
    services.revoke(second, "发现代学代考")
    page = client.get(f"/credit/verify/{second.id}").get_data(as_text=True)
    assert 'data-verdict="revoked"' in page and "发现代学代考" in page
    page = client.get(f"/credit/verify/{first.id}").get_data(as_text=True)
    assert 'data-verdict="superseded"' in page


@pytest.mark.parametrize(
    ("data", "status", "text"),
    [
        (b"GIF89a" + b"\0" * 100, 400, "既不是 PDF"),
        (b"", 400, ""),
        (b"%PDF-1.7\n%%EOF\n", 422, "验证失败"),
        (b"{" * 50_000, 422, "验证失败"),
        (b"\x00" * 10, 400, "既不是 PDF"),
    ],
)
def test_junk_gets_a_clear_chinese_answer(client: FlaskClient, data: bytes, status: int, text: str) -> None:
    res = upload(client, data)
    assert res.status_code == status
    assert text in res.get_data(as_text=True)


def test_oversized_upload_is_413(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # A small limit keeps the test body in memory (a 5 MB one would be spooled to a file).
    monkeypatch.setattr(views, "MAX_UPLOAD", 1000)
    res = upload(client, b"%PDF-" + b"0" * 70_000)  # declared length over the limit
    assert res.status_code == 413 and "5 MB" in res.get_data(as_text=True)
    res = upload(client, b"%PDF-" + b"0" * 2000)  # within the request allowance, over the file limit
    assert res.status_code == 413


def test_qr_link_errors(client: FlaskClient) -> None:
    assert client.get("/credit/verify/not-a-uuid").status_code == 400
    missing = client.get("/credit/verify/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and "没有签发过" in missing.get_data(as_text=True)
    assert client.get("/credit/verify/" + "a" * 500).status_code == 400


@pytest.mark.app_config(LMS_PLUGINS=["credit_bank"], WTF_CSRF_ENABLED=True)
def test_upload_form_needs_its_csrf_token(client: FlaskClient) -> None:
    res = upload(client, b"%PDF-1.7\n")
    assert res.status_code == 400 and "表单已过期" in res.get_data(as_text=True)


def test_cadre_issues_and_downloads_only_their_own(app: Flask, client: FlaskClient) -> None:
    cadre = factories.UserFactory(username="cadre1")
    factories.UserFactory(username="nosy")
    history(cadre)
    from lms_core.extensions import db

    db.session.commit()
    login(client, "cadre1")
    page = client.get("/credit/transcripts")
    assert page.status_code == 200 and "我的学时证明" in page.get_data(as_text=True)
    res = client.post("/credit/transcripts", data={"year": "2025"})
    assert res.status_code == 302
    ((cred, st),) = services.for_user(cadre.id)
    assert st.state == "valid"
    pdf_res = client.get(f"/credit/transcripts/{cred.id}.pdf")
    assert pdf_res.status_code == 200 and pdf_res.mimetype == "application/pdf" and pdf_res.data == cred.pdf
    assert client.post("/credit/transcripts", data={"year": "99999"}).status_code == 400

    client.post("/logout")
    login(client, "nosy")
    assert client.get(f"/credit/transcripts/{cred.id}.pdf").status_code == 404
    client.post("/logout")
    assert client.get(f"/credit/transcripts/{cred.id}.pdf").status_code in (302, 401)


def test_an_old_transcript_is_proven_consistent_with_the_grown_logs(app: Flask, client: FlaskClient) -> None:
    from plugins.credit_bank.proofs import merkle

    cadre = factories.UserFactory()
    post(cadre, "a", 100)
    old = services.issue_transcript(cadre, 2025)
    other = factories.UserFactory()
    post(other, "b", 200)
    post(other, "c", 300)
    services.issue_transcript(other, 2025)
    page = upload(client, old.pdf).get_data(as_text=True)
    assert 'data-check="credential_log_consistent"' in page and 'data-check="journal_log_consistent"' in page
    assert "✗" not in page and "只增未改" in page

    proof = client.get("/credit/verify/consistency?log=journal&first=1&second=3").get_json()
    first, second = proof["first"], proof["second"]
    assert merkle.verify_consistency(
        1, 3, [bytes.fromhex(p) for p in proof["proof"]], bytes.fromhex(first["root"]), bytes.fromhex(second["root"])
    )
    assert client.get("/credit/verify/consistency?log=journal&first=2&second=3").status_code == 404
    assert client.get("/credit/verify/consistency?log=x&first=1&second=3").status_code == 400
    assert client.get("/credit/verify/consistency?log=journal&first=a&second=3").status_code == 400
    assert client.get("/credit/verify/consistency?log=journal&first=3&second=1").status_code == 400


def test_a_rewritten_log_fails_the_consistency_check(app: Flask, client: FlaskClient) -> None:
    from sqlalchemy import text

    from lms_core.extensions import db

    cadre = factories.UserFactory()
    post(cadre, "a", 100)
    old = services.issue_transcript(cadre, 2025)
    post(cadre, "b", 100)
    services.issue_transcript(cadre, 2025)
    # Someone with database access rewrites the first journal leaf after the fact (replay
    # reports that too; here the old transcript's own checkpoint catches it).
    forged = "00" * 32
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ALTER TABLE credit_log_leaves DISABLE TRIGGER USER"))
        db.session.execute(
            text("UPDATE credit_log_leaves SET leaf_hash = :h WHERE log = 'journal' AND idx = 0"), {"h": forged}
        )
        db.session.execute(text("ALTER TABLE credit_log_leaves ENABLE TRIGGER USER"))
    else:
        db.session.execute(text("DROP TRIGGER credit_log_leaves_no_update"))
        db.session.execute(
            text("UPDATE credit_log_leaves SET leaf_hash = :h WHERE log = 'journal' AND idx = 0"), {"h": forged}
        )
    # ... and the stored interior nodes above it, recomputed from the forged leaves (tree heads
    # are read from the nodes, so a rewrite must redo them to change the signed roots).
    from plugins.credit_bank.proofs import merkle

    leaves = [
        bytes.fromhex(h)
        for (h,) in db.session.execute(
            text("SELECT leaf_hash FROM credit_log_leaves WHERE log = 'journal' ORDER BY idx")
        )
    ]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ALTER TABLE credit_log_nodes DISABLE TRIGGER USER"))
    else:
        db.session.execute(text("DROP TRIGGER credit_log_nodes_no_delete"))
    db.session.execute(text("DELETE FROM credit_log_nodes WHERE log = 'journal'"))
    for (level, idx), node in merkle.completed_nodes(0, leaves, lambda need: {}).items():
        db.session.execute(
            text("INSERT INTO credit_log_nodes (log, level, idx, hash) VALUES ('journal', :l, :i, :h)"),
            {"l": level, "i": idx, "h": node.hex()},
        )
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ALTER TABLE credit_log_nodes ENABLE TRIGGER USER"))
    db.session.commit()
    # The forged history is then signed into new checkpoints, as a silent rewrite would be.
    from plugins.credit_bank.transcripts import log

    post(cadre, "c", 100)
    log.checkpoint_now()
    res = upload(client, old.pdf)
    page = res.get_data(as_text=True)
    assert res.status_code == 422
    assert '<li class="error" data-check="journal_log_consistent">' in page
