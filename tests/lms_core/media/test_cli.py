"""``flask lms media import`` and ``verify``."""

from __future__ import annotations

from sqlalchemy import select

from lms_core.extensions import db
from lms_core.media.models import MediaFile
from lms_core.media.storage import get_storage


def test_import_then_verify(app, author, learner, samples, tmp_path):
    runner = app.test_cli_runner()
    bad = tmp_path / "notes.pdf"
    bad.write_bytes(b"MZ" + b"\0" * 100)
    result = runner.invoke(
        args=["lms", "media", "import", "--uploader", "teacher", str(samples.mp4), str(samples.pdf), str(bad)]
    )
    assert result.exit_code == 1  # one file refused
    assert "clip.mp4: media" in result.output and "3.0 s (new)" in result.output
    assert "4 pages" in result.output
    assert "notes.pdf: refused (415)" in result.stderr
    db.session.expire_all()
    assert len(db.session.execute(select(MediaFile)).scalars().all()) == 2

    again = runner.invoke(args=["lms", "media", "import", "--uploader", "teacher", str(samples.mp4)])
    assert again.exit_code == 0 and "already stored" in again.output

    assert runner.invoke(args=["lms", "media", "import", "--uploader", "cadre", str(samples.mp4)]).exit_code == 1

    ok = runner.invoke(args=["lms", "media", "verify", "--hash"])
    assert ok.exit_code == 0 and "2 files checked, 0 problem(s)" in ok.output

    pdf = db.session.execute(select(MediaFile).filter_by(mime_type="application/pdf")).scalar_one()
    get_storage(app).local_path(pdf.storage_key).write_bytes(b"%PDF-tampered" + b"\0" * (pdf.size_bytes - 13))
    tampered = runner.invoke(args=["lms", "media", "verify", "--hash"])
    assert tampered.exit_code == 1 and "content changed" in tampered.stderr
