"""``flask lms credit transcript|public-key|verify|status-list|checkpoint|revoke``, and the log check of ``replay``.

``verify`` needs no database and no server: only the file and the issuer's public key, and
for revocation the issuer's signed status list (``--status``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from plugins.credit_bank import replay
from plugins.credit_bank.cli import credit_group

#: What each verification step proves, for the command's output.
CHECK_TEXT = {
    "file_seal": "file sealed by the issuer (every byte)",
    "format": "file is a credit transcript",
    "issuer_key": "credential names this issuer key",
    "credential_signature": "credential signature (Ed25519 over RFC 8785 JSON)",
    "credential_checkpoint": "credential log checkpoint signature",
    "credential_inclusion": "credential is in the credential log",
    "journal_checkpoint": "journal log checkpoint signature",
    "journal_inclusion": "every entry is in the journal log",
    "balances": "balances equal the sum of the entries",
}


@credit_group.command("transcript")
@click.option("--user", "username", required=True, help="The cadre's username.")
@click.option("--year", type=click.IntRange(2000, 2100), required=True, help="Calendar year (Asia/Shanghai).")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Where to write the PDF."
)
@with_appcontext
def transcript_command(username: str, year: int, output: Path) -> None:
    """Issue a signed transcript of USER's credit for YEAR and write the PDF."""
    from sqlalchemy import select

    from lms_core.accounts.models import User
    from lms_core.extensions import db
    from plugins.credit_bank.transcripts.services import issue_transcript

    user = db.session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    click.echo("logging the journal and signing checkpoints ...")
    cred = issue_transcript(user, year)
    output.write_bytes(cred.pdf)
    click.echo(f"issued {cred.id} (sha256 {cred.digest[:16]}…) -> {output} ({len(cred.pdf):,} bytes)")
    if cred.supersedes_id:
        click.echo(f"replaces {cred.supersedes_id}")


@credit_group.command("public-key")
@with_appcontext
def public_key_command() -> None:
    """Print the issuer's public key (give it to `credit verify --key`)."""
    from plugins.credit_bank.proofs import keys
    from plugins.credit_bank.transcripts.issuer_key import issuer_key

    click.echo(keys.public_text(issuer_key().public_key()))


@credit_group.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_text",
    required=True,
    help="The issuer's public key (ed25519:..., as printed by `credit public-key`), or a file holding it.",
)
@click.option(
    "--status",
    "status_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The issuer's signed status list (credit-status.json from /credit/verify/status.json or "
    "`credit status-list`): reports a revoked or re-issued transcript.",
)
def verify_command(file: Path, key_text: str, status_file: Path | None) -> None:
    """Check a transcript (PDF or credential.json) offline: no server, no database.

    Exit status 0 when every check passes (and, with --status, the signed status list
    covers the transcript and names it neither revoked nor re-issued), 1 otherwise.
    """
    from plugins.credit_bank.proofs import keys, pdf

    try:
        pub = keys.parse_public(key_text)
    except keys.KeyFormatError as exc:
        raise click.BadParameter(str(exc), param_hint="--key") from exc
    if file.stat().st_size > 50 * 1024 * 1024:
        raise click.ClickException("file larger than 50 MB: not a transcript")
    report = pdf.verify_file(file.read_bytes(), pub)
    for c in report.checks:
        mark = "OK  " if c.ok else "FAIL"
        click.echo(f"{mark} {CHECK_TEXT.get(c.code, c.code)}" + (f" [{c.detail}]" if c.detail and not c.ok else ""))
    p = report.payload
    if report.ok and p is not None:
        subject = p["subject"]
        click.echo(f"VALID: transcript {p['id']} of {subject['full_name']} ({subject['username']}), year {p['year']}")
        for b in p["balances"]:
            click.echo(
                f"  {b['ledger']}: posted {pdf.hours(b['posted'])}, under review {pdf.hours(b['pending'])}, "
                f"not counted {pdf.hours(b['overflow'])}"
            )
        cp = report.bundle["credential_log"]["checkpoint"] if report.bundle else {}
        click.echo(f"logged as of {cp.get('time')}; its status online: {p['verify_url']}")
        if status_file is None:
            base = str(p["verify_url"]).rsplit("/credit/verify/", 1)[0]
            click.echo(
                "revocation NOT checked: pass the issuer's signed status list with --status FILE "
                f"(published at {base}/credit/verify/status.json)"
            )
            sys.exit(0)
        index = report.bundle["credential_log"]["index"] if report.bundle else -1
        sys.exit(_report_status(status_file, pub, str(p["id"]), int(index)))
    click.echo("INVALID: this file is not an unaltered transcript from this issuer")
    sys.exit(1)


