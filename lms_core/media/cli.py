"""``flask lms media``: import files from the server's disk and verify the store."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from lms_core.extensions import db


@click.group()
def media() -> None:
    """Media files: import from disk, verify the store."""


@media.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--uploader", required=True, help="Username recorded as the uploader (an instructor).")
@with_appcontext
def media_import(paths: tuple[Path, ...], uploader: str) -> None:
    """Store files through the same checks as an upload (type by content, size limit, duration).

    For videos already on the server, too large for a browser upload. Prints one line
    per file; refused files are reported and the others still imported.
    """
    from lms_core.accounts.services import by_username
    from lms_core.authz import can
    from lms_core.jobs.services import commit
    from lms_core.media.services import store
    from lms_core.media.validation import UploadRejected

    user = by_username(uploader)
    if user is None:
        raise click.ClickException(f"unknown user {uploader!r}")
    if not can(user, "course.author"):
        raise click.ClickException(f"{uploader} may not author courses (capability course.author)")
    refused = 0
    for number, path in enumerate(paths, start=1):
        try:
            with path.open("rb") as fh:
                stored = store(fh, path.name, user, content_length=path.stat().st_size)
            commit()
        except UploadRejected as exc:
            db.session.rollback()
            refused += 1
            click.echo(f"[{number}/{len(paths)}] {path.name}: refused ({exc.status}): {exc.message}", err=True)
            continue
        m = stored.media
        facts = (
            f"{m.duration_ms / 1000:.1f} s"
            if m.duration_ms is not None
            else (f"{m.page_count} pages" if m.page_count else m.mime_type)
        )
        state = "new" if stored.created else "already stored"
        click.echo(f"[{number}/{len(paths)}] {path.name}: media {m.id}, {m.mime_type}, {facts} ({state})")
    if refused:
        raise SystemExit(1)


@media.command("verify")
@click.option("--hash", "rehash", is_flag=True, help="Also re-read every file and compare its SHA-256.")
@with_appcontext
def media_verify(rehash: bool) -> None:
    """Check that every media row has its stored file, with the right size (and content)."""
    from lms_core.media.models import MediaFile
    from lms_core.media.storage import CHUNK, get_storage

    storage = get_storage()
    rows = db.session.execute(select(MediaFile).order_by(MediaFile.id)).scalars().all()
    problems = 0
    with click.progressbar(rows, label=f"checking {len(rows)} files", file=sys.stderr) as bar:
        for m in bar:
            if not storage.exists(m.storage_key):
                problems += 1
                click.echo(f"\nmedia {m.id} ({m.original_name}): file missing at {m.storage_key}", err=True)
                continue
            if storage.size(m.storage_key) != m.size_bytes:
                problems += 1
                click.echo(f"\nmedia {m.id} ({m.original_name}): size differs", err=True)
                continue
            if rehash:
                digest = hashlib.sha256()
                with storage.open(m.storage_key) as fh:
                    while chunk := fh.read(CHUNK):
                        digest.update(chunk)
                if digest.hexdigest() != m.sha256:
                    problems += 1
                    click.echo(f"\nmedia {m.id} ({m.original_name}): content changed (SHA-256 differs)", err=True)
    click.echo(f"{len(rows)} files checked, {problems} problem(s)")
    if problems:
        raise SystemExit(1)
