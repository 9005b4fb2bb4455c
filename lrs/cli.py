"""``flask lms lrs ...``: manage LRS client credentials from the command line."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from lms_core.extensions import db


@click.group("lrs")
def lrs_group() -> None:
    """The xAPI Learning Record Store: client credentials."""


@lrs_group.group("client")
def client_group() -> None:
    """Create, list, disable and rotate LRS client credentials."""


@client_group.command("create")
@click.option("--name", required=True, help="Who uses the credential (shown as the statements' authority).")
@click.option(
    "--scopes",
    "scopes",
    multiple=True,
    default=("statements/write", "statements/read/mine"),
    show_default=True,
    help="xAPI scopes, comma- or space-separated, repeatable (e.g. 'all').",
)
@with_appcontext
def client_create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a client and print its key and secret (the secret is shown only once)."""
    from lrs import clients

    try:
        client, secret = clients.create_client(name, scopes, created_by="cli")
    except clients.ClientError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"key: {client.key}")
    click.echo(f"secret: {secret}")
    click.echo(f"scopes: {' '.join(client.scopes)}")


@client_group.command("list")
@with_appcontext
def client_list() -> None:
    """List clients (never their secrets)."""
    from lrs.models import LrsClient

    for c in db.session.execute(select(LrsClient).order_by(LrsClient.id)).scalars():
        state = "active" if c.active else "disabled"
        click.echo(f"{c.id}\t{c.key}\t{state}\t{' '.join(c.scopes)}\t{c.name}")


def _by_key(key: str) -> object:
    from lrs.models import LrsClient

    client = db.session.execute(select(LrsClient).where(LrsClient.key == key)).scalar()
    if client is None:
        raise click.ClickException(f"no client with key {key!r}")
    return client


@client_group.command("disable")
@click.argument("key")
@with_appcontext
def client_disable(key: str) -> None:
    """Refuse a client's requests from now on."""
    from lrs import clients

    clients.set_active(_by_key(key), False)  # type: ignore[arg-type]
    click.echo(f"disabled {key}")


@client_group.command("enable")
@click.argument("key")
@with_appcontext
def client_enable(key: str) -> None:
    """Accept a disabled client's requests again."""
    from lrs import clients

    clients.set_active(_by_key(key), True)  # type: ignore[arg-type]
    click.echo(f"enabled {key}")


@client_group.command("rotate")
@click.argument("key")
@with_appcontext
def client_rotate(key: str) -> None:
    """Give a client a new secret (printed once); the old one stops working."""
    from lrs import clients

    secret = clients.rotate_secret(_by_key(key))  # type: ignore[arg-type]
    click.echo(f"key: {key}")
    click.echo(f"secret: {secret}")
