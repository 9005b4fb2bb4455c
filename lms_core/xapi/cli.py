"""``flask lms xapi``: the outbox backlog, replay and single statements."""

from __future__ import annotations

import json
import sys

import click
from flask.cli import with_appcontext


@click.group()
def xapi() -> None:
    """xAPI statements waiting for, or rejected by, the LRS."""


@xapi.command("backlog")
@with_appcontext
def backlog() -> None:
    """Count outbox rows by status and show the oldest pending one."""
    from flask import current_app

    from lms_core.xapi import services

    click.echo(
        f"LRS: {current_app.config['LMS_XAPI_ENDPOINT']}"
        f"{'' if services.enabled() else '  (emission disabled: LMS_XAPI_ENABLED=0)'}"
    )
    for status, n in services.counts().items():
        click.echo(f"{status.value}\t{n}")
    row = services.oldest_pending()
    if row is None:
        click.echo("no pending statement")
        return
    click.echo(
        f"oldest pending: #{row.id} event {row.event_id} statement {row.statement_id} "
        f"queued {row.created_at:%Y-%m-%d %H:%M:%S}Z attempts={row.attempts} "
        f"next {row.next_attempt_at:%Y-%m-%d %H:%M:%S}Z"
    )
    if row.last_error:
        click.echo(f"last error: {row.last_error.splitlines()[0]}")


@xapi.command("replay")
@click.option("--failed", "include_failed", is_flag=True, help="Also retry statements the LRS rejected.")
@with_appcontext
def replay(include_failed: bool) -> None:
    """Deliver every pending statement now, ignoring the backoff."""
    from lms_core.xapi import services

    total = services.make_due(include_failed=include_failed)
    with click.progressbar(length=total, label="delivering", file=sys.stderr) as bar:
        report = services.deliver_due(progress=bar.update)
    click.echo(f"delivered {report.delivered}, rejected {report.failed}, still pending {report.retrying}")
    if report.retrying or report.failed:
        sys.exit(1)


@xapi.command("show")
@click.argument("ident")
@with_appcontext
def show(ident: str) -> None:
    """Show one outbox row: IDENT is its id, its statement UUID, or event:<event id>."""
    from lms_core.xapi import services

    row = services.find(ident)
    if row is None:
        raise click.ClickException(f"no outbox row {ident!r}")
    click.echo(f"#{row.id} event {row.event_id} statement {row.statement_id}")
    click.echo(
        f"status {row.status.value}, attempts {row.attempts}, queued {row.created_at.isoformat()}, "
        f"next attempt {row.next_attempt_at.isoformat()}, "
        f"delivered {row.delivered_at.isoformat() if row.delivered_at else '-'}"
    )
    if row.last_error:
        click.echo(f"last error: {row.last_error}")
    click.echo(json.dumps(row.statement, ensure_ascii=False, indent=2, sort_keys=True))


@xapi.command("connect-embedded")
@click.option("--force", is_flag=True, help="Create a new credential even if the saved one still works.")
@with_appcontext
def connect_embedded(force: bool) -> None:
    """Give the platform its own client in the embedded LRS (saved in the instance folder)."""
    from lms_core.xapi.credentials import ConnectError, connect_embedded, credentials_path

    try:
        key, created = connect_embedded(force=force)
    except ConnectError as exc:
        raise click.ClickException(str(exc)) from exc
    if created:
        click.echo(f"created LRS client {key}; credential saved in {credentials_path()}")
    else:
        click.echo(f"already connected as LRS client {key}")