def _report_status(status_file: Path, pub: Any, credential_id: str, index: int) -> int:
    """Print what the signed status list says about the transcript; the exit status."""
    from plugins.credit_bank.proofs import status_list

    if status_file.stat().st_size > 50 * 1024 * 1024:
        click.echo("FAIL status list: file larger than 50 MB")
        return 1
    try:
        payload = status_list.load(status_file.read_bytes(), pub)
    except status_list.StatusListError as exc:
        click.echo(f"FAIL status list: {exc}")
        click.echo("INVALID: the revocation status could not be checked")
        return 1
    click.echo(f"OK   status list signed by the issuer at {payload['time']}")
    got = status_list.standing(payload, credential_id, index)
    entry = got.entry or {}
    if got.state == "revoked":
        click.echo(f"REVOKED since {entry.get('since')}: {entry.get('reason') or ''}".rstrip())
        if entry.get("replaced_by"):
            click.echo(f"  it had been replaced by {entry['replaced_by']}")
        return 1
    if got.state == "superseded":
        click.echo(f"RE-ISSUED since {entry.get('since')}: replaced by transcript {entry.get('replaced_by')}")
        return 1
    if got.state == "unknown":
        click.echo(f"UNKNOWN: the status list of {got.time} is older than this transcript; fetch a newer one")
        return 1
    click.echo(f"CURRENT: neither revoked nor re-issued as of {got.time} (a later revocation needs a newer list)")
    return 0


@credit_group.command("status-list")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Where to write the JSON."
)
@with_appcontext
def status_list_command(output: Path) -> None:
    """Write the signed status list (revoked and re-issued transcripts) for offline verifiers."""
    import json

    from plugins.credit_bank.transcripts.services import status_list

    doc = status_list()
    output.write_text(json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    p = doc["payload"]
    click.echo(f"{len(p['entries'])} revoked or re-issued of {p['credential_log_size']} logged, at {p['time']}")


@credit_group.command("checkpoint")
@with_appcontext
def checkpoint_command() -> None:
    """Log new journal rows and sign a checkpoint of both logs."""
    from plugins.credit_bank.transcripts import log

    jcp, ccp = log.checkpoint_now(progress=click.echo)
    click.echo(f"journal log: {jcp.size} leaves, root {jcp.root}")
    click.echo(f"credential log: {ccp.size} leaves, root {ccp.root}")


@credit_group.command("revoke")
@click.argument("credential_id")
@click.option("--reason", required=True, help="Why (shown on the verification page).")
@with_appcontext
def revoke_command(credential_id: str, reason: str) -> None:
    """Revoke an issued transcript."""
    from plugins.credit_bank.transcripts.services import TranscriptError, find, revoke

    cred = find(credential_id)
    if cred is None:
        raise click.ClickException(f"no transcript {credential_id!r}")
    try:
        revoke(cred, reason)
    except TranscriptError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"revoked {cred.id}")


def _check_logs(echo: replay.Echo) -> int:
    from plugins.credit_bank.transcripts.log import check_logs

    return check_logs(echo)


if _check_logs not in replay.CHECKS:
    replay.CHECKS.append(_check_logs)
