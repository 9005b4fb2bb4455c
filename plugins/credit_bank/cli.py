"""``flask lms credit ...``: replay and maintenance commands."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext


@click.group("credit")
def credit_group() -> None:
    """The credit bank (学分银行)."""


@credit_group.command("replay")
@with_appcontext
def replay_command() -> None:
    """Recompute every balance from the journal and print the mismatches (exit 1 if any)."""
    from plugins.credit_bank import replay

    sys.exit(replay.run_checks(click.echo))


@credit_group.command("expire-pending")
@with_appcontext
def expire_pending_command() -> None:
    """Void pending transfers whose timeout has passed."""
    from plugins.credit_bank.ledger import expire_pending

    total = 0
    while True:
        n = expire_pending()
        total += n
        if n == 0:
            break
        click.echo(f"... {total}")
    click.echo(f"voided {total}")
