"""``flask lms credit transcript | public-key | verify``; verify runs with no database at all."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask

from plugins.credit_bank.proofs import keys
from plugins.credit_bank.proofs import status_list as sl
from tests import factories
from tests.plugins.credit_bank.proofs import sample
from tests.plugins.credit_bank.transcripts.conftest import ISSUER_PUBLIC
from tests.plugins.credit_bank.transcripts.helpers import history

REPO = Path(__file__).resolve().parents[4]


def test_issue_print_key_and_verify(app: Flask, tmp_path: Path) -> None:
    cadre = factories.UserFactory(username="liwei")
    history(cadre)
    runner = app.test_cli_runner()
    out = tmp_path / "t.pdf"
    res = runner.invoke(args=["lms", "credit", "transcript", "--user", "liwei", "--year", "2025", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes().startswith(b"%PDF-")

    key = runner.invoke(args=["lms", "credit", "public-key"])
    assert key.output.strip() == ISSUER_PUBLIC

    ok = runner.invoke(args=["lms", "credit", "verify", str(out), "--key", ISSUER_PUBLIC])
    assert ok.exit_code == 0, ok.output
    assert "VALID" in ok.output and "WL_XS: posted 5.50, under review 3.00" in ok.output

    edited = tmp_path / "edited.pdf"
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x20
    edited.write_bytes(bytes(data))
    bad = runner.invoke(args=["lms", "credit", "verify", str(edited), "--key", ISSUER_PUBLIC])
    assert bad.exit_code == 1 and "INVALID" in bad.output and "FAIL file sealed" in bad.output

    wrong = keys.public_text(Ed25519PrivateKey.generate().public_key())
    assert runner.invoke(args=["lms", "credit", "verify", str(out), "--key", wrong]).exit_code == 1
    assert runner.invoke(args=["lms", "credit", "verify", str(out), "--key", "nonsense"]).exit_code == 2

    unknown = runner.invoke(args=["lms", "credit", "transcript", "--user", "nobody", "--year", "2025", "-o", str(out)])
    assert unknown.exit_code == 1 and "no user" in unknown.output


def test_verify_needs_no_database(tmp_path: Path) -> None:
    """A separate process whose database URL points nowhere: verify still works."""
    key = Ed25519PrivateKey.generate()
    f = tmp_path / "t.pdf"
    f.write_bytes(sample.sealed_pdf(key, None, sample.build(key)))
    keyfile = tmp_path / "issuer.pub"
    keyfile.write_text(keys.public_text(key.public_key()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_")}
    env.update(LMS_PLUGINS="credit_bank", LMS_DATABASE_URL="postgresql://nobody@127.0.0.1:9/none", FLASK_APP="lms_core")
    flask = [sys.executable, "-m", "flask", "lms", "credit", "verify"]
    ok = subprocess.run(
        [*flask, str(f), "--key", str(keyfile)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "VALID" in ok.stdout
    data = bytearray(f.read_bytes())
    data[100] ^= 1
    f.write_bytes(bytes(data))
    bad = subprocess.run(
        [*flask, str(f), "--key", str(keyfile)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1 and "INVALID" in bad.stdout


def test_verify_with_the_signed_status_list_reports_revoked_and_reissued(app: Flask, tmp_path: Path) -> None:
    """Offline revocation: the list the server publishes (page and CLI) tells the verifier."""
    from plugins.credit_bank.transcripts import services

    cadre = factories.UserFactory(username="liwei")
    history(cadre)
    runner = app.test_cli_runner()

    def verify(pdf_file: Path, status: Path | None = None) -> Any:
        args = ["lms", "credit", "verify", str(pdf_file), "--key", ISSUER_PUBLIC]
        return runner.invoke(args=[*args, "--status", str(status)] if status else args)

    def status_list(name: str) -> Path:
        out = tmp_path / name
        res = runner.invoke(args=["lms", "credit", "status-list", "-o", str(out)])
        assert res.exit_code == 0, res.output
        return out

    first = services.issue_transcript(cadre, 2025)
    first_pdf = tmp_path / "first.pdf"
    first_pdf.write_bytes(first.pdf)
    before = status_list("before.json")

    plain = verify(first_pdf)
    assert plain.exit_code == 0 and "revocation NOT checked" in plain.output
    assert "/credit/verify/status.json" in plain.output
    current = verify(first_pdf, before)
    assert current.exit_code == 0 and "CURRENT: neither revoked nor re-issued" in current.output, current.output

    second = services.issue_transcript(cadre, 2025)  # a re-issue supersedes the first
    second_pdf = tmp_path / "second.pdf"
    second_pdf.write_bytes(second.pdf)
    unknown = verify(second_pdf, before)  # the list predates the second transcript
    assert unknown.exit_code == 1 and "UNKNOWN" in unknown.output
    services.revoke(second, "发现代学代考，撤销此证明")
    after = status_list("after.json")
    reissued = verify(first_pdf, after)
    assert reissued.exit_code == 1 and "RE-ISSUED since" in reissued.output and second.id in reissued.output
    revoked = verify(second_pdf, after)
    assert revoked.exit_code == 1 and "REVOKED since" in revoked.output and "发现代学代考" in revoked.output
    assert "CURRENT" not in verify(first_pdf, after).output

    # The page publishes the same signed list.
    served = app.test_client().get("/credit/verify/status.json")
    assert served.status_code == 200 and served.mimetype == "application/json"
    page_list = tmp_path / "served.json"
    page_list.write_bytes(served.data)
    assert "REVOKED" in verify(second_pdf, page_list).output

    # A list edited to hide the revocation, or signed by someone else, is refused.
    doc = json.loads(after.read_text(encoding="utf-8"))
    doc["payload"]["entries"] = [e for e in doc["payload"]["entries"] if e["id"] != second.id]
    hidden = tmp_path / "hidden.json"
    hidden.write_text(json.dumps(doc), encoding="utf-8")
    tampered = verify(second_pdf, hidden)
    assert tampered.exit_code == 1 and "FAIL status list" in tampered.output and "CURRENT" not in tampered.output
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(sl.build(Ed25519PrivateKey.generate(), [], 100, dt.datetime.now(dt.UTC))))
    assert "FAIL status list" in verify(second_pdf, forged).output
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x00not json")
    res = verify(second_pdf, garbage)
    assert res.exit_code == 1 and "FAIL status list: not JSON" in res.output
