"""``flask lms credit transcript | public-key | verify``; verify runs with no database at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask

from plugins.credit_bank.proofs import keys
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
